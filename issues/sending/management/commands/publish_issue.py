from typing import cast

from django.core.management.base import BaseCommand, CommandError

from issues.models import Issue
from issues.sending import services
from issues.sending.models import Send
from subscribers.models import Segment

AUDIENCES = [a for a in Issue.Audience.values if a != Issue.Audience.SEGMENT]


class Command(BaseCommand):
    help = (
        "Publish an issue and email it to its audience, once (running it again, "
        "or while the admin publishes it, sends nothing more; an unpublished issue "
        "goes back on the site without being emailed again). Refused while the "
        "issue cites a paper that does not exist yet or has an image without alt text."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the issue's slug, as in /issues/<slug>/")
        parser.add_argument(
            "--audience",
            help="who gets it: " + "|".join(AUDIENCES) + "|segment:NAME "
            "(its newsletter's subscribers, free or paid only, web only, email "
            "only, or a saved segment). Without it, the issue's own choice.",
        )

    def handle(self, *args, slug: str, audience: str | None = None, **options):
        try:
            issue = Issue.objects.get(slug=slug, kind=Issue.Kind.ISSUE)
        except Issue.DoesNotExist:
            raise CommandError(f"No issue with the slug “{slug}”.") from None
        already = Send.objects.filter(issue=issue).exists()
        if audience is not None:
            if already:
                raise CommandError(
                    f"“{issue}” was already sent; its audience cannot change."
                )
            try:
                issue = services.choose_audience(
                    issue=issue, **self._audience(audience)
                )
            except services.SendingError as exc:
                raise CommandError(str(exc)) from None
        was_unpublished = issue.status == Issue.Status.UNPUBLISHED
        count = services.audience_size(issue=issue)
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
        elif send is None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Published “{issue}” on the site only (web only): nobody was "
                    "emailed."
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Published “{issue}” ({issue.get_audience_display()}); "
                    f"sending to {count} subscribers (send {send.pk})."
                )
            )

    def _audience(self, value: str) -> dict:
        """Return the audience and segment an --audience value names."""
        kind, _, name = value.partition(":")
        if kind == Issue.Audience.SEGMENT:
            if not name:
                raise CommandError("Name the segment: --audience segment:NAME.")
            segment = Segment.objects.filter(name=name).first()
            if segment is None:
                known = ", ".join(Segment.objects.values_list("name", flat=True))
                raise CommandError(
                    f"No segment named “{name}”."
                    + (f" Segments: {known}." if known else " There are no segments.")
                )
            return {"audience": Issue.Audience.SEGMENT, "segment": segment}
        if name or kind not in AUDIENCES:
            raise CommandError(
                f"Unknown audience “{value}”: use "
                + ", ".join(AUDIENCES)
                + " or segment:NAME."
            )
        return {"audience": kind, "segment": None}
