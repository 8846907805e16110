"""Coupons (优惠券): a code the buyer types at checkout for an amount or a percentage off.

:class:`Coupon` is what operators (or a merchant, for its own goods) define; its ``used_count``
counts the uses held by unpaid orders and used by paid ones, and never goes above ``total_limit``
(marketing/coupons.py takes a use with a conditional UPDATE). :class:`CouponRedemption` is one
order's use: held when the order is placed, used when it is paid, released (and the use given
back) when the order expires, is cancelled or is refunded in full.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from accounts.models import Merchant
from catalog.models import Category, Product, Sku


def normalise_code(code: str) -> str:
    """Codes are compared without case and surrounding blanks: stored upper-case."""
    return (code or "").strip().upper()


class Coupon(models.Model):
    class Kind(models.TextChoices):
        FIXED = "fixed", _("fixed amount off")
        PERCENT = "percent", _("percentage off")

    class Scope(models.TextChoices):
        ALL = "all", _("everything")
        CATEGORY = "category", _("one category")
        PRODUCT = "product", _("one product")
        SKU = "sku", _("one denomination (SKU)")
        MERCHANT = "merchant", _("one merchant's goods")

    class FundedBy(models.TextChoices):
        PLATFORM = "platform", _("the platform")
        MERCHANT = "merchant", _("the merchant")

    code = models.CharField(_("code"), max_length=40, help_text=_("What the buyer types; letters' case is ignored."))
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.FIXED)
    amount_fen = models.PositiveIntegerField(_("amount off (fen)"), default=0, help_text=_("For a fixed amount off."))
    percent = models.PositiveSmallIntegerField(_("percent off"), default=0, help_text=_("For a percentage off: 1–100."))
    max_discount_fen = models.PositiveIntegerField(
        _("cap (fen)"), null=True, blank=True, help_text=_("The most a percentage coupon takes off; empty: no cap.")
    )
    min_spend_fen = models.PositiveIntegerField(
        _("minimum spend (fen)"), default=0, help_text=_("On the goods the coupon covers, after other discounts.")
    )
    scope = models.CharField(_("applies to"), max_length=8, choices=Scope.choices, default=Scope.ALL)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("category")
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("product")
    )
    sku = models.ForeignKey(
        Sku, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("SKU")
    )
    scope_merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("merchant of the goods"),
    )  # fmt: skip
    starts_at = models.DateTimeField(_("valid from"), null=True, blank=True)
    ends_at = models.DateTimeField(_("valid until"), null=True, blank=True)
    total_limit = models.PositiveIntegerField(_("total uses"), null=True, blank=True, help_text=_("Empty: unlimited."))
    per_user_limit = models.PositiveIntegerField(
        _("uses per buyer"), null=True, blank=True, default=1, help_text=_("Empty: unlimited.")
    )
    used_count = models.PositiveIntegerField(_("uses taken"), default=0, editable=False)
    new_users_only = models.BooleanField(_("new customers only"), default=False)
    funded_by = models.CharField(_("funded by"), max_length=8, choices=FundedBy.choices, default=FundedBy.PLATFORM)
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="coupons",
        verbose_name=_("funding merchant"), help_text=_("For a merchant-funded coupon: it covers only this merchant's goods."),  # noqa: E501
    )  # fmt: skip
    generated_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="generated",
        verbose_name=_("generated from"),
    )  # fmt: skip
    is_active = models.BooleanField(_("active"), default=True)
    # The coupon wallet (marketing/wallet.py): claimed on product pages, granted to new sign-ups.
    claimable = models.BooleanField(
        _("claimable (领券)"),
        default=False,
        help_text=_("Shown on the pages of the goods it covers, to claim into the wallet."),
    )
    claim_limit = models.PositiveIntegerField(
        _("claims in all"), null=True, blank=True, help_text=_("How many users may claim it; empty: unlimited.")
    )
    claimed_count = models.PositiveIntegerField(_("claims taken"), default=0, editable=False)
    holders_only = models.BooleanField(
        _("for holders only"), default=False,
        help_text=_("Only users holding it in their wallet (claimed or granted) may use it: trial, win-back coupons."),
    )  # fmt: skip
    grant_valid_days = models.PositiveIntegerField(
        _("valid for days after it is granted"), null=True, blank=True,
        help_text=_("A coupon in a wallet expires this many days after it was granted; empty: the coupon's own end."),
    )  # fmt: skip
    trial_for_new_users = models.BooleanField(
        _("trial coupon for new sign-ups (体验券)"), default=False, help_text=_("Granted to every new account.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        constraints = [
            models.UniqueConstraint(Upper("code"), name="coupon_code_unique_ci"),
            models.CheckConstraint(
                condition=Q(total_limit__isnull=True) | Q(used_count__lte=models.F("total_limit")),
                name="coupon_used_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(claim_limit__isnull=True) | Q(claimed_count__lte=models.F("claim_limit")),
                name="coupon_claimed_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(funded_by="platform", merchant__isnull=True)
                | Q(funded_by="merchant", merchant__isnull=False),
                name="coupon_funder_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"

    def save(self, *args, **kwargs):
        self.code = normalise_code(self.code)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        self.code = normalise_code(self.code)
        errors = {}
        if self.kind == self.Kind.FIXED and not self.amount_fen:
            errors["amount_fen"] = _("A fixed-amount coupon needs an amount.")
        if self.kind == self.Kind.PERCENT and not 1 <= self.percent <= 100:
            errors["percent"] = _("A percentage is between 1 and 100.")
        needed = {
            self.Scope.CATEGORY: "category", self.Scope.PRODUCT: "product", self.Scope.SKU: "sku",
            self.Scope.MERCHANT: "scope_merchant",
        }.get(self.scope)  # fmt: skip
        if needed and getattr(self, f"{needed}_id") is None:
            errors[needed] = _("Choose what the coupon applies to.")
        if self.funded_by == self.FundedBy.MERCHANT and self.merchant_id is None:
            errors["merchant"] = _("A merchant-funded coupon names its merchant.")
        if self.funded_by == self.FundedBy.PLATFORM:
            self.merchant = None
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The end comes after the start.")
        if self.code and Coupon.objects.filter(code__iexact=self.code).exclude(pk=self.pk).exists():
            errors["code"] = _("Another coupon has this code.")
        if errors:
            raise ValidationError(errors)


class CouponRedemption(models.Model):
    class Status(models.TextChoices):
        HELD = "held", _("held by an unpaid order")
        USED = "used", _("used")
        RELEASED = "released", _("released")

    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("coupon"))
    order = models.OneToOneField(
        "orders.Order", on_delete=models.CASCADE, related_name="coupon_redemption", verbose_name=_("order")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("buyer"),
    )  # fmt: skip
    email = models.EmailField(_("guest e-mail"), blank=True)
    amount_fen = models.PositiveIntegerField(_("discount (fen)"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.HELD)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("coupon use")
        verbose_name_plural = _("coupon uses")
        indexes = [
            models.Index(fields=["coupon", "user"], name="couponuse_by_user"),
            models.Index(fields=["coupon", "email"], name="couponuse_by_email"),
        ]

    def __str__(self) -> str:
        return f"{self.coupon.code} → {self.order_id}"
