"""Every reader page under load, next to the issue page and a minimal Django view.

Run: `make bench BENCH_ARGS=content` (or `python -m tests.bench.bench_content`).

Sets up a throwaway PostgreSQL database, quire_bench_content, on BENCH_POSTGRES_URL
(default postgres://postgres@127.0.0.1:5432), with one published issue of 10,000
words citing 30 papers, 50 more issues, 300 papers and 12 tags (a year of ranked
"top papers" among them). Starts gunicorn (DEBUG off, as in production) on a free
port, then a load generator in separate processes measures:

- the issue page's median and p95 response time (one client, one at a time);
- requests per second of the minimal view, the issue page and every other reader
  page (home, archive and its second page, papers and its filters, a paper, top
  papers, a tag, search, both feeds, a tag's feed, the sitemap, BibTeX), interleaved
  in rounds on the same server in the same run, from clients that keep their CSRF
  cookie and accept gzip, as browsers do; targets: the issue page at least 0.75 of
  the minimal view's rate, every page at least 0.75 of the issue page's, search 0.5;
- the same pages as first visits (no cookie at all): the copy a CDN may keep;
- the issue page with the page cache turned off, and answered from the reader's
  cache (If-None-Match -> 304): a cache must never make it slower;
- an issue with MATH_FORMULAS formulas: how long saving it (rendering its MathML)
  takes, target under 2 s; drawing its email images once, and again once they are
  stored; and its page's rate next to the issue page's (stored HTML: the same).

Other work on the machine shows up in the figures: ratios are taken per round
(pages measured one after another within it), then the median.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.support import (
    SERVER,
    drop_database,
    free_port,
    get,
    recreate_database,
    throughput,
)

# Another name lets two runs share the PostgreSQL server.
DB_NAME = os.environ.get("BENCH_CONTENT_DB", "quire_bench_content")
ROOT = Path(__file__).resolve().parent.parent.parent
VAR = ROOT / "var" / "bench-content"
# The analytics buffer the servers append each counted page view to (a file here).
HITS = VAR / "analytics" / "hits.jsonl"
WORDS = 10_000
CITATIONS = 30
ROUND_SECONDS = float(os.environ.get("BENCH_ROUND_SECONDS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ISSUES = 50
PAPERS = 300
TAGS = 12
# Clients in flight at once, spread over two load-generator processes.
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
ISSUE_PATH = "/issues/bench-issue/"
MATH_PATH = "/issues/bench-math/"
MATH_FORMULAS = 100
MATH_SAVE_TARGET = 2.0  # seconds
# What every browser sends along; a browser's user agent, so that each view of an
# issue or a paper is counted (issues/analytics), as a reader's is.
BROWSER = (
    "Accept-Encoding: gzip, deflate, br\r\n"
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
)
MINIMAL_PATH = "/bench/minimal/"
# Every reader page, by name; the target is a share of the issue page's rate.
PAGES = {
    "home": "/",
    "archive": "/archive/",
    "archive page 2": "/archive/?page=2",
    "papers": "/papers/",
    "papers by year": "/papers/?year=2022",
    "papers by tag": "/papers/?tag=topic-3",
    "a paper": "/papers/bench-paper-0/",
    "top papers": "/papers/top/2022/",
    "a tag": "/tags/topic-1/",
    "search": "/search/?q=attention+vision",
    "RSS feed": "/feed/",
    "Atom feed": "/feed/atom/",
    "a tag's feed": "/tags/topic-1/feed/",
    "sitemap": "/sitemap.xml",
    "paper BibTeX": "/papers/bench-paper-0/bibtex",
    "issue BibTeX": ISSUE_PATH + "bibtex",
    "math issue": MATH_PATH,
}
TARGETS = {"search": 0.5}
TARGET = 0.75


def _env() -> dict[str, str]:
    return {
        "DATABASE_URL": f"{SERVER}/{DB_NAME}",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "QUIRE_VAR_DIR": str(VAR),
        "STATIC_ROOT": str(VAR / "static"),
        "SITE_URL": "http://127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "newsletter.settings",
    }


# --- The server side ------------------------------------------------------------------
def minimal_view(request):
    """The baseline: a Django view that does nothing but answer."""
    from django.http import HttpResponse

    return HttpResponse("ok", content_type="text/plain")


def bench_application():
    """Return Quire's WSGI app with the baseline view added (gunicorn factory)."""
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.urls import path

    from newsletter import urls

    urls.urlpatterns.append(path(MINIMAL_PATH.strip("/") + "/", minimal_view))
    return get_wsgi_application()


# --- Setup ----------------------------------------------------------------------------
def _issue_body(arxiv_ids: list[str]) -> str:
    """Return Markdown of exactly WORDS words of prose plus 30 references."""
    sentence = [
        "scaling", "the", "training", "recipe", "rather", "than", "the",
        "architecture", "explains", "much", "of", "the", "gap", "between",
        "convolutional", "and", "attention", "based", "vision", "backbones",
    ]  # fmt: skip
    paragraphs, words, section = [], 0, 0
    per_citation = WORDS // len(arxiv_ids)
    refs = iter(arxiv_ids)
    while words < WORDS:
        if words // per_citation >= section and section < len(arxiv_ids):
            paragraphs.append(f"## Section {section + 1}")
            paragraphs.append(f"[[arxiv:{next(refs)}]]")
            if section % 5 == 0:
                paragraphs.append(
                    "```python\nfor step in range(10):\n    loss = step\n```"
                )
            section += 1
        take = min(60, WORDS - words)
        text = " ".join(sentence[i % len(sentence)] for i in range(words, words + take))
        paragraphs.append(text[0].upper() + text[1:] + ".")
        words += take
    return "\n\n".join(paragraphs)


def _math_body() -> str:
    """Return Markdown with MATH_FORMULAS distinct formulas, inline and display."""
    kinds = [
        r"\frac{{a_{n}}}{{b_{n} + {n}}}",
        r"\sum_{{i=1}}^{{{n}}} \alpha_i x_i^2",
        r"\begin{{pmatrix}} {n} & 0 \\ 0 & \lambda_{n} \end{{pmatrix}}",
        r"\int_0^{{{n}}} e^{{-\beta t}} \, dt",
        r"\hat{{\theta}}_{n} = \arg\min_\theta \mathcal{{L}}(\theta)",
    ]
    parts = []
    for n in range(MATH_FORMULAS):
        latex = kinds[n % len(kinds)].format(n=n)
        if n % 4 == 3:
            parts.append(f"$$\n{latex}\n$$")
        else:
            parts.append(f"Formula {n} reads ${latex}$ in a sentence.")
    return "\n\n".join(parts)


def _time_math_issue() -> dict[str, float]:
    """Save the issue with formulas; return how long rendering and drawing took."""
    from django.utils import timezone

    from issues.models import Issue
    from issues.rendering.mathimages import math_as_images

    start = time.perf_counter()
    issue = Issue.objects.create(
        title="The benchmark issue with formulas",
        slug="bench-math",
        body=_math_body(),
        status=Issue.Status.PUBLISHED,
        published_at=timezone.now(),
    )
    saved = time.perf_counter() - start
    assert issue.body_html.count("<math ") == MATH_FORMULAS, "formulas missing"
    start = time.perf_counter()
    email = math_as_images(issue.body_html)
    drawn = time.perf_counter() - start
    assert email.count('<img class="math') == MATH_FORMULAS, "images missing"
    start = time.perf_counter()
    math_as_images(issue.body_html)
    stored = time.perf_counter() - start
    return {"save": saved, "draw": drawn, "stored": stored}


def _load_content() -> dict[str, float]:
    from django.utils import timezone

    from issues.models import Citation, Issue, Paper, Tag
    from issues.services import record_citations

    tags = [Tag.objects.create(name=f"Topic {n}", slug=f"topic-{n}")
            for n in range(TAGS)]  # fmt: skip
    authors = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"]
    papers = Paper.objects.bulk_create(
        Paper(
            title=f"A benchmark paper number {n} on efficient attention",
            slug=f"bench-paper-{n}", authors=authors, year=2018 + n % 6,
            venue="NeurIPS", arxiv_id=f"2205.{n + 10000:05d}",
            code_url="https://example.org/code",
            summary_html="<p>What it shows, in two sentences of summary.</p>",
        )
        for n in range(PAPERS)
    )  # fmt: skip
    through = Paper.tags.through
    through.objects.bulk_create(
        through(paper_id=p.pk, tag_id=tags[(i + k) % TAGS].pk)
        for i, p in enumerate(papers)
        for k in range(2)
    )
    cited = [p for p in papers if p.year == 2022][:CITATIONS]
    issue = Issue.objects.create(
        title="The benchmark issue",
        slug="bench-issue",
        subtitle="Ten thousand words and thirty papers.",
        body=_issue_body([p.arxiv_id for p in cited]),
        status=Issue.Status.PUBLISHED,
        published_at=timezone.now(),
    )
    record_citations(issue=issue)
    issue.tags.set(tags[:4])
    # Its citations rank the year's top papers.
    for rank, citation in enumerate(issue.citations.order_by("position")[:10], 1):
        Citation.objects.filter(pk=citation.pk).update(rank=rank)
    assert issue.citations.count() == CITATIONS, issue.citations.count()
    # A year and more of older issues, each citing a few papers.
    for n in range(ISSUES):
        refs = " ".join(f"[[arxiv:{papers[(n * 5 + k) % PAPERS].arxiv_id}]]"
                        for k in range(5))  # fmt: skip
        older = Issue.objects.create(
            title=f"Older issue {n} on attention and vision",
            subtitle="A month of papers.",
            body=f"Attention and vision this month. {refs}\n\n" * 20,
            status=Issue.Status.PUBLISHED,
            published_at=timezone.now() - timezone.timedelta(days=7 * (n + 1)),
        )
        record_citations(issue=older)
        older.tags.set(tags[n % TAGS : n % TAGS + 3])
    print(f"content: {Issue.objects.count()} issues, {Paper.objects.count()} papers, "
          f"{Tag.objects.count()} tags, {Citation.objects.count()} citations; "
          f"the issue: {issue.word_count} words, {issue.citations.count()} "
          f"citations, {len(issue.body_html) // 1024} KiB of HTML")  # fmt: skip
    return _time_math_issue()


def _start_server(port: int, extra_env: dict | None = None) -> subprocess.Popen:
    log = open(VAR / "gunicorn.log", "ab")  # noqa: SIM115 - lives with the server
    app = "tests.bench.bench_content:bench_application()"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--workers", str(WORKERS),
         "--bind", f"127.0.0.1:{port}", "--worker-class", "sync",
         "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **_env(), **(extra_env or {})},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status, _ = get(port, MINIMAL_PATH)
            if status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"gunicorn did not start; see {VAR / 'gunicorn.log'}")


def _buffered_views() -> int:
    """How many page views the servers appended to the analytics buffer."""
    if not HITS.exists():
        return 0
    with open(HITS, "rb") as handle:
        return sum(1 for line in handle if b'"k":"view"' in line)


# --- The load generator (tests/bench/support.py) ------------------------------------
def _throughput(port: int, path: str, *, headers: str = "", expect: int = 200) -> float:
    """Return requests per second for path at CONCURRENCY clients in 2 processes."""
    rate, _ = throughput(
        port, path, headers=headers, expect=expect,
        seconds=ROUND_SECONDS, concurrency=CONCURRENCY,
    )  # fmt: skip
    return rate


def _latency(port: int, path: str, n: int = 300) -> list[float]:
    timings = []
    for _ in range(n):
        start = time.perf_counter()
        status, _ = get(port, path)
        timings.append(time.perf_counter() - start)
        assert status == 200
    return timings


def main() -> int:
    os.environ.update(_env())
    VAR.mkdir(parents=True, exist_ok=True)
    # Formula images of an earlier run: drawing is measured from none.
    shutil.rmtree(VAR / "media" / "math", ignore_errors=True)
    recreate_database(DB_NAME)
    server = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)
        math_times = _load_content()
        from django.db import connections

        connections.close_all()

        HITS.unlink(missing_ok=True)  # the views a previous run buffered
        port = free_port()
        server = _start_server(port)
        status, body = get(port, ISSUE_PATH)
        assert status == 200, status
        assert body.count(b'class="paper-card"') == CITATIONS, "cards missing"
        assert body.count(b'class="citation"') == CITATIONS, "citation list missing"
        for name, path in PAGES.items():
            status, body = get(port, path)
            assert status == 200, (name, status)
        assert b"benchmark paper" in get(port, PAGES["search"])[1], "no results"

        for path in (ISSUE_PATH, MINIMAL_PATH):  # warm up both workers
            _latency(port, path, 100)
        timings = _latency(port, ISSUE_PATH)
        minimal_timings = _latency(port, MINIMAL_PATH)

        # Returning readers' browsers keep the CSRF cookie their first form got
        # them (from /csrf/); the rounds send it (first visits: see below).
        cookie = _csrf_cookie(port) + BROWSER
        etag = _etag(port)
        status, body = get(port, ISSUE_PATH, cookie)
        assert gzip.decompress(body).count(b'class="paper-card"') == CITATIONS
        # Rounds take every page one after another, so that noise from other work
        # on the machine hits all alike; ratios are taken per round.
        returning = _rounds(port, cookie)
        first_visits = _rounds(port, BROWSER, rounds=max(1, ROUNDS - 1))
        views = _buffered_views()
        assert views > 0, "no issue or paper view was counted"
        revalidated_rates = [
            _throughput(port, ISSUE_PATH, expect=304,
                        headers=f"{cookie}If-None-Match: {etag}\r\n")
            for _ in range(2)
        ]  # fmt: skip
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)

        # The same server with the page cache turned off.
        port = free_port()
        server = _start_server(port, {"QUIRE_PAGE_CACHE_SECONDS": "0"})
        _latency(port, ISSUE_PATH, 50)
        uncached_timings = _latency(port, ISSUE_PATH, 100)
        uncached_rates = [
            _throughput(port, ISSUE_PATH, headers=BROWSER) for _ in range(2)
        ]
        uncached_pages = {
            name: _throughput(port, PAGES[name], headers=BROWSER)
            for name in ("home", "papers", "search")
        }
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
        drop_database(DB_NAME)

    issue_rps = statistics.median(returning["issue page"])
    minimal_rps = statistics.median(returning["minimal view"])
    uncached_rps = statistics.median(uncached_rates)
    revalidated_rate = statistics.median(revalidated_rates)
    ratio = _median_ratio(returning, "issue page", "minimal view")
    cache_ok = issue_rps >= uncached_rps
    revalidated_ok = revalidated_rate >= uncached_rps

    def ms(values: list[float]) -> str:
        return (
            f"median {statistics.median(values) * 1000:.2f} ms, "
            f"p95 {statistics.quantiles(values, n=20)[-1] * 1000:.2f} ms"
        )

    print(f"server: gunicorn, {WORKERS} sync workers, PostgreSQL, DEBUG off; "
          f"load: {CONCURRENCY} clients in 2 processes, {ROUNDS} rounds of "
          f"{ROUND_SECONDS:g}s per page, a new connection per request, clients "
          f"accept gzip and send a browser's user agent (views counted)")  # fmt: skip
    print(f"issue page ({WORDS} words, {CITATIONS} citations): {ms(timings)}; "
          f"minimal view: {ms(minimal_timings)}")  # fmt: skip
    print(f"throughput: issue page {issue_rps:.0f} req/s, minimal view "
          f"{minimal_rps:.0f} req/s, ratio {ratio:.2f} (target >= 0.75) -> "
          f"{'OK' if ratio >= 0.75 else 'BELOW TARGET'}")  # fmt: skip
    failed = 0
    for title, results in (("returning readers (their CSRF cookie kept)", returning),
                           ("first visits (no cookie: what a CDN may keep)",
                            first_visits)):  # fmt: skip
        print(f"{title}:")
        print(f"  {'page':<16} {'req/s':>7} {'/issue':>7} {'/minimal':>9}  target")
        for name, rates in results.items():
            to_issue = _median_ratio(results, name, "issue page")
            to_minimal = _median_ratio(results, name, "minimal view")
            target = TARGETS.get(name, TARGET)
            verdict = ""
            if name not in ("issue page", "minimal view"):
                ok = to_issue >= target
                failed += not ok
                verdict = f">= {target:.2f} {'OK' if ok else 'BELOW TARGET'}"
            print(f"  {name:<16} {statistics.median(rates):>7.0f} {to_issue:>7.2f} "
                  f"{to_minimal:>9.2f}  {verdict}")  # fmt: skip
    print(f"page cache off (QUIRE_PAGE_CACHE_SECONDS=0): issue page "
          f"{ms(uncached_timings)}, {uncached_rps:.0f} req/s; with the cache "
          f"{issue_rps / uncached_rps:.1f}x -> "
          f"{'OK' if cache_ok else 'CACHE MADE IT SLOWER'}; "
          + ", ".join(f"{name} {rate:.0f} req/s"
                      for name, rate in uncached_pages.items()))  # fmt: skip
    print(f"revalidated from the reader's cache (If-None-Match -> 304): "
          f"{revalidated_rate:.0f} req/s -> "
          f"{'OK' if revalidated_ok else 'SLOWER THAN NO CACHE'}")  # fmt: skip
    print(f"issue and paper views counted during the rounds (buffered): {views}")
    math_ok = math_times["save"] < MATH_SAVE_TARGET
    failed += not math_ok
    print(f"issue with {MATH_FORMULAS} formulas: saved (rendered to MathML) in "
          f"{math_times['save']:.2f} s (target < {MATH_SAVE_TARGET:g} s) -> "
          f"{'OK' if math_ok else 'BELOW TARGET'}; its email images drawn in "
          f"{math_times['draw']:.2f} s, {math_times['stored'] * 1000:.0f} ms once "
          f"stored; its page: see 'math issue' above")  # fmt: skip
    print(f"pages below target: {failed}")
    return 0


def _rounds(port: int, headers: str, rounds: int = ROUNDS) -> dict[str, list[float]]:
    """Return each page's req/s per round: the minimal view, the issue, the rest."""
    paths = {"minimal view": MINIMAL_PATH, "issue page": ISSUE_PATH, **PAGES}
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            rates[name].append(_throughput(port, path, headers=headers))
    return rates


def _median_ratio(results: dict[str, list[float]], name: str, to: str) -> float:
    return statistics.median(
        a / b for a, b in zip(results[name], results[to], strict=True)
    )


def _csrf_cookie(port: int) -> str:
    """Return the Cookie header a browser sends once it has a CSRF cookie."""
    for line in _head(port, "/csrf/").split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"set-cookie" and b"csrftoken=" in value:
            return f"Cookie: {value.split(b';')[0].strip().decode()}\r\n"
    raise SystemExit("/csrf/ set no CSRF cookie")


def _head(port: int, path: str = ISSUE_PATH) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
    return data.split(b"\r\n\r\n")[0]


def _etag(port: int) -> str:
    for line in _head(port).split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"etag":
            return value.strip().decode()
    raise SystemExit("the issue page sent no ETag")


if __name__ == "__main__":
    sys.exit(main())
