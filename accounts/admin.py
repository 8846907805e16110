from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.models import Merchant, User
from accounts.roles import add_merchant_staff, is_operator, merchant_ids
from accounts.scoping import MerchantScopedAdmin


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["-date_joined"]
    list_display = ["email", "nickname", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "nickname", "phone"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Profile"), {"fields": ("nickname", "phone", "first_name", "last_name")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


def _own_merchants(user) -> list[int]:
    ids = merchant_ids(user)
    return ids or []


@admin.register(Merchant)
class MerchantAdmin(MerchantScopedAdmin):
    """Operators manage merchants. Merchant staff see only their own merchant(s) and may update the
    contact details; the commission rate, status, slug, name and staff list stay with operators."""

    merchant_path = "pk"
    list_display = ["name", "status", "commission_rate", "contact_email", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "contact_email"]
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ["users"]
    staff_readonly_fields = ["name", "slug", "users", "commission_rate", "status", "created_at"]

    # Merchant staff hold no accounts.* permission; their access to their own merchant is granted here.
    def has_module_permission(self, request):
        return super().has_module_permission(request) or bool(_own_merchants(request.user))

    def has_view_permission(self, request, obj=None):
        if super().has_view_permission(request, obj):
            return True
        own = _own_merchants(request.user)
        return bool(own) and (obj is None or obj.pk in own)

    def has_change_permission(self, request, obj=None):
        if super().has_change_permission(request, obj):
            return True
        own = _own_merchants(request.user)
        return bool(own) and (obj is None or obj.pk in own)

    def get_readonly_fields(self, request, obj=None):
        if is_operator(request.user):
            return ["created_at"] if obj is not None else []
        return self.staff_readonly_fields

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if is_operator(request.user) else {}

    def get_autocomplete_fields(self, request):
        return self.autocomplete_fields if is_operator(request.user) else []

    def save_related(self, request, form, formsets, change):
        """Users an operator adds to a merchant become its back-office staff (group, is_staff)."""
        merchant = form.instance
        before = set(merchant.users.values_list("pk", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        added = merchant.users.exclude(pk__in=before)
        for user in added:
            add_merchant_staff(merchant=merchant, user=user)
