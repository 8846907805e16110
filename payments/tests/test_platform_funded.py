"""Discounts the platform pays for (``funded_by="platform"``: member prices, points, platform
coupons): priced within the platform's commission on each line, recorded per order item, and
settled so the merchant is credited as if the buyer had paid them — the platform's share pays —
with refunds reversing each part in proportion and ``check_ledger`` clean throughout."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders import pricing
from orders.models import OrderItem
from payments import ledger, settlement
from payments.models import Settlement
from payments.tests.test_settlement import assert_ledger_ok, delivered_order, refund, sku_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rules():
    """Registers test rules for one test and takes them out again."""
    saved = list(pricing.RULES)
    yield pricing.register_rule
    pricing.RULES[:] = saved


def platform_off(amount_fen: int, *, per_line: bool = False):
    def rule(quote: pricing.Quote) -> None:
        for line in quote.lines if per_line else [None]:
            quote.add(
                pricing.Adjustment(
                    rule="test_platform", label="platform", amount_fen=amount_fen, funded_by="platform",
                    sku_id=line.sku.pk if line else None,
                )
            )  # fmt: skip

    return rule


def merchant_off(amount_fen: int):
    def rule(quote: pricing.Quote) -> None:
        quote.add(pricing.Adjustment(rule="test_merchant", label="merchant", amount_fen=amount_fen))

    return rule


# --- pricing ---------------------------------------------------------------------------------------------
def test_a_platform_discount_within_the_commission_is_given_in_full_and_recorded(demo_shop, rules):
    sku = sku_of(demo_shop.products["steam-wallet"], 10_000, "P1")  # commission 10%: room 1000 fen
    rules("test_platform", order=100)(platform_off(600))
    quote = pricing.quote(lines=[(sku, 1)])
    assert quote.total_fen == 9_400
    (line,) = quote.lines
    assert (line.discount_fen, line.platform_funded_fen) == (600, 600)
    assert quote.breakdown()["adjustments"][0]["capped_fen"] == 0


def test_a_platform_discount_beyond_the_commission_is_capped_and_says_so(demo_shop, rules):
    sku = sku_of(demo_shop.products["steam-wallet"], 10_000, "P1")
    rules("test_platform", order=100)(platform_off(1_500))
    quote = pricing.quote(lines=[(sku, 2)])  # gross 20 000: room 2000
    assert quote.total_fen == 20_000 - 1_500
    (adjustment,) = quote.breakdown()["adjustments"]
    assert (adjustment["amount_fen"], adjustment["capped_fen"]) == (1_500, 0)
    rules("test_platform", order=100)(platform_off(2_500))
    (adjustment,) = pricing.quote(lines=[(sku, 2)]).breakdown()["adjustments"]
    assert (adjustment["amount_fen"], adjustment["capped_fen"]) == (2_000, 500)


def test_merchant_discounts_are_not_capped_and_shrink_the_platforms_room(demo_shop, rules):
    sku = sku_of(demo_shop.products["steam-wallet"], 10_000, "P1")
    rules("test_platform", order=100)(platform_off(1_000))  # all of the room on 10 000
    rules("test_merchant", order=200)(merchant_off(5_000))  # gross now 5 000: room 500
    quote = pricing.quote(lines=[(sku, 1)])
    (line,) = quote.lines
    assert line.platform_funded_fen == 500
    assert line.discount_fen == 5_500
    platform, merchant = quote.breakdown()["adjustments"]
    assert (platform["amount_fen"], platform["capped_fen"]) == (500, 500)
    assert (merchant["amount_fen"], merchant["capped_fen"]) == (5_000, 0)


def test_an_order_level_platform_discount_spreads_within_each_lines_room(demo_shop, rules):
    demo_shop.other_merchant.commission_rate = Decimal("0.0200")
    demo_shop.other_merchant.save(update_fields=["commission_rate"])
    ours = sku_of(demo_shop.products["steam-wallet"], 10_000, "P1")  # 10%: room 1000
    theirs = sku_of(demo_shop.products["honor-of-kings"], 10_000, "P2")  # 2%: room 200
    rules("test_platform", order=100)(platform_off(1_000))
    quote = pricing.quote(lines=[(ours, 1), (theirs, 1)])
    assert [line.platform_funded_fen for line in quote.lines] == [800, 200]
    assert quote.discount_fen == 1_000


# --- settlement ------------------------------------------------------------------------------------------
def test_the_merchant_is_credited_as_if_the_buyer_had_paid_and_a_full_refund_undoes_it(demo_shop, rules):
    sku = sku_of(demo_shop.products["steam-wallet"], 10_000, "P1")
    rules("test_platform", order=100)(platform_off(800))
    order = delivered_order((sku, 1))
    assert order.total_fen == 9_200
    assert OrderItem.objects.get(order=order).platform_funded_fen == 800
    settlement.create_due_settlements()
    row = Settlement.objects.get(order=order)
    assert (row.gross_fen, row.fee_fen, row.merchant_fen, row.platform_funded_fen) == (10_000, 1_000, 9_000, 800)
    balances = ledger.order_balances(order.pk)
    assert balances["platform_fee"] == 200  # its fee less the discount it paid
    assert balances[f"merchant:{demo_shop.merchant.pk}:pending"] == 9_000
    assert_ledger_ok()
    settlement.execute_due_settlements()
    assert Settlement.objects.get(order=order).split_fen == 9_000  # within the 9 200 the trade holds
    assert_ledger_ok()
    refund(order, 4_600)  # half
    row.refresh_from_db()
    assert (row.reversed_fee_fen, row.reversed_merchant_fen) == (100, 4_500)
    assert_ledger_ok()
    refund(order, 4_600)
    balances = ledger.order_balances(order.pk)
    assert balances["platform_fee"] == 0
    assert balances[f"merchant:{demo_shop.merchant.pk}:settled"] == 0
    assert balances["refund"] == 9_200
    assert_ledger_ok()


def test_two_merchants_with_platform_discounts_reverse_in_proportion_to_what_was_paid(demo_shop, rules):
    demo_shop.other_merchant.commission_rate = Decimal("0.0750")
    demo_shop.other_merchant.save(update_fields=["commission_rate"])
    ours = sku_of(demo_shop.products["steam-wallet"], 1_999, "S1")
    theirs = sku_of(demo_shop.products["honor-of-kings"], 333, "S2")
    rules("test_platform", order=100)(platform_off(50, per_line=True))
    order = delivered_order((ours, 2), (theirs, 3))
    settlement.create_due_settlements()
    settlement.execute_due_settlements()
    for amount in (1_001, 777, order.total_fen - 1_001 - 777):
        refund(order, amount)
        assert_ledger_ok()
    for row in order.settlements.all():
        assert row.reversed_merchant_fen == row.merchant_fen
        assert row.reversed_fee_fen == row.platform_net_fen
