from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from catalog import selectors
from catalog.models import Category

PAGE_SIZE = 24


def home(request):
    products = selectors.listed_products()
    return render(
        request,
        "catalog/home.html",
        {
            "categories": selectors.storefront_categories(),
            "featured": products.filter(is_featured=True)[:8],
            "latest": products.order_by("-created_at")[:PAGE_SIZE],
        },
    )


def category(request, slug: str):
    current = get_object_or_404(Category, slug=slug, is_active=True)
    products = selectors.listed_products().filter(category=current)
    page = Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "catalog/category.html",
        {"category": current, "categories": selectors.storefront_categories(), "page": page},
    )


def product(request, slug: str):
    found = selectors.product_for_page(slug=slug)
    if found is None:
        raise Http404
    return render(request, "catalog/product.html", {"product": found, "skus": list(found.skus.all())})


def search(request):
    query = request.GET.get("q", "")
    page = Paginator(selectors.search_products(query=query), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "catalog/search.html", {"query": query, "page": page})
