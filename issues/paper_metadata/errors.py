"""What can go wrong asking arXiv or Crossref about a paper, in the author's words."""

from __future__ import annotations

import math


class PaperLookupError(Exception):
    """The paper's details could not be fetched; str() says why, for the author."""


class PaperNotFound(PaperLookupError):
    """The API answered, and has no such paper."""


class ApiBusy(PaperLookupError):
    """The API asked us to wait, or our own pace would keep the author waiting."""

    def __init__(self, message: str, *, wait: float) -> None:
        super().__init__(message)
        self.wait = wait


class ApiUnreachable(PaperLookupError):
    """The API did not answer in time, or answered something we cannot read."""


def seconds(wait: float) -> int:
    """Return a wait in whole seconds, rounded up (never "try again in 0 s")."""
    return max(1, math.ceil(wait))
