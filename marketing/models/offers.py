"""满减 spend tiers, the first-order discount and quantity tiers (marketing/offers.py prices them).

* ``SpendTierPromotion`` + ``SpendTier``: "满100减10, 满200减25" — the best tier reached applies, on
  the whole order or on each merchant's part of it (``scope``). A merchant-funded one belongs to one
  merchant and counts only that merchant's goods; a platform-funded one may belong to none.
* ``FirstOrderOffer``: a fixed amount or a percentage (with a cap) off a buyer's first paid order.
  ``FirstOrderRedemption`` is taken when such an order is placed, one per person: the user, the
  order's e-mail and its phone are each unique among held/used redemptions (partial unique
  indexes), so a guest cannot take it again with the same e-mail under a new phone, nor two tabs
  at once.
* ``QuantityTier``: "buy 5+, ¥X each" for one SKU.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Merchant
from catalog.models import Sku
from orders.models import Order


class FundedBy(models.TextChoices):
    PLATFORM = "platform", _("platform")
    MERCHANT = "merchant", _("merchant")


class OfferWindowQuerySet(models.QuerySet):
    def running(self, now=None):
        """Active and within their window at ``now``."""
        now = now or timezone.now()
        return self.filter(is_active=True, starts_at__lte=now).filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))


class SpendTierPromotion(models.Model):
    class Scope(models.TextChoices):
        ORDER = "order", _("whole order")
        MERCHANT = "merchant", _("per merchant")

    name = models.CharField(_("name"), max_length=100)
    scope = models.CharField(_("scope"), max_length=8, choices=Scope.choices, default=Scope.ORDER)
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, null=True, blank=True, related_name="spend_tier_promotions",
        verbose_name=_("merchant"),
        help_text=_("Only this merchant's goods count. Required when the merchant funds it."),
    )  # fmt: skip
    funded_by = models.CharField(_("funded by"), max_length=8, choices=FundedBy.choices, default=FundedBy.PLATFORM)
    starts_at = models.DateTimeField(_("starts"), default=timezone.now)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OfferWindowQuerySet.as_manager()

    class Meta:
        verbose_name = _("spend-tier promotion (满减)")
        verbose_name_plural = _("spend-tier promotions (满减)")
        ordering = ["-starts_at", "pk"]
        constraints = [
            # A merchant pays only for a discount on its own goods.
            models.CheckConstraint(
                condition=~Q(funded_by="merchant") | Q(merchant__isnull=False),
                name="spendtier_merchant_funded_has_merchant",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")), name="spendtier_window_ordered"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SpendTier(models.Model):
    promotion = models.ForeignKey(SpendTierPromotion, on_delete=models.CASCADE, related_name="tiers")
    threshold_fen = models.BigIntegerField(_("spend at least (fen)"))
    discount_fen = models.BigIntegerField(_("discount (fen)"))

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["threshold_fen"]
        constraints = [
            models.UniqueConstraint(fields=["promotion", "threshold_fen"], name="spendtier_threshold_unique"),
            models.CheckConstraint(
                condition=Q(discount_fen__gt=0) & Q(discount_fen__lt=F("threshold_fen")),
                name="spendtier_discount_below_threshold",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.threshold_fen}-{self.discount_fen}"

    def get_additional_data(self) -> dict:
        """The audit trail (kameng/audit.py) shows a tier's changes in its promotion's history."""
        return {"parent": f"marketing.spendtierpromotion:{self.promotion_id}"}


class FirstOrderOffer(models.Model):
    class Kind(models.TextChoices):
        FIXED = "fixed", _("fixed amount")
        PERCENT = "percent", _("percentage")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.FIXED)
    amount_fen = models.BigIntegerField(_("amount off (fen)"), default=0, help_text=_("For a fixed amount."))
    percent = models.PositiveSmallIntegerField(_("percent off"), default=0, help_text=_("For a percentage."))
    cap_fen = models.BigIntegerField(
        _("at most (fen)"), null=True, blank=True, help_text=_("The most a percentage takes off; empty: no cap.")
    )
    funded_by = models.CharField(_("funded by"), max_length=8, choices=FundedBy.choices, default=FundedBy.PLATFORM)
    starts_at = models.DateTimeField(_("starts"), default=timezone.now)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OfferWindowQuerySet.as_manager()

    class Meta:
        verbose_name = _("first-order discount")
        verbose_name_plural = _("first-order discounts")
        ordering = ["-starts_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="fixed") & Q(amount_fen__gt=0))
                | (Q(kind="percent") & Q(percent__gt=0) & Q(percent__lte=100)),
                name="firstorder_amount_fits_kind",
            ),
            models.CheckConstraint(
                condition=Q(cap_fen__isnull=True) | Q(cap_fen__gt=0), name="firstorder_cap_positive"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")), name="firstorder_window_ordered"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class FirstOrderRedemption(models.Model):
    """The first-order discount taken by one order, for the person behind it (user, e-mail, phone)."""

    class Status(models.TextChoices):
        HELD = "held", _("held (awaiting payment)")
        USED = "used", _("used")
        RELEASED = "released", _("released")
        # Its order was not paid in time, and another order of the person was paid with the discount.
        REVOKED = "revoked", _("revoked: used by another order")

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="first_order_redemption")
    offer = models.ForeignKey(FirstOrderOffer, on_delete=models.PROTECT, related_name="redemptions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True)
    email = models.CharField(_("e-mail"), max_length=254, blank=True)  # lower-cased
    phone = models.CharField(_("phone"), max_length=20, blank=True)  # E.164
    amount_fen = models.BigIntegerField(_("discount (fen)"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.HELD)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("first-order redemption")
        verbose_name_plural = _("first-order redemptions")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(status__in=["held", "used"]) & Q(user__isnull=False),
                name="firstorder_one_per_user",
            ),
            models.UniqueConstraint(
                fields=["email"], condition=Q(status__in=["held", "used"]) & ~Q(email=""),
                name="firstorder_one_per_email",
            ),
            models.UniqueConstraint(
                fields=["phone"], condition=Q(status__in=["held", "used"]) & ~Q(phone=""),
                name="firstorder_one_per_phone",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.order_id}: {self.status}"


class QuantityTier(models.Model):
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="quantity_tiers", verbose_name=_("SKU"))
    min_quantity = models.PositiveIntegerField(_("from quantity"))
    unit_price_fen = models.BigIntegerField(_("unit price (fen)"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("quantity tier")
        verbose_name_plural = _("quantity tiers")
        ordering = ["sku", "min_quantity"]
        constraints = [
            models.UniqueConstraint(fields=["sku", "min_quantity"], name="quantitytier_unique_quantity"),
            models.CheckConstraint(condition=Q(min_quantity__gte=2), name="quantitytier_min_quantity_at_least_2"),
            models.CheckConstraint(condition=Q(unit_price_fen__gt=0), name="quantitytier_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} ×{self.min_quantity}+"
