from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language

from kameng.money import fen_to_yuan_str

register = template.Library()


@register.filter
def yuan(fen) -> str:
    """Show an amount in fen as ``¥12.34``; a negative one as ``−¥12.34`` (a minus sign before the
    currency, as amounts are written, not ``¥-12.34``)."""
    if fen is None or fen == "":
        return ""
    fen = int(fen)
    if fen < 0:
        return f"\u2212¥{fen_to_yuan_str(-fen)}"
    return f"¥{fen_to_yuan_str(fen)}"


@register.filter
def times(fen, count) -> int | str:
    """``{{ sku.price_fen|times:quantity|yuan }}``: an amount in fen times a whole number."""
    try:
        return int(fen) * int(count)
    except (TypeError, ValueError):
        return ""


@register.filter
def tr(obj, field: str) -> str:
    """``{{ product|tr:"title" }}``: the ``title_en`` value on the English site when it is filled."""
    if get_language() == "en":
        english = getattr(obj, f"{field}_en", "")
        if english:
            return english
    return getattr(obj, field, "")


@register.filter
def tr_fallback(obj, field: str) -> bool:
    """True on the English site when ``field_en`` is empty but ``field`` is not: the Chinese text is
    shown instead, and the element showing it should say so (``lang="zh-Hans"``)."""
    return get_language() == "en" and not getattr(obj, f"{field}_en", "") and bool(getattr(obj, field, ""))


@register.filter
def tr_html(obj, field: str) -> SafeString:
    """``{{ sku|tr_html:"label" }}``: like ``tr`` for element content; a Chinese fallback on the
    English site comes in ``<span lang="zh-Hans" class="untranslated">`` (screen readers read it in
    Chinese, the page may mark it). Not for attributes or ``<title>``: use ``tr`` there."""
    text = tr(obj, field)
    if tr_fallback(obj, field):
        return format_html('<span lang="zh-Hans" class="untranslated">{}</span>', text)
    return format_html("{}", text)


@register.filter
def joined_adjustments(adjustments) -> list[dict]:
    """A breakdown's adjustments (``Adjustment`` objects or their stored dicts) with those of one
    offer joined: a per-merchant 满减 is priced as one adjustment per line, but read as one."""
    joined: dict[tuple, dict] = {}
    for adjustment in adjustments or []:
        get = adjustment.get if isinstance(adjustment, dict) else lambda key, a=adjustment: getattr(a, key, "")
        key = (get("rule"), get("label"), get("ref")) if get("ref") else (id(adjustment),)
        row = joined.setdefault(key, {"label": get("label"), "amount_fen": 0})
        row["amount_fen"] += int(get("amount_fen") or 0)
    return list(joined.values())
