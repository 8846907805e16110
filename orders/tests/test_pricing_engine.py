"""The pricing engine's stacking policy (orders/pricing.py): offers of one group exclude each other
and the buyer gets the best (per line for unit prices, per order for order offers); nothing sells
below the SKU's cost; the platform funds at most its commission; the breakdown says what was capped
or passed over, and why. A property test checks the invariants over generated carts and rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Sku
from orders import pricing

pytestmark = pytest.mark.django_db


@pytest.fixture
def rules():
    saved = list(pricing.RULES)
    pricing.RULES.clear()
    yield pricing.register_rule
    pricing.RULES[:] = saved


@pytest.fixture
def skus(demo_shop):
    """Two SKUs of the demo merchant (commission 10%) and one of the other merchant (2%)."""
    demo_shop.other_merchant.commission_rate = Decimal("0.0200")
    demo_shop.other_merchant.save(update_fields=["commission_rate"])
    steam, kings = demo_shop.products["steam-wallet"], demo_shop.products["honor-of-kings"]
    return [
        Sku.objects.create(product=steam, label="A", price_fen=10_000),
        Sku.objects.create(product=steam, label="B", price_fen=5_000),
        Sku.objects.create(product=kings, label="C", price_fen=2_000),
    ]


def percent_off(percent: int, *, rule: str, funded_by="merchant"):
    def price(quote: pricing.Quote) -> None:
        for line in quote.lines:
            quote.add(
                pricing.Adjustment(
                    rule=rule, label=rule, amount_fen=line.subtotal_fen * percent // 100, funded_by=funded_by,
                    sku_id=line.sku.pk,
                )
            )  # fmt: skip

    return price


def fixed_off(amount_fen: int, *, rule: str, funded_by="merchant", per_line=False):
    def price(quote: pricing.Quote) -> None:
        for line in quote.lines if per_line else [None]:
            quote.add(
                pricing.Adjustment(
                    rule=rule, label=rule, amount_fen=amount_fen, funded_by=funded_by,
                    sku_id=line.sku.pk if line else None,
                )
            )  # fmt: skip

    return price


def test_unit_price_offers_exclude_each_other_and_each_line_gets_its_best(rules, skus):
    a, b, _c = skus
    rules("level", order=100, group=pricing.UNIT_PRICE)(percent_off(10, rule="level"))  # A: 1000, B: 500
    rules("special", order=110, group=pricing.UNIT_PRICE)(fixed_off(700, rule="special", per_line=True))
    quote = pricing.quote(lines=[(a, 1), (b, 1)])
    assert [line.discount_fen for line in quote.lines] == [1_000, 700]
    assert [(adj.rule, adj.sku_id) for adj in quote.adjustments] == [("level", a.pk), ("special", b.pk)]
    assert quote.passed_over == [
        {"rule": "special", "amount_fen": 700, "sku_id": a.pk, "instead": "level"},
        {"rule": "level", "amount_fen": 500, "sku_id": b.pk, "instead": "special"},
    ]


def test_without_a_group_rules_stack(rules, skus):
    a = skus[0]
    rules("level", order=100)(percent_off(10, rule="level"))
    rules("special", order=110)(fixed_off(700, rule="special", per_line=True))
    assert pricing.quote(lines=[(a, 1)]).discount_fen == 1_700


def test_order_offers_exclude_each_other_the_best_applies_and_ties_go_to_the_earlier(rules, skus):
    a, b, _c = skus
    rules("first_order", order=400, group=pricing.ORDER_OFFER)(fixed_off(800, rule="first_order"))
    rules("coupon", order=410, group=pricing.ORDER_OFFER)(fixed_off(1_200, rule="coupon"))
    quote = pricing.quote(lines=[(a, 1), (b, 1)])
    assert quote.discount_fen == 1_200
    assert [adj.rule for adj in quote.adjustments] == ["coupon"]
    assert quote.passed_over == [{"rule": "first_order", "amount_fen": 800, "sku_id": None, "instead": "coupon"}]
    rules("coupon", order=410, group=pricing.ORDER_OFFER)(fixed_off(800, rule="coupon"))
    assert [adj.rule for adj in pricing.quote(lines=[(a, 1)]).adjustments] == ["first_order"]


def test_a_group_that_offers_nothing_leaves_the_quote_alone(rules, skus):
    rules("coupon", order=410, group=pricing.ORDER_OFFER)(lambda quote: None)
    quote = pricing.quote(lines=[(skus[0], 1)])
    assert (quote.adjustments, quote.passed_over, quote.total_fen) == ([], [], 10_000)


def test_a_per_line_offer_must_name_its_line(rules, skus):
    rules("level", order=100, group=pricing.UNIT_PRICE)(fixed_off(100, rule="level"))
    with pytest.raises(ValueError, match="order-level"):
        pricing.quote(lines=[(skus[0], 1)])


def test_an_unknown_group_is_refused():
    with pytest.raises(ValueError, match="unknown pricing group"):
        pricing.register_rule("x", order=1, group="everything")


def test_nothing_sells_below_cost_and_the_breakdown_says_which_rule_was_capped(rules, skus):
    a = skus[0]
    a.cost_fen = 9_000
    rules("level", order=100)(percent_off(5, rule="level"))  # 500: fits
    rules("coupon", order=410)(fixed_off(2_000, rule="coupon"))  # only 500 left above cost
    rules("extra", order=420)(fixed_off(100, rule="extra"))  # nothing left
    quote = pricing.quote(lines=[(a, 1)])
    assert quote.total_fen == 9_000
    level, coupon = quote.breakdown()["adjustments"]
    assert (level["amount_fen"], level["capped_fen"]) == (500, 0)
    assert (coupon["amount_fen"], coupon["capped_fen"], coupon["capped_by"]) == (500, 1_500, "cost_floor")
    (extra,) = quote.breakdown()["not_given"]
    assert (extra["rule"], extra["amount_fen"], extra["capped_fen"], extra["capped_by"]) == (
        "extra",
        0,
        100,
        "cost_floor",
    )


def test_a_platform_discount_can_be_capped_by_both_the_floor_and_the_commission(rules, skus):
    a = skus[0]  # 10 000, commission 10%: room 1000
    a.cost_fen = 9_500  # floor room 500
    rules("points", order=900)(fixed_off(2_000, rule="points", funded_by="platform"))
    (points,) = pricing.quote(lines=[(a, 1)]).breakdown()["adjustments"]
    assert (points["amount_fen"], points["capped_fen"], points["capped_by"]) == (500, 1_500, "cost_floor")
    a.cost_fen = 5_000  # floor room 5000: the commission binds
    (points,) = pricing.quote(lines=[(a, 1)]).breakdown()["adjustments"]
    assert (points["amount_fen"], points["capped_fen"], points["capped_by"]) == (1_000, 1_000, "platform_commission")


def test_a_group_offer_capped_on_its_copy_is_capped_the_same_way_when_applied(rules, skus):
    a = skus[0]
    a.cost_fen = 9_200
    rules("level", order=100, group=pricing.UNIT_PRICE)(percent_off(10, rule="level"))
    (level,) = pricing.quote(lines=[(a, 1)]).breakdown()["adjustments"]
    assert (level["amount_fen"], level["capped_fen"], level["capped_by"]) == (800, 200, "cost_floor")


# --- invariants over generated carts and rule sets -----------------------------------------------------------
RULE = st.tuples(
    st.sampled_from(["percent", "fixed_line", "fixed_order"]),
    st.integers(min_value=0, max_value=60),  # percent, or yuan
    st.sampled_from(["merchant", "platform"]),
    st.sampled_from([None, pricing.UNIT_PRICE, pricing.ORDER_OFFER]),
)


def build(kind: str, size: int, funded_by: str, name: str):
    if kind == "percent":
        return percent_off(size, rule=name, funded_by=funded_by)
    return fixed_off(size * 100, rule=name, funded_by=funded_by, per_line=kind == "fixed_line")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cart=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2),  # which SKU
            st.integers(min_value=1, max_value=5),  # quantity
            st.integers(min_value=1, max_value=50_000),  # price
            st.one_of(st.none(), st.integers(min_value=0, max_value=50_000)),  # cost
        ),
        min_size=1, max_size=3, unique_by=lambda line: line[0],
    ),
    rule_set=st.lists(RULE, max_size=5),
)  # fmt: skip
def test_any_cart_and_rules_keep_the_invariants(rules, skus, cart, rule_set):
    pricing.RULES.clear()
    for index, (kind, size, funded_by, group) in enumerate(rule_set):
        if group == pricing.UNIT_PRICE and kind == "fixed_order":
            kind = "fixed_line"
        rules(f"r{index}", order=index * 10, group=group)(build(kind, size, funded_by, f"r{index}"))
    lines = []
    for which, quantity, price, cost in cart:
        sku = Sku(pk=skus[which].pk, product_id=skus[which].product_id, label="x", price_fen=price, cost_fen=cost)
        lines.append((sku, quantity))
    quote = pricing.quote(lines=lines)
    breakdown = quote.breakdown()
    assert quote.total_fen >= 0
    assert sum(line["total_fen"] for line in breakdown["lines"]) == breakdown["total_fen"]
    assert sum(a["amount_fen"] for a in breakdown["adjustments"]) == breakdown["discount_fen"]
    rates = {skus[0].pk: Decimal("0.1"), skus[1].pk: Decimal("0.1"), skus[2].pk: Decimal("0.02")}
    for line in quote.lines:
        assert 0 <= line.platform_funded_fen <= line.discount_fen
        assert line.total_fen >= min(line.subtotal_fen, (line.sku.cost_fen or 0) * line.quantity)
        gross = line.total_fen + line.platform_funded_fen
        assert line.platform_funded_fen <= gross * rates[line.sku.pk]
    assert len({a.rule for a in quote.adjustments if _group_of(a.rule) == pricing.ORDER_OFFER}) <= 1
    for line in quote.lines:
        per_line = [
            a.rule for a in quote.adjustments if a.sku_id == line.sku.pk and _group_of(a.rule) == pricing.UNIT_PRICE
        ]
        assert len(set(per_line)) <= 1


def _group_of(name: str) -> str | None:
    return next((entry.group for entry in pricing.RULES if entry.name == name), None)
