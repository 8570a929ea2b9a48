"""Reader pages served to anonymous readers from the page cache (issues/pagecache.py).

`@shared_page(...)` wraps a reader view. A request without a session, pending
messages or a signed-in user is shared: its page is looked up by path and the
query parameters the view reads; on a miss the view renders it once, with a
placeholder where `{% csrf_token %}` goes, and the copy is stored for the current
content version. Every other request goes to the view as before, and its answer
is marked private so that no shared cache keeps it.

The CSRF token, and what a CDN or nginx in front may keep
---------------------------------------------------------
A page with a form carries a token tied to the reader's CSRF cookie; a shared
cache must never hand one reader's token (or a Set-Cookie) to another. So:

- A request that brings no CSRF cookie (a first visit, a crawler, a CDN filling
  its cache) gets the page with the token left empty and no Set-Cookie. Those
  bytes are the same for everyone and go out `public, s-maxage=…,
  stale-while-revalidate=…`. When the reader sends a form, static/js/forms.js
  fetches a token from /csrf/ (private, no-store; it sets the cookie) and puts it
  in first.
- A request that brings its CSRF cookie gets its own token in the page, put in
  per response, as `private, no-cache`: never stored by a shared cache.
- Pages without a form (feeds, the sitemap, BibTeX, most listings) hold no token
  and are public whoever asks.

Every shared answer says `Vary: Cookie, Accept-Encoding`, and carries a weak ETag
(a conditional request gets a 304 from the stored copy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import get_token
from django.template.response import SimpleTemplateResponse
from django.utils.cache import (
    get_conditional_response,
    patch_cache_control,
    patch_vary_headers,
)

from . import content_version, pagecache

# Headers of the view's response that every copy of the page repeats.
KEPT_HEADERS = ("Content-Type", "Content-Disposition", "Content-Language",
                "X-Robots-Tag")  # fmt: skip
# A page for a query value longer than this is not kept (search reads 200).
MAX_PARAM_LENGTH = 200
SHARED_REQUEST = "_quire_shared_page"


def cdn_seconds() -> int:
    return int(getattr(settings, "QUIRE_CDN_SECONDS", 10))


def cdn_stale_seconds() -> int:
    return int(getattr(settings, "QUIRE_CDN_STALE_SECONDS", 30))


def is_rendering_shared(request: HttpRequest) -> bool:
    """Return whether this page is being rendered once for every anonymous reader."""
    return getattr(request, SHARED_REQUEST, False)


def _key(
    request: HttpRequest, params: Iterable[str], normalise: Callable[[str], str]
) -> str | None:
    """Return the cache key: the path and the query parameters the view reads, as
    it reads them; None for a value too long to keep a page for."""
    query = []
    for name in params:
        value = normalise(request.GET.get(name, ""))
        if len(value) > MAX_PARAM_LENGTH:
            return None
        if value:
            query.append(f"{name}={value}")
    return request.path + "?" + "&".join(query)


def _accepts_gzip(request: HttpRequest) -> bool:
    accepted = request.headers.get("accept-encoding", "")
    return "gzip" in accepted and "gzip;q=0" not in accepted.replace(" ", "")


def _storable(request: HttpRequest, response: HttpResponseBase) -> bool:
    """Return whether the view's answer is the same for every anonymous reader."""
    return (
        response.status_code == 200
        and not response.streaming
        and not response.cookies
        and "Cache-Control" not in response
        # The view used a real token (get_token) instead of the placeholder.
        and not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
    )


def mark_private(response: HttpResponseBase) -> HttpResponseBase:
    """Keep a page meant for one reader out of every shared cache."""
    if "Cache-Control" not in response:
        patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ["Cookie"])
    return response


def shared_page(
    *, params: Iterable[str] = (), normalise: Callable[[str], str] | None = None,
    store: pagecache.PageCache | None = None,
    seconds: Callable[[], float] | None = None,
) -> Callable:  # fmt: skip
    """Serve the view's page to anonymous readers from the page cache.

    params: the query parameters the view reads (others do not change the page);
    normalise: what the view does to each before use (the key must not tell apart
    values the view treats alike, nor join ones it shows apart); store: the
    PageCache to keep it in; seconds: how long an entry lives at most
    (QUIRE_PAGE_CACHE_SECONDS unless said).
    """
    params = tuple(params)
    lifetime = seconds or pagecache.cache_seconds
    as_read = normalise or str

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
            target = store if store is not None else pagecache.pages
            if (
                request.method not in ("GET", "HEAD")
                or pagecache.cache_seconds() <= 0
                or not pagecache.is_shared_request(request)
            ):
                return mark_private(view(request, *args, **kwargs))
            key = _key(request, params, as_read)
            if key is None:
                return mark_private(view(request, *args, **kwargs))
            # Read before rendering: a page is never filed under a version newer
            # than the content it shows.
            version = content_version.current()
            page = target.get(key, version=version)
            if page is None:
                setattr(request, SHARED_REQUEST, True)
                response = view(request, *args, **kwargs)
                if isinstance(response, SimpleTemplateResponse):
                    response = response.render()  # the sitemap's
                if not _storable(request, response):
                    return mark_private(response)
                page = pagecache.Page.cut(
                    response.content,
                    version=version,
                    expires=time.monotonic() + lifetime(),
                    headers={h: response[h] for h in KEPT_HEADERS if h in response},
                )
                target.put(key, page)
            return _serve(request, page)

        return wrapped

    return decorator


def _serve(request: HttpRequest, page: pagecache.Page) -> HttpResponseBase:
    """Return the stored page for this reader, or a 304 for their copy of it."""
    personal = page.needs_token and settings.CSRF_COOKIE_NAME in request.COOKIES
    response: HttpResponseBase | None = get_conditional_response(
        request, etag=page.etag
    )
    if response is None:
        # get_token() only for a reader who has the cookie: a first visit gets no
        # new cookie, and its copy can be shared (forms.js fetches a token).
        token = get_token(request) if personal else ""
        if _accepts_gzip(request):
            response = HttpResponse(page.gzipped(token))
            response.headers["Content-Encoding"] = "gzip"
        else:
            response = HttpResponse(page.content(token))
        for name, value in page.headers.items():
            response.headers[name] = value
    response.headers["ETag"] = page.etag
    patch_vary_headers(response, ["Cookie", "Accept-Encoding"])
    if personal:
        patch_cache_control(response, private=True, no_cache=True)
    else:
        patch_cache_control(
            response, public=True, max_age=0, s_maxage=cdn_seconds(),
            stale_while_revalidate=cdn_stale_seconds(),
        )  # fmt: skip
    return response
