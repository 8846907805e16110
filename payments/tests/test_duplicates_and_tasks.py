"""Duplicate payments (refund, tell the buyer, the periodic backstop), the sandbox on expiry, the
notification endpoints' contract, and the beat tasks' wiring."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import RequestFactory
from django.utils import timezone

from kameng.celery import app as celery_app
from orders.models import Order
from payments import reconcile, services, tasks
from payments.models import Notification, Payment, Refund
from payments.tests.conftest import PRICE_FEN, alipay_post, unpaid_order

pytestmark = pytest.mark.django_db(transaction=True)


def sandbox_paid(order) -> Payment:
    payment, _ = services.start_payment(order=order, provider_name="sandbox")
    outcome = services.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=order.total_fen, gateway_trade_no=f"S{payment.pk}",
        provider="sandbox",
    )  # fmt: skip
    assert outcome in ("confirmed", "duplicate")
    return payment


def test_second_payment_by_notification_is_refunded_and_the_buyer_told(alipay_gateway, stocked_sku, client):
    order = unpaid_order(stocked_sku)
    sandbox_paid(order)
    second, _ = services.start_payment(order=order, provider_name="alipay", request=RequestFactory().get("/"))
    alipay_gateway.pay(second.out_trade_no)

    assert alipay_post(client, alipay_gateway.notification(out_trade_no=second.out_trade_no)).content == b"success"

    refund = Refund.objects.get()
    assert (refund.payment_id, refund.reason, refund.status) == (second.pk, "duplicate_payment", "succeeded")
    assert alipay_gateway.refunds == {(second.out_trade_no, refund.out_refund_no): "88.88"}
    told = [m for m in mail.outbox if "重复支付" in m.subject]
    assert len(told) == 1 and told[0].to == [order.email]
    assert "¥88.88" in told[0].body and refund.out_refund_no in told[0].body
    assert services.send_duplicate_payment_email(refund_id=refund.pk) is False  # once per refund
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED and order.refunded_fen == 0
    assert order.events.filter(kind="duplicate_payment_refunded").exists()


def test_scan_refunds_a_duplicate_that_slipped_through(stocked_sku):
    order = unpaid_order(stocked_sku)
    first = sandbox_paid(order)
    # A second successful payment recorded without its refund (e.g. the process died in between).
    extra = Payment.objects.create(
        order=order, provider="sandbox", out_trade_no="P-EXTRA-1", amount_fen=PRICE_FEN, status=Payment.Status.PAID,
        gateway_trade_no="S-EXTRA", paid_at=timezone.now(),
    )  # fmt: skip

    assert reconcile.scan_duplicate_payments() == 1
    assert reconcile.scan_duplicate_payments() == 0  # idempotent

    refund = Refund.objects.get()
    assert (refund.payment_id, refund.reason, refund.status) == (extra.pk, "duplicate_payment", "succeeded")
    assert not Refund.objects.filter(payment=first).exists()
    assert order.events.filter(kind="duplicate_payment", data__found_by="scan").count() == 1
    assert len([m for m in mail.outbox if "重复支付" in m.subject]) == 1


def test_scan_tries_a_failed_duplicate_refund_again_up_to_a_limit(stocked_sku):
    order = unpaid_order(stocked_sku)
    sandbox_paid(order)
    extra = Payment.objects.create(
        order=order, provider="sandbox", out_trade_no="P-EXTRA-2", amount_fen=PRICE_FEN, status=Payment.Status.PAID,
        paid_at=timezone.now(),
    )  # fmt: skip
    for i in range(services.MAX_DUPLICATE_REFUND_ATTEMPTS - 1):
        Refund.objects.create(payment=extra, order=order, out_refund_no=f"R-FAILED-{i}", amount_fen=PRICE_FEN,
                              reason="duplicate_payment", status="failed")  # fmt: skip

    assert reconcile.scan_duplicate_payments() == 1  # one more try
    Refund.objects.filter(payment=extra).update(status="failed")
    assert reconcile.scan_duplicate_payments() == 0  # the limit is reached: operators take over


def test_sandbox_attempts_are_closed_locally_on_expiry(stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = services.start_payment(order=order, provider_name="sandbox")
    assert reconcile.close_expired_attempts()["closed"] == 0  # still payable
    assert reconcile.close_expired_attempts(now=order.reserved_until + timedelta(seconds=1))["closed"] == 1
    assert Payment.objects.get(pk=payment.pk).status == "closed"


def test_stale_requested_refund_is_executed_again(stocked_sku):
    order = unpaid_order(stocked_sku)
    payment = sandbox_paid(order)
    refund = Refund.objects.create(
        payment=payment, order=order, out_refund_no="R-LOST-TASK", amount_fen=100, reason="operator"
    )
    assert reconcile.reconcile_refunds()["requeued"] == 0  # too young to be lost
    assert reconcile.reconcile_refunds(now=timezone.now() + timedelta(minutes=6))["requeued"] == 1
    assert Refund.objects.get(pk=refund.pk).status == "succeeded"


# -- the endpoints ---------------------------------------------------------------------------------------


def test_notification_endpoints_take_posts_only(client):
    assert client.get("/payments/alipay/notify/").status_code == 405
    assert client.get("/payments/wechat/notify/").status_code == 405
    assert not Notification.objects.exists()


def test_notification_for_an_unconfigured_provider_is_stored_and_refused(client):
    response = client.post("/payments/wechat/notify/", data="{}", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "FAIL"
    response = client.post("/payments/alipay/notify/", data="a=1", content_type="application/x-www-form-urlencoded")
    assert response.content == b"failure"
    assert list(Notification.objects.order_by("pk").values_list("provider", "outcome")) == [
        ("wechat", "refused"),
        ("alipay", "refused"),
    ]


def test_a_failure_while_processing_keeps_the_raw_notification(alipay_gateway, stocked_sku, client, settings):
    payment, _ = services.start_payment(order=unpaid_order(stocked_sku), provider_name="alipay", request=None)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no)
    with open(settings.ALIPAY_PUBLIC_KEY_PATH, "w") as handle:
        handle.write("not a key any more")  # breaks verification in an unexpected place

    response = alipay_post(client, params)

    assert response.content == b"failure"
    record = Notification.objects.get()
    assert record.outcome == "error" and "ALIPAY_PUBLIC_KEY_PATH" in record.reason
    assert payment.out_trade_no in record.body
    assert "MII" not in record.reason  # no key material in what operators read


# -- beat ------------------------------------------------------------------------------------------------


def test_periodic_tasks_are_scheduled_and_registered():
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    ours = {
        "payments.tasks.query_open_payments", "payments.tasks.close_expired_attempts",
        "payments.tasks.scan_duplicate_payments", "payments.tasks.reconcile_refunds",
    }  # fmt: skip
    assert ours <= names
    assert ours <= set(celery_app.tasks.keys())


def test_periodic_tasks_run_through_celery(stocked_sku):
    order = unpaid_order(stocked_sku)
    services.start_payment(order=order, provider_name="sandbox")
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))

    assert tasks.close_expired_attempts.apply().result["closed"] == 1
    assert tasks.query_open_payments.apply().result["queried"] == 0
    assert tasks.scan_duplicate_payments.apply().result == 0
    assert tasks.reconcile_refunds.apply().result["finished"] == 0
