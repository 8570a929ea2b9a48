from django.utils.functional import SimpleLazyObject


def publication(request) -> dict:
    """Expose the publication's settings to templates, loaded only when used."""
    from newsletter.models import Publication

    return {"publication": SimpleLazyObject(Publication.load)}
