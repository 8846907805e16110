"""Alipay end to end through alipay-sdk-python against a fake gateway on 127.0.0.1.

Notifications are signed the way Alipay signs them and verified by the SDK's own
``verify_with_rsa``; every call the SDK makes is checked for our RSA2 signature and answered with a
body signed by "Alipay", which the SDK verifies in turn.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization as ser
from django.core import mail
from django.test import RequestFactory
from django.utils import timezone

from orders.models import Fulfilment, Order
from payments import providers, reconcile, services
from payments.models import Notification, Payment, Refund
from payments.providers.alipay import AlipayProvider
from payments.tests.conftest import alipay_post, configure_alipay, private_pem, rsa2_valid, unpaid_order

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


def start(order, *, agent: str = DESKTOP, method: str = ""):
    request = RequestFactory().get("/", HTTP_USER_AGENT=agent)
    return services.start_payment(order=order, provider_name="alipay", request=request, method=method)


def signed_query(url: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


# -- starting a payment ----------------------------------------------------------------------------------


def test_desktop_gets_a_page_pay_url_signed_with_our_key(alipay_gateway, stocked_sku, keyring):
    order = unpaid_order(stocked_sku)
    payment, action = start(order)
    assert action.redirect_url.startswith(alipay_gateway.url + "?")
    params = signed_query(action.redirect_url)
    signature = params.pop("sign")
    content = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    assert rsa2_valid(keyring.alipay_app.public_key(), content, signature)
    biz = json.loads(params["biz_content"])
    assert params["method"] == "alipay.trade.page.pay" and params["sign_type"] == "RSA2"
    assert biz["product_code"] == "FAST_INSTANT_TRADE_PAY"
    assert (biz["out_trade_no"], biz["total_amount"]) == (payment.out_trade_no, "88.88")
    # The gateway refuses a payment after the reservation ends; Beijing wall-clock time.
    beijing = order.reserved_until.astimezone(timezone.get_fixed_timezone(8 * 60))
    assert biz["time_expire"] == beijing.strftime("%Y-%m-%d %H:%M:%S")
    assert params["notify_url"] == "https://shop.example/payments/alipay/notify/"
    assert params["return_url"].endswith(f"/payments/return/{payment.out_trade_no}/")
    assert biz["extend_params"] == {"royalty_freeze": "true"}  # frozen for the split after delivery
    assert alipay_gateway.calls == []  # page pay is a signed redirect: no HTTP call of ours


def test_phone_gets_wap_pay(alipay_gateway, stocked_sku):
    _payment, action = start(unpaid_order(stocked_sku), agent=PHONE)
    params = signed_query(action.redirect_url)
    assert params["method"] == "alipay.trade.wap.pay"
    assert json.loads(params["biz_content"])["product_code"] == "QUICK_WAP_WAY"


def test_qr_option_precreates_and_draws_the_code_on_our_page(alipay_gateway, stocked_sku, user, client):
    order = unpaid_order(stocked_sku, buyer=user)
    client.force_login(user)
    response = client.post(f"/payments/start/{order.number}/", {"provider": "alipay", "method": "qr"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "<svg" in page and "qr.alipay.com" not in page  # drawn here; the link itself is not shown
    assert alipay_gateway.methods() == ["alipay.trade.precreate"]
    payment = Payment.objects.get(order=order)
    assert alipay_gateway.calls[0][1]["total_amount"] == "88.88"
    assert alipay_gateway.trades[payment.out_trade_no]["status"] == "WAIT_BUYER_PAY"


def test_unknown_method_is_refused(alipay_gateway, stocked_sku):
    with pytest.raises(services.PaymentError):
        start(unpaid_order(stocked_sku), method="barcode")
    assert not Payment.objects.exists()


def test_provider_is_offered_only_when_configured(settings, alipay_gateway):
    assert "alipay" in [p.name for p in providers.available()]
    settings.ALIPAY_PUBLIC_KEY_PATH = ""
    assert "alipay" not in [p.name for p in providers.available()]
    with pytest.raises(providers.ProviderError):
        providers.get("alipay")


def test_pkcs8_and_bare_base64_keys_are_converted_on_load(settings, tmp_path, alipay_gateway, keyring, stocked_sku):
    configure_alipay(settings, tmp_path, keyring, private=private_pem(keyring.alipay_app, ser.PrivateFormat.PKCS8))
    settings.ALIPAY_GATEWAY_URL = alipay_gateway.url
    payment, _ = start(unpaid_order(stocked_sku))
    alipay_gateway.pay(payment.out_trade_no)
    # The gateway checks our signature on the query: the converted key signs correctly.
    assert AlipayProvider().query(payment=payment).state == providers.TradeState.PAID


# -- notifications ---------------------------------------------------------------------------------------


def test_genuine_notification_confirms_and_delivers_once(alipay_gateway, stocked_sku, client):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    alipay_gateway.pay(payment.out_trade_no)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no)

    first = alipay_post(client, params)
    again = alipay_post(client, params)

    assert (first.content, again.content) == (b"success", b"success")
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert Fulfilment.objects.filter(order=order).count() == 1
    assert order.events.filter(kind="paid").count() == 1
    assert len(mail.outbox) == 1  # the codes, once
    accepted, repeated = Notification.objects.order_by("pk")
    assert (accepted.outcome, repeated.outcome) == ("accepted", "repeated")
    assert accepted.verified and accepted.payment_id == payment.pk and accepted.kind == "payment"
    assert "sign=" in accepted.body and accepted.parsed["trade_status"] == "TRADE_SUCCESS"
    payment.refresh_from_db()
    assert (payment.status, payment.gateway_trade_no) == ("paid", params["trade_no"])


@pytest.mark.parametrize("sign_empty", [False, True], ids=["empty-values-unsigned", "empty-values-signed"])
def test_empty_values_are_read_either_way(alipay_gateway, stocked_sku, client, sign_empty):
    payment, _ = start(unpaid_order(stocked_sku))
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no, sign_empty=sign_empty)
    assert params["passback_params"] == ""
    assert alipay_post(client, params).content == b"success"


def test_forged_signature_is_refused_and_recorded(alipay_gateway, stocked_sku, client, keyring):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    forged = alipay_gateway.notification(out_trade_no=payment.out_trade_no, key=keyring.impostor)

    response = alipay_post(client, forged)

    assert response.content == b"failure"
    record = Notification.objects.get()
    assert (record.outcome, record.verified) == ("refused", False)
    assert "signature" in record.reason and record.out_trade_no == payment.out_trade_no
    assert urllib.parse.parse_qs(record.body)["sign"] == [forged["sign"]]  # the raw payload, for operators
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT


def test_tampered_field_breaks_the_signature(alipay_gateway, stocked_sku, client):
    payment, _ = start(unpaid_order(stocked_sku))
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no, total_amount="0.01")
    params["total_amount"] = "88.88"
    assert alipay_post(client, params).content == b"failure"
    assert Payment.objects.get(pk=payment.pk).status == "created"


def test_sha1_signature_type_is_refused(alipay_gateway, stocked_sku, client):
    payment, _ = start(unpaid_order(stocked_sku))
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no, sign_type="RSA")
    assert alipay_post(client, params).content == b"failure"
    assert "RSA2" in Notification.objects.get().reason


def test_other_app_id_is_refused(alipay_gateway, stocked_sku, client):
    payment, _ = start(unpaid_order(stocked_sku))
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no, app_id="2021009999999999")
    assert alipay_post(client, params).content == b"failure"
    record = Notification.objects.get()
    assert record.verified and record.outcome == "refused" and "app_id" in record.reason
    assert Payment.objects.get(pk=payment.pk).status == "created"


def test_wrong_amount_is_refused(alipay_gateway, stocked_sku, client):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no, total_amount="8.88")
    assert alipay_post(client, params).content == b"failure"
    record = Notification.objects.get()
    assert record.outcome == "refused" and "888 fen differs" in record.reason and record.payment_id == payment.pk
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert order.events.filter(kind="payment_amount_mismatch").exists()


@pytest.mark.parametrize("state", ["WAIT_BUYER_PAY", "TRADE_CLOSED"])
def test_non_success_state_is_refused(alipay_gateway, stocked_sku, client, state):
    payment, _ = start(unpaid_order(stocked_sku))
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no, trade_status=state)
    assert alipay_post(client, params).content == b"failure"
    assert "not a success state" in Notification.objects.get().reason
    assert Payment.objects.get(pk=payment.pk).status == "created"


def test_unknown_trade_is_refused(alipay_gateway, client):
    params = alipay_gateway.notification(out_trade_no="P000000NOTOURS")
    assert alipay_post(client, params).content == b"failure"
    assert "unknown out_trade_no" in Notification.objects.get().reason


def test_trade_finished_after_trade_success_is_one_payment(alipay_gateway, stocked_sku, client):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    alipay_gateway.pay(payment.out_trade_no)
    success = alipay_gateway.notification(out_trade_no=payment.out_trade_no, trade_status="TRADE_SUCCESS")
    finished = alipay_gateway.notification(out_trade_no=payment.out_trade_no, trade_status="TRADE_FINISHED")

    assert alipay_post(client, success).content == b"success"
    assert alipay_post(client, finished).content == b"success"

    assert list(Notification.objects.order_by("pk").values_list("outcome", flat=True)) == ["accepted", "repeated"]
    assert order.events.filter(kind="paid").count() == 1
    assert Fulfilment.objects.filter(order=order).count() == 1


def test_trade_finished_alone_confirms(alipay_gateway, stocked_sku, client):
    """Products without refunds go straight to TRADE_FINISHED."""
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no, trade_status="TRADE_FINISHED")
    assert alipay_post(client, params).content == b"success"
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED


def test_notification_for_a_closed_attempt_still_counts(alipay_gateway, stocked_sku, client):
    """Money that arrived is never ignored: an attempt we closed locally that was paid anyway is confirmed."""
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.CLOSED)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no)
    assert alipay_post(client, params).content == b"success"
    assert Payment.objects.get(pk=payment.pk).status == "paid"


# -- refunds ---------------------------------------------------------------------------------------------


def paid_payment(alipay_gateway, order) -> Payment:
    payment, _ = start(order)
    trade_no = alipay_gateway.pay(payment.out_trade_no)
    outcome = services.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=payment.amount_fen, gateway_trade_no=trade_no, provider="alipay"
    )
    assert outcome == "confirmed"
    payment.refresh_from_db()
    return payment


def test_refund_goes_to_the_gateway_once(alipay_gateway, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment = paid_payment(alipay_gateway, order)

    refund = services.request_refund(payment=payment, amount_fen=1000, reason=Refund.Reason.OPERATOR, note="test")

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert alipay_gateway.refunds == {(payment.out_trade_no, refund.out_refund_no): "10.00"}
    assert services.execute_refund(refund_id=refund.pk) == "skipped"
    assert alipay_gateway.methods().count("alipay.trade.refund") == 1
    order.refresh_from_db()
    assert order.refunded_fen == 1000


def test_refund_with_unknown_outcome_stays_processing_then_reconciles(alipay_gateway, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment = paid_payment(alipay_gateway, order)
    alipay_gateway.busy.add("alipay.trade.refund")

    refund = services.request_refund(payment=payment, amount_fen=payment.amount_fen, reason=Refund.Reason.OPERATOR)

    refund.refresh_from_db()
    assert refund.status == "processing"  # never guessed to have failed
    alipay_gateway.busy.clear()
    later = timezone.now() + timedelta(minutes=2)
    counts = reconcile.reconcile_refunds(now=later)

    assert counts["finished"] == 1
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    # Asked first; the gateway did not know it, so it was sent again with the same out_request_no.
    assert alipay_gateway.methods()[-2:] == ["alipay.trade.fastpay.refund.query", "alipay.trade.refund"]
    assert alipay_gateway.calls[-1][1]["out_request_no"] == refund.out_refund_no
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED


def test_refund_notification_finishes_a_processing_refund(alipay_gateway, stocked_sku, client):
    order = unpaid_order(stocked_sku)
    payment = paid_payment(alipay_gateway, order)
    alipay_gateway.busy.add("alipay.trade.refund")
    refund = services.request_refund(payment=payment, amount_fen=2000, reason=Refund.Reason.OPERATOR)
    params = alipay_gateway.notification(
        out_trade_no=payment.out_trade_no, out_biz_no=refund.out_refund_no, refund_fee="20.00",
        gmt_refund="2024-05-02 10:00:00.123",
    )  # fmt: skip

    assert alipay_post(client, params).content == b"success"
    assert alipay_post(client, params).content == b"success"

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    record = Notification.objects.order_by("pk").first()
    assert (record.kind, record.refund_id, record.outcome) == ("refund", refund.pk, "accepted")
    assert Notification.objects.order_by("pk").last().outcome == "repeated"
    order.refresh_from_db()
    assert order.refunded_fen == 2000


def test_refund_notification_for_another_trade_is_refused(alipay_gateway, stocked_sku, client):
    payment = paid_payment(alipay_gateway, unpaid_order(stocked_sku))
    alipay_gateway.busy.add("alipay.trade.refund")
    refund = services.request_refund(payment=payment, amount_fen=2000, reason=Refund.Reason.OPERATOR)
    other = paid_payment(alipay_gateway, unpaid_order(stocked_sku))
    params = alipay_gateway.notification(out_trade_no=other.out_trade_no, out_biz_no=refund.out_refund_no,
                                         refund_fee="20.00")  # fmt: skip
    assert alipay_post(client, params).content == b"failure"
    assert Refund.objects.get(pk=refund.pk).status == "processing"


# -- lost notifications and expiry -----------------------------------------------------------------------


def test_lost_notification_is_found_by_query(alipay_gateway, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    alipay_gateway.pay(payment.out_trade_no)  # paid, but the notification never arrives

    assert reconcile.query_open_payments()["queried"] == 0  # younger than a minute: not yet
    counts = reconcile.query_open_payments(now=timezone.now() + timedelta(minutes=2))

    assert counts["confirmed"] == 1
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert (
        Payment.objects.get(pk=payment.pk).gateway_trade_no == alipay_gateway.trades[payment.out_trade_no]["trade_no"]
    )


def test_open_trade_is_asked_again_with_back_off(alipay_gateway, stocked_sku):
    payment, _ = start(unpaid_order(stocked_sku))
    alipay_gateway.pay(payment.out_trade_no, status="WAIT_BUYER_PAY")
    now = timezone.now() + timedelta(minutes=2)

    reconcile.query_open_payments(now=now)
    reconcile.query_open_payments(now=now + timedelta(seconds=30))  # not due yet
    payment.refresh_from_db()
    assert alipay_gateway.methods() == ["alipay.trade.query"]
    assert payment.query_attempts == 1 and payment.next_query_at == now + timedelta(seconds=60)

    reconcile.query_open_payments(now=now + timedelta(seconds=61))
    payment.refresh_from_db()
    assert alipay_gateway.methods() == ["alipay.trade.query"] * 2
    assert payment.next_query_at == now + timedelta(seconds=61 + 120)


def test_forged_query_answer_is_not_trusted(alipay_gateway, stocked_sku, keyring):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    alipay_gateway.pay(payment.out_trade_no)
    alipay_gateway.key = keyring.impostor  # someone else answers in Alipay's name

    counts = reconcile.query_open_payments(now=timezone.now() + timedelta(minutes=2))

    assert (counts["confirmed"], counts["errors"]) == (0, 1)
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT


def test_expiry_closes_the_open_attempt_at_the_gateway(alipay_gateway, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    alipay_gateway.pay(payment.out_trade_no, status="WAIT_BUYER_PAY")
    past_deadline = order.reserved_until + timedelta(seconds=1)

    assert reconcile.close_expired_attempts(now=past_deadline)["closed"] == 1

    assert alipay_gateway.methods() == ["alipay.trade.query", "alipay.trade.close"]
    assert alipay_gateway.trades[payment.out_trade_no]["status"] == "TRADE_CLOSED"
    payment.refresh_from_db()
    assert payment.status == "closed" and payment.closed_at is not None


def test_expiry_confirms_a_paid_attempt_instead_of_closing_it(alipay_gateway, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    alipay_gateway.pay(payment.out_trade_no)
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))

    assert reconcile.close_expired_attempts()["confirmed"] == 1

    assert "alipay.trade.close" not in alipay_gateway.methods()
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED  # a late payment is still delivered while stock lasts
    assert order.events.filter(kind="paid_late").exists()


def test_attempt_the_buyer_never_opened_is_closed(alipay_gateway, stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = start(order)  # page pay: Alipay creates the trade only when the buyer logs in
    reconcile.close_expired_attempts(now=order.reserved_until + timedelta(seconds=1))
    assert Payment.objects.get(pk=payment.pk).status == "closed"


# -- split settlement ------------------------------------------------------------------------------------


def test_royalty_is_settled_and_a_later_refund_takes_the_merchants_share_back(alipay_gateway, stocked_sku, client):
    from accounts.models import Merchant
    from kameng.money import fen_to_yuan_str
    from payments import settlement
    from payments.models import Settlement
    from payments.selectors import violations

    order = unpaid_order(stocked_sku)
    payment, _ = start(order)
    alipay_gateway.pay(payment.out_trade_no)
    assert alipay_post(client, alipay_gateway.notification(out_trade_no=payment.out_trade_no)).content == b"success"
    Merchant.objects.update(alipay_settlement_account="2088000000000042")
    settlement.create_due_settlements()
    settlement.execute_due_settlements()
    settled = Settlement.objects.get(order=order)
    assert settled.status == Settlement.Status.SETTLED
    [settle] = [biz for method, biz in alipay_gateway.calls if method == "alipay.trade.order.settle"]
    assert settle["royalty_parameters"][0]["trans_in"] == "2088000000000042"
    methods = alipay_gateway.methods()
    assert methods.index("alipay.trade.royalty.relation.bind") < methods.index("alipay.trade.order.settle")
    assert alipay_gateway.royalty_receivers["2088000000000042"]["type"] == "userId"

    refund = services.request_refund(
        payment=Payment.objects.get(pk=payment.pk), amount_fen=1_000, reason=Refund.Reason.OPERATOR
    )

    refund.refresh_from_db()
    settled.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    [asked] = [biz for method, biz in alipay_gateway.calls if method == "alipay.trade.refund"]
    assert asked["refund_royalty_parameters"] == [
        {
            "royalty_type": "transfer", "trans_out_type": "userId", "trans_out": "2088000000000042",
            "amount": fen_to_yuan_str(settled.reversed_merchant_fen), "desc": f"refund {refund.out_refund_no}",
        }
    ]  # fmt: skip
    assert 0 < settled.reversed_merchant_fen < 1_000
    assert list(violations()) == []
