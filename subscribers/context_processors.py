from django.http import HttpRequest

from .sessions import current_subscriber


def reader(request: HttpRequest) -> dict:
    """Expose the signed-in subscriber to templates, looked up only when used."""
    # Templates call callables: no query unless a template asks, and none at all
    # for a reader without a session (see subscribers.sessions).
    return {"current_subscriber": lambda: current_subscriber(request)}
