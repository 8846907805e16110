"""Files whose columns are not the import's (issue 11): a header row that names none of our columns,
a header without the code column, no denomination column when no SKU is chosen, and empty
workbooks. Each is refused as a whole with a message naming the columns found (and the header's
row), and nothing is staged; files that are plain codes are still read as codes."""

from __future__ import annotations

import io

import pytest
from django.utils import translation

from catalog.models import ImportBatch, ImportRow
from catalog.tests.test_imports import code_for, start, xlsx_bytes

pytestmark = pytest.mark.django_db

Status = ImportBatch.Status


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


def refused(batch: ImportBatch) -> str:
    """The batch failed as a whole, staged nothing and counts no rows; returns its message."""
    assert batch.status == Status.FAILED, (batch.status, batch.failure)
    assert not ImportRow.objects.filter(batch=batch).exists()
    assert (batch.total_rows, batch.processed_rows, batch.valid_rows, batch.error_rows) == (0, 0, 0, 0)
    return batch.failure


# --- A header that is not ours --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [("序号", "商品名称", "金额"), ("Serial", "Product", "Amount"), ("Order ID", "product name", "price")],
    ids=["chinese", "english", "english-mixed-case"],
)
def test_a_header_naming_none_of_our_columns_is_refused_with_the_columns_found(product, header):
    # The file: its header was read as row 1 and every row reported "unknown denomination".
    rows = [header] + [(n, "Steam 充值卡", "100") for n in range(1, 6)]
    message = refused(start(product, None, xlsx_bytes(rows)))
    assert "no code column" in message and "卡号" in message
    assert f"Found columns: {', '.join(header)}." in message
    assert "row 1" in message


def test_with_a_sku_chosen_a_foreign_header_is_refused_rather_than_importing_its_numbers(product, sku):
    # Before: column 1 (the serial numbers 1..5) became the codes and "100" matched the SKU 100元.
    rows = [("序号", "商品", "面值(元)")] + [(n, "Steam", "100") for n in range(1, 6)]
    message = refused(start(product, sku, xlsx_bytes(rows)))
    assert "no code column" in message and "Found columns: 序号, 商品, 面值(元)." in message


def test_a_header_with_a_denomination_but_no_code_column_is_refused(product):
    rows = [("名称", "面额"), ("Steam", "100元"), ("Steam", "50元")]
    message = refused(start(product, None, xlsx_bytes(rows)))
    assert "no code column" in message and "Found columns: 名称, 面额." in message


def test_the_header_row_is_named_when_blank_rows_come_first(product, sku):
    rows = [(None, None), ("", ""), ("编号", "名称"), (code_for(1), "x")]
    message = refused(start(product, sku, xlsx_bytes(rows)))
    assert "row 3" in message and "Found columns: 编号, 名称." in message


def test_a_title_row_above_our_header_is_not_taken_for_the_header(product, sku):
    rows = [("Steam 充值卡 卡密表",), ("卡号", "卡密"), (code_for(1), "pw"), (code_for(2), "pw")]
    batch = start(product, sku, xlsx_bytes(rows))
    assert (batch.status, batch.valid_rows, batch.error_rows) == (Status.READY, 2, 0)


def test_without_a_sku_the_denomination_column_is_required(product):
    rows = [("卡号", "卡密")] + [(code_for(n), "pw") for n in range(3)]
    message = refused(start(product, None, xlsx_bytes(rows)))
    assert "no denomination column" in message and "面额" in message
    assert "Found columns: 卡号, 卡密." in message


def test_csv_with_a_foreign_header_is_refused_too(product, sku):
    data = "序号,名称\n1,Steam\n2,Steam\n".encode()
    message = refused(start(product, sku, data, name="codes.csv"))
    assert "Found columns: 序号, 名称." in message


# --- What stays as it was -------------------------------------------------------------------------------
def test_our_header_in_english_with_extra_columns_is_read(product):
    rows = [("No.", "Card code", "Password", "Denomination", "Remarks"), ("a", code_for(1), "pw", "100元", "x")]
    batch = start(product, None, xlsx_bytes(rows))
    assert (batch.status, batch.valid_rows, batch.error_rows) == (Status.READY, 1, 0)


def test_codes_made_of_letters_only_are_not_taken_for_a_header(product, sku):
    rows = [("ABCDEFGHJKLM",), ("QWERTYUIOPAS",), ("ZXCVBNMLKJHG",)]
    batch = start(product, sku, xlsx_bytes(rows))
    assert (batch.status, batch.valid_rows) == (Status.READY, 3)
    rows = [("ABCD-EFGH-JKLM", "QWERTY"), ("QWER-TYUI-OPAS", "ASDFGH")]
    batch = start(product, sku, xlsx_bytes(rows))
    assert (batch.status, batch.valid_rows) == (Status.READY, 2)


def test_malformed_rows_are_still_reported_with_their_row_numbers(product):
    rows = [("卡号", "卡密", "面额"), (code_for(1), "pw", "100元"), (code_for(2), "pw", "7元"), (None, "pw", "100元")]
    batch = start(product, None, xlsx_bytes(rows))
    assert batch.status == Status.READY
    assert dict(ImportRow.objects.filter(batch=batch).exclude(error="").values_list("row_number", "error")) == {
        3: "unknown_sku",
        4: "empty",
    }


# --- Empty files ------------------------------------------------------------------------------------------
def empty_workbook(*, blank_cells: bool = False) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    if blank_cells:
        workbook.active["A1"] = "   "
        workbook.active["B3"] = ""
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@pytest.mark.parametrize("blank_cells", [False, True], ids=["no-cells", "blank-cells"])
def test_an_empty_workbook_says_it_is_empty_and_counts_0_rows(product, sku, blank_cells):
    # Before: "The file contains no codes." with 1 row counted and the bar at 0%.
    batch = start(product, sku, empty_workbook(blank_cells=blank_cells))
    assert refused(batch) == "The file is empty (0 rows): there is nothing to import."


def test_an_empty_workbook_page_shows_0_rows_and_the_message(client, merchant_staff, password, product, sku):
    batch = start(product, sku, empty_workbook())
    client.login(email=merchant_staff.email, password=password)
    client.cookies["django_language"] = "en"
    page = client.get(f"/admin/catalog/importbatch/{batch.pk}/change/").content.decode()
    assert "The file is empty (0 rows): there is nothing to import." in page
    assert '<td data-field="total">0</td>' in page
    assert "<progress" not in page  # no bar for a batch that has nothing to show progress of
