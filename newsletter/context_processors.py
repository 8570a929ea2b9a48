from django.conf import settings


def site(request) -> dict:
    """Expose the site's public address to every template."""
    return {"SITE_URL": settings.SITE_URL}
