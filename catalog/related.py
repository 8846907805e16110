""" "Bought together / you may also like": co-purchase counts and the reads of the pages.

:func:`replace_relations` (fed by the nightly beat task ``orders.tasks.compute_related_products``,
``orders/related.py``: the paid orders of the last 90 days) counts how many orders held both of two
products, and replaces ``ProductRelation`` with the :data:`KEEP` best partners of each product (one
transaction: readers see the old table or the new one). :func:`related_for` reads them for a page and fills up
with the same category's best sellers when a product has fewer partners than asked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations

from django.core.cache import cache
from django.db import transaction

from catalog import selectors
from catalog.models import Product, ProductRelation

KEEP = 12


def replace_relations(rows) -> int:
    """Replace ``ProductRelation`` from ``rows`` of ``(order id, product id)`` — the paid orders'
    baskets, read by orders (orders/related.py: catalog does not read orders) — keeping each
    product's :data:`KEEP` best partners."""
    baskets: dict[int, set[int]] = defaultdict(set)
    for order_id, product_id in rows:
        baskets[order_id].add(product_id)
    pairs: Counter[tuple[int, int]] = Counter()
    for products in baskets.values():
        for a, b in combinations(sorted(products), 2):
            pairs[(a, b)] += 1
    partners: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (a, b), score in pairs.items():
        partners[a].append((score, b))
        partners[b].append((score, a))
    relations = [
        ProductRelation(product_id=product_id, related_id=other, score=score)
        for product_id, scored in partners.items()
        for score, other in sorted(scored, key=lambda pair: (-pair[0], pair[1]))[:KEEP]
    ]
    with transaction.atomic():
        ProductRelation.objects.all().delete()
        ProductRelation.objects.bulk_create(relations, batch_size=1000)
    transaction.on_commit(_new_version)
    return len(relations)


def _new_version() -> None:
    try:
        cache.incr(_VERSION_KEY)
    except ValueError:
        cache.set(_VERSION_KEY, 2, None)


CACHE_SECONDS = 120
_VERSION_KEY = "related:version"


def related_for(*, product_ids: list[int], limit: int = 4) -> list[Product]:
    """:func:`find_related`, cached for :data:`CACHE_SECONDS` (pages read it with no query; a new
    computation is seen at once, a stock or price change within the cache time)."""
    version = cache.get_or_set(_VERSION_KEY, 1, None)
    key = f"related:{version}:{limit}:{','.join(map(str, sorted(product_ids)))}"
    found = cache.get(key)
    if found is None:
        found = find_related(product_ids=product_ids, limit=limit)
        cache.set(key, found, CACHE_SECONDS)
    return found


def find_related(*, product_ids: list[int], limit: int = 4) -> list[Product]:
    """Listed products bought with any of ``product_ids`` (best first), topped up with best sellers
    of the same categories; never one of ``product_ids``. At most 3 queries."""
    scores: Counter[int] = Counter()
    for related_id, score in ProductRelation.objects.filter(product_id__in=product_ids).values_list(
        "related_id", "score"
    )[: limit * 4 * max(1, len(product_ids))]:
        if related_id not in product_ids:
            scores[related_id] += score
    chosen: list[Product] = []
    listed = selectors.listed_products()
    if scores:
        by_id = {p.pk: p for p in listed.filter(pk__in=list(scores))}
        chosen = sorted(by_id.values(), key=lambda p: (-scores[p.pk], -p.pk))[:limit]
    if len(chosen) < limit:
        exclude = set(product_ids) | {p.pk for p in chosen}
        categories = Product.objects.filter(pk__in=product_ids).values("category_id")
        fill = (
            listed.filter(category_id__in=categories)
            .exclude(pk__in=exclude)
            .order_by("-sold_30d", "sort_order", "-id")[: limit - len(chosen)]
        )
        chosen += list(fill)
    return chosen
