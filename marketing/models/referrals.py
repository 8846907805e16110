"""Invite a friend (分销): the operators' programme (one row), each user's invite code, who invited
whom (first touch, two levels), and the commission earned on invitees' paid orders.

Money in fen. A commission's life: ``pending`` (earned at payment, booked in the order's ledger once
the order is split, held for ``hold_days``) → ``available`` (credited to the beneficiary's wallet) or
``clawed_back`` (refunded in full). Partial refunds lower ``clawed_back_fen`` step by step
(marketing/referrals.py has the arithmetic and the postings)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ReferralProgram(models.Model):
    """The operators' rules: one row (pk 1), edited in admin, read at every use."""

    enabled = models.BooleanField(_("enabled"), default=False)
    level1_rate = models.DecimalField(
        _("level-1 rate"), max_digits=5, decimal_places=4, default=Decimal("0.05"),
        help_text=_("Share of an invitee's paid goods order the inviter earns, e.g. 0.05 for 5%."),
    )  # fmt: skip
    level2_rate = models.DecimalField(
        _("level-2 rate"), max_digits=5, decimal_places=4, default=Decimal("0"),
        help_text=_("Share the inviter's own inviter earns; 0 turns the second level off."),
    )  # fmt: skip
    cookie_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"), default=30,
        help_text=_("How long after opening an invite link a sign-up is still attributed to the inviter."),
    )  # fmt: skip
    hold_days = models.PositiveSmallIntegerField(
        _("hold (days)"), default=7,
        help_text=_("Days after payment before commission becomes available in the wallet (after-sales window)."),
    )  # fmt: skip
    min_withdrawal_fen = models.PositiveIntegerField(_("minimum withdrawal (fen)"), default=1000)
    withdrawal_fee_percent = models.DecimalField(
        _("withdrawal fee (%)"), max_digits=5, decimal_places=2, default=Decimal("0"),
        help_text=_("Percent of the amount withdrawn kept as a fee, e.g. 1.5; rounded half up to the fen."),
    )  # fmt: skip
    withdrawal_fee_fixed_fen = models.PositiveIntegerField(
        _("fixed withdrawal fee (fen)"), default=0, help_text=_("Added to the percentage fee.")
    )
    withdrawal_fee_min_fen = models.PositiveIntegerField(
        _("minimum withdrawal fee (fen)"), default=0, help_text=_("The fee is never lower than this.")
    )
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("invite programme")
        verbose_name_plural = _("invite programme")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="referral_program_single_row"),
            models.CheckConstraint(
                condition=Q(level1_rate__gte=0, level1_rate__lt=1, level2_rate__gte=0, level2_rate__lt=1),
                name="referral_rates_in_range",
            ),
            models.CheckConstraint(
                condition=Q(withdrawal_fee_percent__gte=0, withdrawal_fee_percent__lt=100),
                name="referral_withdrawal_fee_in_range",
            ),
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)

    @classmethod
    def load(cls) -> ReferralProgram:
        """The row, or the defaults (off) until an operator saves it: one SELECT, never a write, so
        pages that read it keep a constant query count."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class InviteCode(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invite_code", verbose_name=_("user")
    )
    code = models.CharField(_("code"), max_length=12, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("invite code")
        verbose_name_plural = _("invite codes")

    def __str__(self) -> str:
        return self.code


class Referral(models.Model):
    """Who brought whom: one per invitee, fixed at sign-up (first touch)."""

    invitee = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referral", verbose_name=_("invitee")
    )
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="invitees", verbose_name=_("inviter")
    )
    level2_inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="second_level_invitees",
        null=True, blank=True, verbose_name=_("level-2 inviter"),
    )  # fmt: skip
    attributed_at = models.DateTimeField(_("attributed"), auto_now_add=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        indexes = [models.Index(fields=["inviter", "-attributed_at"], name="referral_by_inviter")]
        constraints = [
            models.CheckConstraint(condition=~Q(invitee=F("inviter")), name="referral_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.inviter_id} → {self.invitee_id}"


class Commission(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("commission", "pending")
        AVAILABLE = "available", pgettext_lazy("commission", "available")
        CLAWED_BACK = "clawed_back", pgettext_lazy("commission", "clawed back")

    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="commissions", verbose_name=_("order")
    )
    beneficiary = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="commissions", verbose_name=_("beneficiary")
    )
    level = models.PositiveSmallIntegerField(_("level"), choices=[(1, _("level 1")), (2, _("level 2"))])
    rate = models.DecimalField(_("rate"), max_digits=5, decimal_places=4)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    clawed_back_fen = models.BigIntegerField(_("clawed back (fen)"), default=0)
    # Clawed back from a wallet that no longer held it: the beneficiary owes it; netted from their
    # next commissions when those become available (``netted_fen`` on those).
    owed_fen = models.BigIntegerField(_("owed (fen)"), default=0)
    netted_fen = models.BigIntegerField(_("netted against debts (fen)"), default=0)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    booked = models.BooleanField(_("booked in the ledger"), default=False)
    available_at = models.DateTimeField(_("available from"))
    created_at = models.DateTimeField(_("earned"), auto_now_add=True)

    class Meta:
        verbose_name = _("commission")
        verbose_name_plural = _("commissions")
        constraints = [
            models.UniqueConstraint(fields=["order", "level"], name="commission_once_per_order_level"),
            models.CheckConstraint(
                condition=Q(amount_fen__gte=0, clawed_back_fen__gte=0, clawed_back_fen__lte=F("amount_fen"))
                & Q(owed_fen__gte=0, netted_fen__gte=0),
                name="commission_amounts_in_range",
            ),
        ]
        indexes = [
            models.Index(fields=["beneficiary", "status"], name="commission_by_beneficiary"),
            models.Index(fields=["status", "available_at"], name="commission_due", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"C{self.pk}"

    @property
    def reference(self) -> str:
        return f"C{self.pk}"

    @property
    def kept_fen(self) -> int:
        return self.amount_fen - self.clawed_back_fen
