"""Campaigns in admin: operators only (``OperatorOnlyAdmin``: merchant staff do not see the module).
The banner is sniffed and re-encoded on upload (marketing/campaigns.py ``process_banner``); featured
SKUs are edited inline and each keeps its flash special in step on save."""

from django import forms
from django.contrib import admin
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.scoping import OperatorOnlyAdmin
from kameng.audit import AuditHistoryMixin
from marketing import campaigns
from marketing.models import Campaign, CampaignItem


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ["title", "title_en", "slug", "enabled", "priority", "starts_at", "ends_at", "banner", "coupon"]
        fields += ["rules", "rules_en"]
        field_classes = {"banner": forms.FileField}  # our own sniffing and message, not the generic one

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._small = None

    def clean_banner(self):
        banner = self.cleaned_data.get("banner")
        if isinstance(banner, UploadedFile):
            stem = self.cleaned_data.get("slug") or self.data.get("slug") or "banner"
            processed = campaigns.process_banner(banner, stem=stem)
            self._small = processed.small
            return processed.large
        return banner

    def save(self, commit=True):
        campaign = super().save(commit=False)
        if self._small is not None:
            campaign.banner_small.save(self._small.name, self._small, save=False)
        if commit:
            campaign.save()
            self.save_m2m()
        return campaign


class CampaignItemInline(admin.TabularInline):
    model = CampaignItem
    fields = ["sku", "special_price_fen", "quantity_cap", "per_buyer_limit", "funded_by", "sort_order", "sold"]
    readonly_fields = ["sold"]
    raw_id_fields = ["sku"]
    extra = 1

    @admin.display(description=_("sold"))
    def sold(self, item):
        return item.special.sold if item.special_id else 0


STATE_COLOURS = {"scheduled": "#1d39c4", "running": "#389e0d", "ended": "#777", "disabled": "#cf1322"}


@admin.register(Campaign)
class CampaignAdmin(AuditHistoryMixin, OperatorOnlyAdmin, admin.ModelAdmin):
    form = CampaignForm
    list_display = ["title", "status", "starts_at", "ends_at", "priority", "enabled", "preview"]
    list_filter = ["enabled"]
    search_fields = ["title", "title_en", "slug"]
    ordering = ["-starts_at", "pk"]
    prepopulated_fields = {"slug": ["title_en"]}
    raw_id_fields = ["coupon"]
    readonly_fields = ["status", "preview", "banner_preview", "share_preview"]
    inlines = [CampaignItemInline]
    fieldsets = [
        (None, {"fields": ["title", "title_en", "slug", "enabled", "priority", "status", "preview"]}),
        (_("Window"), {"fields": ["starts_at", "ends_at"]}),
        (_("Banner"), {"fields": ["banner", "banner_preview"]}),
        (_("Coupon and rules"), {"fields": ["coupon", "rules", "rules_en"]}),
        (_("Share image"), {"fields": ["share_preview"]}),
    ]

    @admin.display(description=_("status"))
    def status(self, campaign):
        if campaign.pk is None:
            return "—"
        state = Campaign.State(campaign.state(timezone.now()))
        return format_html('<strong style="color: {}">{}</strong>', STATE_COLOURS[state], state.label)

    @admin.display(description=_("page"))
    def preview(self, campaign):
        if campaign.pk is None:
            return "—"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', campaign.get_absolute_url(), _("Preview")
        )

    @admin.display(description=_("banner"))
    def banner_preview(self, campaign):
        if not campaign.banner:
            return "—"
        return format_html(
            '<img src="{}" alt="" style="max-width: 480px; width: 100%; height: auto">', campaign.banner.url
        )

    @admin.display(description=_("share image"))
    def share_preview(self, campaign):
        if not campaign.pk:
            return _("Drawn automatically after saving.")
        return format_html(
            '<a href="{0}" target="_blank" rel="noopener">'
            '<img src="{0}" alt="" style="max-width: 480px; width: 100%; height: auto"></a>',
            reverse("marketing:campaign_share", kwargs={"slug": campaign.slug}),
        )
