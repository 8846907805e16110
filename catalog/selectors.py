"""Reads of the catalog shared by the storefront pages. Each returns a fixed number of queries."""

from __future__ import annotations

from django.db.models import Min, Prefetch, Q, QuerySet

from catalog.models import Category, Product, Sku


def storefront_categories() -> QuerySet[Category]:
    return Category.objects.filter(is_active=True, parent__isnull=True)


def listed_products() -> QuerySet[Product]:
    """Listed products of active merchants, with their lowest active price, in one query."""
    return (
        Product.objects.listed()
        .select_related("category")
        .annotate(min_price_fen=Min("skus__price_fen", filter=Q(skus__is_active=True)))
        .filter(min_price_fen__isnull=False)
        .order_by("sort_order", "-id")  # Meta.ordering is dropped from GROUP BY queries
    )


def product_for_page(*, slug: str) -> Product | None:
    return (
        Product.objects.listed()
        .select_related("category", "merchant")
        .prefetch_related(Prefetch("skus", queryset=Sku.objects.filter(is_active=True)))
        .filter(slug=slug)
        .first()
    )


def search_products(*, query: str) -> QuerySet[Product]:
    query = query.strip()[:60]
    if not query:
        return listed_products().none()
    return listed_products().filter(
        Q(title__icontains=query) | Q(title_en__icontains=query) | Q(summary__icontains=query)
    )
