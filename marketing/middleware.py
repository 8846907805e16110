"""First-touch attribution of invite links: ``?invite=CODE`` on any page leaves a signed cookie for
the programme's window; a later sign-up reads it (marketing/receivers.py). An existing valid cookie is
never replaced (first touch wins), and a signed-in user's own code is ignored."""

from __future__ import annotations

from django.core import signing

from marketing import referrals
from marketing.models import InviteCode, ReferralProgram


class InviteMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        code = referrals.normalise(request.GET.get("invite", "")) if request.method == "GET" else ""
        if code:
            self._remember(request, response, code)
        return response

    def _remember(self, request, response, code: str) -> None:
        program = ReferralProgram.load()
        if not program.enabled:
            return
        window = program.cookie_days * 86400
        try:
            request.get_signed_cookie(referrals.COOKIE, salt=referrals.COOKIE_SALT, max_age=window)
            return  # a valid first touch is kept
        except (KeyError, signing.BadSignature):
            pass
        owner = InviteCode.objects.filter(code=code).values_list("user_id", flat=True).first()
        if owner is None:
            return
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.pk == owner:
            return
        response.set_signed_cookie(
            referrals.COOKIE, code, salt=referrals.COOKIE_SALT, max_age=window, httponly=True, samesite="Lax",
            secure=request.is_secure(),
        )  # fmt: skip
