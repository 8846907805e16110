"""The coupon wallet on storefront pages (catalog's and orders' templates load these: they sit below
marketing and cannot ask it; a template may load any installed app's tags).

* ``{% claimable_coupons skus as coupons %}``: the running claimable coupons that cover one of a
  product page's SKUs, each with ``claimed`` (the user holds it) and ``sold_out`` — two queries at
  most whatever their number; ``templates/marketing/_coupon_strip.html`` shows them.
* ``{% claim_state coupon as state %}``: ``claimed`` / ``sold_out`` / ``ended`` / ``claim`` for
  ``templates/marketing/_claim_button.html`` (uses what ``claimable_coupons`` set, else asks).
* ``{% coupon_value coupon %}`` and ``{% coupon_scope coupon %}``: what a coupon takes off and what
  it covers, in words.
* ``{% wallet_coupons_for_checkout lines as coupons %}``: the signed-in buyer's usable wallet
  coupons that cover something in the checkout's lines (one query).
"""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _

from kameng.money import fen_to_yuan_str
from kameng.templatetags.kameng import tr
from marketing import wallet
from marketing.models import Coupon

register = template.Library()


def _user(context):
    request = context.get("request")
    return getattr(request, "user", None)


@register.simple_tag(takes_context=True)
def claimable_coupons(context, skus) -> list:
    coupons = wallet.claimable_for(skus)
    wallet.mark_claimed(coupons, _user(context))
    # Those still to claim first, then those held, the ones all claimed last.
    return sorted(coupons, key=lambda coupon: (coupon.sold_out and not coupon.claimed, coupon.claimed))


@register.simple_tag(takes_context=True)
def claim_state(context, coupon: Coupon) -> str:
    if not hasattr(coupon, "claimed"):
        wallet.mark_claimed([coupon], _user(context))
    now = timezone.now()
    if coupon.claimed:
        return "claimed"
    if not coupon.claimable or not coupon.is_active or (coupon.ends_at and coupon.ends_at <= now):
        return "ended"
    if coupon.sold_out:
        return "sold_out"
    return "claim"


@register.simple_tag
def coupon_value(coupon: Coupon) -> str:
    return wallet.coupon_value(coupon)


@register.simple_tag
def coupon_condition(coupon: Coupon) -> str:
    parts = []
    if coupon.min_spend_fen:
        parts.append(_("on a spend of ¥%(amount)s") % {"amount": fen_to_yuan_str(coupon.min_spend_fen)})
    else:
        parts.append(_("no minimum spend"))
    if coupon.kind == Coupon.Kind.PERCENT and coupon.max_discount_fen is not None:
        parts.append(_("up to ¥%(amount)s") % {"amount": fen_to_yuan_str(coupon.max_discount_fen)})
    return " · ".join(parts)


@register.simple_tag
def coupon_scope(coupon: Coupon) -> str:
    scope = coupon.scope
    if scope == Coupon.Scope.CATEGORY and coupon.category_id:
        return _("%(name)s only") % {"name": tr(coupon.category, "name")}
    if scope == Coupon.Scope.PRODUCT and coupon.product_id:
        return _("%(name)s only") % {"name": tr(coupon.product, "title")}
    if scope == Coupon.Scope.SKU and coupon.sku_id:
        return _("%(name)s only") % {"name": f"{tr(coupon.sku.product, 'title')} {coupon.sku.label}"}
    if scope == Coupon.Scope.MERCHANT and coupon.scope_merchant_id:
        return _("%(name)s's goods") % {"name": coupon.scope_merchant.name}
    if coupon.funded_by == Coupon.FundedBy.MERCHANT and coupon.merchant_id:
        return _("%(name)s's goods") % {"name": coupon.merchant.name}
    return _("All goods")


@register.simple_tag(takes_context=True)
def wallet_coupons_for_checkout(context, lines) -> list:
    return wallet.for_checkout(_user(context), [line.sku for line in lines or []])
