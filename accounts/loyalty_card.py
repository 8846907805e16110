"""The points and level card of the user-center home (slot ``POINTS``, accounts/usercenter.py) and
the numbers the points page shows: the balance, the level with its badge and the progress to the
next one ("¥120 more to Gold"). Three queries whatever the history: the account with its level,
the last entry's balance, the levels."""

from __future__ import annotations

from django.urls import reverse

from accounts import levels, points, usercenter
from accounts.models import LoyaltyAccount, LoyaltySettings, MemberLevel


def standing(user) -> dict:
    """Balance, level and progress of ``user`` for the card and the points page."""
    account = LoyaltyAccount.objects.select_related("level").filter(user=user).first()
    spend = account.paid_spend_fen if account else 0
    progress = levels.progress(
        level=account.level if account else None, spend_fen=spend, levels=list(MemberLevel.objects.all())
    )
    return {
        "balance": points.balance(user),
        "progress": progress,
        "level_name": levels.level_name(progress.level),
        "next_level_name": levels.level_name(progress.next_level),
        "points_url": reverse("accounts:points"),
    }


def card_context(request) -> dict:
    return standing(request.user)


def register() -> None:
    usercenter.register(
        name="points",
        app="accounts",
        template="accounts/points_card.html",
        context=card_context,
        order=usercenter.POINTS,
    )


def settings_for_page() -> LoyaltySettings:
    return LoyaltySettings.load()
