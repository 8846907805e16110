"""Merchant scoping for Django admin: merchant staff see only their own objects.

Use :class:`MerchantScopedAdmin` for every ModelAdmin of merchant-owned data and set
``merchant_path`` to the lookup from the model to its Merchant (``"merchant"``,
``"product__merchant"``, ``"sku__product__merchant"``…). It enforces the scope in

* the change list and every queryset the admin builds (``get_queryset``),
* object URLs: another merchant's object id answers **404** (not the admin's usual redirect),
* foreign-key and many-to-many choices in forms (only the merchant's own products, SKUs…),
* admin actions, which run on ``get_queryset`` and therefore only ever see scoped rows.

Operators (see accounts/roles.py) see everything.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.roles import is_operator, merchant_ids

# Foreign keys to these models are narrowed to the merchant's own rows in admin forms.
SCOPED_TARGETS = {
    "accounts.merchant": "pk",
    "catalog.product": "merchant",
    "catalog.sku": "product__merchant",
    "catalog.importbatch": "merchant",
    "catalog.cardcode": "sku__product__merchant",
}


def scope_queryset(queryset, *, user, merchant_path: str):
    ids = merchant_ids(user)
    if ids is None:
        return queryset
    lookup = f"{merchant_path}__in" if merchant_path != "pk" else "pk__in"
    return queryset.filter(**{lookup: ids})


class MerchantScopedAdmin(admin.ModelAdmin):
    merchant_path = "merchant"

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), user=request.user, merchant_path=self.merchant_path)

    def _ensure_visible(self, request, object_id) -> None:
        if object_id is None:
            return
        try:
            visible = self.get_queryset(request).filter(pk=unquote(object_id)).exists()
        except (ValueError, ValidationError):  # "abc" for an integer key: no such object either
            visible = False
        if not visible:
            raise Http404

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._ensure_visible(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._ensure_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._ensure_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return _narrow(field, db_field, request)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        return _narrow(field, db_field, request)


class OperatorOnlyAdmin:
    """For model admins of the platform's own rows (points, levels, programmes, favourites): operators
    see and change them; merchant staff do not see them at all."""

    def has_module_permission(self, request):
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_add_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_change_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_operator(request.user)


class ReadOnlyAdminMixin:
    """For model admins and inlines that only show rows (ledgers, logs, alerts): no add, change or
    delete for anyone; who may view is the admin's own rule."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MerchantScopedInline:
    """Mixin for inlines: narrows their foreign-key choices the same way."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return _narrow(field, db_field, request)


def _narrow(field, db_field, request):
    if field is None or not hasattr(field, "queryset"):
        return field
    path = SCOPED_TARGETS.get(db_field.related_model._meta.label_lower)
    if path is not None:
        field.queryset = scope_queryset(field.queryset, user=request.user, merchant_path=path)
    return field
