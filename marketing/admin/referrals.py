"""Invite-a-friend admin: the programme (one row), who invited whom, and the commissions — the
last two read-only (they change only through payments and refunds). Operators only."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.scoping import OperatorOnlyAdmin, ReadOnlyAdminMixin
from kameng.audit import AuditHistoryMixin
from marketing.models import Commission, Referral, ReferralProgram


@admin.register(ReferralProgram)
class ReferralProgramAdmin(AuditHistoryMixin, OperatorOnlyAdmin, admin.ModelAdmin):
    fieldsets = (
        (None, {"fields": ("enabled",)}),
        (
            _("Rates"),
            {
                "fields": ("level1_rate", "level2_rate"),
                "description": _("Member levels may have rates of their own: commission rates of member levels."),
            },
        ),
        (_("Timing"), {"fields": ("cookie_days", "hold_days")}),
        (
            _("Withdrawal"),
            {
                "fields": (
                    "min_withdrawal_fen",
                    "withdrawal_fee_percent",
                    "withdrawal_fee_fixed_fen",
                    "withdrawal_fee_min_fen",
                )
            },
        ),
    )

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied  # before the row is made: only operators open the programme
        ReferralProgram.objects.get_or_create(pk=1)
        return redirect(reverse("admin:marketing_referralprogram_change", args=[1]))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnly(ReadOnlyAdminMixin, OperatorOnlyAdmin):
    """Operators look; nobody adds, changes or deletes (the services do)."""


@admin.register(Referral)
class ReferralAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("invitee", "inviter", "level2_inviter", "attributed_at")
    list_select_related = ("invitee", "inviter", "level2_inviter")
    search_fields = ("invitee__email", "inviter__email")
    date_hierarchy = "attributed_at"


@admin.register(Commission)
class CommissionAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "id", "order", "beneficiary", "level", "amount_fen", "clawed_back_fen", "owed_fen", "status", "booked",
        "available_at",
    )  # fmt: skip
    list_filter = ("status", "level", "booked")
    list_select_related = ("order", "beneficiary")
    search_fields = ("order__number", "beneficiary__email")
    date_hierarchy = "created_at"
