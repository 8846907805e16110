"""``{% member_offer skus as offer %}`` for storefront templates (catalog's product page): the
annual-member price of each SKU for a member, and what members save for everyone else.

A template tag rather than a catalog view change: catalog sits below orders (docs/ARCHITECTURE.md)
and cannot ask it; a template may load any installed app's tags. At most two queries per page,
whatever the number of SKUs: the viewer's membership, then (not a member) the best plan on sale."""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.db.models import Max
from django.urls import reverse
from django.utils.translation import get_language

from orders import membership

register = template.Library()


@dataclass(frozen=True)
class Offer:
    member: bool  # the viewer is an active member: prices below are theirs
    percent: int
    url: str


@register.simple_tag(takes_context=True)
def member_offer(context, skus) -> Offer | None:
    """Set ``member_price_fen`` and ``member_saving_fen`` on each SKU; None when no plan applies."""
    request = context.get("request")
    current = membership.active_membership(getattr(request, "user", None))
    if current is not None:
        percent = current.discount_percent
    else:
        percent = membership.plans_on_sale().aggregate(best=Max("discount_percent"))["best"] or 0
    if not percent:
        return None
    for sku in skus:
        saving = membership.unit_discount_fen(sku.price_fen, percent)
        sku.member_saving_fen = saving
        sku.member_price_fen = sku.price_fen - saving
    return Offer(member=current is not None, percent=percent, url=reverse("accounts:membership"))


@register.filter
def plan_name(order) -> str:
    """``{{ order|plan_name }}``: the name of the plan a membership order bought, as it was then
    (snapshotted in ``Order.pricing``), in English on the English site when it had one."""
    pricing = order.pricing or {}
    english = pricing.get("plan_name_en", "") if get_language() == "en" else ""
    return english or pricing.get("plan_name", "")
