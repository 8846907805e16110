"""Phone numbers: one normal form, E.164 (``+8613800138000``), for storage and every comparison.

People type numbers every way (``138 0013 8000``, ``+86-138…``, ``008613800138000``); a number
without a country prefix is read in ``PHONENUMBER_DEFAULT_REGION`` (CN). Only numbers that
libphonenumber considers *valid* (a real numbering range, not merely the right length) are kept,
so a typo fails at the form, not when the SMS gateway refuses it.
"""

from __future__ import annotations

import phonenumbers
from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from phonenumber_field.formfields import PhoneNumberField


def normalise(raw: str | None, *, region: str | None = None) -> str | None:
    """``raw`` in E.164, or None when it is empty or not a valid number."""
    text = (str(raw) if raw is not None else "").strip()
    if not text:
        return None
    if text.startswith("00"):  # international prefix as dialled from China and Europe
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region or settings.PHONENUMBER_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_digits(e164: str) -> str:
    """``+8613800138000`` → ``13800138000``: the digits people know their number by."""
    try:
        return str(phonenumbers.parse(str(e164), None).national_number)
    except phonenumbers.NumberParseException:
        return ""


def masked(e164: str) -> str:
    """``+86 138****8000``: enough for the owner to recognise, not for anyone else to use."""
    text = str(e164)
    if len(text) < 8:
        return "****"
    return f"{text[:-8]}****{text[-4:]}"


class PhoneField(PhoneNumberField):
    """A form field that accepts a number as people type it and cleans to an E.164 *string*
    (what allauth's phone flows pass around and compare)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label", _("Mobile number"))
        kwargs.setdefault(
            "widget",
            forms.TextInput(
                attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel", "placeholder": _("e.g. 138 0013 8000")}
            ),
        )
        super().__init__(*args, **kwargs)
        self.error_messages["invalid"] = _("Enter a valid mobile number, e.g. 138 0013 8000 or +852 5123 4567.")

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return ""
        return value.as_e164
