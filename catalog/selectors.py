"""Reads of the catalog shared by the storefront pages and the back office.

Each returns a fixed number of queries, whatever the size of the catalog or the stock.
"""

from __future__ import annotations

from django.db.models import Count, Min, Prefetch, Q, QuerySet
from django.utils import timezone

from catalog.models import CardCode, Category, Product, Sku


def for_sale_q(prefix: str = "", *, now=None) -> Q:
    """Q for codes that can be sold now: available, or reserved past their deadline.

    ``prefix`` is the path from the queried model to CardCode, e.g. ``"codes__"`` from Sku.
    """
    now = now or timezone.now()
    return Q(**{f"{prefix}status": CardCode.Status.AVAILABLE}) | Q(
        **{f"{prefix}status": CardCode.Status.RESERVED, f"{prefix}reserved_until__lt": now}
    )


def skus_with_stock(queryset: QuerySet[Sku] | None = None, *, now=None) -> QuerySet[Sku]:
    """SKUs annotated with ``available_count``, ``reserved_count``, ``sold_count`` (one query)."""
    now = now or timezone.now()
    queryset = Sku.objects.all() if queryset is None else queryset
    return queryset.annotate(
        available_count=Count("codes", filter=for_sale_q("codes__", now=now)),
        reserved_count=Count("codes", filter=Q(codes__status=CardCode.Status.RESERVED, codes__reserved_until__gte=now)),
        sold_count=Count("codes", filter=Q(codes__status=CardCode.Status.SOLD)),
    )


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
