"""The back office for orders: orders of a merchant's goods, the manual-delivery queue, after-sales.

Scoping (accounts/scoping.py): merchant staff see an order when it contains at least one item of
their merchants, and then only *their* items of it; an after-sales request when its order does.
Another merchant's order or request answers 404, and actions only ever receive scoped rows. The
scope is an ``EXISTS`` on the order's items rather than a join (``items__merchant``), so an order
with several of the merchant's items appears once and the change list needs no ``DISTINCT``.

Orders are read-only here: their state changes only through the services — the actions below, the
manual-delivery form (orders.services.complete_manual_delivery) and after-sales decisions
(orders/aftersales.py). Card codes appear only as masks, never in lists or exports.

* Manual-delivery queue: the change list filter "awaiting manual delivery" (``?queue=manual``, a
  link on the change list with the count): processing orders with manual items; each has a form
  where the merchant types the result per item and completes the order; the buyer is e-mailed.
* Actions: re-send the delivery e-mail (the same codes), export order lines to .xlsx (no codes),
  and, for operators only, refund in full with a reason.
"""

from __future__ import annotations

import datetime
import tempfile
from decimal import InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook

from accounts.models import Merchant
from accounts.roles import is_operator, merchant_ids
from accounts.scoping import MerchantScopedAdmin, scope_queryset
from catalog.models import Product, Sku
from kameng import xlsx
from kameng.forms import YuanField
from kameng.money import fen_to_yuan_str, yuan_str_to_fen
from kameng.tasks import enqueue_on_commit
from orders import aftersales, locks, services
from orders.models import AfterSalesRequest, Order, OrderEvent, OrderItem, OrderItemCode
from payments import services as payments
from payments.models import Refund

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
AUTOMATIC = Product.DeliveryMode.AUTOMATIC  # items of any other mode wait for the merchant


def _yuan(fen: int | None) -> str:
    return "" if fen is None else f"¥{fen_to_yuan_str(int(fen))}"


def _items_of(user):
    """The order items ``user`` may see (all for operators)."""
    ids = merchant_ids(user)
    queryset = OrderItem.objects.all()
    return queryset if ids is None else queryset.filter(merchant_id__in=ids)


def _has_item_of(ids: list[int], order_ref: str = "pk") -> Exists:
    return Exists(OrderItem.objects.filter(order=OuterRef(order_ref), merchant_id__in=ids))


def _awaiting_manual(order_ref: str = "pk", merchant_ids_: list[int] | None = None) -> Exists:
    items = OrderItem.objects.filter(order=OuterRef(order_ref)).exclude(delivery_mode=AUTOMATIC)
    if merchant_ids_ is not None:
        items = items.filter(merchant_id__in=merchant_ids_)
    return Exists(items)


class OrderScopedAdmin(MerchantScopedAdmin):
    """MerchantScopedAdmin for rows reached through an order: scoped with EXISTS, no duplicates."""

    order_ref = "pk"  # from the model to the order's id

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        ids = merchant_ids(request.user)
        if ids is None:
            return queryset
        return queryset.filter(_has_item_of(ids, self.order_ref))


def _readonly_inline_permissions(parent_perm: str):
    class Permissions:
        def has_view_permission(self, request, obj=None):
            return request.user.has_perm(parent_perm)

        def has_add_permission(self, request, obj=None):
            return False

        def has_change_permission(self, request, obj=None):
            return False

        def has_delete_permission(self, request, obj=None):
            return False

    return Permissions


# --- list filters -------------------------------------------------------------------------------
class OrderSkuFilter(admin.SimpleListFilter):
    """Orders containing a SKU; only the user's own SKUs are offered."""

    title = _("SKU")
    parameter_name = "sku"

    def lookups(self, request, model_admin):
        skus = scope_queryset(
            Sku.objects.select_related("product").order_by("product__title", "sort_order", "pk"),
            user=request.user,
            merchant_path="product__merchant",
        )
        return [(str(sku.pk), str(sku)) for sku in skus]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(Exists(OrderItem.objects.filter(order=OuterRef("pk"), sku_id=int(value))))
        return queryset


class OrderMerchantFilter(admin.SimpleListFilter):
    """Orders containing goods of one merchant (operators, and staff of several merchants)."""

    title = _("merchant")
    parameter_name = "merchant"

    def lookups(self, request, model_admin):
        merchants = scope_queryset(Merchant.objects.order_by("name"), user=request.user, merchant_path="pk")
        return [(str(m.pk), m.name) for m in merchants]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(_has_item_of([int(value)]))
        return queryset


class ManualQueueFilter(admin.SimpleListFilter):
    title = _("queue")
    parameter_name = "queue"
    MANUAL = "manual"

    def lookups(self, request, model_admin):
        return [(self.MANUAL, _("awaiting manual delivery"))]

    def queryset(self, request, queryset):
        if self.value() == self.MANUAL:
            return manual_queue(queryset, user=request.user)
        return queryset


def manual_queue(queryset, *, user):
    """Processing orders with manual items (of the user's merchants) waiting for the merchant."""
    return queryset.filter(_awaiting_manual(merchant_ids_=merchant_ids(user)), status=Order.Status.PROCESSING)


# --- inlines ------------------------------------------------------------------------------------
class OrderItemInline(_readonly_inline_permissions("orders.view_order"), admin.TabularInline):
    model = OrderItem
    extra = 0
    can_delete = False
    verbose_name_plural = _("items (yours only, for merchant staff)")
    fields = [
        "product_title", "sku_label", "merchant", "delivery_mode", "quantity", "unit_price", "discount", "amount",
        "code_masks", "inputs", "manual_result",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        codes = OrderItemCode.objects.select_related("code").order_by("pk")
        queryset = (
            super().get_queryset(request).select_related("merchant").prefetch_related(Prefetch("codes", queryset=codes))
        )
        ids = merchant_ids(request.user)
        return queryset if ids is None else queryset.filter(merchant_id__in=ids)

    @admin.display(description=_("unit price"))
    def unit_price(self, obj):
        return _yuan(obj.unit_price_fen)

    @admin.display(description=_("discount"))
    def discount(self, obj):
        return _yuan(obj.discount_fen)

    @admin.display(description=_("amount"))
    def amount(self, obj):
        return _yuan(obj.total_fen)

    @admin.display(description=_("codes (masked)"))
    def code_masks(self, obj):
        return format_html_join(
            "",
            "<div>{} <small>({})</small></div>",
            ((link.code.hint, link.get_status_display()) for link in obj.codes.all()),
        )

    @admin.display(description=_("buyer inputs"))
    def inputs(self, obj):
        return format_html_join("", "<div>{}: {}</div>", sorted((obj.buyer_inputs or {}).items()))


class OrderEventInline(_readonly_inline_permissions("orders.view_order"), admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "from_status", "to_status", "actor", "note"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


# --- forms --------------------------------------------------------------------------------------
class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False)

    def __init__(self, *args, note_required: bool = False, note_label=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["note"].required = note_required
        if note_label:
            self.fields["note"].label = note_label


class PartialRefundForm(NoteForm):
    """An operator gives back part of an order's payment: an amount, where it goes, and why."""

    amount = YuanField(label=_("Amount to refund (yuan)"))
    route = forms.ChoiceField(label=_("Refund to"), choices=Refund.Route.choices, initial=Refund.Route.ORIGINAL)

    field_order = ["amount", "route", "note"]

    def __init__(self, *args, order: Order | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order

    def clean_amount(self):
        fen = self.cleaned_data["amount"]
        if fen <= 0:
            raise forms.ValidationError(gettext("The amount must be more than zero."))
        payment = payments.paying_payment(self.order) if self.order else None
        left = payments.refundable_fen(payment) if payment else 0
        if fen > left:
            raise forms.ValidationError(
                gettext("At most %(left)s yuan of this order can still be refunded.") % {"left": fen_to_yuan_str(left)}
            )
        return fen


class ManualDeliveryForm(forms.Form):
    def __init__(self, *args, items: list[OrderItem], **kwargs):
        super().__init__(*args, **kwargs)
        self.items = items
        for item in items:
            self.fields[f"result_{item.pk}"] = forms.CharField(
                label=str(item), initial=item.manual_result, max_length=2000,
                widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                help_text=_("What the buyer sees, e.g. “Topped up 5000 points to account 12345”."),
            )  # fmt: skip

    def rows(self):
        return [(item, self[f"result_{item.pk}"]) for item in self.items]

    def results(self) -> dict[int, str]:
        return {item.pk: self.cleaned_data[f"result_{item.pk}"].strip() for item in self.items}


def _confirm_with_note(
    modeladmin, request, queryset, *, title, note_required, note_label, apply, intro="", form_class=NoteForm,
    form_kwargs=None,
):  # fmt: skip
    """An action's confirmation page with a note (and the form's other fields); calls ``apply(note)``
    once confirmed, or ``apply(note, cleaned_data)`` for a form with more fields than the note."""
    confirmed = request.POST.get("confirm") == "yes"
    form = form_class(
        request.POST if confirmed else None, note_required=note_required, note_label=note_label, **(form_kwargs or {})
    )
    if confirmed and form.is_valid():
        note = form.cleaned_data["note"].strip()
        apply(note) if form_class is NoteForm else apply(note, form.cleaned_data)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.opts,
        "title": title,
        "intro": intro,
        "objects": list(queryset[:200]),
        "count": queryset.count(),
        "form": form,
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/orders/confirm_action.html", context)


# --- export -------------------------------------------------------------------------------------
def _local(value: datetime.datetime | None):
    return timezone.localtime(value).replace(tzinfo=None) if value else None


def export_order_lines(*, orders, user) -> tempfile.SpooledTemporaryFile:
    """The lines of ``orders`` the user may see, as .xlsx (write-only workbook, server-side cursor,
    anonymous temporary file). Card codes are never part of it — not even masked."""
    items = (
        _items_of(user)
        .filter(order__in=orders.values("pk"))
        .select_related("order", "merchant")
        .order_by("order__created_at", "order_id", "pk")
    )
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(gettext("Orders"))
    header = [
        gettext("Order number"), gettext("Placed"), gettext("Paid"), gettext("Delivered"), gettext("Status"),
        gettext("E-mail"), gettext("Merchant"), gettext("Product"), gettext("Denomination"), gettext("Delivery mode"),
        gettext("Quantity"), gettext("Unit price (fen)"), gettext("Discount (fen)"), gettext("Amount (fen)"),
        gettext("Order total (fen)"), gettext("Order refunded (fen)"), gettext("Buyer inputs"),
        gettext("Delivery result"),
    ]  # fmt: skip
    sheet.append(xlsx.row(sheet, header))
    statuses = dict(Order.Status.choices)
    modes = dict(Product.DeliveryMode.choices)
    for item in items.iterator(chunk_size=2000):
        order = item.order
        inputs = "; ".join(f"{key}: {value}" for key, value in sorted((item.buyer_inputs or {}).items()))
        sheet.append(
            xlsx.row(
                sheet,
                [
                    order.number, _local(order.created_at), _local(order.paid_at), _local(order.delivered_at),
                    str(statuses.get(order.status, order.status)), order.email, item.merchant.name,
                    item.product_title, item.sku_label, str(modes.get(item.delivery_mode, item.delivery_mode)),
                    item.quantity, item.unit_price_fen, item.discount_fen, item.total_fen, order.total_fen,
                    order.refunded_fen, inputs, item.manual_result,
                ],
            )
        )  # fmt: skip
    target = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 (handed to the response, which closes it)
    try:
        workbook.save(target)
        target.seek(0)
    except BaseException:
        target.close()
        raise
    return target


def _download(file, filename: str) -> FileResponse:
    response = FileResponse(file, as_attachment=True, filename=filename, content_type=XLSX_CONTENT_TYPE)
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


# --- orders -------------------------------------------------------------------------------------
DATE_FIELDS = [
    "created_at", "reserved_until", "paid_at", "delivered_at", "closed_at", "codes_first_viewed_at",
    "delivery_email_sent_at",
]  # fmt: skip


@admin.register(Order)
class OrderAdmin(OrderScopedAdmin):
    merchant_path = "items__merchant"  # what the scope means; applied with EXISTS (OrderScopedAdmin)
    list_display = [
        "number", "status", "email", "items_summary", "total", "refunded", "created_at", "paid_at", "delivered_at",
    ]  # fmt: skip
    list_filter = ["status", ("created_at", admin.DateFieldListFilter), OrderSkuFilter, ManualQueueFilter]
    search_fields = ["=number", "=email"]
    search_help_text = _("Exact order number or e-mail address.")
    list_per_page = 50
    show_full_result_count = False
    inlines = [OrderItemInline, OrderEventInline]
    fieldsets = [
        (None, {"fields": ["number", "status", "buyer", "email", "phone", "language"]}),
        (_("Money"), {"fields": ["subtotal", "discount", "total", "refunded", "pricing"]}),
        (_("Dates"), {"fields": DATE_FIELDS}),
    ]
    readonly_fields = [
        "number", "status", "buyer", "email", "phone", "language", "subtotal", "discount", "total", "refunded",
        "pricing", "created_at", "reserved_until", "paid_at", "delivered_at", "closed_at", "codes_first_viewed_at",
        "delivery_email_sent_at",
    ]  # fmt: skip
    actions = ["resend_delivery_email", "export_xlsx", "refund_in_full", "refund_in_full_to_wallet", "refund_amount"]

    # Read-only: no add, no delete, no edit form. "change" remains for the actions and manual delivery.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)

    def has_refund_permission(self, request):
        return is_operator(request.user)

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        ids = merchant_ids(request.user)
        if ids is None or len(ids) > 1:
            filters.append(OrderMerchantFilter)
        return filters

    def get_queryset(self, request):
        visible = _items_of(request.user).order_by("pk")
        return (
            super()
            .get_queryset(request)
            .select_related("buyer")
            .prefetch_related(Prefetch("items", queryset=visible, to_attr="visible_items"))
        )

    @admin.display(description=_("items"))
    def items_summary(self, obj):
        return format_html_join(
            "", "<div>{} · {} × {}</div>", ((i.product_title, i.sku_label, i.quantity) for i in obj.visible_items)
        )

    @admin.display(description=_("subtotal"))
    def subtotal(self, obj):
        return _yuan(obj.subtotal_fen)

    @admin.display(description=_("discount"))
    def discount(self, obj):
        return _yuan(obj.discount_fen)

    @admin.display(description=_("total"), ordering="total_fen")
    def total(self, obj):
        return _yuan(obj.total_fen)

    @admin.display(description=_("refunded"))
    def refunded(self, obj):
        return _yuan(obj.refunded_fen) if obj.refunded_fen else "—"

    # -- pages ------------------------------------------------------------------------------------
    def get_urls(self):
        return [
            path(
                "<path:object_id>/manual-delivery/",
                self.admin_site.admin_view(self.manual_delivery_view),
                name="orders_order_manual_delivery",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "manual_queue_count": manual_queue(self.get_queryset(request), user=request.user).order_by().count(),
            "manual_queue_url": reverse("admin:orders_order_changelist") + f"?queue={ManualQueueFilter.MANUAL}",
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False,
            "show_delete": False,
        }  # fmt: skip
        order = self.get_object(request, unquote(object_id)) if object_id else None
        if order is not None:
            extra_context["manual_delivery_url"] = (
                reverse("admin:orders_order_manual_delivery", args=[order.pk])
                if order.status == Order.Status.PROCESSING and self.has_change_permission(request)
                else None
            )
            extra_context["after_sales_url"] = (
                reverse("admin:orders_aftersalesrequest_changelist") + f"?q={order.number}"
                if order.after_sales.exists()
                else None
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def manual_delivery_view(self, request, object_id):
        """The merchant enters the result of each manual item and completes the order."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if order.status != Order.Status.PROCESSING:
            self.message_user(request, gettext("This order is not waiting for manual delivery."), messages.WARNING)
            return redirect(change_url)
        mine = list(_items_of(request.user).filter(order=order).exclude(delivery_mode=AUTOMATIC).order_by("pk"))
        form = ManualDeliveryForm(request.POST or None, items=mine)
        if request.method == "POST" and form.is_valid():
            missing = (
                order.items.exclude(delivery_mode=AUTOMATIC)
                .exclude(pk__in=[item.pk for item in mine])
                .filter(manual_result="")
            )
            if missing.exists():
                form.add_error(None, gettext("Items of another merchant in this order are not done yet."))
            elif services.complete_manual_delivery(order=order, results=form.results(), actor=request.user):
                self.message_user(
                    request,
                    gettext("Order %(number)s delivered; the buyer gets an e-mail.") % {"number": order.number},
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:orders_order_changelist") + f"?queue={ManualQueueFilter.MANUAL}")
            else:
                self.message_user(request, gettext("This order is not waiting for manual delivery."), messages.WARNING)
                return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Manual delivery of order %(number)s") % {"number": order.number},
            "original": order,
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/orders/order/manual_delivery.html", context)

    # -- actions ----------------------------------------------------------------------------------
    @admin.action(description=_("Re-send the delivery e-mail (the same codes)"), permissions=["change"])
    def resend_delivery_email(self, request, queryset):
        from orders.tasks import send_delivery_email

        selected = list(queryset.order_by("pk"))
        eligible = [o for o in selected if o.status in (Order.Status.DELIVERED, Order.Status.PROCESSING)]
        with transaction.atomic():
            for order in eligible:
                services.record_event(order, kind="delivery_email_resent", actor=request.user)
                enqueue_on_commit(send_delivery_email, order_id=order.pk, again=True)
        if eligible:
            self.message_user(
                request,
                ngettext(
                    "The delivery e-mail of %(count)d order is on its way.",
                    "The delivery e-mails of %(count)d orders are on their way.",
                    len(eligible),
                )
                % {"count": len(eligible)},
                messages.SUCCESS,
            )
        if len(eligible) < len(selected):
            skipped = len(selected) - len(eligible)
            self.message_user(
                request,
                ngettext(
                    "%(count)d order was skipped: nothing was delivered yet.",
                    "%(count)d orders were skipped: nothing was delivered yet.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

    @admin.action(description=_("Export selected orders to .xlsx (order lines, no codes)"), permissions=["view"])
    def export_xlsx(self, request, queryset):
        export = export_order_lines(orders=queryset, user=request.user)
        return _download(export, f"orders-{timezone.localtime():%Y%m%d-%H%M}.xlsx")

    @admin.action(description=_("Refund in full (operators)"), permissions=["refund"])
    def refund_in_full(self, request, queryset):
        return self._refund_in_full(request, queryset, route=Refund.Route.ORIGINAL)

    @admin.action(description=_("Refund an amount of one order (operators)"), permissions=["refund"])
    def refund_amount(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, gettext("Select exactly one order to refund an amount of."), messages.ERROR)
            return None
        order = queryset.get()

        def apply(note: str, data: dict) -> None:
            payment = payments.paying_payment(order)
            try:
                if payment is None:
                    raise payments.PaymentError(gettext("This order has no completed payment."))
                refund = payments.request_refund(
                    payment=payment, amount_fen=data["amount"], reason=Refund.Reason.OPERATOR, note=note,
                    actor=request.user, route=data["route"],
                )  # fmt: skip
            except payments.PaymentError as exc:
                self.message_user(request, f"{order.number}: {exc}", messages.ERROR)
                return
            self.message_user(
                request,
                gettext("Refund of %(amount)s yuan requested for %(number)s.")
                % {"amount": fen_to_yuan_str(refund.amount_fen), "number": order.number},
                messages.SUCCESS,
            )

        return _confirm_with_note(
            self, request, queryset, title=gettext("Refund an amount"), note_required=True,
            note_label=_("Reason (kept with the refund and the order's history)"), apply=apply,
            form_class=PartialRefundForm, form_kwargs={"order": order},
            intro=gettext("Part of the order's payment goes back to the buyer; the order stays as it is."),
        )  # fmt: skip

    @admin.action(description=_("Refund in full to the buyer's wallet (operators)"), permissions=["refund"])
    def refund_in_full_to_wallet(self, request, queryset):
        guests = list(queryset.filter(buyer__isnull=True).values_list("number", flat=True)[:20])
        if guests:
            self.message_user(
                request,
                gettext("Guest orders have no wallet; refund them to the original route: %(numbers)s")
                % {"numbers": ", ".join(guests)},
                messages.ERROR,
            )
            return None
        return self._refund_in_full(request, queryset, route=Refund.Route.WALLET)

    def _refund_in_full(self, request, queryset, *, route: str):
        def apply(note: str) -> None:
            done, skipped = 0, []
            for order in queryset.order_by("pk"):
                try:
                    refunded = _refund_order_in_full(order=order, note=note, actor=request.user, route=route)
                except payments.PaymentError as exc:
                    self.message_user(request, f"{order.number}: {exc}", messages.ERROR)
                    continue
                if refunded:
                    done += 1
                else:
                    skipped.append(order.number)
            if done:
                self.message_user(
                    request,
                    ngettext("Refund requested for %(count)d order.", "Refunds requested for %(count)d orders.", done)
                    % {"count": done},
                    messages.SUCCESS,
                )
            if skipped:
                self.message_user(
                    request,
                    gettext("Nothing to refund (not paid, or already refunded) for: %(numbers)s")
                    % {"numbers": ", ".join(skipped[:20])},
                    messages.WARNING,
                )

        return _confirm_with_note(
            self, request, queryset, title=gettext("Refund in full"), note_required=True,
            note_label=_("Reason (kept with the refund and the order's history)"), apply=apply,
            intro=gettext("Everything that is left of each order's payment goes back to the buyer."),
        )  # fmt: skip


def _refund_order_in_full(*, order: Order, note: str, actor, route: str = Refund.Route.ORIGINAL) -> bool:
    """Operator refund: the order goes to ``refunding`` with the refund row, in one transaction."""
    with transaction.atomic():
        locked = locks.lock_order(order.pk)
        refund = payments.refund_order_in_full(
            order_id=locked.pk, reason=Refund.Reason.OPERATOR, note=note, actor=actor, route=route
        )
        if refund is None:
            return False
        services.transition(
            locked,
            source=[Order.Status.PAID, Order.Status.PROCESSING, Order.Status.DELIVERED],
            target=Order.Status.REFUNDING,
            kind="operator_refund",
            refunding_reason=Order.RefundingReason.OPERATOR,
            actor=actor,
            note=note,
            data={"out_refund_no": refund.out_refund_no, "amount_fen": refund.amount_fen},
        )
    return True


# --- after-sales ------------------------------------------------------------------------------------
class DecisionForm(forms.Form):
    REPLACE, REFUND, REJECT = "replace", "refund", "reject"

    decision = forms.ChoiceField(
        label=_("Decision"),
        widget=forms.RadioSelect,
        choices=[
            (REPLACE, _("Replace codes with fresh ones of the same denomination")),
            (REFUND, _("Refund (whole or part)")),
            (REJECT, _("Reject")),
        ],
    )
    codes = forms.TypedMultipleChoiceField(
        label=_("Codes to replace"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: all of them. The replaced codes become void."),
    )  # fmt: skip
    amount = forms.CharField(label=_("Refund amount (yuan)"), required=False, max_length=16)
    note = forms.CharField(
        label=_("Answer to the buyer"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Required to reject. The buyer reads it on the order page and in the e-mail."),
    )

    def __init__(self, *args, links=(), limit_fen: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["codes"].choices = [
            (link.pk, f"{link.item.product_title} · {link.item.sku_label} · {link.code.hint}") for link in links
        ]
        self.fields["amount"].help_text = gettext("Empty: everything you may refund, %(limit)s.") % {
            "limit": _yuan(limit_fen)
        }

    def clean(self):
        data = super().clean()
        decision = data.get("decision")
        if decision == self.REJECT and not (data.get("note") or "").strip():
            self.add_error("note", gettext("Say why the request is rejected: the buyer reads your answer."))
        data["amount_fen"] = None
        if decision == self.REFUND and (data.get("amount") or "").strip():
            try:
                data["amount_fen"] = yuan_str_to_fen(data["amount"].replace("¥", ""))
            except (ValueError, InvalidOperation):
                self.add_error("amount", gettext("Enter an amount in yuan, like 12.50."))
        return data


@admin.register(AfterSalesRequest)
class AfterSalesRequestAdmin(OrderScopedAdmin):
    merchant_path = "order__items__merchant"  # applied with EXISTS (OrderScopedAdmin)
    order_ref = "order_id"
    list_display = [
        "order_number", "reason", "status", "created_at", "has_evidence", "refund", "decided_by", "decided_at",
        "order_status",
    ]  # fmt: skip
    list_filter = ["status", "reason", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["order", "decided_by"]
    search_fields = ["=order__number", "=order__email"]
    search_help_text = _("Exact order number or e-mail address.")
    show_full_result_count = False
    fields = [
        "order_link", "order_status", "reason", "message", "evidence_preview", "created_at", "status", "refund",
        "decision_note", "decided_by", "decided_at",
    ]  # fmt: skip
    readonly_fields = fields
    actions = ["replace_selected", "refund_selected", "reject_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj):
        return obj.order.number

    @admin.display(description=_("order"))
    def order_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]), obj.order.number
        )

    @admin.display(description=_("order status"))
    def order_status(self, obj):
        return obj.order.get_status_display()

    @admin.display(description=_("evidence"), boolean=True)
    def has_evidence(self, obj):
        return bool(obj.evidence)

    @admin.display(description=_("refund"))
    def refund(self, obj):
        return _yuan(obj.refund_fen) if obj.refund_fen else "—"

    @admin.display(description=_("evidence"))
    def evidence_preview(self, obj):
        if not obj.evidence:
            return "—"
        return format_html(
            '<a href="{0}" target="_blank" rel="noopener"><img src="{0}" alt="" '
            'style="max-width: 320px; max-height: 320px"></a>',
            obj.evidence.url,
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="orders_aftersalesrequest_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False,
            "show_delete": False,
        }  # fmt: skip
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if obj is not None:
            extra_context["masked_codes"] = _decidable_links(obj, request.user)
            if obj.status == AfterSalesRequest.Status.OPEN and self.has_change_permission(request):
                extra_context["decide_url"] = reverse("admin:orders_aftersalesrequest_decide", args=[obj.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request, object_id):
        if not self.has_change_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        change_url = reverse("admin:orders_aftersalesrequest_change", args=[obj.pk])
        if obj.status != AfterSalesRequest.Status.OPEN:
            self.message_user(request, gettext("This request was already decided."), messages.WARNING)
            return redirect(change_url)
        links = _decidable_links(obj, request.user)
        limit = aftersales.refund_limit_fen(request=obj, actor=request.user)
        form = DecisionForm(request.POST or None, links=links, limit_fen=limit)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["decision"] == DecisionForm.REPLACE:
                    aftersales.replace_codes(
                        request=obj, actor=request.user, item_codes=data["codes"] or None, note=data["note"]
                    )
                    done = gettext("Codes replaced; the buyer gets the new ones by e-mail.")
                elif data["decision"] == DecisionForm.REFUND:
                    refund = aftersales.refund(
                        request=obj, amount_fen=data["amount_fen"], actor=request.user, note=data["note"]
                    )
                    done = gettext("Refund of %(amount)s requested.") % {"amount": _yuan(refund.amount_fen)}
                else:
                    aftersales.reject(request=obj, actor=request.user, note=data["note"])
                    done = gettext("Request rejected; the buyer gets your answer.")
            except aftersales.AfterSalesError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, done, messages.SUCCESS)
                return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Decide on the after-sales request"),
            "original": obj,
            "order": obj.order,
            "form": form,
            "change_url": change_url,
            "refund_limit": _yuan(limit),
        }
        return TemplateResponse(request, "admin/orders/aftersalesrequest/decide.html", context)

    # -- actions ----------------------------------------------------------------------------------
    def _decide_each(self, request, queryset, decide) -> None:
        done, failed = 0, []
        for obj in queryset.select_related("order").order_by("pk"):
            try:
                decide(obj)
            except aftersales.AfterSalesError as exc:
                failed.append(f"{obj.order.number}: {exc}")
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext("%(count)d request decided.", "%(count)d requests decided.", done) % {"count": done},
                messages.SUCCESS,
            )
        for failure in failed[:20]:
            self.message_user(request, failure, messages.WARNING)

    @admin.action(description=_("Replace all codes of the selected requests"), permissions=["change"])
    def replace_selected(self, request, queryset):
        return _confirm_with_note(
            self, request, queryset, title=gettext("Replace codes"), note_required=False,
            note_label=_("Answer to the buyer"),
            apply=lambda note: self._decide_each(
                request, queryset, lambda obj: aftersales.replace_codes(request=obj, actor=request.user, note=note)
            ),
            intro=gettext("Every delivered code of these orders is replaced with a fresh one; the old ones are void."),
        )  # fmt: skip

    @admin.action(description=_("Refund the selected requests in full"), permissions=["change"])
    def refund_selected(self, request, queryset):
        return _confirm_with_note(
            self, request, queryset, title=gettext("Refund in full"), note_required=False,
            note_label=_("Answer to the buyer"),
            apply=lambda note: self._decide_each(
                request, queryset, lambda obj: aftersales.refund(request=obj, actor=request.user, note=note)
            ),
            intro=gettext("Everything you may refund on each order goes back to the buyer."),
        )  # fmt: skip

    @admin.action(description=_("Reject the selected requests"), permissions=["change"])
    def reject_selected(self, request, queryset):
        return _confirm_with_note(
            self, request, queryset, title=gettext("Reject"), note_required=True,
            note_label=_("Answer to the buyer (required)"),
            apply=lambda note: self._decide_each(
                request, queryset, lambda obj: aftersales.reject(request=obj, actor=request.user, note=note)
            ),
        )  # fmt: skip


def _decidable_links(request_obj: AfterSalesRequest, user) -> list[OrderItemCode]:
    """The delivered single-use codes of the request's order that ``user`` may replace (masks only)."""
    links = OrderItemCode.objects.filter(
        item__order_id=request_obj.order_id, status=OrderItemCode.Status.DELIVERED, reusable=False
    ).select_related("item", "code")
    ids = merchant_ids(user) if user is not None else []
    if ids is not None:
        links = links.filter(item__merchant_id__in=ids)
    return list(links.order_by("item_id", "pk"))
