"""Forms of the account pages that are the shop's own (allauth's are configured in settings)."""

from __future__ import annotations

from allauth.account.forms import ConfirmLoginCodeForm, LoginForm, RequestLoginCodeForm, VerifyPhoneForm
from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import User


class ShopLoginForm(LoginForm):
    """allauth's sign-in form, its one field for e-mail or phone named so (allauth calls it "Login"
    when several sign-in methods are on)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["login"]
        field.label = _("E-mail or mobile number")
        field.widget.attrs["placeholder"] = _("E-mail or mobile number")
        field.widget.attrs["autocomplete"] = "username"


class RequestPhoneLoginCodeForm(RequestLoginCodeForm):
    """ "Send me a sign-in code" asks for a mobile number only: the code comes by SMS. (allauth would
    show an e-mail and a phone field side by side, either one optional; e-mail users sign in with
    their password, or reset it.)"""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields.pop("email", None)
        self.fields["phone"].required = True

    def clean_phone(self) -> str:
        """Only a verified number signs in by code: a number someone typed into an account but never
        confirmed must not let whoever holds that phone into the account. Treated as unknown (no SMS,
        the same answer: allauth's enumeration prevention)."""
        phone = super().clean_phone()
        if self._user is not None and not self._user.phone_verified:
            self._user = None
        return phone


def _sms_code_field() -> forms.CharField:
    """allauth labels it "Code", which the shop's catalogue already translates as a card code (卡号)."""
    return forms.CharField(
        label=_("Verification code"),
        widget=forms.TextInput(
            attrs={"placeholder": _("6 digits"), "autocomplete": "one-time-code", "inputmode": "numeric"}
        ),
    )


class ConfirmSmsLoginCodeForm(ConfirmLoginCodeForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"] = _sms_code_field()


class VerifyPhoneCodeForm(VerifyPhoneForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"] = _sms_code_field()


class NotificationSettingsForm(forms.ModelForm):
    class Meta:
        model = User
        fields = [
            "notify_delivery_email",
            "notify_delivery_sms",
            "notify_promotions_email",
            "notify_promotions_sms",
            "notify_price_drops",
            "show_on_leaderboard",
        ]
        labels = {
            "notify_delivery_email": _("E-mail me my codes when an order is delivered"),
            "notify_delivery_sms": _("Text me the order link when an order is delivered"),
            "notify_promotions_email": _("Promotions and coupons by e-mail"),
            "notify_promotions_sms": _("Promotions and coupons by SMS"),
            "notify_price_drops": _("E-mail me when a favourite drops in price or is back in stock"),
            "show_on_leaderboard": _("Show me (name masked) on the spending leaderboard"),
        }
