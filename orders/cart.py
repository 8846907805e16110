"""The cart lives in the session: ``[{"sku": id, "qty": n}]``, for guests and signed-in buyers alike.

Only ids and quantities are stored; prices are always recomputed on the server (orders/pricing.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.models import Product, Sku

SESSION_KEY = "kameng_cart"
MAX_LINES = 20


@dataclass
class Line:
    sku: Sku
    quantity: int


def raw(request) -> list[dict]:
    return [entry for entry in request.session.get(SESSION_KEY, []) if isinstance(entry, dict)]


def save(request, entries: list[dict]) -> None:
    request.session[SESSION_KEY] = entries[:MAX_LINES]


def add(request, *, sku_id: int, quantity: int) -> None:
    entries = raw(request)
    for entry in entries:
        if entry.get("sku") == sku_id:
            entry["qty"] = entry.get("qty", 0) + quantity
            break
    else:
        entries.append({"sku": sku_id, "qty": quantity})
    save(request, entries)


def set_quantity(request, *, sku_id: int, quantity: int) -> None:
    entries = [e for e in raw(request) if e.get("sku") != sku_id or quantity > 0]
    for entry in entries:
        if entry.get("sku") == sku_id:
            entry["qty"] = quantity
    save(request, entries)


def clear(request) -> None:
    request.session.pop(SESSION_KEY, None)


def lines(entries: list[dict]) -> list[Line]:
    """Cart entries resolved to SKUs that are on sale (one query); others are dropped."""
    ids = [entry["sku"] for entry in entries if isinstance(entry.get("sku"), int)]
    skus = Sku.objects.select_related("product", "product__category", "product__merchant").in_bulk(ids)
    result = []
    for entry in entries:
        sku = skus.get(entry.get("sku"))
        quantity = entry.get("qty")
        if sku and sku.is_active and sku.product.status == Product.Status.LISTED and isinstance(quantity, int):
            result.append(Line(sku=sku, quantity=max(1, min(quantity, 999))))
    return result
