"""The Paper admin's "Add paper from id": paste an arXiv id, a DOI or a link, review
the details arXiv or Crossref gave, save. And the editor's one click that adds an
unknown reference's paper (static/js/paper-add.js).

Both need a staff member with the add permission on papers; PaperAdmin mixes this in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST

from . import paper_adding
from .paper_metadata import ApiBusy, PaperLookupError, lookup_paper, parse_identifier

# The add form's query parameter naming the paper to fill it from.
FROM_ID = "from_id"


class IdentifierForm(forms.Form):
    identifier = forms.CharField(
        label="arXiv id, DOI or link",
        max_length=500,
        widget=forms.TextInput(attrs={"size": 60, "autofocus": True}),
        help_text="e.g. 2201.03545, arXiv:2201.03545v1, 10.1109/CVPR52688.2022.01167, "
        "https://arxiv.org/abs/2201.03545 or https://doi.org/10.…",
    )

    def clean_identifier(self):
        try:
            return str(parse_identifier(self.cleaned_data["identifier"]))
        except PaperLookupError as exc:
            raise forms.ValidationError(str(exc)) from exc


if TYPE_CHECKING:
    # Mixed into a ModelAdmin, whose methods and attributes it uses.
    _ModelAdmin = admin.ModelAdmin
else:
    _ModelAdmin = object


class AddFromIdentifierMixin(_ModelAdmin):
    """Add the "Add paper from id" page and the one-click endpoint to PaperAdmin."""

    def get_urls(self):
        urls = [
            path(
                "add-from-id/",
                self.admin_site.admin_view(
                    require_http_methods(["GET", "HEAD", "POST"])(self.add_from_id_view)
                ),
                name="issues_paper_add_from_id",
            ),
            path(
                "add-from-id/create/",
                self.admin_site.admin_view(require_POST(self.create_from_id_view)),
                name="issues_paper_create_from_id",
            ),
        ]
        return urls + super().get_urls()

    def add_from_id_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = IdentifierForm(
            request.POST or None,
            initial={"identifier": request.GET.get("identifier", "")},
        )
        if request.method == "POST" and form.is_valid():
            identifier = form.cleaned_data["identifier"]
            existing = paper_adding.existing_paper(parse_identifier(identifier))
            if existing is not None:
                self.message_user(
                    request, f"“{existing}” is already here.", messages.INFO
                )
                return redirect(
                    reverse("admin:issues_paper_change", args=[existing.pk])
                )
            try:
                lookup_paper(identifier)  # kept in the cache for the add form
            except PaperLookupError as exc:
                form.add_error("identifier", str(exc))
            else:
                add_url = reverse("admin:issues_paper_add")
                return redirect(f"{add_url}?{urlencode({FROM_ID: identifier})}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Add paper from its arXiv id or DOI",
            "page_title": "Add paper from its arXiv id or DOI",
            "form": form,
        }
        return TemplateResponse(request, "admin/issues/paper/add_from_id.html", context)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        initial = super().get_changeform_initial_data(request)
        identifier = request.GET.get(FROM_ID)
        if identifier:
            # The details came from the cache the "Add from id" page filled; asked
            # again only when they expired meanwhile.
            try:
                details = lookup_paper(identifier)
            except PaperLookupError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                initial.update(paper_adding.initial_from(details))
                initial.pop(FROM_ID, None)
        return initial

    def create_from_id_view(self, request: HttpRequest) -> JsonResponse:
        if not self.has_add_permission(request):
            return JsonResponse(
                {"error": "Only staff who may add papers can do this."}, status=403
            )
        try:
            paper, created = paper_adding.add_paper_from_identifier(
                identifier=request.POST.get("identifier", "")
            )
        except ApiBusy as exc:
            response = JsonResponse({"error": str(exc)}, status=503)
            response["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
            return response
        except (PaperLookupError, paper_adding.PaperNotAdded) as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        return JsonResponse(
            {
                "created": created,
                "title": paper.title,
                "slug": paper.slug,
                "change_url": reverse("admin:issues_paper_change", args=[paper.pk]),
            },
            status=201 if created else 200,
        )
