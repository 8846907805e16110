"""Annual membership bought like any order: paid through the gateways or the wallet, granted once,
extended from the current end when renewed early, never split, shortened by operators' refunds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from accounts import wallet
from orders import membership
from orders import services as orders
from orders.models import Membership, MembershipGrant, MembershipPlan, Order
from payments import services, settlement
from payments.models import LedgerEntry, Payment, Refund, Settlement
from payments.selectors import violations
from payments.tests.conftest import alipay_post

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def plan(db):
    return MembershipPlan.objects.create(name="年度会员", name_en="Annual", price_fen=9_900, duration_days=365,
                                         discount_percent=5)  # fmt: skip


def signed_in(user, password) -> Client:
    browser = Client()
    browser.cookies["django_language"] = "en"
    assert browser.login(email=user.email, password=password)
    return browser


def confirm(payment: Payment) -> str:
    return services.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=payment.amount_fen, gateway_trade_no=f"G{payment.pk}",
        provider=payment.provider,
    )  # fmt: skip


def bought(user, plan, key: str) -> Order:
    order = membership.place_membership(buyer=user, plan_id=plan.pk, idempotency_key=key).order
    payment, _ = services.start_payment(order=order, provider_name="sandbox")
    confirm(payment)
    order.refresh_from_db()
    return order


def test_buying_on_the_membership_page_through_the_sandbox_starts_a_membership_once(user, password, plan):
    browser = signed_in(user, password)
    page = browser.get(reverse("accounts:membership"))
    key = f"{page.context['idempotency_key']}-{plan.pk}"
    assert "You are not a member yet." in page.content.decode() and "¥99.00" in page.content.decode()

    response = browser.post(reverse("accounts:buy_membership"), {"plan": plan.pk, "idempotency_key": key})
    again = browser.post(reverse("accounts:buy_membership"), {"plan": plan.pk, "idempotency_key": key})

    order = Order.objects.get()
    assert response.url == again.url == order.get_absolute_url()
    assert (order.kind, order.total_fen, order.buyer, order.status) == ("member", 9_900, user, "pending_payment")
    detail = browser.get(order.get_absolute_url()).content.decode()
    assert "Membership: Annual, 365 days, ¥99.00" in detail and 'value="sandbox"' in detail

    started = browser.post(reverse("payments:start", args=[order.number]), {"provider": "sandbox"})
    before = timezone.now()
    browser.post(started.url, {"action": "pay"})
    confirm(Payment.objects.get(order=order))  # the gateway says it again
    orders.deliver_order(order_id=order.pk)  # and the delivery task runs twice

    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    held = Membership.objects.get(user=user)
    assert held.discount_percent == 5 and MembershipGrant.objects.get().order == order
    assert before + timedelta(days=365) <= held.ends_at <= timezone.now() + timedelta(days=365)
    assert "Membership active" in browser.get(order.get_absolute_url()).content.decode()
    mine = browser.get(reverse("accounts:membership")).content.decode()
    assert f"Active until {timezone.localtime(held.ends_at):%Y-%m-%d}" in mine


def test_renewal_before_expiry_extends_from_the_current_end_and_after_expiry_from_now(user, plan):
    first = bought(user, plan, "one")
    end = Membership.objects.get().ends_at
    bought(user, plan, "two")
    assert Membership.objects.get().ends_at == end + timedelta(days=365)

    Membership.objects.update(ends_at=timezone.now() - timedelta(days=3))  # it ran out
    before = timezone.now()
    bought(user, plan, "three")
    renewed = Membership.objects.get()
    assert before + timedelta(days=365) <= renewed.ends_at <= timezone.now() + timedelta(days=365)
    assert renewed.started_at >= before
    assert MembershipGrant.objects.filter(order=first).count() == 1 and MembershipGrant.objects.count() == 3


def test_a_membership_paid_by_alipay_notification_is_granted_once(alipay_gateway, user, client, plan):
    from payments.tests.test_alipay import start

    order = membership.place_membership(buyer=user, plan_id=plan.pk, idempotency_key="ali").order
    payment, _ = start(order)
    alipay_gateway.pay(payment.out_trade_no)
    params = alipay_gateway.notification(out_trade_no=payment.out_trade_no, total_amount="99.00")

    assert alipay_post(client, params).content == b"success"
    assert alipay_post(client, params).content == b"success"
    assert MembershipGrant.objects.count() == 1 and Membership.objects.get().ends_at > timezone.now()


def test_a_membership_is_paid_from_the_wallet_like_any_order(user, password, plan):
    wallet.credit(user=user, amount_fen=20_000, kind=wallet.Kind.ADJUSTMENT, reference="seed", note="seed")
    order = membership.place_membership(buyer=user, plan_id=plan.pk, idempotency_key="w").order
    browser = signed_in(user, password)
    assert 'value="balance"' in browser.get(order.get_absolute_url()).content.decode()

    browser.post(reverse("payments:start", args=[order.number]), {"provider": "balance"})

    assert Order.objects.get().status == Order.Status.DELIVERED and wallet.balance_fen(user) == 10_100
    assert membership.active_membership(user) is not None


def test_a_late_payment_still_grants_the_membership(user, plan):
    order = membership.place_membership(buyer=user, plan_id=plan.pk, idempotency_key="late").order
    payment, _ = services.start_payment(order=order, provider_name="sandbox")
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))
    orders.expire_overdue_orders()

    assert confirm(payment) == services.Confirmation.LATE
    assert Order.objects.get().status == Order.Status.DELIVERED and membership.active_membership(user)


def test_plans_off_sale_and_guests_are_refused(client, user, password, plan):
    response = client.post(reverse("accounts:buy_membership"), {"plan": plan.pk, "idempotency_key": "x"})
    assert response.status_code == 302 and "/accounts/login/" in response.url
    page = client.get(reverse("accounts:membership"))
    assert page.status_code == 302 and "/accounts/login/" in page.url

    plan.is_active = False
    plan.save()
    browser = signed_in(user, password)
    refused = browser.post(reverse("accounts:buy_membership"), {"plan": plan.pk, "idempotency_key": "y"}, follow=True)
    assert "This membership plan is not on sale." in refused.content.decode()
    assert not Order.objects.exists()


def test_another_buyer_cannot_see_or_pay_a_membership_order(user, password, plan, client):
    from accounts.models import User

    order = membership.place_membership(buyer=user, plan_id=plan.pk, idempotency_key="mine").order
    other = User.objects.create_user(email="other@example.com", password=password)
    stranger = signed_in(other, password)

    assert stranger.get(order.get_absolute_url()).status_code == 404
    assert client.get(order.get_absolute_url()).status_code == 404  # anonymous
    stranger.post(reverse("payments:start", args=[order.number]), {"provider": "sandbox"})
    assert not Payment.objects.exists()
    assert stranger.get(reverse("orders:download", args=[order.number, "txt"])).status_code == 404


def test_membership_money_is_the_platforms_never_split_and_the_ledger_balances(user, plan):
    order = bought(user, plan, "ledger")

    settlement.create_due_settlements()
    settlement.create_due_settlements()  # nothing twice

    assert not Settlement.objects.exists()
    held = dict(LedgerEntry.objects.filter(order=order).values_list("account", "amount_fen"))
    assert LedgerEntry.objects.filter(kind="membership").count() == 2
    assert held["platform_fee"] == 9_900 and held["buyer_paid"] == 9_900
    assert list(violations()) == []


def test_an_operators_full_refund_ends_a_single_period_at_once(user, plan, operator):
    order = bought(user, plan, "full")
    settlement.create_due_settlements()  # posted to platform_fee first

    assert services.refund_in_full_by_operator(order_id=order.pk, note="asked", actor=operator)

    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert membership.active_membership(user) is None
    assert Membership.objects.get().ends_at <= timezone.now()
    fee = sum(LedgerEntry.objects.filter(order=order, account="platform_fee").values_list("amount_fen", flat=True))
    assert fee == 0 and list(violations()) == []


def test_refunding_an_early_renewal_takes_its_period_off_the_end_and_a_partial_refund_its_share(user, plan, operator):
    bought(user, plan, "first")
    end_of_first = Membership.objects.get().ends_at
    renewal = bought(user, plan, "renewal")
    # Refunded before the ledger posting: the money comes out of unallocated.
    refund = services.refund_amount_by_operator(
        order=renewal, amount_fen=4_950, note="half", actor=operator, route=Refund.Route.ORIGINAL
    )
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.SUCCEEDED
    assert Membership.objects.get().ends_at == end_of_first + timedelta(days=365) - timedelta(days=182, hours=12)

    settlement.create_due_settlements()
    services.refund_amount_by_operator(order=renewal, amount_fen=4_950, note="rest", actor=operator, route="original")

    assert Membership.objects.get().ends_at == end_of_first  # the first period still runs to its end
    assert membership.active_membership(user) is not None
    assert MembershipGrant.objects.get(order=renewal).revoked_seconds == 365 * 86_400
    assert list(violations()) == []


def test_two_first_memberships_paid_at_once_both_count(user, plan):
    """Two delivery workers granting the buyer's first membership at the same time: one row, both
    periods (the second waits for the first's insert instead of failing)."""
    import threading

    from django.db import connection

    first = membership.place_membership(buyer=user, plan_id=plan.pk, idempotency_key="a").order
    second = membership.place_membership(buyer=user, plan_id=plan.pk, idempotency_key="b").order
    Order.objects.filter(pk__in=[first.pk, second.pk]).update(status=Order.Status.PAID, paid_at=timezone.now())
    barrier = threading.Barrier(2)
    results = []

    def deliver(order_id):
        try:
            barrier.wait()
            results.append(orders.deliver_order(order_id=order_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(order.pk,)) for order in (first, second)]
    before = timezone.now()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["delivered", "delivered"]
    held = Membership.objects.get()
    assert held.ends_at >= before + timedelta(days=730) and MembershipGrant.objects.count() == 2
