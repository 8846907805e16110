"""Commission withdrawals and the commission rates per member level in admin. Operators only.

Withdrawals are changed only through their actions, each with a confirmation page: approve (the
Alipay transfer runs in a Celery task; a failed one is approved again to retry with the same
``out_biz_no``), reject (a reason the user sees; the amount goes back to the wallet) and mark paid
offline (with the payment's reference)."""

from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.scoping import OperatorOnlyAdmin, ReadOnlyAdminMixin
from kameng.audit import AuditHistoryMixin
from kameng.templatetags.kameng import yuan
from marketing import withdrawals
from marketing.models import LevelCommissionRate, Withdrawal
from orders.admin.common import confirm_with_note


@admin.register(LevelCommissionRate)
class LevelCommissionRateAdmin(AuditHistoryMixin, OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("level", "level1_rate", "level2_rate", "updated_at")
    list_select_related = ("level",)


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdminMixin, OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("number", "user", "amount", "fee", "alipay_account", "status", "method", "created_at")
    list_filter = ("status", "method", "outcome_unknown", "created_at")
    list_select_related = ("user",)
    search_fields = ("user__email", "alipay_account", "real_name", "gateway_order_id", "offline_reference")
    date_hierarchy = "created_at"
    actions = ["approve", "reject", "mark_paid_offline"]
    readonly_fields = [
        "number", "user", "amount", "fee", "payee_amount", "alipay_account", "real_name", "status", "method", "reason",
        "offline_reference", "gateway_order_id", "last_error", "outcome_unknown", "attempts", "decided_by",
        "created_at", "decided_at", "paid_at",
    ]  # fmt: skip
    exclude = ["request_key", "amount_fen", "fee_fen"]

    def has_view_permission(self, request, obj=None):
        return OperatorOnlyAdmin.has_view_permission(self, request, obj)

    def has_change_permission(self, request, obj=None):
        return False  # actions only: each checks the operator itself

    def get_actions(self, request):
        actions = super().get_actions(request)
        return actions if OperatorOnlyAdmin.has_view_permission(self, request) else {}

    @admin.display(description=_("withdrawal number"), ordering="pk")
    def number(self, obj):
        return obj.out_biz_no

    @admin.display(description=_("amount"), ordering="amount_fen")
    def amount(self, obj):
        return yuan(obj.amount_fen)

    @admin.display(description=_("fee"), ordering="fee_fen")
    def fee(self, obj):
        return yuan(obj.fee_fen)

    @admin.display(description=_("paid to the user"))
    def payee_amount(self, obj):
        return yuan(obj.payee_fen)

    def _each(self, request, queryset, do) -> None:
        done = 0
        for withdrawal in queryset.order_by("pk"):
            try:
                do(withdrawal)
                done += 1
            except withdrawals.WithdrawalError as exc:
                self.message_user(request, f"{withdrawal}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, gettext("%(count)d withdrawal(s) done.") % {"count": done}, messages.SUCCESS)

    @admin.action(description=_("Approve and pay by Alipay (or retry a failed payout)"))
    def approve(self, request, queryset):
        return confirm_with_note(
            self, request, queryset, title=gettext("Approve and pay by Alipay"), note_required=False,
            note_label=gettext("Note (not shown to the user)"),
            intro=gettext("The transfer to each user's Alipay account starts once you confirm."),
            apply=lambda _note: self._each(
                request, queryset, lambda w: withdrawals.approve(withdrawal=w, actor=request.user)
            ),
        )  # fmt: skip

    @admin.action(description=_("Reject (the amount goes back to the wallet)"))
    def reject(self, request, queryset):
        return confirm_with_note(
            self, request, queryset, title=gettext("Reject withdrawals"), note_required=True,
            note_label=gettext("Reason (shown to the user)"),
            apply=lambda note: self._each(
                request, queryset, lambda w: withdrawals.reject(withdrawal=w, reason=note, actor=request.user)
            ),
        )  # fmt: skip

    @admin.action(description=_("Mark paid offline"))
    def mark_paid_offline(self, request, queryset):
        return confirm_with_note(
            self, request, queryset, title=gettext("Mark paid offline"), note_required=True,
            note_label=gettext("Reference of the payment (bank transfer number…)"),
            apply=lambda note: self._each(
                request, queryset,
                lambda w: withdrawals.mark_paid_offline(withdrawal=w, reference=note, actor=request.user),
            ),
        )  # fmt: skip
