"""The invite card of the user-center home (accounts/usercenter.py): commission available and
pending, and a link to the invite page (marketing/invite_views.py). Slot 410, after the coupons."""

from __future__ import annotations

from accounts import usercenter
from marketing import referrals
from marketing.models import ReferralProgram


def card_context(request) -> dict:
    """Two queries: the programme and the user's commission totals."""
    return {"enabled": ReferralProgram.load().enabled, "totals": referrals.totals(request.user)}


def register() -> None:
    usercenter.register(
        name="invite",
        app="marketing",
        template="marketing/invite_card.html",
        context=card_context,
        order=usercenter.INVITE,
    )
