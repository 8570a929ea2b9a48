"""The worker's side of a send, and its bookkeeping.

Over SMTP a worker process keeps up to SENDING_SMTP_SESSIONS connections open
(``sessions``); a row is marked "sending", committed, before its session lets the
server accept it, and "sent" as soon as the server answers, in statements that carry
whatever all sessions handed over meanwhile. A crash leaves at most one ambiguous row
per open session: the reconciler re-sends it and flags it as a possible duplicate.
Through a provider's API (``provider_sending``) the rows "sending" are those of the
calls in flight, marked in one UPDATE per call.

Nothing here enqueues a task, and nothing imports services or tasks: a function that
leads to more work returns it (``start_send`` whether to start batch tasks,
``deliver_send`` what the task does next, ``reconcile_sends`` which sends to start
or kick) and tasks.py queues it.

The parts, each importing only those before it: ``clock`` (the database's time, the
one clock of leases), ``audience`` (who receives an issue, frozen into Delivery
rows), ``bookkeeping`` (counts, finishing, pausing, reconciling), ``preparing``
(starting a send: the emails rendered once per send and stored, with the guard
against content that kills workers), ``claims`` (taking a batch of queued
deliveries), ``recording`` (marks and outcomes written in groups), ``sessions`` (many
SMTP sessions at once, fed and recorded by the task's thread), ``provider_sending``
(batch calls to a provider's API, several in flight, outcomes recorded per call) and
``batches`` (the task's loop over a send's batches).
"""

from .audience import freeze_audience
from .batches import deliver_send, send_batch
from .bookkeeping import pause_send, reconcile_sends, refresh_counts
from .claims import claim_batch
from .preparing import READY, prepare_send, prepared_for, start_send

__all__ = [
    "READY",
    "claim_batch",
    "deliver_send",
    "freeze_audience",
    "pause_send",
    "prepare_send",
    "prepared_for",
    "reconcile_sends",
    "refresh_counts",
    "send_batch",
    "start_send",
]
