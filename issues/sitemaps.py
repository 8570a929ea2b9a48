"""The sitemap: published issues, papers, tags (with a published issue or a paper)
and the index pages."""

from django.contrib.sitemaps import Sitemap
from django.db.models import Exists, OuterRef
from django.urls import reverse

from .models import Issue, Paper, Tag


class IssueSitemap(Sitemap):
    changefreq = "monthly"
    priority = 0.8

    def items(self):
        return Issue.objects.published().listed().only("slug", "updated").order_by("pk")

    def lastmod(self, item: Issue):
        return item.updated


class PaperSitemap(Sitemap):
    changefreq = "monthly"
    priority = 0.5

    def items(self):
        return Paper.objects.only("slug", "updated").order_by("pk")

    def lastmod(self, item: Paper):
        return item.updated


class TagSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.3

    def items(self):
        # A tag's page lists its published issues and its papers: one of them will do.
        return Tag.objects.filter(
            Exists(
                Issue.tags.through.objects.filter(
                    tag=OuterRef("pk"), issue__in=Issue.objects.published().listed()
                )
            )
            | Exists(Paper.tags.through.objects.filter(tag=OuterRef("pk")))
        ).order_by("pk")


class PageSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.6

    def items(self):
        return ["home", "issues:archive", "issues:papers"]

    def location(self, item: str) -> str:
        return reverse(item)


SITEMAPS = {
    "pages": PageSitemap,
    "issues": IssueSitemap,
    "papers": PaperSitemap,
    "tags": TagSitemap,
}
