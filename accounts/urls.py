from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("wallet/", views.wallet_page, name="wallet"),
    path("wallet/top-up/", views.top_up, name="top_up"),
]
