"""Checks that apps above this one add to /healthz.

``newsletter`` is the lowest layer and imports no other app, yet /healthz must say
when, for example, a send has stopped making progress. So an app registers a check
in its ``AppConfig.ready`` (``register_check("sending", check_sending)``) and the
view runs every registered check after its own.
"""

from __future__ import annotations

from collections.abc import Callable

# A check returns (ok, detail): detail says what is wrong, or what was seen.
Check = Callable[[], tuple[bool, str]]

_checks: dict[str, Check] = {}


def register_check(name: str, check: Check) -> None:
    """Add a check to /healthz under name (registering a name again replaces it)."""
    _checks[name] = check


def registered_checks() -> list[tuple[str, Check]]:
    """Return the registered checks in the order they were registered."""
    return list(_checks.items())


def unregister_check(name: str) -> None:
    """Remove the check registered under name, if any."""
    _checks.pop(name, None)
