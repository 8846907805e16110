"""The paid orders' baskets for "bought together" (catalog/related.py keeps the relations and the
reads of the pages; catalog sits below orders and does not read them)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from catalog import related
from orders.models import Order, OrderItem

WINDOW_DAYS = 90


def compute(*, now=None) -> int:
    """Count, over the paid goods orders of the last :data:`WINDOW_DAYS` days, which products were
    bought together, and replace the relations (the nightly beat task)."""
    now = now or timezone.now()
    rows = (
        OrderItem.objects.filter(
            order__kind=Order.Kind.GOODS,
            order__paid_at__gte=now - timedelta(days=WINDOW_DAYS),
            order__status__in=[Order.Status.PAID, Order.Status.PROCESSING, Order.Status.DELIVERED],
        )
        .values_list("order_id", "sku__product_id")
        .order_by()
        .distinct()
    )
    return related.replace_relations(rows.iterator(chunk_size=5000))
