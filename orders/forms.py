from __future__ import annotations

import re
from difflib import SequenceMatcher
from itertools import pairwise

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.phones import PhoneField, national_digits
from catalog.models import BuyerField
from kameng.templatetags.kameng import tr_html
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
    phone = PhoneField(label=_("Mobile (optional)"), required=False)
    sms_delivery = forms.BooleanField(label=_("Text me the order link when it is delivered"), required=False)
    query_secret = forms.CharField(
        label=_("Order query password (optional)"),
        max_length=40,
        required=False,
        widget=forms.PasswordInput(render_value=True),
        help_text=_(
            "To look the order up later: at least 8 characters, not only digits. Leave empty and we will give you one."
        ),
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
            # The merchant's English label and hint on the English site, the Chinese ones otherwise
            # (marked lang="zh-Hans" when they stand in for missing English).
            self.fields[self.field_name(sku_id, field)] = forms.CharField(
                label=tr_html(field, "label"),
                max_length=field.max_length,
                required=field.required,
                help_text=tr_html(field, "help_text"),
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
        secret = data.get("query_secret") or ""
        phone = national_digits(data["phone"]) if data.get("phone") else ""
        for reason in weak_secret_reasons(secret, email=data.get("email") or "", phone=phone):
            self.add_error("query_secret", reason)
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


# A chosen query secret is all that guards a guest's codes, and the per-number limits still allow a
# few guesses an hour from every address: Django's checks for account passwords, and no runs.
SECRET_MIN_LENGTH = 8
SECRET_VALIDATORS = [password_validation.CommonPasswordValidator(), password_validation.NumericPasswordValidator()]


def weak_secret_reasons(secret: str, *, email: str = "", phone: str = "") -> list[str]:
    """Why ``secret`` (a buyer's chosen order query password) is too weak; empty when it will do."""
    secret = secret.strip()
    if not secret:
        return []
    reasons = []
    if len(secret) < SECRET_MIN_LENGTH:
        reasons.append(_("It is shorter than 8 characters."))
    try:
        password_validation.validate_password(secret, password_validators=SECRET_VALIDATORS)
    except ValidationError as exc:
        reasons.extend(exc.messages)
    if _is_run(secret.lower()):
        reasons.append(_("It is a run of repeated or consecutive characters, like aaaaaaaa or abcdefgh."))
    if _similar(secret, email.strip(), phone.strip()):
        reasons.append(_("It is too close to your e-mail address or phone number."))
    return [str(reason) for reason in reasons]


def _similar(secret: str, email: str, phone: str) -> bool:
    """Django's UserAttributeSimilarityValidator test (ratio 0.7) against the e-mail, its name part and
    the phone, for a guest; and none of those (4+ characters) inside the secret."""
    secret = secret.lower()
    for value in filter(None, (email.lower(), email.partition("@")[0].lower(), phone)):
        if (len(value) >= 4 and value in secret) or SequenceMatcher(a=secret, b=value).quick_ratio() >= 0.7:
            return True
    return False


def _is_run(text: str) -> bool:
    """A short unit repeated (aaaaaaaa, abababab, abcabcabc) or one step up or down (abcdefgh, 98765432)."""
    if any(text == text[:size] * (len(text) // size) + text[: len(text) % size] for size in (1, 2, 3)):
        return True
    steps = {ord(b) - ord(a) for a, b in pairwise(text)}
    return steps in ({1}, {-1})


class LookupForm(forms.Form):
    number = forms.CharField(label=_("Order number or e-mail"), max_length=254)
    secret = forms.CharField(label=_("Order query password"), max_length=40, widget=forms.PasswordInput)

    def clean_number(self) -> str:
        """The number or e-mail in the one form limits and look-ups use: no whitespace anywhere
        (full-width spaces included), numbers upper-case, e-mails lower-case. Without it " k2412…"
        and "k2412…" were two numbers to the attempt limit and one to the look-up."""
        value = "".join(self.cleaned_data["number"].split())
        return value.lower() if "@" in value else value.upper()


class MyOrdersFilterForm(forms.Form):
    """The tab and search of "my orders" (GET). An unknown tab falls back to all orders."""

    tab = forms.CharField(required=False, max_length=16)
    q = forms.CharField(required=False, max_length=64, strip=True, label=_("Order number or product"))

    def values(self, tabs: tuple[str, ...]) -> tuple[str, str]:
        if not self.is_valid():
            return tabs[0], ""
        tab = self.cleaned_data["tab"]
        return (tab if tab in tabs else tabs[0]), self.cleaned_data["q"]
