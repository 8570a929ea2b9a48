import re
from email import message_from_bytes, policy

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters live in the shared cache: start every test from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (the email tasks) at the end of the block."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def link_in(message, pattern: str) -> str:
    """Return the path of the first link matching pattern in the text body."""
    body = message.body if hasattr(message, "body") else message
    match = re.search(rf"https?://[^/\s]+({pattern})", body)
    assert match, f"no link matching {pattern} in:\n{body}"
    return match.group(1)


def parse_eml(path):
    return message_from_bytes(path.read_bytes(), policy=policy.default)
