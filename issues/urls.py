from django.contrib.sitemaps.views import sitemap
from django.urls import path

from . import citing_views, editor, feeds, library_views, views
from .shared_pages import shared_page
from .sitemaps import SITEMAPS

app_name = "issues"

urlpatterns = [
    path("archive/", views.archive, name="archive"),
    path("issues/<slug:slug>/", views.issue_detail, name="issue"),
    path("issues/<slug:slug>/bibtex", views.issue_bibtex, name="issue_bibtex"),
    *[
        path(
            f"issues/<slug:slug>/cite.{fmt}",
            citing_views.issue_citation,
            {"fmt": fmt},
            name=f"issue_cite_{fmt}",
        )
        for fmt in citing_views.FORMATS
    ],
    path(
        "issues/<slug:slug>/share/mastodon/",
        views.share_mastodon,
        name="share_mastodon",
    ),
    path("papers/", views.papers, name="papers"),
    path("papers/top/<int:year>/", views.top_papers, name="top_papers"),
    path("papers/<slug:slug>/", views.paper_detail, name="paper"),
    path("papers/<slug:slug>/bibtex", views.paper_bibtex, name="paper_bibtex"),
    path("account/papers/", library_views.papers, name="library"),
    path("account/papers/save/", library_views.save, name="library_save"),
    path("account/papers/remove/", library_views.remove, name="library_remove"),
    path("account/papers/papers.bib", library_views.export, name="library_bibtex"),
    path("tags/<slug:slug>/", views.tag_detail, name="tag"),
    path(
        "tags/<slug:slug>/feed/",
        shared_page()(feeds.TagIssuesFeed()),
        name="tag_feed_rss",
    ),
    path(
        "tags/<slug:slug>/feed/atom/",
        shared_page()(feeds.TagIssuesAtomFeed()),
        name="tag_feed_atom",
    ),
    path("search/", views.search, name="search"),
    path("feed/", shared_page()(feeds.IssuesFeed()), name="feed_rss"),
    path("feed/atom/", shared_page()(feeds.IssuesAtomFeed()), name="feed_atom"),
    path(
        "feed/private/<str:token>/", feeds.PrivateIssuesFeed(), name="private_feed_rss"
    ),
    path(
        "feed/private/<str:token>/atom/",
        feeds.PrivateIssuesAtomFeed(),
        name="private_feed_atom",
    ),
    path("sitemap.xml", shared_page()(sitemap), {"sitemaps": SITEMAPS}, name="sitemap"),
    path("robots.txt", views.robots_txt, name="robots"),
    # The editor's live preview and image uploads (staff only).
    path("markdownx/markdownify/", editor.markdownify, name="markdownx_markdownify"),
    path("markdownx/upload/", editor.upload_image, name="markdownx_upload"),
]
