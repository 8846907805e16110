"""allauth login stages, adjusted for the shop."""

from __future__ import annotations

from allauth.account.stages import PhoneVerificationStage


class SignupPhoneVerificationStage(PhoneVerificationStage):
    """A number given at sign-up is verified by SMS before the sign-up finishes (allauth's stage).

    allauth would also stop every later sign-in of an account whose number is unverified until a
    code sent to it comes back. The shop keeps numbers typed before verification existed (accounts
    migration 0005) and numbers of sign-ups abandoned at the code: a wrong or old number must not
    lock its account out. An unverified number has no power meanwhile — it does not sign in by
    code (accounts.forms.RequestPhoneLoginCodeForm), claim orders or receive delivery texts — and
    the owner verifies it from the account (/accounts/phone/change/)."""

    def handle(self):
        if self.login.user and not self.login.signup:
            return None, True
        return super().handle()
