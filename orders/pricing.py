"""The one place prices are computed: a quote with a breakdown, built on the server.

A quote starts from each SKU's list price; then every rule in :data:`RULES` may add adjustments
(discounts) to lines or to the whole order. Rules run in their ``order``; each sees the quote as the
rules before it left it. Apps register their rules with :func:`register_rule` (orders/loyalty.py:
``member_level`` and ``points``; orders/membership.py: ``annual_membership``; marketing the rest);
an adjustment says who funds it (platform or merchant) so settlement can
charge it to the right party.

The stacking policy (one table; docs/ARCHITECTURE.md repeats it for the apps that register):

=====  ====================  ===============  =========================================================
order  rule                  group            stacks with
=====  ====================  ===============  =========================================================
100    ``member_level``      ``UNIT_PRICE``   per line the best unit-price offer wins: level price,
110    ``annual_membership``                  member price, flash special, quantity tier exclude each
120    flash special                          other (best for the buyer)
130    quantity tier
300    满减 (spend tiers)     —                everything (applies to what the unit prices left)
400    first order           ``ORDER_OFFER``  per order the better of first-order discount and coupon
410    coupon
900    ``points``            —                everything: last, so its cap applies to what is left
=====  ====================  ===============  =========================================================

A group's offers are each priced on a copy of the quote at the place of the group's first rule
and only the best is applied; the others are listed in the breakdown's ``passed_over`` (so the
checkout can say "your coupon was not combined: the first-order discount saves more").

Two floors, applied as each adjustment is added (:meth:`Quote.add`), whatever the rule:

* **cost** — no line is sold below its SKU's cost (``Sku.cost_fen`` × quantity, when set);
* **the platform's commission** — a platform-funded discount stays within the platform's
  commission on the line (:meth:`Quote.platform_room`), see below.

What did not fit is the adjustment's ``capped_fen`` with the reason in ``capped_by``
(``cost_floor``, ``platform_commission``); an offer capped to nothing is listed in ``not_given``.

Who pays a discount: a merchant-funded one lowers what the merchant is credited with (and the
platform's commission with it); a platform-funded one does not — the merchant is credited as if
the buyer had paid it, out of the platform's commission (``QuoteLine.platform_funded_fen``, stored
on each order item, read by payments/settlement.py). The platform funds at most its commission on a
line: the gateways split only the trade's own money, so a merchant can never be owed more than the
buyer paid for its goods.

The operators' price preview per role (orders/price_preview.py) runs these same rules with a synthetic
buyer: no ``buyer`` in the context, and ``as_level`` (a member level, or None) and ``as_membership``
(an unsaved membership with its discount) in its place, read by the member-level and membership rules.

Amounts are integer fen. A quote never goes below zero, and the breakdown is stored on the order
(``Order.pricing``) so a later price change never changes what was paid; refunds reverse each part
in proportion (settlement reverses the platform's and the merchant's shares by what was paid).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Literal, NamedTuple

from catalog.models import Sku


@dataclass
class Adjustment:
    rule: str  # machine name, e.g. "coupon", "first_order"
    label: str  # shown to the buyer
    amount_fen: int  # positive = discount
    funded_by: Literal["platform", "merchant"] = "merchant"
    sku_id: int | None = None  # None: applies to the order, spread over its lines for settlement
    ref: str = ""  # what the rule needs to redeem it when the order is placed (a coupon code, a special's id)
    capped_fen: int = 0  # asked for but not given (the floor at cost, the platform's room)
    capped_by: str = ""  # why: "cost_floor", "platform_commission" (comma-separated when both)

    def cap(self, amount_fen: int, reason: str) -> None:
        self.capped_fen += amount_fen
        if reason not in self.capped_by.split(","):
            self.capped_by = ",".join(filter(None, [self.capped_by, reason]))


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
    context: dict = field(default_factory=dict)  # buyer, coupon code, use_points… for rules
    points_used: int = 0  # points the "points" rule (orders/loyalty.py) takes for its discount
    # Offers the stacking policy left out (a better one of their group applied), and adjustments
    # capped to nothing: the breakdown lists both so the buyer and operators see why.
    passed_over: list[dict] = field(default_factory=list)
    not_given: list[Adjustment] = field(default_factory=list)
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
        what they cost, the remainder largest first, to the fen) within each line's room: never below
        the SKU's cost (:meth:`floor_room`) and, when the platform funds it, never beyond the
        platform's commission (:meth:`platform_room`). What did not fit is ``capped_fen``."""
        targets = [line for line in self.lines if adjustment.sku_id in (None, line.sku.pk)]
        remaining = min(adjustment.amount_fen, sum(line.total_fen for line in targets))
        floor_capacity = [self.floor_room(line) for line in targets]
        capacity = list(floor_capacity)
        if adjustment.funded_by == "platform":
            capacity = [min(room, self.platform_room(line)) for room, line in zip(capacity, targets, strict=True)]
        fits = min(remaining, sum(capacity))
        if fits < remaining:
            above_floor = min(remaining, sum(floor_capacity))
            if above_floor < remaining:
                adjustment.cap(remaining - above_floor, CAPPED_BY_COST_FLOOR)
            if fits < above_floor:
                adjustment.cap(above_floor - fits, CAPPED_BY_PLATFORM_COMMISSION)
        if fits <= 0:
            if adjustment.capped_fen:
                adjustment.amount_fen = 0
                self.not_given.append(adjustment)
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

    def room(self, *, funded_by: str, sku_id: int | None = None) -> int:
        """The most a discount funded by ``funded_by`` on ``sku_id``'s line (None: the order) could
        take now, after the cost floor and, for the platform, its commission: a rule that must know
        the exact amount beforehand (points are taken whole) sizes its offer with this."""
        targets = [line for line in self.lines if sku_id in (None, line.sku.pk)]
        if funded_by == "platform":
            return sum(min(self.floor_room(line), self.platform_room(line)) for line in targets)
        return sum(self.floor_room(line) for line in targets)

    def floor_room(self, line: QuoteLine) -> int:
        """How much more discount ``line`` can take before the buyer pays less than the SKU's cost
        (``Sku.cost_fen`` × quantity; no cost set: down to zero)."""
        cost = line.sku.cost_fen or 0
        return max(0, line.total_fen - cost * line.quantity)

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
                adjustment.cap(taken, CAPPED_BY_PLATFORM_COMMISSION)
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
            "passed_over": self.passed_over,
            "not_given": [asdict(a) for a in self.not_given],
            "subtotal_fen": self.subtotal_fen,
            "discount_fen": self.discount_fen,
            "total_fen": self.total_fen,
            "points_used": self.points_used,
        }


Rule = Callable[[Quote], None]


class OfferUnavailable(Exception):
    """Raised while an order is placed when an offer its quote used is gone (a coupon's last use
    taken, a special's quantity sold): the order is not placed and the buyer is told
    ``user_message`` and shown the new price."""

    def __init__(self, user_message: str):
        super().__init__(user_message)
        self.user_message = user_message


CAPPED_BY_COST_FLOOR = "cost_floor"
CAPPED_BY_PLATFORM_COMMISSION = "platform_commission"

# Stacking groups: the rules of a group exclude each other and the buyer gets the best of them.
UNIT_PRICE = "unit_price"  # per line: member level, annual membership, flash special, quantity tier
ORDER_OFFER = "order_offer"  # per order: first-order discount, coupon
GROUPS = {UNIT_PRICE: "line", ORDER_OFFER: "order"}


class RuleEntry(NamedTuple):
    order: int
    name: str
    rule: Rule
    group: str | None


RULES: list[RuleEntry] = []


def register_rule(name: str, *, order: int, group: str | None = None) -> Callable[[Rule], Rule]:
    """Register a pricing rule; lower ``order`` runs first. Re-registering a name replaces it.

    A rule with a ``group`` (:data:`UNIT_PRICE`, :data:`ORDER_OFFER`) is one offer among several
    that exclude each other: at the place of the group's first rule, each of them is priced on its
    own copy of the quote and only the best for the buyer is applied — per line for ``UNIT_PRICE``
    (its adjustments must name their line), for the whole order for ``ORDER_OFFER``; ties go to the
    earlier rule. Such a rule must only call :meth:`Quote.add` (it may run on a copy)."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown pricing group {group!r}")

    def decorator(rule: Rule) -> Rule:
        RULES[:] = [entry for entry in RULES if entry.name != name]
        RULES.append(RuleEntry(order, name, rule, group))
        RULES.sort(key=lambda entry: entry.order)
        return rule

    return decorator


def _copy(quote: Quote) -> Quote:
    """A copy a rule can price on without touching ``quote`` (same SKUs, same context)."""
    return Quote(
        lines=[replace(line) for line in quote.lines],
        adjustments=[replace(a) for a in quote.adjustments],
        context=quote.context,
        _shares=[dict(shares) for shares in quote._shares],
        _rates=quote._rates,
    )


def _apply_group(quote: Quote, members: list[RuleEntry], scope: str) -> None:
    """Price each offer of a group on a copy and apply the best (see :func:`register_rule`)."""
    offers: list[tuple[RuleEntry, list[Adjustment]]] = []
    before = len(quote.adjustments)
    for entry in members:
        trial = _copy(quote)
        entry.rule(trial)
        if quote._rates is None:
            quote._rates = trial._rates  # keep the one query made for commission rates
        offers.append((entry, trial.adjustments[before:]))
    if scope == "line":
        for line in quote.lines:

            def on_line(adjustments: list[Adjustment], sku_id: int = line.sku.pk) -> list[Adjustment]:
                for adjustment in adjustments:
                    if adjustment.sku_id is None:
                        raise ValueError(f"rule {adjustment.rule!r} of a per-line group made an order-level discount")
                return [a for a in adjustments if a.sku_id == sku_id]

            _apply_best(quote, [(entry, on_line(adjustments)) for entry, adjustments in offers], line.sku.pk)
    else:
        _apply_best(quote, offers, None)


def _apply_best(quote: Quote, offers: list[tuple[RuleEntry, list[Adjustment]]], sku_id: int | None) -> None:
    """Apply the offer that saves the buyer most (ties: the earlier rule), each of its adjustments
    added again as asked (so capping repeats exactly); the others are listed as passed over."""
    savings = [sum(a.amount_fen for a in adjustments) for _entry, adjustments in offers]
    if not any(savings):
        return
    best = max(range(len(offers)), key=lambda index: (savings[index], -index))
    winner, adjustments = offers[best]
    for adjustment in adjustments:
        quote.add(
            replace(adjustment, amount_fen=adjustment.amount_fen + adjustment.capped_fen, capped_fen=0, capped_by="")
        )
    for (entry, _adjustments), saving in zip(offers, savings, strict=True):
        if saving and entry is not winner:
            quote.passed_over.append(
                {"rule": entry.name, "amount_fen": saving, "sku_id": sku_id, "instead": winner.name}
            )


def quote(*, lines: list[tuple[Sku, int]], **context) -> Quote:
    """Price ``lines`` for the buyer and offers in ``context``: every rule in order, each group's
    best offer at the place of its first rule, then the platform's funding brought within its room."""
    result = Quote(lines=[QuoteLine(sku=sku, quantity=qty, unit_price_fen=sku.price_fen) for sku, qty in lines])
    result.context = context
    done: set[str] = set()
    for entry in list(RULES):
        if entry.group is None:
            entry.rule(result)
        elif entry.group not in done:
            done.add(entry.group)
            _apply_group(result, [member for member in RULES if member.group == entry.group], GROUPS[entry.group])
    result.trim_platform_funding()
    return result
