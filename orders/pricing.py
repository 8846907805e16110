"""The one place prices are computed: a quote with a breakdown, built on the server.

A quote starts from each SKU's list price; then every rule in :data:`RULES` may add adjustments
(discounts) to lines or to the whole order. Rules stack in order; each sees the quote as the
rules before it left it, so "first-order discount" can apply after "member price". The marketing
app registers its rules with :func:`register_rule` (coupons, first order, time-limited specials,
member-level prices); orders/loyalty.py registers ``member_level`` (100) and ``points`` (900, last);
an adjustment says who funds it (platform or merchant) so settlement can
charge it to the right party.

Amounts are integer fen. A quote never goes below zero, and the breakdown is stored on the order
(``Order.pricing``) so a later price change never changes what was paid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

from catalog.models import Sku


@dataclass
class Adjustment:
    rule: str  # machine name, e.g. "coupon", "first_order"
    label: str  # shown to the buyer
    amount_fen: int  # positive = discount
    funded_by: Literal["platform", "merchant"] = "merchant"
    sku_id: int | None = None  # None: applies to the order, spread over its lines for settlement


@dataclass
class QuoteLine:
    sku: Sku
    quantity: int
    unit_price_fen: int
    discount_fen: int = 0

    @property
    def subtotal_fen(self) -> int:
        return self.unit_price_fen * self.quantity

    @property
    def total_fen(self) -> int:
        return self.subtotal_fen - self.discount_fen


@dataclass
class Quote:
    lines: list[QuoteLine]
    adjustments: list[Adjustment] = field(default_factory=list)
    context: dict = field(default_factory=dict)  # buyer, coupon code, use_points… for rules
    points_used: int = 0  # points the "points" rule (orders/loyalty.py) takes for its discount

    @property
    def subtotal_fen(self) -> int:
        return sum(line.subtotal_fen for line in self.lines)

    @property
    def discount_fen(self) -> int:
        return sum(line.discount_fen for line in self.lines)

    @property
    def total_fen(self) -> int:
        return self.subtotal_fen - self.discount_fen

    def add(self, adjustment: Adjustment) -> None:
        """Apply a discount to its line (or spread an order-level one over the lines, largest
        first, to the fen), never beyond what a line costs."""
        targets = [line for line in self.lines if adjustment.sku_id in (None, line.sku.pk)]
        remaining = min(adjustment.amount_fen, sum(line.total_fen for line in targets))
        if remaining <= 0:
            return
        adjustment.amount_fen = remaining
        base = sum(line.total_fen for line in targets)
        shares = []
        for line in targets:
            shares.append(remaining * line.total_fen // base if base else 0)
        leftover = remaining - sum(shares)
        for index in sorted(range(len(targets)), key=lambda i: -targets[i].total_fen):
            if leftover <= 0:
                break
            extra = min(leftover, targets[index].total_fen - shares[index])
            shares[index] += extra
            leftover -= extra
        for line, share in zip(targets, shares, strict=True):
            line.discount_fen += share
        self.adjustments.append(adjustment)

    def breakdown(self) -> dict:
        return {
            "lines": [
                {
                    "sku_id": line.sku.pk,
                    "quantity": line.quantity,
                    "unit_price_fen": line.unit_price_fen,
                    "discount_fen": line.discount_fen,
                    "total_fen": line.total_fen,
                }
                for line in self.lines
            ],
            "adjustments": [asdict(a) for a in self.adjustments],
            "subtotal_fen": self.subtotal_fen,
            "discount_fen": self.discount_fen,
            "total_fen": self.total_fen,
            "points_used": self.points_used,
        }


Rule = Callable[[Quote], None]
RULES: list[tuple[int, str, Rule]] = []


def register_rule(name: str, *, order: int) -> Callable[[Rule], Rule]:
    """Register a pricing rule; lower ``order`` runs first. Re-registering a name replaces it."""

    def decorator(rule: Rule) -> Rule:
        RULES[:] = [entry for entry in RULES if entry[1] != name]
        RULES.append((order, name, rule))
        RULES.sort(key=lambda entry: entry[0])
        return rule

    return decorator


def quote(*, lines: list[tuple[Sku, int]], **context) -> Quote:
    result = Quote(lines=[QuoteLine(sku=sku, quantity=qty, unit_price_fen=sku.price_fen) for sku, qty in lines])
    result.context = context
    for _order, _name, rule in RULES:
        rule(result)
    return result
