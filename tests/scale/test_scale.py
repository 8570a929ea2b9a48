"""Scale-out: three worker hosts send one issue to 20,000; one drops off mid-send.

Black-box: processes on hosts made of network namespaces (tests/scale/conftest.py),
the rows in PostgreSQL, and what the SMTP sink received. Nothing here knows how a
worker sends (one SMTP session or many): only that a row marked sent is never sent
again, that rows a vanished host left behind are sent by the others, and that the
few recipients who may have the issue twice are the ones shown as such.

    make test-scale      # as root: the hosts are network namespaces
"""

from __future__ import annotations

import json
import sys
import time

import pytest
from psycopg import sql

from issues.sending.models import Delivery, Send
from subscribers.models import Subscriber
from tests.conftest import wait_for

pytestmark = pytest.mark.scale

SUBSCRIBERS = 20_000
CUT_AFTER = 5_000  # sent in all when the link is cut
LEASE = 10
KEEPALIVE = 6  # below the lease: a cut host loses its session first
# The same on every host, the operator's (beat's reconciler) included.
DEPLOYMENT_ENV = {
    "SENDING_LEASE_SECONDS": LEASE,
    "SENDING_BATCH_SIZE": 100,
    "DATABASE_KEEPALIVE_SECONDS": KEEPALIVE,
    "EMAIL_TIMEOUT": 10,
}
TABLES = {
    "delivery": sql.Identifier(Delivery._meta.db_table),
    "send": sql.Identifier(Send._meta.db_table),
    "subscriber": sql.Identifier(Subscriber._meta.db_table),
}


def query(template: str) -> sql.Composed:
    """A query on Quire's tables, named {delivery}, {send} and {subscriber}."""
    return sql.SQL(template).format(**TABLES)


def _sessions_from(cluster, address: str) -> int:
    rows = cluster.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE client_addr = %s", (address,)
    )
    return rows[0][0]


def _sending_rows(cluster, send_id: int, host: str) -> set[tuple[int, str]]:
    """Rows of the send that the worker on `host` holds as sending."""
    return set(
        cluster.sql(
            query(
                "SELECT id, email FROM {delivery} WHERE send_id = %s AND status = %s"
                " AND claimed_by LIKE %s"
            ),
            (send_id, Delivery.Status.SENDING.value, f"{host}:%"),
        )
    )


def test_a_host_cut_off_mid_send_loses_no_one_and_shows_its_duplicates(cluster):
    issue_id = cluster.driver("seed", str(SUBSCRIBERS), "reader")["issue"]
    hosts = {}
    for name in ("host-1", "host-2", "host-3"):
        hosts[name], _ = cluster.add_worker(name, **DEPLOYMENT_ENV)
    cut = hosts["host-2"]
    started = time.monotonic()
    send_id = cluster.driver("publish", str(issue_id))["send"]
    # Beat's reconciler, from the operator's side, more often than beat's minute
    # since the lease is short.
    reconciler = cluster.spawn(
        [sys.executable, "-m", "tests.scale.driver", "reconcile", str(send_id), "2"],
        name="reconciler",
        env=cluster.env("ops", **DEPLOYMENT_ENV),
    )

    def far_enough():
        by_host = cluster.sent_by_host()
        return sum(by_host.values()) >= CUT_AFTER and by_host.get(cut.address, 0) > 0

    wait_for(far_enough, timeout=300, interval=0.1, message=f"{CUT_AFTER} sent")
    cluster.network.cut(cut)
    cut_at = time.monotonic()
    sent_at_cut = sum(cluster.sent_by_host().values())
    # What the cut host had in flight: the rows it holds as "sending" (claimed_by
    # carries its host name), read until a statement it sent just before the cut
    # can no longer change them (no lease runs out this soon).
    reads: list[set[tuple[int, str]]] = []

    def settled() -> bool:
        reads.append(_sending_rows(cluster, send_id, cut.name))
        return len(reads) >= 3 and reads[-1] == reads[-2] == reads[-3]

    wait_for(settled, timeout=30, interval=0.3, message="the cut host's rows settled")
    in_flight = reads[-1]
    cut_host_sent = cluster.sent_by_host().get(cut.address, 0)

    def done():
        rows = cluster.sql(query("SELECT status FROM {send} WHERE id = %s"), (send_id,))
        return rows[0][0] == Send.Status.DONE

    wait_for(done, timeout=600, interval=0.5, message="the send done")
    wall = time.monotonic() - started
    reconciler.wait(30)

    by_host = cluster.sent_by_host()
    received = cluster.received()
    statuses = dict(
        cluster.sql(
            query(
                "SELECT status, count(*) FROM {delivery} WHERE send_id = %s "
                "GROUP BY status"
            ),
            (send_id,),
        )
    )
    flagged = {
        email
        for (email,) in cluster.sql(
            query(
                "SELECT email FROM {delivery} WHERE send_id = %s AND possibly_duplicate"
            ),
            (send_id,),
        )
    }
    (resolved_after_crash,) = cluster.sql(
        query("SELECT resolved_after_crash FROM {send} WHERE id = %s"), (send_id,)
    )[0]
    duplicates = {rcpt for rcpt, peers in received.items() if len(peers) > 1}
    print(
        "\nscale: "
        + json.dumps(
            {
                "subscribers": SUBSCRIBERS,
                "publish_to_done_s": round(wall, 1),
                "cut_to_done_s": round(time.monotonic() - cut_at, 1),
                "sent_when_cut": sent_at_cut,
                "sent_by_host": {
                    name: by_host.get(host.address, 0) for name, host in hosts.items()
                },
                "in_flight_at_cut": len(in_flight),
                "received_twice": len(duplicates),
                "flagged": len(flagged),
            }
        )
    )

    # Done, and every row sent.
    assert statuses == {Delivery.Status.SENT.value: SUBSCRIBERS}
    # Nobody missed: every subscriber's address reached the sink.
    expected = {f"reader{n}@example.org" for n in range(SUBSCRIBERS)}
    assert set(received) == expected
    # Every host took part; the cut one sent nothing after the cut, the others did
    # everything it did not.
    assert all(by_host.get(host.address, 0) > 0 for host in hosts.values())
    assert by_host[cut.address] == cut_host_sent
    live = {h.address for name, h in hosts.items() if h is not cut}
    from_live = {rcpt for rcpt, peers in received.items() if set(peers) & live}
    from_cut = {rcpt for rcpt, peers in received.items() if cut.address in peers}
    assert from_live | from_cut == expected
    assert len(from_live) >= SUBSCRIBERS - cut_host_sent
    # Twice at most, only what the cut host had in flight, and each one shown.
    assert max(len(peers) for peers in received.values()) <= 2
    assert len(duplicates) <= len(in_flight)
    assert duplicates <= {email for _id, email in in_flight}
    assert all(cut.address in received[rcpt] for rcpt in duplicates)
    assert flagged == {email for _id, email in in_flight}
    assert resolved_after_crash == len(flagged) >= len(duplicates)

    # The author's view: the send panel shows the same count, and names them.
    panel = cluster.driver("panel", str(issue_id))
    assert panel["page_status"] == 200
    assert panel["progress"]["status"] == Send.Status.DONE
    assert panel["progress"]["possibly_duplicated"] == len(flagged)
    assert panel["progress"]["sent"] == SUBSCRIBERS
    html = panel["html"]
    assert f'<span data-field="possibly_duplicated">{len(flagged)}</span>' in html
    for email in flagged:
        assert email in html

    # The database server let go of the vanished host's session.
    wait_for(
        lambda: _sessions_from(cluster, cut.address) == 0,
        timeout=120,
        interval=1,
        message="the cut host's database sessions closed",
    )


def test_a_host_cut_off_while_claiming_frees_its_rows_for_the_others(cluster):
    """A claim's transaction open when the link goes: PostgreSQL must end it.

    Workers claim batches with ``FOR UPDATE SKIP LOCKED`` in a short transaction.
    A host cut off inside one leaves it open on the server, its rows locked: every
    other worker skips them and nothing can requeue them. With Quire's TCP
    keepalives (DATABASE_KEEPALIVE_SECONDS) the server notices the host is gone,
    rolls the transaction back and the rows are free again.
    """
    cluster.driver("seed", "20", "held")
    ids = [
        row_id
        for (row_id,) in cluster.sql(
            query("SELECT id FROM {subscriber} WHERE email LIKE %s"), ("held%",)
        )
    ]
    host = cluster.network.add_host("host-9")
    cluster.spawn(
        host.command(sys.executable, "-m", "tests.scale.driver", "hold-claim", "held"),
        name="host-9",
        env=cluster.env("host-9", DATABASE_KEEPALIVE_SECONDS=KEEPALIVE),
    )
    wait_for(
        lambda: '"claimed"' in cluster.log("host-9"),
        timeout=60,
        message="host-9 holding its claim",
    )
    claimed = json.loads(
        next(
            line
            for line in cluster.log("host-9").splitlines()
            if line.startswith('{"claimed"')
        )
    )["claimed"]
    assert sorted(claimed) == sorted(ids)
    skip_locked = query(
        "SELECT id FROM {subscriber} WHERE id = ANY(%s) FOR UPDATE SKIP LOCKED"
    )
    assert cluster.sql(skip_locked, (ids,)) == []

    cluster.network.cut(host)

    wait_for(
        lambda: len(cluster.sql(skip_locked, (ids,))) == len(ids),
        timeout=120,
        interval=1,
        message="the cut host's locks released",
    )
    assert _sessions_from(cluster, host.address) == 0
