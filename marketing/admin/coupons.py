"""Coupons in the back office: operators manage every coupon; merchant staff only their own
merchant-funded ones (accounts/scoping.py), which only ever cover their own goods (the rule in
marketing/coupons.py intersects the scope with the funding merchant's goods)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _

from accounts.roles import merchant_ids
from accounts.scoping import MerchantScopedAdmin, ReadOnlyAdminMixin
from kameng.audit import AuditHistoryMixin
from kameng.money import fen_to_yuan_str
from marketing import services
from marketing.models import Coupon, CouponRedemption

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class GenerateForm(forms.Form):
    count = forms.IntegerField(label=_("How many codes"), min_value=1, max_value=services.MAX_GENERATED, initial=100)
    prefix = forms.RegexField(
        label=_("Prefix"), regex=r"^[A-Za-z0-9]{0,10}$", required=False,
        help_text=_("Up to 10 letters or digits before the random part, e.g. SPRING."),
    )  # fmt: skip


@admin.register(Coupon)
class CouponAdmin(AuditHistoryMixin, MerchantScopedAdmin):
    merchant_path = "merchant"
    list_display = ["code", "name", "value", "scope", "funded_by", "uses", "ends_at", "is_active"]
    list_filter = ["is_active", "kind", "scope", "funded_by", "new_users_only", "claimable", "holders_only"]
    search_fields = ["code", "name"]
    readonly_fields = ["used_count", "claimed_count", "generated_from"]
    raw_id_fields = ["product", "sku"]
    actions = ["export_codes", "generate_codes", "grant_to_users"]
    fieldsets = [
        (None, {"fields": ["code", "name", "is_active"]}),
        (_("Value"), {"fields": ["kind", "amount_fen", "percent", "max_discount_fen", "min_spend_fen"]}),
        (_("Applies to"), {"fields": ["scope", "category", "product", "sku", "scope_merchant"]}),
        (
            _("When and how often"),
            {"fields": ["starts_at", "ends_at", "total_limit", "per_user_limit", "used_count", "new_users_only"]},
        ),
        (_("Who pays"), {"fields": ["funded_by", "merchant", "generated_from"]}),
        (
            _("Coupon wallet"),
            {
                "fields": [
                    "claimable",
                    "claim_limit",
                    "claimed_count",
                    "holders_only",
                    "grant_valid_days",
                    "trial_for_new_users",
                ]
            },
        ),
    ]

    @admin.display(description=_("value"))
    def value(self, coupon: Coupon) -> str:
        if coupon.kind == Coupon.Kind.PERCENT:
            cap = f" ≤ ¥{fen_to_yuan_str(coupon.max_discount_fen)}" if coupon.max_discount_fen is not None else ""
            return f"{coupon.percent}%{cap}"
        return f"¥{fen_to_yuan_str(coupon.amount_fen)}"

    @admin.display(description=_("uses"))
    def uses(self, coupon: Coupon) -> str:
        return f"{coupon.used_count} / {coupon.total_limit if coupon.total_limit is not None else '∞'}"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        ids = merchant_ids(request.user)
        if ids is not None and "trial_for_new_users" in form.base_fields:
            # Every new sign-up gets a trial coupon: the platform's decision, not one merchant's.
            form.base_fields["trial_for_new_users"].disabled = True
        if ids is not None:
            # Merchant staff fund their own coupons: the platform's money is not theirs to give.
            funded_by = form.base_fields["funded_by"]
            funded_by.choices = [(Coupon.FundedBy.MERCHANT, Coupon.FundedBy.MERCHANT.label)]
            funded_by.initial = Coupon.FundedBy.MERCHANT
            form.base_fields["merchant"].required = True
            if len(ids) == 1:
                form.base_fields["merchant"].initial = ids[0]
        return form

    def get_urls(self):
        from marketing.admin.report import report_view

        return [
            path(
                "report/",
                self.admin_site.admin_view(lambda request: report_view(self, request)),
                name="marketing_promotions_report",
            ),
            path(
                "<path:object_id>/generate/",
                self.admin_site.admin_view(self.generate_view),
                name="marketing_coupon_generate",
            ),
            path(
                "<path:object_id>/grant/",
                self.admin_site.admin_view(self.grant_view),
                name="marketing_coupon_grant",
            ),
            *super().get_urls(),
        ]

    @admin.action(description=_("Generate codes from the selected coupon"), permissions=["add"])
    def generate_codes(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose one coupon as the template."), messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:marketing_coupon_generate", args=[queryset.get().pk]))

    def generate_view(self, request, object_id):
        if not self.has_add_permission(request):
            raise PermissionDenied
        template = self.get_queryset(request).filter(pk=object_id).first() if object_id.isdigit() else None
        if template is None:
            raise Http404
        form = GenerateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            made = services.generate_coupon_codes(
                template=template, count=form.cleaned_data["count"], prefix=form.cleaned_data["prefix"]
            )
            self.message_user(
                request, _("%(count)s codes generated from %(code)s.") % {"count": len(made), "code": template.code}
            )
            changelist = reverse("admin:marketing_coupon_changelist")
            return HttpResponseRedirect(f"{changelist}?generated_from__id__exact={template.pk}")
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": _("Generate codes"),
            "template": template, "form": form,
        }  # fmt: skip
        return TemplateResponse(request, "admin/marketing/coupon/generate.html", context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if merchant_ids(request.user) is not None:
            actions.pop("grant_to_users", None)  # operators only (marketing/admin/wallet.py)
        return actions

    @admin.action(description=_("Grant the selected coupon to users"), permissions=["change"])
    def grant_to_users(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose one coupon to grant."), messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:marketing_coupon_grant", args=[queryset.get().pk]))

    def grant_view(self, request, object_id):
        from marketing.admin.wallet import grant_view

        return grant_view(self, request, object_id)

    @admin.action(description=_("Export codes of the selected coupons (.xlsx), with those generated from them"))
    def export_codes(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        rows = self.get_queryset(request).filter(pk__in=ids) | self.get_queryset(request).filter(generated_from__in=ids)
        response = FileResponse(
            services.coupon_codes_workbook(coupons=rows.distinct().order_by("pk").iterator()),
            as_attachment=True, filename=f"coupons-{timezone.localtime():%Y%m%d-%H%M}.xlsx",
            content_type=XLSX_CONTENT_TYPE,
        )  # fmt: skip
        add_never_cache_headers(response)
        return response


@admin.register(CouponRedemption)
class CouponRedemptionAdmin(ReadOnlyAdminMixin, MerchantScopedAdmin):
    merchant_path = "coupon__merchant"
    list_display = ["coupon", "order", "user", "email", "amount_fen", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["coupon__code", "order__number", "email"]
    list_select_related = ["coupon", "order", "user"]
