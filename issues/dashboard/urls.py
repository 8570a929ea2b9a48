"""The growth page and its CSV exports under /admin/growth/ (staff only)."""

from django.contrib import admin
from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", admin.site.admin_view(views.growth_view), name="growth"),
    path(
        "growth.csv",
        admin.site.admin_view(views.growth_csv),
        {"what": "growth"},
        name="growth_csv",
    ),
    path(
        "revenue.csv",
        admin.site.admin_view(views.growth_csv),
        {"what": "revenue"},
        name="revenue_csv",
    ),
]
