"""Writing .xlsx safely: strings stay text.

openpyxl turns a string that starts with "=" into a formula, so a card code, a buyer's input or a
product title like ``=HYPERLINK(...)`` would run in the merchant's spreadsheet (CSV/formula
injection). :func:`row` writes every string as a text cell, with the characters XML cannot hold
replaced, and leaves numbers and dates as they are. Use it with write-only workbooks.
"""

from __future__ import annotations

import tempfile
from typing import IO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE


def text_cell(sheet, value: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=None)
    cell.value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    cell.data_type = "s"  # text, even when it starts with "="
    return cell


def row(sheet, values) -> list:
    return [text_cell(sheet, value) if isinstance(value, str) else value for value in values]


def saved(workbook: Workbook) -> IO[bytes]:
    """The workbook written to an anonymous temporary file, rewound (the caller hands it to a
    response, which closes it)."""
    target = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 (closed by the response)
    try:
        workbook.save(target)
        target.seek(0)
    except BaseException:
        target.close()
        raise
    return target
