from django.utils.functional import SimpleLazyObject

from newsletter.models import Publication


def publication(request) -> dict:
    """Expose the publication's settings to templates, loaded only when used."""
    return {"publication": SimpleLazyObject(Publication.load)}
