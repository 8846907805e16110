"""The promotions report: what each promotion did in a date range.

For every promotion used by a paid order in the range — a coupon, a flash special, a 满减 spend-tier
promotion, the first-order offer, the quantity tiers of a SKU, the invite-a-friend programme — one
:class:`Row`:

* **uses**: paid goods orders in the range (by ``paid_at``) that took it; orders refunded in full
  are left out (like the first-order rule, a refunded order did not happen);
* **discount given, by funder**: the adjustments of those orders' stored breakdowns
  (``Order.pricing``), split into what the platform and what merchants paid; for the referral
  programme the platform's cost is the commission it owes (earned less clawed back);
* **revenue**: what the buyers paid for those orders — for a merchant's own promotion only the lines
  of that merchant's goods (a merchant sees nothing of other merchants' sales);
* **new users**: buyers whose first paid order ever is one of those orders (accounts by id, guests by
  e-mail); for the referral programme, the sign-ups attributed in the range.

Rows come from a small registry of **row sources** (:func:`register_source`): a function per kind of
promotion that reads the period's orders (:class:`Period`, loaded once) and returns its rows. Another
kind (campaigns) adds rows with one decorated function. Each source makes at most a fixed number of
queries (the names of its promotions), so the report's queries do not grow with the number of
promotions or orders.

Merchant staff see only the rows of their own merchant-funded promotions (``Row.merchant_id``);
operators see all. Amounts are fen; the admin page shows yuan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property

from django.db.models import Min, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from catalog.models import Sku
from orders.models import Order


@dataclass
class Row:
    kind: str  # the source's name ("coupon", "flash_special"…)
    key: str  # the promotion within its kind (a coupon's code, a special's id…)
    name: str
    merchant_id: int | None  # whose promotion (merchant-funded); None: the platform's
    uses: int = 0
    platform_fen: int = 0
    merchant_fen: int = 0
    revenue_fen: int = 0
    new_users: int = 0
    kind_label: str = ""

    @property
    def discount_fen(self) -> int:
        return self.platform_fen + self.merchant_fen


@dataclass
class PaidOrder:
    pk: int
    buyer_id: int | None
    email: str
    total_fen: int
    pricing: dict


@dataclass
class Period:
    """The range ``[start, end)`` and its paid orders, loaded once and shared by every source."""

    start: datetime
    end: datetime

    @cached_property
    def orders(self) -> list[PaidOrder]:
        rows = (
            Order.objects.filter(kind=Order.Kind.GOODS, paid_at__gte=self.start, paid_at__lt=self.end)
            .exclude(status=Order.Status.REFUNDED)
            .order_by("pk")
            .values_list("pk", "buyer_id", "email", "total_fen", "pricing")
        )
        return [
            PaidOrder(pk, buyer, (email or "").lower(), total, pricing or {})
            for pk, buyer, email, total, pricing in rows
        ]

    @cached_property
    def first_orders(self) -> set[int]:
        """The orders of the period that are their buyer's first paid goods order ever (two queries)."""
        buyers = {o.buyer_id for o in self.orders if o.buyer_id}
        guests = {o.email for o in self.orders if not o.buyer_id and o.email}
        paid = Order.objects.filter(kind=Order.Kind.GOODS, paid_at__isnull=False).exclude(status=Order.Status.REFUNDED)
        first: set[int] = set()
        if buyers:
            earliest = paid.filter(buyer_id__in=buyers).values("buyer_id").annotate(first=Min("pk"))
            first |= {row["first"] for row in earliest}
        if guests:
            earliest = paid.filter(buyer__isnull=True, email__in=guests).values("email").annotate(first=Min("pk"))
            first |= {row["first"] for row in earliest}
        return first

    @cached_property
    def sku_merchants(self) -> dict[int, int]:
        """SKU id → merchant id of every line of the period's orders (one query)."""
        ids = {line["sku_id"] for o in self.orders for line in o.pricing.get("lines", [])}
        return dict(Sku.objects.filter(pk__in=ids).values_list("pk", "product__merchant_id")) if ids else {}

    def revenue(self, order: PaidOrder, merchant_id: int | None) -> int:
        if merchant_id is None:
            return order.total_fen
        lines = order.pricing.get("lines", [])
        return sum(line["total_fen"] for line in lines if self.sku_merchants.get(line["sku_id"]) == merchant_id)

    def by_adjustment(self, rule: str, key: Callable[[dict], str] = lambda a: a.get("ref", "")) -> dict[str, Use]:
        """The period's uses of ``rule``, per promotion (``key`` of an adjustment, its ``ref`` by default)."""
        return _collect(self, lambda order, adjustment: key(adjustment) if adjustment.get("rule") == rule else None)

    def row(self, kind: str, key: str, name: str, merchant_id: int | None, use: Use) -> Row:
        return Row(
            kind=kind, key=key, name=name, merchant_id=merchant_id, uses=len(use.orders),
            platform_fen=use.platform_fen, merchant_fen=use.merchant_fen,
            revenue_fen=sum(self.revenue(order, merchant_id) for order in use.orders.values()),
            new_users=sum(1 for pk in use.orders if pk in self.first_orders),
        )  # fmt: skip


@dataclass
class Use:
    orders: dict[int, PaidOrder] = field(default_factory=dict)
    platform_fen: int = 0
    merchant_fen: int = 0


Source = Callable[[Period], Iterable[Row]]


@dataclass(frozen=True)
class SourceEntry:
    name: str
    label: object  # a lazy translation
    order: int
    source: Source


SOURCES: list[SourceEntry] = []


def register_source(name: str, *, label, order: int) -> Callable[[Source], Source]:
    """Register a row source: ``source(period)`` returns the rows of one kind of promotion (any
    number, a fixed number of queries). Re-registering a name replaces it."""

    def decorator(source: Source) -> Source:
        SOURCES[:] = [entry for entry in SOURCES if entry.name != name]
        SOURCES.append(SourceEntry(name, label, order, source))
        SOURCES.sort(key=lambda entry: entry.order)
        return source

    return decorator


@dataclass
class Report:
    start: date
    end: date  # inclusive
    rows: list[Row]

    @property
    def totals(self) -> Row:
        total = Row(kind="", key="", name=str(_("Total")), merchant_id=None)
        for row in self.rows:
            total.uses += row.uses
            total.platform_fen += row.platform_fen
            total.merchant_fen += row.merchant_fen
            total.revenue_fen += row.revenue_fen
            total.new_users += row.new_users
        return total


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """``[start 00:00, the day after end 00:00)`` in the shop's time zone."""
    zone = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(start, time.min), zone),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), zone),
    )


def build(*, start: date, end: date, merchant_ids: list[int] | None = None) -> Report:
    """The report of the days ``start``…``end`` (inclusive); ``merchant_ids`` (merchant staff): only
    the rows of those merchants' own promotions."""
    period = Period(*day_bounds(start, end))
    rows: list[Row] = []
    for entry in SOURCES:
        for row in entry.source(period):
            if merchant_ids is not None and row.merchant_id not in merchant_ids:
                continue
            row.kind_label = str(entry.label)
            rows.append(row)
    return Report(start=start, end=end, rows=rows)


# -- the sources of marketing's own promotions ---------------------------------------------------------------


@register_source("coupon", label=_("Coupon"), order=100)
def coupon_rows(period: Period) -> list[Row]:
    from marketing.coupons import RULE
    from marketing.models import Coupon

    uses = period.by_adjustment(RULE)
    coupons = {c.code: c for c in Coupon.objects.filter(code__in=list(uses))} if uses else {}
    rows = []
    for code, use in uses.items():
        coupon = coupons.get(code)
        name = f"{code} · {coupon.name}" if coupon and coupon.name else code
        rows.append(period.row("coupon", code, name, coupon.merchant_id if coupon else None, use))
    return rows


@register_source("flash_special", label=_("Flash special"), order=200)
def special_rows(period: Period) -> list[Row]:
    from marketing.models import FlashSpecial
    from marketing.specials import RULE

    uses = period.by_adjustment(RULE)
    ids = [int(ref) for ref in uses if ref.isdigit()]
    specials = {str(s.pk): s for s in FlashSpecial.objects.filter(pk__in=ids).select_related("sku__product")}
    rows = []
    for ref, use in uses.items():
        special = specials.get(ref)
        if special is None:
            rows.append(period.row("flash_special", ref, f"#{ref}", None, use))
            continue
        owner = special.sku.product.merchant_id if special.funded_by == "merchant" else None
        name = f"{special.sku.product.title} · {special.sku.label}"
        rows.append(period.row("flash_special", ref, name, owner, use))
    return rows


@register_source("spend_tiers", label=_("Spend tiers (满减)"), order=300)
def spend_tier_rows(period: Period) -> list[Row]:
    from marketing.models import SpendTierPromotion
    from marketing.offers import RULE_SPEND

    uses = period.by_adjustment(RULE_SPEND)
    ids = [int(ref) for ref in uses if ref.isdigit()]
    promotions = {str(p.pk): p for p in SpendTierPromotion.objects.filter(pk__in=ids)}
    rows = []
    for ref, use in uses.items():
        promotion = promotions.get(ref)
        owner = promotion.merchant_id if promotion and promotion.funded_by == "merchant" else None
        rows.append(period.row("spend_tiers", ref, promotion.name if promotion else f"#{ref}", owner, use))
    return rows


@register_source("first_order", label=_("First-order offer"), order=400)
def first_order_rows(period: Period) -> list[Row]:
    from marketing.models import FirstOrderOffer
    from marketing.offers import RULE_FIRST_ORDER

    uses = period.by_adjustment(RULE_FIRST_ORDER)
    ids = [int(ref) for ref in uses if ref.isdigit()]
    offers = {str(o.pk): o for o in FirstOrderOffer.objects.filter(pk__in=ids)}
    rows = []
    for ref, use in uses.items():
        offer = offers.get(ref)
        # First-order offers are the platform's (operators only), even when one was set merchant-funded.
        rows.append(period.row("first_order", ref, offer.name if offer else f"#{ref}", None, use))
    return rows


@register_source("quantity_tier", label=_("Quantity tiers"), order=500)
def quantity_tier_rows(period: Period) -> list[Row]:
    from marketing.offers import RULE_QUANTITY

    uses = period.by_adjustment(RULE_QUANTITY, key=lambda a: str(a.get("sku_id") or ""))
    ids = [int(ref) for ref in uses if ref.isdigit()]
    skus = {str(s.pk): s for s in Sku.objects.filter(pk__in=ids).select_related("product")}
    rows = []
    for ref, use in uses.items():
        sku = skus.get(ref)
        name = f"{sku.product.title} · {sku.label}" if sku else f"SKU #{ref}"
        rows.append(period.row("quantity_tier", ref, name, sku.product.merchant_id if sku else None, use))
    return rows


@register_source("referral", label=_("Invite a friend"), order=600)
def referral_rows(period: Period) -> list[Row]:
    from marketing.models import Commission, Referral

    by_order: dict[int, int] = defaultdict(int)
    orders = {o.pk: o for o in period.orders}
    commissions = Commission.objects.filter(order_id__in=list(orders)).values_list(
        "order_id", "amount_fen", "clawed_back_fen"
    )
    for order_id, amount, clawed_back in commissions if orders else ():
        by_order[order_id] += amount - clawed_back
    signups = Referral.objects.filter(attributed_at__gte=period.start, attributed_at__lt=period.end).count()
    if not by_order and not signups:
        return []
    return [
        Row(
            kind="referral", key="programme", name=str(_("Invite-a-friend programme")), merchant_id=None,
            uses=len(by_order), platform_fen=sum(by_order.values()),
            revenue_fen=sum(orders[pk].total_fen for pk in by_order), new_users=signups,
        )
    ]  # fmt: skip


def _collect(period: Period, pick: Callable[[PaidOrder, dict], str | None]) -> dict[str, Use]:
    """Uses per key where ``pick(order, adjustment)`` names the promotion an adjustment belongs to."""
    uses: dict[str, Use] = defaultdict(Use)
    for order in period.orders:
        for adjustment in order.pricing.get("adjustments", []):
            key = pick(order, adjustment) if adjustment.get("amount_fen") else None
            if key is None:
                continue
            use = uses[key]
            use.orders[order.pk] = order
            if adjustment.get("funded_by") == "platform":
                use.platform_fen += adjustment["amount_fen"]
            else:
                use.merchant_fen += adjustment["amount_fen"]
    return uses


@register_source("campaign", label=_("Campaign"), order=700)
def campaign_rows(period: Period) -> list[Row]:
    """A campaign's uses: its items' special prices and its coupon, in the period's orders (two queries)."""
    from marketing.coupons import RULE as COUPON
    from marketing.models import Campaign, CampaignItem
    from marketing.specials import RULE as SPECIAL

    refs = {
        (a.get("rule"), a.get("ref", ""))
        for o in period.orders
        for a in o.pricing.get("adjustments", [])
        if a.get("rule") in (SPECIAL, COUPON)
    }
    if not refs:
        return []
    special_ids = [int(ref) for rule, ref in refs if rule == SPECIAL and ref.isdigit()]
    codes = [ref.upper() for rule, ref in refs if rule == COUPON]
    of_special = (
        dict(CampaignItem.objects.filter(special_id__in=special_ids).values_list("special_id", "campaign_id"))
        if special_ids
        else {}
    )
    wanted = Q(pk__in=set(of_special.values())) | Q(coupon__code__in=codes)  # codes are stored upper case
    campaigns = {c.pk: c for c in Campaign.objects.select_related("coupon").filter(wanted)}
    of_code = {c.coupon.code.upper(): c.pk for c in campaigns.values() if c.coupon_id and c.coupon}

    def pick(order: PaidOrder, adjustment: dict) -> str | None:
        ref = adjustment.get("ref", "")
        if adjustment.get("rule") == SPECIAL and ref.isdigit() and int(ref) in of_special:
            return str(of_special[int(ref)])
        if adjustment.get("rule") == COUPON and ref.upper() in of_code:
            return str(of_code[ref.upper()])
        return None

    return [
        period.row("campaign", key, campaigns[int(key)].title, None, use) for key, use in _collect(period, pick).items()
    ]


@register_source("winback", label=_("Win-back"), order=800)
def winback_rows(period: Period) -> list[Row]:
    """A win-back programme's uses: the coupon discounts of orders that used one of its grants (one query)."""
    from marketing.coupons import RULE as COUPON
    from marketing.models import CouponGrant

    orders = [o.pk for o in period.orders if any(a.get("rule") == COUPON for a in o.pricing.get("adjustments", []))]
    if not orders:
        return []
    grants = CouponGrant.objects.filter(order_id__in=orders, source=CouponGrant.Source.WINBACK, programme__isnull=False)
    programme_of: dict[int, tuple[int, str]] = {
        order_id: (programme_id, name)
        for order_id, programme_id, name in grants.values_list("order_id", "programme_id", "programme__name")
    }
    uses = _collect(
        period,
        lambda order, a: (
            str(programme_of[order.pk][0]) if a.get("rule") == COUPON and order.pk in programme_of else None
        ),
    )
    names = dict(programme_of.values())
    return [period.row("winback", key, names[int(key)], None, use) for key, use in uses.items()]


# -- the .xlsx export ---------------------------------------------------------------------------------------


def workbook(report: Report):
    """The report as an .xlsx file (the figures of the page; amounts in yuan as numbers)."""
    from decimal import Decimal

    from openpyxl import Workbook

    from kameng.xlsx import row as xrow
    from kameng.xlsx import saved

    book = Workbook(write_only=True)
    sheet = book.create_sheet(str(_("Promotions")))
    sheet.append(xrow(sheet, [str(_("Promotions report")), f"{report.start:%Y-%m-%d} – {report.end:%Y-%m-%d}"]))
    sheet.append(xrow(sheet, [str(h) for h in HEADERS]))

    def yuan(fen: int) -> Decimal:
        return Decimal(fen) / 100

    for row in [*report.rows, report.totals]:
        values = [
            row.kind_label, row.name, row.uses, yuan(row.platform_fen), yuan(row.merchant_fen),
            yuan(row.discount_fen), yuan(row.revenue_fen), row.new_users,
        ]  # fmt: skip
        sheet.append(xrow(sheet, values))
    return saved(book)


HEADERS = [
    _("Kind"),
    _("Promotion"),
    _("Uses (paid orders)"),
    _("Discount, platform (¥)"),
    _("Discount, merchants (¥)"),
    _("Discount, total (¥)"),
    _("Revenue (¥)"),
    _("New users"),
]
