"""The user center's wallet page (/me/wallet/): the balance, its movements and a top-up form.

It lives in payments, not accounts, because a top-up is an order (orders.services.place_top_up)
paid through the gateways listed here (payments.providers), and accounts sits below both in the
layering (docs/ARCHITECTURE.md). kameng/urls.py serves these views under /me/ in the ``accounts``
URL namespace, next to the rest of the user center (accounts/urls.py)."""

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.text import get_text_list
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from accounts import wallet
from accounts.models import WalletEntry
from kameng.clientip import client_ip
from kameng.forms import YuanField
from kameng.money import fen_to_yuan_str
from orders import services as orders
from payments import providers

WALLET_PAGE_SIZE = 20
TOP_UP_PRESETS_FEN = (5_000, 10_000, 20_000, 50_000)


class TopUpForm(forms.Form):
    amount = YuanField(label=gettext_lazy("Amount (yuan)"))
    # One key per rendered form: a double click or a resubmit places one top-up order.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def clean_amount(self):
        fen = self.cleaned_data["amount"]
        try:
            orders.check_top_up_amount(fen)
        except orders.TopUpError as exc:
            raise forms.ValidationError(str(exc)) from None
        return fen


@login_required
def wallet_page(request, form: TopUpForm | None = None):
    """The balance, a top-up form and the movements that make the balance, newest first, 20 a page."""
    entries = WalletEntry.objects.filter(wallet__user=request.user).select_related("order").order_by("-seq")
    page = Paginator(entries, WALLET_PAGE_SIZE).get_page(request.GET.get("page"))
    # ?amount=7.00: the checkout's "top up" link fills in what the order is missing.
    amount = request.GET.get("amount", "")[:12] if form is None else ""
    form = form or TopUpForm(initial={"idempotency_key": uuid.uuid4().hex, "amount": amount or None})
    context = {
        # The ways a top-up can be paid here, by name (the wallet itself cannot pay a top-up).
        "top_up_methods": get_text_list([str(provider.label) for provider in providers.available()], _("or")),
        "balance_fen": wallet.balance_fen(request.user),
        "page": page,
        "form": form,
        "presets": [fen_to_yuan_str(fen) for fen in TOP_UP_PRESETS_FEN],
    }
    return render(request, "accounts/wallet.html", context, status=400 if form.errors else 200)


@require_POST
@login_required
@ratelimit(key="user", rate="20/m", method="POST", block=False)
def top_up(request):
    """Place a top-up order and send the buyer to its page, where the gateways are offered."""
    if getattr(request, "limited", False):
        messages.error(request, _("Too many attempts. Please wait a minute and try again."))
        return redirect("accounts:wallet")
    form = TopUpForm(request.POST)
    if not form.is_valid():
        return wallet_page(request, form=form)
    try:
        placed = orders.place_top_up(
            buyer=request.user, amount_fen=form.cleaned_data["amount"],
            idempotency_key=form.cleaned_data["idempotency_key"], client_ip=client_ip(request),
            language=get_language(),
        )  # fmt: skip
    except orders.CheckoutError as exc:
        messages.error(request, str(exc))
        return redirect("accounts:wallet")
    return redirect(placed.order)


# Included by kameng/urls.py under /me/ with accounts/urls.py, in the ``accounts`` namespace.
urlpatterns = [
    path("wallet/", wallet_page, name="wallet"),
    path("wallet/top-up/", top_up, name="top_up"),
]
