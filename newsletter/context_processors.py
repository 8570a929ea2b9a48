from .links import site_url


def site(request) -> dict:
    """Expose the site's public address to every template (canonical tags, feeds)."""
    return {"SITE_URL": site_url()}
