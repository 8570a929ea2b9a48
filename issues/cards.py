"""Link-preview cards: a 1200×630 PNG per issue without a cover, made once.

The card shows the publication's name and the issue's title. Its file name is a
hash of what it shows (and of the design's version), so it is drawn the first
time a page asks for it and never again; a new title or name is a new file. It
lives in the media folder under cards/ and is served like any upload, with a
year of caching (newsletter/media.py), since a name never changes content.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

WIDTH, HEIGHT = 1200, 630
# Bump when the drawing changes, so that every card is drawn again.
DESIGN = "1"
MARGIN = 80
BACKGROUND = (23, 32, 42)
ACCENT = (94, 178, 255)
TEXT = (245, 247, 250)
MUTED = (176, 190, 205)
# Title sizes tried in turn until the title fits in MAX_LINES.
TITLE_SIZES = (72, 60, 50)
MAX_LINES = 5


def card_name(*, publication: str, title: str) -> str:
    """Return the storage name of the card showing this publication and title."""
    key = json.dumps([DESIGN, publication, title], ensure_ascii=False)
    return f"cards/{hashlib.sha256(key.encode()).hexdigest()[:32]}.png"


def card_url(*, publication: str, title: str) -> str | None:
    """Return the card's URL, drawing and storing it first if it does not exist.

    None when it cannot be stored (a full or read-only disk): the page then goes
    without a preview image rather than failing.
    """
    name = card_name(publication=publication, title=title)
    try:
        if not default_storage.exists(name):
            saved = default_storage.save(
                name, ContentFile(draw_card(publication=publication, title=title))
            )
            if saved != name:
                # Another process stored the same card first; keep one copy.
                default_storage.delete(saved)
    except OSError:
        logger.exception("Could not store the link-preview card %s", name)
        return None
    return default_storage.url(name)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's own scalable font: nothing to install, the same on every host.
    return ImageFont.load_default(size=size)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    """Return text broken into lines no wider than width (a long word is cut)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        while draw.textlength(word, font=font) > width:
            # A word wider than the card: cut it where it stops fitting.
            cut = len(word)
            while cut > 1 and draw.textlength(word[:cut], font=font) > width:
                cut -= 1
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}".strip()
        if line and draw.textlength(candidate, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int):
    """Return the title's font and lines: the largest size that fits, else cut."""
    for size in TITLE_SIZES:
        font = _font(size)
        lines = _wrap(draw, text, font, width)
        if len(lines) <= MAX_LINES:
            return font, size, lines
    lines = lines[:MAX_LINES]
    last = lines[-1]
    while last and draw.textlength(last + "…", font=font) > width:
        last = last[:-1]
    lines[-1] = last.rstrip() + "…"
    return font, size, lines


def draw_card(*, publication: str, title: str) -> bytes:
    """Return the card as PNG bytes."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    inner = WIDTH - 2 * MARGIN
    draw.rectangle([0, 0, WIDTH, 12], fill=ACCENT)
    name_font = _font(36)
    name = _wrap(draw, publication, name_font, inner)[:1] or [""]
    draw.text((MARGIN, MARGIN), name[0], font=name_font, fill=MUTED)
    font, size, lines = _fit(draw, " ".join(title.split()) or "Untitled", inner)
    line_height = int(size * 1.2)
    # The title block, centred in the space under the name.
    space_top, space_bottom = MARGIN + 90, HEIGHT - MARGIN
    block = line_height * len(lines)
    top = space_top + max(0, (space_bottom - space_top - block) // 2)
    for n, line in enumerate(lines):
        draw.text((MARGIN, top + n * line_height), line, font=font, fill=TEXT)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
