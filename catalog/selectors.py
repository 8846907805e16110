"""Reads of the catalog shared by the storefront pages and the back office.

Each returns a fixed number of queries, whatever the size of the catalog or the stock.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    IntegerField,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.allocation import for_sale_parts, for_sale_q
from catalog.models import CardCode, Category, Product, Sku, Tag


def skus_with_stock(queryset: QuerySet[Sku] | None = None, *, now=None) -> QuerySet[Sku]:
    """SKUs annotated with ``available_count`` (sellable now), ``reserved_count`` (held by unpaid
    orders), ``sold_count`` (sales), in one query."""
    now = now or timezone.now()
    queryset = Sku.objects.all() if queryset is None else queryset
    return queryset.annotate(
        available_count=Count("codes", filter=for_sale_q("codes__", now=now)),
        reserved_count=Count("codes", filter=Q(codes__status=CardCode.Status.RESERVED, codes__reserved_until__gte=now)),
        # A single-use code is sold once; a reusable one counts every sale (times_sold).
        sold_count=Coalesce(Sum("codes__times_sold"), 0),
    )


class StockLevel:
    IN_STOCK = "in_stock"
    LOW = "low"
    SOLD_OUT = "sold_out"


def stock_level(*, available: int, threshold: int, reusable: bool = False) -> str:
    if available <= 0:
        return StockLevel.SOLD_OUT
    if not reusable and available <= threshold:
        return StockLevel.LOW
    return StockLevel.IN_STOCK


def active_categories() -> list[Category]:
    """Every shown category, parents before children, each with ``.children`` filled (one query)."""
    categories = list(Category.objects.filter(is_active=True).order_by("sort_order", "id"))
    by_id = {category.pk: category for category in categories}
    for category in categories:
        category.children_list = []
    for category in categories:
        parent = by_id.get(category.parent_id) if category.parent_id else None
        if parent is not None:
            parent.children_list.append(category)
    return categories


def storefront_categories(categories: list[Category] | None = None) -> list[Category]:
    """Top-level shown categories (children reachable through ``.children_list``)."""
    categories = active_categories() if categories is None else categories
    return [category for category in categories if category.parent_id is None]


def descendant_ids(category: Category, categories: list[Category]) -> list[int]:
    """``category`` and every shown category below it, from an :func:`active_categories` list."""
    by_id = {c.pk: c for c in categories}
    root = by_id.get(category.pk, category)
    ids, stack = [], [root]
    while stack:
        current = stack.pop()
        ids.append(current.pk)
        stack.extend(getattr(current, "children_list", []))
    return ids


def listed_products(*, now=None) -> QuerySet[Product]:
    """Listed products of active merchants with at least one active SKU, in one query, annotated:

    * ``min_price_fen`` — lowest active SKU price;
    * ``in_stock`` — whether any active SKU has a code that can be sold now (automatic delivery):
      an EXISTS, which stops at the first code, not a count of the whole stock;
    * ``sold_30d`` — sales in the last 30 days (sold codes; a reusable code counts each sale).
    """
    now = now or timezone.now()
    codes = CardCode.objects.filter(sku__product=OuterRef("pk"), sku__is_active=True)
    available, expired = for_sale_parts(now=now)
    in_stock = Exists(codes.filter(available)) | Exists(codes.filter(expired))
    sold = (
        CardCode.objects.filter(sku__product=OuterRef("pk"), sold_at__gte=now - timedelta(days=30))
        .order_by()
        .values("sku__product")
        .annotate(n=Sum("times_sold"))
        .values("n")
    )
    return (
        Product.objects.listed()
        .select_related("category")
        .annotate(
            min_price_fen=Min("skus__price_fen", filter=Q(skus__is_active=True)),
            in_stock=ExpressionWrapper(in_stock, output_field=BooleanField()),
            sold_30d=Coalesce(Subquery(sold), 0),
        )
        .filter(min_price_fen__isnull=False)
        .order_by("sort_order", "-id")  # Meta.ordering is dropped from GROUP BY queries
    )


def best_selling(*, limit: int = 8) -> QuerySet[Product]:
    # sold_30d is an annotation of listed_products, which django-stubs cannot see through.
    sold = listed_products().filter(sold_30d__gt=0)  # type: ignore[misc]
    return sold.order_by("-sold_30d", "sort_order", "-id")[:limit]  # type: ignore[misc]


# Product pages count a SKU's for-sale codes up to this many ("1000+ left" beyond): the count reads
# at most that many index entries, so a SKU with 100,000 codes costs what one with 1,000 does.
STOCK_COUNT_CAP = 1000


class _CountOf(Subquery):
    """``COUNT(*)`` of the rows a (possibly sliced) subquery returns: a LIMIT inside bounds the work."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) AS counted)"
    output_field = IntegerField()


def for_sale_count(*, now=None, cap: int | None = None) -> CombinedExpression:
    """Expression: the for-sale codes of the SKU in the outer query, as two correlated subqueries
    (:func:`for_sale_parts`, each read through its partial index). Neither reads a sold code, so the
    cost does not grow with what the SKU has sold; with ``cap`` each stops after ``cap`` rows, so it
    does not grow with the stock either (the result is then at least ``cap`` when there are more)."""
    counts = []
    for part in for_sale_parts(now=now):
        codes = CardCode.objects.filter(part, sku=OuterRef("pk")).order_by().values("pk")
        counts.append(_CountOf(codes if cap is None else codes[:cap]))
    return counts[0] + counts[1]


def product_for_page(*, slug: str) -> Product | None:
    """The product with its active SKUs, each annotated with ``available_count`` (up to
    ``STOCK_COUNT_CAP``; ``count_capped`` when there are at least that many) and ``stock_level``
    (4 queries: product, SKUs, images, tags)."""
    product = (
        Product.objects.listed()
        .select_related("category", "merchant")
        .prefetch_related(
            Prefetch(
                "skus",
                queryset=Sku.objects.filter(is_active=True).annotate(
                    available_count=for_sale_count(cap=STOCK_COUNT_CAP)
                ),
                to_attr="active_skus",
            ),
            "images",
            "tags",
        )
        .filter(slug=slug)
        .first()
    )
    if product is not None:
        automatic = product.delivery_mode == Product.DeliveryMode.AUTOMATIC
        for sku in product.active_skus:
            sku.count_capped = sku.available_count >= STOCK_COUNT_CAP
            sku.available_count = min(sku.available_count, STOCK_COUNT_CAP)
            sku.stock_level = (
                stock_level(
                    available=sku.available_count, threshold=sku.low_stock_threshold, reusable=sku.reusable_code
                )
                if automatic
                else StockLevel.IN_STOCK  # manual and upstream delivery do not draw on card codes
            )
    return product


SEARCH_SORTS = ("relevance", "sales", "price", "price_desc", "newest")


def search_products(
    *,
    query: str,
    category_ids: list[int] | None = None,
    min_price_fen: int | None = None,
    max_price_fen: int | None = None,
    in_stock: bool = False,
    sort: str = "relevance",
    fuzzy: bool = False,
    now=None,
) -> QuerySet[Product]:
    """The ids' query of a search: listed products with an active SKU matching ``query``
    (catalog/search.py: names, category, SKU labels, synonyms, pinyin and initials; typo-tolerant on
    PostgreSQL), filtered and sorted, reading only the product row and correlated EXISTS /
    per-product subqueries — not the card-page annotations of :func:`listed_products`, which
    :func:`search_page` adds for the 24 products of a page only. The price range keeps products
    with an active denomination in it."""
    from catalog import search

    now = now or timezone.now()
    skus = Sku.objects.filter(product=OuterRef("pk"), is_active=True)
    products = search.matching(Product.objects.listed().filter(Exists(skus)), query, fuzzy=fuzzy)
    if category_ids:
        products = products.filter(category_id__in=category_ids)
    if min_price_fen is not None or max_price_fen is not None:
        in_range = skus
        if min_price_fen is not None:
            in_range = in_range.filter(price_fen__gte=min_price_fen)
        if max_price_fen is not None:
            in_range = in_range.filter(price_fen__lte=max_price_fen)
        products = products.filter(Exists(in_range))
    if in_stock:
        codes = CardCode.objects.filter(sku__product=OuterRef("pk"), sku__is_active=True)
        available, expired = for_sale_parts(now=now)
        products = products.filter(
            Exists(codes.filter(available))
            | Exists(codes.filter(expired))
            | ~Q(delivery_mode=Product.DeliveryMode.AUTOMATIC)  # manual delivery does not draw on codes
        )
    if sort in ("price", "price_desc"):
        lowest = skus.order_by("price_fen").values("price_fen")[:1]
        products = products.annotate(lowest_fen=Subquery(lowest))
        order: tuple[str, ...] = ("lowest_fen" if sort == "price" else "-lowest_fen", "-relevance", "-id")
    elif sort == "sales":
        sold = (
            CardCode.objects.filter(sku__product=OuterRef("pk"), sold_at__gte=now - timedelta(days=30))
            .order_by()
            .values("sku__product")
            .annotate(n=Sum("times_sold"))
            .values("n")
        )
        products = products.annotate(sold=Coalesce(Subquery(sold), 0))
        order = ("-sold", "-relevance", "-id")
    elif sort == "newest":
        order = ("-created_at", "-id")
    else:
        order = ("-relevance", "sort_order", "-id")
    return products.order_by(*order)


def search_page(*, page_number, per_page: int, **criteria) -> Page:
    """A page of :func:`search_products`: the count and the page's ids on the lean query (and, when
    nothing matched, the same with ``fuzzy``), then the page's products with
    :func:`listed_products`' annotations (3 queries, 4 for a typo; whatever the matches)."""
    from catalog import search

    paginator = Paginator(search_products(**criteria).values_list("pk", flat=True), per_page)
    if not paginator.count and search.is_postgres() and search.clean_query(criteria.get("query", "")):
        # Nothing holds the words: look for close ones (typos), through the trigram index.
        paginator = Paginator(search_products(**criteria, fuzzy=True).values_list("pk", flat=True), per_page)
    page = paginator.get_page(page_number)
    ids = list(page.object_list)
    by_id = {product.pk: product for product in listed_products().filter(pk__in=ids)} if ids else {}
    page.object_list = [by_id[pk] for pk in ids if pk in by_id]  # type: ignore[misc]  # ids → products
    return page


def attach_tags(products) -> list[Product]:
    """Fill ``tag_list`` on each of ``products`` (a page of a listing) in one query; the product card
    shows it as chips. Cards of lists that did not call this show no chips (and run no query)."""
    products = list(products)
    if not products:
        return products
    through = Product.tags.through
    rows = (
        through.objects.filter(product_id__in=[p.pk for p in products])
        .select_related("tag")
        .order_by("tag__sort_order", "tag_id")
    )
    by_product: dict[int, list[Tag]] = {}
    for row in rows:
        by_product.setdefault(row.product_id, []).append(row.tag)
    for product in products:
        product.tag_list = by_product.get(product.pk, [])
    return products


def tags_of(products: QuerySet[Product]) -> list[Tag]:
    """The tags on any of ``products`` (the filter chips of a category page), in one query."""
    return list(
        Tag.objects.filter(Exists(products.filter(tags=OuterRef("pk")).order_by())).order_by("sort_order", "id")
    )
