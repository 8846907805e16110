"""The spending leaderboard page, /me/leaderboard/ (joined to the user center's ``accounts``
namespace in kameng/urls.py, as the wallet is): tabs for the week, the month and all time, the
user's own rank, and a "hide me" switch (orders/leaderboard.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import services as account_services
from orders import leaderboard


def _period(value: str | None) -> str:
    return value if value in leaderboard.PERIODS else leaderboard.MONTH


@login_required
def page(request):
    period = _period(request.GET.get("period"))
    board = leaderboard.board(period)
    top = board.top
    if not request.user.show_on_leaderboard:
        # Hidden a moment ago and the board not recomputed yet: never list them to themselves.
        top = [entry for entry in top if entry.user_id != request.user.pk]
    return render(
        request,
        "orders/leaderboard.html",
        {
            "period": period,
            "periods": [
                (leaderboard.WEEK, _("This week")),
                (leaderboard.MONTH, _("This month")),
                (leaderboard.ALL, _("All time")),
            ],
            "board": board,
            "top": top,
            "standing": leaderboard.standing(user=request.user, board=board),
        },
    )


@login_required
@require_POST
def visibility(request):
    """Show or hide the signed-in user on the leaderboard; the boards are recomputed on commit
    (orders/apps.py connects that to accounts' ``leaderboard_visibility_changed``)."""
    shown = request.POST.get("show") == "1"
    account_services.set_leaderboard_visibility(user=request.user, shown=shown)
    messages.success(
        request, _("You are on the leaderboard again.") if shown else _("You are hidden from the leaderboard.")
    )
    return redirect(f"{reverse('accounts:leaderboard')}?period={_period(request.POST.get('period'))}")


urlpatterns = [
    path("leaderboard/", page, name="leaderboard"),
    path("leaderboard/visibility/", visibility, name="leaderboard_visibility"),
]
