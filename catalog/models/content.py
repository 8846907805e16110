"""Catalog content beyond the product itself: tags (分类标签).

Operators manage the tags; merchants put existing tags on their own products (``Product.tags``).
Product images and their thumbnails are in catalog/images.py; English content is the ``*_en``
fields shown by the ``tr`` template filter (kameng/templatetags/kameng.py).
"""

from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=30)
    name_en = models.CharField(_("English name"), max_length=30, blank=True)
    slug = models.SlugField(_("slug"), max_length=40, unique=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("catalog:tag", kwargs={"slug": self.slug})
