"""Numbered figures from captioned images, alt-text checks, and footnotes as sidenotes.

An image with a title, ``![A loss curve](loss.png "Training loss")``, becomes
``<figure id="figure-N">`` with the image and ``<figcaption>Figure N. Training
loss</figcaption>``; an image without a title stays a plain image. A titled image
inside a sentence ends the paragraph there: the figure follows, then the rest.

Each footnote reference in a paragraph is followed by ``<span class="sidenote">``, a
copy of the note that the site's stylesheet shows in the margin on wide screens,
where it hides the list of endnotes; on narrow screens the copy is hidden and the
endnotes show. Only one of the two is ever displayed, so a screen reader meets each
note once. Email and feeds have no such stylesheet: they drop the copies
(``without_sidenotes``) and keep the endnotes.

Images, figures and footnotes are numbered across the paywall break: the paid part
carries on from the free part's numbers (``continued_numbering``), so no number or
id repeats on the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token

# Where the running numbers live in a parser's env.
COUNTS = "figure_counts"
IMAGES = "images"
SIDENOTES = "sidenotes"
FIRST_NOTE = "footnote_offset"
# The longest image address a message quotes in full.
SRC_SHOWN = 80


@dataclass(frozen=True)
class Image:
    """An image of a body, as publishing checks it."""

    number: int  # its place among the page's images, from 1
    src: str
    alt: str
    figure: int | None  # its figure number, if it has a caption

    @property
    def missing_alt(self) -> bool:
        return not self.alt.strip()

    @property
    def name(self) -> str:
        """Return how a message names the image: "Image 2 (Figure 1, chart.png)"."""
        where = (
            f"Figure {self.figure}, {self.short_src}" if self.figure else self.short_src
        )
        return f"Image {self.number} ({where})"

    @property
    def short_src(self) -> str:
        src = self.src or "no address"
        return src if len(src) <= SRC_SHOWN else src[: SRC_SHOWN - 1] + "…"

    @property
    def problem(self) -> str:
        """Return what is wrong with the image and the fix, in one sentence."""
        return f"{self.name} has no alt text: describe it in ![…]({self.short_src})."


def missing_alt_message(images: list[Image]) -> str:
    """Return why an issue with these images cannot go out, and the fix."""
    return (
        " ".join(image.problem for image in images)
        + " Readers who cannot see an image get only its alt text; an issue with an "
        "image that has none cannot be published or scheduled."
    )


def continued_numbering(env: dict) -> dict:
    """Return what a part that follows this one on the page starts its numbers from."""
    counts = env.get(COUNTS) or {"images": 0, "figures": 0, "footnotes": 0}
    return {COUNTS: dict(counts)}


# --- the core rule -------------------------------------------------------------------


def _attr(token: Token, name: str) -> str:
    return str(token.attrGet(name) or "")


def _alt(image: Token) -> str:
    return "".join(
        child.content
        for child in image.children or ()
        if child.type in ("text", "code_inline")
    )


def _walk(tokens):
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def number_figures(state) -> None:
    """Number images, turn captioned ones into figures and mark where sidenotes go."""
    env = state.env
    counts = env.setdefault(COUNTS, {"images": 0, "figures": 0, "footnotes": 0})
    images: list[Image] = env.setdefault(IMAGES, [])
    offset = counts["footnotes"]
    if offset:
        # The footnote plugin numbers each part from 1; the page goes on counting.
        for token in _walk(state.tokens):
            if token.type in ("footnote_ref", "footnote_open", "footnote_anchor"):
                token.meta["id"] += offset
    env[FIRST_NOTE] = offset + 1
    counts["footnotes"] += len(env.get("footnotes", {}).get("list", {}))

    tokens = state.tokens
    notes: dict[int, list[Token]] = env.setdefault(SIDENOTES, {})
    out: list[Token] = []
    in_notes = False
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "footnote_block_open":
            in_notes = True
        elif token.type == "footnote_open":
            end = index + 1
            while tokens[end].type != "footnote_close":
                end += 1
            notes[token.meta["id"]] = tokens[index + 1 : end]
        paragraph = (
            not in_notes
            and token.type == "paragraph_open"
            and index + 2 < len(tokens)
            and tokens[index + 1].type == "inline"
            and tokens[index + 2].type == "paragraph_close"
        )
        if paragraph:
            inline = tokens[index + 1]
            found = _number_images(inline, counts)
            _mark_sidenotes(inline)
            out.extend(_split_figures(token, inline, tokens[index + 2], counts))
            images.extend(_described(found))
            index += 3
            continue
        if token.type == "inline":
            images.extend(_described(_number_images(token, counts)))
        out.append(token)
        index += 1
    state.tokens = out
    placed = {
        child.meta["id"]
        for token in out
        if token.type == "inline"
        for child in token.children or ()
        if child.type == "sidenote"
    }
    if placed != set(notes):
        # A note cited only where no sidenote can go (a link, a heading, a table,
        # another note) would be missing on wide screens, which hide the endnotes
        # when every note is beside the text: this part keeps endnotes only.
        for token in out:
            if token.type == "inline" and token.children:
                token.children = [c for c in token.children if c.type != "sidenote"]
        placed = set()
    env["sidenoted"] = bool(placed)


def _number_images(inline: Token, counts: dict) -> list[Token]:
    found = [child for child in _walk(inline.children or ()) if child.type == "image"]
    for image in found:
        counts["images"] += 1
        image.meta["number"] = counts["images"]
    return found


def _described(images: list[Token]) -> list[Image]:
    return [
        Image(
            image.meta["number"],
            _attr(image, "src"),
            _alt(image),
            image.meta.get("figure"),
        )
        for image in images
    ]


def _mark_sidenotes(inline: Token) -> None:
    """Put a sidenote after each first reference to a footnote, outside links."""
    children = inline.children or []
    marked: list[Token] = []
    links = 0
    for child in children:
        marked.append(child)
        if child.type == "link_open":
            links += 1
        elif child.type == "link_close":
            links -= 1
        elif child.type == "footnote_ref" and not links and not child.meta["subId"]:
            note = Token("sidenote", "", 0)
            note.meta = {"id": child.meta["id"]}
            marked.append(note)
    inline.children = marked


def _is_figure(child: Token) -> bool:
    return child.type == "image" and bool(_attr(child, "title").strip())


def _split_figures(
    opening: Token, inline: Token, closing: Token, counts: dict
) -> list[Token]:
    """Return the paragraph, cut around each captioned image into text and figures."""
    children = inline.children or []
    # A figure inside a link would take the link apart: it stays an image.
    depth, cuts = 0, []
    for position, child in enumerate(children):
        depth += child.type == "link_open"
        depth -= child.type == "link_close"
        if not depth and _is_figure(child):
            cuts.append(position)
    if not cuts:
        return [opening, inline, closing]
    parts: list[Token] = []
    start = 0
    for cut in [*cuts, len(children)]:
        piece = children[start:cut]
        while piece and piece[0].type in ("softbreak", "hardbreak"):
            piece = piece[1:]
        while piece and piece[-1].type in ("softbreak", "hardbreak"):
            piece = piece[:-1]
        if piece and piece[0].type == "text":
            piece[0].content = piece[0].content.lstrip()
        if piece and piece[-1].type == "text":
            piece[-1].content = piece[-1].content.rstrip()
        if any(c.type != "text" or c.content.strip() for c in piece):
            text = Token("inline", "", 0)
            text.children = piece
            text.content = "".join(c.content for c in piece)
            text.map = inline.map
            parts += [opening if not parts else _copy(opening), text, _copy(closing)]
        if cut < len(children):
            image = children[cut]
            counts["figures"] += 1
            image.meta["figure"] = counts["figures"]
            figure = Token("figure", "figure", 0)
            figure.block = True
            figure.map = inline.map
            figure.children = [image]
            parts.append(figure)
        start = cut + 1
    return parts


def _copy(token: Token) -> Token:
    return token.copy()


# --- rendering -----------------------------------------------------------------------


def _image_html(self, image: Token, options, env) -> str:
    src = escapeHtml(_attr(image, "src"))
    alt = escapeHtml(self.renderInlineAsText(image.children or [], options, env))
    return f'<img src="{src}" alt="{alt}">'


def _alt_warning(image: Token, env) -> str:
    """Return the preview's warning after an image without alt text, else ""."""
    if not env.get("preview") or _alt(image).strip():
        return ""
    shown = Image(
        image.meta.get("number", 0),
        _attr(image, "src"),
        "",
        image.meta.get("figure"),
    )
    return (
        f'<span class="image-alt-error">{escapeHtml(shown.problem)} It cannot be '
        "published without it.</span>"
    )


def render_figure(self, tokens, idx, options, env) -> str:
    image = tokens[idx].children[0]
    number = image.meta["figure"]
    caption = escapeHtml(" ".join(_attr(image, "title").split()))
    return (
        f'<figure id="figure-{number}">{_image_html(self, image, options, env)}'
        f"{_alt_warning(image, env)}"
        f'<figcaption><span class="figure-label">Figure {number}.</span> {caption}'
        "</figcaption></figure>\n"
    )


def render_image(self, tokens, idx, options, env) -> str:
    return self.image(tokens, idx, options, env) + _alt_warning(tokens[idx], env)


def render_sidenote(self, tokens, idx, options, env) -> str:
    # The admin's preview has no margin to put notes in: its endnotes suffice.
    if env.get("preview"):
        return ""
    number = tokens[idx].meta["id"]
    body = env.get(SIDENOTES, {}).get(number, [])
    inner = {**env, "in_sidenote": True}
    parts = []
    for token in body:
        if token.type == "inline":
            parts.append(self.renderInline(token.children or [], options, inner))
        elif token.type in ("fence", "code_block"):
            parts.append(f"<code>{escapeHtml(token.content.strip())}</code>")
    text = " ".join(part for part in parts if part.strip())
    return (
        f'<span class="sidenote"><span class="sidenote-number">{number + 1}</span> '
        f"{text}</span>"
    )


def sidenotes_plugin(md: MarkdownIt) -> None:
    """Add figures, the preview's alt-text warnings and sidenotes to a parser."""
    md.core.ruler.push("figures", number_figures)
    md.add_render_rule("figure", render_figure)
    md.add_render_rule("image", render_image)
    md.add_render_rule("sidenote", render_sidenote)
    # The footnote plugin's renderers, wrapped (the protocol does not list rules).
    plain_ref = md.renderer.rules["footnote_ref"]  # type: ignore[attr-defined]

    def footnote_ref(self, tokens, idx, options, env) -> str:
        # A note that cites another, shown as a sidenote: the number, no second id.
        if env.get("in_sidenote"):
            return f'<sup class="footnote-ref">[{tokens[idx].meta["id"] + 1}]</sup>'
        return plain_ref(tokens, idx, options, env)

    md.add_render_rule("footnote_ref", footnote_ref)

    def footnote_block_open(self, tokens, idx, options, env) -> str:
        # Hidden on wide screens when each note shows beside the text; numbered on
        # from the part above the paywall break.
        marked = " sidenoted" if env.get("sidenoted") and not env.get("preview") else ""
        first = env.get(FIRST_NOTE, 1)
        start = f' start="{first}"' if first > 1 else ""
        return (
            f'<hr class="footnotes-sep{marked}">\n<section class="footnotes{marked}">\n'
            f'<ol class="footnotes-list"{start}>\n'
        )

    md.add_render_rule("footnote_block_open", footnote_block_open)


# --- email and feeds -----------------------------------------------------------------

_SPAN = re.compile(r'<span class="sidenote">|<span\b[^>]*>|</span>')


def without_sidenotes(html_text: str) -> str:
    """Return rendered HTML without the sidenote copies (for email and feeds)."""
    if 'class="sidenote"' not in html_text:
        return html_text
    parts: list[str] = []
    last = 0
    depth = 0  # inside a sidenote, how many spans are open
    for match in _SPAN.finditer(html_text):
        tag = match.group(0)
        if depth:
            depth += -1 if tag == "</span>" else 1
            if not depth:
                last = match.end()
        elif tag == '<span class="sidenote">':
            parts.append(html_text[last : match.start()])
            depth = 1
    parts.append(html_text[last:])
    return "".join(parts)
