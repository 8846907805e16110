"""What the merchant reads about a batch: the explanation of each error (:func:`describe`), the
status line and the progress poll (:func:`status_message`, :func:`progress`), the error rows and
their .xlsx report, the import template and the command's summary. Reads the batch and its staged
rows; changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from catalog import codes
from catalog.imports.reasons import (
    DUPLICATE,
    EMPTY,
    ERROR_SAMPLE,
    EXAMPLE,
    EXAMPLE_CODE,
    EXAMPLE_PASSWORD,
    FORMULA,
    IN_STOCK,
    MERGED,
    NUMBER,
    REASONS,
    TOO_LONG,
    UNKNOWN_SKU,
)
from catalog.models import ImportBatch, ImportRow, Product

RUNNING = {ImportBatch.Status.UPLOADED, ImportBatch.Status.PARSING, ImportBatch.Status.COMMITTING}

COLUMNS = {
    "code": gettext_lazy("code"),
    "password": gettext_lazy("password"),
    "denomination": gettext_lazy("denomination"),
}


def describe(reason: str, detail: str) -> str:
    """The merchant-facing explanation of one row's error (in the active language)."""
    if reason == DUPLICATE:
        return _("same code as row %(row)s") % {"row": detail}
    if reason == IN_STOCK:
        return _("this SKU already has this code")
    if reason == EMPTY:
        return _("no code in this row")
    if reason == TOO_LONG:
        column, _sep, length = detail.partition(":")
        return _("the %(column)s has %(length)s characters; at most %(max)s") % {
            "column": COLUMNS.get(column, column),
            "length": length,
            "max": codes.MAX_CODE_LENGTH,
        }
    if reason == UNKNOWN_SKU:
        if detail:
            return _("the denomination “%(label)s” is not the chosen SKU nor a SKU of this product") % {"label": detail}
        return _("no denomination in the row and no SKU chosen for the import")
    if reason == FORMULA:
        return _("the %(column)s cell holds a formula; paste values only") % {"column": COLUMNS.get(detail, detail)}
    if reason == MERGED:
        return _("inside merged cells %(range)s; unmerge them") % {"range": detail}
    if reason == NUMBER:
        return _(
            "the %(column)s cell is a number with 15 or more digits, which Excel rounds; format the "
            "column as text and enter the codes again"
        ) % {"column": COLUMNS.get(detail, detail)}
    if reason == EXAMPLE:
        return _("delete the example row of the template")
    return detail


def status_message(batch: ImportBatch) -> str:
    """What the batch page says about the batch now, from its state alone: the page renders it and
    the progress poll replaces it, so it can never outlive the state it describes (a one-off flash
    message "Checking…" would still be read after the check had finished)."""
    Status = ImportBatch.Status
    if batch.status == Status.UPLOADED:
        return _("Waiting for the check to start… Nothing is imported until you confirm.")
    if batch.status == Status.PARSING:
        return _("Checking the codes… Nothing is imported until you confirm.")
    if batch.status == Status.READY:
        if not batch.valid_rows:
            return _("Check finished: no valid code to import. Fix the file and upload it again.")
        return ngettext(
            "Check finished: %(count)s code can be imported. Nothing is imported until you confirm.",
            "Check finished: %(count)s codes can be imported. Nothing is imported until you confirm.",
            batch.valid_rows,
        ) % {"count": f"{batch.valid_rows:,}"}
    if batch.status == Status.COMMITTING:
        return ngettext("Importing %(count)s code…", "Importing %(count)s codes…", batch.valid_rows) % {
            "count": f"{batch.valid_rows:,}"
        }
    if batch.status == Status.COMMITTED:
        return ngettext("Imported %(count)s code into stock.", "Imported %(count)s codes into stock.",
                        batch.imported_rows) % {"count": f"{batch.imported_rows:,}"}  # fmt: skip
    if batch.status == Status.FAILED:
        return _("The import failed; nothing was imported.")
    return _("The import was cancelled; nothing was imported.")


def progress(batch: ImportBatch) -> dict:
    """What the progress bar polls (no codes)."""
    return {
        "id": batch.pk,
        "status": batch.status,
        "status_label": str(batch.get_status_display()),
        "message": status_message(batch),
        "running": batch.status in RUNNING,
        "processed": batch.processed_rows,
        "total": batch.total_rows,
        "percent": batch.progress_percent,
        "valid": batch.valid_rows,
        "errors": batch.error_rows,
        "imported": batch.imported_rows,
        "failure": batch.failure,
    }


def error_rows(batch: ImportBatch) -> Iterator[tuple[int, str, str, str]]:
    """(row, reason, detail, masked code) of every error: from the staged rows while they exist,
    otherwise the sample kept on the batch."""
    if ImportRow.objects.filter(batch_id=batch.pk).exists():
        rows = (
            ImportRow.objects.filter(batch_id=batch.pk)
            .exclude(error="")
            .order_by("row_number")
            .values_list("row_number", "error", "detail", "hint")
            .iterator(chunk_size=5000)
        )
    else:
        rows = ((e["row"], e["reason"], e.get("detail", ""), e.get("hint", "")) for e in batch.errors)
    yield from rows


def _text_cell(sheet, value: str):
    """A cell that stays text even if it starts with "=" (openpyxl would write a formula)."""
    if not value.startswith("="):
        return value
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


def write_error_report(*, batch: ImportBatch, out: IO[bytes]) -> None:
    """The error report as .xlsx (streamed: openpyxl write-only)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Errors"))
    sheet.append([_("Row"), _("Reason"), _("Detail"), _("Code (masked)")])
    for row, reason, detail, hint in error_rows(batch):
        sheet.append([row, str(REASONS.get(reason, reason)), _text_cell(sheet, describe(reason, detail)),
                      _text_cell(sheet, hint)])  # fmt: skip
    if batch.error_rows > ERROR_SAMPLE and not ImportRow.objects.filter(batch_id=batch.pk).exists():
        sheet.append([])
        sheet.append(
            [_("Only the first %(count)s errors are kept once an import is finished.") % {"count": ERROR_SAMPLE}]
        )
    workbook.save(out)


def write_template(*, out: IO[bytes], product: Product | None = None) -> None:
    """The .xlsx template: bilingual header, one example row, code columns formatted as text."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "卡密 Codes"
    sheet.append(["卡号\nCode", "卡密\nPassword", "面额\nDenomination"])
    labels = list(product.skus.values_list("label", flat=True)) if product is not None else []
    sheet.append([EXAMPLE_CODE, EXAMPLE_PASSWORD, labels[0] if labels else "100元"])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    sheet.row_dimensions[1].height = 32
    for column, width in (("A", 32), ("B", 20), ("C", 16)):
        sheet.column_dimensions[column].width = width
        # Text format keeps long numeric codes and leading zeros intact in Excel.
        for row in range(2, 2001):
            sheet[f"{column}{row}"].number_format = "@"
    sheet["A1"].comment = Comment("每行一个卡号。示例行请删除。One code per row; delete the example row.", "Kameng")
    sheet["B1"].comment = Comment("可选。Optional.", "Kameng")
    sheet["C1"].comment = Comment(
        "未选择面额(SKU)时必填，与商品的面额名称一致。Required when no SKU is chosen: the SKU's label.", "Kameng"
    )
    sheet.freeze_panes = "A2"
    notes = workbook.create_sheet("说明 Help")
    for line in (
        "只读取第一个工作表。Only the first sheet is read.",
        "第一行是表头，可以保留。The header row may stay.",
        "请勿使用公式或合并单元格。No formulas, no merged cells.",
        "长数字卡号请设置为文本格式，否则 Excel 会四舍五入。Format long numeric codes as text, or Excel rounds them.",
        *(f"面额 Denomination: {label}" for label in labels),
    ):
        notes.append([line])
    notes.column_dimensions["A"].width = 90
    workbook.save(out)


def summary_lines(batch: ImportBatch, *, limit: int = 20) -> list[str]:
    """A plain-text summary for the management command (no codes)."""
    lines = [
        _("%(valid)s valid rows, %(errors)s rows with errors, of %(total)s rows.")
        % {"valid": batch.valid_rows, "errors": batch.error_rows, "total": batch.total_rows}
    ]
    for reason, count in (batch.error_counts or {}).items():
        lines.append(f"  {REASONS.get(reason, reason)}: {count}")
    for error in (batch.errors or [])[:limit]:
        lines.append(
            "  "
            + _("row %(row)s: %(reason)s — %(detail)s")
            % {
                "row": error["row"],
                "reason": REASONS.get(error["reason"], error["reason"]),
                "detail": describe(error["reason"], error.get("detail", "")),
            }
        )
    if batch.error_rows > limit:
        lines.append("  " + _("… and %(count)s more.") % {"count": batch.error_rows - limit})
    return lines
