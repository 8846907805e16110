"""Annual membership (orders/membership.py): the member discount as a pricing rule (not stacking with
member-level prices), its settlement as a platform-funded discount, priority in the admin queues,
renewal reminders, the /me/ card, the product page's member price and the pages' query counts."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from catalog.models import Product, Sku
from orders import aftersales, membership, pricing
from orders.models import Membership, MembershipPlan, Order
from orders.tests.conftest import delivered, pay, place

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def plan(db):
    return MembershipPlan.objects.create(name="年度会员", name_en="Annual", price_fen=9_900, duration_days=365,
                                         discount_percent=5)  # fmt: skip


def make_member(user, plan, *, days: float = 100) -> Membership:
    now = timezone.now()
    return Membership.objects.create(
        user=user, plan=plan, discount_percent=plan.discount_percent, started_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=days),
    )  # fmt: skip


def signed_in(user, language: str = "en") -> Client:
    browser = Client()
    browser.cookies["django_language"] = language
    browser.force_login(user)
    return browser


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def adjustments_of(quote: pricing.Quote, rule: str) -> dict[int, int]:
    return {a.sku_id: a.amount_fen for a in quote.adjustments if a.rule == rule}


# --- the pricing rule ------------------------------------------------------------------------------
def test_an_active_member_gets_the_plans_discount_on_every_line_funded_by_the_platform(stocked_sku, user, plan):
    make_member(user, plan)
    other = Sku.objects.create(product=stocked_sku.product, label="其他", price_fen=1_999, low_stock_threshold=0)

    quote = pricing.quote(lines=[(stocked_sku, 3), (other, 1)], buyer=user)

    # 5% of ¥10.00 is 50 fen a unit, ×3; 5% of ¥19.99 is 99.95 → 100 fen (half up).
    assert adjustments_of(quote, "annual_membership") == {stocked_sku.pk: 150, other.pk: 100}
    assert {a.funded_by for a in quote.adjustments} == {"platform"}
    assert quote.total_fen == 3_000 + 1_999 - 250
    assert [entry.name for entry in pricing.RULES].count("annual_membership") == 1
    entry = next(entry for entry in pricing.RULES if entry.name == "annual_membership")
    assert (entry.order, entry.group) == (110, pricing.UNIT_PRICE)


def test_no_discount_for_guests_non_members_and_expired_members(stocked_sku, user, plan):
    assert pricing.quote(lines=[(stocked_sku, 1)], buyer=None).discount_fen == 0
    assert pricing.quote(lines=[(stocked_sku, 1)], buyer=user).discount_fen == 0
    make_member(user, plan, days=-1)
    assert pricing.quote(lines=[(stocked_sku, 1)], buyer=user).discount_fen == 0


@pytest.fixture
def level_rule():
    """A stand-in for the member-level rule (order 100, per line, in the UNIT_PRICE group as the real
    one is), so a test sets the level percentages per SKU; the real rules are back afterwards."""
    percents: dict[int, int] = {}
    saved = list(pricing.RULES)

    @pricing.register_rule("member_level", order=100, group=pricing.UNIT_PRICE)
    def member_level(quote):
        for line in quote.lines:
            if percents.get(line.sku.pk):
                amount = line.subtotal_fen * percents[line.sku.pk] // 100
                quote.add(pricing.Adjustment("member_level", "level", amount, sku_id=line.sku.pk))

    yield percents
    pricing.RULES[:] = saved


def test_membership_and_level_discounts_do_not_stack_the_better_one_wins_per_line(stocked_sku, user, plan, level_rule):
    make_member(user, plan)  # 5%
    small = Sku.objects.create(product=stocked_sku.product, label="小", price_fen=2_000, low_stock_threshold=0)
    big = Sku.objects.create(product=stocked_sku.product, label="大", price_fen=4_000, low_stock_threshold=0)
    level_rule.update({stocked_sku.pk: 2, big.pk: 10})  # 2% (worse than 5%) and 10% (better); none on `small`

    quote = pricing.quote(lines=[(stocked_sku, 2), (small, 1), (big, 1)], buyer=user)

    lines = {line.sku.pk: line.discount_fen for line in quote.lines}
    assert lines == {stocked_sku.pk: 100, small.pk: 100, big.pk: 400}  # 5%, 5%, 10%: the better per line
    assert adjustments_of(quote, "annual_membership") == {stocked_sku.pk: 100, small.pk: 100}
    assert adjustments_of(quote, "member_level") == {big.pk: 400}  # never both on one line
    assert {(offer["rule"], offer["sku_id"]) for offer in quote.passed_over} == {
        ("member_level", stocked_sku.pk), ("annual_membership", big.pk),
    }  # fmt: skip


def test_a_members_order_stores_the_platform_funded_member_price_and_the_ledger_balances(stocked_sku, user, plan):
    from payments import settlement
    from payments.selectors import violations

    make_member(user, plan)
    order = place(stocked_sku, 2, buyer=user, email=user.email).order
    assert (order.subtotal_fen, order.discount_fen, order.total_fen) == (2_000, 100, 1_900)
    [adjustment] = order.pricing["adjustments"]
    assert (adjustment["rule"], adjustment["funded_by"], adjustment["sku_id"], adjustment["amount_fen"]) == (
        "annual_membership", "platform", stocked_sku.pk, 100,
    )  # fmt: skip
    assert order.items.get().discount_fen == 100
    pay(order)

    settlement.create_due_settlements()
    assert list(violations()) == []


def test_the_checkout_shows_the_member_price_in_the_breakdown(stocked_sku, user, plan):
    make_member(user, plan)
    browser = signed_in(user)
    browser.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1})
    page = browser.get(reverse("orders:checkout")).content.decode()
    assert "Annual member price" in page and "¥9.50" in page


def test_the_demo_shop_sells_one_annual_membership_however_often_it_is_seeded(demo_shop):
    from catalog.demo import seed_demo

    seed_demo(with_users=False, with_codes=False)
    demo = MembershipPlan.objects.get()
    assert (demo.name, demo.price_fen, demo.duration_days, demo.discount_percent, demo.is_active) == (
        "年度会员", 9_900, 365, 5, True,
    )  # fmt: skip


# --- priority in the admin queues ------------------------------------------------------------------
@pytest.fixture
def manual_orders(stocked_sku, user, plan):
    """Three manual-delivery orders waiting: a guest's, a member's, a non-member's (in that order)."""
    Product.objects.filter(pk=stocked_sku.product_id).update(delivery_mode=Product.DeliveryMode.MANUAL)
    stranger = User.objects.create_user(email="stranger@example.com", password="x")
    make_member(user, plan)
    placed = [
        place(stocked_sku, email="guest@example.com").order,
        place(stocked_sku, buyer=user, email=user.email).order,
        place(stocked_sku, buyer=stranger, email=stranger.email).order,
    ]
    for order in placed:
        pay(order)
        order.refresh_from_db()
        assert order.status == Order.Status.PROCESSING
    return placed


@pytest.mark.parametrize("who", ["operator", "merchant_staff"])
def test_members_orders_come_first_and_are_marked_in_the_manual_delivery_queue(manual_orders, who, request):
    guest, member, other = manual_orders
    browser = signed_in(request.getfixturevalue(who))

    response = browser.get(reverse("admin:orders_order_changelist"), {"queue": "manual"})

    numbers = [order.number for order in response.context["cl"].result_list]
    assert numbers == [member.number, other.number, guest.number]  # the member, then newest first
    rows = response.content.decode().split("<tr")
    marked = [row for row in rows if "member-badge" in row]
    assert len(marked) == 1 and member.number in marked[0]


def test_the_plain_order_list_keeps_newest_first(manual_orders, operator):
    guest, member, other = manual_orders
    response = signed_in(operator).get(reverse("admin:orders_order_changelist"))
    assert [o.number for o in response.context["cl"].result_list][:3] == [other.number, member.number, guest.number]


@pytest.mark.parametrize("who", ["operator", "merchant_staff"])
def test_members_after_sales_requests_come_first_and_are_marked(stocked_sku, user, plan, who, request):
    make_member(user, plan)
    member_order = delivered(stocked_sku, buyer=user, email=user.email)
    guest_order = delivered(stocked_sku, email="guest@example.com")  # newer
    member_request = aftersales.open_request(order=member_order, reason="invalid_code", message="坏了", actor=user)
    guest_request = aftersales.open_request(order=guest_order, reason="invalid_code", message="坏了", actor=None)

    response = signed_in(request.getfixturevalue(who)).get(reverse("admin:orders_aftersalesrequest_changelist"))

    assert [r.pk for r in response.context["cl"].result_list] == [member_request.pk, guest_request.pk]
    marked = [row for row in response.content.decode().split("<tr") if "member-badge" in row]
    assert len(marked) == 1 and member_order.number in marked[0]

    Membership.objects.update(ends_at=timezone.now() - timedelta(seconds=1))  # expired: no priority
    response = signed_in(request.getfixturevalue(who)).get(reverse("admin:orders_aftersalesrequest_changelist"))
    assert [r.pk for r in response.context["cl"].result_list] == [guest_request.pk, member_request.pk]
    assert "member-badge" not in response.content.decode()


def test_plans_are_managed_by_operators_not_merchants(operator, merchant_staff, plan):
    assert signed_in(operator).get(reverse("admin:orders_membershipplan_changelist")).status_code == 200
    assert signed_in(operator).get(reverse("admin:orders_membership_changelist")).status_code == 200
    assert signed_in(merchant_staff).get(reverse("admin:orders_membershipplan_changelist")).status_code == 403
    assert signed_in(merchant_staff).get(reverse("admin:orders_membership_changelist")).status_code == 403
    response = signed_in(merchant_staff).get(reverse("admin:orders_membershipplan_change", args=[plan.pk]))
    assert response.status_code == 403


def test_membership_orders_are_the_platforms_merchants_do_not_see_them(operator, merchant_staff, user, plan):
    order = membership.place_membership(buyer=user, plan_id=plan.pk, idempotency_key="adm").order
    listed = signed_in(operator).get(reverse("admin:orders_order_changelist"))
    assert [o.number for o in listed.context["cl"].result_list] == [order.number]
    assert "annual membership · 年度会员" in listed.content.decode()
    assert signed_in(merchant_staff).get(reverse("admin:orders_order_changelist")).context["cl"].result_count == 0
    assert signed_in(merchant_staff).get(reverse("admin:orders_order_change", args=[order.pk])).status_code == 404


# --- renewal reminders -----------------------------------------------------------------------------
def test_a_reminder_goes_out_once_per_period_in_the_members_language_with_a_renew_link(user, plan, settings):
    settings.MEMBERSHIP_REMINDER_DAYS = 7
    settings.SITE_URL = "https://shop.example.com"
    held = make_member(user, plan, days=5)
    Order.objects.create(
        number="K-LANG", buyer=user, email=user.email, subtotal_fen=1, total_fen=1, idempotency_key="lang",
        reserved_until=timezone.now(), language="en",
    )  # fmt: skip
    later = User.objects.create_user(email="later@example.com", password="x")
    make_member(later, plan, days=30)  # not due yet
    gone = User.objects.create_user(email="gone@example.com", password="x")
    make_member(gone, plan, days=-1)  # expired: no reminder

    mail.outbox.clear()
    assert membership.send_renewal_reminders() == 1
    assert membership.send_renewal_reminders() == 0  # once per period

    [message] = mail.outbox
    assert message.to == [user.email]
    assert "Kameng" in message.subject and "expires on" in message.subject
    assert "https://shop.example.com/me/membership/" in message.body and "in 5 days" in message.body
    assert "https://shop.example.com/me/membership/" in message.alternatives[0][0]

    # Renewed: the new period gets its own reminder when it is due, not before.
    Membership.objects.filter(pk=held.pk).update(ends_at=held.ends_at + timedelta(days=365))
    assert membership.send_renewal_reminders() == 0
    Membership.objects.filter(pk=held.pk).update(ends_at=timezone.now() + timedelta(days=2))
    assert membership.send_renewal_reminders() == 1 and len(mail.outbox) == 2


def test_the_reminder_is_in_chinese_by_default_and_the_task_is_idempotent(user, plan):
    held = make_member(user, plan, days=3)
    mail.outbox.clear()
    assert membership.send_renewal_reminder(membership_id=held.pk) is True
    assert membership.send_renewal_reminder(membership_id=held.pk) is False
    [message] = mail.outbox
    assert "卡盟" in message.subject and "续费" in message.body


def test_the_reminder_task_is_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["orders.send_membership_reminders"]
    assert entry["task"] == "orders.tasks.send_membership_reminders" and entry["options"]["expires"]


# --- pages ------------------------------------------------------------------------------------------
def test_the_home_card_says_become_a_member_then_the_expiry(user, plan):
    page = text_of(signed_in(user).get(reverse("accounts:overview")).content.decode())
    assert "Annual membership" in page and "Become a member" in page

    held = make_member(user, plan, days=40)
    page = text_of(signed_in(user).get(reverse("accounts:overview")).content.decode())
    assert f"Active until {timezone.localtime(held.ends_at):%Y-%m-%d}" in page and "40 days left" in page

    Membership.objects.update(ends_at=timezone.now() - timedelta(days=2))
    page = text_of(signed_in(user).get(reverse("accounts:overview")).content.decode())
    assert "Expired on" in page and "Renew" in page


def test_the_membership_page_for_a_member_and_an_expired_member(user, plan):
    held = make_member(user, plan, days=40)
    page = text_of(signed_in(user).get(reverse("accounts:membership")).content.decode())
    assert f"Active until {timezone.localtime(held.ends_at):%Y-%m-%d}" in page and "5% less" in page
    Membership.objects.update(ends_at=timezone.now() - timedelta(days=2))
    page = text_of(signed_in(user).get(reverse("accounts:membership")).content.decode())
    assert "Your membership expired on" in page and "Annual" in page and "¥99.00" in page


def test_the_membership_page_in_chinese(user, plan):
    page = text_of(signed_in(user, "zh-hans").get(reverse("accounts:membership")).content.decode())
    assert "年度会员" in page and "¥99.00" in page


def test_membership_page_queries_do_not_grow_with_plans_and_periods(user, plan):
    from payments import services as payments

    browser = signed_in(user)
    browser.get(reverse("accounts:membership"))  # warm up
    with CaptureQueriesContext(connection) as few:
        assert browser.get(reverse("accounts:membership")).status_code == 200
    for index in range(6):
        MembershipPlan.objects.create(name=f"计划{index}", price_fen=1_000 + index, duration_days=30,
                                      discount_percent=3)  # fmt: skip
        order = membership.place_membership(buyer=user, plan_id=plan.pk, idempotency_key=uuid.uuid4().hex).order
        payment, _ = payments.start_payment(order=order, provider_name="sandbox")
        payments.confirm_payment(out_trade_no=payment.out_trade_no, amount_fen=order.total_fen,
                                 gateway_trade_no=f"G{payment.pk}", provider="sandbox")  # fmt: skip
    with CaptureQueriesContext(connection) as many:
        assert browser.get(reverse("accounts:membership")).status_code == 200
    assert len(many) == len(few) <= 6
    with CaptureQueriesContext(connection) as home:
        assert browser.get(reverse("accounts:overview")).status_code == 200
    Membership.objects.update(ends_at=timezone.now() - timedelta(days=1))
    with CaptureQueriesContext(connection) as home_expired:
        assert browser.get(reverse("accounts:overview")).status_code == 200
    assert len(home) == len(home_expired)


def test_the_product_page_shows_members_their_price_and_others_what_members_save(stocked_sku, user, plan, client):
    product = stocked_sku.product
    url = reverse("catalog:product", args=[product.slug])
    client.cookies["django_language"] = "en"

    guest = text_of(client.get(url).content.decode())
    assert "Annual members save 5% on every order." in guest and "Members save ¥0.50" in guest
    assert reverse("accounts:membership") in client.get(url).content.decode()

    make_member(user, plan)
    member = text_of(signed_in(user).get(url).content.decode())
    assert "Member price ¥9.50" in member and "Members save" not in member

    MembershipPlan.objects.update(is_active=False)  # this plan and the demo shop's
    Membership.objects.all().delete()
    nothing = text_of(signed_in(user).get(url).content.decode())
    assert "Member price" not in nothing and "Members save" not in nothing


def test_the_product_page_queries_do_not_grow_with_its_denominations(stocked_sku, user, plan):
    make_member(user, plan)
    browser = signed_in(user)
    url = reverse("catalog:product", args=[stocked_sku.product.slug])
    browser.get(url)
    with CaptureQueriesContext(connection) as few:
        browser.get(url)
    for index in range(8):
        Sku.objects.create(product=stocked_sku.product, label=f"面额{index}", price_fen=100 * (index + 1),
                           low_stock_threshold=0)  # fmt: skip
    with CaptureQueriesContext(connection) as many:
        page = browser.get(url).content.decode()
    assert "Member price ¥7.60" in text_of(page)  # ¥8.00 less 5%
    assert len(many) == len(few)


def test_my_orders_and_the_order_page_name_the_plan_in_the_buyers_language(user, plan):
    order = membership.place_membership(buyer=user, plan_id=plan.pk, idempotency_key="names").order
    plan.name = "改名了"
    plan.save()  # what was bought is the snapshot
    assert "Membership: Annual" in text_of(signed_in(user).get(reverse("orders:mine")).content.decode())
    page = text_of(signed_in(user, "zh-hans").get(order.get_absolute_url()).content.decode())
    assert "会员：年度会员，365 天，¥99.00" in page
