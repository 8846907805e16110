"""The user center under /me/. The wallet page and its top-up (payments/wallet_views.py) join these
in kameng/urls.py, in the same ``accounts`` namespace: they place orders and list the gateways,
and accounts sits below orders and payments (docs/ARCHITECTURE.md)."""

from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("points/", views.points_history, name="points"),
    path("settings/", views.notification_settings, name="settings"),
]
