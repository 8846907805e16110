"""Keeps ``Product.search_text`` (catalog/search.py) current: rebuilt after a product, one of its
SKUs or its category (or parent category) is saved, and after a SKU is deleted."""

from __future__ import annotations

from django.db.models import Q
from django.db.models.signals import post_delete, post_save

from catalog import search
from catalog.models import Category, Product, Sku


def on_product_saved(sender, instance: Product, raw=False, **kwargs) -> None:
    if not raw:
        search.refresh_products(Product.objects.filter(pk=instance.pk))


def on_sku_changed(sender, instance: Sku, raw=False, **kwargs) -> None:
    if not raw:
        search.refresh_products(Product.objects.filter(pk=instance.product_id))


def on_category_saved(sender, instance: Category, raw=False, created=False, **kwargs) -> None:
    if not raw and not created:
        search.refresh_products(Product.objects.filter(Q(category=instance) | Q(category__parent=instance)))


def connect() -> None:
    post_save.connect(on_product_saved, sender=Product, dispatch_uid="catalog.search_product")
    post_save.connect(on_sku_changed, sender=Sku, dispatch_uid="catalog.search_sku")
    post_delete.connect(on_sku_changed, sender=Sku, dispatch_uid="catalog.search_sku_deleted")
    post_save.connect(on_category_saved, sender=Category, dispatch_uid="catalog.search_category")
