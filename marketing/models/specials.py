"""Flash specials (限时特价/秒杀): a special price for one SKU between two times, for at most
``quantity_cap`` units, at most ``per_buyer_limit`` units per buyer.

``sold`` counts the units held or sold at the special price; it is only changed by
marketing/specials.py under the special's row lock (a conditional UPDATE ``sold + q <= cap``), so
the cap holds however many checkouts race. One ``SpecialRedemption`` per order and special records
what an order took, for whom (the signed-in buyer, else the order's normalised e-mail) and whether it
is held (unpaid), used (paid) or released (expired, cancelled or fully refunded: back in ``sold``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Funder(models.TextChoices):
    MERCHANT = "merchant", _("Merchant")
    PLATFORM = "platform", _("Platform")


class FlashSpecial(models.Model):
    sku = models.ForeignKey(
        "catalog.Sku", on_delete=models.PROTECT, related_name="flash_specials", verbose_name=_("SKU")
    )
    special_price_fen = models.BigIntegerField(
        _("special price (fen)"), help_text=_("The price of one unit during the special, in fen (1 yuan = 100 fen).")
    )
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    quantity_cap = models.PositiveIntegerField(
        _("quantity cap"), help_text=_("Units sold at the special price, at most.")
    )
    per_buyer_limit = models.PositiveIntegerField(
        _("per-buyer limit"), default=1, help_text=_("Units one buyer (account or guest e-mail) may buy at this price.")
    )
    sold = models.PositiveIntegerField(_("sold"), default=0, editable=False)
    funded_by = models.CharField(_("funded by"), max_length=16, choices=Funder.choices, default=Funder.MERCHANT)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("flash special")
        verbose_name_plural = _("flash specials")
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["sku", "ends_at"], name="flashspecial_sku_ends")]
        constraints = [
            models.CheckConstraint(condition=Q(sold__lte=F("quantity_cap")), name="flashspecial_sold_within_cap"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="flashspecial_ends_after_start"),
            models.CheckConstraint(condition=Q(special_price_fen__gte=0), name="flashspecial_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} @ {self.special_price_fen / 100:.2f}"

    def clean(self) -> None:
        errors = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The special must end after it starts.")
        if self.sku_id and self.special_price_fen is not None and self.special_price_fen >= self.sku.price_fen:
            errors["special_price_fen"] = _("The special price must be below the SKU's price.")
        if self.quantity_cap is not None and self.quantity_cap < self.sold:
            errors["quantity_cap"] = _("The cap cannot be below the units already sold.")
        if errors:
            raise ValidationError(errors)

    @property
    def left(self) -> int:
        return max(0, self.quantity_cap - self.sold)

    def is_running(self, now=None) -> bool:
        now = now or timezone.now()
        return self.active and self.starts_at <= now < self.ends_at


class SpecialRedemption(models.Model):
    class Status(models.TextChoices):
        HELD = "held", _("Held")
        USED = "used", _("Used")
        RELEASED = "released", _("Released")

    special = models.ForeignKey(FlashSpecial, on_delete=models.PROTECT, related_name="redemptions")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="special_redemptions")
    quantity = models.PositiveIntegerField(_("quantity"))
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # "user:<id>" or "email:<normalised e-mail>": the per-buyer limit counts by it.
    buyer_key = models.CharField(_("buyer"), max_length=260)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.HELD)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("special redemption")
        verbose_name_plural = _("special redemptions")
        constraints = [models.UniqueConstraint(fields=["special", "order"], name="specialredemption_once_per_order")]
        indexes = [models.Index(fields=["special", "buyer_key"], name="specialredemption_buyer")]

    def __str__(self) -> str:
        return f"{self.special_id} × {self.quantity} ({self.status})"
