"""Flash specials on storefront pages (catalog's templates load these: catalog sits below marketing
and cannot ask it; a template may load any installed app's tags).

``{% flash_specials_for_products list1 list2 … %}`` sets ``flash_special`` on every product of the
lists (one query for all of them: list pages stay at a constant query count however many specials
run); ``{% flash_specials_for_skus skus %}`` does the same for a product page's SKUs;
``{% flash_special_badge showing %}`` renders the price and the countdown (static/js/countdown.js
ticks it; without JavaScript the server's time left stays readable)."""

from __future__ import annotations

from django import template

from marketing import specials

register = template.Library()


@register.simple_tag
def flash_specials_for_products(*lists) -> str:
    products = [product for products in lists if products for product in products]
    showings = specials.showings_for_products({product.pk for product in products}) if products else {}
    for product in products:
        product.flash_special = showings.get(product.pk)
    return ""


@register.simple_tag
def flash_specials_for_skus(skus) -> str:
    skus = list(skus)
    showings = specials.showings_for_skus(skus) if skus else {}
    for sku in skus:
        sku.flash_special = showings.get(sku.pk)
    return ""


@register.inclusion_tag("marketing/_flash_special.html")
def flash_special_badge(showing, compact=False):
    hours, rest = divmod(showing.seconds, 3600) if showing else (0, 0)
    minutes, seconds = divmod(rest, 60)
    return {"showing": showing, "compact": compact, "clock": f"{hours:02d}:{minutes:02d}:{seconds:02d}"}
