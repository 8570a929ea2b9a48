"""RSS 2.0 and Atom feeds: full free issues, only the free part of paid ones."""

from __future__ import annotations

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import escape

from newsletter.models import Publication

from .models import Issue
from .reading import public_description, readable_body

FEED_LENGTH = 20


class IssuesFeed(Feed):
    description_template = None

    def get_object(self, request, *args, **kwargs) -> Publication:
        return Publication.load()

    def title(self, obj: Publication) -> str:
        return obj.name

    def description(self, obj: Publication) -> str:
        return obj.description or f"New issues of {obj.name}"

    def link(self) -> str:
        return "/"

    def items(self):
        # Feeds are public: never drafts, never scheduled, whoever asks.
        return (
            Issue.objects.published()
            .prefetch_related("tags")
            .defer("body", "body_html")[:FEED_LENGTH]
        )

    def item_title(self, item: Issue) -> str:
        return item.title

    def item_description(self, item: Issue) -> str:
        body = readable_body(item, paid_access=False)
        html = body.html
        if body.locked:
            url = escape(f"{settings.SITE_URL}{item.get_absolute_url()}")
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
        return f"{settings.SITE_URL}{item.get_absolute_url()}"

    item_guid_is_permalink = True


class IssuesAtomFeed(IssuesFeed):
    feed_type = Atom1Feed

    def subtitle(self, obj: Publication) -> str:
        return self.description(obj)
