"""The cards orders adds to the user-center home (accounts/usercenter.py): how many orders wait in
each "my orders" tab, each count a link to its tab; and the user's rank on this month's spending
leaderboard (orders/leaderboard.py)."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts import usercenter
from orders import leaderboard, selectors

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
