"""What the order admins share: merchant scoping through an order's items, read-only inlines,
the confirm-with-a-note page of actions, and file downloads."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.http import FileResponse, Http404
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext_lazy as _

from accounts.roles import merchant_ids
from accounts.scoping import MerchantScopedAdmin, ReadOnlyAdminMixin
from catalog.models import Product
from kameng.money import fen_to_yuan_str
from orders.models import OrderItem

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
AUTOMATIC = Product.DeliveryMode.AUTOMATIC  # items of any other mode wait for the merchant


def yuan(fen: int | None) -> str:
    return "" if fen is None else f"¥{fen_to_yuan_str(int(fen))}"


def has_item_of(ids: list[int], order_ref: str = "pk") -> Exists:
    return Exists(OrderItem.objects.filter(order=OuterRef(order_ref), merchant_id__in=ids))


def awaiting_manual(order_ref: str = "pk", merchant_ids_: list[int] | None = None) -> Exists:
    items = OrderItem.objects.filter(order=OuterRef(order_ref)).exclude(delivery_mode=AUTOMATIC)
    if merchant_ids_ is not None:
        items = items.filter(merchant_id__in=merchant_ids_)
    return Exists(items)


class OrderScopedAdmin(MerchantScopedAdmin):
    """MerchantScopedAdmin for rows reached through an order: scoped with EXISTS, no duplicates."""

    order_ref = "pk"  # from the model to the order's id

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        ids = merchant_ids(request.user)
        if ids is None:
            return queryset
        return queryset.filter(has_item_of(ids, self.order_ref))

    # Read-only: no add, no delete, no edit form; "change" remains for the actions and the
    # decision / manual-delivery forms, which go through the services.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)


def readonly_inline_permissions(parent_perm: str):
    """A read-only inline that whoever may view the parent (``parent_perm``) sees."""

    class Permissions(ReadOnlyAdminMixin):
        def has_view_permission(self, request, obj=None):
            return request.user.has_perm(parent_perm)

    return Permissions


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False)

    def __init__(self, *args, note_required: bool = False, note_label=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["note"].required = note_required
        if note_label:
            self.fields["note"].label = note_label


def confirm_with_note(
    modeladmin, request, queryset, *, title, note_required, note_label, apply, intro="", form_class=NoteForm,
    form_kwargs=None,
):  # fmt: skip
    """An action's confirmation page with a note (and the form's other fields); calls ``apply(note)``
    once confirmed, or ``apply(note, cleaned_data)`` for a form with more fields than the note."""
    confirmed = request.POST.get("confirm") == "yes"
    form = form_class(
        request.POST if confirmed else None, note_required=note_required, note_label=note_label, **(form_kwargs or {})
    )
    if confirmed and form.is_valid():
        note = form.cleaned_data["note"].strip()
        apply(note) if form_class is NoteForm else apply(note, form.cleaned_data)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.opts,
        "title": title,
        "intro": intro,
        "objects": list(queryset[:200]),
        "count": queryset.count(),
        "form": form,
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/orders/confirm_action.html", context)


def changeable_object(modeladmin, request, object_id):
    """The object behind one of an admin's own form views, if the user may change it (403) and
    sees it in their scoped list (404)."""
    if not modeladmin.has_change_permission(request):
        raise PermissionDenied
    obj = modeladmin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404
    return obj


def download(file, filename: str) -> FileResponse:
    response = FileResponse(file, as_attachment=True, filename=filename, content_type=XLSX_CONTENT_TYPE)
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response
