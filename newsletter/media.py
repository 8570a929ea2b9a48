"""Serve uploads (/media/) from MEDIA_ROOT when no web server in front does.

Only the image types the editor accepts are served as what they are; any other
file is a download, so nothing placed in the media folder can become a page of
the site (an HTML or SVG file would run its scripts with the site's cookies).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponseNotModified
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_safe

# The types uploads are limited to (issues/editor.py); lower-case extensions.
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
# Upload names are unique (a UUID, or a suffix the storage adds), so a name never
# changes content and browsers and mail clients may keep a copy for a year.
CACHE_CONTROL = "public, max-age=31536000"
# Whatever a response holds, it may not run or load anything.
MEDIA_POLICY = "default-src 'none'; sandbox"


def _media_file(path: str) -> Path:
    """Return the regular file at `path` inside MEDIA_ROOT, or raise Http404."""
    root = Path(settings.MEDIA_ROOT).resolve()
    # resolve() follows ".." and symbolic links, so whatever the path says, the
    # file it names must really lie inside the media folder.
    try:
        candidate = (root / path).resolve()
        found = candidate.is_relative_to(root) and candidate.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long for the system
        found = False
    if not found:
        raise Http404("No such file.")
    return candidate


@require_safe
def serve_media(request: HttpRequest, path: str):
    """Answer with an uploaded file: images inline, anything else as a download."""
    if not settings.QUIRE_SERVE_MEDIA:
        raise Http404("Media is served by the web server in front of Quire.")
    file = _media_file(path)
    stat = file.stat()
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    if since is not None and int(stat.st_mtime) <= since:
        return HttpResponseNotModified()
    content_type = IMAGE_TYPES.get(file.suffix.lower())
    response = FileResponse(
        file.open("rb"),
        content_type=content_type or "application/octet-stream",
        as_attachment=content_type is None,
        filename=file.name,
    )
    if content_type:
        # FileResponse names the file for an inline answer too; an image needs none.
        del response["Content-Disposition"]
    response["Last-Modified"] = http_date(stat.st_mtime)
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = MEDIA_POLICY
    return response
