"""The merchant back office for the catalog: products, SKUs, card codes, alerts and code accesses.

Scoping (accounts/scoping.py): merchant staff see and change only their merchants' rows — in
lists, forms, foreign-key choices, actions, object URLs (404 otherwise) and the extra views below
(reveal, exports); operators see everything.

Card codes appear only as their mask (``CardCode.hint``). The full code is shown by the per-code
"reveal" view (POST only, ``catalog.reveal_cardcode``, rate-limited per user, recorded as a
CodeAccess, ``Cache-Control: no-store``) and in a full stock export (same permission, recorded).
"""

from __future__ import annotations

import functools

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter, SimpleListFilter
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from django_ratelimit.core import is_ratelimited

from accounts.roles import is_operator, merchant_ids
from accounts.scoping import (
    MerchantScopedAdmin,
    MerchantScopedInline,
    OperatorOnlyAdmin,
    ReadOnlyAdminMixin,
    scope_queryset,
)
from catalog import exports, images, services, stock
from catalog.models import (
    BuyerField,
    CardCode,
    Category,
    CodeAccess,
    Favourite,
    LevelPrice,
    Product,
    ProductImage,
    Sku,
    StockAlert,
    Tag,
)  # fmt: skip
from catalog.selectors import skus_with_stock
from catalog.signals import send_stock_changed
from kameng.clientip import client_ip

# Full-code reveals a person may make, per user (django-ratelimit's fixed windows, in the cache).
REVEAL_RATE = "30/h"


def is_merchant_staff(user) -> bool:
    ids = merchant_ids(user)
    return ids is not None and bool(ids)


def _download(export: exports.ExportFile) -> FileResponse:
    response = FileResponse(
        export.file, as_attachment=True, filename=export.filename, content_type=exports.XLSX_CONTENT_TYPE
    )
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


# --- Categories ---------------------------------------------------------------------------------
@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    """Operators manage categories; merchant staff may look them up."""

    list_display = ["name", "name_en", "parent", "colour", "sort_order", "is_active"]
    list_editable = ["sort_order", "is_active"]
    list_select_related = ["parent"]
    search_fields = ["name", "name_en", "slug"]
    prepopulated_fields = {"slug": ("name",)}

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or is_merchant_staff(request.user)


# --- Products and their inlines -----------------------------------------------------------------
class SkuForm(forms.ModelForm):
    class Meta:
        model = Sku
        fields = [
            "product", "label", "label_en", "face_value_fen", "price_fen", "cost_fen", "is_active",
            "low_stock_threshold", "reusable_code", "sms_code_allowed", "sort_order",
        ]  # fmt: skip

    def clean_reusable_code(self):
        value = self.cleaned_data["reusable_code"]
        if self.instance.pk and value != self.instance.reusable_code and self.instance.codes.exists():
            raise ValidationError(_("This SKU already has codes: whether its codes are reusable cannot change now."))
        return value


class SkuInline(MerchantScopedInline, admin.TabularInline):
    model = Sku
    form = SkuForm
    extra = 0
    fields = [
        "label", "label_en", "face_value_fen", "price_fen", "cost_fen", "is_active", "low_stock_threshold",
        "reusable_code", "sms_code_allowed", "sort_order",
    ]  # fmt: skip
    show_change_link = True


class ReencodedImageForm(forms.ModelForm):
    """A picture field checked and re-encoded at upload (catalog/images.py): a file that is not a
    picture, too big or a decompression bomb is refused with the reason; what is kept is a fresh
    WebP without the original's metadata. Thumbnails follow on save (catalog.images.on_image_saved)."""

    def clean_image(self):
        upload = self.cleaned_data.get("image")
        if upload and hasattr(upload, "content_type"):  # a new upload, not the stored file
            return images.clean_upload(upload)
        return upload


class ProductImageInline(MerchantScopedInline, admin.TabularInline):
    model = ProductImage
    form = ReencodedImageForm
    extra = 1
    fields = ["preview", "image", "alt", "sort_order"]
    readonly_fields = ["preview"]

    @admin.display(description=_("preview"))
    def preview(self, obj):
        if not obj or not obj.image:
            return ""
        src, _srcset, width, height = images.rendition_urls(obj.image.name, "thumb")
        return format_html('<img src="{}" width="{}" height="{}" alt="">', src, width, height)


class BuyerFieldInline(MerchantScopedInline, admin.TabularInline):
    model = BuyerField
    extra = 0
    fields = ["key", "label", "label_en", "kind", "required", "max_length", "help_text", "help_text_en", "sort_order"]


@admin.register(Product)
class ProductAdmin(MerchantScopedAdmin):
    merchant_path = "merchant"
    form = ReencodedImageForm
    filter_horizontal = ["tags"]  # merchants pick among the tags operators made
    list_display = ["title", "merchant", "category", "status", "delivery_mode", "is_featured", "updated_at"]
    list_filter = ["status", "delivery_mode", "category"]
    list_select_related = ["merchant", "category"]
    search_fields = ["title", "title_en", "slug"]
    prepopulated_fields = {"slug": ("title",)}
    inlines = [SkuInline, ProductImageInline, BuyerFieldInline]
    actions = ["list_products", "delist_products"]

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if merchant_ids(request.user) is None or len(merchant_ids(request.user)) > 1:
            filters.append(("merchant", RelatedOnlyFieldListFilter))
        return filters

    def get_readonly_fields(self, request, obj=None):
        # Status changes go through the list/delist actions (they respect the allowed transitions);
        # featuring on the home page is the platform's call.
        readonly = ["status", "created_at", "updated_at"]
        if not is_operator(request.user):
            readonly.append("is_featured")
        return readonly

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "merchant" and field is not None:
            ids = merchant_ids(request.user)
            if ids is not None and len(ids) == 1:
                # Staff of one merchant: the product is theirs, nothing to choose (and nothing to
                # tamper with: a disabled field ignores what the browser posts).
                field.initial = ids[0]
                field.disabled = True
                field.empty_label = None
        return field

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Thresholds, on-sale flags or the product itself may have changed: re-evaluate alerts.
        send_stock_changed(sku_ids=form.instance.skus.values_list("pk", flat=True))

    def _set_status(self, request, queryset, status, done_message):
        ids = list(queryset.values_list("pk", flat=True))
        changed = stock.set_product_status(product_ids=ids, status=status, user=request.user)
        self.message_user(request, done_message(changed), messages.SUCCESS)
        if changed < len(ids):
            self.message_user(
                request,
                ngettext(
                    "%(count)d product was skipped: it is not in a state that allows this.",
                    "%(count)d products were skipped: they are not in a state that allows this.",
                    len(ids) - changed,
                )
                % {"count": len(ids) - changed},
                messages.WARNING,
            )

    @admin.action(description=_("List selected products (put them on sale)"), permissions=["change"])
    def list_products(self, request, queryset):
        self._set_status(
            request,
            queryset,
            Product.Status.LISTED,
            lambda n: ngettext("%(count)d product listed.", "%(count)d products listed.", n) % {"count": n},
        )

    @admin.action(description=_("Delist selected products (take them off sale)"), permissions=["change"])
    def delist_products(self, request, queryset):
        self._set_status(
            request,
            queryset,
            Product.Status.DELISTED,
            lambda n: ngettext("%(count)d product delisted.", "%(count)d products delisted.", n) % {"count": n},
        )


@admin.register(Tag)
class TagAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    """Operators make the tags; merchants put them on their own products (the product form)."""

    list_display = ["name", "name_en", "slug", "sort_order"]
    list_editable = ["sort_order"]
    search_fields = ["name", "name_en", "slug"]
    prepopulated_fields = {"slug": ("name_en",)}


# --- SKUs ---------------------------------------------------------------------------------------
class SkuChangeList(ChangeList):
    """Adds stock counts and the open-alert flag to the SKUs of the page, in one extra query."""

    def get_results(self, request):
        super().get_results(request)
        page = list(self.result_list)
        open_alert = StockAlert.objects.filter(sku=OuterRef("pk"), closed_at__isnull=True)
        counts = {
            row["pk"]: row
            for row in skus_with_stock(Sku.objects.filter(pk__in=[sku.pk for sku in page]))
            .annotate(has_open_alert=Exists(open_alert))
            .order_by()
            .values("pk", "available_count", "reserved_count", "sold_count", "has_open_alert")
        }
        for sku in page:
            row = counts.get(sku.pk, {})
            sku.available_count = row.get("available_count", 0)
            sku.reserved_count = row.get("reserved_count", 0)
            sku.sold_count = row.get("sold_count", 0)
            sku.has_open_alert = row.get("has_open_alert", False)
        self.result_list = page


class LowStockFilter(SimpleListFilter):
    title = _("low stock")
    parameter_name = "low_stock"

    def lookups(self, request, model_admin):
        return [("open", _("open alert")), ("none", _("no open alert"))]

    def queryset(self, request, queryset):
        open_alert = StockAlert.objects.filter(sku=OuterRef("pk"), closed_at__isnull=True)
        if self.value() == "open":
            return queryset.filter(Exists(open_alert))
        if self.value() == "none":
            return queryset.exclude(Exists(open_alert))
        return queryset


class StockExportForm(forms.Form):
    MASKED = "masked"
    FULL = "full"

    ids = forms.TypedMultipleChoiceField(coerce=int, widget=forms.MultipleHiddenInput)
    codes = forms.ChoiceField(
        label=_("Codes"), widget=forms.RadioSelect, initial=MASKED,
        choices=[(MASKED, _("Masked (first and last characters only)")),
                 (FULL, _("Full codes and passwords (recorded in the code access log)"))],
    )  # fmt: skip
    scope = forms.ChoiceField(
        label=_("Which codes"), widget=forms.RadioSelect, initial=exports.StockScope.IN_STOCK,
        choices=[(exports.StockScope.IN_STOCK, _("In stock (available and reserved)")),
                 (exports.StockScope.ALL, _("All, including sold and void"))],
    )  # fmt: skip

    def __init__(self, *args, sku_ids=(), can_reveal=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ids"].choices = [(pk, pk) for pk in sku_ids]
        if not can_reveal:
            self.fields["codes"].choices = self.fields["codes"].choices[:1]


@admin.register(Sku)
class SkuAdmin(MerchantScopedAdmin):
    merchant_path = stock.SKU_SCOPE
    form = SkuForm
    list_display = [
        "__str__", "price_fen", "is_active", "available", "reserved", "sold", "low_stock_threshold", "low_stock",
    ]  # fmt: skip
    list_select_related = ["product"]
    list_filter = ["is_active", LowStockFilter, ("product", RelatedOnlyFieldListFilter)]
    search_fields = ["label", "product__title", "product__title_en"]
    actions = ["export_stock", "export_sales"]

    def get_changelist(self, request, **kwargs):
        return SkuChangeList

    @admin.display(description=_("for sale"))
    def available(self, obj):
        return getattr(obj, "available_count", None)

    @admin.display(description=_("reserved"))
    def reserved(self, obj):
        return getattr(obj, "reserved_count", None)

    @admin.display(description=_("sold"))
    def sold(self, obj):
        return getattr(obj, "sold_count", None)

    @admin.display(description=_("low stock"))
    def low_stock(self, obj):
        if getattr(obj, "has_open_alert", False):
            return format_html(
                '<span class="kameng-badge kameng-badge-low" style="{}">{}</span>',
                "background:#ba2121;color:#fff;border-radius:9px;padding:1px 7px;font-weight:600",
                gettext("low"),
            )
        return ""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        send_stock_changed(sku_ids=[obj.pk])

    def get_urls(self):
        return [
            path("export-stock/", self.admin_site.admin_view(self.export_stock_view), name="catalog_sku_export_stock"),
            *super().get_urls(),
        ]

    @admin.action(description=_("Export stock of selected SKUs (.xlsx)"), permissions=["view"])
    def export_stock(self, request, queryset):
        """Asks masked or full (full only with the reveal permission), then posts to the export view."""
        skus = list(queryset.select_related("product"))
        can_reveal = request.user.has_perm("catalog.reveal_cardcode")
        form = StockExportForm(initial={"ids": [sku.pk for sku in skus]}, sku_ids=[sku.pk for sku in skus],
                               can_reveal=can_reveal)  # fmt: skip
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Export stock"),
            "skus": skus,
            "form": form,
            "can_reveal": can_reveal,
        }
        return TemplateResponse(request, "admin/catalog/sku/export_stock.html", context)

    def export_stock_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        sku_ids = [int(pk) for pk in request.POST.getlist("ids") if pk.isdigit()]
        can_reveal = request.user.has_perm("catalog.reveal_cardcode")
        form = StockExportForm(request.POST, sku_ids=sku_ids, can_reveal=True)
        if not form.is_valid():
            raise Http404
        full = form.cleaned_data["codes"] == StockExportForm.FULL
        if full and not can_reveal:
            raise PermissionDenied
        export = exports.stock_export(
            sku_ids=form.cleaned_data["ids"], user=request.user, full=full, scope=form.cleaned_data["scope"],
            ip_address=client_ip(request),
        )  # fmt: skip
        return _download(export)

    @admin.action(description=_("Export sales of selected SKUs by day (.xlsx)"), permissions=["view"])
    def export_sales(self, request, queryset):
        return _download(exports.sales_export(sku_ids=queryset.values_list("pk", flat=True), user=request.user))


# --- Card codes ---------------------------------------------------------------------------------
class ScopedSkuFilter(SimpleListFilter):
    """Filter codes by SKU, offering only the user's own SKUs (from the small SKU table)."""

    title = _("SKU")
    parameter_name = "sku"

    def lookups(self, request, model_admin):
        skus = scope_queryset(
            Sku.objects.select_related("product").order_by("product__title", "sort_order", "pk"),
            user=request.user,
            merchant_path=stock.SKU_SCOPE,
        )
        return [(str(sku.pk), str(sku)) for sku in skus]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(sku_id=int(value))
        return queryset


@admin.register(CardCode)
class CardCodeAdmin(MerchantScopedAdmin):
    """Codes are read-only here (they arrive through imports) and only ever shown masked."""

    merchant_path = stock.CODE_SCOPE
    list_display = [
        "hint", "sku", "status", "batch", "created_at", "reserved_until", "sold_at", "times_sold", "voided_at",
    ]  # fmt: skip
    list_filter = ["status", ScopedSkuFilter]
    list_select_related = ["sku__product", "batch"]
    fields = ["hint", "sku", "batch", "status", "reusable", "reserved_until", "times_sold", "sold_at", "voided_at",
              "created_at"]  # fmt: skip
    readonly_fields = fields
    show_full_result_count = False  # one COUNT per page on a big table is enough
    actions = ["void_selected"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # No edit form at all (a code's page is read-only); "change" on the model stays for voiding.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # codes are voided, never deleted

    def get_urls(self):
        return [
            path(
                "<path:object_id>/reveal/",
                self.admin_site.admin_view(self.reveal_view),
                name="catalog_cardcode_reveal",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_reveal": request.user.has_perm("catalog.reveal_cardcode")}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Void selected codes (take them out of stock)"), permissions=["change"])
    def void_selected(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        voided = stock.void_codes(code_ids=ids, user=request.user)
        self.message_user(
            request,
            ngettext("%(count)d code voided.", "%(count)d codes voided.", voided) % {"count": voided},
            messages.SUCCESS,
        )
        if voided < len(ids):
            skipped = len(ids) - voided
            self.message_user(
                request,
                ngettext(
                    "%(count)d code was not available (reserved, sold or already void) and was left as it is.",
                    "%(count)d codes were not available (reserved, sold or already void) and were left as they are.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

    @sensitive_variables()
    def reveal_view(self, request, object_id):
        """Show one code in full, once: POST only, permission, scope, rate limit, recorded."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("catalog.reveal_cardcode"):
            raise PermissionDenied
        code = self.get_object(request, unquote(object_id))
        if code is None:
            raise Http404
        if is_ratelimited(request, group="catalog.reveal", key="user", rate=REVEAL_RATE, increment=True):
            return HttpResponse(
                gettext("Too many codes revealed recently. Try again later."), status=429, content_type="text/plain"
            )
        secret = services.reveal_to_staff(code=code, user=request.user, ip_address=client_ip(request))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Card code"),
            "original": code,
            "secret": secret,
        }
        response = TemplateResponse(request, "admin/catalog/cardcode/reveal.html", context)
        add_never_cache_headers(response)
        patch_cache_control(response, no_store=True, private=True)
        return response

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("sku__product")


# --- Low-stock alerts and code accesses (read-only) ---------------------------------------------
class AlertStateFilter(SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", _("open")), ("closed", _("restocked"))]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "closed":
            return queryset.filter(closed_at__isnull=False)
        return queryset


@admin.register(StockAlert)
class StockAlertAdmin(ReadOnlyAdminMixin, MerchantScopedAdmin):
    merchant_path = stock.CODE_SCOPE
    list_display = ["sku", "merchant", "available_at_open", "threshold", "opened_at", "notified_at", "closed_at",
                    "is_open"]  # fmt: skip
    list_filter = [AlertStateFilter]
    list_select_related = ["sku__product__merchant"]
    fields = ["sku", "available_at_open", "threshold", "opened_at", "notified_at", "closed_at"]
    readonly_fields = fields

    @admin.display(description=_("merchant"), ordering="sku__product__merchant__name")
    def merchant(self, obj):
        return obj.sku.product.merchant

    @admin.display(description=_("open"), boolean=True)
    def is_open(self, obj):
        return obj.closed_at is None


@admin.register(CodeAccess)
class CodeAccessAdmin(ReadOnlyAdminMixin, MerchantScopedAdmin):
    """Who saw full codes. Operators see every record; merchant staff those about their merchants."""

    merchant_path = "merchant"
    list_display = ["created_at", "user", "kind", "merchant", "code", "code_count", "ip_address"]
    list_filter = ["kind"]
    list_select_related = ["user", "merchant", "code"]
    fields = ["created_at", "user", "kind", "merchant", "code", "code_count", "ip_address"]
    readonly_fields = fields
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or is_merchant_staff(request.user)


# --- Low-stock badge on every admin page ---------------------------------------------------------
def _install_low_stock_badge(site: admin.AdminSite) -> None:
    """Adds ``low_stock_alert_count`` to every admin page's context (see templates/admin/base_site.html).

    It is a callable the template calls when it shows the badge: one COUNT query per page, none on
    pages that do not render it (login, JSON views). A context processor would do the same, but the
    badge belongs to the admin only.
    """
    if getattr(site, "_kameng_low_stock_badge", False):
        return
    original = site.each_context

    def each_context(request):
        context = original(request)
        context["low_stock_alert_count"] = functools.cache(lambda: stock.open_alert_count(user=request.user))
        context["low_stock_alerts_url"] = reverse("admin:catalog_stockalert_changelist") + "?state=open"
        return context

    site.each_context = each_context
    site._kameng_low_stock_badge = True


_install_low_stock_badge(admin.site)

# Import batches (upload, preview, progress, confirm) have their own module.
from catalog import admin_imports, admin_shop  # noqa: E402, F401


@admin.register(LevelPrice)
class LevelPriceAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    """Operators set an explicit price of a SKU for a member level (it wins over the level's
    percentage). Merchant staff do not see it: levels are the platform's programme, funded by it."""

    list_display = ["sku", "level", "price_fen"]
    list_filter = ["level"]
    search_fields = ["sku__product__title", "sku__label"]
    list_select_related = ["sku__product", "level"]
    autocomplete_fields = ["sku"]


@admin.register(Favourite)
class FavouriteAdmin(ReadOnlyAdminMixin, OperatorOnlyAdmin, admin.ModelAdmin):
    """Which shoppers favourite which products and who asked for e-mails: operators only (it names
    shoppers, so merchant staff do not see it). Shoppers change their favourites themselves."""

    list_display = ["created_at", "user", "product", "notify"]
    list_filter = ["notify"]
    search_fields = ["user__email", "product__title"]
    list_select_related = ["user", "product"]
    fields = ["created_at", "user", "product", "notify", "seen_price_fen", "seen_in_stock"]
    readonly_fields = fields
    show_full_result_count = False


# The home page's slides, sections and trade templates (operators only), reviews and bought-together
# relations have their own modules.
from catalog import admin_home, admin_reviews  # noqa: E402, F401
