"""The cards orders gives the user-center home (accounts/usercenter.py): how many orders wait in
each "my orders" tab, each count a link to its tab; and the annual membership with its expiry."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts import usercenter
from orders import membership, selectors
from orders.models import Membership

# The tabs the card shows (not "all": the card's title links there), with their labels.
TABS = (
    ("unpaid", _("Unpaid")),
    ("delivered", pgettext_lazy("order tab", "Delivered")),
    ("after_sales", _("After-sales")),
    ("refunded", _("Refunds")),
)


def card_context(request) -> dict:
    counts = selectors.buyer_order_counts(buyer=request.user, now=timezone.now())
    mine = reverse("orders:mine")
    return {
        "orders_url": mine,
        "total": counts["all"],
        "tabs": [(name, label, counts[name], f"{mine}?tab={name}") for name, label in TABS],
    }


def membership_context(request) -> dict:
    """One query: the buyer's membership, running or not."""
    now = timezone.now()
    current = Membership.objects.filter(user=request.user).only("ends_at").first()
    return {
        "active": current is not None and current.ends_at > now,
        "ends_at": current.ends_at if current is not None else None,
        "days_left": membership.days_left(current.ends_at, now) if current is not None else 0,
    }


def register() -> None:
    usercenter.register(
        name="membership",
        app="orders",
        template="orders/membership_card.html",
        context=membership_context,
        order=usercenter.MEMBERSHIP,
    )
    usercenter.register(
        name="orders",
        app="orders",
        template="orders/usercenter_card.html",
        context=card_context,
        order=usercenter.ORDERS,
    )
