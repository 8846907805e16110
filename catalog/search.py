"""Product search: the normalised search text kept on each product, and the query over it.

``Product.search_text`` holds, lower-cased: the title and English title, the category's (and its
parent's) names in both languages, the SKU labels, synonyms of words found in them (点卡 → 充值卡,
game card …), and for every run of Chinese characters its full pinyin and its initials
("游戏点卡" → "youxidianka yxdk"). It is rebuilt when a product, one of its SKUs or its category
is saved (receivers in catalog/apps.py → :func:`connect`).

Tags hook: another module adds words to a product's text by appending a callable
``(product) -> Iterable[str]`` to :data:`TEXT_PROVIDERS` (e.g. the product's tag names) and calling
:func:`refresh_products` when those words change.

Querying (:func:`matching`): every word of the query as a substring (``LIKE '%w%'``, served by
the GIN trigram index ``product_search_trgm`` of migration catalog 0008 for words of 3 characters
or more); when that finds nothing, on PostgreSQL, every word close to a word of the text (pg_trgm's
``%>``, word similarity above ``pg_trgm.word_similarity_threshold``, 0.6: "stean" finds "steam"),
through the same index, ranked by similarity. SQLite (the embedded run): substrings only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from django.db import connection
from django.db.models import FloatField, Q, QuerySet, Value
from pypinyin import Style, lazy_pinyin

MAX_QUERY = 60

# Words a shopper may type for what the catalogue calls otherwise (both directions matter: a
# product whose text holds a key also gets the values).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "点卡": ("充值卡", "点券", "游戏卡", "game card", "top-up"),
    "点券": ("点卡", "充值", "game card"),
    "一卡通": ("点卡", "充值卡"),
    "充值卡": ("点卡", "gift card", "top-up"),
    "钱包": ("wallet", "充值卡"),
    "会员": ("vip", "membership", "包月"),
    "激活码": ("序列号", "密钥", "key", "license"),
    "兑换码": ("卡密", "code", "voucher"),
    "课程": ("course", "教程"),
    "游戏": ("game",),
}

TEXT_PROVIDERS: list[Callable[[object], Iterable[str]]] = []

_HAN = re.compile(r"[\u3400-\u9fff]+")


def pinyin_words(text: str) -> list[str]:
    """Full pinyin and initials of each word holding Chinese characters, and of each run of them:
    "QQ音乐" → ["qqyinyue", "qqyy", "yinyue", "yy"]."""
    words = []
    for token in text.split():
        if not _HAN.search(token):
            continue
        for part in dict.fromkeys([token, *_HAN.findall(token)]):
            words.append("".join(lazy_pinyin(part, errors="default")))
            words.append("".join(lazy_pinyin(part, style=Style.FIRST_LETTER, errors="default")))
    return words


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def build_text(*, names: Iterable[str]) -> str:
    parts = [name for name in names if name]
    joined = " ".join(parts)
    extra = [word for key, words in SYNONYMS.items() if key in joined for word in words]
    parts += extra
    parts += pinyin_words(" ".join(parts))
    seen: dict[str, None] = {}
    for part in normalise(" ".join(parts)).split(" "):
        seen.setdefault(part, None)
    return " ".join(seen)


def text_for(product) -> str:
    category = product.category
    names = [product.title, product.title_en, category.name, category.name_en]
    if category.parent_id:
        names += [category.parent.name, category.parent.name_en]
    names += [label for sku in product.skus.all() for label in (sku.label, getattr(sku, "label_en", ""))]
    for provider in TEXT_PROVIDERS:
        names += list(provider(product))
    return build_text(names=names)


def refresh_products(queryset) -> int:
    """Rebuild the search text of the products of ``queryset`` (saved with ``update``: no signals)."""
    changed = 0
    for product in queryset.select_related("category__parent").prefetch_related("skus"):
        text = text_for(product)
        if text != product.search_text:
            type(product).objects.filter(pk=product.pk).update(search_text=text)
            changed += 1
    return changed


def rebuild_all(product_model) -> int:
    return refresh_products(product_model.objects.all())


def clean_query(query: str) -> str:
    return normalise(query)[:MAX_QUERY]


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def matching(queryset: QuerySet, query: str, *, fuzzy: bool = False) -> QuerySet:
    """``queryset`` narrowed to the products whose text holds every word of ``query``, annotated
    with ``relevance`` (a title hit first). ``fuzzy`` (PostgreSQL only; what a search that found
    nothing tries next): every word close to a word of the text instead (pg_trgm's ``%>``, through
    the GIN index), ranked by word similarity — kept for that second try because the similarity
    costs ~0.1 ms a row, too much to compute over every substring match."""
    words = clean_query(query).split(" ")
    if not words or words == [""]:
        return queryset.annotate(relevance=Value(0.0, output_field=FloatField())).none()
    query = " ".join(words)
    condition = Q()
    if fuzzy and is_postgres():
        from django.contrib.postgres.search import TrigramWordSimilarity

        for word in words:
            condition &= Q(search_text__trigram_word_similar=word)
        return queryset.filter(condition).annotate(relevance=TrigramWordSimilarity(query, "search_text"))
    for word in words:
        condition &= Q(search_text__contains=word)
    title_hit = Q(title__icontains=query) | Q(title_en__icontains=query)
    return queryset.filter(condition).annotate(relevance=_case(title_hit, 1.0))


def _case(condition: Q, weight: float):
    from django.db.models import Case, When

    return Case(When(condition, then=Value(weight)), default=Value(0.0), output_field=FloatField())
