from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from subscribers.billing.models import Tier
from subscribers.billing.sync import link_tier_prices, sync_tier


class Command(BaseCommand):
    help = (
        "Create or update each tier's product and prices in Stripe (safe to run "
        "again), or link a tier to prices that already exist in Stripe."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tier", help="Only this tier (its slug).")
        parser.add_argument(
            "--link-monthly",
            metavar="PRICE_ID",
            help="With --tier: link this existing Stripe monthly price.",
        )
        parser.add_argument(
            "--link-yearly",
            metavar="PRICE_ID",
            help="With --tier: link this existing Stripe yearly price.",
        )

    def handle(self, *args, tier=None, link_monthly=None, link_yearly=None, **opts):
        if not settings.STRIPE_SECRET_KEY:
            raise CommandError(
                "Set STRIPE_SECRET_KEY (Stripe dashboard: Developers -> API keys) "
                "before syncing tiers."
            )
        tiers = Tier.objects.all()
        if tier:
            tiers = tiers.filter(slug=tier)
            if not tiers:
                raise CommandError(f"No tier with the slug {tier!r}.")
        if link_monthly or link_yearly:
            if not tier:
                raise CommandError("--link-monthly/--link-yearly need --tier.")
            try:
                changes = link_tier_prices(
                    tier=tiers.get(), monthly=link_monthly, yearly=link_yearly
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self._report(tiers.get(), changes)
            return
        if not tiers:
            self.stdout.write("No tiers yet: add one in the admin (Paid tiers).")
        for each in tiers:
            try:
                changes = sync_tier(tier=each)
            except ValueError as exc:
                raise CommandError(f"{each}: {exc}") from exc
            self._report(each, changes)

    def _report(self, tier, changes):
        if changes:
            for change in changes:
                self.stdout.write(f"{tier.slug}: {change}")
        else:
            self.stdout.write(f"{tier.slug}: up to date")
