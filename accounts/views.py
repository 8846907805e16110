from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from accounts import wallet
from accounts.models import WalletEntry

WALLET_PAGE_SIZE = 20


@login_required
def overview(request):
    return render(request, "accounts/overview.html", {"wallet_balance_fen": wallet.balance_fen(request.user)})


@login_required
def wallet_page(request):
    """The balance and the movements that make it, newest first, 20 a page."""
    entries = WalletEntry.objects.filter(wallet__user=request.user).select_related("order").order_by("-seq")
    page = Paginator(entries, WALLET_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request, "accounts/wallet.html", {"balance_fen": wallet.balance_fen(request.user), "page": page}
    )  # fmt: skip
