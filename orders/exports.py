"""Order lines as a spreadsheet, for the back office (orders the user may see; never card codes)."""

from __future__ import annotations

import datetime
from typing import IO

from django.utils import timezone
from django.utils.translation import gettext
from openpyxl import Workbook

from catalog.models import Product
from kameng import xlsx
from orders.models import Order
from orders.selectors import items_visible_to


def _local(value: datetime.datetime | None):
    return timezone.localtime(value).replace(tzinfo=None) if value else None


def export_order_lines(*, orders, user) -> IO[bytes]:
    """The lines of ``orders`` the user may see, as .xlsx (write-only workbook, server-side cursor,
    anonymous temporary file). Card codes are never part of it — not even masked."""
    items = (
        items_visible_to(user)
        .filter(order__in=orders.values("pk"))
        .select_related("order", "merchant")
        .order_by("order__created_at", "order_id", "pk")
    )
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(gettext("Orders"))
    header = [
        gettext("Order number"), gettext("Placed"), gettext("Paid"), gettext("Delivered"), gettext("Status"),
        gettext("E-mail"), gettext("Merchant"), gettext("Product"), gettext("Denomination"), gettext("Delivery mode"),
        gettext("Quantity"), gettext("Unit price (fen)"), gettext("Discount (fen)"), gettext("Amount (fen)"),
        gettext("Order total (fen)"), gettext("Order refunded (fen)"), gettext("Buyer inputs"),
        gettext("Delivery result"),
    ]  # fmt: skip
    sheet.append(xlsx.row(sheet, header))
    statuses = dict(Order.Status.choices)
    modes = dict(Product.DeliveryMode.choices)
    for item in items.iterator(chunk_size=2000):
        order = item.order
        inputs = "; ".join(f"{key}: {value}" for key, value in sorted((item.buyer_inputs or {}).items()))
        sheet.append(
            xlsx.row(
                sheet,
                [
                    order.number, _local(order.created_at), _local(order.paid_at), _local(order.delivered_at),
                    str(statuses.get(order.status, order.status)), order.email, item.merchant.name,
                    item.product_title, item.sku_label, str(modes.get(item.delivery_mode, item.delivery_mode)),
                    item.quantity, item.unit_price_fen, item.discount_fen, item.total_fen, order.total_fen,
                    order.refunded_fen, inputs, item.manual_result,
                ],
            )
        )  # fmt: skip
    return xlsx.saved(workbook)
