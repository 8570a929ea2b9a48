import factory
from django.utils import timezone

from subscribers.models import Subscriber


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    email = factory.Sequence(lambda n: f"reader{n}@example.org")
    status = Subscriber.Status.ACTIVE
    confirmed_at = factory.LazyFunction(timezone.now)
    consent_at = factory.LazyFunction(timezone.now)
    consent_source = "form:/subscribe/"


class PendingSubscriberFactory(SubscriberFactory):
    status = Subscriber.Status.PENDING
    confirmed_at = None
    confirmation_nonce = factory.Faker("hexify", text="^" * 32)
