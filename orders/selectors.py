"""Reads of orders shared by pages, e-mails and downloads."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from accounts.roles import merchant_ids
from catalog import codes
from orders.models import Order, OrderItem, OrderItemCode


@dataclass
class DeliveredItem:
    item: OrderItem
    secrets: list[codes.Secret] = field(default_factory=list)


def delivered_codes(*, order: Order) -> list[DeliveredItem]:
    """The order's items with their delivered codes decrypted (two queries). Only for the order's
    owner (page, e-mail, download) — callers check access first."""
    items = {item.pk: DeliveredItem(item=item) for item in order.items.all()}
    links = (
        OrderItemCode.objects.filter(item__order=order, status=OrderItemCode.Status.DELIVERED)
        .select_related("code")
        .order_by("item_id", "id")
    )
    for link in links:
        items[link.item_id].secrets.append(codes.decrypt(link.code.payload))
    return list(items.values())


def items_visible_to(user) -> QuerySet[OrderItem]:
    """The order items ``user`` may see in the back office: all for operators, their merchants'
    items for merchant staff."""
    ids = merchant_ids(user)
    queryset = OrderItem.objects.all()
    return queryset if ids is None else queryset.filter(merchant_id__in=ids)
