"""django-allauth's hooks for Kameng."""

from __future__ import annotations

from allauth.account import app_settings as allauth_settings
from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils.encoding import force_str
from django.utils.translation import ngettext_lazy

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
