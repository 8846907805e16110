"""Rows out of a stored upload, streamed: .xlsx through openpyxl's read-only mode with a compact
shared-string table (:class:`_SharedStrings`) and a scan of the sheet XML for merged cells and the
row count; CSV through the csv module; pasted or plain text line by line. Every source gives
``(row number as the merchant sees it, cell values)``; what the cells mean is decided in
:mod:`catalog.imports.checks`."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import tempfile
import zipfile
from array import array
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import IO
from xml.etree import ElementTree

from django.utils.translation import gettext as _

from catalog.imports.reasons import ImportRefused
from catalog.imports.storage import _decrypted_chunks, _stored_path
from catalog.models import ImportBatch

MAX_MERGED_ROWS = 10_000  # more rows than this inside merged cells: the sheet is refused


class _ChunkStream(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks (to feed csv through TextIOWrapper)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]  # a view: no copy
        return size


@dataclass
class _Rows:
    rows: Generator[tuple[int, tuple], None, None]  # (row number as the merchant sees it, cell values)
    estimate: int  # rows expected, for the progress bar (0: unknown)
    merged: dict[int, str]  # row number -> merged range covering it
    formulas: bool  # cells may hold formulas (xlsx)
    split_single: bool  # split a lone cell on the delimiter


_MERGE_RE = re.compile(rb"<(?:\w+:)?mergeCell\b[^>]*?\bref=\"([A-Z]{1,3})(\d+)(?::([A-Z]{1,3})(\d+))?\"")


_ROW_RE = re.compile(rb"<(?:\w{1,10}:)?row[\s>/]")
_ROW_TAIL = 15  # bytes kept between chunks: a "<row" cut in two is found; one ending in them was counted


def _scan_sheet(archive: zipfile.ZipFile, member: str) -> tuple[dict[int, str], int]:
    """Rows covered by merged cells in one sheet, read straight from the sheet XML (openpyxl's
    read-only mode does not report merges), and how many rows the sheet holds: the progress bar's
    total, since the sheet's own dimension is often missing (openpyxl's write-only mode and other
    exporters write "A1"), which kept the bar at 100% from the first row. Refuses sheets with very
    many merged rows."""
    merged: dict[int, str] = {}
    tail = b""
    row_tail = b""
    row_count = 0
    with archive.open(member) as sheet:
        while chunk := sheet.read(1 << 20):
            rows_data = row_tail + chunk
            skip = len(row_tail)
            row_count += sum(1 for match in _ROW_RE.finditer(rows_data) if match.end() > skip)
            row_tail = rows_data[-_ROW_TAIL:]
            data = tail + chunk
            last_end = 0
            for match in _MERGE_RE.finditer(data):
                first, last = int(match.group(2)), int(match.group(4) or match.group(2))
                ref = match.group(0).split(b'ref="')[1].rstrip(b'"').decode()
                if len(merged) + (last - first + 1) > MAX_MERGED_ROWS:
                    raise ImportRefused(
                        _(
                            "The sheet has too many merged cells. Unmerge all cells (select all, then Unmerge) and "
                            "upload it again."
                        )
                    )
                for row in range(first, last + 1):
                    merged.setdefault(row, ref)
                last_end = match.end()
            tail = data[max(last_end, len(data) - 512) :]
    return merged, row_count


class _SharedStrings:
    """The workbook's shared-string table, compact: UTF-8 text in one buffer plus an array of end
    offsets (~1/5 of the memory of a list of str). Excel stores every text cell here, and openpyxl
    keeps the table in memory even in read-only mode; with a million codes and passwords its own
    list (plus the emptied XML elements its loader leaves attached to the root) takes >250 MB."""

    def __init__(self):
        self._text = bytearray()
        self._ends = array("I")  # 4-byte offsets: MAX_SHARED_STRINGS_BYTES keeps the text far below 4 GB

    def append(self, value: str) -> None:
        self._text += value.encode()
        self._ends.append(len(self._text))

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> str:
        if index < 0:
            index += len(self._ends)
        end = self._ends[index]  # IndexError for a bad reference, as with a list
        start = self._ends[index - 1] if index else 0
        return self._text[start:end].decode()


_SST = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _read_shared_strings(source: IO[bytes]) -> _SharedStrings:
    """Same content as openpyxl's ``read_string_table`` (plain text plus rich-text runs, phonetic
    runs ignored, its ``x005F_`` unescaping), in flat memory."""
    strings = _SharedStrings()
    si, t, r = f"{_SST}si", f"{_SST}t", f"{_SST}r"
    from openpyxl.xml.functions import iterparse  # openpyxl's choice: defusedxml when installed

    events = iterparse(source, events=("start", "end"))
    _event, root = next(events)
    for event, element in events:
        if event != "end" or element.tag != si:
            continue
        parts = []
        for child in element:
            if child.tag == t:
                parts.append(child.text or "")
            elif child.tag == r:
                run = child.find(t)
                if run is not None and run.text:
                    parts.append(run.text)
        strings.append("".join(parts).replace("x005F_", ""))
        root.clear()  # drop the finished <si> elements, not just their content
    return strings


def _load_workbook(fp: IO[bytes]):
    """``openpyxl.load_workbook(fp, read_only=True)`` with the compact shared-string table."""
    from openpyxl.reader.excel import SHARED_STRINGS, ExcelReader

    class Reader(ExcelReader):
        def read_strings(self):
            part = self.package.find(SHARED_STRINGS)
            if part is not None:
                with self.archive.open(part.PartName[1:]) as source:
                    self.shared_strings = _read_shared_strings(source)

    reader = Reader(fp, read_only=True, keep_vba=False, data_only=False, keep_links=False)
    reader.read()
    return reader.wb


def _xlsx_rows(fp: IO[bytes]) -> _Rows:
    try:
        workbook = _load_workbook(fp)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, ElementTree.ParseError) as exc:
        raise ImportRefused(_("This .xlsx file cannot be read (%(error)s). Save it again from Excel or WPS.")
                            % {"error": type(exc).__name__}) from None  # fmt: skip
    if not workbook.worksheets:
        workbook.close()
        raise ImportRefused(_("The workbook has no worksheet."))
    sheet = workbook.worksheets[0]
    merged, row_count = _scan_sheet(workbook._archive, sheet._worksheet_path)
    estimate = max(sheet.max_row or 0, row_count)
    # Dimensions written by some tools are wrong (too small): read every row the sheet holds.
    sheet.reset_dimensions()

    def rows() -> Generator[tuple[int, tuple], None, None]:
        try:
            yield from enumerate(sheet.iter_rows(values_only=True), start=1)
        finally:
            workbook.close()

    return _Rows(rows(), estimate, merged, formulas=True, split_single=True)


def _text_rows(chunks: Iterator[bytes], *, delimiter: str, use_csv: bool, estimate: int) -> _Rows:
    stream = io.TextIOWrapper(io.BufferedReader(_ChunkStream(chunks), 1 << 16), encoding="utf-8", newline="")
    if use_csv:
        reader = csv.reader(stream, delimiter=delimiter or ",", strict=False)

        def rows() -> Generator[tuple[int, tuple], None, None]:
            start = 1
            try:
                for record in reader:
                    yield start, tuple(record)
                    start = reader.line_num + 1
            except csv.Error:
                raise ImportRefused(
                    _("Line %(line)s of the CSV file cannot be read (a very long field or a stray quote).")
                    % {"line": start}
                ) from None

    else:

        def rows() -> Generator[tuple[int, tuple], None, None]:
            for number, line in enumerate(stream, start=1):
                line = line.rstrip("\r\n")
                yield number, (tuple(line.split(delimiter, 2)) if delimiter else (line,))

    return _Rows(rows(), estimate, {}, formulas=False, split_single=False)


def _open_rows(batch: ImportBatch, stack: contextlib.ExitStack) -> _Rows:
    path = _stored_path(batch)
    if batch.source == ImportBatch.Source.XLSX:
        spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=64 << 20))  # noqa: SIM115
        for chunk in _decrypted_chunks(path):
            spool.write(chunk)
        spool.seek(0)
        rows = _xlsx_rows(spool)
    else:
        estimate = sum(chunk.count(b"\n") for chunk in _decrypted_chunks(path)) + 1
        use_csv = batch.source == ImportBatch.Source.CSV and len(batch.delimiter) <= 1
        rows = _text_rows(_decrypted_chunks(path), delimiter=batch.delimiter, use_csv=use_csv, estimate=estimate)
    stack.callback(rows.rows.close)
    return rows
