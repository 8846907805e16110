"""Admin of 满减 spend tiers, first-order discounts and quantity tiers.

Operators see and run everything. Merchant staff (accounts/scoping.py) see and change only their own
merchants' quantity tiers and their own merchant-funded, per-merchant spend tiers: for them the
scope and the funder are fixed, and the merchant is one of theirs. Platform-funded spend tiers (even
on one merchant's goods) and first-order offers are the platform's money: operators only."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.roles import is_operator
from accounts.scoping import MerchantScopedAdmin, OperatorOnlyAdmin, ReadOnlyAdminMixin
from kameng.audit import AuditHistoryMixin
from kameng.templatetags.kameng import yuan
from marketing.models import FirstOrderOffer, FirstOrderRedemption, QuantityTier, SpendTier, SpendTierPromotion
from marketing.models.offers import FundedBy
from marketing.offers import tier_label


class SpendTierInline(admin.TabularInline):
    model = SpendTier
    extra = 3
    fields = ["threshold_fen", "discount_fen"]


@admin.register(SpendTierPromotion)
class SpendTierPromotionAdmin(AuditHistoryMixin, MerchantScopedAdmin):
    merchant_path = "merchant"
    list_display = ["name", "tiers_text", "scope", "merchant", "funded_by", "starts_at", "ends_at", "is_active"]
    list_filter = ["is_active", "scope", "funded_by"]
    search_fields = ["name"]
    inlines = [SpendTierInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("merchant").prefetch_related("tiers")
        return queryset if is_operator(request.user) else queryset.filter(funded_by=FundedBy.MERCHANT)

    @admin.display(description=_("tiers"))
    def tiers_text(self, obj) -> str:
        return ", ".join(tier_label(t.threshold_fen, t.discount_fen) for t in obj.tiers.all())

    def get_readonly_fields(self, request, obj=None):
        return [] if is_operator(request.user) else ["scope", "funded_by"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if not is_operator(request.user) and "merchant" in form.base_fields:
            form.base_fields["merchant"].required = True  # only their own goods, at their own cost
            form.base_fields["merchant"].empty_label = None
        return form

    def save_model(self, request, obj, form, change):
        if not is_operator(request.user):
            obj.scope = SpendTierPromotion.Scope.MERCHANT
            obj.funded_by = FundedBy.MERCHANT
        super().save_model(request, obj, form, change)


@admin.register(QuantityTier)
class QuantityTierAdmin(AuditHistoryMixin, MerchantScopedAdmin):
    merchant_path = "sku__product__merchant"
    list_display = ["sku", "min_quantity", "unit_price", "list_price"]
    search_fields = ["sku__label", "sku__product__title"]
    autocomplete_fields: list[str] = []
    list_select_related = ["sku__product"]

    @admin.display(description=_("unit price"))
    def unit_price(self, obj) -> str:
        return yuan(obj.unit_price_fen)

    @admin.display(description=_("list price"))
    def list_price(self, obj) -> str:
        return yuan(obj.sku.price_fen)


@admin.register(FirstOrderOffer)
class FirstOrderOfferAdmin(AuditHistoryMixin, OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "amount_fen",
        "percent",
        "cap_fen",
        "funded_by",
        "starts_at",
        "ends_at",
        "is_active",
    ]
    list_filter = ["is_active", "kind", "funded_by"]


@admin.register(FirstOrderRedemption)
class FirstOrderRedemptionAdmin(ReadOnlyAdminMixin, OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ["order", "offer", "user", "email", "phone", "amount_fen", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["order__number", "email", "phone"]
    list_select_related = ["order", "offer", "user"]
