"""Card-code imports, service level (catalog/imports/) on PostgreSQL: parsing every source, every
error reason, the bad-input edge cases, encryption at rest, commit modes and idempotency.

Helpers and fixtures here are shared by test_imports_admin.py and test_imports_worker.py.
"""

from __future__ import annotations

import io
import logging
import os
import re
import zipfile
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.utils import translation

from catalog import codes, imports, services
from catalog.demo import demo_code
from catalog.imports import flow, readers
from catalog.models import CardCode, ImportBatch, ImportRow, Sku
from catalog.signals import stock_changed

pytestmark = pytest.mark.django_db

Status = ImportBatch.Status


# --- Helpers ---------------------------------------------------------------------------------------
def xlsx_bytes(rows, *, merged=(), title="Sheet") -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(list(row))
    for cell_range in merged:
        sheet.merge_cells(cell_range)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def excel_style_xlsx(strings: list[str], rows: list[tuple[int, ...]]) -> bytes:
    """A workbook the way Excel and WPS write it: every text in xl/sharedStrings.xml (given here as
    raw <si> XML), cells referring to it by index."""
    relationships = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006"
    ooxml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            f'<Types xmlns="{package}/content-types"><Default Extension="rels" '
            f'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            f'<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ooxml}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ooxml}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ooxml}.sharedStrings+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{package}/relationships"><Relationship Id="rId1" '
            f'Type="{relationships}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN_NS}" xmlns:r="{relationships}"><sheets>'
            f'<sheet name="卡密" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{package}/relationships">'
            f'<Relationship Id="rId1" Type="{relationships}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{relationships}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>",
        )
        cells = "".join(
            f'<row r="{r}">'
            + "".join(f'<c r="{col}{r}" t="s"><v>{index}</v></c>' for col, index in zip("ABC", row, strict=False))
            + "</row>"
            for r, row in enumerate(rows, start=1)
        )
        archive.writestr(
            "xl/worksheets/sheet1.xml", f'<worksheet xmlns="{MAIN_NS}"><sheetData>{cells}</sheetData></worksheet>'
        )
        archive.writestr(
            "xl/sharedStrings.xml",
            f'<sst xmlns="{MAIN_NS}" count="{len(strings)}" uniqueCount="{len(strings)}">{"".join(strings)}</sst>',
        )
    return out.getvalue()


def code_for(n: int) -> str:
    return f"KM{n:06d}-QWER-{n * 7919 % 100000:05d}"


def upload(data: bytes, name: str = "codes.xlsx") -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def start(product, sku, data: bytes | None = None, *, name="codes.xlsx", text=None, **options) -> ImportBatch:
    """Create a batch and parse it synchronously (what the task does)."""
    batch = imports.create_batch(
        product=product,
        sku=sku,
        upload=None if data is None else upload(data, name),
        filename=name if data is not None else "",
        text=text,
        enqueue=False,
        **options,
    )
    imports.parse_batch(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


def commit(batch: ImportBatch) -> ImportBatch:
    assert imports.request_commit(batch=batch, enqueue=False)
    imports.commit_batch(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


def errors_by_row(batch: ImportBatch) -> dict[int, str]:
    return dict(ImportRow.objects.filter(batch=batch).exclude(error="").values_list("row_number", "error"))


def stored_files() -> list[Path]:
    from django.conf import settings

    directory = Path(settings.IMPORT_UPLOAD_DIR)
    return sorted(directory.iterdir()) if directory.exists() else []


def raw_text_of_tables() -> str:
    """Everything the database holds in the code and staging tables, as text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload, fingerprint, hint FROM catalog_cardcode")
        stock = cursor.fetchall()
        cursor.execute("SELECT payload, fingerprint, hint, detail FROM catalog_importrow")
        staged = cursor.fetchall()
    return "\n".join("\t".join(row) for row in stock + staged)


@pytest.fixture(autouse=True)
def _private_upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def product(demo_shop):
    return demo_shop.products["steam-wallet"]


@pytest.fixture
def sku(product):
    return product.skus.get(label="100元")


# --- Happy paths -------------------------------------------------------------------------------------
def test_xlsx_with_header_stages_encrypted_rows_then_commits_them(product, sku, django_capture_on_commit_callbacks):
    rows = [("卡号\nCode", "卡密\nPassword", "面额\nDenomination")] + [
        (code_for(n), f"PW{n:04d}", "100元") for n in range(3)
    ]
    before = CardCode.objects.filter(sku=sku).count()
    batch = start(product, sku, xlsx_bytes(rows))

    assert (batch.status, batch.source, batch.total_rows, batch.valid_rows, batch.error_rows) == (
        Status.READY, "xlsx", 3, 3, 0,
    )  # fmt: skip
    assert batch.progress_percent == 100
    staged = list(ImportRow.objects.filter(batch=batch).order_by("row_number"))
    assert [row.row_number for row in staged] == [2, 3, 4]  # the header (row 1) is skipped
    assert codes.decrypt(staged[0].payload) == codes.Secret(code=code_for(0), password="PW0000")
    assert staged[0].hint == codes.mask(code_for(0)) and staged[0].fingerprint == codes.fingerprint(code_for(0))
    # Encryption at rest: neither the staging table nor (later) the stock table holds plaintext.
    for n in range(3):
        assert code_for(n) not in raw_text_of_tables() and f"PW{n:04d}" not in raw_text_of_tables()
    # The stored upload is encrypted too.
    [stored] = stored_files()
    assert b"QWER" not in stored.read_bytes() and b"PK\x03\x04" not in stored.read_bytes()

    with django_capture_on_commit_callbacks(execute=True):
        batch = commit(batch)

    assert (batch.status, batch.imported_rows) == (Status.COMMITTED, 3)
    assert CardCode.objects.filter(sku=sku).count() == before + 3
    imported = CardCode.objects.filter(batch=batch).order_by("id")
    assert [codes.decrypt(c.payload).code for c in imported] == [code_for(n) for n in range(3)]  # file order
    assert all(c.status == CardCode.Status.AVAILABLE and c.reusable is False for c in imported)
    for n in range(3):
        assert code_for(n) not in raw_text_of_tables()
    assert not ImportRow.objects.filter(batch=batch).exists()
    assert stored_files() == [] and batch.upload_path == ""


def test_excel_shared_strings_are_read_exactly_as_openpyxl_reads_them(product, sku):
    from openpyxl.reader.strings import read_string_table

    strings = [
        "<si><t>卡号</t></si>",  # 0
        "<si><t>卡密</t></si>",  # 1
        f"<si><t>{code_for(1)}</t></si>",  # 2 plain
        "<si><t>pw&amp;&lt;1&gt;</t></si>",  # 3 entities
        f'<si><r><rPr><b/></rPr><t>{code_for(2)[:6]}</t></r><r><t xml:space="preserve">{code_for(2)[6:]}</t></r></si>',
        '<si><t>密码</t><rPh sb="0" eb="1"><t>ミツ</t></rPh></si>',  # 5 phonetic run: not part of the text
        f"<si><t>{code_for(3)}_x005F_x</t></si>",  # 6 openpyxl's unescaping quirk, kept identical
        '<si><t xml:space="preserve"> </t></si>',  # 7 blank
        "<si><t/></si>",  # 8 empty
    ]
    data = excel_style_xlsx(strings, [(0, 1), (2, 3), (4, 5), (6, 8), (7, 8)])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        ours = readers._read_shared_strings(archive.open("xl/sharedStrings.xml"))
        theirs = read_string_table(archive.open("xl/sharedStrings.xml"))
    assert [ours[i] for i in range(len(ours))] == theirs and len(ours) == len(strings)
    assert ours[-1] == "" and ours[4] == code_for(2)

    batch = start(product, sku, data)
    secrets = {r.row_number: codes.decrypt(r.payload) for r in ImportRow.objects.filter(batch=batch)}
    assert secrets == {
        2: codes.Secret(code_for(1), "pw&<1>"),
        3: codes.Secret(code_for(2), "密码"),
        4: codes.Secret(f"{code_for(3)}_x", ""),
    }
    assert batch.total_rows == 3  # row 5 (blank text only) is skipped


def test_csv_in_gb18030_with_password_and_chinese_header(product, sku):
    text = "卡号,卡密\r\n" + "".join(f"{code_for(n)},密码{n}\r\n" for n in range(4))
    batch = start(product, sku, text.encode("gb18030"), name="导出.csv")
    assert (batch.status, batch.source, batch.valid_rows, batch.error_rows) == (Status.READY, "csv", 4, 0)
    row = ImportRow.objects.get(batch=batch, row_number=3)
    assert codes.decrypt(row.payload) == codes.Secret(code=code_for(1), password="密码1")


def test_unicode_text_export_of_excel_is_read(product, sku):
    text = "卡号\t卡密\r\n" + "".join(f"{code_for(n)}\tpw{n}\r\n" for n in range(2))
    batch = start(product, sku, text.encode("utf-16"), name="codes.txt", delimiter="\t")
    assert (batch.valid_rows, batch.error_rows) == (2, 0)
    assert codes.decrypt(ImportRow.objects.get(batch=batch, row_number=3).payload) == codes.Secret(code_for(1), "pw1")


def test_csv_in_utf8_with_bom_and_semicolons(product, sku):
    text = "\ufeff" + "".join(f"{code_for(n)};pw{n}\n" for n in range(2))
    batch = start(product, sku, text.encode(), name="codes.csv", delimiter=";")
    assert (batch.valid_rows, batch.error_rows) == (2, 0)
    first = ImportRow.objects.get(batch=batch, row_number=1)
    assert codes.decrypt(first.payload) == codes.Secret(code=code_for(0), password="pw0")  # no BOM in the code


def test_pasted_text_with_a_multi_character_delimiter(product, sku):
    text = f"{code_for(1)}----1111\n\n  {code_for(2)}----2222  \n{code_for(3)}\n"
    batch = start(product, sku, text=text, delimiter="----")
    assert (batch.source, batch.total_rows, batch.valid_rows) == ("text", 3, 3)  # the blank line is not a row
    secrets = {r.row_number: codes.decrypt(r.payload) for r in ImportRow.objects.filter(batch=batch)}
    assert secrets == {
        1: codes.Secret(code_for(1), "1111"),
        3: codes.Secret(code_for(2), "2222"),
        4: codes.Secret(code_for(3), ""),
    }


def test_txt_file_is_read_line_by_line_keeping_commas_and_quotes(product, sku):
    text = 'AB,"CD"-0001\nAB,"CD"-0002\n'
    batch = start(product, sku, text.encode(), name="codes.txt")
    assert batch.source == "text" and batch.valid_rows == 2
    assert codes.decrypt(ImportRow.objects.get(batch=batch, row_number=1).payload).code == 'AB,"CD"-0001'


def test_one_column_sheet_with_code_and_password_in_one_cell(product, sku):
    batch = start(product, sku, xlsx_bytes([(f"{code_for(7)}----7777",)]), delimiter="----")
    row = ImportRow.objects.get(batch=batch)
    assert codes.decrypt(row.payload) == codes.Secret(code_for(7), "7777")


def test_header_in_another_order_maps_the_columns(product, sku):
    rows = [("面额", "卡密", "卡号", "备注"), ("100元", "pw-1", code_for(1), "note")]
    batch = start(product, sku, xlsx_bytes(rows))
    assert codes.decrypt(ImportRow.objects.get(batch=batch).payload) == codes.Secret(code_for(1), "pw-1")


def test_without_header_the_first_row_is_a_code(product, sku):
    batch = start(product, sku, xlsx_bytes([(code_for(1), "pw"), (code_for(2), "pw")]))
    assert sorted(ImportRow.objects.filter(batch=batch).values_list("row_number", flat=True)) == [1, 2]


def test_denomination_column_picks_the_sku_when_none_is_chosen(product, django_capture_on_commit_callbacks):
    fifty, hundred = product.skus.get(label="50元"), product.skus.get(label="100元")
    rows = [("卡号", "卡密", "面额"), (code_for(1), "p", "50元"), (code_for(2), "p", 100), (code_for(3), "p", "100元")]
    batch = start(product, None, xlsx_bytes(rows))
    assert batch.valid_rows == 3
    assert dict(ImportRow.objects.filter(batch=batch).values_list("row_number", "sku_id")) == {
        2: fifty.pk, 3: hundred.pk, 4: hundred.pk,
    }  # fmt: skip

    signalled = []

    def receiver(sender, sku_ids, **kwargs):
        signalled.append(sku_ids)

    stock_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            batch = commit(batch)
    finally:
        stock_changed.disconnect(receiver)
    assert batch.imported_rows == 3
    assert signalled == [sorted([fifty.pk, hundred.pk])]
    assert CardCode.objects.filter(batch=batch, sku=fifty).count() == 1


def test_create_batch_queues_the_check_on_commit(product, sku, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n{code_for(2)}\n")
        batch.refresh_from_db()
        assert batch.status == Status.UPLOADED  # nothing runs before the commit
    batch.refresh_from_db()
    assert (batch.status, batch.valid_rows) == (Status.READY, 2)  # Celery (eager in tests) ran it


# --- Every error reason, with its row number -------------------------------------------------------------
def test_every_error_reason_is_reported_with_its_row_number(product):
    in_stock = demo_code(product.skus.get(label="100元"), 0).code  # seeded by the demo shop
    rows = [
        ("卡号", "卡密", "面额"),  # 1 header
        (code_for(1), "pw", "100元"),  # 2 valid
        (None, "pw-without-code", "100元"),  # 3 empty
        ("X" * (codes.MAX_CODE_LENGTH + 1), "", "100元"),  # 4 too long
        (code_for(1), "other", "100元"),  # 5 duplicate of row 2
        (in_stock, "", "100元"),  # 6 already in stock
        ("=A2", "", "100元"),  # 7 formula
        (code_for(8), "", "999元"),  # 8 unknown denomination
        (12345678901234567, "", "100元"),  # 9 long number rounded by Excel
        (imports.EXAMPLE_CODE, imports.EXAMPLE_PASSWORD, "100元"),  # 10 the template's example row
        (code_for(11), "", "100元"),  # 11 merged with 12
        (None, "", None),  # 12
        (code_for(13), "=1+1", "100元"),  # 13 formula in the password
        (code_for(14), "", None),  # 14 no denomination, no SKU chosen
        (code_for(15), "", "50元"),  # 15 valid, another SKU
    ]
    batch = start(product, None, xlsx_bytes(rows, merged=["A11:A12"]))

    assert batch.status == Status.READY
    assert errors_by_row(batch) == {
        3: "empty", 4: "too_long", 5: "duplicate_in_file", 6: "in_stock", 7: "formula", 8: "unknown_sku",
        9: "number", 10: "example", 11: "merged", 13: "formula", 14: "unknown_sku",
    }  # fmt: skip
    assert (batch.total_rows, batch.valid_rows, batch.error_rows) == (13, 2, 11)
    assert batch.error_counts == {
        "duplicate_in_file": 1, "empty": 1, "example": 1, "formula": 2, "in_stock": 1, "merged": 1, "number": 1,
        "too_long": 1, "unknown_sku": 2,
    }  # fmt: skip
    sample = {e["row"]: e for e in batch.errors}
    assert imports.describe("duplicate_in_file", sample[5]["detail"]) == "same code as row 2"
    assert imports.describe("too_long", sample[4]["detail"]) == "the code has 256 characters; at most 255"
    assert "999元" in imports.describe("unknown_sku", sample[8]["detail"])
    assert imports.describe("merged", sample[11]["detail"]) == "inside merged cells A11:A12; unmerge them"
    assert imports.describe("formula", sample[13]["detail"]).startswith("the password cell holds a formula")
    # Errors never carry a code, at most its mask.
    assert sample[5]["hint"] == codes.mask(code_for(1))
    assert code_for(1) not in str(batch.errors) and in_stock not in str(batch.errors)


def test_a_code_twice_in_the_file_and_in_stock_is_reported_on_both_rows(product, sku):
    existing = demo_code(sku, 1).code
    batch = start(product, sku, text=f"{existing}\n{code_for(1)}\n{existing}\n")
    assert errors_by_row(batch) == {1: "in_stock", 3: "in_stock"}


def test_same_code_in_two_skus_is_not_a_duplicate(product):
    rows = [(code_for(1), "", "50元"), (code_for(1), "", "100元")]
    batch = start(product, None, xlsx_bytes(rows))
    assert (batch.valid_rows, batch.error_rows) == (2, 0)


def test_codes_are_compared_after_trimming_blanks(product, sku):
    batch = start(product, sku, text=f"{code_for(1)}\n   {code_for(1)}\t\n")
    assert errors_by_row(batch) == {2: "duplicate_in_file"}


def test_duplicates_against_stock_under_an_older_key_during_rotation(product, sku, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CARD_CODE_KEYS = [old_key]
    services.add_codes(sku=sku, secrets=[codes.Secret(code_for(42))])
    settings.CARD_CODE_KEYS = [new_key, old_key]  # rotation pending: the stock row has the old fingerprint
    batch = start(product, sku, text=f"{code_for(41)}\n{code_for(42)}\n")
    assert errors_by_row(batch) == {2: "in_stock"}
    assert codes.decrypt(ImportRow.objects.get(batch=batch, row_number=1).payload).code == code_for(41)


def test_long_numbers_that_fit_are_kept_as_digits(product, sku):
    batch = start(product, sku, xlsx_bytes([(123456789012345, 1234.0), (1.2345678901234567e18, "")]))
    assert errors_by_row(batch) == {2: "number"}
    assert codes.decrypt(ImportRow.objects.get(batch=batch, row_number=1).payload) == codes.Secret(
        "123456789012345", "1234"
    )


def test_a_chosen_sku_refuses_rows_naming_another_denomination(product, sku):
    rows = [("卡号", "面额"), (code_for(1), "100元"), (code_for(2), "50元"), (code_for(3), None)]
    batch = start(product, sku, xlsx_bytes(rows))
    assert errors_by_row(batch) == {3: "unknown_sku"}


# --- Bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "name", "source", "message"),
    [
        (b"", "codes.xlsx", "", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(64), "photo.png", "", "not a spreadsheet"),
        (b"just,some,text\n", "codes.xlsx", "", "not a valid .xlsx"),
        (b"code1\ncode2\n", "codes.csv", "xlsx", "not a valid .xlsx"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "old.xls", "", "97–2003"),
        (b"PK\x03\x04" + os.urandom(200), "broken.xlsx", "", "damaged"),
        (b"code\xff\xff\n" * 10, "codes.csv", "", "neither UTF-8 nor GB18030"),
        (b" \r\n\t\n", "codes.csv", "", "no codes"),
    ],
    ids=["empty", "binary", "text-named-xlsx", "text-claimed-xlsx", "xls", "broken-zip", "undecodable", "blank"],
)
def test_bad_files_are_refused_before_anything_is_stored(product, sku, data, name, source, message):
    with pytest.raises(imports.ImportRefused, match=message):
        imports.create_batch(product=product, sku=sku, upload=upload(data, name), filename=name, source=source)
    assert not ImportBatch.objects.exists()
    assert stored_files() == []


def test_a_zip_that_is_not_a_workbook_is_refused(product, sku):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("content.xml", "<office:document/>")  # an .ods, say
    with pytest.raises(imports.ImportRefused, match="not an Excel workbook"):
        imports.create_batch(product=product, sku=sku, upload=upload(out.getvalue(), "sheet.ods"))


def test_a_workbook_uploaded_as_csv_is_refused(product, sku):
    with pytest.raises(imports.ImportRefused, match="not a CSV"):
        imports.create_batch(product=product, sku=sku, upload=upload(xlsx_bytes([("A",)])), source="csv")


def test_files_over_the_configured_limit_are_refused(product, sku, settings):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    data = b"c\n" * (1024 * 1024 // 2) + b"x"  # 1 MB + 1 byte
    with pytest.raises(imports.ImportRefused, match=r"The file is 1\.0 MB; the limit is 1 MB"):
        imports.create_batch(product=product, sku=sku, upload=upload(data, "codes.csv"))
    assert stored_files() == [] and not ImportBatch.objects.exists()


def test_the_real_50_mb_default_refuses_a_bigger_file_without_reading_it(product, sku, settings, tmp_path):
    assert settings.IMPORT_MAX_UPLOAD_MB == 50
    sparse = tmp_path / "big.xlsx"
    with open(sparse, "wb") as out:
        out.truncate(50 * 1024 * 1024 + 1)  # a sparse file: 50 MB + 1 byte, no disk used
    with open(sparse, "rb") as big, pytest.raises(imports.ImportRefused, match="limit is 50 MB"):
        imports.create_batch(product=product, sku=sku, upload=big, filename="big.xlsx")
    assert stored_files() == []


def test_the_management_path_may_lift_the_size_limit(product, sku, settings):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    data = "".join(f"{code_for(n)}\n" for n in range(60_000)).encode()  # ~1.4 MB
    batch = imports.create_batch(product=product, sku=sku, upload=upload(data, "big.txt"), max_bytes=None)
    assert batch.source == "text"


def test_a_workbook_with_only_a_header_fails_with_a_message(product, sku):
    batch = start(product, sku, xlsx_bytes([("卡号", "卡密")]))
    assert (batch.status, batch.failure) == (Status.FAILED, "The file contains no codes.")


def test_too_many_rows_fail_the_batch_and_stage_nothing(product, sku, settings):
    settings.IMPORT_MAX_ROWS = 5
    batch = start(product, sku, xlsx_bytes([(code_for(n),) for n in range(6)]))
    assert batch.status == Status.FAILED
    assert batch.failure == "The file has more than 5 rows. Split it into several files."
    assert not ImportRow.objects.filter(batch=batch).exists()
    # Exactly at the limit is fine.
    batch = start(product, sku, xlsx_bytes([(code_for(n),) for n in range(5)]))
    assert (batch.status, batch.valid_rows) == (Status.READY, 5)


def test_a_sheet_with_too_many_merged_rows_is_refused_as_a_whole(product, sku, monkeypatch):
    monkeypatch.setattr(readers, "MAX_MERGED_ROWS", 3)
    rows = [(code_for(n), "") for n in range(6)]
    batch = start(product, sku, xlsx_bytes(rows, merged=["A1:B2", "A4:A5"]))
    assert batch.status == Status.FAILED and "too many merged cells" in batch.failure


def test_a_workbook_openpyxl_cannot_read_fails_the_batch_without_raising(product, sku, caplog):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", f"<workbook>{code_for(99)}")  # truncated XML
    with caplog.at_level(logging.DEBUG):
        batch = start(product, sku, out.getvalue())
    assert batch.status == Status.FAILED
    assert re.search(r"(cannot|could not) be read", batch.failure)
    assert code_for(99) not in caplog.text and code_for(99) not in batch.failure


def test_codes_never_reach_the_logs(product, sku, caplog):
    with caplog.at_level(logging.DEBUG):
        batch = start(product, sku, xlsx_bytes([(code_for(1), "secret-pw"), ("=A1", "")]))
        imports.set_mode(batch=batch, mode="valid")
        commit(batch)
    assert code_for(1) not in caplog.text and "secret-pw" not in caplog.text


# --- Modes, commit, idempotency ---------------------------------------------------------------------------
def test_all_or_nothing_refuses_to_confirm_a_batch_with_errors(product, sku):
    batch = start(product, sku, text=f"{code_for(1)}\n{'Y' * 300}\n")
    with pytest.raises(imports.ImportRefused, match="1 rows have errors"):
        imports.request_commit(batch=batch)
    batch.refresh_from_db()
    assert batch.status == Status.READY and not CardCode.objects.filter(batch=batch).exists()

    assert imports.set_mode(batch=batch, mode=ImportBatch.Mode.VALID_ROWS)
    batch = commit(batch)
    assert (batch.status, batch.imported_rows, batch.error_rows) == (Status.COMMITTED, 1, 1)
    assert batch.errors[0]["row"] == 2 and batch.errors[0]["reason"] == "too_long"  # the report outlives staging


def test_all_or_nothing_rolls_back_everything_when_stock_changed_after_the_check(product, sku):
    before = CardCode.objects.count()
    batch = start(product, sku, text="".join(f"{code_for(n)}\n" for n in range(5)))
    assert (batch.valid_rows, batch.error_rows) == (5, 0)
    services.add_codes(sku=sku, secrets=[codes.Secret(code_for(3))])  # another import got there first

    assert imports.request_commit(batch=batch, enqueue=False)
    imports.commit_batch(batch_id=batch.pk)
    batch.refresh_from_db()

    assert batch.status == Status.READY
    assert "Nothing was imported: 1 of the codes" in batch.failure
    assert CardCode.objects.count() == before + 1  # only the other import's code
    assert not CardCode.objects.filter(batch=batch).exists()
    assert errors_by_row(batch) == {4: "in_stock"} and batch.error_rows == 1
    with pytest.raises(imports.ImportRefused):
        imports.request_commit(batch=batch)  # still all or nothing, and now there is an error

    imports.set_mode(batch=batch, mode="valid")
    batch = commit(batch)
    assert (batch.imported_rows, CardCode.objects.count()) == (4, before + 5)


def test_valid_rows_mode_skips_codes_taken_meanwhile_and_reports_them(product, sku):
    batch = start(product, sku, text="".join(f"{code_for(n)}\n" for n in range(4)), mode="valid")
    services.add_codes(sku=sku, secrets=[codes.Secret(code_for(0))])
    batch = commit(batch)
    assert (batch.status, batch.imported_rows, batch.error_counts) == (Status.COMMITTED, 3, {"in_stock": 1})
    assert batch.errors == [{"row": 1, "reason": "in_stock", "detail": "", "hint": codes.mask(code_for(0))}]


def test_confirming_twice_commits_once(product, sku):
    batch = start(product, sku, text=f"{code_for(1)}\n")
    assert imports.request_commit(batch=batch, enqueue=False) is True
    assert imports.request_commit(batch=batch, enqueue=False) is False
    imports.commit_batch(batch_id=batch.pk)
    assert imports.commit_batch(batch_id=batch.pk) is None  # a redelivered task does nothing
    batch.refresh_from_db()
    assert (batch.status, batch.imported_rows) == (Status.COMMITTED, 1)


def test_a_repeated_parse_task_does_nothing(product, sku):
    batch = start(product, sku, text=f"{code_for(1)}\n{code_for(2)}\n")
    assert imports.parse_batch(batch_id=batch.pk) is None
    assert ImportRow.objects.filter(batch=batch).count() == 2


def test_a_parse_interrupted_midway_starts_over(product, sku):
    batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n{code_for(2)}\n", enqueue=False)
    # A worker died after staging a row: the batch is PARSING with leftovers.
    ImportBatch.objects.filter(pk=batch.pk).update(status=Status.PARSING, processed_rows=1)
    ImportRow.objects.create(batch=batch, row_number=1, sku=sku, payload="stale", fingerprint="stale")
    imports.parse_batch(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.valid_rows) == (Status.READY, 2)
    assert not ImportRow.objects.filter(batch=batch, payload="stale").exists()


def test_rerun_of_a_failed_import(product, sku, settings, django_capture_on_commit_callbacks):
    settings.IMPORT_MAX_ROWS = 1
    batch = start(product, sku, text=f"{code_for(1)}\n{code_for(2)}\n")
    assert batch.status == Status.FAILED
    settings.IMPORT_MAX_ROWS = 10
    with django_capture_on_commit_callbacks(execute=True):
        assert imports.rerun_batch(batch=batch)
    batch.refresh_from_db()
    assert (batch.status, batch.valid_rows, batch.failure) == (Status.READY, 2, "")
    assert imports.rerun_batch(batch=batch) is False  # only failed batches


def test_rerun_refuses_when_the_upload_is_gone(product, sku, settings):
    settings.IMPORT_MAX_ROWS = 1
    batch = start(product, sku, text=f"{code_for(1)}\n{code_for(2)}\n")
    for stored in stored_files():
        stored.unlink()
    with pytest.raises(imports.ImportRefused, match="no longer kept"):
        imports.rerun_batch(batch=batch)


def test_cancel_drops_staged_rows_and_the_upload(product, sku, django_capture_on_commit_callbacks):
    batch = start(product, sku, text=f"{code_for(1)}\n")
    assert len(stored_files()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert imports.cancel_batch(batch=batch)
    assert batch.status == Status.CANCELLED
    assert not ImportRow.objects.filter(batch=batch).exists() and stored_files() == []
    assert imports.request_commit(batch=batch) is False
    assert imports.cancel_batch(batch=batch) is False


def test_cancel_while_parsing_stops_the_parser(product, sku, monkeypatch):
    monkeypatch.setattr(flow, "CHUNK_ROWS", 2)
    batch = imports.create_batch(
        product=product, sku=sku, text="".join(f"{code_for(n)}\n" for n in range(10)), enqueue=False
    )
    seen = []

    def progress(processed, total):
        seen.append(processed)
        if processed == 2:
            imports.cancel_batch(batch=ImportBatch.objects.get(pk=batch.pk))

    imports.parse_batch(batch_id=batch.pk, progress=progress)
    batch.refresh_from_db()
    assert batch.status == Status.CANCELLED and seen == [2]
    assert not ImportRow.objects.filter(batch=batch).exists()


def test_progress_moves_per_chunk(product, sku, monkeypatch):
    monkeypatch.setattr(flow, "CHUNK_ROWS", 3)
    batch = imports.create_batch(
        product=product, sku=sku, text="".join(f"{code_for(n)}\n" for n in range(7)), enqueue=False
    )
    seen = []
    imports.parse_batch(batch_id=batch.pk, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 8), (6, 8), (7, 8), (7, 7)]  # 8 = lines counted before parsing (7 + the empty tail)
    batch.refresh_from_db()
    assert imports.progress(batch)["percent"] == 100 and imports.progress(batch)["running"] is False


# --- Reports ----------------------------------------------------------------------------------------------------
def test_error_report_lists_every_error_with_masks_only(product, sku):
    from openpyxl import load_workbook

    batch = start(product, sku, text=f"{code_for(1)}\n{code_for(1)}\n=cmd|calc\n\n{'Z' * 300}\n")
    out = io.BytesIO()
    imports.write_error_report(batch=batch, out=out)
    rows = list(load_workbook(io.BytesIO(out.getvalue()), read_only=True).worksheets[0].values)
    assert rows[0] == ("Row", "Reason", "Detail", "Code (masked)")
    assert [r[:2] for r in rows[1:]] == [(2, "duplicate inside the file"), (5, "too long")]
    assert rows[1][3] == codes.mask(code_for(1))
    assert code_for(1).encode() not in out.getvalue()


def test_template_has_a_bilingual_header_and_an_example_that_is_refused(product, sku):
    from openpyxl import load_workbook

    out = io.BytesIO()
    imports.write_template(out=out, product=product)
    sheet = load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    assert [c.value for c in sheet[1]] == ["卡号\nCode", "卡密\nPassword", "面额\nDenomination"]
    assert sheet["A2"].value == imports.EXAMPLE_CODE and sheet["A3"].number_format == "@"
    # Uploading the template as is: the header is skipped and the example row is an error.
    batch = start(product, None, out.getvalue())
    assert errors_by_row(batch) == {2: "example"}


def test_sku_of_another_product_is_refused(product, demo_shop):
    other = Sku.objects.exclude(product=product).first()
    with pytest.raises(imports.ImportRefused, match="does not belong"):
        imports.create_batch(product=product, sku=other, text="A\n")
