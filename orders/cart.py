"""The cart lives in the session: ``[{"sku": id, "qty": n}]``, for guests and signed-in buyers alike.

Only ids and quantities are stored; prices are always recomputed on the server (orders/pricing.py).

Quantities are checked where they are chosen (adding, changing, the checkout page), not only when
the order is placed: :func:`lines` reads each SKU with its for-sale stock in one query and works out
what each line may hold (:class:`Line` ``min_quantity``/``max_quantity``: the product's per-order
limits, shared by all its denominations in the cart, and the codes left), and :func:`fit` brings the
lines within those bounds and says what it changed. ``place_order`` checks the same rules again
under its locks; this only keeps the buyer from being told at the last step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from catalog.models import Product, Sku
from catalog.selectors import STOCK_COUNT_CAP, for_sale_count

SESSION_KEY = "kameng_cart"
MAX_LINES = 20
MAX_QUANTITY = 999  # no line holds more, whatever a product allows

_WHOLE_NUMBER = re.compile(r"^\s*\d{1,6}\s*$")


@dataclass
class Line:
    sku: Sku
    quantity: int
    # For-sale codes now (capped at STOCK_COUNT_CAP); None when the goods are not drawn from
    # single-use codes (manual or upstream delivery, a reusable code): then no stock limit applies.
    stock_left: int | None = None
    min_quantity: int = 1
    max_quantity: int = MAX_QUANTITY
    quoted: object = field(default=None, repr=False)  # the pricing.QuoteLine, set by views that price

    @property
    def title(self) -> str:
        return f"{self.sku.product.display_title(get_language())} {self.sku.label}"

    @property
    def total_fen(self) -> int:
        """The line at the quoted unit price (member and special prices applied), else list price."""
        return self.quoted.subtotal_fen if self.quoted is not None else self.sku.price_fen * self.quantity


def parse_quantity(value) -> int | None:
    """A quantity typed by the buyer: a whole number (``"3"``), else None (``"-3"``, ``"2.5"``, ``"abc"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.match(value):
        return int(value)
    return None


def raw(request) -> list[dict]:
    return [entry for entry in request.session.get(SESSION_KEY, []) if isinstance(entry, dict)]


def save(request, entries: list[dict]) -> None:
    request.session[SESSION_KEY] = entries[:MAX_LINES]


def entries_of(lines: list[Line]) -> list[dict]:
    return [{"sku": line.sku.pk, "qty": line.quantity} for line in lines]


def clear(request) -> None:
    request.session.pop(SESSION_KEY, None)


def lines(entries: list[dict]) -> list[Line]:
    """Cart entries resolved to SKUs that are on sale, with their stock and limits (one query);
    others are dropped. Quantities are as stored (bounded to 1…MAX_QUANTITY): :func:`fit` checks them."""
    ids = [entry["sku"] for entry in entries if isinstance(entry.get("sku"), int)]
    skus = (
        Sku.objects.select_related("product", "product__category", "product__merchant")
        .annotate(available_count=for_sale_count(cap=STOCK_COUNT_CAP))
        .in_bulk(ids)
    )
    result = []
    for entry in entries:
        sku = skus.get(entry.get("sku"))
        quantity = entry.get("qty")
        if sku and sku.is_active and sku.product.status == Product.Status.LISTED and isinstance(quantity, int):
            # Stock bounds a line only where each unit takes a code, and only below the count's cap
            # (no line may hold that many anyway).
            counted = (
                sku.product.delivery_mode == Product.DeliveryMode.AUTOMATIC
                and not sku.reusable_code
                and sku.available_count < STOCK_COUNT_CAP
            )
            line = Line(sku=sku, quantity=max(1, min(quantity, MAX_QUANTITY)))
            line.stock_left = sku.available_count if counted else None
            result.append(line)
    _set_bounds(result)
    return result


def _set_bounds(result: list[Line]) -> None:
    """Each line's ``min_quantity``/``max_quantity`` given the other lines of its product."""
    per_product: dict[int, int] = {}
    for line in result:
        per_product[line.sku.product_id] = per_product.get(line.sku.product_id, 0) + line.quantity
    for line in result:
        product = line.sku.product
        others = per_product[product.pk] - line.quantity
        high = min(product.max_per_order - others, MAX_QUANTITY)
        if line.stock_left is not None:
            high = min(high, line.stock_left)
        line.max_quantity = max(0, high)
        line.min_quantity = max(1, product.min_per_order - others)


def fit(result: list[Line]) -> tuple[list[Line], list[str]]:
    """Bring every line within its bounds, first lines first (a later line of the same product gets
    what the per-order limit leaves): returns the lines that can still be bought (a sold-out one is
    taken out) and a message for each change, naming the limit or the stock left."""
    kept, notes = [], []
    used: dict[int, int] = {}  # product -> quantity in the lines kept so far
    lines_of: dict[int, int] = {}
    for line in result:
        lines_of[line.sku.product_id] = lines_of.get(line.sku.product_id, 0) + 1
    for line in result:
        product = line.sku.product
        high = min(product.max_per_order - used.get(product.pk, 0), MAX_QUANTITY)
        if line.stock_left is not None:
            high = min(high, line.stock_left)
        wanted = line.quantity
        low = product.min_per_order if lines_of[product.pk] == 1 else 1
        if high < low:
            if line.stock_left is not None and line.stock_left < low:
                notes.append(_("%(item)s is sold out and was taken out of your order.") % {"item": line.title})
            else:
                notes.append(
                    _("%(item)s was taken out: at most %(limit)s of this product per order.")
                    % {"item": line.title, "limit": product.max_per_order}
                )
            continue
        line.max_quantity = high
        if wanted > high:
            line.quantity = high
            notes.append(limit_note(line, wanted))
        elif wanted < low:
            line.quantity = low
            notes.append(
                _("%(item)s: at least %(low)s per order, so the quantity is now %(quantity)s.")
                % {"item": line.title, "low": low, "quantity": low}
            )
        used[product.pk] = used.get(product.pk, 0) + line.quantity
        kept.append(line)
    _set_bounds(kept)
    return kept, notes


def limit_note(line: Line, wanted: int) -> str:
    """Why ``wanted`` of ``line`` became ``line.quantity``: the stock left or the per-order limit."""
    if line.stock_left is not None and line.max_quantity == line.stock_left:
        return _("%(item)s: only %(stock)s left, so the quantity is now %(quantity)s (you asked for %(wanted)s).") % {
            "item": line.title, "stock": line.stock_left, "quantity": line.quantity, "wanted": wanted,
        }  # fmt: skip
    message = _(
        "%(item)s: at most %(limit)s per order, so the quantity is now %(quantity)s (you asked for %(wanted)s)."
    )
    return message % {
        "item": line.title, "limit": line.sku.product.max_per_order, "quantity": line.quantity, "wanted": wanted,
    }  # fmt: skip


def bad_quantity_note(line: Line | None) -> str:
    """The answer to a quantity that is not a whole number within the line's bounds."""
    if line is None:
        return _("The quantity must be a whole number of at least 1.")
    return _("%(item)s: the quantity must be a whole number from %(low)s to %(high)s.") % {
        "item": line.title, "low": line.min_quantity, "high": max(line.min_quantity, line.max_quantity),
    }  # fmt: skip
