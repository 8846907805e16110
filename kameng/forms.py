"""Form fields shared by the storefront and the back office."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from kameng.money import yuan_str_to_fen


class YuanField(forms.Field):
    """An amount typed in yuan ("12.50", "-3", "¥8"), cleaned to integer fen. Never a float."""

    widget = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "maxlength": 16})
    default_error_messages = {"invalid": _("Enter an amount in yuan with at most two decimals.")}

    def to_python(self, value):
        text = str(value or "").replace("¥", "").replace(",", "").strip()
        if not text:
            return None
        if len(text) > 16:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            return yuan_str_to_fen(text)
        except (ValueError, ArithmeticError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
