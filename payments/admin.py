"""Payments, refunds, settlements and the ledger in the back office: read-only.

Money moves only through payments/services.py (a verified gateway message, a refund requested by an
after-sales decision or an operator's "refund in full" on the order); these pages are for looking
things up. Payments and refunds are for operators. Settlements and ledger entries are scoped
(MerchantScopedAdmin): merchant staff see their own; the *balance* page shows a merchant its
frozen / pending / settled / reversed totals and a monthly statement (.xlsx too), and operators the
platform's commission income and what is not split or not paid out yet.
"""

from __future__ import annotations

import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.roles import is_operator, merchant_ids
from accounts.scoping import MerchantScopedAdmin, ReadOnlyAdminMixin
from kameng.money import fen_to_yuan_str
from payments import selectors
from payments.models import LedgerEntry, Payment, Refund, Settlement


def _yuan(fen: int) -> str:
    return f"¥{fen_to_yuan_str(int(fen))}"


class OperatorReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    show_full_result_count = False

    def has_module_permission(self, request):
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    @admin.display(description=_("order"), ordering="order__number")
    def order_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]), obj.order)


class RefundInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    extra = 0
    fields = ["out_refund_no", "amount", "reason", "status", "requested_by", "created_at", "finished_at"]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

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


class SettlementReadOnlyAdmin(ReadOnlyAdminMixin, MerchantScopedAdmin):
    """Operators see everything; merchant staff see their own rows (MerchantScopedAdmin)."""

    merchant_path = "merchant"
    show_full_result_count = False

    merchants_allowed = True  # their own rows only: the queryset and object URLs are scoped

    def _allowed(self, request) -> bool:
        return is_operator(request.user) or (self.merchants_allowed and bool(merchant_ids(request.user)))

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)


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

    change_list_template = "admin/payments/settlement/change_list.html"

    def get_urls(self):
        balance = path("balance/", self.admin_site.admin_view(self.balance_view), name="payments_settlement_balance")
        return [balance, *super().get_urls()]

    def balance_view(self, request):
        """A merchant's totals and monthly statement; for operators without ``?merchant=``, the platform's."""
        if not self._allowed(request):
            raise PermissionDenied
        from accounts.models import Merchant

        own = merchant_ids(request.user)  # None: an operator, who may look at any merchant
        merchants = (Merchant.objects.all() if own is None else Merchant.objects.filter(pk__in=own)).order_by("name")
        chosen = request.GET.get("merchant", "")
        merchant = None
        if chosen:
            merchant = merchants.filter(pk=int(chosen)).first() if chosen.isdigit() else None
            if merchant is None:
                raise Http404
        elif own is not None:
            merchant = merchants.first()
        start, end, month = _month(request)
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": gettext("Balance and statement"),
            "merchants": list(merchants.values("pk", "name")), "merchant": merchant, "month": month,
            "is_operator": own is None,
        }  # fmt: skip
        if merchant is not None:
            entries = list(selectors.merchant_statement(merchant.pk, start=start, end=end).select_related("order"))
            opening = selectors.merchant_balance_before(merchant.pk, start=start)
            closing = opening + sum(entry.amount_fen for entry in entries)
            if request.GET.get("format") == "xlsx":
                return _statement_xlsx(
                    merchant=merchant, month=month, opening=opening, entries=entries, closing=closing
                )
            context.update(
                totals=selectors.merchant_totals(merchant.pk), entries=entries, opening=opening, closing=closing
            )
        else:
            context.update(
                platform=selectors.platform_totals(),
                commission_in_period=selectors.platform_commission(start=start, end=end),
                failed=Settlement.objects.filter(status=Settlement.Status.FAILED).count(),
            )
        return TemplateResponse(request, "admin/payments/settlement/balance.html", context)

    @admin.display(description=_("gross"), ordering="gross_fen")
    def gross(self, obj):
        return _yuan(obj.gross_fen)

    @admin.display(description=_("platform fee"))
    def fee(self, obj):
        return _yuan(obj.platform_net_fen - obj.reversed_fee_fen)

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


def _month(request) -> tuple[datetime.datetime, datetime.datetime, str]:
    """The month asked for (``?month=YYYY-MM``, default this one) as [start, end) in local time."""
    today = timezone.localdate()
    text = request.GET.get("month", "")
    try:
        year, month = (int(part) for part in text.split("-")) if text else (today.year, today.month)
        first = datetime.date(year, month, 1)
    except ValueError:
        messages.warning(request, gettext("Unknown month %(month)s: showing this month.") % {"month": text[:10]})
        first = today.replace(day=1)
    following = (first + datetime.timedelta(days=32)).replace(day=1)
    zone = timezone.get_current_timezone()
    start = datetime.datetime.combine(first, datetime.time.min, tzinfo=zone)
    end = datetime.datetime.combine(following, datetime.time.min, tzinfo=zone)
    return start, end, f"{first:%Y-%m}"


def _statement_xlsx(*, merchant, month: str, opening: int, entries, closing: int) -> FileResponse:
    import tempfile

    from openpyxl import Workbook

    from kameng import xlsx

    book = Workbook(write_only=True)
    sheet = book.create_sheet(month)
    sheet.append(xlsx.row(sheet, [gettext("Statement"), merchant.name, month]))
    sheet.append(xlsx.row(sheet, [gettext("Opening balance (fen)"), opening]))
    sheet.append(
        xlsx.row(
            sheet, [gettext("Time"), gettext("Order"), gettext("Kind"), gettext("Account"), gettext("Amount (fen)")]
        )
    )
    for entry in entries:
        sheet.append(
            xlsx.row(
                sheet,
                [
                    timezone.localtime(entry.created_at).replace(tzinfo=None),
                    entry.order.number if entry.order else "",
                    entry.kind,
                    entry.account,
                    entry.amount_fen,
                ],
            )
        )
    sheet.append(xlsx.row(sheet, [gettext("Closing balance (fen)"), closing]))
    file = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it after sending
    book.save(file)
    file.seek(0)
    response = FileResponse(
        file, as_attachment=True, filename=f"statement-{merchant.slug}-{month}.xlsx",
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )  # fmt: skip
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response
