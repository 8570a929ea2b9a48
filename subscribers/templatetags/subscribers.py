from django import template

from newsletter.models import Publication

register = template.Library()


@register.simple_tag
def consent_text() -> str:
    """Return the publication's consent wording shown under subscribe forms."""
    return Publication.load().consent_text
