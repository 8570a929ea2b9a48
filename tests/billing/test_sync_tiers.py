import pytest
from django.core.management import CommandError, call_command

from subscribers.billing.models import Tier
from tests.factories.billing import TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_tier(db):
    return TierFactory(
        name="Reader", slug="reader", description="Support the work.",
        monthly_amount=500, yearly_amount=5000,
    )  # fmt: skip


def test_sync_creates_the_product_and_prices_once_with_idempotency_keys(
    fake_stripe, stripe_settings, new_tier
):
    call_command("sync_stripe_tiers")
    new_tier.refresh_from_db()
    first = (
        new_tier.stripe_product_id,
        new_tier.stripe_monthly_price_id,
        new_tier.stripe_yearly_price_id,
    )
    call_command("sync_stripe_tiers")
    new_tier.refresh_from_db()

    assert all(first)
    assert len(fake_stripe.calls("POST", "/v1/products")) == 2  # create, then update
    assert len(fake_stripe.calls("POST", "/v1/prices")) == 2
    assert fake_stripe.prices[new_tier.stripe_monthly_price_id]["unit_amount"] == 500
    assert (
        fake_stripe.prices[new_tier.stripe_yearly_price_id]["recurring"]["interval"]
        == "year"
    )
    creates = [
        headers
        for method, path, _, headers in fake_stripe.requests
        if method == "POST" and path in ("/v1/products", "/v1/prices")
    ]
    assert all(h["Idempotency-Key"].startswith("quire-") for h in creates)
    assert (
        new_tier.stripe_product_id,
        new_tier.stripe_monthly_price_id,
        new_tier.stripe_yearly_price_id,
    ) == first


def test_a_crash_between_create_and_save_creates_nothing_twice(
    fake_stripe, stripe_settings, new_tier
):
    call_command("sync_stripe_tiers")
    product_count = len(fake_stripe.products)
    # As if the ids had never been saved: the same idempotency keys come back.
    Tier.objects.filter(pk=new_tier.pk).update(
        stripe_product_id="", stripe_monthly_price_id="", stripe_yearly_price_id=""
    )

    call_command("sync_stripe_tiers")

    assert len(fake_stripe.products) == product_count
    assert len(fake_stripe.prices) == 2


def test_a_new_amount_makes_a_new_price_and_archives_the_old(
    fake_stripe, stripe_settings, new_tier
):
    call_command("sync_stripe_tiers")
    new_tier.refresh_from_db()
    old_monthly = new_tier.stripe_monthly_price_id
    new_tier.monthly_amount = 700
    new_tier.save()

    call_command("sync_stripe_tiers")
    new_tier.refresh_from_db()

    assert new_tier.stripe_monthly_price_id != old_monthly
    assert fake_stripe.prices[old_monthly]["active"] is False
    assert fake_stripe.prices[new_tier.stripe_monthly_price_id]["unit_amount"] == 700


def test_existing_prices_can_be_linked(fake_stripe, stripe_settings, new_tier):
    fake_stripe.add_price(price_id="price_old_m", amount=900, interval="month",
                          product="prod_old")  # fmt: skip
    fake_stripe.add_price(price_id="price_old_y", amount=9000, interval="year",
                          product="prod_old")  # fmt: skip

    call_command(
        "sync_stripe_tiers", tier="reader",
        link_monthly="price_old_m", link_yearly="price_old_y",
    )  # fmt: skip
    new_tier.refresh_from_db()

    assert new_tier.stripe_product_id == "prod_old"
    assert new_tier.stripe_monthly_price_id == "price_old_m"
    assert (new_tier.monthly_amount, new_tier.yearly_amount) == (900, 9000)
    assert fake_stripe.calls("POST", "/v1/prices") == []


def test_linking_a_price_with_the_wrong_interval_is_refused(
    fake_stripe, stripe_settings, new_tier
):
    fake_stripe.add_price(price_id="price_m", amount=900, interval="month")

    with pytest.raises(CommandError, match="not a yearly"):
        call_command("sync_stripe_tiers", tier="reader", link_yearly="price_m")


def test_sync_without_a_secret_key_says_what_to_set(settings, new_tier):
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        call_command("sync_stripe_tiers")
