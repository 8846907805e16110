"""marketing's cards of the user-center home (accounts/usercenter.py): the coupon wallet (slot 400:
coupons to use, those expiring soon, a link to /me/coupons/) and the invite card (slot 410:
commission available and pending, and a link to the invite page, marketing/invite_views.py)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts import usercenter
from marketing import referrals, wallet
from marketing.models import ReferralProgram


def card_context(request) -> dict:
    """Two queries: the programme and the user's commission totals."""
    return {"enabled": ReferralProgram.load().enabled, "totals": referrals.totals(request.user)}


def coupons_context(request) -> dict:
    """One query: the user's usable grants and those of them expiring within three days."""
    now = timezone.now()
    soon = now + timedelta(days=3)
    expiry = wallet.usable(request.user, now=now).values_list("expires_at", flat=True)
    dates = list(expiry)
    return {"usable": len(dates), "expiring": sum(1 for d in dates if d is not None and d <= soon)}


def register() -> None:
    usercenter.register(
        name="coupons",
        app="marketing",
        template="marketing/wallet_card.html",
        context=coupons_context,
        order=usercenter.COUPONS,
    )
    usercenter.register(
        name="invite",
        app="marketing",
        template="marketing/invite_card.html",
        context=card_context,
        order=usercenter.INVITE,
    )
