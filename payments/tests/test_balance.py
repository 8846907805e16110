"""Paying with the wallet balance (the ``balance`` provider), refunds to the wallet, and its splits."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts import wallet
from accounts.models import WalletEntry
from orders.models import Fulfilment, Order
from payments import providers, services, settlement
from payments.models import Payment, Refund
from payments.selectors import violations as ledger_violations
from payments.tests.conftest import PRICE_FEN, unpaid_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _english():
    """Messages asserted here are the English source strings (the shop's default is Chinese)."""
    with translation.override("en"):
        yield


Kind = WalletEntry.Kind


def signed_in(user, password) -> Client:
    browser = Client()
    browser.cookies["django_language"] = "en"
    assert browser.login(email=user.email, password=password)
    return browser


def pay_button(page: str) -> bool:
    return 'name="provider" value="balance"' in page


@pytest.fixture
def funded(user):
    wallet.credit(user=user, amount_fen=PRICE_FEN + 12, kind=Kind.TOP_UP, reference="top-up-1")
    return user


def test_the_wallet_is_offered_to_the_buyer_only_when_it_covers_the_order(stocked_sku, funded, password, client):
    order = unpaid_order(stocked_sku, buyer=funded)
    page = signed_in(funded, password).get(order.get_absolute_url()).content.decode()
    assert pay_button(page) and "Balance ¥89.00" in page

    wallet.debit(user=funded, amount_fen=13, kind=Kind.WITHDRAWAL, reference="w")  # now 1 fen short
    page = signed_in(funded, password).get(order.get_absolute_url()).content.decode()
    # issue 11: the wallet is shown disabled with the balance and what is missing (it said "Your wallet holds …")
    assert not pay_button(page) and "Balance ¥88.87, ¥0.01 short." in page

    guest_order = unpaid_order(stocked_sku)
    assert [p.name for p in providers.available_for(order=guest_order, user=funded)] == ["sandbox"]


def test_paying_from_the_wallet_debits_once_and_delivers(stocked_sku, funded, password):
    order = unpaid_order(stocked_sku, buyer=funded)
    browser = signed_in(funded, password)

    response = browser.post(reverse("payments:start", args=[order.number]), {"provider": "balance"})

    assert response.status_code == 302 and response.url == order.get_absolute_url()
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED and Fulfilment.objects.filter(order=order).count() == 1
    payment = Payment.objects.get(order=order)
    entry = WalletEntry.objects.get(kind=Kind.PAYMENT)
    assert (payment.provider, payment.status, payment.gateway_trade_no) == ("balance", "paid", f"W{entry.pk}")
    assert (entry.amount_fen, entry.reference, entry.order_id) == (-PRICE_FEN, payment.out_trade_no, order.pk)
    assert wallet.balance_fen(funded) == 12
    assert len(mail.outbox) == 1  # the codes

    again = browser.post(reverse("payments:start", args=[order.number]), {"provider": "balance"}, follow=True)
    assert "This order can no longer be paid." in again.content.decode()
    assert wallet.balance_fen(funded) == 12 and Payment.objects.filter(status="paid").count() == 1


def test_twenty_clicks_at_once_pay_once(stocked_sku, funded):
    order = unpaid_order(stocked_sku, buyer=funded)
    start = threading.Barrier(20)
    outcomes: list[str] = []

    def click() -> None:
        start.wait()
        try:
            services.start_payment(order=order, provider_name="balance", request=_request_of(funded))
            outcomes.append("paid")
        except (services.PaymentError, providers.ProviderError):
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("paid") == 1 and len(outcomes) == 20
    assert WalletEntry.objects.filter(kind=Kind.PAYMENT).count() == 1 and wallet.balance_fen(funded) == 12
    assert Fulfilment.objects.filter(order=order).count() == 1


def test_one_balance_two_orders_at_once_only_one_is_paid(stocked_sku, funded):
    """The double-spend race across orders: the balance covers one of them."""
    orders = [unpaid_order(stocked_sku, buyer=funded) for _ in range(2)]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def pay(order) -> None:
        start.wait()
        try:
            with translation.override("en"):  # messages are in the buyer's language (a thread has none)
                services.start_payment(order=order, provider_name="balance", request=_request_of(funded))
            outcomes.append("paid")
        except providers.ProviderError as exc:
            outcomes.append(exc.user_message)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["Your wallet holds ¥0.12, not enough for ¥88.88.", "paid"]
    assert wallet.balance_fen(funded) == 12
    assert sorted(Order.objects.values_list("status", flat=True)) == ["delivered", "pending_payment"]
    assert Payment.objects.filter(status="failed", provider="balance").count() == 1


def test_someone_else_cannot_pay_from_their_wallet_for_an_order_they_do_not_own(stocked_sku, funded, operator):
    order = unpaid_order(stocked_sku, buyer=funded)
    wallet.credit(user=operator, amount_fen=PRICE_FEN, kind=Kind.TOP_UP, reference="op")
    with pytest.raises(services.WalletPaymentRefused, match="Only the signed-in buyer"):
        services.start_payment(order=order, provider_name="balance", request=_request_of(operator))
    assert wallet.balance_fen(operator) == PRICE_FEN and Order.objects.get().status == "pending_payment"


def test_refund_of_a_wallet_payment_goes_back_to_the_wallet(stocked_sku, funded):
    order = unpaid_order(stocked_sku, buyer=funded)
    services.start_payment(order=order, provider_name="balance", request=_request_of(funded))

    refund = services.request_refund(
        payment=Payment.objects.get(order=order), amount_fen=800, reason=Refund.Reason.OPERATOR, note="partial"
    )

    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED and refund.gateway_refund_no.startswith("W")
    assert wallet.balance_fen(funded) == 12 + 800
    assert WalletEntry.objects.get(kind=Kind.REFUND).reference == refund.out_refund_no
    assert list(ledger_violations()) == []


def test_a_gateway_payment_can_be_refunded_to_the_buyers_wallet(stocked_sku, user):
    order = unpaid_order(stocked_sku, buyer=user)
    payment, _ = services.start_payment(order=order, provider_name="sandbox")
    services.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=PRICE_FEN, gateway_trade_no="G1", provider="sandbox"
    )

    refund = services.refund_order_in_full(
        order_id=order.pk, reason=Refund.Reason.OPERATOR, note="goodwill", route=Refund.Route.WALLET
    )

    refund.refresh_from_db()
    assert (refund.status, refund.route) == ("succeeded", "wallet")
    assert wallet.balance_fen(user) == PRICE_FEN
    order.refresh_from_db()
    assert order.refunded_fen == PRICE_FEN
    assert list(ledger_violations()) == []


def test_a_guest_order_cannot_be_refunded_to_a_wallet(stocked_sku):
    order = unpaid_order(stocked_sku)
    payment, _ = services.start_payment(order=order, provider_name="sandbox")
    services.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=PRICE_FEN, gateway_trade_no="G1", provider="sandbox"
    )
    with pytest.raises(services.PaymentError, match="A guest order has no wallet"):
        services.refund_order_in_full(order_id=order.pk, reason=Refund.Reason.OPERATOR, route=Refund.Route.WALLET)
    assert not Refund.objects.exists()


def test_a_wallet_paid_order_is_split_and_settled_inside_the_ledger(stocked_sku, funded):
    order = unpaid_order(stocked_sku, buyer=funded)
    services.start_payment(order=order, provider_name="balance", request=_request_of(funded))

    settlement.create_due_settlements()
    settlement.execute_due_settlements()

    settled = order.settlements.get()
    assert (settled.status, settled.provider) == ("settled", "balance")
    assert settled.fee_fen + settled.merchant_fen == PRICE_FEN
    assert list(ledger_violations()) == []


def _request_of(user):
    from django.test import RequestFactory

    request = RequestFactory().post("/")
    request.user = user
    return request
