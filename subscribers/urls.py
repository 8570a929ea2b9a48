from django.urls import path

from . import views

app_name = "subscribers"

urlpatterns = [
    path("subscribe/", views.subscribe, name="subscribe"),
    path("subscribe/confirm/<str:token>/", views.confirm, name="confirm"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path(
        "unsubscribe/<str:token>/resubscribe/",
        views.resubscribe_by_token,
        name="resubscribe_by_token",
    ),
    path("account/", views.account, name="account"),
    path("account/login/", views.login, name="login"),
    path("account/login/<str:token>/", views.login_link, name="login_link"),
    path("account/logout/", views.logout, name="logout"),
    path("account/pause/", views.pause, name="pause"),
    path("account/tracking/", views.tracking, name="tracking"),
    path("account/newsletters/", views.newsletters, name="newsletters"),
    path("account/email/", views.email_change, name="email_change"),
    path(
        "account/email/<str:token>/",
        views.email_change_confirm,
        name="email_change_confirm",
    ),
    path("account/unsubscribe/", views.account_unsubscribe, name="account_unsubscribe"),
    path("account/resubscribe/", views.resubscribe, name="resubscribe"),
    path("account/export/", views.export_data, name="export"),
    path("account/delete/", views.delete, name="delete"),
]
