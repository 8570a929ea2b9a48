from django.utils.functional import SimpleLazyObject

from newsletter.models import Publication

from .pagecache import CSRF_PLACEHOLDER
from .shared_pages import is_rendering_shared


def publication(request) -> dict:
    """Expose the publication's settings to templates, loaded only when used."""
    return {"publication": SimpleLazyObject(Publication.load)}


def shared_csrf(request) -> dict:
    """Put a placeholder where {% csrf_token %} goes in a page rendered for every
    anonymous reader: each one's token goes in per response (issues.shared_pages)."""
    if is_rendering_shared(request):
        return {"csrf_token": CSRF_PLACEHOLDER}
    return {}
