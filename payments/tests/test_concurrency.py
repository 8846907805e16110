"""The same notification many times at once, and two payments of one order at once, on PostgreSQL
with real threads: one confirmation, one delivery, every repeat answered with success."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core import mail
from django.db import connections
from django.test import Client, RequestFactory

from orders.models import Fulfilment, Order
from payments import selectors, services
from payments.models import Notification, Refund
from payments.tests.conftest import alipay_post, unpaid_order, wechat_post

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 12


def at_once(count: int, target) -> list:
    """Run ``target(i)`` on ``count`` threads released together; each closes its own connection."""
    barrier = threading.Barrier(count)

    def run(index):
        try:
            barrier.wait(timeout=30)
            return target(index)
        except Exception as exc:  # asserted on by the test
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def assert_confirmed_once(order: Order) -> None:
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert order.events.filter(kind="paid").count() == 1
    assert Fulfilment.objects.filter(order=order).count() == 1
    codes_mails = [m for m in mail.outbox if order.number in m.subject and "重复支付" not in m.subject]
    assert len(codes_mails) == 1  # the codes, once


def test_one_alipay_notification_twelve_times_at_once(alipay_gateway, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = services.start_payment(order=order, provider_name="alipay", request=RequestFactory().get("/"))
    alipay_gateway.pay(payment.out_trade_no)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no)

    answers = at_once(THREADS, lambda _i: alipay_post(Client(), params).content)

    assert answers == [b"success"] * THREADS
    assert_confirmed_once(order)
    outcomes = list(Notification.objects.values_list("outcome", flat=True))
    assert sorted(outcomes) == ["accepted"] + ["repeated"] * (THREADS - 1)


def test_one_wechat_notification_twelve_times_at_once(wechat_platform, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = services.start_payment(order=order, provider_name="wechat", request=RequestFactory().get("/"))
    headers, body = wechat_platform.notification(wechat_platform.pay(payment.out_trade_no))

    answers = at_once(THREADS, lambda _i: wechat_post(Client(), headers, body).status_code)

    assert answers == [204] * THREADS
    assert_confirmed_once(order)
    assert Notification.objects.filter(outcome="accepted").count() == 1


def test_two_attempts_paid_at_once_make_one_payment_and_one_refund(alipay_gateway, wechat_platform, stocked_sku):
    order = unpaid_order(stocked_sku)
    request = RequestFactory().get("/")
    ali, _ = services.start_payment(order=order, provider_name="alipay", request=request)
    wx, _ = services.start_payment(order=order, provider_name="wechat", request=request)
    alipay_gateway.pay(ali.out_trade_no)
    ali_params = alipay_gateway.notification(out_trade_no=ali.out_trade_no)
    wx_headers, wx_body = wechat_platform.notification(wechat_platform.pay(wx.out_trade_no))
    senders = [
        lambda: alipay_post(Client(), ali_params).content,
        lambda: wechat_post(Client(), wx_headers, wx_body).status_code,
    ]

    answers = at_once(2, lambda i: senders[i]())

    assert answers == [b"success", 204]  # both are money received: both accepted
    assert_confirmed_once(order)
    refund = Refund.objects.get()
    assert refund.reason == Refund.Reason.DUPLICATE_PAYMENT and refund.order_id == order.pk
    keeper = selectors.paying_payment(order)
    assert refund.payment_id != keeper.pk and refund.amount_fen == order.total_fen
    assert order.events.filter(kind="duplicate_payment").count() == 1
    told = [m for m in mail.outbox if "重复支付" in m.subject]
    assert len(told) == 1 and told[0].to == [order.email]
