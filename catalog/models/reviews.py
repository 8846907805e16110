"""Reviews (UGC) and related products.

A ``Review`` is one buyer's rating (1–5) and comment on one order item of a delivered order — at
most one per item (the one-to-one key). Merchant staff reply in admin (their own products only);
operators hide a review, which then is neither shown nor counted in the product's
``rating_avg``/``rating_count`` (kept by catalog/reviews.py on every change).

A ``ProductRelation`` says "bought together": how many paid orders of the last 90 days held both
products; rebuilt by the beat task ``orders.tasks.compute_related_products``.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Review(models.Model):
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.CASCADE, related_name="reviews", verbose_name=_("product")
    )
    order_item = models.OneToOneField(
        "orders.OrderItem", on_delete=models.CASCADE, related_name="review", verbose_name=_("order item")
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews", verbose_name=_("buyer")
    )
    rating = models.PositiveSmallIntegerField(_("rating"), validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(_("comment"), max_length=1000, blank=True)
    reply = models.TextField(_("merchant reply"), max_length=1000, blank=True)
    replied_at = models.DateTimeField(_("replied"), null=True, blank=True, editable=False)
    is_hidden = models.BooleanField(
        _("hidden"), default=False, help_text=_("Hidden reviews are neither shown nor counted.")
    )
    created_at = models.DateTimeField(_("posted"), auto_now_add=True)

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["product", "-created_at", "-id"], name="review_shown_newest", condition=Q(is_hidden=False)
            )
        ]
        constraints = [
            models.CheckConstraint(condition=Q(rating__gte=1) & Q(rating__lte=5), name="review_rating_1_to_5")
        ]

    def __str__(self) -> str:
        return f"{self.product} · {self.rating}★"


class ProductRelation(models.Model):
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="relations")
    related = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="+")
    score = models.PositiveIntegerField(default=0)  # paid orders (last 90 days) holding both

    class Meta:
        verbose_name = _("bought-together relation")
        verbose_name_plural = _("bought-together relations")
        ordering = ["product", "-score", "related"]
        constraints = [models.UniqueConstraint(fields=["product", "related"], name="product_relation_once")]

    def __str__(self) -> str:
        return f"{self.product_id} → {self.related_id} ({self.score})"
