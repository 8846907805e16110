"""The notification endpoints refuse oversized bodies (413) and bursts from one IP (429) before storing."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from django.test import Client, RequestFactory

from orders.models import Order
from payments import services
from payments.models import Notification
from payments.tests.conftest import alipay_post, unpaid_order

pytestmark = pytest.mark.django_db(transaction=True)
GATEWAY_IP = "110.75.242.10"  # an address of the kind Alipay posts from (public, not a trusted proxy)


def gateway(ip: str = GATEWAY_IP) -> Client:
    return Client(REMOTE_ADDR=ip)


def test_an_oversized_body_is_refused_before_anything_is_stored(settings):
    big = "x" * (settings.PAYMENT_NOTIFY_MAX_BYTES + 1)
    alipay = gateway().post(
        "/payments/alipay/notify/", data=urllib.parse.urlencode({"notify_id": "1", "junk": big}),
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    wechat = gateway().post("/payments/wechat/notify/", data=json.dumps({"junk": big}), content_type="application/json")
    assert alipay.status_code == wechat.status_code == 413
    assert not Notification.objects.exists()


def test_a_body_at_the_cap_is_still_stored(settings):
    body = json.dumps({"junk": "x" * (settings.PAYMENT_NOTIFY_MAX_BYTES - 20)})
    assert len(body) <= settings.PAYMENT_NOTIFY_MAX_BYTES
    response = gateway().post("/payments/wechat/notify/", data=body, content_type="application/json")
    assert response.status_code != 413
    assert Notification.objects.count() == 1


def test_a_burst_from_one_ip_is_limited_and_not_stored(settings):
    settings.PAYMENT_NOTIFY_RATE_LIMIT = "5/m"
    answers = [gateway().post("/payments/alipay/notify/", {"notify_id": str(n)}).status_code for n in range(8)]
    assert answers[5:] == [429, 429, 429] and 429 not in answers[:5]
    assert Notification.objects.count() == 5
    # Another address (gateways post from many) is not held back by the first one.
    assert gateway("110.75.242.11").post("/payments/alipay/notify/", {"notify_id": "x"}).status_code != 429
    assert Notification.objects.count() == 6


def test_the_default_limit_lets_a_genuine_burst_through():
    for n in range(60):
        assert gateway().post("/payments/alipay/notify/", {"notify_id": str(n)}).status_code != 429
    assert Notification.objects.count() == 60


def test_a_genuine_notification_is_still_stored_and_confirms(settings, alipay_gateway, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = services.start_payment(
        order=order, provider_name="alipay", request=RequestFactory().get("/", HTTP_USER_AGENT="Mozilla/5.0")
    )
    alipay_gateway.pay(payment.out_trade_no)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no)
    assert len(urllib.parse.urlencode(params)) < settings.PAYMENT_NOTIFY_MAX_BYTES // 10  # far below the cap
    assert alipay_post(gateway(), params).content == b"success"
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert Notification.objects.get().outcome == "accepted"
