"""The open pixel and the click redirect: verify, buffer, answer."""

from __future__ import annotations

import base64

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_safe

from issues.sending.emails.tracking import read_delivery_part, read_link_part

from .hits import record_click, record_open

# A transparent 1×1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _no_store(response: HttpResponse) -> HttpResponse:
    # Each fetch is an open: no cache between the reader and Quire may answer it.
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_safe
def open_pixel(request: HttpRequest, part: str) -> HttpResponse:
    """Count an open of the delivery the part names, then answer the image."""
    delivery_id = read_delivery_part(part)
    if delivery_id is not None and request.method == "GET":
        record_open(request, delivery_id=delivery_id)
    # A forged part gets the same image (a broken image helps nobody) but no count.
    return _no_store(HttpResponse(PIXEL, content_type="image/gif"))


@require_safe
def click(request: HttpRequest, delivery: str, link: str) -> HttpResponse:
    """Count a click and send the reader to the address that was signed, only."""
    target = read_link_part(link)
    delivery_id = read_delivery_part(delivery)
    if target is None or delivery_id is None:
        raise Http404("No such link.")
    if request.method == "GET":
        record_click(
            request,
            delivery_id=delivery_id,
            send_id=target.send_id,
            number=target.number,
            url=target.url,
        )
    return _no_store(HttpResponseRedirect(target.url))
