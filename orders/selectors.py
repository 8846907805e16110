"""Reads of orders shared by pages, e-mails and downloads."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery

from accounts.roles import merchant_ids
from catalog import codes
from orders.models import AfterSalesRequest, Order, OrderItem, OrderItemCode


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


# -- the buyer's "my orders" -----------------------------------------------------------------------------

MY_ORDER_TABS = ("all", "unpaid", "delivered", "after_sales", "refunded")


def _open_after_sales():
    return Exists(AfterSalesRequest.objects.filter(order=OuterRef("pk"), status=AfterSalesRequest.Status.OPEN))


def _tab_filters(now) -> dict[str, Q | Exists | None]:
    """Each tab as a condition on orders. "Unpaid" uses the effective status (an unpaid order past
    its deadline is expired even before the sweeper runs); "refunded" includes refunds under way
    and partial refunds of delivered orders; "after-sales" is an order with an open request."""
    return {
        "all": None,
        "unpaid": Q(status=Order.Status.PENDING_PAYMENT, reserved_until__gt=now),
        "delivered": Q(status=Order.Status.DELIVERED),
        "after_sales": _open_after_sales(),
        "refunded": Q(status__in=[Order.Status.REFUNDING, Order.Status.REFUNDED]) | Q(refunded_fen__gt=0),
    }


def _tab_counts(orders: QuerySet[Order], filters) -> dict[str, int]:
    return orders.aggregate(
        **{
            name: Count("pk") if condition is None else Count("pk", filter=condition)
            for name, condition in filters.items()
        }
    )


def buyer_order_counts(*, buyer, now) -> dict[str, int]:
    """How many of ``buyer``'s orders each "my orders" tab holds, in one query (the user-center
    home's orders card)."""
    return _tab_counts(Order.objects.filter(buyer=buyer), _tab_filters(now))


def buyer_orders(*, buyer, tab: str, query: str, now) -> tuple[QuerySet[Order], dict[str, int]]:
    """``buyer``'s orders in ``tab`` matching ``query`` (part of the order number or of a product
    title), newest first, with the latest after-sales status annotated, and the count of every tab
    for the same search in one query (conditional aggregation). Only ``buyer``'s own orders."""
    orders = Order.objects.filter(buyer=buyer)
    if query:
        titled = OrderItem.objects.filter(order=OuterRef("pk"), product_title__icontains=query)
        orders = orders.filter(Q(number__icontains=query) | Exists(titled))
    filters = _tab_filters(now)
    counts = _tab_counts(orders, filters)
    if filters[tab] is not None:
        orders = orders.filter(filters[tab])
    latest = AfterSalesRequest.objects.filter(order=OuterRef("pk")).order_by("-created_at", "-pk").values("status")[:1]
    orders = (
        orders.annotate(after_sales_status=Subquery(latest)).prefetch_related("items").order_by("-created_at", "-pk")
    )
    return orders, counts
