"""What a row means: the header (recognised by its words, :data:`HEADER_WORDS`, in any column
order; a first row naming someone else's columns refuses the file), each cell's text or error, and
:class:`_Checker`, which turns a raw row into a staged one (encrypted payload, fingerprint, mask) or
an error row. The per-row path runs a million times for a large file: it stays lean."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext as _

from catalog import codes
from catalog.imports.reasons import (
    EMPTY,
    EXAMPLE,
    EXAMPLE_CODE,
    FORMULA,
    IN_STOCK,
    MERGED,
    NUMBER,
    TOO_LONG,
    UNKNOWN_SKU,
    ImportRefused,
)
from catalog.models import CardCode, ImportBatch, Sku

if TYPE_CHECKING:
    from catalog.imports.readers import _Rows

# Header cells, lower-cased; a cell may also hold several of them on separate lines ("卡号\nCode").
HEADER_WORDS = {
    "code": {"卡号", "code", "codes", "card code", "card number", "card no", "cdkey", "cd-key", "key", "激活码",
             "兑换码", "券码", "账号"},
    "password": {"卡密", "密码", "password", "pass", "pwd", "pin", "secret"},
    "denomination": {"面额", "面值", "规格", "denomination", "sku", "face value"},
}  # fmt: skip


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
    sku = batch.sku if batch.sku_id else None
    skus = [sku] if sku is not None else list(Sku.objects.filter(product_id=batch.product_id))
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
        sku_id: int | None
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
            in_stock = wanted.get(key)
            if in_stock is not None:
                row = chunk[in_stock]
                chunk[in_stock] = (row[0], row[1], row[2], row[3], row[4], IN_STOCK, "")
        return chunk
