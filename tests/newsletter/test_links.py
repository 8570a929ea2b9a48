"""newsletter.links: the one place absolute addresses are made."""

from newsletter.links import absolute_url, absolutize


def test_absolute_url_puts_a_path_on_site_url_and_keeps_full_urls(settings):
    settings.SITE_URL = "https://news.example"

    assert absolute_url("/papers/convnext/") == "https://news.example/papers/convnext/"
    assert absolute_url("/") == "https://news.example/"
    assert absolute_url("https://arxiv.org/abs/1") == "https://arxiv.org/abs/1"


def test_absolutize_makes_every_link_and_image_absolute_but_not_code(settings):
    settings.SITE_URL = "https://news.example"
    html = (
        '<p><a href="/papers/x/">x</a> <img src="/media/a.png" '
        'srcset="/media/a.png 1x, /media/a@2x.png 2x" alt="">'
        '<a href="https://doi.org/10.1/2">doi</a> <a href="mailto:a@example.org">m</a>'
        '<a href="#fn1">[1]</a> <code>&lt;a href="/not-a-link"&gt;</code>'
        "<abbr title='href=\"/neither\"'>x</abbr></p>"
    )

    assert absolutize(html) == (
        '<p><a href="https://news.example/papers/x/">x</a> '
        '<img src="https://news.example/media/a.png" '
        'srcset="https://news.example/media/a.png 1x, '
        'https://news.example/media/a@2x.png 2x" alt="">'
        '<a href="https://doi.org/10.1/2">doi</a> <a href="mailto:a@example.org">m</a>'
        '<a href="#fn1">[1]</a> <code>&lt;a href="/not-a-link"&gt;</code>'
        "<abbr title='href=\"/neither\"'>x</abbr></p>"
    )


def test_absolutize_resolves_against_the_page_the_html_belongs_to(settings):
    settings.SITE_URL = "https://news.example"
    page = "https://news.example/issues/trends/"
    html = '<a href="#fn1">[1]</a><a href="notes/">notes</a>'

    assert absolutize(html, base=page) == (
        '<a href="#fn1">[1]</a><a href="https://news.example/issues/trends/notes/">'
        "notes</a>"
    )
    assert absolutize(html, base=page, fragments=True).startswith(
        '<a href="https://news.example/issues/trends/#fn1">'
    )
