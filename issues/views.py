"""The reader's pages. Each runs a small, fixed number of queries."""

from __future__ import annotations

import hashlib
from math import ceil
from typing import Any

from django.core.paginator import InvalidPage, Paginator
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
)
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date
from django.views.decorators.http import require_GET, require_safe

from newsletter.models import Publication
from subscribers.sessions import current_subscriber

from . import bibtex, citing, library, metadata, pagecache
from .models import Citation, Issue, IssueSlug, Paper, Tag
from .reading import (
    citations_q,
    issues_for,
    paid_access,
    public_description,
    readable_body,
    readable_contents,
)
from .search import clean_query, search_issues, search_papers, snippet_html
from .shared_pages import is_rendering_shared, shared_page

ISSUES_PER_PAGE = 20
PAPERS_PER_PAGE = 50


@require_safe
@shared_page()
def home(request: HttpRequest) -> HttpResponse:
    """Show the front page: the latest issue, recent issues and a subscribe box."""
    issues = list(Issue.objects.published().listed().for_listing()[:8])
    context = {"latest": issues[0] if issues else None, "recent": issues[1:]}
    return render(request, "issues/home.html", context)


@require_safe
@shared_page(params=["page"])
def archive(request: HttpRequest) -> HttpResponse:
    """List every issue, newest first, by year, paginated."""
    issues = issues_for(request).listed().for_listing()
    page = Paginator(issues, ISSUES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "issues/archive.html", {"page": page})


def _issue_etag(issue: Issue, *, paid: bool, request: HttpRequest) -> str:
    user = request.user
    # The header names the signed-in subscriber ("Account", not "Sign in"): a
    # page fetched before signing in must not be revalidated after it.
    subscriber = current_subscriber(request)
    state = f"{issue.pk}:{issue.updated.isoformat()}:{int(paid)}:"
    state += f"{user.pk if user.is_authenticated else 0}:"
    state += f"{subscriber.pk if subscriber is not None else 0}:"
    # Its Save buttons show the subscriber's library.
    state += library.library_version(subscriber)
    # Weak: the same page may go out gzip-compressed or not.
    return 'W/"' + hashlib.blake2b(state.encode(), digest_size=12).hexdigest() + '"'


# What the issue page needs to decide visibility, ETag and cache key.
ISSUE_HEAD_FIELDS = ["pk", "slug", "updated", "status", "published_at", "access"]


@require_safe
@shared_page()
def issue_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show one issue, its free or full body, and the papers it cites.

    Staff may add ?as=free to see the page as a reader without paid access.
    """
    paid = paid_access(request) and request.GET.get("as") != "free"
    try:
        head = issues_for(request).only(*ISSUE_HEAD_FIELDS).get(slug=slug)
    except Issue.DoesNotExist:
        return _redirect_old_slug(request, slug)
    if is_rendering_shared(request):
        # Once for every anonymous reader: shared_page sends it with its headers.
        return HttpResponse(_render_issue_page(request, head.pk, paid=paid))
    etag = _issue_etag(head, paid=paid, request=request)
    last_modified = head.updated.timestamp()
    not_modified = get_conditional_response(
        request, etag=etag, last_modified=int(last_modified)
    )
    if not_modified is not None:
        return not_modified
    response = HttpResponse(_render_issue_page(request, head.pk, paid=paid))
    response.headers["ETag"] = etag
    response.headers["Last-Modified"] = http_date(last_modified)
    patch_cache_control(response, private=True, no_cache=True)
    return response


def _redirect_old_slug(request: HttpRequest, slug: str) -> HttpResponse:
    """Send a slug the issue was published under before to its address now."""
    current = (
        IssueSlug.objects.filter(slug=slug, issue__in=issues_for(request))
        .values_list("issue__slug", flat=True)
        .first()
    )
    if current is None:
        raise Http404("No such issue.")
    return HttpResponsePermanentRedirect(
        reverse("issues:issue", kwargs={"slug": current})
    )


# Enough of a neighbouring issue for its link.
NEIGHBOUR_FIELDS = ["pk", "slug", "title", "published_at"]


def _neighbours(issue: Issue) -> tuple[Issue | None, Issue | None]:
    """Return the published issues just before and just after this one (1 query).

    Only issues every reader may open are linked (never a draft, even for staff);
    paid-only ones are, as the archive lists them. Issues published at the same
    moment are ordered by id.
    """
    if not issue.is_public:
        return None, None
    visible = Issue.objects.published().listed().only(*NEIGHBOUR_FIELDS)
    at, pk = issue.published_at, issue.pk
    older = visible.filter(
        Q(published_at__lt=at) | Q(published_at=at, pk__lt=pk)
    ).order_by("-published_at", "-pk")
    newer = visible.filter(
        Q(published_at__gt=at) | Q(published_at=at, pk__gt=pk)
    ).order_by("published_at", "pk")
    # Each side's nearest as a scalar subquery: one query on every database
    # (SQLite allows no LIMIT inside a UNION).
    found = list(
        visible.filter(
            Q(pk=Subquery(older.values("pk")[:1]))
            | Q(pk=Subquery(newer.values("pk")[:1]))
        )
    )
    before = next((i for i in found if (i.published_at, i.pk) < (at, pk)), None)
    after = next((i for i in found if (i.published_at, i.pk) > (at, pk)), None)
    return before, after


# A table of contents from this many headings up; a short issue needs none.
CONTENTS_MIN_HEADINGS = 3


def _render_issue_page(request: HttpRequest, pk: int, *, paid: bool):
    # Load only the rendered part this reader may see (the HTML is large).
    unused = ["body"] + (["free_html"] if paid else ["body_html"])
    issue = Issue.objects.defer(*unused).get(pk=pk)
    citations = list(
        issue.citations.filter(citations_q(paid_access=paid)).select_related("paper")
    )
    publication = Publication.load()
    description = public_description(issue)
    image = metadata.preview_image(issue, publication)
    contents = readable_contents(issue, paid_access=paid)
    # Computed with the page, so a cached page carries them: the page cache must
    # drop it when another issue is published (its neighbours change).
    previous_issue, next_issue = _neighbours(issue)
    context = {
        "issue": issue,
        "publication": publication,
        "tags": list(issue.tags.all()),
        "body": readable_body(issue, paid_access=paid),
        "citations": citations,
        "is_preview": not issue.is_public,
        "viewing_as_free": not paid and request.user.is_staff,
        "issue_description": description,
        "preview_image": image,
        "article_json_ld": metadata.article_json_ld(
            issue, publication=publication, description=description, image=image
        ),
        "contents": contents if len(contents) >= CONTENTS_MIN_HEADINGS else [],
        "share_links": metadata.share_links(issue, publication=publication),
        "reference": citing.formatted_reference(issue, publication=publication),
        "reference_style": citing.STYLE_NAME,
        "previous_issue": previous_issue,
        "next_issue": next_issue,
    }
    return render_to_string("issues/issue_detail.html", context, request)


@require_safe
def share_mastodon(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask for the reader's Mastodon server, then link to its share page.

    A page, not a redirect: whatever server the query names, the reader sees
    where the link goes before following it (the share script skips this page).
    """
    issue = get_object_or_404(issues_for(request).only(*NEIGHBOUR_FIELDS), slug=slug)
    typed = request.GET.get("instance", "")
    instance = metadata.mastodon_instance(typed)
    context = {
        "issue": issue,
        "typed": typed[:300],
        "instance": instance,
        "share_url": metadata.mastodon_share_url(instance, issue) if instance else "",
        "invalid": bool(typed) and instance is None,
    }
    response = render(request, "issues/share_mastodon.html", context)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@require_safe
@shared_page()
def issue_bibtex(request: HttpRequest, slug: str) -> HttpResponse:
    """Return BibTeX for the issue and the papers it cites that this reader sees."""
    issue = get_object_or_404(issues_for(request), slug=slug)
    citations = issue.citations.filter(
        citations_q(paid_access=paid_access(request))
    ).select_related("paper")
    publication = Publication.load()
    text = bibtex.issue_bibtex(
        issue, [c.paper for c in citations], publication=publication.name,
        author=publication.author_name,
    )  # fmt: skip
    return _bibtex_response(text, issue.slug)


def _bibtex_response(text: str, name: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/x-bibtex; charset=utf-8")
    response.headers["Content-Disposition"] = f'inline; filename="{name}.bib"'
    return response


@require_safe
@shared_page(params=["year", "tag", "page"])
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
        issue__in=issues_for(request).listed(),
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
@shared_page()
def paper_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show a paper and every issue that discussed it."""
    paper = get_object_or_404(Paper, slug=slug)
    paid = paid_access(request)
    citations = list(
        Citation.objects.filter(
            citations_q(paid_access=paid),
            paper=paper,
            issue__in=issues_for(request).listed(),
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
@shared_page()
def paper_bibtex(request: HttpRequest, slug: str) -> HttpResponse:
    """Return the paper's BibTeX entry."""
    paper = get_object_or_404(Paper, slug=slug)
    return _bibtex_response(bibtex.paper_bibtex(paper), paper.slug)


@require_safe
@shared_page()
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
@shared_page(params=["page"])
def tag_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show the issues and papers with a tag, both paginated by one page number.

    Page n holds the n-th page of issues and the n-th page of papers; the tag has
    as many pages as the longer of the two lists needs. A page past the last is 404.
    """
    visible = issues_for(request).listed()
    # The annotated counts are read as attributes.
    tag: Any = get_object_or_404(
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
@shared_page(
    params=["q"], normalise=clean_query, store=pagecache.search_pages,
    seconds=pagecache.search_seconds,
)  # fmt: skip
def search(request: HttpRequest) -> HttpResponse:
    """Search issues and papers."""
    q = clean_query(request.GET.get("q", ""))
    issues, papers_found = [], []
    if q:
        issues = list(
            search_issues(issues_for(request).listed().for_listing(with_text=True), q)[
                :20
            ]
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
