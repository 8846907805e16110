"""What is for sale: categories, products and their denominations (SKUs).

Money is integer fen (分) everywhere. Card codes, import batches and stock alerts arrive with the
catalog issue; the SKU already carries the fields they need (threshold, reusable flag).
"""

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import Merchant


class Category(models.Model):
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children", verbose_name=_("parent")
    )
    name = models.CharField(_("name"), max_length=60)
    name_en = models.CharField(_("English name"), max_length=60, blank=True)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    is_active = models.BooleanField(_("shown"), default=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name


class ProductQuerySet(models.QuerySet):
    def listed(self):
        return self.filter(status=Product.Status.LISTED, merchant__status=Merchant.Status.ACTIVE)


class Product(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        LISTED = "listed", _("listed")
        DELISTED = "delisted", _("delisted")

    class DeliveryMode(models.TextChoices):
        AUTOMATIC = "automatic", _("automatic card codes")
        MANUAL = "manual", _("manual service")
        UPSTREAM = "upstream", _("upstream supplier")

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="products", verbose_name=_("merchant")
    )
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products", verbose_name=_("category")
    )
    title = models.CharField(_("title"), max_length=120)
    title_en = models.CharField(_("English title"), max_length=120, blank=True)
    slug = models.SlugField(_("slug"), max_length=120, unique=True)
    summary = models.CharField(_("summary"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    delivery_mode = models.CharField(
        _("delivery mode"), max_length=16, choices=DeliveryMode.choices, default=DeliveryMode.AUTOMATIC
    )
    is_featured = models.BooleanField(_("featured"), default=False)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sort_order", "-id"]
        indexes = [models.Index(fields=["status", "category"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("catalog:product", kwargs={"slug": self.slug})

    def display_title(self, language: str) -> str:
        return self.title_en if language == "en" and self.title_en else self.title


class Sku(models.Model):
    """One denomination of a product ("100元", "30天"), priced in fen."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="skus", verbose_name=_("product"))
    label = models.CharField(_("denomination"), max_length=40)
    face_value_fen = models.BigIntegerField(_("face value (fen)"), default=0)
    price_fen = models.BigIntegerField(_("price (fen)"))
    cost_fen = models.BigIntegerField(_("cost (fen)"), null=True, blank=True)
    is_active = models.BooleanField(_("on sale"), default=True)
    low_stock_threshold = models.PositiveIntegerField(_("low-stock threshold"), default=10)
    reusable_code = models.BooleanField(
        _("reusable code"), default=False, help_text=_("One code may be sold any number of times.")
    )
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["sort_order", "price_fen", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price_fen__gt=0), name="sku_price_positive"),
            models.CheckConstraint(condition=Q(face_value_fen__gte=0), name="sku_face_value_not_negative"),
            models.CheckConstraint(
                condition=Q(cost_fen__isnull=True) | Q(cost_fen__gte=0), name="sku_cost_not_negative"
            ),
            models.UniqueConstraint(fields=["product", "label"], name="sku_label_unique_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.product} · {self.label}"
