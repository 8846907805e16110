"""Shop settings and footer pages in admin: operators only (``OperatorOnlyAdmin``).

The settings are one row: the change list goes straight to its form. The logo is sniffed and
re-encoded on upload, and the favicon and the web app's icons are made from it (catalog/shop.py);
an uploaded favicon and the WeChat QR code are re-encoded too. Footer pages' HTML is sanitised on
save (the model) and again on render (the view).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.files.uploadedfile import UploadedFile
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.scoping import OperatorOnlyAdmin
from catalog import shop
from catalog.models import FooterPage, ShopSettings


class ShopSettingsForm(forms.ModelForm):
    class Meta:
        model = ShopSettings
        fields = [
            "name", "name_en", "tagline", "tagline_en", "logo", "favicon", "theme", "custom_colour",
            "announcement", "announcement_en", "announcement_url", "announcement_starts_at", "announcement_ends_at",
            "service_qq", "service_wechat_id", "service_wechat_qr", "service_telegram", "service_email",
            "service_hours", "service_hours_en", "icp_number", "police_number",
        ]  # fmt: skip
        field_classes = {"logo": forms.FileField, "favicon": forms.FileField, "service_wechat_qr": forms.FileField}
        widgets = {"custom_colour": forms.TextInput(attrs={"type": "color"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._logo: shop.Logo | None = None
        self._favicon_given = False

    def clean_logo(self):
        logo = self.cleaned_data.get("logo")
        if isinstance(logo, UploadedFile):
            self._logo = shop.process_logo(logo)
            return self._logo.logo
        return logo

    def clean_favicon(self):
        favicon = self.cleaned_data.get("favicon")
        if isinstance(favicon, UploadedFile):
            self._favicon_given = True
            return shop.process_favicon(favicon)
        return favicon

    def clean_service_wechat_qr(self):
        qr = self.cleaned_data.get("service_wechat_qr")
        if isinstance(qr, UploadedFile):
            return shop.process_qr(qr)
        return qr

    def clean_announcement_url(self):
        url = self.cleaned_data.get("announcement_url", "").strip()
        if url and not (url.startswith(("https://", "http://")) or (url.startswith("/") and not url.startswith("//"))):
            raise forms.ValidationError(_("A link on this shop (/…) or a full https:// address."))
        return url

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("theme") == ShopSettings.Theme.CUSTOM and not cleaned.get("custom_colour"):
            self.add_error("custom_colour", _("Pick the colour of the custom theme."))
        return cleaned

    def save(self, commit=True):
        settings_row = super().save(commit=False)
        if self._logo is not None:
            for size, icon in self._logo.icons.items():
                getattr(settings_row, f"icon_{size}").save(icon.name, icon, save=False)
            if not self._favicon_given:  # a new logo brings a favicon made from it, unless one came with it
                settings_row.favicon.save(self._logo.favicon.name, self._logo.favicon, save=False)
        elif not self.cleaned_data.get("logo"):
            # The logo was cleared: its icons go with it (the defaults are shown again).
            settings_row.icon_192 = settings_row.icon_512 = ""
        if commit:
            settings_row.save()
        return settings_row


@admin.register(ShopSettings)
class ShopSettingsAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    form = ShopSettingsForm
    readonly_fields = ["logo_preview", "favicon_preview", "qr_preview", "storefront"]
    fieldsets = [
        (_("Name"), {"fields": ["name", "name_en", "tagline", "tagline_en", "storefront"]}),
        (_("Look"), {"fields": ["logo", "logo_preview", "favicon", "favicon_preview", "theme", "custom_colour"]}),
        (
            _("Announcement bar"),
            {
                "fields": [
                    "announcement",
                    "announcement_en",
                    "announcement_url",
                    "announcement_starts_at",
                    "announcement_ends_at",
                ]
            },
        ),
        (
            _("Customer service"),
            {
                "fields": [
                    "service_qq",
                    "service_wechat_id",
                    "service_wechat_qr",
                    "qr_preview",
                    "service_telegram",
                    "service_email",
                    "service_hours",
                    "service_hours_en",
                ]
            },
        ),
        (_("Filings"), {"fields": ["icp_number", "police_number"]}),
    ]

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not ShopSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)
        row, _created = ShopSettings.objects.get_or_create(pk=1)
        return redirect(reverse("admin:catalog_shopsettings_change", args=[row.pk]))

    @admin.display(description=_("storefront"))
    def storefront(self, obj):
        return format_html('<a href="/" target="_blank" rel="noopener">{}</a>', _("Open the storefront"))

    def _preview(self, field, size: int):
        if not field:
            return "—"
        return format_html('<img src="{}" alt="" style="max-height:{}px;max-width:240px">', field.url, size)

    @admin.display(description=_("logo as shown"))
    def logo_preview(self, obj):
        return self._preview(obj.logo, 64)

    @admin.display(description=_("favicon as shown"))
    def favicon_preview(self, obj):
        return self._preview(obj.favicon, 32)

    @admin.display(description=_("QR code as shown"))
    def qr_preview(self, obj):
        return self._preview(obj.service_wechat_qr, 120)


@admin.register(FooterPage)
class FooterPageAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ["title", "title_en", "slug", "is_published", "sort_order", "updated_at"]
    list_editable = ["is_published", "sort_order"]
    search_fields = ["title", "title_en", "slug"]
    prepopulated_fields = {"slug": ["title_en"]}
    fields = ["title", "title_en", "slug", "is_published", "sort_order", "body", "body_en"]
