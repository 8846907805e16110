"""Flash specials in admin: operators see and edit all of them; merchant staff only the merchant-funded
ones on their own SKUs (a platform-funded special is the platform's money: operators only, and
merchant staff do not see it)."""

from django.contrib import admin

from accounts.roles import is_operator
from accounts.scoping import MerchantScopedAdmin, ReadOnlyAdminMixin
from kameng.audit import AuditHistoryMixin
from marketing.models import CampaignItem, FlashSpecial, SpecialRedemption
from marketing.models.specials import Funder


class RedemptionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SpecialRedemption
    fields = ["order", "quantity", "buyer_key", "status", "created_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = False


@admin.register(FlashSpecial)
class FlashSpecialAdmin(AuditHistoryMixin, MerchantScopedAdmin):
    merchant_path = "sku__product__merchant"
    list_display = [
        "sku",
        "special_price_fen",
        "starts_at",
        "ends_at",
        "sold",
        "quantity_cap",
        "per_buyer_limit",
        "funded_by",
        "active",
    ]
    list_filter = ["active", "funded_by"]
    list_select_related = ["sku", "sku__product"]
    search_fields = ["sku__label", "sku__product__title"]
    raw_id_fields = ["sku"]
    readonly_fields = ["sold"]
    inlines = [RedemptionInline]
    fields = [
        "sku",
        "special_price_fen",
        "starts_at",
        "ends_at",
        "quantity_cap",
        "per_buyer_limit",
        "sold",
        "funded_by",
        "active",
    ]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if is_operator(request.user) else queryset.filter(funded_by=Funder.MERCHANT)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and CampaignItem.objects.filter(special=obj).exists():
            return self.fields  # a campaign's item owns it (marketing/campaigns.py): edit the campaign
        fields = list(super().get_readonly_fields(request, obj))
        if not is_operator(request.user):
            fields.append("funded_by")
        return fields

    def save_model(self, request, obj, form, change):
        if not is_operator(request.user):
            obj.funded_by = Funder.MERCHANT
        super().save_model(request, obj, form, change)


@admin.register(SpecialRedemption)
class SpecialRedemptionAdmin(ReadOnlyAdminMixin, MerchantScopedAdmin):
    merchant_path = "special__sku__product__merchant"
    list_display = ["special", "order", "quantity", "buyer_key", "status", "created_at"]
    list_filter = ["status"]
    list_select_related = ["special__sku", "order"]
    search_fields = ["order__number", "buyer_key"]
