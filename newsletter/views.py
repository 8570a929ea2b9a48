from datetime import timedelta
from pathlib import Path
from typing import cast

from django.conf import settings
from django.db import connection
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    JsonResponse,
)
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_safe

from .celery import app as celery_app
from .health import registered_checks
from .models import Heartbeat
from .services import WORKER_HEARTBEAT


@never_cache
@require_GET
def csrf_token(request: HttpRequest) -> JsonResponse:
    """Return a CSRF token for this reader, setting their CSRF cookie.

    Pages cached for every anonymous reader carry no token of their own (see
    issues/shared_pages.py); static/js/forms.js asks here when a form is sent.
    """
    # never_cache: private, no-store; the token is this reader's alone.
    return JsonResponse({"token": get_token(request)})


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """Send browsers that ask for /favicon.ico to the icon among the static files."""
    # Browsers and feed readers ask for /favicon.ico whatever the page links to.
    return HttpResponsePermanentRedirect(static("favicon.ico"))


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not fine"
        return False, f"{type(exc).__name__}: {exc}"
    return True, connection.vendor


def _check_broker() -> tuple[bool, str]:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folder = Path(cast(str, options["data_folder_in"]))
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".healthz"
        try:
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            return False, f"broker folder {folder} is not writable: {exc}"
        return True, "filesystem"
    try:
        with celery_app.connection_for_write(url) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
    except Exception as exc:  # noqa: BLE001
        return False, f"{type(exc).__name__}: {exc}"
    return True, str(transport)


def _check_worker() -> tuple[bool, str]:
    try:
        heartbeat = Heartbeat.objects.filter(name=WORKER_HEARTBEAT).first()
    except Exception as exc:  # noqa: BLE001
        return False, f"cannot read heartbeat: {exc}"
    if heartbeat is None:
        return False, "no worker has reported yet"
    age = timezone.now() - heartbeat.beat_at
    if age > timedelta(seconds=settings.QUIRE_HEARTBEAT_MAX_AGE):
        return False, f"last heartbeat {int(age.total_seconds())}s ago"
    return True, f"last heartbeat {int(age.total_seconds())}s ago"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report whether the database, the broker and a worker are alive.

    Apps add checks of their own (newsletter.health), such as sending's report of a
    send that makes no progress.
    """
    checks = {}
    for name, check in (
        ("database", _check_database),
        ("broker", _check_broker),
        ("worker", _check_worker),
        *registered_checks(),
    ):
        try:
            ok, detail = check()
        except Exception as exc:  # noqa: BLE001 - a broken check is a failing one
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        checks[name] = {"ok": ok, "detail": detail}
    failing = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "ok" if not failing else "failing", "failing": failing, **checks}
    return JsonResponse(body, status=200 if not failing else 503)
