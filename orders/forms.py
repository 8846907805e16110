from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from catalog.models import BuyerField
from orders import cart

PATTERNS = {
    BuyerField.Kind.NUMBER: (re.compile(r"^\d+$"), _("Digits only.")),
    BuyerField.Kind.QQ: (re.compile(r"^[1-9]\d{4,11}$"), _("A QQ number has 5 to 12 digits.")),
    BuyerField.Kind.PHONE: (re.compile(r"^1\d{10}$"), _("Enter an 11-digit mobile number.")),
}


class AddToCartForm(forms.Form):
    """What the product page posts. A bad quantity is an error of its own (the view names the
    product's limits), not taken for a missing denomination."""

    sku = forms.IntegerField(min_value=1)
    quantity = forms.CharField(max_length=12, required=False)

    def clean_quantity(self) -> int:
        quantity = cart.parse_quantity(self.data.get("quantity", "1"))  # absent: one
        if quantity is None or not 1 <= quantity <= cart.MAX_QUANTITY:
            raise forms.ValidationError(_("The quantity must be a whole number."), code="quantity")
        return quantity

    def sku_id(self) -> int | None:
        return self.cleaned_data.get("sku")


class CheckoutForm(forms.Form):
    email = forms.EmailField(label=_("E-mail for your codes"))
    phone = forms.CharField(label=_("Mobile (optional)"), max_length=20, required=False)
    query_secret = forms.CharField(
        label=_("Order query password (optional)"),
        max_length=40,
        min_length=6,
        required=False,
        widget=forms.PasswordInput(render_value=True),
        help_text=_("To look the order up later. Leave empty and we will give you one."),
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(
        self,
        *args,
        buyer_fields: list[tuple[int, BuyerField]] = (),
        signed_in: bool = False,
        pay_choices: list[tuple[str, str]] = (),
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if signed_in:
            del self.fields["query_secret"]
        self.buyer_fields = list(buyer_fields)
        for sku_id, field in self.buyer_fields:
            self.fields[self.field_name(sku_id, field)] = forms.CharField(
                label=field.label, max_length=field.max_length, required=field.required, help_text=field.help_text
            )
        # Paying is chosen here, the last choice before the button, so placing the order goes
        # straight to the gateway. Left out of the POST (or with nothing configured) the buyer
        # chooses on the order page instead.
        if pay_choices:
            self.fields["pay_with"] = forms.ChoiceField(
                label=_("Pay with"), widget=forms.RadioSelect, required=False,
                choices=list(pay_choices), initial=pay_choices[0][0],
            )  # fmt: skip

    @staticmethod
    def field_name(sku_id: int, field: BuyerField) -> str:
        return f"input_{sku_id}_{field.key}"

    def clean(self):
        data = super().clean()
        for sku_id, field in self.buyer_fields:
            name = self.field_name(sku_id, field)
            value = (data.get(name) or "").strip()
            if value and field.kind in PATTERNS:
                pattern, message = PATTERNS[field.kind]
                if not pattern.match(value):
                    self.add_error(name, message)
            elif value and field.kind == BuyerField.Kind.EMAIL:
                try:
                    forms.EmailField().clean(value)
                except forms.ValidationError as exc:
                    self.add_error(name, exc)
        return data

    def buyer_inputs(self, sku_id: int) -> dict:
        return {
            field.key: (self.cleaned_data.get(self.field_name(sid, field)) or "").strip()
            for sid, field in self.buyer_fields
            if sid == sku_id
        }


class LookupForm(forms.Form):
    number = forms.CharField(label=_("Order number or e-mail"), max_length=254)
    secret = forms.CharField(label=_("Order query password"), max_length=40, widget=forms.PasswordInput)
