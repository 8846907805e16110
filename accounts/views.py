from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from accounts import loyalty_card, usercenter
from accounts.models import PointsEntry

POINTS_PAGE_SIZE = 20


@login_required
def overview(request):
    """The user-center home: a greeting, the cards other apps register (accounts/usercenter.py)
    and shortcuts."""
    return render(request, "accounts/overview.html", {"cards": usercenter.render_cards(request)})


@login_required
def points_history(request):
    """The buyer's points: balance, level and progress, the rules, and the ledger newest first, 20
    a page. Constant queries however long the history: the standing (3), the settings, the page's
    count and rows (with their orders)."""
    entries = PointsEntry.objects.filter(account__user=request.user).select_related("order").order_by("-seq")
    page = Paginator(entries, POINTS_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {**loyalty_card.standing(request.user), "page": page, "rules": loyalty_card.settings_for_page()}
    response = render(request, "accounts/points.html", context)
    response["Cache-Control"] = "no-store"
    return response
