"""Flash specials (限时特价/秒杀): the pricing rule, the order-lifecycle receivers and the storefront's
reads (models in marketing/models/specials.py).

* **Pricing** — rule ``flash_special`` (order 120, group ``UNIT_PRICE``: per line the buyer gets the
  best of member level, annual membership, flash special, quantity tier). Within the window, a line
  of a SKU with a running special gets the special price for ``min(quantity, units left, the buyer's
  limit left)`` units and the list price for the rest; one adjustment per line (``sku_id``, ``ref`` =
  the special's id), funded by the merchant unless the special says the platform. How many units
  were priced is kept in the quote's context (:data:`UNITS`) for placement.
* **Placement** (``order_placed``, in the order's transaction, after the codes): per special, in id
  order, the special's row is locked, the window and the buyer's limit (signed-in user, else the
  order's normalised e-mail; held and used redemptions count) are checked, then a conditional
  UPDATE ``sold + q <= cap`` takes the units. Anything gone raises ``OfferUnavailable``: the order is
  not placed and the checkout shows the reason and the new price.
* **Release** — an order expired or cancelled unpaid (``order_released``) or refunded in full
  (``order_refunded``) gives its units back to ``sold``. Paid (``order_paid``): held → used; a late
  payment of a released order takes its units again when they are still there (else it stays
  released: the buyer paid the special price, the cap is never exceeded).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from kameng.money import fen_to_yuan_str
from marketing.models import FlashSpecial, SpecialRedemption
from orders import pricing, signals

RULE = "flash_special"
RULE_ORDER = 120
UNITS = "flash_special_units"  # quote.context key: special id → units priced at the special price
# A special is announced ("starts in …") this long before it starts.
PREVIEW = timedelta(hours=24)

Status = SpecialRedemption.Status


def yuan(fen: int) -> str:
    return f"¥{fen_to_yuan_str(fen)}"


def buyer_key(*, buyer=None, email: str = "") -> str:
    """Who the per-buyer limit counts: the account when signed in, else the normalised e-mail."""
    if buyer is not None and getattr(buyer, "is_authenticated", False):
        return f"user:{buyer.pk}"
    email = (email or "").strip().lower()
    return f"email:{email}" if email else ""


def _used(special_ids, key: str) -> dict[int, int]:
    if not key or not special_ids:
        return {}
    rows = (
        SpecialRedemption.objects.filter(special_id__in=special_ids, buyer_key=key)
        .exclude(status=Status.RELEASED)
        .values("special_id")
        .annotate(units=Sum("quantity"))
    )
    return {row["special_id"]: row["units"] for row in rows}


def running(*, sku_ids, now: datetime) -> dict[int, FlashSpecial]:
    """The running special of each SKU with units left, the lowest price when several run (one query)."""
    specials = FlashSpecial.objects.filter(
        sku_id__in=sku_ids, active=True, starts_at__lte=now, ends_at__gt=now, sold__lt=F("quantity_cap")
    ).order_by("sku_id", "-special_price_fen", "-pk")
    return {special.sku_id: special for special in specials}  # the last per SKU wins: the cheapest


# -- pricing ---------------------------------------------------------------------------------------------


@pricing.register_rule(RULE, order=RULE_ORDER, group=pricing.UNIT_PRICE)
def flash_special_rule(quote: pricing.Quote) -> None:
    now = quote.context.get("now") or timezone.now()
    specials = running(sku_ids=[line.sku.pk for line in quote.lines], now=now)
    if not specials:
        return
    key = buyer_key(buyer=quote.context.get("buyer"), email=quote.context.get("email", ""))
    used = _used([special.pk for special in specials.values()], key)
    units_by_special = {}
    for line in quote.lines:
        special = specials.get(line.sku.pk)
        if special is None or special.special_price_fen >= line.unit_price_fen:
            continue
        units = min(line.quantity, special.left, special.per_buyer_limit - used.get(special.pk, 0))
        if units <= 0:
            continue
        units_by_special[special.pk] = units
        quote.add(
            pricing.Adjustment(
                rule=RULE,
                label=_("Flash special %(price)s × %(units)s")
                % {"price": yuan(special.special_price_fen), "units": units},
                amount_fen=(line.unit_price_fen - special.special_price_fen) * units,
                funded_by=special.funded_by,
                sku_id=line.sku.pk,
                ref=str(special.pk),
            )
        )
    quote.context.setdefault(UNITS, {}).update(units_by_special)


# -- the order's life ------------------------------------------------------------------------------------


def redeem(*, order, quote: pricing.Quote) -> None:
    """Take the units ``quote`` priced at a special for ``order`` (in its transaction), or raise
    ``OfferUnavailable``."""
    taken = [a for a in quote.adjustments if a.rule == RULE and a.amount_fen > 0]
    if not taken:
        return
    units_by_special = quote.context.get(UNITS, {})
    key = buyer_key(buyer=order.buyer, email=order.email)
    now = timezone.now()
    for adjustment in sorted(taken, key=lambda a: int(a.ref)):  # lock order: ascending id
        special_id = int(adjustment.ref)
        units = units_by_special[special_id]
        special = FlashSpecial.objects.select_for_update().select_related("sku").get(pk=special_id)
        price = yuan(special.sku.price_fen)
        if not special.is_running(now):
            raise pricing.OfferUnavailable(
                _("The flash special on %(sku)s has ended; the price is %(price)s again. Please check the order.")
                % {"sku": special.sku.label, "price": price}
            )
        already = _used([special_id], key).get(special_id, 0)
        if already + units > special.per_buyer_limit:
            raise pricing.OfferUnavailable(
                _(
                    "You have already bought %(already)s of %(sku)s at the special price (at most %(limit)s each); "
                    "the price is %(price)s. Please check the order."
                )
                % {"already": already, "sku": special.sku.label, "limit": special.per_buyer_limit, "price": price}
            )
        took = FlashSpecial.objects.filter(pk=special_id, sold__lte=F("quantity_cap") - units).update(
            sold=F("sold") + units
        )
        if not took:
            raise pricing.OfferUnavailable(
                _("%(sku)s is sold out at the special price; the price is %(price)s again. Please check the order.")
                % {"sku": special.sku.label, "price": price}
            )
        SpecialRedemption.objects.create(
            special_id=special_id, order=order, quantity=units, buyer_id=order.buyer_id, buyer_key=key
        )


def _give_back(order, statuses) -> None:
    for redemption in SpecialRedemption.objects.filter(order=order, status__in=statuses).order_by("special_id"):
        FlashSpecial.objects.filter(pk=redemption.special_id).update(sold=F("sold") - redemption.quantity)
        redemption.status = Status.RELEASED
        redemption.save(update_fields=["status", "updated_at"])


def release(*, order) -> None:
    """An unpaid order expired or was cancelled: its held units are for sale again."""
    _give_back(order, [Status.HELD])


def paid(*, order, late: bool = False) -> None:
    """Held → used; a late payment takes its released units again when they are still there."""
    SpecialRedemption.objects.filter(order=order, status=Status.HELD).update(
        status=Status.USED, updated_at=timezone.now()
    )
    if not late:
        return
    for redemption in SpecialRedemption.objects.filter(order=order, status=Status.RELEASED).order_by("special_id"):
        if FlashSpecial.objects.filter(
            pk=redemption.special_id, sold__lte=F("quantity_cap") - redemption.quantity
        ).update(sold=F("sold") + redemption.quantity):
            redemption.status = Status.USED
            redemption.save(update_fields=["status", "updated_at"])


def refunded(*, order, after_fen: int) -> None:
    """Refunded in full: the units go back (a partial refund keeps them)."""
    if after_fen >= order.total_fen:
        _give_back(order, [Status.HELD, Status.USED])


def connect() -> None:
    signals.order_placed.connect(_on_placed, dispatch_uid="marketing.specials.placed")
    signals.order_released.connect(_on_released, dispatch_uid="marketing.specials.released")
    signals.order_paid.connect(_on_paid, dispatch_uid="marketing.specials.paid")
    signals.order_refunded.connect(_on_refunded, dispatch_uid="marketing.specials.refunded")


def _on_placed(sender, order, quote, **kwargs):
    redeem(order=order, quote=quote)


def _on_released(sender, order, **kwargs):
    release(order=order)


def _on_paid(sender, order, late=False, **kwargs):
    paid(order=order, late=late)


def _on_refunded(sender, order, before_fen, after_fen, **kwargs):
    refunded(order=order, after_fen=after_fen)


# -- storefront ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Showing:
    """What a product page or card shows of a special."""

    state: str  # "running", "upcoming", "sold_out"
    price_fen: int
    list_price_fen: int
    at: datetime  # running/sold out: when it ends; upcoming: when it starts
    seconds: int  # from now to ``at``
    units: int = 0  # at most this many units of one order get the price (units left, per-buyer limit)


def _showing(special: FlashSpecial, price_fen: int, now: datetime) -> Showing:
    if special.starts_at > now:
        state, at = "upcoming", special.starts_at
    else:
        state, at = ("running" if special.left > 0 else "sold_out"), special.ends_at
    seconds = max(0, int((at - now).total_seconds()))
    units = max(0, min(special.left, special.per_buyer_limit))
    return Showing(state, special.special_price_fen, price_fen, at, seconds, units)


def _pick(candidates: list[tuple[FlashSpecial, int]], now) -> Showing | None:
    """Running with units left (cheapest) before sold out before upcoming (soonest)."""

    def rank(pair):
        special, _price = pair
        if special.starts_at > now:
            return (2, special.starts_at.timestamp())
        return (0 if special.left > 0 else 1, special.special_price_fen)

    if not candidates:
        return None
    special, price = min(candidates, key=rank)
    return _showing(special, price, now)


def _visible(now):
    return FlashSpecial.objects.filter(active=True, ends_at__gt=now, starts_at__lte=now + PREVIEW, sku__is_active=True)


def showings_for_skus(skus, *, now: datetime | None = None) -> dict[int, Showing]:
    """The special each SKU shows (one query)."""
    now = now or timezone.now()
    prices = {sku.pk: sku.price_fen for sku in skus}
    candidates: dict[int, list] = {}
    for special in _visible(now).filter(sku_id__in=prices):
        candidates.setdefault(special.sku_id, []).append((special, prices[special.sku_id]))
    return {sku_id: _pick(pairs, now) for sku_id, pairs in candidates.items()}


def showings_for_products(product_ids, *, now: datetime | None = None) -> dict[int, Showing]:
    """The special each product's card shows, over its SKUs on sale (one query)."""
    now = now or timezone.now()
    candidates: dict[int, list] = {}
    rows = (
        _visible(now)
        .filter(sku__product_id__in=list(product_ids))
        .annotate(product_id=F("sku__product_id"), list_price_fen=F("sku__price_fen"))
    )
    for special in rows:
        candidates.setdefault(special.product_id, []).append((special, special.list_price_fen))
    return {product_id: _pick(pairs, now) for product_id, pairs in candidates.items()}
