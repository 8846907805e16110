from django.urls import path

from marketing import wallet_views

app_name = "marketing"
urlpatterns: list = [
    path("coupons/<int:pk>/claim/", wallet_views.claim_coupon, name="claim_coupon"),
]
