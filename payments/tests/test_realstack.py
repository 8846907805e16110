"""The whole stack at once: the app served over HTTP, a real Celery worker on Redis, PostgreSQL.

A gateway notification is POSTed over a socket to the running app (Django's live server), the
app verifies it through the SDK's own code and commits the payment, the delivery task travels
through Redis to a real worker, and the worker delivers the codes. Nothing runs eagerly: with the
worker fixture ``task_always_eager`` is off, so an order reaches "delivered" only through the broker.
"""

from __future__ import annotations

import time
import urllib.parse
import urllib.request

import pytest
from django.core import mail
from django.test import RequestFactory

from catalog import codes
from catalog.models import CardCode
from orders.models import Fulfilment, Order, OrderItemCode
from payments import services
from payments.models import Notification
from payments.tests.conftest import unpaid_order

pytestmark = pytest.mark.django_db(transaction=True)


def post(url: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a loopback URL
        return response.status, response.read()


def wait_for_delivery(order: Order, timeout: float = 20.0) -> Order:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order.refresh_from_db()
        if order.status == Order.Status.DELIVERED:
            return order
        time.sleep(0.1)
    raise AssertionError(f"order {order.number} still {order.status} after {timeout} s")


def assert_delivered_once(order: Order, sku) -> None:
    assert Fulfilment.objects.filter(order=order).count() == 1
    link = OrderItemCode.objects.get(item__order=order)
    code = CardCode.objects.get(pk=link.code_id)
    assert code.status == CardCode.Status.SOLD and code.sku_id == sku.pk
    # The e-mail (a task of its own, queued by the delivery) went out from the worker, once, and
    # carries the code the database sold.
    deadline = time.monotonic() + 10
    while not (sent := [message for message in mail.outbox if order.email in message.to]):
        assert time.monotonic() < deadline, "no delivery e-mail"
        time.sleep(0.1)
    time.sleep(0.3)  # a second e-mail, wrongly queued, would arrive now
    assert len([message for message in mail.outbox if order.email in message.to]) == 1
    assert codes.decrypt(code.payload).code in sent[0].body


def start(order, provider: str):
    request = RequestFactory().get("/", HTTP_USER_AGENT="Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
    return services.start_payment(order=order, provider_name=provider, request=request)[0]


def test_alipay_notification_over_http_is_delivered_by_the_worker(
    live_server, celery_worker, alipay_gateway, stocked_sku
):
    order = unpaid_order(stocked_sku)
    payment = start(order, "alipay")
    alipay_gateway.pay(payment.out_trade_no)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no)
    body = urllib.parse.urlencode(params).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}

    status, answer = post(f"{live_server.url}/payments/alipay/notify/", body, headers)
    assert (status, answer) == (200, b"success")

    assert_delivered_once(wait_for_delivery(order), stocked_sku)
    # Alipay repeats notifications until it sees "success"; a repeat over HTTP changes nothing.
    assert post(f"{live_server.url}/payments/alipay/notify/", body, headers) == (200, b"success")
    time.sleep(0.5)  # give a wrongly queued second delivery the time to happen
    assert_delivered_once(order, stocked_sku)
    assert list(Notification.objects.order_by("pk").values_list("outcome", flat=True)) == ["accepted", "repeated"]


def test_forged_alipay_notification_over_http_is_refused_and_nothing_is_delivered(
    live_server, celery_worker, alipay_gateway, stocked_sku
):
    order = unpaid_order(stocked_sku)
    payment = start(order, "alipay")
    alipay_gateway.pay(payment.out_trade_no)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no)
    params["total_amount"] = "0.01"  # tampered after signing
    body = urllib.parse.urlencode(params).encode()

    status, answer = post(
        f"{live_server.url}/payments/alipay/notify/",
        body,
        {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
    )

    assert (status, answer) == (200, b"failure")
    time.sleep(1.0)  # a worker that wrongly got a delivery would have done it by now
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert not Fulfilment.objects.filter(order=order).exists()
    refused = Notification.objects.get()
    assert refused.outcome == "refused" and "total_amount=0.01" in refused.body


def test_wechat_notification_over_http_is_delivered_by_the_worker(
    live_server, celery_worker, wechat_platform, stocked_sku
):
    order = unpaid_order(stocked_sku)
    payment = start(order, "wechat")
    headers, body = wechat_platform.notification(wechat_platform.pay(payment.out_trade_no))

    status, answer = post(
        f"{live_server.url}/payments/wechat/notify/", body.encode(), {**headers, "Content-Type": "application/json"}
    )

    assert (status, answer) == (204, b"")
    assert_delivered_once(wait_for_delivery(order), stocked_sku)
