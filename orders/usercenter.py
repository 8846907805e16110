"""The cards orders gives the user-center home (accounts/usercenter.py): how many orders wait in
each "my orders" tab, each count a link to its tab; the annual membership with its expiry; and the
user's rank on this month's spending leaderboard (orders/leaderboard.py)."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts import usercenter
from orders import leaderboard, membership, selectors
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


def leaderboard_context(request) -> dict:
    """This month's top three and the user's place if they are listed, from the cached board only:
    the home adds no query for it (the leaderboard page computes a cold board; the beat keeps it warm)."""
    board = leaderboard.cached(leaderboard.MONTH)
    top = board.top if board else []
    return {
        "top": top[:3],
        "mine": next((entry for entry in top if entry.user_id == request.user.pk), None),
        "url": reverse("accounts:leaderboard"),
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
    usercenter.register(
        name="leaderboard",
        app="orders",
        template="orders/leaderboard_card.html",
        context=leaderboard_context,
        order=usercenter.LEADERBOARD,
    )
