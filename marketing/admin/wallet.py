"""The coupon wallet in the back office: coupons in wallets (read-only; merchants see their own
merchant-funded coupons' grants), "grant to users" (operators only: a coupon to a list of e-mails or
mobile numbers, unknown ones reported back) and the win-back programmes (operators only), with their redemptions."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.roles import is_operator, merchant_ids
from accounts.scoping import MerchantScopedAdmin, OperatorOnlyAdmin, ReadOnlyAdminMixin
from kameng.audit import AuditHistoryMixin
from marketing import wallet
from marketing.models import CouponGrant, WinBackProgramme


class GrantForm(forms.Form):
    users = forms.CharField(
        label=_("Users"), widget=forms.Textarea(attrs={"rows": 10}),
        help_text=_("E-mail addresses or mobile numbers, one per line (or separated by commas)."),
    )  # fmt: skip


@admin.register(CouponGrant)
class CouponGrantAdmin(ReadOnlyAdminMixin, MerchantScopedAdmin):
    merchant_path = "coupon__merchant"
    list_display = ["coupon", "user", "source", "programme", "granted_at", "expires_at", "order"]
    list_filter = ["source"]
    search_fields = ["coupon__code", "user__email"]
    list_select_related = ["coupon", "user", "programme", "order"]
    raw_id_fields = ["user", "order"]


@admin.register(WinBackProgramme)
class WinBackProgrammeAdmin(AuditHistoryMixin, OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ["name", "coupon", "idle_days", "period_days", "enabled", "granted", "redeemed"]
    list_filter = ["enabled"]
    raw_id_fields = ["coupon"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("coupon")
            .annotate(
                granted_count=Count("grants", distinct=True),
                redeemed_count=Count("grants", filter=Q(grants__order__paid_at__isnull=False), distinct=True),
            )
        )

    @admin.display(description=_("granted"), ordering="granted_count")
    def granted(self, programme) -> int:
        return programme.granted_count

    @admin.display(description=_("redeemed"), ordering="redeemed_count")
    def redeemed(self, programme) -> int:
        return programme.redeemed_count


def grant_view(coupon_admin, request, object_id):
    """Grant one coupon to a list of users (trial coupons, or an operator's gift)."""
    # Operators only: a list of addresses answered with "not found" would tell merchant staff who
    # has an account.
    if not is_operator(request.user) or not coupon_admin.has_change_permission(request):
        raise PermissionDenied
    coupon = coupon_admin.get_queryset(request).filter(pk=object_id).first() if object_id.isdigit() else None
    if coupon is None:
        raise Http404
    form = GrantForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        source = CouponGrant.Source.TRIAL if coupon.holders_only else CouponGrant.Source.OPERATOR
        result = wallet.grant_to_list(coupon, form.cleaned_data["users"], source=source)
        coupon_admin.message_user(
            request,
            _("%(granted)s granted, %(already)s already held it, %(unknown)s not found.")
            % {"granted": len(result.granted), "already": len(result.already), "unknown": len(result.unknown)},
            messages.WARNING if result.unknown else messages.SUCCESS,
        )
        if not result.unknown:
            changelist = reverse("admin:marketing_coupongrant_changelist")
            return HttpResponseRedirect(f"{changelist}?coupon__id__exact={coupon.pk}")
        # The unknown entries stay in the box to be corrected; nothing granted is lost.
        form = GrantForm(initial={"users": "\n".join(result.unknown)})
    context = {
        **coupon_admin.admin_site.each_context(request), "opts": coupon_admin.opts, "title": _("Grant to users"),
        "coupon": coupon, "form": form, "result": result, "merchant_staff": merchant_ids(request.user) is not None,
    }  # fmt: skip
    return TemplateResponse(request, "admin/marketing/coupon/grant.html", context)
