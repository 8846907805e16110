from django.urls import path

from orders import review_views, views, views_aftersales

app_name = "orders"
urlpatterns = [
    path("", views.my_orders, name="mine"),
    path("cart/", views.cart_page, name="cart"),
    path("cart/add/", views.cart_add, name="cart_add"),
    path("cart/update/", views.cart_update, name="cart_update"),
    path("cart/checkout/", views.cart_checkout, name="cart_checkout"),
    path("checkout/", views.checkout, name="checkout"),
    path("lookup/", views.lookup, name="lookup"),
    path("items/<int:item_id>/review/", review_views.post_review, name="review"),
    path("<str:number>/", views.detail, name="detail"),
    path("<str:number>/status.json", views.status_json, name="status"),
    path("<str:number>/cancel/", views.cancel, name="cancel"),
    path("<str:number>/codes.<str:fmt>", views.download_codes, name="download"),
    path("<str:number>/after-sales/", views_aftersales.open_request, name="after_sales"),
]
