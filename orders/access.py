"""Who may see an order page: its signed-in buyer, or the browser session that placed it or
unlocked it with the order's query secret. Nobody else — not even with the link."""

from __future__ import annotations

from orders.models import Order

SESSION_KEY = "kameng_orders"
REMEMBERED = 50


def remember(request, order: Order) -> None:
    known = [pk for pk in request.session.get(SESSION_KEY, []) if pk != order.pk]
    request.session[SESSION_KEY] = [order.pk, *known][:REMEMBERED]


def can_view(request, order: Order) -> bool:
    user = getattr(request, "user", None)
    if order.buyer_id is not None:
        return bool(user and user.is_authenticated and user.pk == order.buyer_id)
    return order.pk in request.session.get(SESSION_KEY, [])
