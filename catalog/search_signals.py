"""Keeps ``Product.search_text`` (catalog/search.py) current: rebuilt after a product, one of its
SKUs or its category (or parent category) is saved, after a SKU is deleted, and after a product's
tags or a tag's names change (the tag names are words of the text: :func:`tag_names`)."""

from __future__ import annotations

from django.db.models import Q
from django.db.models.signals import m2m_changed, post_delete, post_save

from catalog import search
from catalog.models import Category, Product, Sku, Tag


def on_product_saved(sender, instance: Product, raw=False, **kwargs) -> None:
    if not raw:
        search.refresh_products(Product.objects.filter(pk=instance.pk))


def on_sku_changed(sender, instance: Sku, raw=False, **kwargs) -> None:
    if not raw:
        search.refresh_products(Product.objects.filter(pk=instance.product_id))


def on_category_saved(sender, instance: Category, raw=False, created=False, **kwargs) -> None:
    if not raw and not created:
        search.refresh_products(Product.objects.filter(Q(category=instance) | Q(category__parent=instance)))


def tag_names(product) -> list[str]:
    return [name for tag in product.tags.all() for name in (tag.name, tag.name_en)]


def on_tags_changed(sender, instance, action: str, reverse: bool, pk_set=None, **kwargs) -> None:
    if not action.startswith("post_"):
        return
    if reverse:  # tag.products.add(...): the products named, or every product of the tag on clear
        products = Product.objects.filter(pk__in=pk_set) if pk_set else Product.objects.filter(tags=instance)
    else:
        products = Product.objects.filter(pk=instance.pk)
    search.refresh_products(products)


def on_tag_saved(sender, instance: Tag, raw=False, created=False, **kwargs) -> None:
    if not raw and not created:
        search.refresh_products(Product.objects.filter(tags=instance))


def connect() -> None:
    if tag_names not in search.TEXT_PROVIDERS:
        search.TEXT_PROVIDERS.append(tag_names)
    m2m_changed.connect(on_tags_changed, sender=Product.tags.through, dispatch_uid="catalog.search_tags")
    post_save.connect(on_tag_saved, sender=Tag, dispatch_uid="catalog.search_tag")
    post_save.connect(on_product_saved, sender=Product, dispatch_uid="catalog.search_product")
    post_save.connect(on_sku_changed, sender=Sku, dispatch_uid="catalog.search_sku")
    post_delete.connect(on_sku_changed, sender=Sku, dispatch_uid="catalog.search_sku_deleted")
    post_save.connect(on_category_saved, sender=Category, dispatch_uid="catalog.search_category")
