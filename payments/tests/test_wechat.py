"""WeChat Pay end to end through wechatpayv3, its HTTP intercepted at the transport (``responses``).

Callbacks are encrypted with the APIv3 key and signed with the platform key exactly as the platform
does; ``WeChatPay.callback`` verifies and decrypts them. Every API call's ``Authorization`` is checked
against our merchant key, and every answer is signed by the platform key, which the SDK verifies.
An URL the fake does not know raises ConnectionError: nothing reaches the network.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.test import RequestFactory
from django.utils import timezone

from orders.models import Fulfilment, Order
from payments import reconcile, services
from payments.models import Notification, Payment, Refund
from payments.tests.conftest import PRICE_FEN, WECHAT_APPID, unpaid_order, wechat_post

pytestmark = pytest.mark.django_db(transaction=True)


def start(order):
    return services.start_payment(order=order, provider_name="wechat", request=RequestFactory().get("/"))


def test_native_pay_is_shown_as_a_qr_code_drawn_here(wechat_platform, stocked_sku, user, client):
    order = unpaid_order(stocked_sku, buyer=user)
    client.force_login(user)

    response = client.post(f"/payments/start/{order.number}/", {"provider": "wechat"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "<svg" in page and "weixin://" not in page
    assert 'data-status-url="/orders/' in page  # the page polls the order's state
    method, path, sent = wechat_platform.calls[0]
    assert (method, path) == ("POST", "/v3/pay/transactions/native")
    payment = Payment.objects.get(order=order)
    assert sent["amount"] == {"total": PRICE_FEN, "currency": "CNY"}
    assert (sent["out_trade_no"], sent["appid"], sent["mchid"]) == (payment.out_trade_no, WECHAT_APPID, "1900000001")
    assert sent["notify_url"] == "https://shop.example/payments/wechat/notify/"
    assert sent["time_expire"].endswith("+08:00")


def test_gateway_refusal_fails_the_attempt(wechat_platform, stocked_sku, settings):
    settings.WECHATPAY_MCHID = "1900000999"  # the platform rejects our Authorization for another mchid
    order = unpaid_order(stocked_sku)
    with pytest.raises(services.providers.ProviderError):
        start(order)
    assert Payment.objects.get(order=order).status == "failed"


def test_genuine_notification_confirms_and_delivers_once(wechat_platform, stocked_sku, client):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    headers, body = wechat_platform.notification(wechat_platform.pay(payment.out_trade_no))

    first = wechat_post(client, headers, body)
    again = wechat_post(client, headers, body)

    assert (first.status_code, again.status_code) == (204, 204)
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert Fulfilment.objects.filter(order=order).count() == 1 and len(mail.outbox) == 1
    accepted, repeated = Notification.objects.order_by("pk")
    assert (accepted.outcome, repeated.outcome) == ("accepted", "repeated")
    assert accepted.verified and accepted.parsed["resource"]["trade_state"] == "SUCCESS"
    assert json.loads(accepted.headers)["Wechatpay-Serial"] == wechat_platform.serial
    assert "ciphertext" in accepted.body  # raw, as received


def refused(response, reason: str) -> Notification:
    assert response.status_code in range(400, 600)
    assert response.json()["code"] == "FAIL"
    record = Notification.objects.get()
    assert record.outcome == "refused" and reason in record.reason, record.reason
    return record


def test_forged_signature_is_refused_and_recorded(wechat_platform, stocked_sku, client, keyring):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    headers, body = wechat_platform.notification(wechat_platform.pay(payment.out_trade_no), key=keyring.impostor)

    record = refused(wechat_post(client, headers, body), "signature")

    assert not record.verified and record.body == body
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT


def test_message_encrypted_with_another_apiv3_key_is_refused(wechat_platform, stocked_sku, client):
    payment, _ = start(unpaid_order(stocked_sku))
    resource = wechat_platform.pay(payment.out_trade_no)
    headers, body = wechat_platform.notification(resource, apiv3_key="0" * 32)
    refused(wechat_post(client, headers, body), "APIv3")


def test_stale_timestamp_is_refused(wechat_platform, stocked_sku, client):
    payment, _ = start(unpaid_order(stocked_sku))
    resource = wechat_platform.pay(payment.out_trade_no)
    headers, body = wechat_platform.notification(resource, timestamp=int(time.time()) - 301)  # validly signed
    refused(wechat_post(client, headers, body), "more than 300 s")
    assert Payment.objects.get(pk=payment.pk).status == "created"


def test_unknown_serial_is_refused_without_downloading_certificates(wechat_platform, stocked_sku, client):
    payment, _ = start(unpaid_order(stocked_sku))
    calls_before = len(wechat_platform.mock.calls)
    resource = wechat_platform.pay(payment.out_trade_no)
    headers, body = wechat_platform.notification(resource, serial="PUB_KEY_ID_0119999999999999999999999999999999")

    refused(wechat_post(client, headers, body), "Wechatpay-Serial")

    assert len(wechat_platform.mock.calls) == calls_before  # no /v3/certificates, nothing at all


def test_other_merchant_is_refused(wechat_platform, stocked_sku, client):
    payment, _ = start(unpaid_order(stocked_sku))
    resource = dict(wechat_platform.pay(payment.out_trade_no), mchid="1900000002")
    headers, body = wechat_platform.notification(resource)
    record = refused(wechat_post(client, headers, body), "mchid")
    assert record.verified


def test_other_app_is_refused(wechat_platform, stocked_sku, client):
    payment, _ = start(unpaid_order(stocked_sku))
    resource = dict(wechat_platform.pay(payment.out_trade_no), appid="wx9999999999999999")
    headers, body = wechat_platform.notification(resource)
    refused(wechat_post(client, headers, body), "appid")


def test_wrong_amount_is_refused(wechat_platform, stocked_sku, client):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    resource = wechat_platform.pay(payment.out_trade_no)
    resource["amount"] = {"total": 1, "payer_total": 1, "currency": "CNY", "payer_currency": "CNY"}
    headers, body = wechat_platform.notification(resource)
    refused(wechat_post(client, headers, body), "amount 1 fen differs")
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT


def test_non_success_state_is_refused(wechat_platform, stocked_sku, client):
    payment, _ = start(unpaid_order(stocked_sku))
    resource = wechat_platform.pay(payment.out_trade_no, state="PAYERROR")
    headers, body = wechat_platform.notification(resource)
    refused(wechat_post(client, headers, body), "not a success state")


@pytest.mark.parametrize("wechat_mode", ["certificate"])
def test_certificate_mode_verifies_with_the_platform_certificate(wechat_platform, stocked_sku, client, wechat_mode):
    assert wechat_platform.serial != "" and not wechat_platform.serial.startswith("PUB_KEY_ID")
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)  # the API answer is verified with the certificate's key too
    headers, body = wechat_platform.notification(wechat_platform.pay(payment.out_trade_no))

    assert wechat_post(client, headers, body).status_code == 204

    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert not [call for call in wechat_platform.mock.calls if "certificates" in call.request.url]


# -- refunds ---------------------------------------------------------------------------------------------


def paid(wechat_platform, order) -> Payment:
    payment, _ = start(order)
    resource = wechat_platform.pay(payment.out_trade_no)
    services.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=PRICE_FEN, gateway_trade_no=resource["transaction_id"],
        provider="wechat",
    )  # fmt: skip
    payment.refresh_from_db()
    assert payment.status == "paid"
    return payment


def test_refund_processing_then_refund_notification(wechat_platform, stocked_sku, client):
    order = unpaid_order(stocked_sku)
    payment = paid(wechat_platform, order)

    refund = services.request_refund(payment=payment, amount_fen=PRICE_FEN, reason=Refund.Reason.OPERATOR)

    refund.refresh_from_db()
    assert refund.status == "processing" and refund.gateway_refund_no.startswith("50")
    sent = wechat_platform.refunds[refund.out_refund_no]["data"]
    assert sent["amount"] == {"refund": PRICE_FEN, "total": PRICE_FEN, "currency": "CNY"}
    resource = {
        "mchid": "1900000001", "out_trade_no": payment.out_trade_no, "transaction_id": payment.gateway_trade_no,
        "out_refund_no": refund.out_refund_no, "refund_id": refund.gateway_refund_no, "refund_status": "SUCCESS",
        "success_time": "2024-05-02T10:00:00+08:00", "user_received_account": "支付用户零钱",
        "amount": {"total": PRICE_FEN, "refund": PRICE_FEN, "payer_total": PRICE_FEN, "payer_refund": PRICE_FEN},
    }  # fmt: skip
    headers, body = wechat_platform.notification(resource, event_type="REFUND.SUCCESS")

    assert wechat_post(client, headers, body).status_code == 204

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and order.refunded_fen == PRICE_FEN
    assert Notification.objects.get().refund_id == refund.pk


def test_refund_notification_with_another_amount_is_refused(wechat_platform, stocked_sku, client):
    payment = paid(wechat_platform, unpaid_order(stocked_sku))
    refund = services.request_refund(payment=payment, amount_fen=1000, reason=Refund.Reason.OPERATOR)
    resource = {
        "mchid": "1900000001", "out_trade_no": payment.out_trade_no, "out_refund_no": refund.out_refund_no,
        "refund_status": "SUCCESS", "amount": {"total": PRICE_FEN, "refund": PRICE_FEN},
    }  # fmt: skip
    headers, body = wechat_platform.notification(resource, event_type="REFUND.SUCCESS")
    refused(wechat_post(client, headers, body), "refund amount")
    assert Refund.objects.get(pk=refund.pk).status == "processing"


def test_processing_refund_is_reconciled_by_query(wechat_platform, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment = paid(wechat_platform, order)
    refund = services.request_refund(payment=payment, amount_fen=1000, reason=Refund.Reason.OPERATOR)
    later = timezone.now() + timedelta(minutes=2)

    assert reconcile.reconcile_refunds(now=later)["finished"] == 0  # still PROCESSING at the gateway
    refund.refresh_from_db()
    assert refund.status == "processing" and refund.query_attempts == 1
    wechat_platform.refunds[refund.out_refund_no]["status"] = "SUCCESS"
    assert reconcile.reconcile_refunds(now=later + timedelta(minutes=5))["finished"] == 1

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    queries = [path for method, path, _ in wechat_platform.calls if method == "GET" and "refund" in path]
    assert len(queries) == 2
    order.refresh_from_db()
    assert order.refunded_fen == 1000


def test_closed_refund_is_recorded_as_failed(wechat_platform, stocked_sku):
    payment = paid(wechat_platform, unpaid_order(stocked_sku))
    wechat_platform.refund_status = "CLOSED"
    refund = services.request_refund(payment=payment, amount_fen=1000, reason=Refund.Reason.OPERATOR)
    refund.refresh_from_db()
    assert refund.status == "failed" and "CLOSED" in refund.failure


def test_unreachable_gateway_leaves_the_refund_processing(wechat_platform, stocked_sku):
    payment = paid(wechat_platform, unpaid_order(stocked_sku))
    wechat_platform.mock.remove(wechat_platform.mock.registered()[1])  # POSTs no longer answered
    refund = services.request_refund(payment=payment, amount_fen=1000, reason=Refund.Reason.OPERATOR)
    refund.refresh_from_db()
    assert refund.status == "processing" and refund.failure == ""


# -- lost notifications and expiry -----------------------------------------------------------------------


def test_lost_notification_is_found_by_query(wechat_platform, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    wechat_platform.pay(payment.out_trade_no)

    counts = reconcile.query_open_payments(now=timezone.now() + timedelta(minutes=2))

    assert counts["confirmed"] == 1
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED


def test_expiry_closes_the_open_attempt(wechat_platform, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)

    reconcile.close_expired_attempts(now=order.reserved_until + timedelta(seconds=1))

    assert [(m, p.rsplit("/", 1)[-1]) for m, p, _ in wechat_platform.calls[1:]] == [
        ("GET", payment.out_trade_no),
        ("POST", "close"),
    ]
    assert wechat_platform.trades[payment.out_trade_no]["state"] == "CLOSED"
    assert Payment.objects.get(pk=payment.pk).status == "closed"


def test_attempts_of_an_order_paid_another_way_are_closed(wechat_platform, stocked_sku):
    order = unpaid_order(stocked_sku)
    open_attempt, _ = start(order)
    paid_attempt = services.start_payment(order=order, provider_name="sandbox")[0]
    services.confirm_payment(
        out_trade_no=paid_attempt.out_trade_no, amount_fen=PRICE_FEN, gateway_trade_no="S1", provider="sandbox"
    )

    reconcile.close_expired_attempts()  # the deadline has not passed, but the order is no longer payable

    assert wechat_platform.trades[open_attempt.out_trade_no]["state"] == "CLOSED"
    assert Payment.objects.get(pk=open_attempt.pk).status == "closed"
