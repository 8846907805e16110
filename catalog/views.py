"""Storefront pages. Thin: reads come from catalog/selectors.py, each page a constant number of queries."""

from decimal import Decimal, InvalidOperation

from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from accounts import levels
from catalog import favourites, level_prices, selectors
from catalog import home as home_content
from catalog.models import Tag

PAGE_SIZE = 24


def home(request):
    """Carousel, campaign banners and the home sections (catalog/home.py): everything but the
    shopper's favourites and the running flash specials comes from one cached read."""
    data = home_content.page_data()
    sections = data["sections"]
    shown = [product for section in sections for product in section.products]
    return render(
        request,
        "catalog/home.html",
        {
            "categories": selectors.storefront_categories(data["categories"]),
            "slides": home_content.running_slides(data["slides"]),
            "sections": sections,
            "shown_products": shown,
            "favourite_ids": favourites.favourite_ids(user=request.user, product_ids=[p.pk for p in shown]),
        },
    )


def category(request, slug: str):
    categories = selectors.active_categories()
    current = next((c for c in categories if c.slug == slug), None)
    if current is None:
        raise Http404
    products = selectors.listed_products().filter(category_id__in=selectors.descendant_ids(current, categories))
    # Tag chips: the tags of this category's products; ?tag=<slug> narrows the list to one of them.
    tags = selectors.tags_of(products)
    active_tag = next((tag for tag in tags if tag.slug == request.GET.get("tag")), None)
    if active_tag is not None:
        products = products.filter(tags=active_tag)
    page = Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = selectors.attach_tags(page.object_list)
    parent = next((c for c in categories if c.pk == current.parent_id), None)
    return render(
        request,
        "catalog/category.html",
        {
            "category": current,
            "parent": parent,
            "categories": selectors.storefront_categories(categories),
            "page": page,
            "tags": tags,
            "active_tag": active_tag,
            "favourite_ids": _favourites_on(request, page),
        },
    )


def tag(request, slug: str):
    """Every listed product with one tag (/tags/<slug>/)."""
    found = Tag.objects.filter(slug=slug).first()
    if found is None:
        raise Http404
    products = selectors.listed_products().filter(tags=found)
    page = Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = selectors.attach_tags(page.object_list)
    return render(
        request,
        "catalog/tag.html",
        {
            "tag": found,
            "categories": selectors.storefront_categories(),
            "page": page,
            "favourite_ids": _favourites_on(request, page),
        },
    )


def product(request, slug: str):
    found = selectors.product_for_page(slug=slug)
    if found is None:
        raise Http404
    skus = found.active_skus
    first_available = next((sku for sku in skus if sku.stock_level != selectors.StockLevel.SOLD_OUT), None)
    # A member sees their level's price of each denomination, the list price struck through
    # (the same prices the member_level pricing rule charges). Two queries, signed in only.
    level = level_prices.buyer_level(request.user)
    prices = level_prices.prices_for(level=level, skus=skus)
    for sku in skus:
        sku.level_price_fen = prices.get(sku.pk)
    context = {
        "product": found, "skus": skus, "selected": first_available, "StockLevel": selectors.StockLevel,
        "level": level if prices else None, "level_name": levels.level_name(level),
        "is_favourite": bool(favourites.favourite_ids(user=request.user, product_ids=[found.pk])),
    }  # fmt: skip
    return render(request, "catalog/product.html", context)


def _yuan_to_fen(value: str | None) -> int | None:
    try:
        amount = Decimal((value or "").strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount > 10**7:
        return None
    return int(amount * 100)


def search(request):
    query = request.GET.get("q", "").strip()[:60]
    categories = selectors.active_categories()
    current = next((c for c in categories if c.slug == request.GET.get("c")), None)
    sort = request.GET.get("sort", "relevance")
    sort = sort if sort in selectors.SEARCH_SORTS else "relevance"
    filters = {
        "category_ids": selectors.descendant_ids(current, categories) if current else None,
        "min_price_fen": _yuan_to_fen(request.GET.get("min")),
        "max_price_fen": _yuan_to_fen(request.GET.get("max")),
        "in_stock": request.GET.get("in_stock") == "1",
        "sort": sort,
    }
    page = selectors.search_page(query=query, page_number=request.GET.get("page"), per_page=PAGE_SIZE, **filters)
    suggestions = [] if page.object_list or not query else _suggestions()
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "catalog/search.html",
        {
            "query": query,
            "page": page,
            "categories": selectors.storefront_categories(categories),
            "all_categories": categories,
            "current_category": current,
            "filters": filters,
            "min": request.GET.get("min", ""),
            "max": request.GET.get("max", ""),
            "sort": sort,
            "sorts": SORT_LABELS,
            "page_query": params.urlencode(),
            "suggestions": suggestions,
            "favourite_ids": favourites.favourite_ids(
                user=request.user, product_ids=[p.pk for p in [*page.object_list, *suggestions]]
            ),
        },
    )


def _suggestions() -> list:
    """Best sellers for an empty result, cached 5 minutes: the sales ranking reads the whole
    catalogue's sales, too much for every search that finds nothing."""
    found = cache.get("search:suggestions")
    if found is None:
        found = list(selectors.best_selling(limit=4))
        cache.set("search:suggestions", found, 300)
    return found


SORT_LABELS = [
    ("relevance", _("Best match")),
    ("sales", _("Best selling")),
    ("price", _("Price: low to high")),
    ("price_desc", _("Price: high to low")),
    ("newest", _("Newest")),
]


def _favourites_on(request, page) -> set[int]:
    """Which products of a list page the shopper has favourited (one query, none for a guest)."""
    return favourites.favourite_ids(user=request.user, product_ids=[product.pk for product in page.object_list])
