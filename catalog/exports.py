"""Excel (.xlsx) exports of the back office: stock (codes) and sales.

Both build the workbook with openpyxl's *write-only* mode, which streams rows to a temporary file
instead of keeping cells in memory, from database rows read with a server-side cursor
(``QuerySet.iterator``); the finished file is an anonymous temporary file that the view streams to
the browser (``FileResponse``). Memory stays flat whatever the stock size.

Stock export: one row per code with its *mask* (never the code) unless the user both holds
``catalog.reveal_cardcode`` and explicitly asked for full codes; a full export is recorded as
:class:`~catalog.models.CodeAccess` (``kind=export``, ``code_count`` = codes exported), one row per
merchant concerned, before the file is handed over.

Every SKU id is re-scoped to the user here, whatever the caller already did. Cells are always
written as text where text is meant: a value starting with ``=`` is never turned into a formula.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from django.db import transaction
from django.db.models import Case, F, IntegerField, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from openpyxl import Workbook

from accounts.models import User
from accounts.scoping import scope_queryset
from catalog import codes
from catalog.models import CardCode, CodeAccess, Sku
from catalog.stock import SKU_SCOPE, require_reveal_permission
from kameng import xlsx

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class ExportFile:
    file: IO[bytes]  # positioned at 0; closing it deletes it
    filename: str
    rows: int
    full: bool = False


class StockScope:
    """Which codes a stock export includes."""

    IN_STOCK = "in_stock"  # available and reserved
    ALL = "all"

    CHOICES = (IN_STOCK, ALL)


def scoped_sku_ids(*, sku_ids: Iterable[int], user: User) -> list[int]:
    ids = sorted({int(pk) for pk in sku_ids})
    return list(
        scope_queryset(Sku.objects.filter(pk__in=ids), user=user, merchant_path=SKU_SCOPE).values_list("pk", flat=True)
    )


def _local(value: datetime.datetime | None) -> datetime.datetime | None:
    """Excel has no time zones: local (Asia/Shanghai) wall time, naive."""
    return timezone.localtime(value).replace(tzinfo=None) if value else None


class _Sheet:
    def __init__(self, workbook: Workbook, title: str, header: list[str]):
        self.sheet = workbook.create_sheet(title)
        self.append(header)

    def append(self, values: list) -> None:
        self.sheet.append(xlsx.row(self.sheet, values))


def _stamp() -> str:
    return timezone.localtime().strftime("%Y%m%d-%H%M")


@sensitive_variables()
def stock_export(
    *,
    sku_ids: Iterable[int],
    user: User,
    full: bool = False,
    scope: str = StockScope.IN_STOCK,
    ip_address: str | None = None,
) -> ExportFile:
    """The codes of the given SKUs as .xlsx, masked — or, with ``full``, in clear and recorded."""
    if full:
        require_reveal_permission(user)
    if scope not in StockScope.CHOICES:
        raise ValueError(f"unknown stock export scope {scope!r}")
    ids = scoped_sku_ids(sku_ids=sku_ids, user=user)
    codes_qs = CardCode.objects.filter(sku_id__in=ids)
    if scope == StockScope.IN_STOCK:
        codes_qs = codes_qs.filter(status__in=[CardCode.Status.AVAILABLE, CardCode.Status.RESERVED])
    codes_qs = codes_qs.select_related("sku__product__merchant").order_by("sku__product_id", "sku_id", "pk")

    workbook = Workbook(write_only=True)
    header = [_("Merchant"), _("Product"), _("SKU"), _("Code (masked)")]
    if full:
        header += [_("Code"), _("Password")]
    header += [_("Status"), _("Batch"), _("Added"), _("Reserved until"), _("Sold"), _("Times sold"), _("Voided")]
    sheet = _Sheet(workbook, _("Stock"), header)
    per_merchant: Counter[int] = Counter()
    rows = 0
    statuses = dict(CardCode.Status.choices)
    for code in codes_qs.iterator(chunk_size=2000):
        product = code.sku.product
        row = [product.merchant.name, product.title, code.sku.label, code.hint]
        if full:
            secret = codes.decrypt(code.payload)
            row += [secret.code, secret.password]
            per_merchant[product.merchant_id] += 1
        row += [
            str(statuses.get(code.status, code.status)),
            f"#{code.batch_id}" if code.batch_id else "",
            _local(code.created_at),
            _local(code.reserved_until),
            _local(code.sold_at),
            code.times_sold,
            _local(code.voided_at),
        ]
        sheet.append(row)
        rows += 1
    target = xlsx.saved(workbook)
    if full:
        with transaction.atomic():
            CodeAccess.objects.bulk_create(
                CodeAccess(
                    user=user, kind=CodeAccess.Kind.EXPORT, merchant_id=merchant_id, code_count=count,
                    ip_address=ip_address,
                )
                for merchant_id, count in sorted(per_merchant.items())
            )  # fmt: skip
    kind = "full" if full else "masked"
    return ExportFile(file=target, filename=f"stock-{kind}-{_stamp()}.xlsx", rows=rows, full=full)


def sales_export(*, sku_ids: Iterable[int], user: User) -> ExportFile:
    """Units sold per SKU and day (local dates) as .xlsx.

    Orders do not exist yet, so sales are read from the codes: a single-use code counts once, on
    the day of its ``sold_at``; a reusable code keeps only its last sale time, so all of its
    ``times_sold`` are put on that day (an approximation). When orders exist this export should
    read order items instead, which also know the price actually paid; until then the amount column
    is units × the SKU's *current* price.
    """
    ids = scoped_sku_ids(sku_ids=sku_ids, user=user)
    units = Case(When(reusable=True, then=F("times_sold")), default=Value(1), output_field=IntegerField())
    rows_qs = (
        CardCode.objects.filter(sku_id__in=ids, sold_at__isnull=False)
        .annotate(day=TruncDate("sold_at", tzinfo=timezone.get_current_timezone()))
        .values("sku_id", "day")
        .annotate(units=Sum(units))
        .order_by("sku_id", "day")
    )
    skus = {sku.pk: sku for sku in Sku.objects.filter(pk__in=ids).select_related("product__merchant")}
    workbook = Workbook(write_only=True)
    sheet = _Sheet(
        workbook,
        _("Sales"),
        [
            _("Merchant"), _("Product"), _("SKU"), _("Day"), _("Units sold"), _("Current price (fen)"),
            _("Amount at current price (fen)"),
        ],
    )  # fmt: skip
    count = 0
    for row in rows_qs.iterator(chunk_size=2000):
        sku = skus[row["sku_id"]]
        sheet.append(
            [
                sku.product.merchant.name, sku.product.title, sku.label, row["day"], row["units"], sku.price_fen,
                row["units"] * sku.price_fen,
            ]
        )  # fmt: skip
        count += 1
    return ExportFile(file=xlsx.saved(workbook), filename=f"sales-{_stamp()}.xlsx", rows=count)
