"""The user center's membership page (/me/membership/): the plans on sale, the buyer's membership
and its expiry, and buying one (an order of kind ``member``, paid on its order page like any order).

Served by kameng/urls.py under /me/ in the ``accounts`` URL namespace, next to the rest of the user
center (accounts sits below orders, so accounts/urls.py cannot import these views)."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from kameng.clientip import client_ip
from orders import membership
from orders.models import Membership


@login_required
def membership_page(request):
    """Three queries whatever the data: session user, the membership, the plans."""
    now = timezone.now()
    current = Membership.objects.filter(user=request.user).select_related("plan").first()
    context = {
        "membership": current,
        "active": current is not None and current.ends_at > now,
        "expired": current is not None and current.ends_at <= now,
        "days_left": membership.days_left(current.ends_at, now) if current is not None else 0,
        "plans": list(membership.plans_on_sale()),
        # One key per rendered page: a double click buys one membership order.
        "idempotency_key": uuid.uuid4().hex,
    }
    return render(request, "orders/membership.html", context)


@require_POST
@login_required
@ratelimit(key="user", rate="20/m", method="POST", block=False)
def buy_membership(request):
    """Place a membership order and send the buyer to its page, where the ways to pay are offered."""
    if getattr(request, "limited", False):
        messages.error(request, _("Too many attempts. Please wait a minute and try again."))
        return redirect("accounts:membership")
    try:
        plan_id = int(request.POST.get("plan", ""))
    except ValueError:
        plan_id = 0
    key = (request.POST.get("idempotency_key") or "")[:64]
    if not key:
        messages.error(request, _("This membership plan is not on sale."))
        return redirect("accounts:membership")
    try:
        placed = membership.place_membership(
            buyer=request.user, plan_id=plan_id, idempotency_key=key, client_ip=client_ip(request),
            language=get_language(),
        )  # fmt: skip
    except membership.MembershipError as exc:
        messages.error(request, str(exc))
        return redirect("accounts:membership")
    return redirect(placed.order)


# Included by kameng/urls.py under /me/ with accounts/urls.py, in the ``accounts`` namespace.
urlpatterns = [
    path("membership/", membership_page, name="membership"),
    path("membership/buy/", buy_membership, name="buy_membership"),
]
