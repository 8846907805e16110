"""Payments and refunds in the back office: read-only, for operators only.

Money moves only through payments/services.py (a verified gateway message, a refund requested by an
after-sales decision or an operator's "refund in full" on the order); these pages are for looking
things up. Merchant staff have no permission on this app and do not see it (settlement and ledger
admins are merchant-scoped already, ready to be opened to them).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.roles import is_operator, merchant_ids
from accounts.scoping import MerchantScopedAdmin
from kameng.money import fen_to_yuan_str
from payments.models import LedgerEntry, Payment, Refund, Settlement


def _yuan(fen: int) -> str:
    return f"¥{fen_to_yuan_str(int(fen))}"


class OperatorReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False

    def has_module_permission(self, request):
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("order"), ordering="order__number")
    def order_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]), obj.order)


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    fields = ["out_refund_no", "amount", "reason", "status", "requested_by", "created_at", "finished_at"]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("amount"))
    def amount(self, obj):
        return _yuan(obj.amount_fen)


@admin.register(Payment)
class PaymentAdmin(OperatorReadOnlyAdmin):
    list_display = ["out_trade_no", "order_link", "provider", "amount", "status", "refunded", "created_at", "paid_at"]
    list_filter = ["provider", "status", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["order"]
    search_fields = ["=out_trade_no", "=gateway_trade_no", "=order__number"]
    fields = [
        "out_trade_no", "order_link", "provider", "amount", "status", "gateway_trade_no", "refunded", "created_at",
        "paid_at", "closed_at",
    ]  # fmt: skip
    readonly_fields = fields
    inlines = [RefundInline]

    @admin.display(description=_("amount"), ordering="amount_fen")
    def amount(self, obj):
        return _yuan(obj.amount_fen)

    @admin.display(description=_("refunded"))
    def refunded(self, obj):
        return _yuan(obj.refunded_fen) if obj.refunded_fen else "—"


@admin.register(Refund)
class RefundAdmin(OperatorReadOnlyAdmin):
    list_display = [
        "out_refund_no", "order_link", "payment", "amount", "reason", "status", "requested_by", "created_at",
        "finished_at",
    ]  # fmt: skip
    list_filter = ["reason", "status", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["order", "payment", "requested_by"]
    search_fields = ["=out_refund_no", "=gateway_refund_no", "=order__number", "=payment__out_trade_no"]
    fields = [
        "out_refund_no", "order_link", "payment", "amount", "reason", "note", "status", "gateway_refund_no",
        "failure", "requested_by", "created_at", "finished_at",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description=_("amount"), ordering="amount_fen")
    def amount(self, obj):
        return _yuan(obj.amount_fen)


# -- settlement and the ledger: read-only; merchant staff see their own rows -------------------------


class SettlementReadOnlyAdmin(MerchantScopedAdmin):
    """Operators see everything; merchant staff see their own rows (MerchantScopedAdmin)."""

    merchant_path = "merchant"
    show_full_result_count = False

    # Merchant staff could see their own rows (the queryset is scoped), but orders/tests/test_admin.py
    # asserts that the payments app stays hidden from them; until that rule is revised, operators
    # only. Allowing merchants is: ``is_operator(request.user) or bool(merchant_ids(request.user))``.
    merchants_allowed = False

    def _allowed(self, request) -> bool:
        return is_operator(request.user) or (self.merchants_allowed and bool(merchant_ids(request.user)))

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Settlement)
class SettlementAdmin(SettlementReadOnlyAdmin):
    list_display = [
        "out_request_no", "order", "merchant", "gross", "fee", "merchant_amount", "reversed", "status", "due_at",
        "attempts", "settled_at",
    ]  # fmt: skip
    list_filter = ["status", "provider", ("due_at", admin.DateFieldListFilter)]
    list_select_related = ["order", "merchant"]
    search_fields = ["=out_request_no", "=order__number"]
    fields = [
        "out_request_no", "order", "merchant", "provider", "gross", "fee", "merchant_amount", "reversed", "status",
        "due_at", "attempts", "next_attempt_at", "failure", "created_at", "settled_at",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description=_("gross"), ordering="gross_fen")
    def gross(self, obj):
        return _yuan(obj.gross_fen)

    @admin.display(description=_("platform fee"))
    def fee(self, obj):
        return _yuan(obj.fee_fen - obj.reversed_fee_fen)

    @admin.display(description=_("merchant amount"))
    def merchant_amount(self, obj):
        return _yuan(obj.remaining_merchant_fen)

    @admin.display(description=_("reversed"))
    def reversed(self, obj):
        total = obj.reversed_fee_fen + obj.reversed_merchant_fen
        return _yuan(total) if total else "—"


@admin.register(LedgerEntry)
class LedgerEntryAdmin(SettlementReadOnlyAdmin):
    list_display = ["created_at", "account", "kind", "amount", "order", "merchant", "reference"]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["order", "merchant"]
    search_fields = ["=reference", "=order__number", "account"]
    fields = ["created_at", "account", "kind", "amount", "order", "merchant", "reference"]
    readonly_fields = fields

    @admin.display(description=_("amount"), ordering="amount_fen")
    def amount(self, obj):
        return _yuan(obj.amount_fen)
