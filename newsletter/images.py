"""Uploaded images: refused, from their header alone, when too large to decode.

A PNG of a few kilobytes may claim 30000x30000 pixels and decode to gigabytes (a
"decompression bomb"). Pillow reads the size from the header and, past
QUIRE_IMAGE_MAX_PIXELS (Image.MAX_IMAGE_PIXELS, set in IssuesConfig.ready), warns
or raises; here both are a clear refusal, before anything decodes the pixels.
"""

from __future__ import annotations

import warnings

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image, UnidentifiedImageError


def _too_large_message() -> str:
    limit = settings.QUIRE_IMAGE_MAX_PIXELS
    return (
        f"This image is too large: it has more than {limit / 1e6:g} million "
        f"pixels (width × height), the most Quire accepts. Resize it (for a "
        "cover, 1200×630 is plenty) and upload it again."
    )


def check_image(upload) -> str:
    """Return the image's format (PNG, JPEG...) or raise ValidationError.

    Reads the header and checks the file's structure, never decoding its pixels;
    leaves the file at its start.
    """
    upload.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as image:
                width, height = image.size
                if width * height > settings.QUIRE_IMAGE_MAX_PIXELS:
                    raise ValidationError(_too_large_message(), code="too_large")
                image_format = image.format
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(_too_large_message(), code="too_large") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(
            "This file is not an image Quire can show.", code="invalid_image"
        ) from None
    finally:
        upload.seek(0)
    return image_format or ""


def image_size(
    image, *, known: tuple[int | None, int | None]
) -> tuple[int | None, int | None]:
    """Return an ImageField's (width, height) to store: read from a new upload,
    known (the stored size) for a file already saved, (None, None) without one.

    Pillow reads the size from the header; a stored file that has gone missing
    keeps no size rather than failing the save.
    """
    if not image:
        return None, None
    if getattr(image, "_committed", True) and None not in known:
        return known
    try:
        return image.width, image.height
    except (OSError, ValueError):
        return None, None


class ImageUploadField(forms.ImageField):
    """An image field that refuses an image too large to decode, saying so."""

    def to_python(self, data):
        # An empty or missing file is FileField's to refuse, in its words.
        if data and hasattr(data, "seek") and getattr(data, "size", 0):
            check_image(data)
        return super().to_python(data)
