"""Issue bodies split at the paywall break, and the admin's live preview."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .figures import IMAGES, Image
from .limits import ContentTooLarge, check_markdown
from .markup import (
    Heading,
    ParsedBody,
    parse_body,
    readable_text,
    refused_html,
    render_parsed,
)
from .references import Reference, resolve_references

PAYWALL_RE = re.compile(r"^[ \t]*<!--\s*paywall\s*-->[ \t]*$", re.IGNORECASE | re.M)


@dataclass
class RenderedBody:
    body_html: str
    free_html: str
    paid_html: str
    free_text: str
    word_count: int
    free_references: list[Reference] = field(default_factory=list)
    paid_references: list[Reference] = field(default_factory=list)
    papers: dict = field(default_factory=dict)
    free_headings: list[Heading] = field(default_factory=list)
    paid_headings: list[Heading] = field(default_factory=list)

    @property
    def headings(self) -> list[dict]:
        """Return the headings, in order, as stored on the issue (for its contents).

        Each says whether it lies below the paywall break: a reader without paid
        access is never shown those.
        """
        return [
            {"level": h.level, "id": h.id, "text": h.text, "paid": paid}
            for paid, part in ((False, self.free_headings), (True, self.paid_headings))
            for h in part
        ]

    @property
    def references(self) -> list[Reference]:
        return list(dict.fromkeys(self.free_references + self.paid_references))

    @property
    def unknown_references(self) -> list[Reference]:
        return [ref for ref in self.references if ref not in self.papers]


def split_paywall(text: str) -> tuple[str, str | None]:
    """Return the Markdown above and below the first paywall break (None if none)."""
    match = PAYWALL_RE.search(text or "")
    if match is None:
        return text or "", None
    return text[: match.start()], text[match.end() :]


def _parse_body(
    text: str, papers: dict | None = None
) -> tuple[ParsedBody, ParsedBody | None, dict]:
    """Parse both sides of the paywall break and look up their papers at once.

    Raises ContentTooLarge, before any parsing, for a body over a limit.
    """
    check_markdown(text)
    free_md, paid_md = split_paywall(text)
    free = parse_body(free_md)
    # The paid part's headings never repeat an id of the free part's.
    paid = (
        parse_body(paid_md, taken_ids=free.env["heading_ids"], continues=free)
        if paid_md is not None
        else None
    )
    if papers is None:
        refs = free.references + (paid.references if paid else [])
        papers = resolve_references(refs)
    return free, paid, papers


def render_issue_body(text: str, *, papers: dict | None = None) -> RenderedBody:
    """Render an issue's body, split at its paywall break, in one paper lookup.

    papers: the papers its references name, already looked up (for many bodies at
    once); a reference missing from it renders as an unknown paper.

    A body over a limit (issues.rendering.limits: a command, a queryset update or
    an old row skipped the form's check) is never handed to the parser, the
    sanitizer or the email's CSS inliner: it renders as a notice saying what is
    too large, with no paid part and no references.
    """
    try:
        free, paid, papers = _parse_body(text, papers)
        free_html = render_parsed(free, papers)
        paid_html = render_parsed(paid, papers) if paid is not None else ""
    except ContentTooLarge as exc:
        notice = refused_html(exc)
        return RenderedBody(notice, notice, "", readable_text(notice), 0)
    text_of_free = readable_text(free_html)
    return RenderedBody(
        body_html=free_html + paid_html,
        free_html=free_html,
        paid_html=paid_html,
        free_text=text_of_free,
        word_count=len(text_of_free.split()) + len(readable_text(paid_html).split()),
        free_references=free.references,
        paid_references=paid.references if paid else [],
        papers=papers,
        free_headings=free.headings,
        paid_headings=paid.headings if paid else [],
    )


def find_images_without_alt(text: str) -> list[Image]:
    """Return the body's images that have no alt text, numbered as the page does.

    None for text over a limit: it renders as a notice that shows no image.
    """
    try:
        check_markdown(text)
    except ContentTooLarge:
        return []
    free_md, paid_md = split_paywall(text)
    free = parse_body(free_md)
    images = list(free.env[IMAGES])
    if paid_md is not None:
        images += parse_body(paid_md, continues=free).env[IMAGES]
    return [image for image in images if image.missing_alt]


def markdownify(text: str) -> str:
    """Return the admin's live preview of Markdown (MARKDOWNX_MARKDOWNIFY_FUNCTION).

    Text over a limit shows what is too large, and how to fix it.
    """
    try:
        free, paid, papers = _parse_body(text)
        out = render_parsed(free, papers, preview=True)
        if paid is not None:
            out += (
                '<div class="paywall-marker">Paywall: readers who do not pay see '
                "everything above this line, and a call to support below it.</div>"
            )
            out += render_parsed(paid, papers, preview=True)
    except ContentTooLarge as exc:
        return refused_html(exc, preview=True)
    return out
