"""Reviews in the back office: merchant staff reply to the reviews of their own products; operators
also hide and show them. Nobody edits what a buyer wrote. (Imported by catalog/admin.py.)"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.roles import is_operator
from accounts.scoping import MerchantScopedAdmin, OperatorOnlyAdmin
from catalog.models import ProductRelation, Review


@admin.register(Review)
class ReviewAdmin(MerchantScopedAdmin):
    merchant_path = "product__merchant"
    list_display = ["product", "rating", "short_comment", "buyer", "created_at", "has_reply", "is_hidden"]
    list_filter = ["rating", "is_hidden", "created_at"]
    search_fields = ["product__title", "comment"]
    list_select_related = ["product", "buyer"]
    date_hierarchy = "created_at"
    actions = ["hide", "show"]

    @admin.display(description=_("comment"))
    def short_comment(self, review: Review) -> str:
        return review.comment[:60]

    @admin.display(description=_("replied"), boolean=True)
    def has_reply(self, review: Review) -> bool:
        return bool(review.reply)

    def has_add_permission(self, request):
        return False  # buyers post reviews from their order page

    def has_delete_permission(self, request, obj=None):
        return False  # operators hide

    def get_fields(self, request, obj=None):
        fields = ["product", "buyer", "rating", "comment", "created_at", "reply", "replied_at"]
        return [*fields, "is_hidden"] if is_operator(request.user) else fields

    def get_readonly_fields(self, request, obj=None):
        return ["product", "buyer", "rating", "comment", "created_at", "replied_at", "order_item"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not is_operator(request.user):
            actions.pop("hide", None)
            actions.pop("show", None)
        return actions

    def save_model(self, request, obj, form, change):
        if "reply" in form.changed_data:
            obj.replied_at = timezone.now() if obj.reply else None
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Hide the selected reviews"))
    def hide(self, request, queryset):
        self._set_hidden(request, queryset, True)

    @admin.action(description=_("Show the selected reviews again"))
    def show(self, request, queryset):
        self._set_hidden(request, queryset, False)

    def _set_hidden(self, request, queryset, hidden: bool) -> None:
        count = 0
        for review in queryset.filter(is_hidden=not hidden):
            review.is_hidden = hidden
            review.save(update_fields=["is_hidden"])  # the product's average follows (catalog/reviews.py)
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d review changed.", "%(count)d reviews changed.", count) % {"count": count},
            messages.SUCCESS,
        )


@admin.register(ProductRelation)
class ProductRelationAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ["product", "related", "score"]
    list_select_related = ["product", "related"]
    search_fields = ["product__title"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
