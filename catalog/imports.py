"""Bulk import of card codes: upload → background check → preview → confirm → commit.

The flow (every step is a function below; admin views, Celery tasks and ``manage.py import_codes``
all call these):

1. :func:`create_batch` checks the upload *before storing anything* (empty, over
   ``IMPORT_MAX_UPLOAD_MB``, not an .xlsx although it claims to be, an old .xls, binary junk, text
   that is neither UTF-8 nor GB18030 — the usual encoding of a CSV saved by Chinese Excel/WPS),
   stores it Fernet-encrypted under ``IMPORT_UPLOAD_DIR`` (it holds plaintext codes; CSV and text
   are stored re-encoded as UTF-8), creates the :class:`ImportBatch` and queues the check on commit
   (a worker runs it; in the embedded run, a background thread: ``catalog.tasks.enqueue_long``).
2. :func:`parse_batch` (task ``catalog.tasks.parse_import``) streams the rows — openpyxl read-only
   for .xlsx, the csv module for CSV, plain lines for pasted text — validates each row, encrypts,
   fingerprints and masks the valid ones and stages every row (valid or not) as
   :class:`ImportRow` in chunks of :data:`CHUNK_ROWS` (PostgreSQL ``COPY``; ``bulk_create`` on
   SQLite), moving ``processed_rows`` after every chunk and at least every
   :data:`PROGRESS_SECONDS` for the progress bar (its total: the rows counted in the sheet XML
   while looking for merged cells, or the lines of a text file). Then set-based SQL
   marks duplicates inside the file and codes already in stock, counts the errors by reason, keeps
   the first :data:`ERROR_SAMPLE` of them in ``ImportBatch.errors`` and moves the batch to READY.
   Python never holds more than one chunk of rows, whatever the file size.
3. The merchant looks at the preview (its status line is :func:`status_message`, from the batch's
   state, refreshed by the poll), may switch the mode (:func:`set_mode`), and confirms
   (:func:`request_commit`: READY → COMMITTING, a conditional update, so a double click commits
   once) or cancels (:func:`cancel_batch`).
4. :func:`commit_batch` (task ``catalog.tasks.commit_import``) copies the valid staged rows into
   ``catalog_cardcode`` with one ``INSERT … SELECT … ON CONFLICT (sku_id, fingerprint) DO NOTHING``
   in one transaction. In all-or-nothing mode, fewer inserted rows than valid ones (a concurrent
   import added some of the codes meanwhile) rolls everything back; the rows now in stock are
   marked and the batch goes back to READY with a message. Then the staged rows and the upload
   are deleted and ``stock_changed`` is sent.

Row rules
* Columns: code (卡号), password (卡密, optional), denomination (面额: the SKU label; needed when
  the batch has no SKU). A header row is recognised by its words (see :data:`HEADER_WORDS`) and
  maps the columns in any order; without a header the order is code, password, denomination.
  A first row worded like column names but naming none of ours ("序号, 商品, 金额"; a title row
  above our header is allowed), a header without a code column, or — with no SKU chosen — without
  a denomination column refuses the file as a whole, naming the columns found and the header's
  row, instead of reading it as codes. A file without a single non-blank cell is "empty (0 rows)".
  In text (and CSV with a multi-character delimiter such as ``----``) each line is split on the
  merchant's delimiter; in a one-column sheet a cell holding ``code<delimiter>password`` is split
  the same way. Completely blank rows are skipped, not errors.
* Errors (:data:`REASONS`): empty code, too long (> ``codes.MAX_CODE_LENGTH``), duplicate inside
  the file, already in stock, unknown denomination, formula instead of value, inside merged cells,
  a long number Excel has rounded (15+ digits stored as a number), the template's example row.
* Only the first worksheet of a workbook is read. A sheet with more than :data:`MAX_MERGED_ROWS`
  rows inside merged cells is refused as a whole.
* Duplicates against stock compare the newest-key fingerprint set-based in SQL; while a key
  rotation is pending (several ``CARD_CODE_KEYS``) the older-key fingerprints are also checked,
  one query per chunk. ``ON CONFLICT`` at commit only knows the newest key, which
  ``rotate_card_keys`` makes the only one.

Speed and memory (figures in docs/PERFORMANCE.md)
* Memory is flat in the number of rows: one chunk of rows in Python at a time; .xlsx shared
  strings (where Excel keeps every text cell) are held in a compact table (:class:`_SharedStrings`)
  instead of openpyxl's list of str, which alone took >250 MB for a million codes and passwords;
  the decrypted .xlsx itself is bounded by the upload limit.
* Outside a transaction (a worker, the command) each chunk is COPYed by a background thread on
  its own connection while the next chunk is parsed (:class:`_Stager`).
* After staging, ``ANALYZE`` refreshes the staging table's statistics: with stale ones PostgreSQL
  may plan the duplicate check as a nested loop that regroups the batch for every row (quadratic).

Secrecy: codes never appear in log lines, exception messages, task arguments or error details —
an error row shows at most the mask (``AB••••56``). The stored upload is encrypted in chunks of
:data:`STORE_CHUNK` bytes (one Fernet token per line); .xlsx files are decrypted into memory
(a ``SpooledTemporaryFile``, so only files bigger than 64 MB, possible through the management
command, touch the disk) because the zip format needs random access. The full error list lives in
``ImportRow`` until the batch is committed or cancelled; afterwards the first
:data:`ERROR_SAMPLE` errors remain in ``ImportBatch.errors`` (and in the downloadable report).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import logging
import os
import queue
import re
import tempfile
import threading
import traceback
import uuid
import warnings
import zipfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from time import monotonic
from typing import IO
from xml.etree import ElementTree

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _

from catalog import codes
from catalog.models import CardCode, ImportBatch, ImportRow, Product, Sku
from catalog.signals import send_stock_changed

logger = logging.getLogger(__name__)

CHUNK_ROWS = 5000  # rows staged per COPY; the progress bar moves at least once per chunk
PROGRESS_SECONDS = 0.5  # ...and at least this often while a chunk is being read (slow sheets, SQLite)
PROGRESS_CHECK_ROWS = 256  # rows between two looks at the clock (the per-row path stays lean)
ERROR_SAMPLE = 1000  # errors kept in ImportBatch.errors (and in the report once the batch is finished)
STORE_CHUNK = 1 << 20  # plaintext bytes per Fernet token of a stored upload
MAX_MERGED_ROWS = 10_000  # more rows than this inside merged cells: the sheet is refused
MAX_SHARED_STRINGS_BYTES = 160 << 20  # uncompressed xl/sharedStrings.xml (openpyxl keeps it in memory)
EXAMPLE_CODE = "EXAMPLE-0000-0000-0000"  # the template's example row, refused if left in the file
EXAMPLE_PASSWORD = "123456"  # noqa: S105 (printed in the template, refused on import)

# Reasons a row is refused (ImportRow.error / ImportBatch.error_counts keys).
EMPTY = "empty"
TOO_LONG = "too_long"
DUPLICATE = "duplicate_in_file"
IN_STOCK = "in_stock"
UNKNOWN_SKU = "unknown_sku"
FORMULA = "formula"
MERGED = "merged"
NUMBER = "number"
EXAMPLE = "example"

REASONS = {
    EMPTY: gettext_lazy("empty code"),
    TOO_LONG: gettext_lazy("too long"),
    DUPLICATE: gettext_lazy("duplicate inside the file"),
    IN_STOCK: gettext_lazy("already in stock"),
    UNKNOWN_SKU: gettext_lazy("unknown denomination"),
    FORMULA: gettext_lazy("formula instead of value"),
    MERGED: gettext_lazy("merged cells"),
    NUMBER: gettext_lazy("number rounded by Excel"),
    EXAMPLE: gettext_lazy("example row of the template"),
}

COLUMNS = {
    "code": gettext_lazy("code"),
    "password": gettext_lazy("password"),
    "denomination": gettext_lazy("denomination"),
}

# Header cells, lower-cased; a cell may also hold several of them on separate lines ("卡号\nCode").
HEADER_WORDS = {
    "code": {"卡号", "code", "codes", "card code", "card number", "card no", "cdkey", "cd-key", "key", "激活码",
             "兑换码", "券码", "账号"},
    "password": {"卡密", "密码", "password", "pass", "pwd", "pin", "secret"},
    "denomination": {"面额", "面值", "规格", "denomination", "sku", "face value"},
}  # fmt: skip

RUNNING = {ImportBatch.Status.UPLOADED, ImportBatch.Status.PARSING, ImportBatch.Status.COMMITTING}
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LOCK_NAMESPACE = 0x4B4D4950  # "KMIP": pg advisory locks of import parses, (namespace, batch id)


class ImportRefused(Exception):
    """A reason to refuse a file or an action, worded for the merchant. Never contains a code."""


class _Cancelled(Exception):
    pass


# --- The encrypted store -------------------------------------------------------------------------
def _fernet():
    return codes._configured()[0]  # the same MultiFernet (CARD_CODE_KEYS) that encrypts the codes


def upload_dir() -> Path:
    directory = Path(settings.IMPORT_UPLOAD_DIR)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _store(chunks: Iterable[bytes]) -> str:
    """Encrypt ``chunks`` into a new file of the upload directory; returns its name."""
    fernet = _fernet()
    directory = upload_dir()
    name = f"{uuid.uuid4().hex}.enc"
    partial = directory / f".{name}.part"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            pending = bytearray()
            for chunk in chunks:
                pending += chunk
                while len(pending) >= STORE_CHUNK:
                    out.write(fernet.encrypt(bytes(pending[:STORE_CHUNK])) + b"\n")
                    del pending[:STORE_CHUNK]
            if pending:
                out.write(fernet.encrypt(bytes(pending)) + b"\n")
        partial.rename(directory / name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return name


def _stored_path(batch: ImportBatch) -> Path:
    if not batch.upload_path:
        raise ImportRefused(_("The uploaded file is no longer kept. Upload it again."))
    path = Path(settings.IMPORT_UPLOAD_DIR) / Path(batch.upload_path).name
    if not path.exists():
        raise ImportRefused(_("The uploaded file is no longer kept. Upload it again."))
    return path


def _decrypted_chunks(path: Path) -> Iterator[bytes]:
    fernet = _fernet()
    with open(path, "rb") as stored:
        for line in stored:
            if line.strip():
                yield fernet.decrypt(line.strip())


def _delete_upload(name: str) -> None:
    if name:
        (Path(settings.IMPORT_UPLOAD_DIR) / Path(name).name).unlink(missing_ok=True)


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


# --- Upload checks -------------------------------------------------------------------------------
def max_upload_bytes() -> int:
    return settings.IMPORT_MAX_UPLOAD_MB * 1024 * 1024


def _size_of(upload: IO[bytes]) -> int:
    size = getattr(upload, "size", None)
    if size is None:
        position = upload.tell()
        upload.seek(0, os.SEEK_END)
        size = upload.tell()
        upload.seek(position)
    return size


def _read_chunks(upload: IO[bytes], size: int = STORE_CHUNK) -> Iterator[bytes]:
    upload.seek(0)
    while chunk := upload.read(size):
        yield chunk


def _check_xlsx(upload: IO[bytes]) -> None:
    try:
        with zipfile.ZipFile(upload) as archive:
            names = archive.namelist()
            if "[Content_Types].xml" not in names or not any(name.startswith("xl/") for name in names):
                raise ImportRefused(
                    _("This is a ZIP archive but not an Excel workbook. Save the sheet as .xlsx (Excel or WPS).")
                )
            strings = next((info for info in archive.infolist() if info.filename == "xl/sharedStrings.xml"), None)
            if strings is not None and strings.file_size > MAX_SHARED_STRINGS_BYTES:
                raise ImportRefused(_("This workbook holds too much text. Split it into several files."))
    except zipfile.BadZipFile:
        raise ImportRefused(_("This .xlsx file is damaged or incomplete. Save it again and upload it.")) from None


def _text_encoding(upload: IO[bytes]) -> str:
    """UTF-8 (with or without BOM) or else GB18030 (CSV saved by Chinese Excel/WPS); refuses
    binary content, undecodable text and text without a single non-blank character."""
    upload.seek(0)
    head = upload.read(4096)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates: tuple[str, ...] = ("utf-16",)  # Excel's "Unicode text" export
    elif b"\x00" in head:
        raise ImportRefused(_("This file is not a spreadsheet or text file. Upload .xlsx, .csv or .txt."))
    else:
        candidates = ("utf-8-sig", "gb18030")
    for encoding in candidates:
        decoder = codecs.getincrementaldecoder(encoding)()
        content = False
        try:
            for chunk in _read_chunks(upload):
                text = decoder.decode(chunk)
                if "\x00" in text:
                    raise ImportRefused(_("This file is not a spreadsheet or text file. Upload .xlsx, .csv or .txt."))
                content = content or not text.isspace()
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        if not content:
            raise ImportRefused(_("The file contains no codes."))
        return encoding
    raise ImportRefused(
        _("The text of this file cannot be read: it is neither UTF-8 nor GB18030. Save the CSV as UTF-8 and upload it.")
    )


def _transcoded(upload: IO[bytes], encoding: str) -> Iterator[bytes]:
    """The upload re-encoded as UTF-8 (what is stored), streamed."""
    decoder = codecs.getincrementaldecoder(encoding)()
    for chunk in _read_chunks(upload):
        yield decoder.decode(chunk).encode()
    yield decoder.decode(b"", final=True).encode()


def _inspect(upload: IO[bytes], *, claimed: str, filename: str, max_bytes: int | None) -> tuple[str, Iterator[bytes]]:
    """Decide the source type from the content; returns it and the bytes to store. Raises ImportRefused."""
    size = _size_of(upload)
    if size == 0:
        raise ImportRefused(_("The file is empty."))
    if max_bytes is not None and size > max_bytes:
        raise ImportRefused(
            _(
                "The file is %(size)s MB; the limit is %(limit)s MB. Split it, or ask an operator to use "
                "manage.py import_codes."
            )
            % {"size": f"{size / 1048576:.1f}", "limit": f"{max_bytes / 1048576:g}"}
        )
    upload.seek(0)
    head = upload.read(8)
    upload.seek(0)
    wants_xlsx = claimed == ImportBatch.Source.XLSX or filename.lower().endswith((".xlsx", ".xlsm"))
    if head.startswith(_OLE_MAGIC):
        raise ImportRefused(
            _(
                "This is an old Excel 97–2003 (.xls) file or a password-protected workbook. Remove the "
                "password and save it as .xlsx."
            )
        )
    if head.startswith(_ZIP_MAGIC):
        if claimed in {ImportBatch.Source.CSV, ImportBatch.Source.TEXT}:
            raise ImportRefused(_("This is an Excel workbook, not a CSV file. Choose Excel or automatic detection."))
        _check_xlsx(upload)
        return ImportBatch.Source.XLSX, _read_chunks(upload)
    if wants_xlsx:
        raise ImportRefused(_("This file is not a valid .xlsx workbook. Save it from Excel or WPS as .xlsx."))
    encoding = _text_encoding(upload)
    # .csv (or "CSV" chosen) goes through the csv module; anything else (.txt…) is read line by line.
    is_csv = claimed == ImportBatch.Source.CSV or (not claimed and filename.lower().endswith(".csv"))
    return (ImportBatch.Source.CSV if is_csv else ImportBatch.Source.TEXT), _transcoded(upload, encoding)


def create_batch(
    *,
    product: Product,
    sku: Sku | None,
    mode: str = ImportBatch.Mode.ALL_OR_NOTHING,
    delimiter: str = "",
    created_by=None,
    upload: IO[bytes] | None = None,
    filename: str = "",
    text: str | None = None,
    source: str = "",
    max_bytes: int | None = -1,
    enqueue: bool = True,
) -> ImportBatch:
    """Check and store an upload (a binary file-like ``upload``, or pasted ``text``) and create its
    batch. ``max_bytes``: -1 for ``IMPORT_MAX_UPLOAD_MB``, ``None`` for no limit. Queues the check
    on commit unless ``enqueue`` is false (the management command parses synchronously)."""
    if sku is not None and sku.product_id != product.pk:
        raise ImportRefused(_("This SKU does not belong to the chosen product."))
    if mode not in ImportBatch.Mode.values:
        raise ImportRefused(_("Unknown import mode."))
    if len(delimiter) > 4 or any(ch in delimiter for ch in '\r\n"'):
        raise ImportRefused(_("The delimiter must be 1 to 4 characters, not a quote or a line break."))
    if max_bytes == -1:
        max_bytes = max_upload_bytes()
    if text is not None:
        if upload is not None:
            raise ImportRefused(_("Upload a file or paste codes, not both."))
        if not text.strip():
            raise ImportRefused(_("The pasted text contains no codes."))
        data = text.encode()
        if max_bytes is not None and len(data) > max_bytes:
            raise ImportRefused(_("The pasted text is too long. Upload it as a file."))
        kind, chunks = ImportBatch.Source.TEXT, iter([data])
    elif upload is not None:
        kind, chunks = _inspect(upload, claimed=source, filename=filename, max_bytes=max_bytes)
    else:
        raise ImportRefused(_("Upload a file or paste codes."))

    stored = _store(chunks)
    try:
        with transaction.atomic():
            batch = ImportBatch.objects.create(
                merchant_id=product.merchant_id,
                product=product,
                sku=sku,
                created_by=created_by,
                source=kind,
                filename=Path(filename).name[-200:] if filename else "",
                upload_path=stored,
                delimiter=delimiter,
                mode=mode,
            )
            if enqueue:
                _enqueue_parse(batch.pk)
    except BaseException:
        _delete_upload(stored)
        raise
    return batch


def _enqueue_parse(batch_id: int) -> None:
    from catalog import tasks

    # In the background, even in the embedded run; messages in the language of whoever queued it.
    tasks.enqueue_long(tasks.parse_import, batch_id=batch_id, language=get_language() or "")


def _enqueue_commit(batch_id: int) -> None:
    from catalog import tasks

    tasks.enqueue_long(tasks.commit_import, batch_id=batch_id, language=get_language() or "")


# --- Reading rows --------------------------------------------------------------------------------
@dataclass
class _Rows:
    rows: Iterator[tuple[int, tuple]]  # (row number as the merchant sees it, cell values)
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

    def rows() -> Iterator[tuple[int, tuple]]:
        try:
            yield from enumerate(sheet.iter_rows(values_only=True), start=1)
        finally:
            workbook.close()

    return _Rows(rows(), estimate, merged, formulas=True, split_single=True)


def _text_rows(chunks: Iterator[bytes], *, delimiter: str, use_csv: bool, estimate: int) -> _Rows:
    stream = io.TextIOWrapper(io.BufferedReader(_ChunkStream(chunks), 1 << 16), encoding="utf-8", newline="")
    if use_csv:
        reader = csv.reader(stream, delimiter=delimiter or ",", strict=False)

        def rows() -> Iterator[tuple[int, tuple]]:
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

        def rows() -> Iterator[tuple[int, tuple]]:
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


# --- Checking rows ---------------------------------------------------------------------------------
def _cell(value, formulas: bool) -> tuple[str, str]:
    """(text, error) of one cell value."""
    if value is None:
        return "", ""
    if isinstance(value, str):
        if formulas and value.startswith("="):
            return "", FORMULA
        return value.strip(), ""
    if isinstance(value, bool):
        return str(value), ""
    if isinstance(value, int):
        return ("", NUMBER) if abs(value) >= 10**15 else (str(value), "")
    if isinstance(value, float):
        if value.is_integer():
            return ("", NUMBER) if abs(value) >= 1e15 else (str(int(value)), "")
        return repr(value), ""
    if isinstance(value, datetime | date | time):
        return value.isoformat(), ""
    if type(value).__name__ in {"ArrayFormula", "DataTableFormula"}:
        return "", FORMULA
    return str(value).strip(), ""


def _header_role(text: str) -> str | None:
    lowered = text.strip().lower()
    candidates = {lowered, *(part.strip() for part in re.split(r"[\n/|()（）]+", lowered) if part.strip())}
    for role, words in HEADER_WORDS.items():
        if candidates & words:
            return role
    return None


def _header(cells: tuple) -> dict[str, int] | None:
    """Column roles if ``cells`` is a header row: at least one known header word and no digits
    anywhere (codes nearly always have digits; headers do not). The roles may lack "code": the
    caller refuses such a file (:meth:`_Checker.use_header`)."""
    roles: dict[str, int] = {}
    for index, value in enumerate(cells):
        if value is None:
            continue
        if not isinstance(value, str):
            return None
        if any(ch.isdigit() for ch in value):
            return None
        role = _header_role(value)
        if value.strip() and role is not None and role not in roles:
            roles[role] = index
    if not roles:
        return None
    if "code" not in roles and "password" in roles:
        roles["code"] = roles.pop("password")  # a lone "卡密" column holds the codes themselves
    return roles


# An English column name: words (lower-case, Capitalised, or short capitals like "ID"), apart.
_LABEL_RE = re.compile(r"(?:[A-Z]?[a-z]+|[A-Z]{1,4})(?:[ ._/&'()#:-]+(?:[A-Z]?[a-z]+|[A-Z]{1,4}))*[.:#]?")


def _is_label(text: str) -> bool:
    if len(text) > 40 or any(ch.isdigit() for ch in text):
        return False
    if any(ch.isalpha() and not ch.isascii() for ch in text):
        return True  # Chinese (or other) words: card codes are ASCII
    return bool(_LABEL_RE.fullmatch(text)) and any(ch.islower() for ch in text)


def _looks_like_labels(cells: tuple) -> bool:
    """Whether the first row is a header of someone else's columns ("序号, 商品, 金额", "Serial,
    Product"): text only, no digits, worded like names rather than like codes (capitals and
    digits). A single lower-case word stays data: it could be a (rare) letters-only code."""
    present = [value for value in cells if value is not None and not (isinstance(value, str) and not value.strip())]
    if not present or not all(isinstance(value, str) for value in present):
        return False
    texts = [value.strip() for value in present]
    if len(texts) == 1 and texts[0].isascii() and texts[0].islower() and " " not in texts[0]:
        return False
    return all(_is_label(text) for text in texts)


def _found_columns(cells: tuple) -> str:
    """The header's non-empty cells, for a message (at most 12, each shortened)."""
    names = [" ".join(str(value).split())[:30] for value in cells if value is not None and str(value).strip()]
    return ", ".join(names[:12]) + (", …" if len(names) > 12 else "")


def _label_key(text: str) -> str:
    return text.strip().casefold()


def _sku_labels(batch: ImportBatch) -> dict[str, int]:
    """Denomination text -> SKU id; "100元" also answers to "100"."""
    skus = [batch.sku] if batch.sku_id else list(Sku.objects.filter(product_id=batch.product_id))
    labels: dict[str, int] = {}
    for sku in skus:
        key = _label_key(sku.label)
        labels[key] = sku.pk
        if key.endswith("元") and key[:-1].strip().replace(".", "", 1).isdigit():
            labels.setdefault(key[:-1].strip(), sku.pk)
    return labels


def _blank(cells: tuple) -> bool:
    return all(value is None or (value.__class__ is str and not value.strip()) for value in cells)


class _Checker:
    """Turns raw rows into staged rows. The per-row path is kept lean: it runs a million times."""

    def __init__(self, batch: ImportBatch, rows: _Rows):
        self.sku_id = batch.sku_id
        self.merged = rows.merged
        self.formulas = rows.formulas
        self.labels = _sku_labels(batch)
        self.header_allowed = True
        self.header_row: int | None = None  # row number of the header, once one is found
        self.foreign_header: tuple[int, tuple] | None = None  # first row worded like column names
        self.delimiter = batch.delimiter
        self.split_single = rows.split_single and bool(batch.delimiter)
        self.old_keys = len(settings.CARD_CODE_KEYS) > 1
        self.max_length = codes.MAX_CODE_LENGTH
        self.last_code = ""  # plaintext of the last valid row, only for the older-key check
        self._set_columns({"code": 0, "password": 1, "denomination": 2})

    def use_header(self, number: int, cells: tuple, roles: dict[str, int]) -> None:
        """Map the columns by a header row; refuse the file when a column it needs is missing
        (rather than reading the header and every row under it as wrong data)."""
        if "code" not in roles:
            raise ImportRefused(
                _(
                    "The file has no code column: the header in row %(row)s names no 卡号 (Code) or 卡密 "
                    "(Password) column. Found columns: %(found)s. Use the columns of the template (卡号, 卡密, "
                    "面额), or put the codes in the first column without a header."
                )
                % {"row": number, "found": _found_columns(cells)}
            )
        if not self.sku_id and "denomination" not in roles:
            raise ImportRefused(
                _(
                    "The file has no denomination column (面额, Denomination) and no SKU was chosen, so no row "
                    "can be matched to a SKU: choose the SKU on the upload form, or add a 面额 column. Header in "
                    "row %(row)s. Found columns: %(found)s."
                )
                % {"row": number, "found": _found_columns(cells)}
            )
        self.header_row = number
        self._set_columns(roles)

    def _set_columns(self, columns: dict[str, int]) -> None:
        self.code_index = columns["code"]
        self.password_index = columns.get("password", -1)
        self.denomination_index = columns.get("denomination", -1)

    def check(self, number: int, cells: tuple) -> tuple | None:
        """One staged row ``(row, sku_id, payload, fingerprint, hint, error, detail)``, or None
        for a blank or header row."""
        if self.header_allowed:
            if not cells or _blank(cells):
                return None
            roles = _header(cells)
            if roles is not None:
                self.use_header(number, cells, roles)
                return None
            if self.header_row is None and _looks_like_labels(cells):
                # Someone else's column names, or a title above our header: decided by the next row.
                self.foreign_header = self.foreign_header or (number, cells)
                return None
            if self.foreign_header is not None and self.header_row is None:
                self.use_header(*self.foreign_header, {})  # codes under a header of none of our columns
            self.header_allowed = False
        size = len(cells)
        index = self.code_index
        raw_code = cells[index] if index < size else None
        if (raw_code is None or (raw_code.__class__ is str and not raw_code.strip())) and _blank(cells):
            return None
        index = self.password_index
        raw_password = cells[index] if 0 <= index < size else None
        index = self.denomination_index
        raw_denomination = cells[index] if 0 <= index < size else None
        if self.split_single and raw_password is None and raw_code.__class__ is str and self.delimiter in raw_code:
            parts = raw_code.split(self.delimiter, 2)
            raw_code, raw_password = parts[0], parts[1]
            if len(parts) > 2 and raw_denomination is None:
                raw_denomination = parts[2]
        formulas = self.formulas
        if raw_code.__class__ is str and not (formulas and raw_code[:1] == "="):
            code, code_error = raw_code.strip(), ""
        else:
            code, code_error = _cell(raw_code, formulas)
        if raw_password is None:
            password, password_error = "", ""
        else:
            password, password_error = _cell(raw_password, formulas)
        if raw_denomination is None:
            denomination, denomination_error = "", ""
        else:
            denomination, denomination_error = _cell(raw_denomination, formulas)

        hint = codes.mask(code)[:24] if code else ""
        if self.merged and number in self.merged:
            return (number, None, "", "", hint, MERGED, self.merged[number])
        if code_error or password_error or denomination_error:
            role = "code" if code_error else ("password" if password_error else "denomination")
            return (number, None, "", "", hint, code_error or password_error or denomination_error, role)
        if not code:
            return (number, None, "", "", "", EMPTY, "")
        if len(code) > self.max_length:
            return (number, None, "", "", hint, TOO_LONG, f"code:{len(code)}")
        if len(password) > self.max_length:
            return (number, None, "", "", hint, TOO_LONG, f"password:{len(password)}")
        if self.sku_id:
            sku_id = self.sku_id
            if denomination and _label_key(denomination) not in self.labels:
                return (number, None, "", "", hint, UNKNOWN_SKU, denomination[:60])
        else:
            sku_id = self.labels.get(_label_key(denomination)) if denomination else None
            if sku_id is None:
                return (number, None, "", "", hint, UNKNOWN_SKU, denomination[:60])
        if code == EXAMPLE_CODE:
            return (number, sku_id, "", "", hint, EXAMPLE, "")
        self.last_code = code
        secret = codes.Secret(code=code, password=password)
        return (number, sku_id, codes.encrypt(secret), codes.fingerprint(code), hint, "", "")

    def mark_old_key_duplicates(self, chunk: list[tuple], plaintexts: dict[int, str]) -> list[tuple]:
        """While a key rotation is pending, stock rows may carry older-key fingerprints."""
        wanted: dict[tuple[int, str], int] = {}
        for index, code in plaintexts.items():
            sku_id = chunk[index][1]
            for fingerprint in codes.fingerprints(code)[1:]:
                wanted[(sku_id, fingerprint)] = index
        if not wanted:
            return chunk
        found = CardCode.objects.filter(
            sku_id__in={key[0] for key in wanted}, fingerprint__in={key[1] for key in wanted}
        ).values_list("sku_id", "fingerprint")
        for key in found:
            index = wanted.get(key)
            if index is not None:
                row = chunk[index]
                chunk[index] = (row[0], row[1], row[2], row[3], row[4], IN_STOCK, "")
        return chunk


# --- Staging ----------------------------------------------------------------------------------------
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SQL = (
    "COPY catalog_importrow (batch_id, row_number, sku_id, payload, fingerprint, hint, error, detail) FROM STDIN"
)


def _stage(batch_id: int, chunk: list[tuple]) -> None:
    if not chunk:
        return
    if connection.vendor == "postgresql":
        prefix, null = f"{batch_id}\t", "\\N"
        lines = [
            f"{prefix}{row}\t{null if sku is None else sku}\t{payload}\t{fp}\t{hint.translate(_COPY_ESCAPES)}"
            f"\t{error}\t{detail.translate(_COPY_ESCAPES)}\n"
            for row, sku, payload, fp, hint, error, detail in chunk
        ]
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(_COPY_SQL, io.StringIO("".join(lines)))
    else:
        ImportRow.objects.bulk_create(
            [
                ImportRow(batch_id=batch_id, row_number=row, sku_id=sku, payload=payload, fingerprint=fp,
                          hint=hint, error=error, detail=detail)
                for row, sku, payload, fp, hint, error, detail in chunk
            ],
            batch_size=1000,
        )  # fmt: skip


class _Stager:
    """Stages chunks of rows. With PostgreSQL, outside any transaction (a worker, the management
    command), a background thread with its own connection COPYs one chunk while the next one is
    parsed, so the database work overlaps the Python work; at most two chunks wait in between.
    Inside a transaction (tests, callers' atomic blocks) it stages synchronously, because another
    connection could not see the uncommitted batch."""

    def __init__(self, batch_id: int):
        self.batch_id = batch_id
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self.queue: queue.Queue = queue.Queue(maxsize=2)
            self.thread = threading.Thread(target=self._run, name=f"import-{batch_id}-copy", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        from django.db import connection as thread_connection  # this thread's own connection

        try:
            while (chunk := self.queue.get()) is not None:
                if self.error is None:  # after a failure keep draining, so the producer never blocks
                    try:
                        _stage(self.batch_id, chunk)
                    except BaseException as exc:
                        self.error = exc
        finally:
            thread_connection.close()

    def put(self, chunk: list[tuple]) -> None:
        if self.thread is None:
            _stage(self.batch_id, chunk)
            return
        if self.error is not None:
            raise self.error
        self.queue.put(chunk)

    def close(self, *, raise_errors: bool = True) -> None:
        """Wait until everything queued is staged; raises what staging raised."""
        if self.thread is not None and self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        if self.error is not None and raise_errors:
            error, self.error = self.error, None
            raise error


_IN_STOCK_SQL = """
UPDATE catalog_importrow AS r SET error = %s, detail = ''
FROM catalog_cardcode AS c
WHERE r.batch_id = %s AND r.error = '' AND c.sku_id = r.sku_id AND c.fingerprint = r.fingerprint
  AND (c.batch_id IS NULL OR c.batch_id <> r.batch_id) {only_sku}
"""

_DUPLICATES_SQL = """
WITH firsts AS (
    SELECT sku_id, fingerprint, MIN(row_number) AS first_row
    FROM catalog_importrow
    WHERE batch_id = %s AND error = ''
    GROUP BY sku_id, fingerprint
    HAVING COUNT(*) > 1
)
UPDATE catalog_importrow AS r SET error = %s, detail = CAST(f.first_row AS TEXT)
FROM firsts AS f
WHERE r.batch_id = %s AND r.error = '' AND r.sku_id = f.sku_id AND r.fingerprint = f.fingerprint
  AND r.row_number > f.first_row
"""

_COMMIT_SQL = """
INSERT INTO catalog_cardcode (sku_id, batch_id, payload, fingerprint, hint, status, reusable, times_sold, created_at)
SELECT r.sku_id, r.batch_id, r.payload, r.fingerprint, r.hint, %s, s.reusable_code, 0, %s
FROM catalog_importrow AS r INNER JOIN catalog_sku AS s ON s.id = r.sku_id
WHERE r.batch_id = %s AND r.error = ''
ORDER BY r.row_number
ON CONFLICT (sku_id, fingerprint) DO NOTHING
"""


def _summarise(batch: ImportBatch) -> dict:
    """Counts by reason and the first errors, from the staged rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT error, COUNT(*) FROM catalog_importrow WHERE batch_id = %s GROUP BY error", [batch.pk])
        counts = dict(cursor.fetchall())
    valid = counts.pop("", 0)
    sample = [
        {"row": row, "reason": error, "detail": detail, "hint": hint}
        for row, error, detail, hint in ImportRow.objects.filter(batch_id=batch.pk)
        .exclude(error="")
        .order_by("row_number")
        .values_list("row_number", "error", "detail", "hint")[:ERROR_SAMPLE]
    ]
    return {
        "valid_rows": valid,
        "error_rows": sum(counts.values()),
        "error_counts": dict(sorted(counts.items())),
        "errors": sample,
    }


def _mark_in_stock(batch_id: int, sku_id: int | None) -> None:
    """Rows whose code the SKU already has. With one SKU for the whole batch, the constant lets
    the planner read only that SKU's stock, not the whole (large) code table."""
    with connection.cursor() as cursor:
        if sku_id:
            cursor.execute(_IN_STOCK_SQL.format(only_sku="AND c.sku_id = %s"), [IN_STOCK, batch_id, sku_id])
        else:
            cursor.execute(_IN_STOCK_SQL.format(only_sku=""), [IN_STOCK, batch_id])


# --- Parsing ---------------------------------------------------------------------------------------
_LOCAL_PARSES: set[int] = set()  # SQLite only: batches being parsed by a thread of this process
_LOCAL_PARSES_LOCK = threading.Lock()


@contextlib.contextmanager
def _parse_lock(batch_id: int):
    """One parser per batch across all workers: a session-level PostgreSQL advisory lock, released
    by PostgreSQL itself if the worker dies. SQLite, the embedded run, is one process, but parses
    run in background threads there (a sweep could queue a second one next to a long first one):
    a set of this process's parses stands in for the lock."""
    if connection.vendor != "postgresql":
        with _LOCAL_PARSES_LOCK:
            acquired = batch_id not in _LOCAL_PARSES
            _LOCAL_PARSES.add(batch_id)
        try:
            yield acquired
        finally:
            if acquired:
                with _LOCAL_PARSES_LOCK:
                    _LOCAL_PARSES.discard(batch_id)
        return
    key = batch_id % (1 << 31)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, key])


def parse_batch(
    *, batch_id: int, task_id: str = "", progress: Callable[[int, int], None] | None = None
) -> ImportBatch | None:
    """Check and stage the rows of an UPLOADED batch (or restart a PARSING one whose worker died).
    Idempotent: any other status, or another parser holding the batch, does nothing (returns None).
    Never raises: a failure marks the batch FAILED with a message for the merchant."""
    Status = ImportBatch.Status
    with _parse_lock(batch_id) as acquired:
        if not acquired:
            return None
        claimed = ImportBatch.objects.filter(pk=batch_id, status__in=[Status.UPLOADED, Status.PARSING]).update(
            status=Status.PARSING, processed_rows=0, total_rows=0, valid_rows=0, error_rows=0, failure="",
            errors=[], error_counts={}, task_id=task_id[:64],
        )  # fmt: skip
        if not claimed:
            return None
        batch = ImportBatch.objects.select_related("sku").get(pk=batch_id)
        ImportRow.objects.filter(batch_id=batch_id).delete()  # a restarted parse starts over
        try:
            with warnings.catch_warnings():
                # openpyxl warns about cell contents (dates out of range…): never let a code reach a log.
                warnings.simplefilter("ignore")
                _parse(batch, progress)
        except _Cancelled:
            ImportRow.objects.filter(batch_id=batch_id).delete()
        except ImportRefused as exc:
            _fail(batch_id, str(exc))
        except Exception as exc:
            # Only the exception type and the frames: messages of parser errors may quote cell contents.
            logger.error(
                "import batch %s: parsing failed with %s\n%s",
                batch_id,
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            _fail(
                batch_id,
                _("The file could not be read (%(error)s). Check it and upload it again, or re-run the import.")
                % {"error": type(exc).__name__},
            )
    return ImportBatch.objects.filter(pk=batch_id).first()


def _fail(batch_id: int, message: str) -> None:
    try:
        ImportRow.objects.filter(batch_id=batch_id).delete()
        # Nothing is staged: no row counts either (the bar and "rows" of a refused file say 0).
        ImportBatch.objects.filter(pk=batch_id, status=ImportBatch.Status.PARSING).update(
            status=ImportBatch.Status.FAILED, failure=message, finished_at=timezone.now(), processed_rows=0,
            total_rows=0, valid_rows=0, error_rows=0,
        )  # fmt: skip
    except Exception as exc:  # the database itself is gone: the batch stays PARSING, re-run it later
        logger.error("import batch %s: could not record the failure (%s)", batch_id, type(exc).__name__)


def _parse(batch: ImportBatch, progress: Callable[[int, int], None] | None) -> None:
    Status = ImportBatch.Status
    max_rows = settings.IMPORT_MAX_ROWS
    with contextlib.ExitStack() as stack:
        rows = _open_rows(batch, stack)
        checker = _Checker(batch, rows)
        stager = _Stager(batch.pk)
        stack.callback(stager.close, raise_errors=False)
        chunk: list[tuple] = []
        plaintexts: dict[int, str] = {}  # index in chunk -> code, only while a key rotation is pending
        seen = data_rows = 0
        report_at = monotonic() + PROGRESS_SECONDS

        def report() -> None:
            """Move the bar (one short UPDATE, its own transaction: SQLite readers never wait long)."""
            nonlocal report_at
            total = max(rows.estimate, seen)
            if not ImportBatch.objects.filter(pk=batch.pk, status=Status.PARSING).update(
                processed_rows=seen, total_rows=total
            ):
                raise _Cancelled
            report_at = monotonic() + PROGRESS_SECONDS
            if progress is not None:
                progress(seen, total)

        def flush() -> None:
            nonlocal chunk
            if checker.old_keys and plaintexts:
                chunk = checker.mark_old_key_duplicates(chunk, plaintexts)
                plaintexts.clear()
            stager.put(chunk)
            chunk = []
            report()

        for number, cells in rows.rows:
            seen += 1
            if not seen % PROGRESS_CHECK_ROWS and monotonic() >= report_at:
                report()
            staged = checker.check(number, cells)
            if staged is not None:
                data_rows += 1
                if data_rows > max_rows:
                    raise ImportRefused(
                        _("The file has more than %(max)s rows. Split it into several files.")
                        % {"max": f"{max_rows:,}"}
                    )
                if checker.old_keys and not staged[5]:
                    plaintexts[len(chunk)] = checker.last_code
                chunk.append(staged)
                if len(chunk) >= CHUNK_ROWS:
                    flush()
        flush()
        stager.close()
    if data_rows == 0:
        if checker.foreign_header is not None and checker.header_row is None:
            checker.use_header(*checker.foreign_header, {})
        if checker.header_row is None:  # not a single non-blank cell
            raise ImportRefused(_("The file is empty (0 rows): there is nothing to import."))
        raise ImportRefused(_("The file contains no codes."))

    if connection.vendor == "postgresql":
        # Fresh statistics for the rows just loaded: with stale ones (say, from when the table was
        # empty) the planner may re-run the duplicate grouping once per row — quadratic time.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE catalog_importrow (batch_id, sku_id, fingerprint, error)")
    _mark_in_stock(batch.pk, batch.sku_id)
    with connection.cursor() as cursor:
        cursor.execute(_DUPLICATES_SQL, [batch.pk, DUPLICATE, batch.pk])
    summary = _summarise(batch)
    if not ImportBatch.objects.filter(pk=batch.pk, status=Status.PARSING).update(
        status=Status.READY, total_rows=data_rows, processed_rows=data_rows, **summary
    ):
        raise _Cancelled
    if progress is not None:
        progress(data_rows, data_rows)


# --- Preview decisions ------------------------------------------------------------------------------
def set_mode(*, batch: ImportBatch, mode: str) -> bool:
    """Switch all-or-nothing / valid rows while the batch waits for confirmation."""
    if mode not in ImportBatch.Mode.values:
        raise ImportRefused(_("Unknown import mode."))
    changed = ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.READY).update(mode=mode)
    if changed:
        batch.mode = mode
    return bool(changed)


def request_commit(*, batch: ImportBatch, enqueue: bool = True) -> bool:
    """The merchant confirms: READY → COMMITTING, once (a double click or two tabs commit once).
    Returns False when the batch was not READY any more. Raises ImportRefused when the mode or
    the content forbids importing."""
    batch.refresh_from_db()
    if batch.status != ImportBatch.Status.READY:
        return False
    if batch.valid_rows == 0:
        raise ImportRefused(_("There is no valid code to import."))
    if batch.mode == ImportBatch.Mode.ALL_OR_NOTHING and batch.error_rows:
        raise ImportRefused(
            _(
                "%(count)s rows have errors and the mode is “all or nothing”: nothing was imported. Fix "
                "the file and upload it again, or switch to “import the valid rows”."
            )
            % {"count": batch.error_rows}
        )
    with transaction.atomic():
        claimed = ImportBatch.objects.filter(
            pk=batch.pk, status=ImportBatch.Status.READY, mode=batch.mode, error_rows=batch.error_rows
        ).update(status=ImportBatch.Status.COMMITTING, failure="")
        if claimed and enqueue:
            _enqueue_commit(batch.pk)
    if claimed:
        batch.status = ImportBatch.Status.COMMITTING
    return bool(claimed)


class _AllOrNothingConflict(Exception):
    def __init__(self, missing: int):
        self.missing = missing


def commit_batch(*, batch_id: int) -> ImportBatch | None:
    """Move the valid staged rows of a COMMITTING batch into stock in one transaction.
    Idempotent: a batch in any other status is left alone (returns None)."""
    Status = ImportBatch.Status
    try:
        with transaction.atomic():
            batch = ImportBatch.objects.select_for_update().filter(pk=batch_id, status=Status.COMMITTING).first()
            if batch is None:
                return None
            with connection.cursor() as cursor:
                if batch.sku_id:
                    sku_ids = [batch.sku_id]
                else:
                    cursor.execute(
                        "SELECT DISTINCT sku_id FROM catalog_importrow WHERE batch_id = %s AND error = ''", [batch_id]
                    )
                    sku_ids = [row[0] for row in cursor.fetchall()]
                cursor.execute(_COMMIT_SQL, [CardCode.Status.AVAILABLE, timezone.now(), batch_id])
                inserted = cursor.rowcount
            if batch.mode == ImportBatch.Mode.ALL_OR_NOTHING and inserted < batch.valid_rows:
                raise _AllOrNothingConflict(batch.valid_rows - inserted)
            if inserted < batch.valid_rows:
                _mark_in_stock(batch_id, batch.sku_id)  # taken by a concurrent import: report them too
                summary = _summarise(batch)
            else:
                summary = {}
            ImportRow.objects.filter(batch_id=batch_id).delete()
            upload = batch.upload_path
            ImportBatch.objects.filter(pk=batch_id).update(
                status=Status.COMMITTED, imported_rows=inserted, upload_path="", finished_at=timezone.now(), **summary
            )
            send_stock_changed(sku_ids=sku_ids)
            transaction.on_commit(lambda: _delete_upload(upload))
    except _AllOrNothingConflict as conflict:
        with transaction.atomic():
            _mark_in_stock(batch_id, ImportBatch.objects.values_list("sku_id", flat=True).get(pk=batch_id))
            summary = _summarise(ImportBatch(pk=batch_id))
            ImportBatch.objects.filter(pk=batch_id, status=Status.COMMITTING).update(
                status=Status.READY,
                failure=_(
                    "Nothing was imported: %(count)s of the codes were added to stock by another import after "
                    "the check. They are now marked “already in stock”; switch to “import the valid rows” or "
                    "cancel."
                )
                % {"count": conflict.missing},
                **summary,
            )
    except Exception as exc:
        logger.error(
            "import batch %s: commit failed with %s\n%s",
            batch_id,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        ImportBatch.objects.filter(pk=batch_id, status=Status.COMMITTING).update(
            status=Status.FAILED,
            failure=_("Importing failed (%(error)s); nothing was imported. Re-run the import.")
            % {"error": type(exc).__name__},
        )
    return ImportBatch.objects.filter(pk=batch_id).first()


def cancel_batch(*, batch: ImportBatch) -> bool:
    """Drop a batch that is not imported: staged rows and the stored upload go."""
    Status = ImportBatch.Status
    with transaction.atomic():
        cancelled = ImportBatch.objects.filter(
            pk=batch.pk, status__in=[Status.UPLOADED, Status.PARSING, Status.READY, Status.FAILED]
        ).update(status=Status.CANCELLED, upload_path="", finished_at=timezone.now())
        if cancelled:
            ImportRow.objects.filter(batch_id=batch.pk).delete()
            upload = batch.upload_path
            transaction.on_commit(lambda: _delete_upload(upload))
    batch.refresh_from_db()
    return bool(cancelled)


def rerun_batch(*, batch: ImportBatch) -> bool:
    """Queue the check again for a FAILED batch (the stored upload is still there)."""
    Status = ImportBatch.Status
    if batch.status != Status.FAILED:
        return False
    _stored_path(batch)  # ImportRefused if the file is gone
    with transaction.atomic():
        requeued = ImportBatch.objects.filter(pk=batch.pk, status=Status.FAILED).update(
            status=Status.UPLOADED, failure="", finished_at=None, processed_rows=0, total_rows=0,
            valid_rows=0, error_rows=0, imported_rows=0, errors=[], error_counts={},
        )  # fmt: skip
        if requeued:
            ImportRow.objects.filter(batch_id=batch.pk).delete()
            _enqueue_parse(batch.pk)
    return bool(requeued)


def requeue_stalled(*, min_age: timedelta = timedelta(minutes=10)) -> int:
    """Queue again the work whose task was lost (broker down, a worker killed without
    redelivery); for a periodic sweeper. Safe to run any time, twice, on two hosts: the tasks are
    idempotent. A batch being parsed right now holds its advisory lock and is left alone; a batch
    being committed holds its row lock. Returns how many tasks were queued."""
    Status = ImportBatch.Status
    stale = ImportBatch.objects.filter(created_at__lt=timezone.now() - min_age)
    queued = 0
    for batch_id, status in stale.filter(status__in=[Status.UPLOADED, Status.PARSING]).values_list("pk", "status"):
        if status == Status.PARSING:
            with _parse_lock(batch_id) as free:
                if not free:
                    continue  # a parser is alive
        _enqueue_parse(batch_id)
        queued += 1
    for batch_id in stale.filter(status=Status.COMMITTING).values_list("pk", flat=True):
        with transaction.atomic():
            if ImportBatch.objects.select_for_update(skip_locked=True).filter(pk=batch_id).exists():
                _enqueue_commit(batch_id)  # nobody is committing it now
                queued += 1
    return queued


# --- Reading for the preview, reports and the template ---------------------------------------------
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


__all__ = [
    "REASONS",
    "ImportRefused",
    "cancel_batch",
    "commit_batch",
    "create_batch",
    "describe",
    "error_rows",
    "parse_batch",
    "progress",
    "request_commit",
    "requeue_stalled",
    "rerun_batch",
    "set_mode",
    "write_error_report",
    "write_template",
]
