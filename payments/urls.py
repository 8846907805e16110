from django.urls import path

from payments import views

app_name = "payments"
urlpatterns = [
    path("start/<str:number>/", views.start, name="start"),
    path("sandbox/<str:out_trade_no>/", views.sandbox, name="sandbox"),
    path("return/<str:out_trade_no>/", views.payment_return, name="return"),
    # Gateways post here (DESIGN.md contract: /payments/alipay/notify/, /payments/wechat/notify/).
    path("alipay/notify/", views.alipay_notify, name="alipay_notify"),
    path("wechat/notify/", views.wechat_notify, name="wechat_notify"),
]
