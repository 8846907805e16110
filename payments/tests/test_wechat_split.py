"""WeChat Pay profit sharing through wechatpayv3's own code against the fake platform: the trade is
paid with profit sharing on, the merchant is added as a receiver (legal name encrypted for the
platform), its share is split out with the rest unfrozen; the 30% cap and missing accounts refuse."""

from __future__ import annotations

import pytest
from django.core import mail

from accounts.models import Merchant
from orders.models import Order
from payments import services, settlement
from payments.models import Payment, Refund, Settlement
from payments.selectors import violations
from payments.tests.conftest import unpaid_order, wechat_post
from payments.tests.test_wechat import start

pytestmark = pytest.mark.django_db(transaction=True)
LEGAL_NAME = "深圳市卡盟示例网络科技有限公司"


def wechat_paid_order(wechat_platform, sku, client) -> Order:
    order = unpaid_order(sku)
    payment, _ = start(order)
    headers, body = wechat_platform.notification(wechat_platform.pay(payment.out_trade_no))
    assert wechat_post(client, headers, body).status_code == 204
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    return order


@pytest.fixture
def payee(stocked_sku):
    merchant = stocked_sku.product.merchant
    Merchant.objects.filter(pk=merchant.pk).update(wechat_settlement_account="1900000109", settlement_name=LEGAL_NAME)
    return merchant


def test_the_merchants_share_is_split_out_and_the_commission_unfrozen(
    wechat_platform, stocked_sku, client, payee, settings
):
    settings.WECHATPAY_PROFIT_SHARING_MAX_RATIO = "0.95"  # the platform had WeChat raise its cap
    order = wechat_paid_order(wechat_platform, stocked_sku, client)
    pay_call = next(data for method, path, data in wechat_platform.calls if path == "/v3/pay/transactions/native")
    assert pay_call["settle_info"] == {"profit_sharing": True}  # funds frozen until the split

    settlement.create_due_settlements()
    settlement.execute_due_settlements()

    settled = Settlement.objects.get(order=order)
    assert settled.status == Settlement.Status.SETTLED
    added = wechat_platform.receivers["1900000109"]
    assert (added["type"], added["relation_type"], added["name"]) == ("MERCHANT_ID", "PARTNER", LEGAL_NAME)
    split = wechat_platform.splits[settled.out_request_no]["data"]
    payment = Payment.objects.get(order=order)
    assert split["transaction_id"] == payment.gateway_trade_no and split["unfreeze_unsplit"] is True
    assert [(r["type"], r["account"], r["amount"]) for r in split["receivers"]] == [
        ("MERCHANT_ID", "1900000109", settled.merchant_fen)
    ]
    assert settled.merchant_fen + settled.fee_fen == order.total_fen
    assert list(violations()) == []

    settlement.execute_due_settlements()  # nothing is split twice
    assert len([c for c in wechat_platform.calls if c[1] == "/v3/profitsharing/orders"]) == 1


def test_a_share_above_the_cap_is_refused_before_any_call(wechat_platform, stocked_sku, client, payee):
    order = wechat_paid_order(wechat_platform, stocked_sku, client)  # the default cap: 30%

    settlement.create_due_settlements()
    settlement.execute_due_settlements()

    waiting = Settlement.objects.get(order=order)
    assert waiting.status == Settlement.Status.PENDING and waiting.next_attempt_at is not None
    assert "cap" in waiting.failure and "ask WeChat Pay to raise the cap" in waiting.failure
    assert not [c for c in wechat_platform.calls if c[1].startswith("/v3/profitsharing/")]


def test_a_merchant_without_a_receiver_account_is_not_split(wechat_platform, stocked_sku, client, settings):
    settings.WECHATPAY_PROFIT_SHARING_MAX_RATIO = "0.95"
    order = wechat_paid_order(wechat_platform, stocked_sku, client)

    settlement.create_due_settlements()
    settlement.execute_due_settlements()

    waiting = Settlement.objects.get(order=order)
    assert waiting.status == Settlement.Status.PENDING
    assert "has no receiver account or legal name" in waiting.failure
    assert not wechat_platform.splits


def test_an_accepted_split_is_asked_about_until_it_is_final(wechat_platform, stocked_sku, client, payee, settings):
    settings.WECHATPAY_PROFIT_SHARING_MAX_RATIO = "0.95"
    settings.OPERATOR_EMAILS = ["ops@kameng.example"]
    first = wechat_paid_order(wechat_platform, stocked_sku, client)
    second = wechat_paid_order(wechat_platform, stocked_sku, client)
    settlement.create_due_settlements()
    settlement.execute_due_settlements()
    assert set(Settlement.objects.values_list("gateway_state", flat=True)) == {"processing"}  # WeChat: PROCESSING

    assert settlement.reconcile_splits() == {"finished": 0, "closed": 0, "open": 2, "errors": 0}

    done, lost = (Settlement.objects.get(order=order) for order in (first, second))
    wechat_platform.splits[done.out_request_no]["state"] = "FINISHED"
    wechat_platform.splits[done.out_request_no]["result"] = "SUCCESS"
    wechat_platform.splits[lost.out_request_no]["state"] = "FINISHED"
    wechat_platform.splits[lost.out_request_no]["result"] = "CLOSED"  # e.g. the receiver was removed
    mail.outbox.clear()

    assert settlement.reconcile_splits() == {"finished": 1, "closed": 1, "open": 0, "errors": 0}

    done.refresh_from_db()
    lost.refresh_from_db()
    assert (done.gateway_state, lost.gateway_state) == ("finished", "closed")
    [alert] = mail.outbox
    assert lost.out_request_no in alert.subject and "the merchant was not paid" in alert.body
    assert settlement.reconcile_splits() == {
        "finished": 0,
        "closed": 0,
        "open": 0,
        "errors": 0,
    }  # final: not asked again


def test_a_refund_after_the_split_gets_the_merchants_share_back_first(
    wechat_platform, stocked_sku, client, payee, settings
):
    settings.WECHATPAY_PROFIT_SHARING_MAX_RATIO = "0.95"
    order = wechat_paid_order(wechat_platform, stocked_sku, client)
    settlement.create_due_settlements()
    settlement.execute_due_settlements()
    settled = Settlement.objects.get(order=order)
    wechat_platform.refund_status = "SUCCESS"

    refund = services.request_refund(
        payment=Payment.objects.get(order=order), amount_fen=1_000, reason=Refund.Reason.OPERATOR, note="part"
    )

    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    [back] = wechat_platform.returns.values()
    settled.refresh_from_db()
    assert (back["return_mchid"], back["out_order_no"]) == ("1900000109", settled.out_request_no)
    assert back["amount"] == settled.reversed_merchant_fen  # the merchant's part of the 10 yuan, exactly
    assert 0 < back["amount"] < 1_000
    order_of_calls = [path for _, path, _ in wechat_platform.calls]
    assert order_of_calls.index("/v3/profitsharing/return-orders") < order_of_calls.index("/v3/refund/domestic/refunds")
    assert list(violations()) == []


def test_a_refund_before_the_split_returns_nothing(wechat_platform, stocked_sku, client, payee):
    order = wechat_paid_order(wechat_platform, stocked_sku, client)
    wechat_platform.refund_status = "SUCCESS"
    services.request_refund(payment=Payment.objects.get(order=order), amount_fen=500, reason=Refund.Reason.OPERATOR)
    assert wechat_platform.returns == {}
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED


def test_a_worker_dying_after_the_payout_is_recorded_still_leaves_the_split_to_reconcile(
    wechat_platform, stocked_sku, client, payee, settings, monkeypatch
):
    """The gateway state is written with the payout, in one transaction: a worker killed right after
    it committed must not leave a PROCESSING split that reconcile_splits never asks about."""
    settings.WECHATPAY_PROFIT_SHARING_MAX_RATIO = "0.95"
    order = wechat_paid_order(wechat_platform, stocked_sku, client)
    settlement.create_due_settlements()

    class WorkerKilled(BaseException):
        pass

    recorded = settlement.record_settled

    def record_then_die(**kwargs):
        recorded(**kwargs)
        raise WorkerKilled  # the process ends here: nothing after the commit runs

    monkeypatch.setattr(settlement, "record_settled", record_then_die)
    with pytest.raises(WorkerKilled):
        settlement.settle(settlement_id=Settlement.objects.get(order=order).pk)

    paid_out = Settlement.objects.get(order=order)
    assert (paid_out.status, paid_out.gateway_state) == (Settlement.Status.SETTLED, "processing")
    assert settlement.reconcile_splits()["open"] == 1  # still asked about until final
