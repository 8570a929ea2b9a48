"""Formulas as images for email: a PNG per formula, drawn without TeX, stored once.

Email programs do not lay out MathML, so ``math_as_images(html)`` turns each
``<math>`` of rendered HTML into an ``<img>`` of its formula: ziamath sets the
LaTeX kept in its annotation as SVG (glyph outlines from the STIX Two Math font it
ships, no system fonts), resvg draws that at twice the size as PNG, and the PNG is
stored under a hash of what it shows (``math/<sha256>.png``), once for every issue
and send that shows the same formula. The image's alt text is the LaTeX; its
width and height are half the PNG's, so it is sharp on high-density screens, and
an inline formula sits on the text's baseline.

Called once per email rendering (per segment of a send), never per recipient.
Native code (resvg) only gets what the limits let through: a formula of at most
QUIRE_MATH_MAX_CHARS, with lengths bounded, drawn no larger than MAX_IMAGE_*.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import struct
import zlib
from dataclasses import dataclass

import resvg_py
import ziamath
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from .math import TEX_ENCODING, FormulaError, presentation_mathml

logger = logging.getLogger(__name__)

# Changing how formulas are drawn changes every name, so no old image is reused.
DESIGN = "ziamath-stix2-18px-2x-v1"
FONT_SIZE = 18  # CSS pixels, the email body's text size
SCALE = 2  # PNG pixels per CSS pixel
# The largest formula drawn, in CSS pixels: wider than any email column; a
# formula larger than this shows as its LaTeX instead.
MAX_IMAGE_WIDTH, MAX_IMAGE_HEIGHT = 2_000, 1_000
_DEPTH_KEY = b"quire-depth"

# The sanitizer's output: <math …> … </math>, nested only inside mtext (where HTML
# may hold another math), attributes in double quotes.
_MATH_TAG = re.compile(r"<(/?)math\b[^>]*>")
_DISPLAY_BLOCK = re.compile(r'\sdisplay="block"')
_ANNOTATION = re.compile(
    r'<annotation encoding="' + re.escape(TEX_ENCODING) + r'">([^<]*)</annotation>'
)
_TAGS = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class FormulaImage:
    url: str
    width: int  # CSS pixels
    height: int
    depth: float  # CSS pixels below the baseline


def image_name(latex: str, *, display: bool) -> str:
    """Return the storage name of a formula's image."""
    key = f"{DESIGN}\x00{'block' if display else 'inline'}\x00{latex}"
    return f"math/{hashlib.sha256(key.encode()).hexdigest()}.png"


def draw_formula(latex: str, *, display: bool) -> tuple[bytes, float]:
    """Return a formula drawn as PNG at SCALE, and its depth below the baseline.

    Raises FormulaError for a formula that does not parse or would be too large.
    """
    mathml = presentation_mathml(latex, display=display)
    try:
        svg = ziamath.Math(mathml, size=FONT_SIZE).svg()
    except Exception as exc:  # the typesetter's errors share no base class
        raise FormulaError(f"This formula cannot be drawn ({exc}).") from None
    found = re.search(r'viewBox="([-\d.]+) ([-\d.]+) ([\d.]+) ([\d.]+)"', svg)
    if found is None:
        raise FormulaError("This formula cannot be drawn.")
    top, width, height = (float(found[n]) for n in (2, 3, 4))
    if width > MAX_IMAGE_WIDTH or height > MAX_IMAGE_HEIGHT:
        raise FormulaError(
            f"This formula would be {width:.0f}×{height:.0f} pixels; at most "
            f"{MAX_IMAGE_WIDTH}×{MAX_IMAGE_HEIGHT} are drawn."
        )
    # White behind the glyphs: a dark-mode mail program would draw black on black.
    png = resvg_py.svg_to_bytes(
        svg_string=svg, zoom=SCALE, skip_system_fonts=True, background="white"
    )
    return _with_depth(bytes(png), max(0.0, height + top)), max(0.0, height + top)


def _with_depth(png: bytes, depth: float) -> bytes:
    """Return the PNG with its depth below the baseline in a tEXt chunk."""
    data = _DEPTH_KEY + b"\x00" + f"{depth:.3f}".encode()
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + data))
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR's length and type, data, CRC
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def png_size(png: bytes) -> tuple[int, int]:
    """Return a PNG's width and height in pixels, from its header."""
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _read_depth(png: bytes) -> float:
    found = png.find(b"tEXt" + _DEPTH_KEY + b"\x00")
    if found < 0:
        return 0.0
    length = struct.unpack(">I", png[found - 4 : found])[0]
    value = png[found + 4 + len(_DEPTH_KEY) + 1 : found + 4 + length]
    try:
        return float(value)
    except ValueError:
        return 0.0


def formula_image(latex: str, *, display: bool) -> FormulaImage:
    """Return a formula's stored image, drawing and storing it first if needed.

    Raises FormulaError for a formula that cannot be drawn, OSError when storage
    fails.
    """
    name = image_name(latex, display=display)
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as stored:
            # The header and the depth chunk after it.
            head = stored.read(128)
        depth = _read_depth(head)
    else:
        png, depth = draw_formula(latex, display=display)
        head = png
        saved = default_storage.save(name, ContentFile(png))
        if saved != name:
            # Another process stored the same formula first; keep one copy.
            default_storage.delete(saved)
    width, height = png_size(head)
    return FormulaImage(
        url=default_storage.url(name),
        width=round(width / SCALE),
        height=round(height / SCALE),
        depth=depth,
    )


def _image_html(latex: str, *, display: bool) -> str:
    image = formula_image(latex, display=display)
    esc = html.escape
    kind = "math-display" if display else "math-inline"
    # Inline: the image's bottom sits below the baseline by the formula's depth.
    style = (
        "display:block;margin:0 auto;max-width:100%;height:auto"
        if display
        else f"vertical-align:-{image.depth:.1f}px"
    )
    img = (
        f'<img class="math {kind}" src="{esc(image.url)}" alt="{esc(latex)}" '
        f'width="{image.width}" height="{image.height}" style="{style}">'
    )
    if display:
        # A span: "$$…$$" may stand inside a paragraph.
        return (
            '<span class="math-block" style="display:block;text-align:center;'
            f'margin:16px 0">{img}</span>'
        )
    return img


def _formula_html(math_html: str, cache: dict) -> str:
    """Return one <math> element as an image, or as its source when it cannot be."""
    display = bool(_DISPLAY_BLOCK.search(math_html[: math_html.index(">")]))
    annotation = _ANNOTATION.search(math_html)
    if annotation is None:
        # MathML an author wrote by hand: its text, as the reader would read it.
        return html.escape(html.unescape(_TAGS.sub(" ", math_html)).strip())
    latex = html.unescape(annotation[1])
    key = (latex, display)
    if key not in cache:
        try:
            cache[key] = _image_html(latex, display=display)
        except (FormulaError, OSError) as exc:
            logger.warning("Formula %r shown as its source: %s", latex[:80], exc)
            marks = "$$" if display else "$"
            cache[key] = f"<code>{html.escape(marks + latex + marks)}</code>"
    return cache[key]


def math_as_images(html_text: str) -> str:
    """Return rendered HTML with each formula as an image (see the module doc)."""
    if "<math" not in html_text:
        return html_text
    out: list[str] = []
    cache: dict = {}
    depth, start, last = 0, 0, 0
    for tag in _MATH_TAG.finditer(html_text):
        if tag[1]:
            if depth == 0:
                continue
            depth -= 1
            if depth == 0:
                out.append(_formula_html(html_text[start : tag.end()], cache))
                last = tag.end()
        else:
            if depth == 0:
                out.append(html_text[last : tag.start()])
                start = tag.start()
            depth += 1
    if depth:
        # Unclosed (never from the sanitizer): left as it was.
        out.append(html_text[start:])
    else:
        out.append(html_text[last:])
    return "".join(out)
