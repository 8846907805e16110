"""Reviews and related products on the product and order pages (catalog/reviews.py, catalog/related.py).

The includes ``catalog/_reviews.html``, ``catalog/_related.html`` and ``catalog/_order_reviews.html``
load this library, so the pages' views stay as they are.
"""

from django import template

from catalog import related, reviews

register = template.Library()


@register.simple_tag(takes_context=True)
def product_reviews(context, product):
    request = context.get("request")
    page_number = request.GET.get("reviews") if request is not None else None
    return reviews.product_reviews(product=product, page_number=page_number)


@register.simple_tag
def related_products(product, limit=4):
    return related.related_for(product_ids=[product.pk], limit=limit)


@register.simple_tag
def order_related(order, limit=4):
    product_ids = list(order.items.values_list("sku__product_id", flat=True).distinct())
    return related.related_for(product_ids=product_ids, limit=limit) if product_ids else []


@register.filter
def stars(value) -> str:
    """★★★★☆ for 4 (rounded to the nearest whole star)."""
    try:
        whole = max(0, min(5, round(float(value))))
    except (TypeError, ValueError):
        whole = 0
    return "★" * whole + "☆" * (5 - whole)
