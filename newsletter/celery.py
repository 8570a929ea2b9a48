"""The Celery app, configured from Django's settings (every CELERY_* setting).

Project wiring, above every app: it finds every app's tasks (the layers and their
import direction bind the apps, not this file).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.settings")

app = Celery("newsletter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
