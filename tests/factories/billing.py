import factory

from subscribers.billing.models import Membership, Tier
from tests.factories.subscribers import SubscriberFactory


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    name = factory.Sequence(lambda n: f"Tier {n}")
    slug = factory.Sequence(lambda n: f"tier-{n}")
    currency = "usd"
    monthly_amount = 800
    yearly_amount = 8000

    class Params:
        # Linked to the product and prices tests/billing/stripe_fake.py knows.
        in_stripe = factory.Trait(
            stripe_product_id="prod_1",
            stripe_monthly_price_id="price_month",
            stripe_yearly_price_id="price_year",
        )


class MembershipFactory(factory.django.DjangoModelFactory):
    """A subscriber's membership: no subscription and no tier unless given."""

    class Meta:
        model = Membership

    subscriber = factory.SubFactory(SubscriberFactory)
