from django.urls import path
from django.views.generic import TemplateView

app_name = "issues"

# Placeholders so that get_absolute_url resolves; the reader's views replace them.
urlpatterns = [
    path(
        "issues/<slug:slug>/",
        TemplateView.as_view(template_name="home.html"),
        name="issue",
    ),
    path(
        "papers/<slug:slug>/",
        TemplateView.as_view(template_name="home.html"),
        name="paper",
    ),
    path(
        "tags/<slug:slug>/", TemplateView.as_view(template_name="home.html"), name="tag"
    ),
]
