"""The order admin: list, filters (SKU, merchant, manual-delivery queue), the order page, the
manual-delivery form, and actions (re-send the codes e-mail, export, operators' refunds)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Exists, OuterRef, Prefetch
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Merchant
from accounts.roles import is_operator, merchant_ids
from accounts.scoping import scope_queryset
from catalog.models import Sku
from kameng.forms import YuanField
from kameng.money import fen_to_yuan_str
from orders import payment_port, services
from orders.admin.common import (
    AUTOMATIC,
    NoteForm,
    OrderScopedAdmin,
    awaiting_manual,
    changeable_object,
    confirm_with_note,
    download,
    has_item_of,
    readonly_inline_permissions,
    yuan,
)
from orders.admin.membership import member_badge
from orders.admin.price_preview import price_preview_view
from orders.exports import export_order_lines
from orders.membership import is_member_expr
from orders.models import Order, OrderEvent, OrderItem, OrderItemCode
from orders.payment_port import PaymentRefused, RefundRoute
from orders.selectors import items_visible_to


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
            return queryset.filter(has_item_of([int(value)]))
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
    return queryset.filter(awaiting_manual(merchant_ids_=merchant_ids(user)), status=Order.Status.PROCESSING)


# --- inlines ------------------------------------------------------------------------------------
class OrderItemInline(readonly_inline_permissions("orders.view_order"), admin.TabularInline):
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
        return yuan(obj.unit_price_fen)

    @admin.display(description=_("discount"))
    def discount(self, obj):
        return yuan(obj.discount_fen)

    @admin.display(description=_("amount"))
    def amount(self, obj):
        return yuan(obj.total_fen)

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


class OrderEventInline(readonly_inline_permissions("orders.view_order"), admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "from_status", "to_status", "actor", "note"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class PartialRefundForm(NoteForm):
    """An operator gives back part of an order's payment: an amount, where it goes, and why."""

    amount = YuanField(label=_("Amount to refund (yuan)"))
    route = forms.ChoiceField(label=_("Refund to"), choices=RefundRoute.choices, initial=RefundRoute.ORIGINAL)

    field_order = ["amount", "route", "note"]

    def __init__(self, *args, order: Order | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order

    def clean_amount(self):
        fen = self.cleaned_data["amount"]
        if fen <= 0:
            raise forms.ValidationError(gettext("The amount must be more than zero."))
        left = (payment_port.get().refundable_fen(self.order) if self.order else None) or 0
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


# --- orders -------------------------------------------------------------------------------------
DATE_FIELDS = [
    "created_at", "reserved_until", "paid_at", "delivered_at", "closed_at", "codes_first_viewed_at",
    "delivery_email_sent_at",
]  # fmt: skip


@admin.register(Order)
class OrderAdmin(OrderScopedAdmin):
    merchant_path = "items__merchant"  # what the scope means; applied with EXISTS (OrderScopedAdmin)
    list_display = [
        "number", "member", "status", "email", "items_summary", "total", "refunded", "created_at", "paid_at",
        "delivered_at",
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

    def has_refund_permission(self, request):
        return is_operator(request.user)

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        ids = merchant_ids(request.user)
        if ids is None or len(ids) > 1:
            filters.append(OrderMerchantFilter)
        return filters

    def get_queryset(self, request):
        visible = items_visible_to(request.user).order_by("pk")
        return (
            super()
            .get_queryset(request)
            .select_related("buyer")
            .annotate(is_member=is_member_expr("buyer_id"))
            .prefetch_related(Prefetch("items", queryset=visible, to_attr="visible_items"))
        )

    def get_ordering(self, request):
        """The manual-delivery queue serves active annual members first."""
        if request.GET.get(ManualQueueFilter.parameter_name) == ManualQueueFilter.MANUAL:
            # An expression, not the annotation: ModelAdmin.get_queryset orders before annotating.
            return [is_member_expr("buyer_id").desc(), "-created_at"]
        return super().get_ordering(request)

    @admin.display(description=_("priority"), ordering="is_member")
    def member(self, obj):
        return member_badge(obj.is_member)

    @admin.display(description=_("items"))
    def items_summary(self, obj):
        if obj.kind != Order.Kind.GOODS:  # a wallet top-up or an annual membership has no items
            return " · ".join(filter(None, [str(obj.get_kind_display()), (obj.pricing or {}).get("plan_name", "")]))
        return format_html_join(
            "", "<div>{} · {} × {}</div>", ((i.product_title, i.sku_label, i.quantity) for i in obj.visible_items)
        )

    @admin.display(description=_("subtotal"))
    def subtotal(self, obj):
        return yuan(obj.subtotal_fen)

    @admin.display(description=_("discount"))
    def discount(self, obj):
        return yuan(obj.discount_fen)

    @admin.display(description=_("total"), ordering="total_fen")
    def total(self, obj):
        return yuan(obj.total_fen)

    @admin.display(description=_("refunded"))
    def refunded(self, obj):
        return yuan(obj.refunded_fen) if obj.refunded_fen else "—"

    # -- pages ------------------------------------------------------------------------------------
    def get_urls(self):
        return [
            path(
                "price-preview/<int:sku_id>/",
                self.admin_site.admin_view(lambda request, sku_id: price_preview_view(self, request, sku_id)),
                name="orders_price_preview",
            ),
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
        order = changeable_object(self, request, object_id)
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if order.status != Order.Status.PROCESSING:
            self.message_user(request, gettext("This order is not waiting for manual delivery."), messages.WARNING)
            return redirect(change_url)
        mine = list(items_visible_to(request.user).filter(order=order).exclude(delivery_mode=AUTOMATIC).order_by("pk"))
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
        sent, skipped = services.resend_delivery_emails(orders=queryset, actor=request.user)
        if sent:
            self.message_user(
                request,
                ngettext(
                    "The delivery e-mail of %(count)d order is on its way.",
                    "The delivery e-mails of %(count)d orders are on their way.",
                    sent,
                )
                % {"count": sent},
                messages.SUCCESS,
            )
        if skipped:
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
        return download(export, f"orders-{timezone.localtime():%Y%m%d-%H%M}.xlsx")

    @admin.action(description=_("Refund in full (operators)"), permissions=["refund"])
    def refund_in_full(self, request, queryset):
        return self._refund_in_full(request, queryset, route=RefundRoute.ORIGINAL)

    @admin.action(description=_("Refund an amount of one order (operators)"), permissions=["refund"])
    def refund_amount(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, gettext("Select exactly one order to refund an amount of."), messages.ERROR)
            return None
        order = queryset.get()

        def apply(note: str, data: dict) -> None:
            try:
                refund = payment_port.get().refund_amount_by_operator(
                    order=order, amount_fen=data["amount"], note=note, actor=request.user, route=data["route"]
                )
            except PaymentRefused as exc:
                self.message_user(request, f"{order.number}: {exc}", messages.ERROR)
                return
            self.message_user(
                request,
                gettext("Refund of %(amount)s yuan requested for %(number)s.")
                % {"amount": fen_to_yuan_str(refund.amount_fen), "number": order.number},
                messages.SUCCESS,
            )

        return confirm_with_note(
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
        return self._refund_in_full(request, queryset, route=RefundRoute.WALLET)

    def _refund_in_full(self, request, queryset, *, route: str):
        def apply(note: str) -> None:
            done, skipped = 0, []
            for order in queryset.order_by("pk"):
                try:
                    refunded = payment_port.get().refund_in_full_by_operator(
                        order_id=order.pk, note=note, actor=request.user, route=route
                    )
                except PaymentRefused as exc:
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

        return confirm_with_note(
            self, request, queryset, title=gettext("Refund in full"), note_required=True,
            note_label=_("Reason (kept with the refund and the order's history)"), apply=apply,
            intro=gettext("Everything that is left of each order's payment goes back to the buyer."),
        )  # fmt: skip
