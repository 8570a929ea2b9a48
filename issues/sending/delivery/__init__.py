"""The worker's side of a send: claim a batch, send it over one connection, record.

At any moment a worker process has at most one delivery in the "sending" state: the
one it is handing to the mail server. Marking the previous message sent and the next
one sending is a single UPDATE, so recording costs one round trip per message and a
crash leaves at most one ambiguous row per process (the reconciler re-sends it and
flags it as a possible duplicate).

The parts: ``preparing`` (the emails, rendered once per send and stored, with the
guard against content that kills workers), ``claims`` (taking a batch of queued
deliveries), ``recording`` (one UPDATE per outcome, overlapped with SMTP on
PostgreSQL) and ``batches`` (sending a batch, and the task's loop over them).
"""

from ..transports import open_transport
from .batches import (
    MAX_CONNECTION_FAILURES,
    BatchRun,
    LoopResult,
    deliver_send,
    send_batch,
)
from .claims import Claimed, claim_batch, retry_delay, worker_name
from .preparing import (
    BUSY,
    PAUSED,
    READY,
    STOPPED,
    Prepared,
    prepare_send,
    prepared_for,
    stored_emails,
)

__all__ = [
    "BUSY",
    "MAX_CONNECTION_FAILURES",
    "PAUSED",
    "READY",
    "STOPPED",
    "BatchRun",
    "Claimed",
    "LoopResult",
    "Prepared",
    "claim_batch",
    "deliver_send",
    "open_transport",
    "prepare_send",
    "prepared_for",
    "retry_delay",
    "send_batch",
    "stored_emails",
    "worker_name",
]
