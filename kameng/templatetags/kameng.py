from django import template
from django.utils.translation import get_language

from kameng.money import fen_to_yuan_str

register = template.Library()


@register.filter
def yuan(fen) -> str:
    """Show an amount in fen as ``¥12.34``."""
    if fen is None or fen == "":
        return ""
    return f"¥{fen_to_yuan_str(int(fen))}"


@register.filter
def tr(obj, field: str) -> str:
    """``{{ product|tr:"title" }}``: the ``title_en`` value on the English site when it is filled."""
    if get_language() == "en":
        english = getattr(obj, f"{field}_en", "")
        if english:
            return english
    return getattr(obj, field, "")
