"""The ASGI application that serves Quire.

Project wiring, above every app: it loads them all (the layers and their import
direction bind the apps, not this file).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.settings")
application = get_asgi_application()
