"""Import 100,000 subscribers into PostgreSQL, next to a raw COPY of the same rows.

Run: `make bench BENCH_ARGS=import` (or `python -m tests.bench.bench_import`).
Uses a throwaway database, quire_bench_import, on BENCH_POSTGRES_URL (default
postgres://postgres@127.0.0.1:5432), created and dropped here.
"""

import io
import os
import sys
import time
from pathlib import Path

from tests.bench.support import SERVER, drop_database, recreate_database

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
DB_NAME = "quire_bench_import"
ROOT = Path(__file__).resolve().parent.parent.parent


def _generate_csv(path: Path, *, labels: bool = False) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,labels\n" if labels else "email,name\n")
        for n in range(ROWS):
            # A few thousand domains and mixed case, as in a real list.
            line = f"Reader.{n}@Example{n % 3000}.org,Reader {n}"
            if labels:
                line += f",group {n % 20};cohort {n % 7}"
            out.write(line + "\n")


def main() -> int:
    os.environ.update(
        {
            "DATABASE_URL": f"{SERVER}/{DB_NAME}",
            "DEBUG": "false",
            "SECRET_KEY": "bench-only",
            "ALLOWED_HOSTS": "localhost",
            "QUIRE_VAR_DIR": str(ROOT / "var" / "bench-import"),
            "DJANGO_SETTINGS_MODULE": "newsletter.settings",
        }
    )
    recreate_database(DB_NAME)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from subscribers.importing import import_subscribers
        from subscribers.models import Subscriber

        call_command("migrate", verbosity=0)
        csv_path = Path(os.environ["QUIRE_VAR_DIR"]) / "bench-import.csv"
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        _generate_csv(csv_path)

        start = time.perf_counter()
        with csv_path.open(encoding="utf-8", newline="") as stream:
            report = import_subscribers(stream=stream, format="csv", filename="bench")
        import_seconds = time.perf_counter() - start
        assert report.created_total == ROWS, report.summary()
        assert Subscriber.objects.count() == ROWS

        start = time.perf_counter()
        with csv_path.open(encoding="utf-8", newline="") as stream:
            again = import_subscribers(stream=stream, format="csv", filename="bench")
        reimport_seconds = time.perf_counter() - start
        assert again.existing == ROWS and again.created_total == 0

        # The same addresses with a labels column (two labels a row, out of 20),
        # into two newsletters and with one label for every row: everything that
        # places subscribers, on rows that exist already.
        from newsletter.models import Newsletter

        labelled_path = csv_path.with_name("bench-import-labels.csv")
        _generate_csv(labelled_path, labels=True)
        chosen = [
            Newsletter.default().pk,
            Newsletter.objects.create(name="Second", slug="second").pk,
        ]
        start = time.perf_counter()
        with labelled_path.open(encoding="utf-8", newline="") as stream:
            placed = import_subscribers(
                stream=stream,
                format="csv",
                filename="bench",
                newsletters=chosen,
                labels=["bench"],
            )
        placed_seconds = time.perf_counter() - start
        assert placed.existing == ROWS and placed.labelled == 3 * ROWS
        assert placed.joined == ROWS  # the first newsletter they had already

        # The same rows, as stored, into a table of the same shape (same columns,
        # constraints and indexes), by one raw COPY of ready-made text.
        table = Subscriber._meta.db_table
        columns = [
            f.column for f in Subscriber._meta.concrete_fields if f.column != "id"
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE bench_copy (LIKE {table} INCLUDING ALL)"  # noqa: S608
            )
            buffer = io.BytesIO()
            with cursor.cursor.copy(
                f"COPY (SELECT {', '.join(columns)} FROM {table}) TO STDOUT"  # noqa: S608
            ) as copy:
                for chunk in copy:
                    buffer.write(chunk)
            data = buffer.getvalue()
        with connection.cursor() as cursor:
            start = time.perf_counter()
            with cursor.cursor.copy(
                f"COPY bench_copy ({', '.join(columns)}) FROM STDIN"
            ) as copy:
                copy.write(data)
            copy_seconds = time.perf_counter() - start
            cursor.execute("SELECT COUNT(*) FROM bench_copy")
            assert cursor.fetchone()[0] == ROWS
            # For scale: the same COPY into a bare table (no keys, no indexes).
            cursor.execute(
                f"CREATE TABLE bench_bare (LIKE {table} "
                "INCLUDING DEFAULTS INCLUDING IDENTITY)"
            )
            start = time.perf_counter()
            with cursor.cursor.copy(
                f"COPY bench_bare ({', '.join(columns)}) FROM STDIN"
            ) as copy:
                copy.write(data)
            bare_seconds = time.perf_counter() - start

        import_rate = ROWS / import_seconds
        copy_rate = ROWS / copy_seconds
        print(f"rows: {ROWS:,} (PostgreSQL {connection.pg_version // 10000})")
        print(
            f"import_subscribers (new rows):      {import_seconds:6.2f} s  "
            f"{import_rate:10,.0f} rows/s"
        )
        print(
            f"import_subscribers (all existing):  {reimport_seconds:6.2f} s  "
            f"{ROWS / reimport_seconds:10,.0f} rows/s"
        )
        print(
            f"import_subscribers (existing, labels column, 2 newsletters, a label): "
            f"{placed_seconds:6.2f} s  {ROWS / placed_seconds:10,.0f} rows/s"
        )
        print(
            f"raw COPY, same rows, same shape:    {copy_seconds:6.2f} s  "
            f"{copy_rate:10,.0f} rows/s"
        )
        print(
            f"raw COPY into a bare table:         {bare_seconds:6.2f} s  "
            f"{ROWS / bare_seconds:10,.0f} rows/s  (no indexes; for scale only)"
        )
        ratio = import_rate / copy_rate
        verdict = "meets" if ratio >= 0.25 else "BELOW"
        print(f"import / COPY: {ratio:.2f} ({verdict} the 0.25 target)")
        connection.close()
    finally:
        drop_database(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
