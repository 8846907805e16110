"""The coupon wallet (券包): coupons granted to a user, and the programmes that grant them.

A :class:`CouponGrant` is one coupon in one user's wallet: claimed on a product page (领券), a trial
coupon (体验券) given at sign-up or by an operator's list, a win-back coupon, or granted by an
operator. A user holds at most one grant of a coupon from every source but win-back (a database
constraint: a claim is taken once however many times it is clicked at once); win-back grants the
same coupon again after its programme's period. ``order`` is the order that used the grant (taken
with a conditional UPDATE when the order is placed, given back when it is released or refunded in
full), ``expires_at`` the end of its validity when the coupon says "N days after it is granted".

A :class:`WinBackProgramme` is an operator's rule: users who bought at least once and not for
``idle_days`` get ``coupon``, at most once every ``period_days`` (marketing/wallet.py, run by the
beat task ``marketing.tasks.win_back``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from marketing.models.coupons import Coupon


class CouponGrant(models.Model):
    class Source(models.TextChoices):
        CLAIMED = "claimed", _("claimed")
        TRIAL = "trial", _("trial coupon")
        WINBACK = "winback", _("win-back")
        OPERATOR = "operator", _("granted by an operator")

    coupon = models.ForeignKey(Coupon, on_delete=models.CASCADE, related_name="grants", verbose_name=_("coupon"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coupon_grants", verbose_name=_("user")
    )
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    programme = models.ForeignKey(
        "marketing.WinBackProgramme", on_delete=models.SET_NULL, null=True, blank=True, related_name="grants",
        verbose_name=_("win-back programme"),
    )  # fmt: skip
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("used by order"),
    )  # fmt: skip

    class Meta:
        verbose_name = _("coupon in a wallet")
        verbose_name_plural = _("coupons in wallets")
        constraints = [
            models.UniqueConstraint(
                fields=["coupon", "user"], condition=~Q(source="winback"), name="coupongrant_once_per_user"
            ),
        ]
        indexes = [models.Index(fields=["user", "coupon"], name="coupongrant_by_user")]

    def __str__(self) -> str:
        return f"{self.coupon.code} → {self.user_id}"


class WinBackProgramme(models.Model):
    name = models.CharField(_("name"), max_length=100)
    idle_days = models.PositiveIntegerField(
        _("days without a purchase"), default=60, help_text=_("Users whose last paid order is older than this.")
    )
    coupon = models.ForeignKey(
        Coupon, on_delete=models.PROTECT, related_name="winback_programmes", verbose_name=_("coupon to grant")
    )
    period_days = models.PositiveIntegerField(
        _("days between grants"), default=90, help_text=_("A user gets this coupon at most once in this many days.")
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("win-back programme")
        verbose_name_plural = _("win-back programmes")

    def __str__(self) -> str:
        return self.name
