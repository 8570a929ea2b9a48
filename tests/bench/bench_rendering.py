"""Rendering a body with 20,000 paper references, and refusing hostile bodies.

Run: `make bench BENCH_ARGS=rendering` (or `python -m tests.bench.bench_rendering`).
Uses a throwaway database, quire_bench_rendering, on BENCH_POSTGRES_URL (default
postgres://postgres@127.0.0.1:5432), created and dropped here.

Measures, as the median of a few runs:

- render_issue_body of a body citing 20,000 papers (10,000 by arXiv id, half of
  them stored with a version, and 10,000 by DOI), ten references a paragraph;
  target: under a second, every reference resolved, in one query;
- the limits' scan (check_markdown) of a 1,000,000-character body that passes;
- the time to refuse each hostile body (60 KB of nested emphasis, 50,000 nested
  <div>, 20,000 unclosed "[[arxiv:"), which reaches no parser.
"""

import os
import statistics
import sys
import time
from pathlib import Path

from tests.bench.support import SERVER, drop_database, recreate_database

DB_NAME = "quire_bench_rendering"
ROOT = Path(__file__).resolve().parent.parent.parent
REFERENCES = 20_000
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def _median_seconds(func, runs: int = RUNS) -> tuple[float, object]:
    """Return the median wall time of func and its result; print its CPU time."""
    times, cpu, result = [], [], None
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = func()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    # Other work on the machine slows the wall time; this process's CPU time
    # (which leaves out the database server's) moves less.
    print(f"    [{statistics.median(cpu):.3f} s of CPU in this process]")
    return statistics.median(times), result


def _arxiv_id(n: int) -> str:
    return f"23{n // 10_000 + 1:02d}.{n % 10_000:05d}"


def main() -> int:
    os.environ.update(
        {
            "DATABASE_URL": f"{SERVER}/{DB_NAME}",
            "DEBUG": "false",
            "SECRET_KEY": "bench-only",
            "ALLOWED_HOSTS": "localhost",
            "QUIRE_VAR_DIR": str(ROOT / "var" / "bench-rendering"),
            "DJANGO_SETTINGS_MODULE": "newsletter.settings",
        }
    )
    recreate_database(DB_NAME)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from issues.models import Paper
        from issues.rendering import render_issue_body, resolve_references
        from issues.rendering.limits import ContentTooLarge, check_markdown

        call_command("migrate", verbosity=0)
        half = REFERENCES // 2
        Paper.objects.bulk_create(
            [
                Paper(
                    title=f"Paper {n}",
                    slug=f"paper-{n}",
                    authors=["Ada Lovelace", "Alan Turing"],
                    year=2023,
                    # Half stored with a version, as pasted from arXiv.
                    arxiv_id=_arxiv_id(n) + ("v2" if n % 2 else ""),
                )
                for n in range(half)
            ]
            + [
                Paper(title=f"Paper {n}", slug=f"paper-{n}", doi=f"10.5555/{n}")
                for n in range(half, REFERENCES)
            ],
            batch_size=5_000,
        )
        refs = [f"[[arxiv:{_arxiv_id(n)}]]" for n in range(half)]
        refs += [f"[[doi:10.5555/{n}]]" for n in range(half, REFERENCES)]
        body = "\n\n".join(
            "See " + ", ".join(refs[i : i + 10]) + "." for i in range(0, REFERENCES, 10)
        )

        render_issue_body(body)  # warm up: imports, the parser, the database
        with CaptureQueriesContext(connection) as queries:
            seconds, rendered = _median_seconds(lambda: render_issue_body(body))
        resolved = len(rendered.papers)
        print(
            f"render_issue_body, {REFERENCES:,} references to {resolved:,} papers "
            f"({len(body):,} characters):  {seconds:6.3f} s  "
            f"({len(queries) // RUNS} query per render)"
        )
        verdict = "meets" if seconds < 1 and resolved == REFERENCES else "MISSES"
        print(f"  {verdict} the target: under 1 s, every reference resolved")
        lookup, papers = _median_seconds(
            lambda: resolve_references(rendered.references)
        )
        print(f"  of which the lookup of {len(papers):,} papers (one query, rows "
              f"made into objects): {lookup:6.3f} s")  # fmt: skip
        seconds, _ = _median_seconds(lambda: render_issue_body(body, papers=papers))
        print(f"  render_issue_body with those papers given: {seconds:6.3f} s")

        # The same number of references, to a library of 1,000 papers.
        few = "\n\n".join(
            "See " + ", ".join(refs[(i + j) % 1_000] for j in range(10)) + "."
            for i in range(0, REFERENCES, 10)
        )
        with CaptureQueriesContext(connection) as queries:
            seconds, rendered = _median_seconds(lambda: render_issue_body(few))
        print(
            f"render_issue_body, {REFERENCES:,} references to "
            f"{len(rendered.papers):,} papers:  {seconds:6.3f} s  "
            f"({len(queries) // RUNS} query per render)"
        )

        long_body = ("A sentence of a long research issue, *with emphasis*. " * 18
                     + "\n\n") * 1_000  # fmt: skip
        long_body = long_body[:1_000_000]
        seconds, _ = _median_seconds(lambda: check_markdown(long_body))
        print(f"check_markdown, {len(long_body):,} characters (passes): "
              f"{seconds:6.3f} s")  # fmt: skip

        hostile = {
            "60 KB of nested emphasis": "*a " * 10_000 + "b" + " a*" * 10_000,
            "50,000 nested <div>": "<div>" * 50_000,
            '20,000 unclosed "[[arxiv:"': "[[arxiv:" * 20_000,
        }
        for name, text in hostile.items():
            seconds, rendered = _median_seconds(
                lambda text=text: render_issue_body(text)
            )
            refused = "content-refused" in rendered.body_html
            try:
                check_markdown(text)
                why = "passes the limits"
            except ContentTooLarge:
                why = "refused"
            print(f"render_issue_body, {name}: {seconds:6.3f} s ({why}"
                  f"{', shown as a notice' if refused else ''})")  # fmt: skip
        connection.close()
    finally:
        drop_database(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
