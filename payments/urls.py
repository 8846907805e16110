from django.urls import path

from payments import views

app_name = "payments"
urlpatterns = [
    path("start/<str:number>/", views.start, name="start"),
    path("sandbox/<str:out_trade_no>/", views.sandbox, name="sandbox"),
    path("return/<str:out_trade_no>/", views.payment_return, name="return"),
]
