"""Amounts are kept in the currency's smallest unit, as Stripe keeps them."""

from decimal import Decimal, InvalidOperation

ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}


def factor(currency: str) -> int:
    return 1 if currency.lower() in ZERO_DECIMAL else 100


def format_amount(amount: int | None, currency: str) -> str:
    """Return 800 usd as "$8", 850 usd as "$8.50"."""
    if amount is None:
        return ""
    value = Decimal(amount) / factor(currency)
    text = f"{value:,.2f}".removesuffix(".00")
    symbol = SYMBOLS.get(currency.lower())
    return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"


def parse_amount(text: str, currency: str) -> int:
    """Return "12.50" in eur as 1250; ValueError for anything else."""
    try:
        value = Decimal(str(text).strip().replace(",", ""))
    except InvalidOperation as exc:
        raise ValueError("Enter an amount such as 120 or 120.50.") from exc
    if not value.is_finite() or value <= 0:
        raise ValueError("Enter an amount above zero.")
    cents = value * factor(currency)
    if cents != cents.to_integral_value():
        raise ValueError("Enter at most two decimals.")
    return int(cents)
