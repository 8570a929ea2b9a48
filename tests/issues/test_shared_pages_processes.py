"""Changes reach the pages cached by other server processes: a real gunicorn with
two worker processes on the test database, each with its own page cache, and the
changes made here, as the admin or a command on another machine would."""

import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from django.conf import settings

from issues.models import Issue, Paper
from issues.sending import services as sending
from newsletter.models import Publication
from tests.conftest import database_url, wait_for
from tests.factories.issues import IssueFactory, PaperFactory, TagFactory

pytestmark = pytest.mark.django_db(transaction=True)

RECHECK_SECONDS = 0.3
WORKERS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.read().decode()
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "true",
        "QUIRE_VAR_DIR": str(settings.VAR_DIR),
        "QUIRE_PAGE_RECHECK_SECONDS": str(RECHECK_SECONDS),
        "QUIRE_PAGE_CACHE_SECONDS": "600",
        "LOG_LEVEL": "WARNING",
    }
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "newsletter.wsgi:application",
         "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip

    def answers() -> bool:
        try:
            _get(port, "/healthz")
        except OSError:
            return False
        return True

    try:
        wait_for(answers, timeout=60, message="gunicorn")
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()


def _seen_by_every_worker(port, url, present, absent) -> bool:
    """Return whether several requests in a row, spread over the workers, show it."""
    for _ in range(4 * WORKERS):
        page = _get(port, url)
        if (present and present not in page) or (absent and absent in page):
            return False
    return True


def test_every_kind_of_change_reaches_the_other_processes_after_the_recheck(server):
    port = server
    tag = TagFactory(name="Vision", slug="vision")
    paper = PaperFactory(slug="convnext", arxiv_id="2201.03545", title="Old title")
    issue = IssueFactory(
        slug="shared", published=True, title="Shared issue",
        body="Open words [[arxiv:2201.03545]]\n\n<!-- paywall -->\n\nPaid words",
    )  # fmt: skip
    issue.tags.set([tag])
    other = IssueFactory(slug="other", published=True, title="Other issue")
    Publication.load()
    urls = ["/", "/archive/", "/issues/shared/", "/papers/", "/tags/vision/",
            "/feed/", "/papers/convnext/", "/issues/other/"]  # fmt: skip

    def change_and_wait(change, url, present=None, absent=None):
        for path in urls:  # every worker has the page before the change
            for _ in range(2 * WORKERS):
                _get(port, path)
        assert not _seen_by_every_worker(port, url, present, absent)
        change()
        # Seen once the recheck interval has passed (the pages would live 600 s).
        wait_for(
            lambda: _seen_by_every_worker(port, url, present, absent),
            timeout=RECHECK_SECONDS + 5, interval=0.05,
            message=f"{change.__name__} on {url}",
        )  # fmt: skip

    def edit():
        issue.body = "Rewritten words [[arxiv:2201.03545]]"
        issue.save()

    change_and_wait(edit, "/issues/shared/", "Rewritten words", "Open words")

    def paper_edit():
        paper.title = "New title"
        paper.save()

    change_and_wait(paper_edit, "/papers/", "New title", "Old title")

    def tag_edit():
        tag.name = "Computer vision"
        tag.save()

    change_and_wait(tag_edit, "/issues/shared/", "Computer vision")

    def publication_edit():
        publication = Publication.load()
        publication.name = "The Renamed Review"
        publication.save()

    change_and_wait(publication_edit, "/feed/", "The Renamed Review")

    def paywall_change():
        other.access = Issue.Access.PAID
        other.body = "Only for supporters now"
        other.save()

    change_and_wait(paywall_change, "/issues/other/", "for paying supporters")

    def unpublish():
        sending.unpublish_issue(issue=issue)

    change_and_wait(unpublish, "/issues/shared/", "HTTP 404")

    def delete():
        Paper.objects.filter(pk=paper.pk).delete()

    change_and_wait(delete, "/papers/convnext/", "HTTP 404")
