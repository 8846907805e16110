"""The upload, before and after it is stored: the checks that refuse a file before anything is kept
(empty, over ``IMPORT_MAX_UPLOAD_MB``, an .xlsx that is not one, an old .xls, binary junk, text that
is neither UTF-8 nor GB18030) and the encrypted store under ``IMPORT_UPLOAD_DIR``: the file holds
plaintext codes, so it is kept as one Fernet token per :data:`STORE_CHUNK` bytes (CSV and text
re-encoded as UTF-8)."""

from __future__ import annotations

import codecs
import os
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from django.conf import settings
from django.utils.translation import gettext as _

from catalog import codes
from catalog.imports.reasons import ImportRefused
from catalog.models import ImportBatch

STORE_CHUNK = 1 << 20  # plaintext bytes per Fernet token of a stored upload
MAX_SHARED_STRINGS_BYTES = 160 << 20  # uncompressed xl/sharedStrings.xml (openpyxl keeps it in memory)
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


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
