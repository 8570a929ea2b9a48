"""Signal receivers that keep cached reader pages true, connected in
IssuesConfig.ready().

Not business logic: every save or deletion of what reader pages show (issues,
papers, tags, citations, the publication, its newsletters on the subscribe form),
from the admin, a command or the shell, raises the content version in its own
transaction, so that no server process serves a page from before it
(issues/content_version.py). Writes that skip signals (update(), bulk_create(),
bulk_update()) call content_changed() in their services.
"""

from django.db.models.signals import m2m_changed, post_delete, post_save

from newsletter.models import Newsletter, Publication

from .content_version import content_changed
from .models import Citation, Issue, Paper, Tag


def _changed(sender, **kwargs) -> None:
    if kwargs.get("raw"):  # loaddata: the fixture's rows, no change to serve
        return
    if sender is Publication and kwargs.get("created"):
        # Publication.load() made the row with its defaults, which the page
        # being rendered already shows.
        return
    content_changed()


def _m2m_changed(sender, action: str, **kwargs) -> None:
    if action.startswith("post_"):
        content_changed()


def connect() -> None:
    """Connect the receivers (once: dispatch_uid)."""
    for model in (Issue, Paper, Tag, Citation, Publication, Newsletter):
        for signal in (post_save, post_delete):
            signal.connect(
                _changed, sender=model,
                dispatch_uid=f"quire-content-{signal is post_save}-{model.__name__}",
            )  # fmt: skip
    for through in (Issue.tags.through, Paper.tags.through):
        m2m_changed.connect(
            _m2m_changed, sender=through,
            dispatch_uid=f"quire-content-m2m-{through.__name__}",
        )  # fmt: skip
