"""Coupons: the arithmetic in fen (rounding, cap, minimum spend, scopes, funder) and the lifecycle of
a use (held at placement, used when paid, given back on expiry, cancellation and full refund)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from accounts.models import User
from catalog.models import Category
from marketing import coupons
from marketing.models import Coupon, CouponRedemption
from orders import pricing, services
from orders.models import Order
from orders.tests.conftest import make_sku, pay, place
from payments import services as payments

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The reasons are asserted as written in the source (the shop's default language is Chinese)."""
    with translation.override("en"):
        yield


def make_coupon(code: str = "SAVE", **fields) -> Coupon:
    defaults = {"name": "test", "kind": Coupon.Kind.FIXED, "amount_fen": 100, "per_user_limit": None}
    return Coupon.objects.create(code=code, **{**defaults, **fields})


def quote_of(*lines, code: str = "SAVE", buyer=None) -> pricing.Quote:
    return pricing.quote(lines=list(lines), coupon_code=code, buyer=buyer)


def coupon_adjustments(quote: pricing.Quote) -> list[tuple[int | None, int]]:
    return [(a.sku_id, a.amount_fen) for a in quote.adjustments if a.rule == "coupon"]


@pytest.fixture
def two_skus(demo_shop):
    ours = make_sku(demo_shop.products["steam-wallet"], codes_count=5, label="A", price_fen=999)
    theirs = make_sku(demo_shop.products["honor-of-kings"], codes_count=5, label="B", price_fen=2_001)
    assert ours.product.merchant_id != theirs.product.merchant_id
    for merchant in (demo_shop.merchant, demo_shop.other_merchant):  # room for platform-funded coupons
        merchant.commission_rate = Decimal("0.5000")
        merchant.save(update_fields=["commission_rate"])
    return ours, theirs


# --- arithmetic ------------------------------------------------------------------------------------------
def test_a_percentage_is_rounded_down_to_the_fen_then_capped(two_skus):
    ours, _theirs = two_skus
    make_coupon(kind=Coupon.Kind.PERCENT, percent=15, amount_fen=0)
    quote = quote_of((ours, 1))  # 15% of 999 = 149.85
    assert coupon_adjustments(quote) == [(None, 149)]
    assert quote.total_fen == 850
    assert coupon_adjustments(quote_of((ours, 3))) == [(None, 449)]  # 15% of 2997 = 449.55
    Coupon.objects.filter(code="SAVE").update(max_discount_fen=300)
    quote = quote_of((ours, 3))
    assert coupon_adjustments(quote) == [(None, 300)]
    assert quote.total_fen == 2_697


def test_a_fixed_amount_never_exceeds_what_the_goods_cost_and_codes_ignore_case(two_skus):
    ours, _theirs = two_skus
    make_coupon(code="big", amount_fen=5_000, funded_by="merchant", merchant=ours.product.merchant)
    assert Coupon.objects.get().code == "BIG"
    quote = quote_of((ours, 1), code="  bIg ")
    assert coupon_adjustments(quote) == [(None, 999)]
    assert quote.total_fen == 0
    assert quote.adjustments[0].ref == "BIG"


def test_codes_are_unique_whatever_their_case(two_skus):
    make_coupon(code="ONCE")
    with pytest.raises(IntegrityError), transaction.atomic():
        Coupon.objects.bulk_create([Coupon(code="once", name="dup", amount_fen=1)])  # save() would upper-case


def test_the_minimum_spend_is_measured_on_the_goods_covered(two_skus):
    ours, theirs = two_skus
    make_coupon(min_spend_fen=1_998, scope=Coupon.Scope.SKU, sku=ours)
    refused = quote_of((ours, 1), (theirs, 5))  # 999 of covered goods: the other SKU does not count
    assert coupon_adjustments(refused) == []
    assert refused.context[coupons.REFUSAL] == "This coupon needs a spend of at least ¥19.98 on the goods it covers."
    given = quote_of((ours, 2), (theirs, 5))  # exactly the minimum
    assert coupon_adjustments(given) == [(ours.pk, 100)]
    assert coupons.REFUSAL not in given.context


def test_scopes_cover_only_their_lines_and_spread_the_amount_over_them(two_skus, demo_shop):
    ours, theirs = two_skus
    third = make_sku(demo_shop.products["steam-wallet"], codes_count=2, label="C", price_fen=1_000)
    coupon = make_coupon(amount_fen=100, scope=Coupon.Scope.SKU, sku=theirs)
    assert coupon_adjustments(quote_of((ours, 1), (theirs, 1))) == [(theirs.pk, 100)]
    coupon.scope, coupon.sku, coupon.product = Coupon.Scope.PRODUCT, None, ours.product
    coupon.save()
    # ours 999 + third 1000 covered: 100 spread in proportion, the odd fen to the larger line
    assert sorted(coupon_adjustments(quote_of((ours, 1), (theirs, 1), (third, 1)))) == sorted(
        [(ours.pk, 49), (third.pk, 51)]
    )
    coupon.scope, coupon.product, coupon.scope_merchant = Coupon.Scope.MERCHANT, None, theirs.product.merchant
    coupon.save()
    assert coupon_adjustments(quote_of((ours, 1), (theirs, 1))) == [(theirs.pk, 100)]
    games = Category.objects.create(name="games", slug=f"g-{uuid.uuid4().hex[:6]}")
    theirs.product.category = games
    theirs.product.save(update_fields=["category"])
    theirs.refresh_from_db()
    coupon.scope, coupon.scope_merchant, coupon.category = Coupon.Scope.CATEGORY, None, games
    coupon.save()
    assert coupon_adjustments(quote_of((ours, 1), (theirs, 1))) == [(theirs.pk, 100)]
    coupon.scope = Coupon.Scope.ALL
    coupon.save()
    assert coupon_adjustments(quote_of((ours, 1), (theirs, 1))) == [(None, 100)]  # every line: order-level


def test_a_percentage_on_some_lines_is_of_those_lines_only(two_skus):
    ours, theirs = two_skus
    make_coupon(kind=Coupon.Kind.PERCENT, percent=10, amount_fen=0, scope=Coupon.Scope.SKU, sku=theirs)
    quote = quote_of((ours, 1), (theirs, 3))  # 10% of 6003 = 600.3
    assert coupon_adjustments(quote) == [(theirs.pk, 600)]
    assert quote.total_fen == 999 + 6_003 - 600


def test_a_merchant_funded_coupon_covers_only_that_merchants_goods(two_skus):
    ours, theirs = two_skus
    make_coupon(amount_fen=300, funded_by="merchant", merchant=theirs.product.merchant)
    quote = quote_of((ours, 1), (theirs, 1))
    assert [(a.sku_id, a.amount_fen, a.funded_by) for a in quote.adjustments] == [(theirs.pk, 300, "merchant")]
    assert quote_of((ours, 1)).context[coupons.REFUSAL] == "This coupon does not apply to anything in your cart."


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"code": "NOPE"}, "There is no coupon with this code."),
        ({"is_active": False}, "There is no coupon with this code."),
        ({"starts_at": timezone.now() + timedelta(days=1)}, "This coupon is not valid yet."),
        ({"ends_at": timezone.now() - timedelta(seconds=1)}, "This coupon has expired."),
        ({"total_limit": 2, "used_count": 2}, "This coupon has been used up."),
        ({"new_users_only": True}, "This coupon is for new customers: sign in or sign up to use it."),
    ],
)
def test_a_code_that_does_not_apply_says_why_and_takes_nothing_off(two_skus, fields, reason):
    ours, _theirs = two_skus
    make_coupon(**fields)
    quote = quote_of((ours, 1))
    assert quote.total_fen == 999
    assert quote.context[coupons.REFUSAL] == reason


def test_new_customers_only_means_no_paid_order_yet(two_skus):
    ours, _theirs = two_skus
    make_coupon(new_users_only=True)
    buyer = User.objects.create_user(email="new@example.com", password="x-long-pass-1")
    assert coupon_adjustments(quote_of((ours, 1), buyer=buyer)) == [(None, 100)]
    order = place(ours, 1, buyer=buyer, email=buyer.email).order
    pay(order)
    refused = quote_of((ours, 1), buyer=buyer)
    assert refused.context[coupons.REFUSAL] == "This coupon is for new customers only."


def test_a_new_customers_coupon_is_taken_once_even_by_two_unpaid_orders(two_skus):
    """No per-user limit set: the second order placed before the first is paid is refused at
    placement (under the buyer's lock), and the use comes back when the first order expires."""
    ours, _theirs = two_skus
    coupon = make_coupon(new_users_only=True)
    buyer = User.objects.create_user(email="new2@example.com", password="x-long-pass-1")
    first = place(ours, 1, buyer=buyer, email=buyer.email, coupon_code="SAVE").order
    assert first.discount_fen == 100
    with pytest.raises(services.CheckoutError, match="for a new customer's first order only"):
        place(ours, 1, buyer=buyer, email=buyer.email, coupon_code="SAVE")
    coupon.refresh_from_db()
    assert coupon.used_count == 1
    assert services.cancel_order(order=first)
    again = place(ours, 1, buyer=buyer, email=buyer.email, coupon_code="SAVE").order
    assert again.discount_fen == 100


# --- lifecycle -------------------------------------------------------------------------------------------
def test_expired_and_cancelled_orders_give_their_use_back(two_skus):
    ours, _theirs = two_skus
    coupon = make_coupon(total_limit=1)
    first = place(ours, 1, coupon_code="SAVE").order
    # the last use is held: the next buyer is told why, and nothing is placed
    with pytest.raises(services.CheckoutError, match=r"This coupon has been used up\."):
        place(ours, 1, coupon_code="SAVE")
    Order.objects.filter(pk=first.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))
    assert services.expire_overdue_orders() == 1
    coupon.refresh_from_db()
    assert coupon.used_count == 0
    assert CouponRedemption.objects.get(order=first).status == "released"
    second = place(ours, 1, coupon_code="SAVE").order
    assert second.discount_fen == 100
    assert services.cancel_order(order=second)
    coupon.refresh_from_db()
    assert coupon.used_count == 0


def test_the_per_buyer_limit_holds_for_accounts_and_guest_emails(two_skus):
    ours, _theirs = two_skus
    make_coupon(per_user_limit=1)
    buyer = User.objects.create_user(email="one@example.com", password="x-long-pass-1")
    assert place(ours, 1, buyer=buyer, email=buyer.email, coupon_code="SAVE").order.discount_fen == 100
    with pytest.raises(services.CheckoutError, match=r"You have already used this coupon\."):
        place(ours, 1, buyer=buyer, email=buyer.email, coupon_code="SAVE")
    assert place(ours, 1, email="guest@example.com", coupon_code="SAVE").order.discount_fen == 100
    with pytest.raises(services.CheckoutError, match="You have already used the coupon SAVE"):
        place(ours, 1, email="guest@example.com", coupon_code="SAVE")


def test_a_better_first_order_offer_passes_the_coupon_over(two_skus):
    ours, _theirs = two_skus
    make_coupon(amount_fen=100)
    saved = list(pricing.RULES)
    try:
        # A stand-in offer of the coupon's group (marketing/offers.py's real first_order redeems by its ref).
        @pricing.register_rule("better_offer", order=400, group=pricing.ORDER_OFFER)
        def better_offer(quote):
            quote.add(pricing.Adjustment(rule="better_offer", label="better", amount_fen=300, funded_by="platform"))

        quote = quote_of((ours, 2))
        assert [a.rule for a in quote.adjustments] == ["better_offer"]
        assert quote.passed_over == [{"rule": "coupon", "amount_fen": 100, "sku_id": None, "instead": "better_offer"}]
        order = place(ours, 2, coupon_code="SAVE").order  # placed with the better offer, no use taken
        assert not CouponRedemption.objects.filter(order=order).exists()
    finally:
        pricing.RULES[:] = saved


def test_a_late_payment_of_a_released_order_uses_the_coupon_again_within_the_limit(two_skus):
    ours, _theirs = two_skus
    coupon = make_coupon(total_limit=1)
    late = place(ours, 1, coupon_code="SAVE").order
    payment, _ = payments.start_payment(order=late, provider_name="sandbox")  # the buyer is at the gateway
    Order.objects.filter(pk=late.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))
    services.expire_overdue_orders()
    taken_meanwhile = place(ours, 1, coupon_code="SAVE").order  # the use came back and went again
    assert taken_meanwhile.discount_fen == 100
    payments.confirm_payment(  # paid after it expired: the buyer paid the discounted price
        out_trade_no=payment.out_trade_no, amount_fen=late.total_fen, gateway_trade_no="G-late", provider="sandbox"
    )
    late.refresh_from_db()
    assert late.paid_at is not None
    assert CouponRedemption.objects.get(order=late).status == "used"
    coupon.refresh_from_db()
    assert coupon.used_count == 1  # never above the limit
    Order.objects.filter(pk=taken_meanwhile.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))
    services.expire_overdue_orders()
    coupon.refresh_from_db()
    assert coupon.used_count == 0
