"""The worker's side of a send, and its bookkeeping.

Over SMTP, at any moment a worker process has at most one delivery in the "sending"
state: the one it is handing to the mail server. Marking the previous message sent
and the next one sending is a single UPDATE, so recording costs one round trip per
message and a crash leaves at most one ambiguous row per process (the reconciler
re-sends it and flags it as a possible duplicate). Through a provider's API
(``provider_sending``) the rows "sending" are those of the calls in flight, marked
in one UPDATE per call.

Nothing here enqueues a task, and nothing imports services or tasks: a function that
leads to more work returns it (``start_send`` whether to start batch tasks,
``deliver_send`` what the task does next, ``reconcile_sends`` which sends to start
or kick) and tasks.py queues it.

The parts, each importing only those before it: ``audience`` (who receives an
issue, frozen into Delivery rows), ``bookkeeping`` (counts, finishing, pausing,
reconciling), ``preparing`` (starting a send: the emails rendered once per send and
stored, with the guard against content that kills workers), ``claims`` (taking a
batch of queued deliveries), ``recording`` (one UPDATE per outcome, overlapped with
SMTP on PostgreSQL), ``provider_sending`` (batch calls to a provider's API, several
in flight, outcomes recorded per call) and ``batches`` (sending a batch, and the
task's loop over them).
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
