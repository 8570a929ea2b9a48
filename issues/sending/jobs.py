"""Beat's entry points that call services (beat's schedule is in settings).

Celery's autodiscovery imports only tasks.py, and tasks may not import services, so
these live here and SendingConfig.ready imports this module to register them.
"""

from celery import shared_task

from . import services
from .tasks import RETRY


# The name it had in tasks.py: beat's schedule (settings) and messages already
# queued by a running beat call it by that name.
@shared_task(
    name="issues.sending.tasks.publish_due_issues", ignore_result=True, **RETRY
)
def publish_due_issues() -> int:
    """Publish scheduled issues whose time has come (beat, every 30 seconds)."""
    return len(services.publish_due_issues())
