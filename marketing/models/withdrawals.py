"""Commission withdrawal (提现) and commission rates per member level.

* :class:`LevelCommissionRate` — operators override the programme's level-1/level-2 rates for the
  inviters of one member level (the inviter's level decides; ``marketing/referrals.py``).
* :class:`Withdrawal` — a user's request to take commission out of their wallet to their Alipay
  account. ``amount_fen`` leaves the wallet when it is asked for (held); the payee receives
  ``amount_fen − fee_fen``; a rejection gives ``amount_fen`` back. ``marketing/withdrawals.py`` has
  the rules, the ledger postings and the payout.

Statuses: ``requested`` → ``approved`` (an operator approved; the payout task runs) → ``paid``;
``approved`` → ``failed`` (the gateway refused or did not answer: error recorded, retryable with the
same ``out_biz_no``) → ``approved`` again on retry; ``requested``/``failed`` → ``paid`` (marked
paid offline with a reference) or ``rejected`` (with a reason; the amount goes back to the wallet).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kameng.money import fen_to_yuan_str


class LevelCommissionRate(models.Model):
    level = models.OneToOneField(
        "accounts.MemberLevel", on_delete=models.CASCADE, related_name="commission_rate_override",
        verbose_name=_("member level"),
    )  # fmt: skip
    level1_rate = models.DecimalField(
        _("level-1 rate"), max_digits=5, decimal_places=4,
        help_text=_("Share of an invitee's paid goods order an inviter of this level earns, e.g. 0.08 for 8%."),
    )  # fmt: skip
    level2_rate = models.DecimalField(
        _("level-2 rate"), max_digits=5, decimal_places=4,
        help_text=_("Share an inviter of this level earns on the orders of their invitees' invitees."),
    )  # fmt: skip
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("commission rate of a member level")
        verbose_name_plural = _("commission rates of member levels")
        constraints = [
            models.CheckConstraint(
                condition=Q(level1_rate__gte=0, level1_rate__lt=1, level2_rate__gte=0, level2_rate__lt=1),
                name="level_commission_rates_in_range",
            ),
        ]

    def __str__(self) -> str:
        return str(self.level)


class Withdrawal(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", pgettext_lazy("withdrawal", "requested")
        APPROVED = "approved", pgettext_lazy("withdrawal", "approved, paying")
        FAILED = "failed", pgettext_lazy("withdrawal", "payout failed")
        PAID = "paid", pgettext_lazy("withdrawal", "paid")
        REJECTED = "rejected", pgettext_lazy("withdrawal", "rejected")

    class Method(models.TextChoices):
        ALIPAY = "alipay", _("Alipay transfer")
        OFFLINE = "offline", _("paid offline")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="withdrawals", verbose_name=_("user")
    )
    # The form's one-time key: a double click sends the same key, and the database keeps one request.
    request_key = models.CharField(_("request key"), max_length=40)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    fee_fen = models.BigIntegerField(_("fee (fen)"), default=0)
    alipay_account = models.CharField(_("Alipay account"), max_length=100)
    real_name = models.CharField(_("real name"), max_length=50)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED)
    method = models.CharField(_("paid by"), max_length=8, choices=Method.choices, blank=True)
    reason = models.CharField(_("reason for rejection"), max_length=200, blank=True)
    offline_reference = models.CharField(_("offline payment reference"), max_length=100, blank=True)
    gateway_order_id = models.CharField(_("Alipay transfer number"), max_length=64, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    # The last failure may have moved money (no answer, busy, processing): only a retry is allowed.
    outcome_unknown = models.BooleanField(_("outcome unknown"), default=False)
    attempts = models.PositiveSmallIntegerField(_("payout attempts"), default=0)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("decided by"),
    )  # fmt: skip
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    # When the payout task was last queued: the sweeper re-queues an approved one left behind.
    queued_at = models.DateTimeField(_("payout queued"), null=True, blank=True)

    class Meta:
        verbose_name = _("commission withdrawal")
        verbose_name_plural = _("commission withdrawals")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "request_key"], name="withdrawal_once_per_key"),
            models.CheckConstraint(
                condition=Q(amount_fen__gt=0, fee_fen__gte=0, fee_fen__lt=F("amount_fen")),
                name="withdrawal_amounts_in_range",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="withdrawal_by_user")]

    def __str__(self) -> str:
        return f"{self.out_biz_no} ¥{fen_to_yuan_str(self.amount_fen)}"

    @property
    def out_biz_no(self) -> str:
        """Our number at Alipay: fixed for the request, so a retry can never pay twice."""
        return f"WD{self.pk:010d}"

    @property
    def payee_fen(self) -> int:
        return self.amount_fen - self.fee_fen
