"""满减 spend tiers, the first-order discount and quantity tiers as rules of the pricing engine:
arithmetic in fen (tiers, caps, per-merchant buckets, stacking with member prices, the cost floor)
and the first-order redemption's lifecycle."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import LoyaltyAccount, MemberLevel
from catalog.models import LevelPrice, Sku
from marketing import offers
from marketing.models import FirstOrderOffer, FirstOrderRedemption, QuantityTier, SpendTier, SpendTierPromotion
from orders import pricing, services
from orders.models import Order
from orders.tests.conftest import pay, place

pytestmark = pytest.mark.django_db


@pytest.fixture
def skus(demo_shop):
    """A (¥100) and B (¥50) of the demo merchant (commission 10%), C (¥20) of the other one."""
    steam, kings = demo_shop.products["steam-wallet"], demo_shop.products["honor-of-kings"]
    return [
        Sku.objects.create(product=steam, label="A", price_fen=10_000),
        Sku.objects.create(product=steam, label="B", price_fen=5_000),
        Sku.objects.create(product=kings, label="C", price_fen=2_000),
    ]


def spend_tiers(*tiers, **fields) -> SpendTierPromotion:
    promotion = SpendTierPromotion.objects.create(name=fields.pop("name", "满减"), **fields)
    for threshold, discount in tiers:
        SpendTier.objects.create(promotion=promotion, threshold_fen=threshold, discount_fen=discount)
    return promotion


def adjustments(quote, rule=None):
    return [(a.rule, a.sku_id, a.amount_fen) for a in quote.adjustments if rule in (None, a.rule)]


# -- quantity tiers --------------------------------------------------------------------------------------


def test_quantity_tier_gives_the_lowest_unit_price_reached(skus):
    a = skus[0]
    QuantityTier.objects.create(sku=a, min_quantity=5, unit_price_fen=9_500)
    QuantityTier.objects.create(sku=a, min_quantity=10, unit_price_fen=9_000)
    assert pricing.quote(lines=[(a, 4)]).total_fen == 40_000
    five = pricing.quote(lines=[(a, 5)])
    assert adjustments(five) == [("quantity_tier", a.pk, 2_500)]
    assert five.total_fen == 47_500 and five.lines[0].platform_funded_fen == 0  # the merchant funds it
    assert pricing.quote(lines=[(a, 12)]).total_fen == 12 * 9_000


def test_quantity_tier_and_level_price_exclude_each_other_best_per_line(skus, user):
    a, b, _c = skus
    level = MemberLevel.objects.create(name="Gold", threshold_fen=0, discount_percent=0)
    LoyaltyAccount.objects.update_or_create(user=user, defaults={"level": level})
    LevelPrice.objects.create(sku=a, level=level, price_fen=9_700)  # A: level ¥97 vs tier ¥95 → tier
    LevelPrice.objects.create(sku=b, level=level, price_fen=4_000)  # B: level ¥40 vs tier ¥48 → level
    QuantityTier.objects.create(sku=a, min_quantity=5, unit_price_fen=9_500)
    QuantityTier.objects.create(sku=b, min_quantity=5, unit_price_fen=4_800)
    quote = pricing.quote(lines=[(a, 5), (b, 5)], buyer=user)
    # The level price is platform-funded: ¥50 asked, ¥25 given (10% commission on ¥250), still more than ¥10.
    assert adjustments(quote) == [("quantity_tier", a.pk, 2_500), ("member_level", b.pk, 2_500)]
    assert quote.total_fen == 47_500 + 22_500
    assert {(p["rule"], p["sku_id"], p["amount_fen"]) for p in quote.passed_over} == {
        ("member_level", a.pk, 1_500),
        ("quantity_tier", b.pk, 1_000),
    }


def test_quantity_tier_stops_at_the_cost_floor(skus):
    a = skus[0]
    a.cost_fen = 9_800
    a.save(update_fields=["cost_fen"])
    QuantityTier.objects.create(sku=a, min_quantity=5, unit_price_fen=9_500)
    quote = pricing.quote(lines=[(a, 5)])
    assert quote.total_fen == 49_000  # ¥98 × 5, not ¥95 × 5
    assert quote.adjustments[0].capped_fen == 1_500 and quote.adjustments[0].capped_by == "cost_floor"


# -- 满减 ---------------------------------------------------------------------------------------------------


def test_spend_tiers_take_the_best_tier_reached_on_the_whole_order(skus):
    a, b, c = skus
    spend_tiers((10_000, 1_000), (20_000, 2_500), (30_000, 4_000), funded_by="merchant", merchant=a.product.merchant)
    assert pricing.quote(lines=[(b, 1), (c, 2)]).total_fen == 9_000  # ¥90: below ¥100
    quote = pricing.quote(lines=[(a, 1), (b, 2)])  # ¥200 exactly: the ¥25 tier
    assert adjustments(quote) == [("spend_tiers", None, 2_500)]
    assert quote.adjustments[0].label == "满200减25" and quote.adjustments[0].ref
    assert quote.total_fen == 17_500
    assert pricing.quote(lines=[(a, 3)]).total_fen == 26_000


def test_spend_tiers_count_what_unit_prices_left(skus):
    a = skus[0]
    QuantityTier.objects.create(sku=a, min_quantity=2, unit_price_fen=9_900)
    spend_tiers((20_000, 2_000))
    quote = pricing.quote(lines=[(a, 2)])  # ¥198 after the tier: below ¥200
    assert adjustments(quote) == [("quantity_tier", a.pk, 200)]


def test_spend_tiers_per_merchant_count_each_merchants_goods(skus, demo_shop):
    _a, b, c = skus
    spend_tiers((5_000, 500), scope="merchant")  # platform-funded, every merchant's part
    quote = pricing.quote(lines=[(b, 1), (c, 2)])  # demo ¥50 → ¥5 off; other ¥40 → nothing
    assert adjustments(quote) == [("spend_tiers", b.pk, 500)]
    assert quote.total_fen == 8_500


def test_a_merchants_own_spend_tier_counts_and_charges_only_its_goods(skus, demo_shop):
    a, b, c = skus
    spend_tiers((12_000, 1_500), scope="merchant", merchant=demo_shop.merchant, funded_by="merchant")
    quote = pricing.quote(lines=[(a, 1), (c, 5)])  # demo ¥100 < ¥120, though the order is ¥200
    assert quote.adjustments == []
    quote = pricing.quote(lines=[(a, 1), (b, 1), (c, 1)])  # demo ¥150: ¥15 over A and B, 2:1
    assert adjustments(quote) == [("spend_tiers", a.pk, 1_000), ("spend_tiers", b.pk, 500)]
    assert [line.platform_funded_fen for line in quote.lines] == [0, 0, 0]
    assert quote.lines[2].discount_fen == 0


def test_uneven_per_merchant_split_sums_to_the_tier_to_the_fen(skus, demo_shop):
    a, b, _c = skus
    b.price_fen = 3_333
    b.save(update_fields=["price_fen"])
    spend_tiers((10_000, 1_001), scope="merchant", merchant=demo_shop.merchant, funded_by="merchant")
    quote = pricing.quote(lines=[(a, 1), (b, 1), (skus[2], 1)])
    assert sum(a.amount_fen for a in quote.adjustments) == 1_001
    assert [line.discount_fen for line in quote.lines] == [751, 250, 0]


def test_whole_order_and_per_merchant_spend_tiers_stack_but_two_whole_order_ones_do_not(skus, demo_shop):
    a, _b, c = skus
    for merchant in (demo_shop.merchant, demo_shop.other_merchant):  # room for the platform's ¥10
        merchant.commission_rate = Decimal("0.2000")
        merchant.save(update_fields=["commission_rate"])
    spend_tiers((10_000, 800), name="small")
    spend_tiers((10_000, 1_000), name="big")
    spend_tiers((10_000, 300), scope="merchant", merchant=demo_shop.merchant, funded_by="merchant")
    quote = pricing.quote(lines=[(a, 1), (c, 1)])  # ¥120; demo's part ¥100
    assert set(adjustments(quote)) == {("spend_tiers", None, 1_000), ("spend_tiers", a.pk, 300)}
    assert quote.total_fen == 12_000 - 1_300


def test_spend_tiers_outside_their_window_or_inactive_do_not_apply(skus):
    a = skus[0]
    now = timezone.now()
    spend_tiers((5_000, 500), starts_at=now + timedelta(hours=1))
    spend_tiers((5_000, 600), starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    spend_tiers((5_000, 700), is_active=False)
    assert pricing.quote(lines=[(a, 1)]).adjustments == []


def test_platform_funded_spend_tier_is_capped_at_the_commission(skus):
    a = skus[0]  # commission 10%: the platform funds at most ¥10 on ¥100
    spend_tiers((10_000, 2_000))
    quote = pricing.quote(lines=[(a, 1)])
    assert quote.total_fen == 9_000
    assert quote.adjustments[0].capped_fen == 1_000 and quote.adjustments[0].capped_by == "platform_commission"


# -- first order -----------------------------------------------------------------------------------------


def first_order(**fields) -> FirstOrderOffer:
    fields.setdefault("name", "新客立减")
    fields.setdefault("funded_by", "merchant")
    return FirstOrderOffer.objects.create(**fields)


def test_first_order_fixed_and_percentage_with_cap(skus):
    a, b, _c = skus
    offer = first_order(kind="percent", percent=15, cap_fen=1_200)
    quote = pricing.quote(lines=[(b, 1)], email="new@example.com")  # 15% of ¥50 = ¥7.50
    assert adjustments(quote) == [("first_order", None, 750)]
    assert quote.adjustments[0].ref == str(offer.pk)
    assert pricing.quote(lines=[(a, 1)], email="new@example.com").total_fen == 10_000 - 1_200  # capped
    offer.kind, offer.amount_fen = "fixed", 800
    offer.save()
    assert pricing.quote(lines=[(a, 1)], email="new@example.com").total_fen == 9_200


def test_percentage_rounds_half_up_to_the_fen(skus):
    c = skus[2]
    c.price_fen = 1_005
    c.save(update_fields=["price_fen"])
    first_order(kind="percent", percent=10)
    assert pricing.quote(lines=[(c, 1)], email="new@example.com").discount_fen == 101  # 100.5 → 101


def test_first_order_applies_after_spend_tiers_on_what_they_left(skus):
    a, b, _c = skus
    spend_tiers((15_000, 1_500), funded_by="merchant", merchant=skus[0].product.merchant)
    first_order(kind="percent", percent=10)
    quote = pricing.quote(lines=[(a, 1), (b, 1)], email="new@example.com")
    assert [(r, amount) for r, _s, amount in adjustments(quote)] == [("spend_tiers", 1_500), ("first_order", 1_350)]
    assert quote.total_fen == 15_000 - 1_500 - 1_350


def test_no_first_order_without_knowing_who_buys(skus):
    first_order(kind="fixed", amount_fen=500)
    assert pricing.quote(lines=[(skus[0], 1)]).adjustments == []


@pytest.fixture
def stock(skus):
    from catalog import codes
    from catalog import services as catalog_services

    for sku in skus:
        catalog_services.add_codes(sku=sku, secrets=[codes.Secret(f"{sku.label}-{i}") for i in range(6)])
    return skus


@pytest.mark.django_db(transaction=True)
def test_first_order_once_per_person_across_guest_email_and_phone(stock, user):
    b = stock[1]
    first_order(kind="fixed", amount_fen=500)
    placed = place(b, email="Guest@Example.com", phone="13800138000").order
    assert placed.total_fen == 4_500
    redemption = FirstOrderRedemption.objects.get(order=placed)
    assert (redemption.email, redemption.phone, redemption.status) == ("guest@example.com", "+8613800138000", "held")
    # While it is held (another tab): same e-mail, or same phone with another e-mail, pays full price.
    assert place(b, email="guest@example.com").order.total_fen == 5_000
    assert place(b, email="other@example.com", phone="+86 138 0013 8000").order.total_fen == 5_000
    pay(placed)
    assert FirstOrderRedemption.objects.get(order=placed).status == "used"
    # Paid: the same person signed in with that e-mail gets no first-order discount either.
    user.email = "guest@example.com"
    user.save(update_fields=["email"])
    assert place(b, buyer=user, email="someone@example.com").order.total_fen == 5_000
    # Someone new does.
    assert place(b, email="fresh@example.com").order.total_fen == 4_500


@pytest.mark.django_db(transaction=True)
def test_an_earlier_paid_order_rules_it_out_even_without_a_redemption(stock):
    b = stock[1]
    pay(place(b, email="old@example.com").order)
    first_order(kind="fixed", amount_fen=500)
    assert place(b, email="OLD@example.com").order.total_fen == 5_000


@pytest.mark.django_db(transaction=True)
def test_released_on_cancel_and_on_full_refund_not_on_partial(stock, user):
    from payments import services as payments
    from payments.models import Refund

    b = stock[1]
    first_order(kind="fixed", amount_fen=500)
    cancelled = place(b, buyer=user, email=user.email).order
    services.cancel_order(order=cancelled)
    assert FirstOrderRedemption.objects.get(order=cancelled).status == "released"
    order = place(b, buyer=user, email=user.email).order
    assert order.total_fen == 4_500
    pay(order)
    payments.refund_amount_by_operator(
        order=Order.objects.get(pk=order.pk), amount_fen=1_000, note="t", actor=None, route=Refund.Route.WALLET
    )
    assert FirstOrderRedemption.objects.get(order=order).status == "used"
    payments.refund_amount_by_operator(
        order=Order.objects.get(pk=order.pk), amount_fen=3_500, note="t", actor=None, route=Refund.Route.WALLET
    )
    assert FirstOrderRedemption.objects.get(order=order).status == "released"
    assert place(b, buyer=user, email=user.email).order.total_fen == 4_500  # refunded in full: first again


@pytest.mark.django_db(transaction=True)
def test_a_redemption_taken_between_quote_and_placing_refuses_the_order(stock, monkeypatch):
    b = stock[1]
    offer = first_order(kind="fixed", amount_fen=500)
    other = place(b, email="x@example.com").order
    FirstOrderRedemption.objects.filter(order=other).delete()
    # The quote still offers it (no redemption visible); the insert finds the other tab's row.
    monkeypatch.setattr(offers, "is_first_order", lambda **kw: True)
    FirstOrderRedemption.objects.create(order=other, offer=offer, email="x@example.com", amount_fen=500)
    with pytest.raises(services.CheckoutError, match="已经使用过首单优惠"):
        place(b, email="x@example.com")


def test_platform_funded_first_order_stays_within_the_commission(skus):
    first_order(kind="fixed", amount_fen=3_000, funded_by="platform")
    quote = pricing.quote(lines=[(skus[0], 1)], email="new@example.com")
    assert quote.total_fen == 9_000 and quote.lines[0].platform_funded_fen == 1_000


def test_short_yuan():
    assert [offers.short_yuan(f) for f in (10_000, 9_950, 1_005, 100)] == ["100", "99.5", "10.05", "1"]


def _expire(order) -> None:
    from orders.models import Order as OrderModel

    OrderModel.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    services.expire_overdue_orders()
    assert FirstOrderRedemption.objects.get(order=order).status == "released"


def _discounts_paid(email: str) -> int:
    """First-order discounts the person kept: on orders paid and not refunded (nor being refunded)."""
    kept = Order.objects.filter(email=email, paid_at__isnull=False).exclude(
        status__in=[Order.Status.REFUNDING, Order.Status.REFUNDED]
    )
    return FirstOrderRedemption.objects.filter(order__in=kept).count()


@pytest.mark.django_db(transaction=True)
def test_an_expired_order_paid_late_keeps_its_price_and_the_unpaid_newer_order_loses_the_discount(stock):
    """Late payment first: the late order keeps the price its buyer paid and takes the redemption;
    the newer unpaid order's hold is revoked, and paying it anyway gets it refunded in full, so the
    person is given the first-order discount once."""
    b = stock[1]
    first_order(kind="fixed", amount_fen=500)
    expired = place(b, email="late@example.com").order
    _expire(expired)
    newer = place(b, email="late@example.com").order
    assert newer.total_fen == 4_500  # released: the person may use it again
    pay(expired)  # the gateway's money arrives late: the order is paid at the price shown
    expired.refresh_from_db()
    assert expired.status == Order.Status.DELIVERED and expired.total_fen == 4_500
    assert FirstOrderRedemption.objects.get(order=expired).status == "used"
    assert FirstOrderRedemption.objects.get(order=newer).status == "revoked"
    assert offers.is_first_order(email="late@example.com") is False
    pay(newer)
    newer.refresh_from_db()
    assert newer.status in (Order.Status.REFUNDING, Order.Status.REFUNDED)
    assert newer.events.filter(kind="delivery_failed", note__contains="first-order discount").exists()
    assert _discounts_paid("late@example.com") == 1


@pytest.mark.django_db(transaction=True)
def test_a_late_payment_after_the_newer_order_was_paid_with_the_discount_is_refunded(stock):
    b = stock[1]
    first_order(kind="fixed", amount_fen=500)
    expired = place(b, email="late2@example.com").order
    _expire(expired)
    newer = place(b, email="late2@example.com").order
    pay(newer)
    assert FirstOrderRedemption.objects.get(order=newer).status == "used"
    pay(expired)  # paid late: the discount is gone to the newer order, so the money goes back
    expired.refresh_from_db()
    assert expired.status in (Order.Status.REFUNDING, Order.Status.REFUNDED)
    assert FirstOrderRedemption.objects.get(order=expired).status == "released"
    assert _discounts_paid("late2@example.com") == 1
    newer.refresh_from_db()
    assert newer.status == Order.Status.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_a_late_payment_with_no_other_redemption_takes_it_again(stock):
    b = stock[1]
    first_order(kind="fixed", amount_fen=500)
    expired = place(b, email="late3@example.com").order
    _expire(expired)
    pay(expired)
    expired.refresh_from_db()
    assert expired.status == Order.Status.DELIVERED
    assert FirstOrderRedemption.objects.get(order=expired).status == "used"
    assert offers.is_first_order(email="late3@example.com") is False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prices=st.lists(st.integers(min_value=100, max_value=50_000), min_size=3, max_size=3),
    quantities=st.lists(st.integers(min_value=1, max_value=9), min_size=3, max_size=3),
    costs=st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=40_000)), min_size=3, max_size=3),
    tiers=st.lists(st.tuples(st.integers(1_000, 200_000), st.integers(1, 30_000)), min_size=1, max_size=4),
    per_merchant=st.booleans(),
    unit_tier=st.integers(min_value=50, max_value=50_000),
)
def test_spend_and_quantity_tiers_never_break_the_floor_and_parts_sum(
    skus, demo_shop, prices, quantities, costs, tiers, per_merchant, unit_tier
):
    SpendTierPromotion.objects.all().delete()
    QuantityTier.objects.all().delete()
    for sku, price, cost in zip(skus, prices, costs, strict=True):
        sku.price_fen, sku.cost_fen = price, cost
        sku.save(update_fields=["price_fen", "cost_fen"])
    QuantityTier.objects.create(sku=skus[0], min_quantity=2, unit_price_fen=unit_tier)
    usable = {t: d for t, d in tiers if d < t}
    if usable:
        fields = {"scope": "merchant", "merchant": demo_shop.merchant, "funded_by": "merchant"} if per_merchant else {}
        spend_tiers(*usable.items(), **fields)
    quote = pricing.quote(lines=list(zip(skus, quantities, strict=True)))
    for line in quote.lines:
        assert line.total_fen >= min(line.subtotal_fen, (line.sku.cost_fen or 0) * line.quantity)
        assert 0 <= line.discount_fen <= line.subtotal_fen
    assert sum(a.amount_fen for a in quote.adjustments) == quote.discount_fen
    assert quote.total_fen == quote.subtotal_fen - quote.discount_fen >= 0
    spent = sum(a.amount_fen for a in quote.adjustments if a.rule == "spend_tiers")
    assert spent <= max(usable.values(), default=0)
