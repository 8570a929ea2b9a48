"""Benchmark: one issue (~20 KB) sent end to end to 10,000 and 100,000 subscribers.

PostgreSQL + Redis, real Celery worker processes (``--pool=solo``, so one worker is
one sending process) and an SMTP sink in its own process. In the same run, the raw
rate of plain smtplib sending a prepared message of the same size to the same sink
over the same number of connections, and of a pipelining asyncio client (MAIL, RCPT
and DATA in one flight) over the same connections. Prints messages per second, the
ratios to both and each worker's peak memory (VmHWM).

Relay mode: the sink answers every command SINK_DELAY_MS milliseconds after it
arrived (a relay that far away); BENCH_SEND_DELAYS=0,30,100 runs each delay in turn.
With a delay the default size is 10,000 subscribers and the raw and reference
clients send at most BENCH_SEND_BASELINE messages (default 4,000): their rates are
steady and sending more only takes longer. Each worker keeps BENCH_SEND_SESSIONS
SMTP sessions open (default 20, as SENDING_SMTP_SESSIONS), and the raw and reference
clients open as many connections per worker, one process each.

    make bench BENCH_ARGS=send            # or: python -m tests.bench.bench_send
    BENCH_SEND_SIZES=10000 python -m tests.bench.bench_send
    BENCH_SEND_DELAYS=0,30,100 BENCH_SEND_WORKERS=1 python -m tests.bench.bench_send

It uses its own throwaway PostgreSQL database (quire_bench_send) and Redis db 3.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from multiprocessing import Process, Queue
from pathlib import Path

from tests.bench.support import (
    bench_environment,
    recreate_database,
    wait_for_workers,
)

ROOT = Path(__file__).resolve().parent.parent.parent
DB_NAME = "quire_bench_send"
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/3")
DELAYS = [
    int(n)
    for n in os.environ.get(
        "BENCH_SEND_DELAYS", os.environ.get("SINK_DELAY_MS", "0")
    ).split(",")
]
# Through a relay 30 ms away a run of 10,000 takes about half a minute.
_DEFAULT_SIZES = "10000,100000" if DELAYS == [0] else "10000"
SIZES = [int(n) for n in os.environ.get("BENCH_SEND_SIZES", _DEFAULT_SIZES).split(",")]
WORKERS = [int(n) for n in os.environ.get("BENCH_SEND_WORKERS", "1,2").split(",")]
# SMTP sessions each worker process keeps open (SENDING_SMTP_SESSIONS, 20 by
# default); the raw and reference clients open this many connections per worker.
SESSIONS = int(os.environ.get("BENCH_SEND_SESSIONS", "20"))
BASELINE_WITH_DELAY = int(os.environ.get("BENCH_SEND_BASELINE", "4000"))


# --- the SMTP sink (its own process) ------------------------------------------------


EHLO_REPLY = b"250-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 0\r\n"


def _reply(verb: bytes, counter) -> bytes:
    if verb in (b"EHLO", b"HELO"):
        return EHLO_REPLY
    if verb == b"QUIT":
        return b"221 bye\r\n"
    if verb == b"STAT":
        return f"250 {counter[0]}\r\n".encode()
    return b"250 OK\r\n"  # MAIL, RCPT, RSET, NOOP


async def _sink_session(reader, writer, counter):
    writer.write(b"220 sink ESMTP\r\n")
    while True:
        line = await reader.readline()
        if not line:
            break
        verb = line[:4].upper()
        if verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            await reader.readuntil(b"\r\n.\r\n")
            counter[0] += 1
            writer.write(b"250 OK queued\r\n")
        else:
            writer.write(_reply(verb, counter))
            if verb == b"QUIT":
                await writer.drain()
                break
        await writer.drain()
    writer.close()


async def _delayed_writer(writer, replies: asyncio.Queue) -> None:
    """Write each reply, in order, once its time has come."""
    loop = asyncio.get_running_loop()
    while True:
        due, reply = await replies.get()
        if reply is None:
            break
        await asyncio.sleep(max(0.0, due - loop.time()))
        writer.write(reply)
        await writer.drain()
    writer.close()


async def _delayed_sink_session(reader, writer, counter, delay: float):
    """A relay `delay` seconds away: each reply leaves `delay` after its command
    arrived. Commands are read as they come, so pipelined ones (MAIL, RCPT and DATA
    in one write) are answered in order, each after the delay, not one delay after
    the other."""
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue = asyncio.Queue()
    sender = asyncio.create_task(_delayed_writer(writer, replies))
    replies.put_nowait((loop.time() + delay, b"220 sink ESMTP\r\n"))
    while True:
        line = await reader.readline()
        if not line:
            break
        verb = line[:4].upper()
        if verb == b"DATA":
            replies.put_nowait((loop.time() + delay, b"354 go ahead\r\n"))
            await reader.readuntil(b"\r\n.\r\n")
            counter[0] += 1
            replies.put_nowait((loop.time() + delay, b"250 OK queued\r\n"))
        else:
            replies.put_nowait((loop.time() + delay, _reply(verb, counter)))
            if verb == b"QUIT":
                break
    replies.put_nowait((0.0, None))
    await sender


def run_sink(port: int, delay_ms: int = 0) -> None:
    """Accept SMTP on 127.0.0.1:port and count the messages; nothing is kept."""
    counter = [0]
    delay = delay_ms / 1000

    def session(reader, writer):
        if delay:
            return _delayed_sink_session(reader, writer, counter, delay)
        return _sink_session(reader, writer, counter)

    async def main():
        server = await asyncio.start_server(session, "127.0.0.1", port, limit=1 << 22)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def sink_count(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port)) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(b"STAT\r\n")
        f.flush()
        count = int(f.readline().split()[1])
        f.write(b"QUIT\r\n")
        f.flush()
        return count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- raw smtplib baseline ----------------------------------------------------------


def _raw_sender(port: int, raw: bytes, count: int, queue: Queue) -> None:
    connection = smtplib.SMTP("127.0.0.1", port)
    start = time.perf_counter()
    for n in range(count):
        connection.sendmail("news@bench.example", [f"raw{n}@example.org"], raw)
    connection.quit()
    queue.put(time.perf_counter() - start)


def machine_ticks() -> tuple[int, int]:
    """Return (busy, total) CPU ticks of the whole machine so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


def busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Return the share of all cores that were busy between two machine_ticks()."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total if total else 0.0


def process_cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds the process has used (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_rate(
    port: int, raw: bytes, total: int, connections: int
) -> tuple[float, float]:
    """Return messages/second of plain smtplib over `connections` connections, and
    the share of the machine's CPU that was busy meanwhile."""
    queue: Queue = Queue()
    per = total // connections
    procs = [
        Process(target=_raw_sender, args=(port, raw, per, queue))
        for _ in range(connections)
    ]
    ticks = machine_ticks()
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - start
    return per * connections / elapsed, busy_fraction(ticks, machine_ticks())


# --- the reference: a pipelining asyncio client ------------------------------------


async def _read_reply(reader) -> int:
    """Read one (possibly multi-line) SMTP reply; return its code."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the sink closed the connection")
        if line[3:4] != b"-":
            return int(line[:3])


async def _pipelined_connection(port: int, body: bytes, count: int, first: int):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    writer.transport.get_extra_info("socket").setsockopt(
        socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
    )
    await _read_reply(reader)
    writer.write(b"EHLO reference.bench.example\r\n")
    await writer.drain()
    lines = []
    while True:
        line = await reader.readline()
        lines.append(line)
        if line[3:4] != b"-":
            break
    if not any(line[4:].upper().startswith(b"PIPELINING") for line in lines):
        raise SystemExit("the sink does not offer PIPELINING")
    size = len(body)
    for n in range(first, first + count):
        writer.write(
            f"MAIL FROM:<news@bench.example> SIZE={size}\r\n"
            f"RCPT TO:<ref{n}@example.org>\r\nDATA\r\n".encode()
        )
        await writer.drain()
        codes = [await _read_reply(reader) for _ in range(3)]
        if codes != [250, 250, 354]:
            raise SystemExit(f"reference client: unexpected replies {codes}")
        writer.write(body)
        await writer.drain()
        if await _read_reply(reader) != 250:
            raise SystemExit("reference client: message refused")
    writer.write(b"QUIT\r\n")
    await writer.drain()
    await _read_reply(reader)
    writer.close()


def _pipelined_sender(port: int, body: bytes, count: int, first: int, queue) -> None:
    start = time.perf_counter()
    asyncio.run(_pipelined_connection(port, body, count, first))
    queue.put(time.perf_counter() - start)


def reference_rate(port: int, raw: bytes, total: int, connections: int) -> float:
    """Return messages/second of a pipelining asyncio client over `connections`
    connections (one process each, as the workers): MAIL, RCPT and DATA in one
    flight, then the body, so two round trips per message."""
    body = re.sub(rb"(?m)^\.", b"..", raw)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    body += b".\r\n"
    queue: Queue = Queue()
    per = max(total // connections, 1)
    procs = [
        Process(target=_pipelined_sender, args=(port, body, per, n * per, queue))
        for n in range(connections)
    ]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - start
    if any(proc.exitcode for proc in procs):
        raise SystemExit("the reference client failed")
    return per * connections / elapsed


# --- Quire ----------------------------------------------------------------------------


def setup_environment(var_dir: Path) -> None:
    bench_environment(database=DB_NAME, broker=REDIS, var_dir=var_dir)


def issue_body() -> str:
    """Return ~20 KB of realistic Markdown: sections, lists, a table, code."""
    parts = ["# Top papers of the year\n"]
    for n in range(1, 11):
        parts.append(
            f"## {n}. A paper on scaling laws for sparse mixtures, part {n}\n\n"
            "The authors revisit how performance changes with model size, data and "
            "compute when only a fraction of the parameters is active per token. "
            "They find that routing quality matters more than expert count, and "
            "that a simple auxiliary loss recovers most of the gap to dense models "
            "at a third of the cost. *Why it matters:* it makes training budgets "
            "predictable for teams without a hyperscaler's cluster.\n\n"
            "- Strong baselines, careful ablations\n- Code and checkpoints released\n"
            "- Results hold across three model families\n\n"
            "> We were surprised by how little tuning the router needed.\n\n"
            "```python\nfor step, batch in enumerate(loader):\n"
            "    loss = model(batch).loss + 0.01 * router_loss(model)\n"
            "    loss.backward()\n```\n\n"
            "| setting | dense | sparse |\n|---|---|---|\n| 1B | 41.2 | 43.9 |\n"
            "| 7B | 55.0 | 57.3 |\n\n"
        )
    return "".join(parts)


def create_subscribers(total: int, active: int) -> None:
    from subscribers.models import Subscriber, Subscription, hash_email, new_token

    rows = []
    for n in range(total):
        email = f"reader{n}@bench.example"
        rows.append(
            Subscriber(
                email=email,
                email_hash=hash_email(email),
                token=new_token(),
                status="active" if n < active else "pending",
            )
        )
    Subscriber.objects.bulk_create(rows, batch_size=5000)
    # bulk_create skips save(): they join the default newsletters as a signup does.
    Subscription.join_defaults(Subscriber.objects.values("pk"))


def peak_memory_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except FileNotFoundError:
        return 0
    return 0


def start_worker(n: int, sink_port: int, var_dir: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env["EMAIL_URL"] = f"smtp://127.0.0.1:{sink_port}"
    env["SENDING_SMTP_SESSIONS"] = str(SESSIONS)
    # As in production: DEBUG off, so no query log grows with the messages sent.
    env["DEBUG"] = "false"
    env["ALLOWED_HOSTS"] = "news.bench.example"
    log = open(var_dir / f"worker-{n}.log", "wb")  # noqa: SIM115 - lives with the proc
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "newsletter", "worker",
            "--pool=solo", "--loglevel=WARNING", "--without-gossip",
            "--without-mingle", "--without-heartbeat", f"--hostname=bench{n}@%h",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def run_one(subscribers: int, workers: int, sink_port: int, var_dir: Path) -> dict:
    from django.db import connection

    from issues.models import Issue
    from issues.sending import services
    from issues.sending.models import Delivery, Send
    from newsletter.celery import app

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE sending_delivery")
    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)
    procs = [start_worker(n, sink_port, var_dir) for n in range(workers)]
    wait_for_workers(app, len(procs))
    issue = Issue.objects.create(
        title=f"Bench {subscribers} x {workers}", body=issue_body()
    )
    before = sink_count(sink_port)
    commits_before = database_commits()
    cpu_before = sum(process_cpu_seconds(proc.pid) for proc in procs)
    ticks = machine_ticks()
    start = time.perf_counter()
    send = services.publish_issue(issue=issue)  # commits; the start task is queued
    peaks = dict.fromkeys(range(workers), 0)
    while True:
        # Fine enough that the poll does not add to a send of a few seconds.
        time.sleep(0.05)
        for n, proc in enumerate(procs):
            peaks[n] = max(peaks[n], peak_memory_kb(proc.pid))
        status = Send.objects.filter(pk=send.pk).values_list("status", flat=True)[0]
        if status == Send.Status.DONE:
            break
        if any(proc.poll() is not None for proc in procs):
            raise SystemExit("a worker died; see var/bench-send/worker-*.log")
    elapsed = time.perf_counter() - start
    busy = busy_fraction(ticks, machine_ticks())
    worker_cpu = sum(process_cpu_seconds(proc.pid) for proc in procs) - cpu_before
    send.refresh_from_db()
    for n, proc in enumerate(procs):
        peaks[n] = max(peaks[n], peak_memory_kb(proc.pid))
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(30)
    received = sink_count(sink_port) - before
    time.sleep(1.0)  # backends report their counts at most once a second
    commits = database_commits() - commits_before
    sent_times = Delivery.objects.filter(send=send).order_by("sent_at")
    first = sent_times.values_list("sent_at", flat=True).first()
    last = sent_times.reverse().values_list("sent_at", flat=True).first()
    sending_seconds = (last - first).total_seconds() or 1
    return {
        "subscribers": subscribers,
        "workers": workers,
        "sent": send.sent_count,
        "received": received,
        "seconds": elapsed,
        "rate_end_to_end": send.sent_count / elapsed,
        "rate_sending": send.sent_count / sending_seconds,
        "peak_kb": peaks,
        "cpu_busy": busy,
        "worker_cpu_ms": 1000 * worker_cpu / max(send.sent_count, 1),
        "commits_per_message": commits / max(send.sent_count, 1),
    }


def database_commits() -> int:
    """Transactions committed in the bench database so far (every statement the
    workers run outside a transaction is one)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        return cursor.fetchone()[0]


def prepared_message_bytes() -> bytes:
    from issues.models import Issue
    from issues.sending.emails import Recipient, render_segment

    issue = Issue.objects.create(title="Raw size reference", body=issue_body())
    prepared = render_segment(issue=issue, segment="free")
    return prepared.build(
        Recipient(email="raw@example.org", token="x" * 32, message_id="raw@bench")
    )


def main() -> int:
    var_dir = ROOT / "var" / "bench-send"
    var_dir.mkdir(parents=True, exist_ok=True)
    setup_environment(var_dir)
    recreate_database(DB_NAME)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    raw = prepared_message_bytes()
    print(f"message size: {len(raw) / 1024:.1f} KB (issue body HTML included)")
    create_subscribers(max(SIZES), active=SIZES[0])
    print(
        "sink: asyncio SMTP sink in its own process, answering each command"
        f" {', '.join(map(str, DELAYS))} ms after it arrived; offers PIPELINING;"
        f" {SESSIONS} connection(s) per worker for the raw and reference clients"
    )
    print(
        f"{'delay ms':>8} {'subscribers':>11} {'workers':>7} {'seconds':>8} "
        f"{'msg/s e2e':>10} {'msg/s send':>10} {'raw msg/s':>10} {'ratio':>6} "
        f"{'ref msg/s':>10} {'/ref':>6} {'raw/ref':>7} {'peak MB/worker':>16} "
        f"{'CPU busy':>8} {'raw CPU':>8} {'worker ms':>9} {'db tx/msg':>9}"
    )
    from subscribers.models import Subscriber

    failures = 0
    for delay in DELAYS:
        sink_port = free_port()
        sink = Process(target=run_sink, args=(sink_port, delay), daemon=True)
        sink.start()
        time.sleep(0.5)
        baseline_cap = 20000 if delay == 0 else BASELINE_WITH_DELAY
        for size in SIZES:
            Subscriber.objects.update(status="pending")
            Subscriber.objects.filter(
                pk__in=Subscriber.objects.order_by("pk").values("pk")[:size]
            ).update(status="active")
            for workers in WORKERS:
                result = run_one(size, workers, sink_port, var_dir)
                connections = workers * SESSIONS
                count = min(size, baseline_cap)
                baseline, raw_busy = raw_rate(sink_port, raw, count, connections)
                before = sink_count(sink_port)
                reference = reference_rate(sink_port, raw, count, connections)
                reference_sent = (count // connections) * connections
                if sink_count(sink_port) - before != reference_sent:
                    print("  MISMATCH: the sink missed reference messages")
                    failures += 1
                ratio = result["rate_end_to_end"] / baseline
                peaks = ", ".join(
                    f"{kb / 1024:.0f}" for kb in result["peak_kb"].values()
                )
                print(
                    f"{delay:>8} {size:>11} {workers:>7} {result['seconds']:>8.1f} "
                    f"{result['rate_end_to_end']:>10.1f} "
                    f"{result['rate_sending']:>10.1f} {baseline:>10.1f} "
                    f"{ratio:>6.2f} {reference:>10.1f} "
                    f"{result['rate_end_to_end'] / reference:>6.2f} "
                    f"{baseline / reference:>7.2f} {peaks:>16} "
                    f"{result['cpu_busy']:>8.0%} {raw_busy:>8.0%} "
                    f"{result['worker_cpu_ms']:>9.3f} "
                    f"{result['commits_per_message']:>9.3f}",
                    flush=True,
                )
                if result["received"] != size or result["sent"] != size:
                    print(
                        f"  MISMATCH: sent {result['sent']},"
                        f" sink got {result['received']}"
                    )
                    failures += 1
        sink.terminate()
        sink.join()
    print(
        "delay ms: the sink answers each command this long after it arrived;"
        " msg/s e2e: from publishing (audience freeze included) to the send being done;"
        " msg/s send: first to last message; ratio: e2e / raw smtplib rate over the"
        " same number of connections; ref msg/s: an asyncio client over the same"
        " connections pipelining MAIL, RCPT and DATA (two round trips a message, what"
        " the network allows one message at a time per connection); /ref: e2e / ref;"
        " raw/ref: raw smtplib / ref; peak MB: VmHWM of each worker process;"
        " CPU busy / raw CPU: share of all the machine's cores busy during the send /"
        " during the raw run; worker ms: worker CPU time per message sent; db tx/msg:"
        " transactions committed in the database per message sent (claims, marks,"
        " outcomes, counts and the audience freeze together)."
    )
    print(f"cores: {os.cpu_count()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
