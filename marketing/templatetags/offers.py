"""``{% product_offers product skus as promo %}`` for the product page: the 满减 tiers running for
the product's goods, each SKU's quantity tiers and the first-order discount.

A template tag, as ``{% member_offer %}``: catalog sits below marketing and cannot ask it. At most
five queries per page whatever the number of SKUs, promotions and tiers."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import template
from django.db.models import Q
from django.utils.translation import gettext as _

from marketing import offers
from marketing.models import FirstOrderOffer, QuantityTier, SpendTierPromotion

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
    by_sku: dict[int, list[str]] = {sku.pk: [] for sku in skus}
    rows = QuantityTier.objects.filter(sku_id__in=list(by_sku)).order_by("sku_id", "min_quantity")
    prices = {sku.pk: sku.price_fen for sku in skus}
    for tier in rows:
        if tier.unit_price_fen < prices[tier.sku_id]:
            by_sku[tier.sku_id].append(offers.quantity_tier_label(tier.min_quantity, tier.unit_price_fen))
    for sku in skus:
        sku.tier_labels = by_sku[sku.pk]
    result = ProductOffers()
    promotions = (
        SpendTierPromotion.objects.running()
        .filter(Q(merchant__isnull=True) | Q(merchant_id=product.merchant_id))
        .prefetch_related("tiers")
        .order_by("pk")
    )
    for promotion in promotions:
        result.spend_tiers += [offers.tier_label(t.threshold_fen, t.discount_fen) for t in promotion.tiers.all()]
    offer = FirstOrderOffer.objects.running().first()  # the latest to start (checkout takes the best)
    request = context.get("request")
    user = getattr(request, "user", None)
    if offer is not None and (user is None or not user.is_authenticated or offers.is_first_order(buyer=user)):
        result.first_order = first_order_text(offer)
    return result
