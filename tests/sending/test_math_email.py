"""End to end: an issue with formulas, sent by a real worker to a real SMTP server,
carries each formula as a stored PNG that the site serves, and its LaTeX in text."""

import re
import struct
from urllib.parse import urlsplit

from issues.sending import services
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers
from tests.sending.test_worker import wait_until_done, worker_env

BODY = r"""Attention weights: $\mathrm{softmax}(QK^\top / \sqrt{d_k})$.

$$
\sum_{i=1}^{n} \frac{1}{i^2} = \frac{\pi^2}{6}
$$

A matrix $\begin{pmatrix} a & b \\ c & d \end{pmatrix}$ and $\alpha$.
"""
FORMULAS = [
    r"\mathrm{softmax}(QK^\top / \sqrt{d_k})",
    r"\sum_{i=1}^{n} \frac{1}{i^2} = \frac{\pi^2}{6}",
    r"\begin{pmatrix} a & b \\ c & d \end{pmatrix}",
    r"\alpha",
]


def test_the_issue_email_carries_each_formula_as_a_served_png_with_latex_alt(
    celery_worker_factory, smtp_server, settings, tmp_path, client
):
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    make_subscribers(3)
    issue = IssueFactory(title="Scaling laws", body=BODY)
    assert "<math" in issue.body_html  # the page and feeds get MathML
    celery_worker_factory(extra_env=worker_env(smtp_server, MEDIA_ROOT=media))

    send = wait_until_done(services.publish_issue(issue=issue))

    assert send.sent_count == 3
    assert len(smtp_server.messages) == 3
    for item in smtp_server.messages:
        html = item.message.get_body(("html",)).get_content()
        text = item.message.get_body(("plain",)).get_content()
        assert "<math" not in html
        images = re.findall(r'<img class="math[^"]*"[^>]*>', html)
        assert len(images) == len(FORMULAS)
        alts = [
            re.search(r'alt="([^"]*)"', tag)[1].replace("&amp;", "&") for tag in images
        ]
        assert alts == FORMULAS
        for tag in images:
            url = re.search(r'src="([^"]*)"', tag)[1]
            assert url.startswith(settings.SITE_URL + "/media/math/")
            response = client.get(urlsplit(url).path)
            assert response.status_code == 200
            assert response["Content-Type"] == "image/png"
            png = b"".join(response.streaming_content)
            width, height = struct.unpack(">II", png[16:24])
            assert f'width="{round(width / 2)}"' in tag
            assert f'height="{round(height / 2)}"' in tag
        assert "$\\mathrm{softmax}(QK^\\top / \\sqrt{d_k})$" in text
        assert "$$\\sum_{i=1}^{n} \\frac{1}{i^2} = \\frac{\\pi^2}{6}$$" in text
        assert "$\\alpha$" in text
    # Drawn once for the whole send, not once per recipient.
    assert len(list((media / "math").iterdir())) == len(FORMULAS)
