"""The back office's sign-in form: Django's, with failures limited like allauth's ``login_failed``.

Staff can reveal and export card codes and refund orders, so guessing their passwords must not be
free. Every sign-in attempt is counted *before* the password is checked, per account (the e-mail
typed, lower-cased) and per client IP (:mod:`kameng.clientip`), in the cache (Redis in production, so
the counts hold across web processes); a successful sign-in gives its count back, so only failures
add up (kameng/limits.py). When a limit is spent the form says so and nothing is checked — the right
password does not sign in either until the window has passed. ``ADMIN_LOGIN_RATE_LIMITS`` sets the
limits (default ``10/m/ip,30/h/ip,5/15m/key``).

A limit per account lets anyone who knows a staff e-mail keep that account from signing in through
this page; that is the price of stopping a guesser who spreads tries over many addresses. The
shop's own sign-in (``/accounts/login/``, allauth's ``login_failed``) counts separately.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import ngettext

from kameng import limits


class AdminLoginForm(AdminAuthenticationForm):
    def clean(self):
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if username is None or not password:
            return super().clean()
        attempt = limits.attempt(
            self.request,
            action="admin_login",
            limits=[(settings.ADMIN_LOGIN_RATE_LIMITS, username.strip().lower())],
        )
        if not attempt.allowed:
            minutes = attempt.wait_minutes
            raise ValidationError(
                ngettext(
                    "Too many failed sign-in attempts. Please wait %(minutes)d minute and try again.",
                    "Too many failed sign-in attempts. Please wait %(minutes)d minutes and try again.",
                    minutes,
                )
                % {"minutes": minutes},
                code="too_many_attempts",
            )
        cleaned = super().clean()  # a wrong password raises here and the attempt stays counted
        attempt.rollback()
        return cleaned
