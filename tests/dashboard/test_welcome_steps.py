"""The dashboard does not take a welcome step's long-lived send for an issue."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from issues.dashboard.home import (
    last_issue_comparison,
    needs_attention,
    sends_in_progress,
)
from issues.models import Issue
from issues.sending.delivery import welcome
from issues.sending.models import Send
from tests.factories.issues import IssueFactory
from tests.sending.welcome_support import confirmed_subscribers, make_step

pytestmark = pytest.mark.django_db


def test_the_last_issue_and_sends_in_progress_leave_welcome_steps_out():
    issue = IssueFactory(title="The real issue", status=Issue.Status.PUBLISHED)
    Send.objects.create(
        issue=issue,
        status=Send.Status.SENDING,
        total=5,
        started_at=timezone.now() - timedelta(days=1),
    )
    step = make_step("Welcome", timedelta(0))
    confirmed_subscribers(2)
    welcome.enqueue_welcome_steps()  # started now, after the issue, and sending
    assert Send.objects.get(issue=step.issue).status == Send.Status.SENDING

    comparison = last_issue_comparison()
    assert comparison is not None and comparison.issue == issue
    assert [p.send.issue for p in sends_in_progress()] == [issue]


def test_failures_of_a_welcome_step_link_to_the_step():
    step = make_step("Welcome", timedelta(0))
    Send.objects.filter(issue=step.issue).update(failed_count=2)

    [item] = needs_attention(comparison=None)

    assert "“Welcome”: 2 emails failed" in item.message
    assert item.url == reverse("admin:sending_welcomestep_change", args=[step.pk])
