"""The reader's pages. Each runs a small, fixed number of queries."""

from __future__ import annotations

import hashlib
import time
from math import ceil

from django.core.paginator import InvalidPage, Paginator
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils.cache import (
    get_conditional_response,
    patch_cache_control,
    patch_vary_headers,
)
from django.utils.http import http_date
from django.views.decorators.http import require_GET, require_safe

from newsletter.models import Publication
from subscribers.sessions import current_subscriber

from . import bibtex, pagecache
from .models import Citation, Issue, Paper, Tag
from .reading import (
    citations_q,
    issues_for,
    paid_access,
    public_description,
    readable_body,
)
from .search import clean_query, search_issues, search_papers, snippet_html

ISSUES_PER_PAGE = 20
PAPERS_PER_PAGE = 50


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """Show the front page: the latest issue, recent issues and a subscribe box."""
    issues = list(Issue.objects.published().for_listing()[:8])
    context = {"latest": issues[0] if issues else None, "recent": issues[1:]}
    return render(request, "issues/home.html", context)


@require_safe
def archive(request: HttpRequest) -> HttpResponse:
    """List every issue, newest first, by year, paginated."""
    issues = issues_for(request).for_listing()
    page = Paginator(issues, ISSUES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "issues/archive.html", {"page": page})


def _issue_etag(issue: Issue, *, paid: bool, request: HttpRequest) -> str:
    user = request.user
    # The header names the signed-in subscriber ("Account", not "Sign in"): a
    # page fetched before signing in must not be revalidated after it.
    subscriber = current_subscriber(request)
    state = f"{issue.pk}:{issue.updated.isoformat()}:{int(paid)}:"
    state += f"{user.pk if user.is_authenticated else 0}:"
    state += f"{subscriber.pk if subscriber is not None else 0}"
    # Weak: the same page may go out gzip-compressed or not.
    return 'W/"' + hashlib.blake2b(state.encode(), digest_size=12).hexdigest() + '"'


# What the issue page needs to decide visibility, ETag and cache key.
ISSUE_HEAD_FIELDS = ["pk", "slug", "updated", "status", "published_at", "access"]


@require_safe
def issue_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show one issue, its free or full body, and the papers it cites.

    Staff may add ?as=free to see the page as a reader without paid access.
    """
    paid = paid_access(request) and request.GET.get("as") != "free"
    shared = pagecache.cache_seconds() > 0 and pagecache.is_shared_request(
        request, paid_access=paid
    )
    cached = pagecache.pages.get(slug) if shared else None
    now = time.monotonic()
    if cached is None or not cached.confirmed_recently(now):
        try:
            head = issues_for(request).only(*ISSUE_HEAD_FIELDS).get(slug=slug)
        except Issue.DoesNotExist:
            pagecache.pages.discard(slug)
            raise Http404("No such issue.") from None
        version = head.updated.isoformat()
        if cached is not None and cached.version == version:
            cached.checked = now
        else:
            cached = None
    if cached is not None:
        etag, last_modified = cached.etag, cached.last_modified
    else:
        etag = _issue_etag(head, paid=paid, request=request)
        last_modified = head.updated.timestamp()
    not_modified = get_conditional_response(
        request, etag=etag, last_modified=int(last_modified)
    )
    if not_modified is not None:
        return not_modified
    if cached is None:
        html = _render_issue_page(request, head.pk, paid=paid, shared=shared)
        if shared:
            cached = pagecache.Page.cut(
                html, etag=etag, last_modified=last_modified, version=version,
                checked=now, expires=now + pagecache.cache_seconds(),
            )  # fmt: skip
            pagecache.pages.put(slug, cached)
    gzipped = False
    if cached is not None:
        if _accepts_gzip(request):
            html, gzipped = cached.gzipped(get_token(request)), True
        else:
            html = cached.content(get_token(request))
    response = HttpResponse(html)
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    patch_vary_headers(response, ["Accept-Encoding"])
    response.headers["ETag"] = etag
    response.headers["Last-Modified"] = http_date(last_modified)
    patch_cache_control(response, private=True, no_cache=True)
    return response


def _accepts_gzip(request: HttpRequest) -> bool:
    accepted = request.headers.get("accept-encoding", "")
    return "gzip" in accepted and "gzip;q=0" not in accepted.replace(" ", "")


def _render_issue_page(request: HttpRequest, pk: int, *, paid: bool, shared: bool):
    # Load only the rendered part this reader may see (the HTML is large).
    unused = ["body"] + (["free_html"] if paid else ["body_html"])
    issue = Issue.objects.defer(*unused).get(pk=pk)
    citations = list(
        issue.citations.filter(citations_q(paid_access=paid)).select_related("paper")
    )
    context = {
        "issue": issue,
        "tags": list(issue.tags.all()),
        "body": readable_body(issue, paid_access=paid),
        "citations": citations,
        "is_preview": not issue.is_public,
        "viewing_as_free": not paid and request.user.is_staff,
        "issue_description": public_description(issue),
    }
    if shared:
        # Rendered once for every anonymous reader; each gets their own token.
        context["csrf_token"] = pagecache.CSRF_PLACEHOLDER
    return render_to_string("issues/issue_detail.html", context, request)


@require_safe
def issue_bibtex(request: HttpRequest, slug: str) -> HttpResponse:
    """Return BibTeX for the issue and the papers it cites that this reader sees."""
    issue = get_object_or_404(issues_for(request), slug=slug)
    citations = issue.citations.filter(
        citations_q(paid_access=paid_access(request))
    ).select_related("paper")
    text = bibtex.issue_bibtex(
        issue, [c.paper for c in citations], publication=Publication.load().name
    )
    return _bibtex_response(text, issue.slug)


def _bibtex_response(text: str, name: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/x-bibtex; charset=utf-8")
    response.headers["Content-Disposition"] = f'inline; filename="{name}.bib"'
    return response


@require_safe
def papers(request: HttpRequest) -> HttpResponse:
    """List papers, filtered by year and tag."""
    qs = Paper.objects.prefetch_related("tags").defer("summary", "summary_html")
    year = request.GET.get("year", "")
    tag_slug = request.GET.get("tag", "")
    if year.isdigit():
        qs = qs.filter(year=int(year))
    if tag_slug:
        qs = qs.filter(tags__slug=tag_slug)
    page = Paginator(qs, PAPERS_PER_PAGE).get_page(request.GET.get("page"))
    # Each year, and whether it has a "top papers" page for this reader.
    years = (
        Paper.objects.exclude(year=None)
        .annotate(ranked=Exists(_ranked(request).filter(paper__year=OuterRef("year"))))
        .order_by("-year")
        .values_list("year", "ranked")
        .distinct()
    )
    tags = Tag.objects.filter(papers__isnull=False).distinct()
    return render(
        request,
        "issues/papers.html",
        {
            "page": page,
            "years": [(y, ranked) for y, ranked in years],
            "tags": list(tags),
            "year": year,
            "tag": tag_slug,
        },
    )


def _ranked(request: HttpRequest):
    """Return the ranked citations this reader may see."""
    return Citation.objects.filter(
        citations_q(paid_access=paid_access(request)),
        rank__isnull=False,
        issue__in=issues_for(request),
    )


def _ranked_years(request: HttpRequest) -> list[int]:
    """Return the years whose top papers this reader may see, newest first."""
    return list(
        _ranked(request)
        .exclude(paper__year=None)
        .order_by("-paper__year")
        .values_list("paper__year", flat=True)
        .distinct()
    )


@require_safe
def paper_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show a paper and every issue that discussed it."""
    paper = get_object_or_404(Paper, slug=slug)
    paid = paid_access(request)
    citations = list(
        Citation.objects.filter(
            citations_q(paid_access=paid),
            paper=paper,
            issue__in=issues_for(request),
        )
        .select_related("issue")
        .defer("issue__body", "issue__body_html", "issue__free_html",
               "issue__paid_html", "issue__public_text")
        .order_by("-issue__published_at")
    )  # fmt: skip
    return render(
        request,
        "issues/paper_detail.html",
        {"paper": paper, "tags": list(paper.tags.all()), "citations": citations},
    )


@require_safe
def paper_bibtex(request: HttpRequest, slug: str) -> HttpResponse:
    """Return the paper's BibTeX entry."""
    paper = get_object_or_404(Paper, slug=slug)
    return _bibtex_response(bibtex.paper_bibtex(paper), paper.slug)


@require_safe
def top_papers(request: HttpRequest, year: int) -> HttpResponse:
    """Show the ranked top papers of a year, from the issues that ranked them."""
    ranked = (
        _ranked(request)
        .filter(paper__year=year)
        .select_related("paper", "issue")
        .only("rank", "note", "paper", "issue__title", "issue__slug",
              "issue__published_at")
        .order_by("rank", "-issue__published_at")
    )  # fmt: skip
    seen, entries = set(), []
    for citation in ranked:
        if citation.paper_id not in seen:
            seen.add(citation.paper_id)
            entries.append(citation)
    if not entries:
        raise Http404("No ranked papers for that year.")
    return render(
        request,
        "issues/top_papers.html",
        {"year": year, "entries": entries, "years": _ranked_years(request)},
    )


@require_safe
def tag_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show the issues and papers with a tag, both paginated by one page number.

    Page n holds the n-th page of issues and the n-th page of papers; the tag has
    as many pages as the longer of the two lists needs. A page past the last is 404.
    """
    visible = issues_for(request)
    tag = get_object_or_404(
        Tag.objects.annotate(
            issue_count=_tagged_count(
                Issue.tags.through.objects.filter(issue__in=visible)
            ),
            paper_count=_tagged_count(Paper.tags.through.objects.all()),
        ),
        slug=slug,
    )
    pages = Paginator(
        range(max(ceil(tag.issue_count / ISSUES_PER_PAGE),
                  ceil(tag.paper_count / PAPERS_PER_PAGE), 1)),
        1,
    )  # fmt: skip
    try:
        page = pages.page(request.GET.get("page", 1))
    except InvalidPage:
        raise Http404("No such page.") from None
    issues = visible.for_listing().filter(tags=tag)
    papers = tag.papers.defer("summary", "summary_html")
    return render(
        request,
        "issues/tag.html",
        {
            "tag": tag,
            "page": page,
            "issues": _nth_page(
                issues.order_by("-published_at", "-created", "-pk"),
                page.number, ISSUES_PER_PAGE, tag.issue_count,
            ),
            "papers": _nth_page(
                papers.order_by("-year", "title", "pk"),
                page.number, PAPERS_PER_PAGE, tag.paper_count,
            ),
        },
    )  # fmt: skip


def _nth_page(items, number: int, per_page: int, count: int) -> list:
    """Return page `number` of the items; past their end, none (and no query)."""
    start = (number - 1) * per_page
    return list(items[start : start + per_page]) if start < count else []


def _tagged_count(links) -> Coalesce:
    """Return, for an outer Tag query, how many of these tag links point at it."""
    counted = (
        links.filter(tag=OuterRef("pk"))
        .order_by()
        .values("tag")
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Search issues and papers."""
    q = clean_query(request.GET.get("q", ""))
    issues, papers_found = [], []
    if q:
        issues = list(
            search_issues(issues_for(request).for_listing(with_text=True), q)[:20]
        )
        for issue in issues:
            # Shown by the template; an attribute the model does not declare.
            issue.snippet_html = snippet_html(issue, q)  # type: ignore[attr-defined]
        papers_found = list(search_papers(Paper.objects.all(), q)[:20])
    return render(
        request,
        "issues/search.html",
        {"q": q, "issues": issues, "papers": papers_found},
    )


@require_safe
def robots_txt(request: HttpRequest) -> HttpResponse:
    """Tell crawlers where the sitemap is and what not to crawl."""
    base = request.build_absolute_uri("/").rstrip("/")
    lines = [
        "User-agent: *",
        "Disallow: /admin/",
        "Disallow: /markdownx/",
        f"Sitemap: {base}/sitemap.xml",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")
