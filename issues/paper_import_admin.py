"""The Paper admin's import and export: the upload page with its report, the
export links and actions. Wired into PaperAdmin by admin.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_safe

from .models import Paper
from .paper_export import EXPORT_FORMATS, iter_export
from .paper_import import FORMATS, MAX_FILE_BYTES, ImportFailed, import_papers

if TYPE_CHECKING:
    from django.db.models import QuerySet


class PaperImportForm(forms.Form):
    file = forms.FileField(
        help_text="A BibTeX (.bib), RIS (.ris) or CSL-JSON (.json) file, in UTF-8, "
        f"of at most {MAX_FILE_BYTES // 1024 // 1024} MB: in Zotero, select the "
        "items, then File → Export Library… (or right-click → Export Items…)."
    )
    format = forms.ChoiceField(choices=list(FORMATS.items()), initial="auto")
    fill_empty = forms.BooleanField(
        label="Fill in empty fields of papers already here",
        required=False,
        initial=True,
        help_text="A paper with the same arXiv id or DOI is kept as it is; ticked, "
        "its empty authors, year, venue, ids and URL are taken from the file. "
        "Nothing already filled in is overwritten.",
    )


def may_import(modeladmin: admin.ModelAdmin, request: HttpRequest) -> bool:
    """Return whether the user may import: it adds papers and changes others."""
    return modeladmin.has_add_permission(request) and modeladmin.has_change_permission(
        request
    )


def import_view(modeladmin: admin.ModelAdmin, request: HttpRequest):
    if not may_import(modeladmin, request):
        raise PermissionDenied
    report = None
    form = PaperImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > MAX_FILE_BYTES:
                # Refused before a byte is read into memory.
                raise ImportFailed(
                    f"The file is {upload.size / 1024 / 1024:.1f} MB; at most "
                    f"{MAX_FILE_BYTES // 1024 // 1024} MB can be imported at once. "
                    "Split it."
                )
            report = import_papers(
                data=upload.read(),
                format=form.cleaned_data["format"],
                filename=upload.name,
                fill_empty=form.cleaned_data["fill_empty"],
            )
        except ImportFailed as exc:
            messages.error(request, f"{exc} Nothing was imported.")
    title = "Import papers" if report is None else "Import report"
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": Paper._meta,
        "title": title,
        "page_title": title,
        "form": form,
        "report": report,
    }
    return TemplateResponse(request, "admin/issues/paper/import.html", context)


def _export_response(papers: QuerySet[Paper], format: str, name: str):
    extension, content_type = EXPORT_FORMATS[format]
    response = StreamingHttpResponse(
        iter_export(papers, format), content_type=content_type
    )
    response["Content-Disposition"] = f'attachment; filename="{name}.{extension}"'
    return response


def export_view(modeladmin: admin.ModelAdmin, request: HttpRequest):
    """Every paper, or one year's (?year=2024), as ?format=bibtex or csl."""
    if not modeladmin.has_view_permission(request):
        raise PermissionDenied
    format = request.GET.get("format", "bibtex")
    if format not in EXPORT_FORMATS:
        format = "bibtex"
    papers = Paper.objects.all()
    name = "papers"
    year = request.GET.get("year", "")
    if year.isdigit() and len(year) == 4:
        papers, name = papers.filter(year=int(year)), f"papers-{year}"
    return _export_response(papers, format, name)


def urls(modeladmin: admin.ModelAdmin) -> list:
    """Return the import and export pages' URLs, for PaperAdmin.get_urls."""
    site = modeladmin.admin_site
    return [
        path(
            "import/",
            site.admin_view(lambda request: import_view(modeladmin, request)),
            name="issues_paper_import",
        ),
        path(
            "export/",
            site.admin_view(
                require_safe(lambda request: export_view(modeladmin, request))
            ),
            name="issues_paper_export",
        ),
    ]


# Shows what the viewer may already see, so the view permission is enough.
@admin.action(description="Export the selected papers as BibTeX", permissions=["view"])
def export_bibtex(modeladmin, request: HttpRequest, queryset):
    return _export_response(
        Paper.objects.filter(pk__in=queryset.order_by().values("pk")),
        "bibtex",
        "papers",
    )


@admin.action(
    description="Export the selected papers as CSL-JSON", permissions=["view"]
)
def export_csl(modeladmin, request: HttpRequest, queryset):
    return _export_response(
        Paper.objects.filter(pk__in=queryset.order_by().values("pk")), "csl", "papers"
    )
