"""RSS 2.0 and Atom feeds: the public one (full free issues, only the free part of
paid ones), one per tag (the same, of that tag's issues) and each member's private
one (every issue in full)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.syndication.views import Feed
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import escape

from newsletter.links import absolute_url, absolutize
from newsletter.models import Publication
from subscribers.billing.services import opens_private_feed

from .models import Issue, Tag
from .reading import public_description, readable_body
from .rendering import without_heading_anchors, without_sidenotes

FEED_LENGTH = 20


class IssuesFeed(Feed):
    """The published issues; every address in it is absolute, on SITE_URL.

    Django would otherwise fill in the host the feed was requested on, which is not
    the site's public address behind a proxy or when fetched by the server itself.
    """

    description_template = None
    # Columns item_description never reads (the public feed shows free parts only).
    unread_fields: tuple[str, ...] = ("body", "body_html")

    def get_feed(self, obj, request):
        feed = super().get_feed(obj, request)
        feed.feed["feed_url"] = absolute_url(request.path)
        return feed

    def get_object(self, request, *args, **kwargs) -> Publication:
        return Publication.load()

    def title(self, obj: Publication) -> str:
        return obj.name

    def description(self, obj: Publication) -> str:
        return obj.description or f"New issues of {obj.name}"

    def link(self) -> str:
        return absolute_url("/")

    def items(self):
        return self.published_issues()[:FEED_LENGTH]

    def published_issues(self):
        """Return the issues a feed may list, newest first, their tags prefetched."""
        # Feeds are public: never drafts, never scheduled, whoever asks.
        return (
            Issue.objects.published()
            .listed()
            .prefetch_related("tags")
            .defer(*self.unread_fields)
        )

    def item_title(self, item: Issue) -> str:
        return item.title

    def item_link(self, item: Issue) -> str:
        return absolute_url(item.get_absolute_url())

    def item_html(self, item: Issue, html: str) -> str:
        """Return stored issue HTML as a feed reader needs it: links absolute."""
        # Stored HTML links site-relative, and a feed reader shows it away from the
        # site; footnote links point into the issue's page. A feed reader has no
        # margin for sidenotes: the endnotes carry the notes.
        return absolutize(
            without_sidenotes(without_heading_anchors(html)),
            base=self.item_link(item),
            fragments=True,
        )

    def item_description(self, item: Issue) -> str:
        body = readable_body(item, paid_access=False)
        html = self.item_html(item, body.html)
        if body.locked:
            url = escape(self.item_link(item))
            html += (
                '<p class="paywall-teaser"><em>'
                + ("The rest of this issue" if html else "This issue")
                + f' is for paying supporters. <a href="{url}">Read it on the web'
                "</a> or support the newsletter to get it.</em></p>"
            )
        if not html:
            html = f"<p>{escape(public_description(item))}</p>"
        return html

    def item_pubdate(self, item: Issue):
        return item.published_at

    def item_updateddate(self, item: Issue):
        return item.updated

    def item_categories(self, item: Issue):
        return [tag.name for tag in item.tags.all()]

    def item_guid(self, item: Issue) -> str:
        # An issue with a DOI is known by it: Rogue Scholar reads the DOI of a
        # post from its guid (RSS) or id (Atom), as https://doi.org/10.…
        return item.doi_url or self.item_link(item)

    def item_guid_is_permalink(self, item: Issue) -> bool:
        # The DOI identifies the issue; the item's link stays the page's address.
        return not item.doi


class IssuesAtomFeed(IssuesFeed):
    feed_type = Atom1Feed

    def subtitle(self, obj: Publication) -> str:
        return self.description(obj)


@dataclass(frozen=True)
class TaggedIssues:
    """What a tag's feed is about: the tag, in the publication."""

    tag: Tag
    publication: Publication


class TagIssuesFeed(IssuesFeed):
    """The public feed of one tag's issues: the same access rules, fewer issues.

    Django's Feed calls each method with the feed's object when it takes one, so
    these take the tag where the site's feed takes none (the ignores below).
    """

    def get_object(self, request, slug: str) -> TaggedIssues:  # type: ignore[override]
        return TaggedIssues(get_object_or_404(Tag, slug=slug), Publication.load())

    def title(self, obj: TaggedIssues) -> str:  # type: ignore[override]
        return f"{obj.publication.name}: {obj.tag.name}"

    def description(self, obj: TaggedIssues) -> str:  # type: ignore[override]
        return f"New issues of {obj.publication.name} tagged “{obj.tag.name}”"

    def link(self, obj: TaggedIssues) -> str:  # type: ignore[override]
        return absolute_url(obj.tag.get_absolute_url())

    def items(self, obj: TaggedIssues):  # type: ignore[override]
        return self.published_issues().filter(tags=obj.tag)[:FEED_LENGTH]


class TagIssuesAtomFeed(TagIssuesFeed):
    feed_type = Atom1Feed

    def subtitle(self, obj: TaggedIssues) -> str:
        return self.description(obj)


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
        if not opens_private_feed(token=token):
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
