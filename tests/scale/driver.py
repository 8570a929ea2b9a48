"""What an operator does on a Quire deployment, one command per process.

    python -m tests.scale.driver COMMAND [ARGS]

Run with the deployment's environment (DATABASE_URL, CELERY_BROKER_URL, ...), as
any host of it would be, from the test's side of the network. Each command prints
its answer as one JSON line.

- ``seed COUNT PREFIX``: COUNT active subscribers (PREFIX0@example.org, ...) and an
  issue; answers the issue's id;
- ``publish ISSUE``: publishes it (the author's *Publish now*); answers the send's id;
- ``reconcile SEND EVERY``: beat's reconciler, every EVERY seconds, until the send is
  done; one line per round;
- ``panel ISSUE``: the issue's admin page as its author sees it, and the send
  panel's JSON endpoint;
- ``hold-claim PREFIX``: claims the subscribers whose address starts with PREFIX
  the way workers claim batches (``FOR UPDATE SKIP LOCKED`` in a transaction),
  answers their ids and keeps the transaction open until killed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import django


def seed(count: int, prefix: str) -> dict:
    # Imported here: main() sets Django up first.
    from issues.models import Issue
    from subscribers.models import Subscriber, Subscription, hash_email, new_token

    rows = []
    for n in range(count):
        address = f"{prefix}{n}@example.org"
        rows.append(
            Subscriber(
                email=address,
                email_hash=hash_email(address),
                status=Subscriber.Status.ACTIVE,
                token=new_token(),
            )
        )
    Subscriber.objects.bulk_create(rows, batch_size=5000)
    # bulk_create skips save(): they join the default newsletters as a signup does.
    Subscription.join_defaults(Subscriber.objects.values("pk"))
    issue = Issue.objects.create(
        title=f"Scaling out: {prefix}",
        slug=f"scaling-out-{prefix}",
        body="Three hosts, one send.\n\n" + "A paragraph of the issue. " * 200,
    )
    return {"issue": issue.pk}


def publish(issue_id: int) -> dict:
    # Imported here: main() sets Django up first.
    from issues.models import Issue
    from issues.sending import services

    send = services.publish_issue(issue=Issue.objects.get(pk=issue_id))
    return {"send": send.pk}


def reconcile(send_id: int, every: float) -> None:
    # Imported here: main() sets Django up first.
    from django.db import close_old_connections

    from issues.sending import tasks
    from issues.sending.models import Send

    while True:
        close_old_connections()
        counts = tasks.reconcile_sends()
        status = Send.objects.get(pk=send_id).status
        print(json.dumps({"status": status, **counts}), flush=True)
        if status == Send.Status.DONE:
            return
        time.sleep(every)


def panel(issue_id: int) -> dict:
    # Imported here: main() sets Django up first.
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    setup_test_environment()
    # An editor of issues (a superuser would first have to enrol a second factor).
    author, _ = get_user_model().objects.get_or_create(
        username="author", defaults={"is_staff": True}
    )
    author.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["issues", "sending"])
    )
    client = Client()
    client.force_login(author)
    # Over https, as SITE_URL says the site is served (http is redirected).
    page = client.get(
        reverse("admin:issues_issue_change", args=[issue_id]), secure=True
    )
    status = client.get(reverse("admin:sending_status", args=[issue_id]), secure=True)
    return {
        "page_status": page.status_code,
        "html": page.content.decode(),
        "progress": status.json(),
    }


def hold_claim(prefix: str) -> None:
    # Imported here: main() sets Django up first.
    from django.db import transaction

    from subscribers.models import Subscriber

    with transaction.atomic():
        ids = list(
            Subscriber.objects.select_for_update(skip_locked=True)
            .filter(email__startswith=prefix)
            .values_list("pk", flat=True)
        )
        print(json.dumps({"claimed": ids}), flush=True)
        # Hold the claim open until the test kills this process.
        while True:
            signal.pause()


def main(command: str, *args: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.settings")
    django.setup()
    if command == "seed":
        print(json.dumps(seed(int(args[0]), args[1])))
    elif command == "publish":
        print(json.dumps(publish(int(args[0]))))
    elif command == "reconcile":
        reconcile(int(args[0]), float(args[1]))
    elif command == "panel":
        print(json.dumps(panel(int(args[0]))))
    elif command == "hold-claim":
        hold_claim(args[0])
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
