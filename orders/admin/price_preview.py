"""The price preview per role in admin (orders/price_preview.py computes it): operators only; linked from
the SKU's change page. Anyone else gets 403; an unknown SKU 404."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from accounts.roles import is_operator
from catalog.models import Sku
from orders import price_preview


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=999, initial=5)


def price_preview_view(model_admin, request, sku_id: int):
    if not is_operator(request.user):
        raise PermissionDenied
    sku = get_object_or_404(Sku.objects.select_related("product", "product__merchant"), pk=sku_id)
    form = QuantityForm(request.GET if "quantity" in request.GET else None)
    quantity = form.cleaned_data["quantity"] if form.is_bound and form.is_valid() else 5
    if not form.is_bound:
        form = QuantityForm(initial={"quantity": quantity})
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Sku._meta,
        "title": _("Price preview per role"),
        "subtitle": str(sku),
        "sku": sku,
        "form": form,
        "quantity": quantity,
        "prices": price_preview.preview(sku=sku, quantity=quantity),
    }
    return TemplateResponse(request, "admin/orders/price_preview.html", context)
