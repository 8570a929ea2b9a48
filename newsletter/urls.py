"""The site's URLs (ROOT_URLCONF): every app's, mounted at the root.

Project wiring, above every app: it may import any of them (the layers and their
import direction bind the apps, not this file).
"""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from issues import views as issue_views

from . import media, views

urlpatterns = [
    path("", issue_views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("csrf/", views.csrf_token, name="csrf_token"),
    # Uploads, unless the web server in front serves them (QUIRE_SERVE_MEDIA).
    path(
        f"{settings.MEDIA_URL.strip('/')}/<path:path>",
        media.serve_media,
        name="media",
    ),
    # The author's growth page, an admin page of the dashboard app (before the
    # admin's own catch-all patterns).
    path("admin/growth/", include("issues.dashboard.urls")),
    path("admin/", admin.site.urls),
    # The Markdown editor's preview and upload endpoints (staff only) live in
    # issues.urls under /markdownx/; django-markdownx's own views are not mounted.
    path("", include("issues.urls")),
    path("", include("subscribers.urls")),
    path("", include("subscribers.billing.urls")),
    path("", include("issues.sending.urls")),
    path("", include("issues.analytics.urls")),
]
