"""The coupon wallet's pages: "claim" (POST /promotions/coupons/<id>/claim/, ``marketing:claim_coupon``)
and the wallet /me/coupons/ (``accounts:coupons``, joined to the user center in kameng/urls.py)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from marketing import wallet
from marketing.models import Coupon

TABS = ("usable", "used", "expired")


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("accounts:coupons")


@require_POST
def claim_coupon(request, pk: int):
    """Claim a claimable coupon into the signed-in user's wallet; a guest signs in and comes back
    to the page the button was on."""
    target = _next(request)
    if not request.user.is_authenticated:
        return redirect_to_login(target, settings.LOGIN_URL)
    coupon = get_object_or_404(Coupon, pk=pk, claimable=True)
    try:
        wallet.claim(coupon, request.user)
    except wallet.ClaimRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, _("Coupon claimed: it is in your coupon wallet."))
    return redirect(target)


@login_required
def coupon_wallet(request):
    """Two queries whatever the wallet holds: the session's user and the grants with their coupons."""
    tab = request.GET.get("tab", "usable")
    if tab not in TABS:
        tab = "usable"
    found = wallet.wallet_of(request.user)
    items = getattr(found, tab)
    for item in items:
        item.use_url = wallet.use_url(item.coupon)
    context = {
        "tab": tab,
        "items": items,
        "counts": {name: len(getattr(found, name)) for name in TABS},
    }
    return render(request, "marketing/wallet.html", context)


urlpatterns = [path("coupons/", coupon_wallet, name="coupons")]
