"""Reviews where orders meet them: a buyer reviews an item of their own delivered order, once per
item (``Review.order_item`` is one-to-one); the order page's review forms. The review itself, the
product's average and the product page's list are catalog's (catalog/reviews.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from catalog.models import Review
from catalog.reviews import ReviewForm, ReviewRefused
from orders.models import Order, OrderItem


def reviewable_item(*, user, item_id: int):
    """The order item ``user`` may review now, or None (not theirs, not delivered, reviewed already)."""
    if not user.is_authenticated:
        return None
    return (
        OrderItem.objects.select_related("order", "sku")
        .filter(pk=item_id, order__buyer=user, order__status=Order.Status.DELIVERED, review__isnull=True)
        .first()
    )


def post_review(*, user, item_id: int, rating: int, comment: str) -> Review:
    item = reviewable_item(user=user, item_id=item_id)
    if item is None:
        raise ReviewRefused
    try:
        with transaction.atomic():
            return Review.objects.create(
                product_id=item.sku.product_id, order_item=item, buyer=user, rating=rating, comment=comment.strip()
            )
    except IntegrityError as error:  # a second tab, a double click: once per item
        raise ReviewRefused from error


@dataclass
class OrderReviews:
    """What the order page shows under a delivered order: per item, its review or a form."""

    entries: list = field(default_factory=list)  # [(item, review or None, form or None)]


def for_order(*, order, user) -> OrderReviews:
    """The items of a delivered order with their reviews (1 query); forms only for the order's buyer."""
    result = OrderReviews()
    if order.status != Order.Status.DELIVERED:
        return result
    mine = user is not None and user.is_authenticated and order.buyer_id == user.pk
    items = list(order.items.select_related("review", "sku").order_by("id"))
    for item in items:
        review = getattr(item, "review", None)
        if review is None and not mine:
            continue
        form = ReviewForm(auto_id=f"review{item.pk}_%s") if review is None else None
        result.entries.append((item, review, form))
    return result
