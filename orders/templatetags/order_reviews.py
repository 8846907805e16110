"""The order page's review forms (templates/catalog/_order_reviews.html; orders/reviews.py)."""

from django import template

from orders import reviews

register = template.Library()


@register.simple_tag(takes_context=True)
def order_reviews(context, order):
    request = context.get("request")
    return reviews.for_order(order=order, user=request.user if request is not None else None)
