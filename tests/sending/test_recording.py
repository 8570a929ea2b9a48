"""Recording a group of marks and outcomes: what each row becomes, whoever holds it.

On PostgreSQL (outside a transaction) the marks and the accepted outcomes are one
prepared statement whose rows travel as array literals (Recorder.advance); on SQLite
they are the recording thread's UPDATE (Recorder.write). Both must leave the same
rows behind, whatever the characters of a Message-ID.
"""

import pytest
from django.db import DataError

from issues.sending import delivery
from issues.sending.delivery.claims import claim_batch
from issues.sending.delivery.recording import Done, Recorder, Start, separate_marks
from issues.sending.models import Delivery, Send
from issues.sending.transports import SENT, Outcome
from tests.sending.conftest import make_subscribers

# Characters that mean something in an array literal or in SQL.
HOSTILE_IDS = [
    'a"b@x.example',
    "back\\slash@x.example",
    "comma,{brace}@x.example",
    "NULL",
    "quote'); DROP TABLE sending_delivery; --@x.example",
]


def record(recorder: Recorder, starts: list[Start], dones: list[Done]) -> int:
    """Record the group as the worker does on this database; return rows sent."""
    if separate_marks():
        return recorder.advance(starts, dones)
    return recorder.write([*starts, *dones])["sent"]


@pytest.mark.django_db(transaction=True)
def test_a_group_marks_its_started_rows_and_stores_each_message_id_exactly(issue):
    make_subscribers(8)
    send = Send.objects.create(issue=issue)
    delivery.freeze_audience(send=send)
    rows = claim_batch(send_id=send.pk, claimant="w", size=8)
    assert len(rows) == 8
    recorder = Recorder("w", send_id=send.pk)

    # First group: five rows start.
    starts = [Start(row) for row in rows[:5]]
    assert record(recorder, starts, []) == 0
    assert [start.done.result() for start in starts] == [True] * 5

    # Second group: those five were accepted, under hostile Message-IDs, while
    # two more start and one, taken over by another worker meanwhile, may not.
    Delivery.objects.filter(pk=rows[7].id).update(claimed_by="other")
    dones = [
        Done(row, Outcome(SENT), message_id)
        for row, message_id in zip(rows[:5], HOSTILE_IDS, strict=True)
    ]
    more = [Start(row) for row in rows[5:]]
    assert record(recorder, more, dones) == 5
    for done in dones:
        done.recorded.result()  # written (raises if not)
    assert [start.done.result() for start in more] == [True, True, False]

    stored = dict(Delivery.objects.filter(send=send).values_list("pk", "message_id"))
    assert [stored[row.id] for row in rows[:5]] == HOSTILE_IDS
    statuses = dict(Delivery.objects.filter(send=send).values_list("pk", "status"))
    assert [statuses[row.id] for row in rows] == [Delivery.Status.SENT] * 5 + [
        Delivery.Status.SENDING,
        Delivery.Status.SENDING,
        Delivery.Status.QUEUED,  # another worker's: untouched
    ]
    attempts = dict(Delivery.objects.filter(send=send).values_list("pk", "attempts"))
    assert [attempts[row.id] for row in rows] == [1] * 7 + [0]
    send.refresh_from_db()
    # Each accepted email counted once for the deliverability guard.
    assert send.accepted_count == 5
    assert Delivery.objects.filter(send=send).count() == 8  # nothing dropped


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_group_the_database_refuses_lets_no_session_send(issue):
    """PostgreSQL (CI's services leg): when the one statement fails (here a
    Message-ID longer than its column), every mark and outcome of its group fails
    with it, so no session lets its server accept a message, and no row moved."""
    assert separate_marks()
    make_subscribers(3)
    send = Send.objects.create(issue=issue)
    delivery.freeze_audience(send=send)
    rows = claim_batch(send_id=send.pk, claimant="w", size=3)
    recorder = Recorder("w", send_id=send.pk)
    first = Start(rows[0])
    recorder.advance([first], [])
    assert first.done.result() is True

    done = Done(rows[0], Outcome(SENT), "x" * 300 + "@x.example")
    later = [Start(row) for row in rows[1:]]
    with pytest.raises(DataError, match="too long"):
        recorder.advance(later, [done])
    for latch in [done.recorded, *(start.done for start in later)]:
        with pytest.raises(DataError, match="too long"):
            latch.result()
    statuses = sorted(
        Delivery.objects.filter(send=send).values_list("status", flat=True)
    )
    assert statuses == [Delivery.Status.QUEUED] * 2 + [Delivery.Status.SENDING]
    send.refresh_from_db()
    assert send.accepted_count == 0
