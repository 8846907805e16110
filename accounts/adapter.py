"""django-allauth's hooks for Kameng."""

from __future__ import annotations

from allauth.account import app_settings as allauth_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.core.exceptions import RateLimited
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.encoding import force_str
from django.utils.translation import ngettext_lazy

from accounts import phones, signals, sms
from kameng import limits
from kameng.clientip import client_ip

# Django 5.2 reworded MinimumLengthValidator's error (%d where it had %(min_length)d) and its zh-hans
# catalogue still has only the old wording, so a Chinese sign-up showed this one error in English.
# Marked here so the shop's catalogue (LOCALE_PATHS, consulted before Django's) translates it.
PASSWORD_TOO_SHORT = ngettext_lazy(
    "This password is too short. It must contain at least %d character.",
    "This password is too short. It must contain at least %d characters.",
    "min_length",
)


class AccountAdapter(DefaultAccountAdapter):
    def get_client_ip(self, request) -> str:
        """allauth's rate limits (login failures, sign-up, password reset) count per client IP:
        the one helper's answer, which honours the trusted proxies."""
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine client IP address")
        return ip

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        """allauth keys its per-account ``login_failed`` limit on ``request.get_host()`` plus the login,
        so every Host header (``shop:1``, ``shop:2``… all pass ALLOWED_HOSTS) got a fresh budget — and
        staff signed in here reach the admin. One shop: the login alone."""
        if credentials.get("phone"):
            # One count per number however it was typed (138 0013 8000, +86 138…).
            return phones.normalise(credentials["phone"]) or credentials["phone"].strip()
        login = credentials.get("email", credentials.get("username", "")) or ""
        return login.strip().lower()

    def format_email_subject(self, subject: str) -> str:
        """allauth prefixes its subjects with ``[<site name>]``; without django.contrib.sites that is
        the request's host (``[127.0.0.1:8000] …``). The shop's name instead, in the active language,
        unless ACCOUNT_EMAIL_SUBJECT_PREFIX sets one explicitly."""
        prefix = allauth_settings.EMAIL_SUBJECT_PREFIX
        if prefix is None:
            prefix = f"[{force_str(settings.SHOP_NAME)}] "
        return prefix + force_str(subject)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Give allauth's e-mails (templates/account/email/) the shop's name and address, which they
        say instead of the host the request came in on."""
        context = {"shop_name": settings.SHOP_NAME, "site_url": settings.SITE_URL, **context}
        super().send_mail(template_prefix, email, context)

    # -- phone numbers (allauth's phone support: sign-in by SMS code, verification) ----------------------
    # Numbers are E.164 everywhere (accounts/phones.py); the user's one number lives on the User row
    # (``phone``, ``phone_verified``), unique when set.

    def phone_form_field(self, **kwargs):
        """Numbers as people type them (138 0013 8000, +852 …), validated by libphonenumber and
        cleaned to E.164; allauth's own field wants the ``+`` form typed."""
        return phones.PhoneField(**kwargs)

    def get_login_stages(self) -> list[str]:
        """allauth's stages, its phone verification replaced by the sign-up-only one (accounts/stages.py)."""
        ours = {"allauth.account.stages.PhoneVerificationStage": "accounts.stages.SignupPhoneVerificationStage"}
        return [ours.get(stage, stage) for stage in super().get_login_stages()]

    def get_phone(self, user):
        if not user.phone:
            return None
        return str(user.phone), user.phone_verified

    def set_phone(self, user, phone: str, verified: bool) -> None:
        user.phone = phones.normalise(phone) or ""
        user.phone_verified = bool(verified and user.phone)
        user.save(update_fields=["phone", "phone_verified"])
        if user.phone_verified:
            self._phone_verified(user, str(user.phone))

    def set_phone_verified(self, user, phone: str) -> None:
        """The code sent to ``phone`` came back. Sign-in by code and sign-up verify the number the
        account already has; a change (/accounts/phone/change/) keeps the old number until the new one
        is verified, so this is where it becomes the account's. Listeners (orders: guest orders
        placed with it) hear of it once the row is committed."""
        self.set_phone(user, phone, True)

    @staticmethod
    def _phone_verified(user, number: str) -> None:
        transaction.on_commit(lambda: signals.phone_verified.send(sender=type(user), user=user, phone=number))

    def get_user_by_phone(self, phone: str):
        number = phones.normalise(phone)
        if not number:
            return None
        from accounts.models import User

        # Any holder, active or not: the number is unique in the database, and allauth uses this
        # to refuse a number already taken (an inactive holder is refused at sign-in by allauth).
        return User.objects.filter(phone=number).first()

    def send_verification_code_sms(self, user, phone: str, code: str, **kwargs) -> None:
        """Every code SMS (sign-in, verification, resend) passes one per-number and per-IP limit,
        ``SMS_CODE_RATE_LIMITS``, on top of allauth's per-flow limits: a resend or a new flow does
        not start a fresh budget, and each message costs the shop money. Refused: RateLimited, which
        allauth's resend buttons turn into a message and the middleware into a 429 page."""
        number = phones.normalise(phone) or phone
        request = self.request or context.request
        attempt = limits.attempt(request, action="sms_code", limits=[(settings.SMS_CODE_RATE_LIMITS, number)])
        if not attempt.allowed:
            raise RateLimited
        sms.send(number, "verification", {"code": code})
