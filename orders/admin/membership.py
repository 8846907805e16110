"""Annual membership in the back office (orders/membership.py): operators define the plans and see
who is a member until when. Merchant staff have no permission on either (accounts/roles.py)."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.scoping import ReadOnlyAdminMixin
from orders.admin.common import yuan
from orders.models import Membership, MembershipGrant, MembershipPlan


def member_badge(is_member: bool):
    """The mark of an active member's order in the queues."""
    if not is_member:
        return ""
    return format_html(
        '<span class="member-badge" style="background:#fff7e6;color:#d46b08;border:1px solid #ffd591;'
        'border-radius:10px;padding:1px 8px;font-weight:600;white-space:nowrap">★ {}</span>',
        _("Member"),
    )


@admin.register(MembershipPlan)
class MembershipPlanAdmin(admin.ModelAdmin):
    list_display = ["name", "price", "duration_days", "discount_percent", "is_active", "position"]
    list_editable = ["is_active", "position"]
    fields = ["name", "name_en", "price_fen", "duration_days", "discount_percent", "is_active", "position"]

    @admin.display(description=_("price"), ordering="price_fen")
    def price(self, obj):
        return yuan(obj.price_fen)

    def has_delete_permission(self, request, obj=None):
        return False  # orders refer to plans: take a plan off sale instead


class MembershipGrantInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = MembershipGrant
    fields = ["order", "plan", "starts_at", "ends_at", "revoked_seconds"]
    readonly_fields = fields
    extra = 0


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "plan", "discount_percent", "started_at", "ends_at", "active"]
    list_select_related = ["user", "plan"]
    search_fields = ["=user__email"]
    fields = ["user", "plan", "discount_percent", "started_at", "ends_at", "reminded_for"]
    readonly_fields = fields
    inlines = [MembershipGrantInline]

    @admin.display(description=_("active"), boolean=True)
    def active(self, obj):
        return obj.ends_at > timezone.now()
