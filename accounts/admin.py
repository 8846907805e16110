import uuid

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts import points, wallet
from accounts.models import LoyaltyAccount, LoyaltySettings, MemberLevel, Merchant, PointsEntry, User, WalletEntry
from accounts.roles import add_merchant_staff, is_operator, merchant_ids
from accounts.scoping import MerchantScopedAdmin, OperatorOnlyAdmin
from kameng.forms import YuanField
from kameng.money import fen_to_yuan_str


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
    staff_readonly_fields = [
        "name", "slug", "users", "commission_rate", "status", "created_at",
        "settlement_name", "alipay_settlement_account", "wechat_settlement_account",
    ]  # fmt: skip

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


# -- wallet ----------------------------------------------------------------------------------------------

OPERATOR_KINDS = [WalletEntry.Kind.TOP_UP, WalletEntry.Kind.WITHDRAWAL, WalletEntry.Kind.ADJUSTMENT]


class WalletMovementForm(forms.ModelForm):
    """An operator records a movement: a top-up received offline, a withdrawal paid out, a correction."""

    user = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True), label=_("user"))
    amount = YuanField(
        label=_("amount (yuan)"), help_text=_("Positive adds to the balance, negative takes from it, e.g. -12.50.")
    )
    # One key per rendered form: submitting the same form twice records the movement once.
    key = forms.CharField(widget=forms.HiddenInput, initial=lambda: uuid.uuid4().hex, max_length=32)

    class Meta:
        model = WalletEntry
        fields = ["kind", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(kind.value, kind.label) for kind in OPERATOR_KINDS]
        self.fields["note"].required = True

    def clean_amount(self):
        fen = self.cleaned_data["amount"]
        if fen == 0:
            raise ValidationError(gettext("The amount cannot be zero."))
        return fen

    def clean(self):
        data = super().clean()
        kind, fen = data.get("kind"), data.get("amount")
        if kind == WalletEntry.Kind.TOP_UP and fen is not None and fen < 0:
            self.add_error("amount", gettext("A top-up adds money: enter a positive amount."))
        if kind == WalletEntry.Kind.WITHDRAWAL and fen is not None and fen > 0:
            self.add_error("amount", gettext("A withdrawal takes money out: enter a negative amount."))
        user = data.get("user")
        if user is not None and fen is not None and fen < 0 and wallet.balance_fen(user) + fen < 0:
            self.add_error(
                "amount",
                gettext("The balance is %(balance)s yuan: it cannot go below zero.")
                % {"balance": fen_to_yuan_str(wallet.balance_fen(user))},
            )
        return data


@admin.register(WalletEntry)
class WalletEntryAdmin(admin.ModelAdmin):
    """Operators only. Entries are append-only: the list is read-only; "add" records a movement
    through accounts.wallet (locked, numbered, never below zero)."""

    list_display = ["created_at", "user_email", "seq", "kind", "amount_fen", "balance_after_fen", "order", "note"]
    list_filter = ["kind"]
    search_fields = ["wallet__user__email", "reference", "order__number"]
    list_select_related = ["wallet__user", "order"]
    show_full_result_count = False
    form = WalletMovementForm

    def has_module_permission(self, request):
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_add_permission(self, request):
        return is_operator(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "kind", "amount", "note", "key"]
        return ["wallet", "seq", "kind", "amount_fen", "balance_after_fen", "reference", "order", "note",
                "created_by", "created_at"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, **kwargs)

    @admin.display(description=_("user"), ordering="wallet__user__email")
    def user_email(self, obj):
        return obj.wallet.user.email

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        entry = wallet.move(
            user=data["user"], amount_fen=data["amount"], kind=data["kind"], reference=f"op-{data['key']}",
            note=data["note"], actor=request.user,
        )  # fmt: skip
        obj.pk, obj.wallet, obj.seq, obj.amount_fen = entry.pk, entry.wallet, entry.seq, entry.amount_fen


# -- points and member levels -----------------------------------------------------------------------------


@admin.register(LoyaltySettings)
class LoyaltySettingsAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    """One row (accounts.models.LoyaltySettings): the list opens it; it is never added or deleted."""

    fieldsets = (
        (_("Earning"), {"fields": ("points_enabled", "earn_points_per_yuan", "earn_rounding")}),
        (_("Spending at checkout"), {"fields": ("redeem_points_per_yuan", "redeem_max_percent")}),
        (_("Expiry"), {"fields": ("expire_after_years",)}),
        (_("Member levels"), {"fields": ("downgrade_on_refund",)}),
    )

    def changelist_view(self, request, extra_context=None):
        LoyaltySettings.load()
        return redirect(reverse("admin:accounts_loyaltysettings_change", args=[1]))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MemberLevel)
class MemberLevelAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    """Levels are reached by paid spend (threshold in fen); explicit per-SKU prices are catalog's
    "member level prices"."""

    list_display = ["name", "name_en", "threshold_yuan", "discount_percent", "colour"]
    ordering = ["threshold_fen"]

    @admin.display(description=_("threshold (yuan)"), ordering="threshold_fen")
    def threshold_yuan(self, obj):
        return fen_to_yuan_str(obj.threshold_fen)


@admin.register(LoyaltyAccount)
class LoyaltyAccountAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    """Buyers' levels and paid spend, read-only (recomputed from their orders); their points ledger
    is "points entries", filtered by the buyer."""

    list_display = ["user", "level", "paid_spend_fen", "level_changed_at", "points_link"]
    list_filter = ["level"]
    search_fields = ["user__email"]
    list_select_related = ["user", "level"]
    readonly_fields = ["user", "level", "paid_spend_fen", "level_changed_at", "created_at", "points_link"]
    fields = readonly_fields
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("points ledger"))
    def points_link(self, obj):
        from django.utils.html import format_html

        url = reverse("admin:accounts_pointsentry_changelist") + f"?account__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, gettext("entries"))


class PointsAdjustmentForm(forms.ModelForm):
    """An operator adds or takes points by hand, with a reason (a goodwill gesture, a correction)."""

    user = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True), label=_("user"))
    amount = forms.IntegerField(label=_("points"), help_text=_("Positive adds points, negative takes them, e.g. -200."))
    # One key per rendered form: submitting the same form twice adjusts once.
    key = forms.CharField(widget=forms.HiddenInput, initial=lambda: uuid.uuid4().hex, max_length=32)

    class Meta:
        model = PointsEntry
        fields = ["note"]
        labels = {"note": _("reason")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["note"].required = True

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise ValidationError(gettext("The number of points cannot be zero."))
        return amount

    def clean(self):
        data = super().clean()
        user, amount = data.get("user"), data.get("amount")
        if user is not None and amount is not None and amount < 0 and points.balance(user) + amount < 0:
            self.add_error(
                "amount",
                gettext("The balance is %(balance)s points: it cannot go below zero.")
                % {"balance": points.balance(user)},
            )
        return data


@admin.register(PointsEntry)
class PointsEntryAdmin(admin.ModelAdmin):
    """Operators only. Entries are append-only: the list is read-only; "add" records an adjustment
    through accounts.points (locked, numbered, never below zero, once per form)."""

    list_display = ["created_at", "user_email", "seq", "kind", "points", "balance_after", "order", "note"]
    list_filter = ["kind"]
    search_fields = ["account__user__email", "reference", "order__number"]
    list_select_related = ["account__user", "order"]
    show_full_result_count = False
    form = PointsAdjustmentForm

    def has_module_permission(self, request):
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_add_permission(self, request):
        return is_operator(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "amount", "note", "key"]
        return ["account", "seq", "kind", "points", "balance_after", "reference", "order", "note",
                "created_by", "created_at"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, **kwargs)

    @admin.display(description=_("user"), ordering="account__user__email")
    def user_email(self, obj):
        return obj.account.user.email

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        entry = points.move(
            user=data["user"], points=data["amount"], kind=points.Kind.ADJUSTMENT, reference=f"op-{data['key']}",
            note=data["note"], actor=request.user,
        )  # fmt: skip
        obj.pk, obj.account, obj.seq, obj.points = entry.pk, entry.account, entry.seq, entry.points
