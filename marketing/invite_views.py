"""The invite page (/me/invite/): the user's link and code, its QR code (an SVG from our own URL, so
no inline script or data URL is needed), the invitees (masked), the commission pending, available
and clawed back, and the withdrawal of commission: the form (POST /me/invite/withdraw/, with the fee
rules shown) and the user's own requests with their status. Served by kameng/urls.py under /me/ in
the ``accounts`` namespace."""

from __future__ import annotations

import io
from decimal import Decimal

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST

from kameng.templatetags.kameng import yuan
from marketing import referrals, withdrawals
from marketing.models import ReferralProgram
from orders.leaderboard import mask_name

INVITEES_SHOWN = 50


def _link(request, code: str) -> str:
    """The shop's public address (settings.SITE_URL), never the request's Host header: a link shared
    from a page reached by another name (an internal host, a forged header) must still lead here."""
    return settings.SITE_URL.rstrip("/") + reverse("catalog:home") + f"?invite={code}"


def masked_invitee(user) -> str:
    if user.email:
        return mask_name(nickname=user.nickname or "", email=user.email)
    from accounts.phones import masked

    return masked(user.phone) if user.phone else "***"


WITHDRAWALS_SHOWN = 20


@login_required
def invite_page(request, *, form=None, error: str = "", status: int = 200):
    """Nine queries whatever the data: session user, programme, code, invitees and their count,
    commission totals, the withdrawable summary (two) and the withdrawal history."""
    program = ReferralProgram.load()
    summary = withdrawals.summary(request.user)
    fee_preview = None
    if summary.withdrawable_fen >= max(program.min_withdrawal_fen, 1):
        fee = withdrawals.fee_fen(summary.withdrawable_fen, program)
        fee_preview = {"fee": fee, "net": summary.withdrawable_fen - fee} if fee < summary.withdrawable_fen else None
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
        "withdrawable": summary,
        "fee_preview": fee_preview,
        "withdrawals": list(request.user.withdrawals.order_by("-created_at")[:WITHDRAWALS_SHOWN]),
        "form": form or WithdrawForm(initial={"key": withdrawals.new_key()}),
        "withdraw_error": error,
        "fee_rules": {
            "percent": program.withdrawal_fee_percent,
            "fixed": program.withdrawal_fee_fixed_fen,
            "minimum": program.withdrawal_fee_min_fen,
        },
    }
    return render(request, "marketing/invite.html", context, status=status)


class WithdrawForm(forms.Form):
    amount = forms.DecimalField(
        label=gettext_lazy("Amount (yuan)"), min_value=Decimal("0.01"), max_digits=12, decimal_places=2
    )
    alipay_account = forms.CharField(
        label=gettext_lazy("Alipay account"),
        max_length=100,
        help_text=gettext_lazy("The phone number or e-mail you log in to Alipay with."),
    )
    real_name = forms.CharField(
        label=gettext_lazy("Real name"),
        max_length=50,
        help_text=gettext_lazy("As registered with Alipay; Alipay checks it."),
    )
    key = forms.CharField(widget=forms.HiddenInput, max_length=40)


@login_required
@require_POST
def withdraw(request):
    """Ask to withdraw commission; shown again on the invite page with the error, or redirected there."""
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        return invite_page(request, form=form, status=400)
    data = form.cleaned_data
    try:
        made = withdrawals.request(
            user=request.user, amount_fen=int(data["amount"] * 100), alipay_account=data["alipay_account"],
            real_name=data["real_name"], key=data["key"],
        )  # fmt: skip
    except withdrawals.WithdrawalError as exc:
        return invite_page(request, form=form, error=str(exc), status=400)
    messages.success(
        request, _("Withdrawal of %(amount)s requested: an operator reviews it.") % {"amount": yuan(made.amount_fen)}
    )
    return redirect(reverse("accounts:invite") + "#withdrawals")


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
    path("invite/withdraw/", withdraw, name="invite_withdraw"),
]
