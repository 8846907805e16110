"""Points and member levels where orders meet them: two pricing rules and the hooks of the order
lifecycle. accounts holds the ledgers and the arithmetic (``accounts/points.py``,
``accounts/levels.py``) and sits below orders, so orders calls down into it from here.

Pricing rules (``orders/pricing.py``):

* ``member_level`` (order 100, first): a signed-in buyer with a level gets the level's price of each
  line — the explicit per-SKU price (``catalog.LevelPrice``) or the level's percentage off — as one
  adjustment per line with ``sku_id`` set (the annual-membership rule, order 110, looks for these).
  ``funded_by="platform"``: levels are the platform's loyalty programme, defined by operators for
  every merchant's goods; a merchant never agreed to them, so the merchant is credited as if the
  buyer had paid the list price and the discount comes out of the platform's commission
  (payments/settlement.py).
* ``points`` (order 900, last, so the cap applies to what is left to pay): when the buyer chose to
  use points (``use_points`` in the quote's context), at most ``redeem_max_percent`` of the total
  is paid with points (``accounts.points.redemption``), an order-level adjustment funded by the
  platform (points are the platform's currency). ``Quote.points_used`` says how many points.

The lifecycle (``orders/services.py`` calls these inside its transactions, the order row locked
where it is locked; the points account is locked after it: Order → Payment → Wallet → LoyaltyAccount):

* placed: the points the quote used are debited in the placing transaction (:func:`spend_points`);
* expired / cancelled unpaid: they are given back (:func:`unpaid_closed`);
* paid (``confirm_paid``, late payments too): points are earned on the money paid, once per order,
  and the buyer's paid spend and level are recomputed (:func:`paid`);
* refunded (``record_refund``, partial refunds too): earned points are taken back and spent points
  given back in proportion, and the level recomputed (:func:`refunded`).

Guest orders earn nothing (there is no account to credit); a guest order claimed into an account
later does not earn either — its payment came before the account had it.
"""

from __future__ import annotations

from django.db.models import F, Sum
from django.utils.translation import gettext as _

from accounts import levels, points
from accounts.models import LoyaltySettings
from catalog import level_prices
from orders import pricing
from orders.models import Order

RULE_MEMBER_LEVEL = "member_level"
RULE_POINTS = "points"


def _signed_in(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


@pricing.register_rule(RULE_MEMBER_LEVEL, order=100, group=pricing.UNIT_PRICE)
def member_level_rule(quote: pricing.Quote) -> None:
    context = quote.context
    # ``as_level``: the operators' price preview (orders/price_preview.py) prices for a level, not a buyer.
    level = context["as_level"] if "as_level" in context else level_prices.buyer_level(context.get("buyer"))
    prices = level_prices.prices_for(level=level, skus=[line.sku for line in quote.lines])
    for line in quote.lines:
        unit = prices.get(line.sku.pk)
        if unit is None or unit >= line.unit_price_fen:
            continue
        quote.add(
            pricing.Adjustment(
                rule=RULE_MEMBER_LEVEL,
                label=_("%(level)s price") % {"level": levels.level_name(level)},
                amount_fen=(line.unit_price_fen - unit) * line.quantity,
                funded_by="platform",
                sku_id=line.sku.pk,
            )
        )


def points_offer(*, buyer, quote: pricing.Quote) -> points.Redemption:
    """What the buyer's points could take off ``quote`` now (nothing for guests): within the
    operators' cap and within what the platform may fund on the lines (the cost floor and its
    commission, ``Quote.room``), so the offer shown is exactly what paying with points takes."""
    if not _signed_in(buyer):
        return points.Redemption(0, 0)
    config = LoyaltySettings.load()
    if not config.points_enabled:
        return points.Redemption(0, 0)
    return points.redemption(
        total_fen=quote.total_fen, balance=points.balance(buyer), points_per_yuan=config.redeem_points_per_yuan,
        max_percent=config.redeem_max_percent, room_fen=quote.room(funded_by="platform"),
    )  # fmt: skip


@pricing.register_rule(RULE_POINTS, order=900)
def points_rule(quote: pricing.Quote) -> None:
    if not quote.context.get("use_points"):
        return
    offer = points_offer(buyer=quote.context.get("buyer"), quote=quote)
    if offer.discount_fen <= 0:
        return
    quote.add(
        pricing.Adjustment(
            rule=RULE_POINTS,
            label=_("%(points)s points") % {"points": offer.points},
            amount_fen=offer.discount_fen,
            funded_by="platform",
        )
    )
    quote.points_used = offer.points


def points_to_earn(*, total_fen: int) -> int:
    """The points paying ``total_fen`` for goods would earn (shown before paying)."""
    config = LoyaltySettings.load()
    if not config.points_enabled:
        return 0
    return points.points_for_payment(total_fen, rate=config.earn_points_per_yuan, rounding=config.earn_rounding)


# -- the lifecycle hooks -----------------------------------------------------------------------------------


def _goods_buyer(order: Order):
    """The account a goods order earns for (None: a guest order, or a wallet top-up)."""
    return order.buyer if order.kind != Order.Kind.TOP_UP and order.buyer_id is not None else None


def paid_spend_fen(user) -> int:
    """What the buyer paid for goods, minus what went back (top-ups are not spending)."""
    total = (
        Order.objects.filter(buyer=user, paid_at__isnull=False)
        .exclude(kind=Order.Kind.TOP_UP)
        .aggregate(spend=Sum(F("total_fen") - F("refunded_fen")))["spend"]
    )
    return total or 0


def recompute_level(user) -> levels.LevelChange:
    return levels.update_spend(user=user, spend=lambda: paid_spend_fen(user))


def spend_points(*, order: Order, used: int) -> None:
    """Debit the points the order's quote used (placing transaction). Raises
    ``accounts.points.InsufficientPoints`` when they were spent meanwhile."""
    if used > 0 and order.buyer is not None:
        points.spend_for_order(user=order.buyer, order=order, points=used)


def unpaid_closed(order: Order) -> None:
    """An unpaid order expired or was cancelled: its points go back."""
    if order.pricing.get("points_used") and order.buyer is not None:
        points.release_for_order(user=order.buyer, order=order)


def paid(order: Order) -> None:
    """A goods order was paid: points earned on the money paid, once; spend and level updated. A
    late payment of an order whose points went back when it expired uses them again."""
    buyer = _goods_buyer(order)
    if buyer is None:
        return
    if order.pricing.get("points_used"):
        points.respend_after_late_payment(user=buyer, order=order)
    points.earn_for_order(user=buyer, order=order, paid_fen=order.total_fen)
    recompute_level(buyer)


def refunded(order: Order, *, before_fen: int, after_fen: int) -> None:
    """Money went back: points reversed in proportion, spend and level updated."""
    buyer = _goods_buyer(order)
    if buyer is None:
        return
    points.reverse_for_refund(
        user=buyer, order=order, total_fen=order.total_fen, before_fen=before_fen, after_fen=after_fen
    )
    recompute_level(buyer)
