from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts import loyalty_card, phones, services, usercenter
from accounts.forms import NotificationSettingsForm
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


@login_required
def notification_settings(request):
    """/me/settings/: how the shop may reach the buyer — delivery by e-mail and SMS, promotions and
    price drops (opt-in) — and the mobile number the SMS go to."""
    form = NotificationSettingsForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        services.update_notification_settings(user=request.user, **form.cleaned_data)
        messages.success(request, _("Your notification settings are saved."))
        return redirect("accounts:settings")
    user = request.user
    context = {
        "form": form,
        "phone_masked": phones.masked(user.phone) if user.phone else "",
        "groups": [
            (_("Delivery"), _("When your codes are ready."), ["notify_delivery_email", "notify_delivery_sms"]),
            (_("Promotions"), _("Coupons, sales and new goods. Off unless you turn them on."),
             ["notify_promotions_email", "notify_promotions_sms"]),
            (_("Price drops"), _("When a product you favourited gets cheaper or is back in stock."),
             ["notify_price_drops"]),
            (_("Leaderboard"), _("Top buyers are listed with masked names; you may stay off the list."),
             ["show_on_leaderboard"]),
        ],
    }  # fmt: skip
    context["groups"] = [(title, note, [form[name] for name in names]) for title, note, names in context["groups"]]
    return render(request, "accounts/settings.html", context)
