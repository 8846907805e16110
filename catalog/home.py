"""The home page: carousel slides, sections of products, the best-sellers rollup and the page's cache.

* **Slides** — :func:`process_slide` sniffs an upload with Pillow (JPEG, PNG, WebP or GIF; the name and
  the browser's content type are not trusted), refuses anything else with a message and re-encodes it as
  JPEG cropped to 3:1 at :data:`SLIDE_SIZE` (desktops) and :data:`SLIDE_SMALL_SIZE` (phones), without
  metadata — the rules of marketing's campaign banners (marketing/campaigns.py), which the catalog cannot
  import (it sits below marketing). :func:`placeholder_slide` draws one for trade templates.
* **Sections** — :class:`~catalog.models.HomeSection` rows, by ``sort_order``: featured SKUs (their
  products; none chosen: the products marked featured), a category block (the category and its
  subcategories, best sellers first), best sellers (the rollup) and new arrivals. A shop with no section
  at all shows :data:`DEFAULT_SECTIONS` (featured products, best sellers, new arrivals); an empty section is not shown.
* **Best sellers** — :func:`roll_up_sales` (beat task ``catalog.tasks.roll_up_sales``, every 10 minutes)
  writes each product's sales of the last 30 days into ``ProductSalesRollup``; pages read that table.
* **Cache** — :func:`page_data` is everything the page shows apart from the shopper (favourites) and the
  running flash specials: categories, slides not yet ended and the sections with their products, under
  :data:`CACHE_KEY` for :data:`CACHE_SECONDS`. It is dropped (now and again after the commit) on every
  save or delete of a slide, section, category, product, SKU or merchant, when ``stock_changed`` reports
  codes added, sold, released or voided, and after each rollup; slides are filtered by the clock at each
  read, so a slide enters and leaves on time whatever the cache holds. Bulk ``.update()`` sends no
  signal: call :func:`forget` after one. A reservation that expires without a release shows within
  :data:`CACHE_SECONDS` at most.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont

from catalog import selectors
from catalog.allocation import for_sale_parts
from catalog.models import CardCode, Category, HomeSection, HomeSlide, Product, ProductSalesRollup, Sku
from kameng import images

CACHE_KEY = "catalog:home:v1"
CACHE_SECONDS = 120
SALES_WINDOW = timedelta(days=30)

SLIDE_SIZE = (1440, 480)
SLIDE_SMALL_SIZE = (720, 240)
SLIDE_MIN_SIZE = (600, 200)

# A fresh shop (no section at all): these, in this order.
DEFAULT_SECTIONS = [
    (HomeSection.Kind.FEATURED, 8),  # the products marked featured; hidden when there are none
    (HomeSection.Kind.BEST_SELLERS, 8),
    (HomeSection.Kind.NEW_ARRIVALS, 12),
]
DEFAULT_TITLES = {
    HomeSection.Kind.FEATURED: gettext_lazy("Featured"),
    HomeSection.Kind.CATEGORY: gettext_lazy("Category"),
    HomeSection.Kind.BEST_SELLERS: gettext_lazy("Best sellers"),
    HomeSection.Kind.NEW_ARRIVALS: gettext_lazy("New arrivals"),
}


# -- slide pictures ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlidePicture:
    large: ContentFile
    small: ContentFile


def _pictures(image: Image.Image, data: bytes, stem: str) -> SlidePicture:
    digest = hashlib.sha256(data).hexdigest()[:10]
    return SlidePicture(
        large=images.fit_jpeg(image, SLIDE_SIZE, f"{stem}-{digest}.jpg"),
        small=images.fit_jpeg(image, SLIDE_SMALL_SIZE, f"{stem}-{digest}-small.jpg"),
    )


def process_slide(upload, *, stem: str = "slide") -> SlidePicture:
    """The upload, checked and re-encoded at both sizes; ``ValidationError`` with the reason otherwise."""
    image, data = images.open_upload(
        upload,
        min_size=SLIDE_MIN_SIZE,
        too_small=_("The picture is %(width)s × %(height)s pixels; a slide needs at least %(min_w)s × %(min_h)s."),
    )
    image = image.convert("RGB")
    return _pictures(image, data, stem)


def _font(size: int):
    from pathlib import Path

    for path in getattr(settings, "CAMPAIGN_SHARE_FONTS", []):
        if path and Path(path).exists():
            try:
                return ImageFont.truetype(path, size)
            except OSError:
                continue
    return ImageFont.load_default(size=size)


def placeholder_slide(*, title: str, subtitle: str = "", colours=((228, 57, 60), (255, 140, 90))) -> SlidePicture:
    """A generated slide: a gradient of two colours, soft circles and the title (trade templates)."""
    start, end = colours
    seed = Image.new("RGB", (2, 1))
    seed.putpixel((0, 0), tuple(start))
    seed.putpixel((1, 0), tuple(end))
    image = seed.resize(SLIDE_SIZE, Image.Resampling.BILINEAR)
    overlay = Image.new("RGBA", SLIDE_SIZE, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for cx, cy, r, alpha in ((1180, 120, 260, 40), (1320, 420, 180, 34), (980, 520, 140, 28)):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 255, 255, alpha))
    image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.text((96, 150), title, font=_font(88), fill="white")
    if subtitle:
        draw.text((100, 280), subtitle, font=_font(40), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return _pictures(image, out.getvalue(), "template")


# -- products of the sections --------------------------------------------------------------------------------


def card_products(*, now=None):
    """Listed products with what a card shows (``min_price_fen``, ``in_stock``, ``sold_30d`` from the
    rollup): :func:`catalog.selectors.listed_products` without its per-row sales aggregation."""
    now = now or timezone.now()
    codes = CardCode.objects.filter(sku__product=OuterRef("pk"), sku__is_active=True)
    available, expired = for_sale_parts(now=now)
    in_stock = Exists(codes.filter(available)) | Exists(codes.filter(expired))
    return (
        Product.objects.listed()
        .select_related("category")
        .annotate(
            min_price_fen=Min("skus__price_fen", filter=Q(skus__is_active=True)),
            in_stock=ExpressionWrapper(in_stock, output_field=BooleanField()),
            sold_30d=Coalesce(F("sales_rollup__sold_30d"), 0),
        )
        .filter(min_price_fen__isnull=False)
    )


@dataclass
class Section:
    kind: str
    title: str  # empty for a default section: its heading is translated when shown
    title_en: str
    products: list = field(default_factory=list)
    pk: int | None = None

    @property
    def label(self) -> str:
        if not self.title:
            return str(DEFAULT_TITLES.get(self.kind, ""))
        if get_language() == "en" and self.title_en:
            return self.title_en
        return self.title


def _section_products(section: HomeSection, categories: list[Category]) -> list[Product]:
    products = card_products()
    limit = section.limit
    if section.kind == HomeSection.Kind.FEATURED:
        sku_ids = [sku.pk for sku in section.skus.all()] if section.pk else []
        if not sku_ids:
            return list(products.filter(is_featured=True).order_by("sort_order", "-id")[:limit])
        chosen = Sku.objects.filter(pk__in=sku_ids, is_active=True).values("product_id")
        found = {p.pk: p for p in products.filter(pk__in=Subquery(chosen)).order_by()}
        order = []
        for sku in section.skus.all():  # the prefetched SKUs, in their order
            if sku.product_id in found and sku.product_id not in order:
                order.append(sku.product_id)
        return [found[pk] for pk in order][:limit]
    if section.kind == HomeSection.Kind.CATEGORY:
        root = next((c for c in categories if c.pk == section.category_id), None)
        if root is None:  # hidden or gone
            return []
        ids = selectors.descendant_ids(root, categories)
        return list(products.filter(category_id__in=ids).order_by("-sold_30d", "sort_order", "-id")[:limit])
    if section.kind == HomeSection.Kind.BEST_SELLERS:
        return list(products.filter(sales_rollup__sold_30d__gt=0).order_by("-sold_30d", "sort_order", "-id")[:limit])
    return list(products.order_by("-created_at", "-id")[:limit])


def _build() -> dict:
    categories = selectors.active_categories()
    now = timezone.now()
    slides = list(
        HomeSlide.objects.filter(enabled=True)
        .exclude(image="")
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .order_by("sort_order", "id")
    )
    rows = list(HomeSection.objects.filter(enabled=True).prefetch_related("skus").order_by("sort_order", "id"))
    if not rows and not HomeSection.objects.exists():
        rows = [HomeSection(kind=kind, title="", limit=limit) for kind, limit in DEFAULT_SECTIONS]
        default = True
    else:
        default = False
    sections = []
    for row in rows:
        products = _section_products(row, categories)
        if products:  # an empty section is not shown
            sections.append(Section(row.kind, row.title, row.title_en, products, row.pk))
    return {"categories": categories, "slides": slides, "sections": sections, "default": default}


def page_data() -> dict:
    """The cached part of the home page (see the module's docstring)."""
    data = cache.get(CACHE_KEY)
    if data is None:
        data = _build()
        cache.set(CACHE_KEY, data, CACHE_SECONDS)
    return data


def running_slides(slides: list[HomeSlide], now=None) -> list[HomeSlide]:
    now = now or timezone.now()
    return [slide for slide in slides if slide.is_shown_at(now)]


def forget(**kwargs) -> None:
    """Drop the cached page, now and once the current transaction commits (a signal receiver too)."""
    cache.delete(CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(CACHE_KEY), robust=True)


# -- the best-sellers rollup ---------------------------------------------------------------------------------


def roll_up_sales(*, now=None) -> int:
    """Write each product's sales of the last 30 days (sold codes; a reusable code counts every sale,
    as product cards always have) into ``ProductSalesRollup``; rows of products with no sale in the
    window are removed. Idempotent; returns the number of products with sales."""
    now = now or timezone.now()
    totals = (
        CardCode.objects.filter(sold_at__gte=now - SALES_WINDOW)
        .order_by()
        .values("sku__product")
        .annotate(n=Sum("times_sold"))
        .filter(n__gt=0)
    )
    rows = [ProductSalesRollup(product_id=row["sku__product"], sold_30d=row["n"], computed_at=now) for row in totals]
    with transaction.atomic():
        ProductSalesRollup.objects.exclude(product_id__in=[row.product_id for row in rows]).delete()
        ProductSalesRollup.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["product"], update_fields=["sold_30d", "computed_at"]
        )
        forget()
    return len(rows)


def on_stock_changed(sender, *, sku_ids, **kwargs) -> None:
    forget()


def connect() -> None:
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from accounts.models import Merchant

    for model in (HomeSlide, HomeSection, Category, Product, Sku, Merchant):
        uid = f"catalog.home.{model._meta.label_lower}"
        post_save.connect(forget, sender=model, dispatch_uid=f"{uid}.saved", weak=False)
        post_delete.connect(forget, sender=model, dispatch_uid=f"{uid}.deleted", weak=False)
    m2m_changed.connect(forget, sender=HomeSection.skus.through, dispatch_uid="catalog.home.section_skus", weak=False)
