"""the open pixel and click redirect URLs"""

from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("o/<str:part>.gif", views.open_pixel, name="open"),
    path("r/<str:delivery>/<str:link>/", views.click, name="click"),
]
