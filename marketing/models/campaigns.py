"""Campaign pages (活动页): what an operator composes in admin — a title, a banner, a time window,
featured SKUs at special prices, a coupon to claim and the rules — and the storefront shows at
``/promotions/campaigns/<slug>/``, in the home page's banner slot and as a share image.

A campaign never prices anything itself: each ``CampaignItem`` owns one ``FlashSpecial`` (same SKU,
price, the campaign's window, cap and per-buyer limit), kept in step by marketing/campaigns.py, so the
one pricing engine (the ``flash_special`` rule) applies the price, the cap and the limit. Banners are
re-encoded at upload (never stored as sent); the rules are plain text, escaped when shown.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from marketing.models.specials import Funder


class Campaign(models.Model):
    class State(models.TextChoices):
        DISABLED = "disabled", _("Disabled")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        ENDED = "ended", _("Ended")

    title = models.CharField(_("title"), max_length=60)
    title_en = models.CharField(_("English title"), max_length=60, blank=True)
    slug = models.SlugField(
        _("slug"), max_length=60, unique=True, help_text=_("The page's address: /promotions/campaigns/<slug>/")
    )
    banner = models.ImageField(
        _("banner"),
        upload_to="campaigns/%Y/%m/",
        help_text=_("JPEG, PNG, WebP or GIF, at least 600 × 200 pixels; cropped to 3:1 and re-encoded."),
    )
    banner_small = models.ImageField(_("small banner"), upload_to="campaigns/%Y/%m/", blank=True, editable=False)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    rules = models.TextField(_("rules"), blank=True, help_text=_("Plain text; line breaks are kept."))
    rules_en = models.TextField(_("English rules"), blank=True)
    coupon = models.ForeignKey(
        "marketing.Coupon",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("coupon to claim"),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    priority = models.IntegerField(
        _("priority"), default=0, help_text=_("Higher first in the home page's banner slot.")
    )
    share_image = models.ImageField(_("share image"), upload_to="campaigns/share/", blank=True, editable=False)
    share_key = models.CharField(max_length=64, blank=True, editable=False)  # what the share image was drawn from
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-priority", "starts_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="campaign_ends_after_start"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("marketing:campaign", kwargs={"slug": self.slug})

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("The campaign must end after it starts.")})

    def state(self, now=None) -> str:
        now = now or timezone.now()
        if not self.enabled:
            return self.State.DISABLED
        if now < self.starts_at:
            return self.State.SCHEDULED
        if now < self.ends_at:
            return self.State.RUNNING
        return self.State.ENDED

    def is_running(self, now=None) -> bool:
        return self.state(now) == self.State.RUNNING


class CampaignItem(models.Model):
    """A featured SKU at a special price; ``special`` is the ``FlashSpecial`` that applies it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items", verbose_name=_("campaign"))
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    special_price_fen = models.BigIntegerField(
        _("special price (fen)"), help_text=_("The price of one unit during the campaign, in fen (1 yuan = 100 fen).")
    )
    quantity_cap = models.PositiveIntegerField(
        _("quantity cap"),
        null=True,
        blank=True,
        help_text=_("Units sold at the special price, at most; empty: no cap."),
    )
    per_buyer_limit = models.PositiveIntegerField(
        _("per-buyer limit"),
        null=True,
        blank=True,
        help_text=_("Units one buyer may buy at this price; empty: no limit."),
    )
    funded_by = models.CharField(_("funded by"), max_length=16, choices=Funder.choices, default=Funder.MERCHANT)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    special = models.OneToOneField(
        "marketing.FlashSpecial",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="campaign_item",
        verbose_name=_("flash special"),
    )

    class Meta:
        verbose_name = _("featured SKU")
        verbose_name_plural = _("featured SKUs")
        ordering = ["sort_order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "sku"], name="campaignitem_sku_once"),
            models.CheckConstraint(condition=Q(special_price_fen__gte=0), name="campaignitem_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} @ {self.special_price_fen / 100:.2f}"

    def get_additional_data(self) -> dict:
        """The audit trail files an item's changes under its campaign (kameng/audit.py)."""
        return {"parent": f"marketing.campaign:{self.campaign_id}"}

    def clean(self) -> None:
        errors = {}
        sku = self.sku if self.sku_id else None
        if sku is not None and self.special_price_fen is not None:
            if self.special_price_fen >= sku.price_fen:
                errors["special_price_fen"] = _("The special price must be below the SKU's price.")
            elif sku.cost_fen is not None and self.special_price_fen < sku.cost_fen:
                errors["special_price_fen"] = _(
                    "The special price must not be below the SKU's cost (%(cost)s fen)."
                ) % {"cost": sku.cost_fen}
        if self.special_id and self.quantity_cap is not None and self.quantity_cap < self.special.sold:
            errors["quantity_cap"] = _("The cap cannot be below the units already sold (%(sold)s).") % {
                "sold": self.special.sold
            }
        if errors:
            raise ValidationError(errors)
