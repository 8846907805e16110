"""django-allauth's hooks for Kameng."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.core.exceptions import PermissionDenied

from kameng.clientip import client_ip


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
