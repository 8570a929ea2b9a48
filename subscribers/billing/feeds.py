"""A private RSS/Atom feed per member: the public feed, with the paid parts."""

from django.http import Http404

from issues.feeds import IssuesAtomFeed, IssuesFeed
from newsletter.models import Publication

from .models import Membership


class PrivateIssuesFeed(IssuesFeed):
    """The issues feed with every paid section, at an address only a member knows.

    The address stops working as soon as the membership no longer gives paid access,
    or when the member asks for a new one.
    """

    def __call__(self, request, *args, **kwargs):
        response = super().__call__(request, *args, **kwargs)
        response["Cache-Control"] = "private, no-store"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    def get_object(self, request, token: str) -> Publication:
        if not (
            Membership.objects.with_paid_access().filter(feed_token=token).exists()
        ):
            raise Http404("No such feed.")
        return Publication.load()

    # Unlike the public feed, this one shows every issue in full.
    unread_fields = ("body", "free_html", "paid_html")

    def title(self, obj: Publication) -> str:
        return f"{obj.name} (supporters)"

    def item_description(self, item) -> str:
        return self.item_html(item, item.body_html)


class PrivateIssuesAtomFeed(PrivateIssuesFeed, IssuesAtomFeed):
    pass
