"""Wallet top-ups paid through a gateway: a top-up order, credited once, never split, not refundable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from accounts import wallet
from accounts.models import WalletEntry
from orders import services as orders
from orders.models import Order
from payments import services, settlement
from payments.models import LedgerEntry, Payment, Refund, Settlement
from payments.selectors import violations
from payments.tests.conftest import alipay_post

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _english():
    """Messages asserted here are the English source strings (the shop's default is Chinese)."""
    with translation.override("en"):
        yield


def signed_in(user, password) -> Client:
    browser = Client()
    browser.cookies["django_language"] = "en"
    assert browser.login(email=user.email, password=password)
    return browser


def top_up_form(browser) -> dict:
    page = browser.get(reverse("accounts:wallet"))
    return {"idempotency_key": page.context["form"]["idempotency_key"].value()}


def confirm(payment: Payment) -> str:
    return services.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=payment.amount_fen, gateway_trade_no=f"G{payment.pk}",
        provider=payment.provider,
    )  # fmt: skip


def test_top_up_through_the_sandbox_credits_the_wallet_once(user, password):
    browser = signed_in(user, password)
    form = top_up_form(browser)

    response = browser.post(reverse("accounts:top_up"), {**form, "amount": "100"})
    again = browser.post(reverse("accounts:top_up"), {**form, "amount": "100"})  # double click

    order = Order.objects.get()
    assert response.url == again.url == order.get_absolute_url()
    assert (order.kind, order.total_fen, order.buyer, order.status) == ("top_up", 10_000, user, "pending_payment")
    page = browser.get(order.get_absolute_url()).content.decode()
    assert "Wallet top-up ¥100.00" in page
    assert 'value="sandbox"' in page and 'value="balance"' not in page  # a top-up is not paid from the wallet

    paid = browser.post(reverse("payments:start", args=[order.number]), {"provider": "sandbox"})
    browser.post(paid.url, {"action": "pay"})
    confirm(Payment.objects.get(order=order))  # the gateway says it again

    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert wallet.balance_fen(user) == 10_000
    entry = WalletEntry.objects.get()
    assert (entry.kind, entry.reference, entry.order_id) == ("top_up", order.number, order.pk)
    assert "credited to your wallet" in browser.get(order.get_absolute_url()).content.decode()


def test_top_up_paid_by_alipay_notification_is_credited_once(alipay_gateway, user, client):
    from payments.tests.test_alipay import start

    order = orders.place_top_up(buyer=user, amount_fen=8_888, idempotency_key="k1").order
    payment, _ = start(order)
    alipay_gateway.pay(payment.out_trade_no)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no)

    assert alipay_post(client, params).content == b"success"
    assert alipay_post(client, params).content == b"success"

    assert wallet.balance_fen(user) == 8_888 and WalletEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0.99", "A top-up is between 1.00 and 5000.00 yuan."),
        ("5000.01", "A top-up is between 1.00 and 5000.00 yuan."),
        ("12.345", "Enter an amount in yuan with at most two decimals."),
        ("abc", "Enter an amount in yuan with at most two decimals."),
    ],
)
def test_amounts_out_of_bounds_are_refused_with_a_message(user, password, amount, message):
    browser = signed_in(user, password)
    response = browser.post(reverse("accounts:top_up"), {**top_up_form(browser), "amount": amount})
    assert response.status_code == 400 and message in response.content.decode()
    assert not Order.objects.exists()


def test_guests_are_asked_to_sign_in(client):
    response = client.post(reverse("accounts:top_up"), {"amount": "100", "idempotency_key": "x"})
    assert response.status_code == 302 and "/accounts/login/" in response.url
    assert not Order.objects.exists()


def test_a_late_top_up_payment_is_still_credited(user):
    order = orders.place_top_up(buyer=user, amount_fen=5_000, idempotency_key="late").order
    payment, _ = services.start_payment(order=order, provider_name="sandbox")
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))
    orders.expire_overdue_orders()
    assert Order.objects.get().status == Order.Status.EXPIRED

    assert confirm(payment) == services.Confirmation.LATE
    assert Order.objects.get().status == Order.Status.DELIVERED and wallet.balance_fen(user) == 5_000


def test_top_ups_are_not_split_and_the_ledger_holds_them_for_the_wallets(user):
    order = orders.place_top_up(buyer=user, amount_fen=5_000, idempotency_key="ledger").order
    payment, _ = services.start_payment(order=order, provider_name="sandbox")
    confirm(payment)

    settlement.create_due_settlements()
    settlement.create_due_settlements()  # nothing twice

    assert not Settlement.objects.exists()
    held = dict(LedgerEntry.objects.filter(order=order).values_list("account", "amount_fen"))
    assert LedgerEntry.objects.filter(kind="top_up").count() == 2
    assert held["wallets"] == 5_000 and held["buyer_paid"] == 5_000
    assert list(violations()) == []


def test_a_credited_top_up_is_not_refunded_but_a_duplicate_payment_of_it_is(user):
    order = orders.place_top_up(buyer=user, amount_fen=5_000, idempotency_key="dup").order
    first, _ = services.start_payment(order=order, provider_name="sandbox")
    second = Payment.objects.create(order=order, provider="sandbox", out_trade_no="PDUP1", amount_fen=5_000)
    confirm(first)

    with translation.override("en"), pytest.raises(services.PaymentError, match="record a wallet withdrawal instead"):
        services.refund_order_in_full(order_id=order.pk, reason=Refund.Reason.OPERATOR)

    assert confirm(second) == services.Confirmation.DUPLICATE
    refund = Refund.objects.get()
    assert (refund.reason, refund.status, refund.route) == ("duplicate_payment", "succeeded", "original")
    assert wallet.balance_fen(user) == 5_000  # credited once, the second payment went back to the card
    settlement.create_due_settlements()
    assert list(violations()) == []
