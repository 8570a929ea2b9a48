"""Email address checking and normalisation, with email-validator (never DNS)."""

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

# A local part made only of dot-separated atext runs, which email-validator accepts
# as it is; anything else (quoted strings, non-ASCII, odd dots) takes the full path.
_SIMPLE_LOCAL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)


class InvalidAddress(ValueError):
    """The text is not a usable email address; str() says why."""


def _check(text: str) -> str:
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    return result.normalized


@lru_cache(maxsize=20_000)
def _domain(domain: str) -> str:
    # Checked once per domain: imports repeat a few thousand domains at most.
    return _check(f"a@{domain}").rpartition("@")[2]


def normalise_email(raw: str) -> str:
    """Return the address in its stored form (lower case) or raise InvalidAddress."""
    text = (raw or "").strip()
    if not text:
        raise InvalidAddress("The email address is empty.")
    local, at, domain = text.rpartition("@")
    if at and len(text) <= 254 and len(local) <= 64 and _SIMPLE_LOCAL.fullmatch(local):
        normalised = f"{local}@{_domain(domain.lower())}"
    else:
        normalised = _check(text)
    return normalised.lower()


def address_key(raw: str) -> str:
    """Return the form an address is matched by (suppression hashes, throttling).

    A valid address gives its stored form; text that is not one (a provider's
    report, a mistyped alias) is matched trimmed and in lower case rather than
    refused, since it must still be counted or kept out.
    """
    try:
        return normalise_email(raw)
    except InvalidAddress:
        return (raw or "").strip().lower()
