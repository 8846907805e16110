"""The one place prices are computed: a quote with a breakdown, built on the server.

A quote starts from each SKU's list price; then every rule in :data:`RULES` may add adjustments
(discounts) to lines or to the whole order. Rules stack in order; each sees the quote as the
rules before it left it, so "first-order discount" can apply after "member price". The marketing
app registers its rules with :func:`register_rule` (coupons, first order, time-limited specials,
member-level prices); an adjustment says who funds it (platform or merchant) so settlement can
charge it to the right party.

Who pays a discount: a merchant-funded one lowers what the merchant is credited with (and the
platform's commission with it); a platform-funded one does not — the merchant is credited as if
the buyer had paid it, out of the platform's commission (``QuoteLine.platform_funded_fen``, stored
on each order item, read by payments/settlement.py). The platform funds at most its commission on a
line (:meth:`Quote.platform_room`): the gateways split only the trade's own money, so a merchant can
never be owed more than the buyer paid for its goods. Beyond that a platform-funded discount is
capped, and the adjustment says by how much (``capped_fen``).

Amounts are integer fen. A quote never goes below zero, and the breakdown is stored on the order
(``Order.pricing``) so a later price change never changes what was paid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Literal

from catalog.models import Sku


@dataclass
class Adjustment:
    rule: str  # machine name, e.g. "coupon", "first_order"
    label: str  # shown to the buyer
    amount_fen: int  # positive = discount
    funded_by: Literal["platform", "merchant"] = "merchant"
    sku_id: int | None = None  # None: applies to the order, spread over its lines for settlement
    capped_fen: int = 0  # asked for but not given: beyond the platform's room (Quote.platform_room)


@dataclass
class QuoteLine:
    sku: Sku
    quantity: int
    unit_price_fen: int
    discount_fen: int = 0
    # The part of ``discount_fen`` the platform pays for (adjustments with funded_by="platform"):
    # settlement credits the merchant as if the buyer had paid it (payments/settlement.py).
    platform_funded_fen: int = 0

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
    context: dict = field(default_factory=dict)  # buyer, coupon code… for rules
    _shares: list[dict[int, int]] = field(default_factory=list, repr=False)  # per adjustment: sku id → fen
    _rates: dict[int, Decimal] | None = field(default=None, repr=False)  # sku id → merchant commission rate

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
        """Apply a discount to its line (or spread an order-level one over the lines in proportion to
        what they cost, the remainder largest first, to the fen), never beyond what a line costs and,
        when the platform funds it, never beyond the platform's room on the line (:meth:`platform_room`):
        what did not fit is ``capped_fen``."""
        targets = [line for line in self.lines if adjustment.sku_id in (None, line.sku.pk)]
        requested = adjustment.amount_fen
        if adjustment.funded_by == "platform":
            capacity = [min(line.total_fen, self.platform_room(line)) for line in targets]
        else:
            capacity = [line.total_fen for line in targets]
        remaining = min(requested, sum(line.total_fen for line in targets))
        fits = min(remaining, sum(capacity))
        if adjustment.funded_by == "platform" and fits < remaining:
            adjustment.capped_fen += remaining - fits
        if fits <= 0:
            return
        adjustment.amount_fen = fits
        base = sum(line.total_fen for line in targets)
        shares = [
            min(cap, fits * line.total_fen // base if base else 0) for line, cap in zip(targets, capacity, strict=True)
        ]
        leftover = fits - sum(shares)
        for index in sorted(range(len(targets)), key=lambda i: -targets[i].total_fen):
            if leftover <= 0:
                break
            extra = min(leftover, capacity[index] - shares[index])
            shares[index] += extra
            leftover -= extra
        for line, share in zip(targets, shares, strict=True):
            line.discount_fen += share
            if adjustment.funded_by == "platform":
                line.platform_funded_fen += share
        self.adjustments.append(adjustment)
        self._shares.append({line.sku.pk: share for line, share in zip(targets, shares, strict=True) if share})

    def platform_room(self, line: QuoteLine) -> int:
        """How much more discount the platform can fund on ``line``: its commission on what the
        merchant is credited with (the line after merchant-funded discounts), less what it funds
        already. The platform pays the discounts it funds out of its commission, so a split never
        owes a merchant more than the buyer paid for the merchant's goods (the gateways split only
        money of the trade) and the platform's share of an order is never negative. A discount
        beyond that is capped and the breakdown says so (``capped_fen``)."""
        return max(0, self._platform_allowance(line) - line.platform_funded_fen)

    def _platform_allowance(self, line: QuoteLine) -> int:
        """The commission on the line's gross (rounded down, so the sum over a merchant's lines never
        exceeds the fee settlement computes, which rounds the merchant's total half up)."""
        gross = line.subtotal_fen - (line.discount_fen - line.platform_funded_fen)
        return int(Decimal(gross) * self._rate(line) // 1)

    def _rate(self, line: QuoteLine) -> Decimal:
        if self._rates is None:
            # One query, made only when a platform-funded discount is priced.
            self._rates = dict(
                Sku.objects.filter(pk__in=[quoted.sku.pk for quoted in self.lines]).values_list(
                    "pk", "product__merchant__commission_rate"
                )
            )
        return self._rates.get(line.sku.pk, Decimal(0))

    def trim_platform_funding(self) -> None:
        """After every rule: a merchant-funded discount priced after a platform-funded one lowers the
        merchant's gross and so the platform's room; take back what no longer fits, from the latest
        platform-funded adjustments on the line first."""
        for line in self.lines:
            if line.platform_funded_fen == 0:
                continue
            excess = line.platform_funded_fen - self._platform_allowance(line)
            for adjustment, shares in reversed(list(zip(self.adjustments, self._shares, strict=True))):
                share = shares.get(line.sku.pk, 0)
                if excess <= 0 or adjustment.funded_by != "platform" or share <= 0:
                    continue
                taken = min(share, excess)
                shares[line.sku.pk] = share - taken
                adjustment.amount_fen -= taken
                adjustment.capped_fen += taken
                line.discount_fen -= taken
                line.platform_funded_fen -= taken
                excess -= taken

    def breakdown(self) -> dict:
        return {
            "lines": [
                {
                    "sku_id": line.sku.pk,
                    "quantity": line.quantity,
                    "unit_price_fen": line.unit_price_fen,
                    "discount_fen": line.discount_fen,
                    "platform_funded_fen": line.platform_funded_fen,
                    "total_fen": line.total_fen,
                }
                for line in self.lines
            ],
            "adjustments": [asdict(a) for a in self.adjustments],
            "subtotal_fen": self.subtotal_fen,
            "discount_fen": self.discount_fen,
            "total_fen": self.total_fen,
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
    result.trim_platform_funding()
    return result
