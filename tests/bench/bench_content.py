"""The issue page under load, next to a minimal Django view on the same server.

Run: `make bench BENCH_ARGS=content` (or `python -m tests.bench.bench_content`).

Sets up a throwaway PostgreSQL database, quire_bench_content, on BENCH_POSTGRES_URL
(default postgres://postgres@127.0.0.1:5432), with one published issue of 10,000
words citing 30 papers. Starts gunicorn (DEBUG off, as in production) on a free
port, then a load generator in separate processes measures:

- the issue page's median and p95 response time (one client, one at a time);
- requests per second of the issue page and of a minimal Django view (same
  middleware, same server, same run), interleaved in rounds, from clients that
  keep the CSRF cookie the first page set and accept gzip, as browsers do;
  target: the issue page reaches at least 0.75 of the minimal view's rate
  (first visits, without the cookie, are reported too);
- the issue page with the page cache turned off, and answered from the reader's
  cache (If-None-Match -> 304): a cache must never make it slower.

Other work on the machine shows up in the figures: each round's ratio is printed.
"""

from __future__ import annotations

import gzip
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.bench.support import SERVER, drop_database, recreate_database

DB_NAME = "quire_bench_content"
ROOT = Path(__file__).resolve().parent.parent.parent
VAR = ROOT / "var" / "bench-content"
WORDS = 10_000
CITATIONS = 30
ROUND_SECONDS = float(os.environ.get("BENCH_ROUND_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
# Clients in flight at once, spread over two load-generator processes.
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
ISSUE_PATH = "/issues/bench-issue/"
# What every browser sends along.
BROWSER = "Accept-Encoding: gzip, deflate, br\r\n"
MINIMAL_PATH = "/bench/minimal/"


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


def _load_content() -> None:
    from django.utils import timezone

    from issues.models import Issue, Paper, Tag

    tags = [Tag.objects.create(name=f"Topic {n}", slug=f"topic-{n}") for n in range(4)]
    papers = []
    for n in range(CITATIONS):
        paper = Paper.objects.create(
            title=f"A benchmark paper number {n} on efficient attention",
            slug=f"bench-paper-{n}",
            authors=["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"],
            year=2022,
            venue="NeurIPS",
            arxiv_id=f"2205.{n + 10000:05d}",
            code_url="https://example.org/code",
        )
        paper.tags.set(tags[:2])
        papers.append(paper)
    issue = Issue.objects.create(
        title="The benchmark issue",
        slug="bench-issue",
        subtitle="Ten thousand words and thirty papers.",
        body=_issue_body([p.arxiv_id for p in papers]),
        status=Issue.Status.PUBLISHED,
        published_at=timezone.now(),
    )
    issue.tags.set(tags)
    assert issue.citations.count() == CITATIONS, issue.citations.count()
    # A few more issues so the page is not alone in its database.
    for n in range(20):
        Issue.objects.create(
            title=f"Older issue {n}",
            body="Short.",
            status=Issue.Status.PUBLISHED,
            published_at=timezone.now() - timezone.timedelta(days=30 * (n + 1)),
        )
    print(f"issue: {issue.word_count} words, {issue.citations.count()} citations, "
          f"{len(issue.body_html) // 1024} KiB of HTML")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
            status, _ = _get(port, MINIMAL_PATH)
            if status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"gunicorn did not start; see {VAR / 'gunicorn.log'}")


# --- The load generator ---------------------------------------------------------------
def _get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    """Send one GET on a fresh connection; return the status and the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"{headers}\r\n".encode()
        )
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _load_process(port, path, headers, expect, seconds, threads, out) -> None:
    """Hit path from `threads` clients for `seconds`; report completed requests."""
    done, errors = [0] * threads, [0] * threads
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        while time.monotonic() < stop:
            try:
                status, _ = _get(port, path, headers)
            except OSError:
                errors[i] += 1
                continue
            if status == expect:
                done[i] += 1
            else:
                errors[i] += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put((sum(done), sum(errors)))


def _throughput(port: int, path: str, *, headers: str = "", expect: int = 200) -> float:
    """Return requests per second for path at CONCURRENCY clients in 2 processes."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    per_process = max(1, CONCURRENCY // 2)
    procs = [
        ctx.Process(target=_load_process,
                    args=(port, path, headers, expect, ROUND_SECONDS, per_process, out))
        for _ in range(2)
    ]  # fmt: skip
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    results = [out.get(timeout=ROUND_SECONDS + 60) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - start
    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    if errors:
        raise SystemExit(f"{errors} failed requests to {path}")
    return done / elapsed


def _latency(port: int, path: str, n: int = 300) -> list[float]:
    timings = []
    for _ in range(n):
        start = time.perf_counter()
        status, _ = _get(port, path)
        timings.append(time.perf_counter() - start)
        assert status == 200
    return timings


def main() -> int:
    os.environ.update(_env())
    VAR.mkdir(parents=True, exist_ok=True)
    recreate_database(DB_NAME)
    server = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)
        _load_content()
        from django.db import connections

        connections.close_all()

        port = _free_port()
        server = _start_server(port)
        status, body = _get(port, ISSUE_PATH)
        assert status == 200, status
        assert body.count(b'class="paper-card"') == CITATIONS, "cards missing"
        assert body.count(b'class="citation"') == CITATIONS, "citation list missing"

        for path in (ISSUE_PATH, MINIMAL_PATH):  # warm up both workers
            _latency(port, path, 100)
        timings = _latency(port, ISSUE_PATH)
        minimal_timings = _latency(port, MINIMAL_PATH)

        # Readers' browsers keep the CSRF cookie the first page gave them; the
        # rounds send it as a returning reader would (first visits: see below).
        cookie = _csrf_cookie(port) + BROWSER
        etag = _etag(port)
        status, body = _get(port, ISSUE_PATH, cookie)
        assert gzip.decompress(body).count(b'class="paper-card"') == CITATIONS
        # Rounds alternate the views so that noise from other work on the machine
        # hits both alike; the ratio is taken per round, then the median.
        issue_rates, minimal_rates, revalidated_rates = [], [], []
        for _ in range(ROUNDS):
            minimal_rates.append(_throughput(port, MINIMAL_PATH, headers=cookie))
            issue_rates.append(_throughput(port, ISSUE_PATH, headers=cookie))
            # The reader's cache: a conditional GET with the page's ETag gets a 304.
            revalidated_rates.append(
                _throughput(port, ISSUE_PATH, expect=304,
                            headers=f"{cookie}If-None-Match: {etag}\r\n")
            )  # fmt: skip
        # A first visit: no cookie yet, so Django makes a new CSRF secret as well.
        first_visit_rates = [
            _throughput(port, ISSUE_PATH, headers=BROWSER) for _ in range(2)
        ]
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)

        # The same server with the page cache turned off.
        port = _free_port()
        server = _start_server(port, {"QUIRE_PAGE_CACHE_SECONDS": "0"})
        _latency(port, ISSUE_PATH, 50)
        uncached_timings = _latency(port, ISSUE_PATH, 100)
        uncached_rates = [
            _throughput(port, ISSUE_PATH, headers=BROWSER) for _ in range(2)
        ]
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
        drop_database(DB_NAME)

    issue_rps = statistics.median(issue_rates)
    minimal_rps = statistics.median(minimal_rates)
    uncached_rps = statistics.median(uncached_rates)
    revalidated_rate = statistics.median(revalidated_rates)
    first_visit_rps = statistics.median(first_visit_rates)
    ratios = [i / m for i, m in zip(issue_rates, minimal_rates, strict=True)]
    ratio = statistics.median(ratios)
    cache_ok = issue_rps >= uncached_rps
    revalidated_ok = revalidated_rate >= uncached_rps

    def ms(values: list[float]) -> str:
        return (
            f"median {statistics.median(values) * 1000:.2f} ms, "
            f"p95 {statistics.quantiles(values, n=20)[-1] * 1000:.2f} ms"
        )

    print(f"server: gunicorn, {WORKERS} sync workers, PostgreSQL, DEBUG off; "
          f"load: {CONCURRENCY} clients in 2 processes, {ROUNDS} rounds of "
          f"{ROUND_SECONDS:g}s each, a new connection per request, clients keep "
          f"their CSRF cookie and accept gzip, as browsers do")  # fmt: skip
    print(f"issue page ({WORDS} words, {CITATIONS} citations): {ms(timings)}; "
          f"minimal view: {ms(minimal_timings)}")  # fmt: skip
    print(f"throughput: issue page {issue_rps:.0f} req/s, minimal view "
          f"{minimal_rps:.0f} req/s, ratio {ratio:.2f} (target >= 0.75) -> "
          f"{'OK' if ratio >= 0.75 else 'BELOW TARGET'}")  # fmt: skip
    print(f"rounds: issue {[round(r) for r in issue_rates]}, "
          f"minimal {[round(r) for r in minimal_rates]}, "
          f"ratio per round {[round(r, 2) for r in ratios]}")  # fmt: skip
    print(f"first visits (no cookie yet): issue page {first_visit_rps:.0f} req/s, "
          f"{first_visit_rps / minimal_rps:.2f} of the minimal view")  # fmt: skip
    print(f"page cache off (QUIRE_PAGE_CACHE_SECONDS=0): {ms(uncached_timings)}, "
          f"{uncached_rps:.0f} req/s; with the cache {issue_rps / uncached_rps:.1f}x "
          f"-> {'OK' if cache_ok else 'CACHE MADE IT SLOWER'}")  # fmt: skip
    print(f"revalidated from the reader's cache (If-None-Match -> 304): "
          f"{revalidated_rate:.0f} req/s -> "
          f"{'OK' if revalidated_ok else 'SLOWER THAN NO CACHE'}")  # fmt: skip
    return 0


def _csrf_cookie(port: int) -> str:
    """Return the Cookie header a browser sends after its first issue page."""
    for line in _head(port).split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"set-cookie" and b"csrftoken=" in value:
            return f"Cookie: {value.split(b';')[0].strip().decode()}\r\n"
    raise SystemExit("the issue page set no CSRF cookie")


def _head(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {ISSUE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
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
