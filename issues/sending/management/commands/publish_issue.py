from django.core.management.base import BaseCommand, CommandError

from issues.models import Issue
from issues.sending import services
from issues.sending.models import Send


class Command(BaseCommand):
    help = (
        "Publish an issue and email it to every subscriber, once (running it again, "
        "or while the admin publishes it, sends nothing more)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the issue's slug, as in /issues/<slug>/")

    def handle(self, *args, slug: str, **options):
        try:
            issue = Issue.objects.get(slug=slug)
        except Issue.DoesNotExist:
            raise CommandError(f"No issue with the slug “{slug}”.") from None
        already = Send.objects.filter(issue=issue).exists()
        count = services.audience().count()
        send = services.publish_issue(issue=issue)
        if already:
            self.stdout.write(
                f"“{issue}” was already published; its send is "
                f"{send.get_status_display().lower()} "
                f"({send.sent_count} of {send.total} sent). Nothing more was sent."
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Published “{issue}”; sending to {count} subscribers "
                    f"(send {send.pk})."
                )
            )
