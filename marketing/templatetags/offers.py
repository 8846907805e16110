"""``{% product_offers product skus as promo %}`` for the product page: the 满减 tiers running for
the product's goods, each SKU's quantity tiers and the first-order discount.

A template tag, as ``{% member_offer %}``: catalog sits below marketing and cannot ask it. It reads
the cached snapshot of what runs (marketing/offers.py): no query in the steady state, whatever the
number of SKUs, promotions and tiers; two for a signed-in buyer when a first-order offer runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import template
from django.utils.translation import gettext as _

from marketing import offers
from marketing.models import FirstOrderOffer

register = template.Library()


@dataclass
class ProductOffers:
    spend_tiers: list[str] = field(default_factory=list)  # "满100减10", best first per promotion
    first_order: str = ""

    def __bool__(self) -> bool:
        return bool(self.spend_tiers or self.first_order)


def first_order_text(offer: FirstOrderOffer) -> str:
    if offer.kind == FirstOrderOffer.Kind.FIXED:
        return _("¥%(amount)s off your first order") % {"amount": offers.short_yuan(offer.amount_fen)}
    if offer.cap_fen:
        return _("%(percent)s%% off your first order, up to ¥%(cap)s") % {
            "percent": offer.percent,
            "cap": offers.short_yuan(offer.cap_fen),
        }
    return _("%(percent)s%% off your first order") % {"percent": offer.percent}


@register.simple_tag(takes_context=True)
def product_offers(context, product, skus) -> ProductOffers:
    """Set ``tier_labels`` (labels, lowest quantity first) on each SKU and return the page's offers."""
    skus = list(skus)
    current = offers.snapshot()
    for sku in skus:
        tiers = [(q, unit) for q, unit in current.quantity_tiers.get(sku.pk, []) if unit < sku.price_fen]
        sku.tier_prices = ";".join(f"{q}:{unit}" for q, unit in tiers)  # the product page's running total
        sku.tier_labels = [
            offers.quantity_tier_label(min_quantity, unit)
            for min_quantity, unit in current.quantity_tiers.get(sku.pk, [])
            if unit < sku.price_fen
        ]
    result = ProductOffers()
    for promotion in current.running_promotions():
        if promotion.merchant_id in (None, product.merchant_id):
            result.spend_tiers += [offers.tier_label(t.threshold_fen, t.discount_fen) for t in promotion.tiers.all()]
    running = current.running_first_orders()
    offer = running[-1] if running else None  # the latest created (checkout takes the best for the cart)
    request = context.get("request")
    user = getattr(request, "user", None)
    if offer is not None and (user is None or not user.is_authenticated or offers.is_first_order(buyer=user)):
        result.first_order = first_order_text(offer)
    return result
