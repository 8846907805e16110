"""The invite page (/me/invite/): the user's link and code, its QR code (an SVG from our own URL, so
no inline script or data URL is needed), the invitees (masked) and the commission pending, available
and clawed back. Served by kameng/urls.py under /me/ in the ``accounts`` namespace."""

from __future__ import annotations

import io

import segno
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.cache import cache_control

from marketing import referrals
from marketing.models import ReferralProgram
from orders.leaderboard import mask_name

INVITEES_SHOWN = 50


def _link(request, code: str) -> str:
    return request.build_absolute_uri(reverse("catalog:home") + f"?invite={code}")


def masked_invitee(user) -> str:
    if user.email:
        return mask_name(nickname=user.nickname or "", email=user.email)
    from accounts.phones import masked

    return masked(user.phone) if user.phone else "***"


@login_required
def invite_page(request):
    """Six queries whatever the data: session user, programme, code, invitees and their count,
    commission totals."""
    program = ReferralProgram.load()
    code = referrals.code_for(request.user).code
    invitees = [
        {"name": masked_invitee(r.invitee), "at": r.attributed_at}
        for r in request.user.invitees.select_related("invitee").order_by("-attributed_at")[:INVITEES_SHOWN]
    ]
    context = {
        "program": program,
        "level1_percent": program.level1_rate * 100,
        "level2_percent": program.level2_rate * 100,
        "code": code,
        "link": _link(request, code),
        "invitees": invitees,
        "invitee_count": request.user.invitees.count(),
        "totals": referrals.totals(request.user),
    }
    return render(request, "marketing/invite.html", context)


@login_required
@cache_control(private=True, max_age=3600)
def invite_qr(request):
    """The invite link as a QR code (SVG)."""
    code = referrals.code_for(request.user).code
    out = io.BytesIO()
    segno.make(_link(request, code), error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False)
    return HttpResponse(out.getvalue(), content_type="image/svg+xml")


urlpatterns = [
    path("invite/", invite_page, name="invite"),
    path("invite/qr.svg", invite_qr, name="invite_qr"),
]
