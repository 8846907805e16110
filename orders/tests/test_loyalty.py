"""Points and member levels through the order lifecycle (orders/loyalty.py): earned once when an
order is paid, spent at checkout within the cap in the placing transaction, given back when an
unpaid order closes, reversed in proportion on (partial) refunds; levels up with paid spend and
down after refunds only when the operators say so; the level price on the product page and in the
breakdown; the /me/ card and /me/points/ with constant queries; the operators' admin."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from accounts import points
from accounts.models import LoyaltyAccount, LoyaltySettings, MemberLevel, PointsEntry, User
from catalog.models import LevelPrice
from orders import services
from orders.models import Order
from orders.tests.conftest import pay, place
from payments import services as payments
from payments.models import Refund
from payments.selectors import violations as ledger_violations

pytestmark = pytest.mark.django_db(transaction=True)
Kind = PointsEntry.Kind


@pytest.fixture
def rules(db, demo_shop):
    """1 point per yuan (rounded down), 100 points = ¥1, at most 20% of an order, a year's grace.

    The demo merchant's commission is raised to 40% so the platform can fund these discounts in full:
    the cap at its commission (orders/pricing.py) has tests of its own, below and in
    payments/tests/test_platform_funded.py."""
    demo_shop.merchant.commission_rate = Decimal("0.40")
    demo_shop.merchant.save(update_fields=["commission_rate"])
    config = LoyaltySettings.load()
    config.earn_points_per_yuan, config.earn_rounding = Decimal("1"), LoyaltySettings.Rounding.FLOOR
    config.redeem_points_per_yuan, config.redeem_max_percent = 100, 20
    config.downgrade_on_refund = False
    config.save()
    return config


@pytest.fixture
def levels(db):
    return {
        "member": MemberLevel.objects.create(name="普通会员", name_en="Member", threshold_fen=0),
        "silver": MemberLevel.objects.create(
            name="白银会员", name_en="Silver", threshold_fen=2000, discount_percent=10
        ),
        "gold": MemberLevel.objects.create(name="黄金会员", name_en="Gold", threshold_fen=5000, discount_percent=20),
    }


def give(user, amount: int) -> None:
    points.move(user=user, points=amount, kind=Kind.ADJUSTMENT, reference=f"test-{user.pk}-{amount}")


def refund(order: Order, amount_fen: int) -> Refund:
    """An operator's refund to the buyer's wallet: final at once (no gateway)."""
    made = payments.refund_amount_by_operator(
        order=order, amount_fen=amount_fen, note="test", actor=None, route=Refund.Route.WALLET
    )
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED
    order.refresh_from_db()
    return made


def signed_in(user, language: str = "en") -> Client:
    browser = Client()
    browser.cookies["django_language"] = language
    browser.force_login(user)
    return browser


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# -- earning -------------------------------------------------------------------------------------------


def test_paying_an_order_earns_points_once(stocked_sku, user, rules):
    rules.earn_points_per_yuan, rules.earn_rounding = Decimal("1.5"), LoyaltySettings.Rounding.HALF_UP
    rules.save()
    order = place(stocked_sku, 1, buyer=user).order  # ¥10.00
    assert points.balance(user) == 0
    pay(order)
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    earned = PointsEntry.objects.get(kind=Kind.EARN)
    assert (earned.points, earned.reference, earned.order_id) == (15, order.number, order.pk)
    from orders import loyalty

    loyalty.paid(order)  # asked again (a redelivered hook): made once
    assert points.balance(user) == 15 and PointsEntry.objects.filter(kind=Kind.EARN).count() == 1


def test_guest_orders_and_wallet_top_ups_earn_nothing(stocked_sku, user, rules):
    pay(place(stocked_sku, 1).order)  # a guest
    top_up = services.place_top_up(buyer=user, amount_fen=5000, idempotency_key="top-up-1").order
    pay(top_up)
    top_up.refresh_from_db()
    assert top_up.status == Order.Status.DELIVERED
    assert not PointsEntry.objects.exists()
    assert LoyaltyAccount.objects.filter(user=user, paid_spend_fen__gt=0).count() == 0


# -- spending --------------------------------------------------------------------------------------------


def test_points_pay_part_of_an_order_within_the_cap_and_go_back_when_it_is_cancelled(stocked_sku, user, rules):
    give(user, 10_000)
    order = place(stocked_sku, 2, buyer=user, use_points=True).order  # ¥20.00, at most 20% = ¥4.00
    assert (order.subtotal_fen, order.discount_fen, order.total_fen) == (2000, 400, 1600)
    assert order.pricing["points_used"] == 400
    [adjustment] = order.pricing["adjustments"]
    assert (adjustment["rule"], adjustment["amount_fen"], adjustment["funded_by"], adjustment["sku_id"]) == (
        "points", 400, "platform", None,
    )  # fmt: skip
    spend = PointsEntry.objects.get(kind=Kind.SPEND)
    assert (spend.points, spend.reference, spend.order_id) == (-400, order.number, order.pk)
    assert points.balance(user) == 9_600

    assert services.cancel_order(order=order, actor=user)
    assert points.balance(user) == 10_000
    assert PointsEntry.objects.get(kind=Kind.RELEASE).points == 400
    assert not services.cancel_order(order=order, actor=user)  # once
    assert points.balance(user) == 10_000 == points.ledger_sum(user)


def test_an_unpaid_order_that_expires_gives_its_points_back_and_a_late_payment_uses_them_again(
    stocked_sku, user, rules
):
    give(user, 300)
    order = place(stocked_sku, 1, buyer=user, use_points=True).order  # ¥10: cap ¥2, 200 points
    assert points.balance(user) == 100
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))
    assert services.expire_overdue_orders() == 1
    assert points.balance(user) == 300

    pay(order)  # paid after it expired: the discount stands, so its points are used again
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert PointsEntry.objects.get(reference=f"{order.number}:late").points == -200
    assert points.balance(user) == 100 + 8  # and ¥8 paid earns 8


def test_points_spent_meanwhile_refuse_the_order_and_nothing_is_kept(stocked_sku, user, rules, monkeypatch):
    """The quote saw more points than the buyer has when the order is placed (spent in another tab):
    the debit fails in the placing transaction, which rolls back whole."""
    give(user, 50)
    monkeypatch.setattr(points, "balance", lambda who: 10_000)  # what the quote believes
    with translation.override("en"), pytest.raises(services.CheckoutError, match=r"changed \(50 points now\)"):
        place(stocked_sku, 1, buyer=user, use_points=True)
    assert not Order.objects.exists()
    assert stocked_sku.codes.filter(status="reserved").count() == 0
    assert PointsEntry.objects.filter(kind=Kind.SPEND).count() == 0


def test_the_checkout_shows_the_points_to_earn_and_uses_points_when_asked(stocked_sku, user, rules):
    give(user, 1_000)
    browser = signed_in(user)
    browser.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 2})
    page = text_of(browser.get(reverse("orders:checkout")).content.decode())
    assert "You earn 20 points with this order." in page
    assert "Use 400 points to take ¥4.00 off." in page

    response = browser.post(reverse("orders:checkout"), {"update": "points-on", f"qty_{stocked_sku.pk}": 2})
    page = text_of(response.content.decode())
    assert "Paying ¥4.00 with 400 points." in page and "You earn 16 points with this order." in page
    assert response.context["quote"].total_fen == 1600
    assert points.balance(user) == 1_000  # nothing placed yet
    key = response.context["form"]["idempotency_key"].value()
    placed = browser.post(
        reverse("orders:checkout"), {"idempotency_key": key, "email": user.email, f"qty_{stocked_sku.pk}": 2}
    )
    order = Order.objects.get(buyer=user)
    assert placed.status_code == 302 and order.total_fen == 1600 and points.balance(user) == 600
    detail = text_of(browser.get(order.get_absolute_url()).content.decode())
    assert "400 points −¥4.00" in detail and "Pay to earn 16 points" in detail


# -- refunds ---------------------------------------------------------------------------------------------


def test_partial_refunds_take_back_earned_points_and_give_back_spent_ones_in_proportion(stocked_sku, user, rules):
    give(user, 1_000)
    order = place(stocked_sku, 2, buyer=user, use_points=True).order  # 400 points off, ¥16 paid
    pay(order)
    assert points.balance(user) == 1_000 - 400 + 16

    refund(order, 400)  # a quarter: 4 earned points back, 100 spent points returned
    assert points.balance(user) == 616 - 4 + 100
    assert PointsEntry.objects.get(kind=Kind.EARN_REVERSAL, reference=f"{order.number}:r400").points == -4
    assert PointsEntry.objects.get(kind=Kind.REFUND_RETURN, reference=f"{order.number}:r400").points == 100

    refund(order, 1_200)  # the rest: all of it back
    assert order.status == Order.Status.REFUNDED
    assert points.balance(user) == 1_000 == points.ledger_sum(user)
    assert list(ledger_violations()) == []


def test_a_refund_never_takes_more_points_than_are_left(stocked_sku, user, rules):
    order = place(stocked_sku, 1, buyer=user).order
    pay(order)  # 10 points
    points.move(user=user, points=-8, kind=Kind.ADJUSTMENT, reference="spent-elsewhere")
    refund(order, 1000)
    assert points.balance(user) == 0
    assert PointsEntry.objects.get(kind=Kind.EARN_REVERSAL).points == -2


# -- member levels -------------------------------------------------------------------------------------


def test_the_level_rises_with_paid_spend_and_its_price_applies_to_the_next_order(stocked_sku, user, rules, levels):
    first = place(stocked_sku, 1, buyer=user).order  # ¥10: no level price yet
    assert first.pricing["adjustments"] == []
    pay(first)
    account = LoyaltyAccount.objects.get(user=user)
    assert (account.level, account.paid_spend_fen) == (levels["member"], 1000)

    pay(place(stocked_sku, 1, buyer=user).order)
    account.refresh_from_db()
    assert (account.level, account.paid_spend_fen) == (levels["silver"], 2000)

    third = place(stocked_sku, 2, buyer=user).order  # Silver: 10% off, per line
    [adjustment] = third.pricing["adjustments"]
    assert adjustment == {
        "rule": "member_level", "label": adjustment["label"], "amount_fen": 200, "funded_by": "platform",
        "capped_fen": 0, "capped_by": "", "ref": "",
        "sku_id": stocked_sku.pk,
    }  # fmt: skip
    assert third.total_fen == 1800
    LevelPrice.objects.create(level=levels["silver"], sku=stocked_sku, price_fen=700)  # an explicit price wins
    fourth = place(stocked_sku, 1, buyer=user).order
    assert fourth.total_fen == 700 and fourth.pricing["adjustments"][0]["amount_fen"] == 300


def test_a_refund_moves_the_level_down_only_when_the_operators_say_so(stocked_sku, user, rules, levels):
    orders = [place(stocked_sku, 1, buyer=user).order for _ in range(2)]
    for order in orders:
        pay(order)
    account = LoyaltyAccount.objects.get(user=user)
    assert account.level == levels["silver"]

    refund(orders[0], 500)  # spend 1500: below Silver, but levels are kept by default
    account.refresh_from_db()
    assert (account.level, account.paid_spend_fen) == (levels["silver"], 1500)

    rules.downgrade_on_refund = True
    rules.save()
    refund(orders[0], 500)
    account.refresh_from_db()
    assert (account.level, account.paid_spend_fen) == (levels["member"], 1000)


def test_the_product_page_shows_a_member_their_level_price(
    stocked_sku, user, rules, levels, django_assert_max_num_queries
):
    LoyaltyAccount.objects.create(user=user, level=levels["gold"], paid_spend_fen=6000)
    product = stocked_sku.product
    browser = signed_in(user)
    page = browser.get(reverse("catalog:product", args=[product.slug])).content.decode()
    row = re.search(rf'data-sku="{stocked_sku.pk}".*?</label>', page, re.S).group(0)
    assert 'data-price="800"' in row  # the running total counts the member's price
    assert "¥8.00" in text_of(row) and "Gold" in row
    assert re.search(r'<s class="list-price"[^>]*>¥10.00</s>', row)
    guest = Client().get(reverse("catalog:product", args=[product.slug])).content.decode()
    assert "list-price" not in guest and "level-price" not in guest

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert browser.get(reverse("catalog:product", args=[product.slug])).status_code == 200
        return len(captured)

    before = queries()
    for n in range(4):  # more denominations, some with explicit level prices: the same queries
        sku = product.skus.create(label=f"extra {n}", price_fen=2000 + n, low_stock_threshold=0)
        if n % 2:
            LevelPrice.objects.create(level=levels["gold"], sku=sku, price_fen=1500)
    assert queries() == before


# -- the pages --------------------------------------------------------------------------------------------


def test_the_home_card_shows_points_level_and_progress(user, rules, levels):
    LoyaltyAccount.objects.create(user=user, level=levels["silver"], paid_spend_fen=3800)
    give(user, 1234)
    card = re.search(r'data-card="points".*?</section>', signed_in(user).get("/me/").content.decode(), re.S).group(0)
    text = text_of(card)
    assert "1234 points" in text and "Silver" in text
    assert "¥12.00 more to Gold" in text and 'aria-valuenow="60"' in card  # (3800 − 2000) / (5000 − 2000)
    assert reverse("accounts:points") in card
    zh = text_of(
        re.search(
            r'data-card="points".*?</section>', signed_in(user, "zh-hans").get("/me/").content.decode(), re.S
        ).group(0)
    )
    assert "白银会员" in zh and "积分" in zh


def test_me_and_the_points_history_keep_their_queries_as_entries_grow(user, rules, levels):
    browser = signed_in(user)

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert browser.get(url).status_code == 200
        return len(captured)

    give(user, 5)
    few = (queries("/me/"), queries(reverse("accounts:points")))
    for n in range(45):
        points.move(user=user, points=10, kind=Kind.ADJUSTMENT, reference=f"grow-{n}")
    many = (queries("/me/"), queries(reverse("accounts:points")), queries(reverse("accounts:points") + "?page=3"))
    assert many[:2] == few and many[2] == few[1]
    page = text_of(browser.get(reverse("accounts:points") + "?page=3").content.decode())
    assert "3 / 3" in page and "+5" in page  # the oldest entry on the last page


def test_the_points_history_is_the_buyers_own(user, rules):
    other = User.objects.create_user(email="other@example.com", password="x")
    give(other, 777)
    give(user, 5)
    page = text_of(signed_in(user).get(reverse("accounts:points")).content.decode())
    assert "777" not in page and "+5" in page
    anonymous = Client().get(reverse("accounts:points"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


# -- the back office -----------------------------------------------------------------------------------


def test_operators_adjust_points_once_per_form_and_merchants_see_nothing(user, operator, merchant_staff, rules):
    browser = Client()
    browser.force_login(operator)
    url = reverse("admin:accounts_pointsentry_add")
    form = {"user": user.pk, "amount": 250, "note": "goodwill", "key": "a" * 32}
    assert browser.post(url, form).status_code == 302
    assert browser.post(url, form).status_code == 302  # the same form again
    assert points.balance(user) == 250 and PointsEntry.objects.count() == 1
    refused = browser.post(url, {**form, "amount": -300, "key": "b" * 32})
    assert refused.status_code == 200 and points.balance(user) == 250
    assert browser.get(reverse("admin:accounts_loyaltysettings_changelist")).status_code == 302
    assert browser.get(reverse("admin:accounts_loyaltysettings_change", args=[1])).status_code == 200

    staff = Client()
    staff.force_login(merchant_staff)
    for name in ("accounts_pointsentry_changelist", "accounts_memberlevel_changelist",
                 "accounts_loyaltysettings_change", "catalog_levelprice_changelist"):  # fmt: skip
        args = [1] if name.endswith("_change") else []
        assert staff.get(reverse(f"admin:{name}", args=args)).status_code in (302, 403)


def test_two_checkouts_at_once_cannot_spend_the_same_points(stocked_sku, user, rules):
    """Both quotes see 500 points and want 400 each; the LoyaltyAccount lock and the balance check
    let one order have them, and the other is refused with nothing kept."""
    import threading

    give(user, 500)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def checkout(n: int) -> None:
        start.wait()
        try:
            with translation.override("en"):
                place(stocked_sku, 2, buyer=user, use_points=True, key=f"race-{n}")
            outcomes.append("placed")
        except services.CheckoutError as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=checkout, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    if outcomes == ["placed", "placed"]:
        # On a loaded machine the second thread may quote only after the first committed: it then
        # sees 100 points and spends those, never the 400 already gone.
        assert points.balance(user) == 0 == points.ledger_sum(user)
        spent = sorted(-p for p in PointsEntry.objects.filter(account__user=user, points__lt=0).values_list(
            "points", flat=True))  # fmt: skip
        assert spent == [100, 400]
        assert Order.objects.count() == 2
        return
    assert sorted(outcomes) == [
        "Your points balance changed (100 points now). Please check the order again.", "placed",
    ]  # fmt: skip
    assert points.balance(user) == 100 == points.ledger_sum(user)
    assert Order.objects.count() == 1 and stocked_sku.codes.filter(status="reserved").count() == 2


def test_the_operators_pages_open(operator, user, rules, levels, stocked_sku):
    give(user, 10)
    LevelPrice.objects.create(level=levels["gold"], sku=stocked_sku, price_fen=800)
    account = LoyaltyAccount.objects.get(user=user)
    browser = Client()
    browser.force_login(operator)
    for url in (
        reverse("admin:accounts_pointsentry_changelist"),
        reverse("admin:accounts_pointsentry_changelist") + f"?account__id__exact={account.pk}",
        reverse("admin:accounts_pointsentry_add"),
        reverse("admin:accounts_pointsentry_change", args=[PointsEntry.objects.get().pk]),
        reverse("admin:accounts_loyaltyaccount_changelist"),
        reverse("admin:accounts_loyaltyaccount_change", args=[account.pk]),
        reverse("admin:accounts_memberlevel_changelist"),
        reverse("admin:accounts_memberlevel_add"),
        reverse("admin:catalog_levelprice_changelist"),
        reverse("admin:catalog_levelprice_add"),
    ):
        assert browser.get(url).status_code == 200, url
    assert (
        browser.post(
            reverse("admin:accounts_pointsentry_change", args=[PointsEntry.objects.get().pk]), {"note": "x"}
        ).status_code
        == 403
    )  # entries are never changed


def test_points_are_offered_only_within_what_the_platform_may_fund(rules, user, stocked_sku, demo_shop):
    """Points are the platform's money: at a 10% commission an order can take at most 10% off with
    points, whatever the 20% cap says, and the offer shown is exactly what paying with points takes."""
    from orders import loyalty, pricing

    demo_shop.merchant.commission_rate = Decimal("0.10")
    demo_shop.merchant.save(update_fields=["commission_rate"])
    give(user, 100_000)
    stocked_sku.refresh_from_db()
    plain = pricing.quote(lines=[(stocked_sku, 2)], buyer=user)
    offer = loyalty.points_offer(buyer=user, quote=plain)
    assert offer.discount_fen == 2 * stocked_sku.price_fen // 10
    used = pricing.quote(lines=[(stocked_sku, 2)], buyer=user, use_points=True)
    (adjustment,) = used.adjustments
    assert (adjustment.amount_fen, adjustment.capped_fen) == (offer.discount_fen, 0)
    assert used.points_used == offer.points
