"""The Markdown editor's endpoints: live preview and image upload, for staff who
may edit issues or papers.

django-markdownx's own views answer anyone; these replace them at the same paths.
"""

from __future__ import annotations

import uuid
from functools import wraps
from typing import cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from newsletter.images import check_image
from newsletter.twofactor.services import pending_step

from .rendering import markdownify as render_preview
from .rendering.limits import ContentTooLarge, check_markdown
from .rendering.markup import refused_html

# Formats a browser shows inline; SVG is left out because it can carry scripts.
IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
DEFAULT_UPLOAD_MAX_BYTES = 5 * 1024 * 1024


# The editor writes issue bodies and paper summaries: either right will do.
EDITOR_PERMISSIONS = (
    "issues.add_issue",
    "issues.change_issue",
    "issues.add_paper",
    "issues.change_paper",
)


def editors_only(view):
    """Answer 403 unless the user may write issues or papers in the admin now."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = request.user
        allowed = (
            user.is_authenticated
            and user.is_active
            and user.is_staff
            and any(user.has_perm(perm) for perm in EDITOR_PERMISSIONS)
        )
        if not allowed:
            return JsonResponse(
                {"error": "Only staff who may edit issues or papers can do this."},
                status=403,
            )
        if pending_step(request) is not None:
            return JsonResponse(
                {"error": "Enter your two-factor code in the admin first."},
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper


@require_POST
@editors_only
def markdownify(request: HttpRequest) -> HttpResponse:
    """Return the live preview of the posted Markdown.

    Text over a limit gets a 400 whose body (shown in the preview all the same)
    says what is too large; it reaches no parser.
    """
    content = request.POST.get("content", "")
    try:
        check_markdown(content)
    except ContentTooLarge as exc:
        return HttpResponse(refused_html(exc, preview=True), status=400)
    return HttpResponse(render_preview(content))


def _upload_error(message: str) -> JsonResponse:
    return JsonResponse({"image": [message]}, status=400)


@require_POST
@editors_only
def upload_image(request: HttpRequest) -> JsonResponse:
    """Store an uploaded image and return the Markdown that shows it."""
    upload = request.FILES.get("image")
    if upload is None:
        return _upload_error("Choose an image to upload.")
    # An uploaded file always has a size and a name (Optional only in the stubs).
    size, filename = cast(int, upload.size), cast(str, upload.name)
    limit = getattr(settings, "QUIRE_UPLOAD_MAX_BYTES", DEFAULT_UPLOAD_MAX_BYTES)
    if size > limit:
        return _upload_error(
            f"This image is {size / 1e6:.1f} MB; the limit is "
            f"{limit / 1e6:.1f} MB. Resize it and try again."
        )
    try:
        image_format = check_image(upload)
    except ValidationError as exc:
        return _upload_error(exc.messages[0])
    extension = IMAGE_FORMATS.get(image_format)
    if extension is None:
        return _upload_error(
            f"{image_format} images are not accepted; use JPEG, PNG, GIF or WebP."
        )
    name = default_storage.save(f"markdownx/{uuid.uuid4().hex}.{extension}", upload)
    alt = filename.rsplit(".", 1)[0].replace("]", "").replace("[", "")[:100]
    return JsonResponse({"image_code": f"![{alt}]({default_storage.url(name)})"})
