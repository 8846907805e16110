from django.urls import path

from marketing import campaign_views, wallet_views

app_name = "marketing"
urlpatterns: list = [
    path("campaigns/<slug:slug>/", campaign_views.campaign_page, name="campaign"),
    path("campaigns/<slug:slug>/share.png", campaign_views.campaign_share, name="campaign_share"),
    path("coupons/<int:pk>/claim/", wallet_views.claim_coupon, name="claim_coupon"),
]
