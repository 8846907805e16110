from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts import wallet


@login_required
def overview(request):
    return render(request, "accounts/overview.html", {"wallet_balance_fen": wallet.balance_fen(request.user)})
