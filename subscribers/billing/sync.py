"""Keep Stripe's products and prices in step with the tiers edited in the admin.

Stripe prices cannot change amount: a new amount makes a new price and archives the
old one. Every create carries an idempotency key derived from what it creates, so
running the command twice (or after a crash half-way) creates nothing twice.
"""

import hashlib
from typing import Any, cast

from django.db import transaction

from . import stripe_api
from .models import Tier
from .stripe_fields import object_id


def _key(*parts: Any) -> str:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
    return f"quire-{digest[:40]}"


def _product_params(tier: Tier) -> dict[str, Any]:
    params: dict[str, Any] = {
        "name": tier.name,
        "active": tier.active,
        "metadata": {"quire_tier_id": str(tier.pk), "quire_tier_slug": tier.slug},
    }
    if tier.description:
        params["description"] = tier.description
    return params


def sync_tier(*, tier: Tier) -> list[str]:
    """Create or update the tier's product and prices in Stripe; return what changed."""
    client = stripe_api.client()
    changes: list[str] = []
    # Built as a plain dict; not checked against stripe's TypedDict.
    params = cast(Any, _product_params(tier))
    if tier.stripe_product_id:
        client.v1.products.update(tier.stripe_product_id, params=params)
        changes.append(f"updated product {tier.stripe_product_id}")
    else:
        product = client.v1.products.create(
            params=params,
            options={"idempotency_key": _key("product", tier.pk, tier.slug)},
        )
        tier.stripe_product_id = product.id
        changes.append(f"created product {product.id}")
    for interval, field in (
        (Tier.Interval.MONTH, "stripe_monthly_price_id"),
        (Tier.Interval.YEAR, "stripe_yearly_price_id"),
    ):
        amount = tier.amount_for(interval)
        current_id = getattr(tier, field)
        if current_id:
            current = client.v1.prices.retrieve(current_id)
            if (
                amount
                and current.unit_amount == amount
                and current.currency == tier.currency
            ):
                continue
            client.v1.prices.update(current_id, params={"active": False})
            changes.append(f"archived {interval}ly price {current_id}")
            setattr(tier, field, "")
        if not amount:
            continue
        price = client.v1.prices.create(
            params={
                "product": tier.stripe_product_id,
                "currency": tier.currency,
                "unit_amount": amount,
                "recurring": {"interval": interval},
                "nickname": f"{tier.name} ({interval}ly)",
                "metadata": {"quire_tier_id": str(tier.pk)},
            },
            options={
                "idempotency_key": _key(
                    "price",
                    tier.pk,
                    tier.stripe_product_id,
                    interval,
                    amount,
                    tier.currency,
                )  # fmt: skip
            },
        )
        setattr(tier, field, price.id)
        changes.append(f"created {interval}ly price {price.id}")
    with transaction.atomic():
        Tier.objects.filter(pk=tier.pk).update(
            stripe_product_id=tier.stripe_product_id,
            stripe_monthly_price_id=tier.stripe_monthly_price_id,
            stripe_yearly_price_id=tier.stripe_yearly_price_id,
        )
    return changes


def link_tier_prices(
    *, tier: Tier, monthly: str | None = None, yearly: str | None = None
) -> list[str]:
    """Link existing Stripe prices to the tier, taking their amounts and product."""
    client = stripe_api.client()
    changes: list[str] = []
    for price_id, interval in ((monthly, "month"), (yearly, "year")):
        if not price_id:
            continue
        price = client.v1.prices.retrieve(price_id).to_dict()
        recurring = price.get("recurring") or {}
        if recurring.get("interval") != interval:
            raise ValueError(f"{price_id} is not a {interval}ly recurring price.")
        product = object_id(price["product"])
        if tier.stripe_product_id and tier.stripe_product_id != product:
            raise ValueError(
                f"{price_id} belongs to {product}, not this tier's product "
                f"{tier.stripe_product_id}."
            )
        tier.stripe_product_id = product
        tier.currency = price["currency"]
        if interval == "month":
            tier.stripe_monthly_price_id = price_id
            tier.monthly_amount = price["unit_amount"]
        else:
            tier.stripe_yearly_price_id = price_id
            tier.yearly_amount = price["unit_amount"]
        changes.append(f"linked {interval}ly price {price_id}")
    tier.save()
    return changes
