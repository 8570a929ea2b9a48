"""Feeds are read away from the site: every address in them is absolute."""

import pytest
from django.urls import reverse

from tests.factories.issues import IssueFactory, PaperFactory
from tests.support.links import feed_links

pytestmark = pytest.mark.django_db

BODY = """## Trend of the month

A chart ![chart](/media/chart.png), a [tag](/tags/vision/), a note[^1] and
[[paper:convnext]] inline.

[[arxiv:2201.03545]]

[^1]: The note.
"""


@pytest.mark.parametrize("feed", ["issues:feed_rss", "issues:feed_atom"])
def test_feed_addresses_and_item_links_are_absolute_on_site_url(client, settings, feed):
    settings.SITE_URL = "https://news.example"
    PaperFactory(slug="convnext", arxiv_id="2201.03545", title="ConvNeXt")
    IssueFactory(slug="trends", published=True, body=BODY)

    text = client.get(reverse(feed)).content.decode()
    own, inside = feed_links(text)

    # Requested on http://testserver, yet nothing links there.
    assert "testserver" not in text
    assert "https://news.example/" in own  # the channel's link
    assert reverse(feed) in {url.removeprefix("https://news.example") for url in own}
    assert "https://news.example/issues/trends/" in own
    assert all(url.startswith("https://news.example/") for url in own), own
    assert "https://news.example/media/chart.png" in inside
    assert "https://news.example/papers/convnext/" in inside
    assert "https://news.example/tags/vision/" in inside
    assert "https://news.example/issues/trends/#fn1" in inside
    assert "https://arxiv.org/abs/2201.03545" in inside
    assert all(url.startswith("https://") for url in inside), inside
    # The heading permalink belongs to the web page, not to a feed reader.
    assert "header-anchor" not in text


def test_issue_bibtex_links_the_issue_on_site_url(client, settings):
    settings.SITE_URL = "https://news.example"
    IssueFactory(slug="trends", published=True)

    text = client.get(reverse("issues:issue_bibtex", args=["trends"])).content.decode()

    assert "url = {https://news.example/issues/trends/}" in text
