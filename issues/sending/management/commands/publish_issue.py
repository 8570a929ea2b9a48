from typing import cast

from django.core.management.base import BaseCommand, CommandError

from issues.models import Issue
from issues.sending import services
from issues.sending.models import Send


class Command(BaseCommand):
    help = (
        "Publish an issue and email it to every subscriber, once (running it again, "
        "or while the admin publishes it, sends nothing more; an unpublished issue "
        "goes back on the site without being emailed again). Refused while the "
        "issue cites a paper that does not exist yet."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the issue's slug, as in /issues/<slug>/")

    def handle(self, *args, slug: str, **options):
        try:
            issue = Issue.objects.get(slug=slug)
        except Issue.DoesNotExist:
            raise CommandError(f"No issue with the slug “{slug}”.") from None
        already = Send.objects.filter(issue=issue).exists()
        was_unpublished = issue.status == Issue.Status.UNPUBLISHED
        count = services.audience_size()
        try:
            send = services.publish_issue(issue=issue)
        except services.SendingError as exc:
            raise CommandError(str(exc)) from None
        if was_unpublished:
            self.stdout.write(
                self.style.SUCCESS(
                    f"“{issue}” is back on the site. Nobody was emailed again."
                )
            )
        elif already:
            send = cast(Send, send)  # an issue with a send gets it back
            self.stdout.write(
                f"“{issue}” was already published; its send is "
                f"{send.get_status_display().lower()} "
                f"({send.sent_count} of {send.total} sent). Nothing more was sent."
            )
        else:
            send = cast(Send, send)  # a new send, just made
            self.stdout.write(
                self.style.SUCCESS(
                    f"Published “{issue}”; sending to {count} subscribers "
                    f"(send {send.pk})."
                )
            )
