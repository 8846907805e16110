"""Card-code imports through Django admin: upload form, preview, confirm/cancel/mode, downloads,
re-run action, and merchant scoping (another merchant's batch is a 404 on every URL)."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation
from openpyxl import load_workbook

from catalog import codes, imports
from catalog.models import CardCode, ImportBatch, ImportRow
from catalog.tests.test_imports import code_for, stored_files, xlsx_bytes

pytestmark = pytest.mark.django_db

Status = ImportBatch.Status
ADD_URL = "/admin/catalog/importbatch/add/"


@pytest.fixture(autouse=True)
def _private_upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


@pytest.fixture(autouse=True)
def _english():
    """Messages that services store (failures) are in the active language: English here, whatever
    ran before in this thread. Pages get English from the language cookie (signed_in)."""
    with translation.override("en"):
        yield


def signed_in(client, user, password):
    client.login(email=user.email, password=password)
    client.cookies["django_language"] = "en"
    return client


@pytest.fixture
def staff_client(client, merchant_staff, password):
    return signed_in(client, merchant_staff, password)


@pytest.fixture
def product(demo_shop):
    return demo_shop.products["steam-wallet"]


@pytest.fixture
def sku(product):
    return product.skus.get(label="100元")


def url(name: str, batch: ImportBatch) -> str:
    return reverse(f"admin:catalog_importbatch_{name}", args=[batch.pk])


def upload_form(product, sku=None, *, data=None, name="codes.xlsx", text="", mode="all", delimiter="", source=""):
    form = {"product": product.pk, "sku": sku.pk if sku else "", "mode": mode, "delimiter": delimiter,
            "source": source, "text": text}  # fmt: skip
    if data is not None:
        form["file"] = SimpleUploadedFile(name, data)
    return form


def test_upload_check_preview_and_confirm(staff_client, product, sku, django_capture_on_commit_callbacks):
    rows = [("卡号", "卡密")] + [(code_for(n), f"pw{n}") for n in range(3)] + [("=A2", "")]
    with django_capture_on_commit_callbacks(execute=True):  # the check task runs (eagerly) on commit
        response = staff_client.post(ADD_URL, upload_form(product, sku, data=xlsx_bytes(rows)))
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and response.url == url("change", batch)
    assert (batch.merchant, batch.created_by.email, batch.status) == (
        product.merchant,
        "staff@merchant.example",
        "ready",
    )

    page = staff_client.get(response.url).content.decode()
    assert "ready to confirm" in page and "Confirm: import 3 codes" in page
    assert "formula instead of value" in page and "<td>5</td>" in page  # row 5 holds the formula
    assert "will not import" in page  # all-or-nothing with an error row
    for n in range(3):
        assert code_for(n) not in page

    # All or nothing with an error: confirming is refused with a message, nothing imported.
    response = staff_client.post(url("confirm", batch), follow=True)
    assert "1 rows have errors" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == Status.READY and not CardCode.objects.filter(batch=batch).exists()

    staff_client.post(url("mode", batch), {"mode": "valid"})
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url("confirm", batch), follow=True)
        assert "Adding the codes to stock" in response.content.decode()  # the commit task is queued on commit
    batch.refresh_from_db()
    assert (batch.status, batch.imported_rows) == (Status.COMMITTED, 3)
    assert "codes imported" in staff_client.get(url("change", batch)).content.decode()
    assert sorted(codes.decrypt(c.payload).code for c in CardCode.objects.filter(batch=batch)) == [
        code_for(n) for n in range(3)
    ]
    assert stored_files() == []


def test_pasted_text_upload(staff_client, product, sku, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(ADD_URL, upload_form(product, sku, text=f"{code_for(1)}|a\n{code_for(2)}|b\n", delimiter="|"))
    batch = ImportBatch.objects.get()
    assert (batch.source, batch.delimiter, batch.valid_rows) == ("text", "|", 2)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"\x00\x01\x02 not a spreadsheet", "codes.xlsx", "not a valid .xlsx workbook"),
        (b"\x00\x01\x02 binary", "codes.bin", "not a spreadsheet or text file"),
        (b"", "codes.csv", "The submitted file is empty."),
    ],
)
def test_bad_uploads_show_a_clear_message_and_store_nothing(staff_client, product, sku, data, name, message):
    response = staff_client.post(ADD_URL, upload_form(product, sku, data=data, name=name))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ImportBatch.objects.exists() and stored_files() == []


def test_oversize_upload_is_refused_in_the_form(staff_client, product, sku, settings):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    response = staff_client.post(ADD_URL, upload_form(product, sku, data=b"A\n" * 600_000, name="codes.csv"))
    assert "the limit is 1 MB" in response.content.decode()
    assert not ImportBatch.objects.exists()


def test_pasted_text_over_the_request_limit_gets_a_message(staff_client, product, sku, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = staff_client.post(ADD_URL, upload_form(product, sku, text="A" * 5000))
    assert response.status_code == 200
    assert "The pasted text is too long" in response.content.decode()


def test_the_form_needs_a_file_or_text_and_a_matching_sku(staff_client, product, demo_shop):
    other_sku = demo_shop.products["qq-music-vip"].skus.first()
    response = staff_client.post(ADD_URL, upload_form(product, other_sku))
    page = response.content.decode()
    assert "Upload a file or paste codes" in page and "does not belong to the chosen product" in page


def test_merchant_staff_can_only_pick_their_own_products(staff_client, demo_shop):
    page = staff_client.get(ADD_URL).content.decode()
    assert "Steam 钱包充值卡" in page and "王者荣耀点券" not in page
    other_product = demo_shop.products["honor-of-kings"]
    response = staff_client.post(ADD_URL, upload_form(other_product, text="A1234567\n"))
    assert "Select a valid choice" in response.content.decode()
    assert not ImportBatch.objects.exists()


def test_operator_imports_for_any_merchant_and_the_batch_belongs_to_the_products_merchant(
    client, operator, password, demo_shop, django_capture_on_commit_callbacks
):
    signed_in(client, operator, password)
    other_product = demo_shop.products["honor-of-kings"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(ADD_URL, upload_form(other_product, other_product.skus.first(), text="HOK-12345678\n"))
    assert ImportBatch.objects.get().merchant == demo_shop.other_merchant


def test_another_merchants_batch_is_404_on_every_url(staff_client, demo_shop, django_capture_on_commit_callbacks):
    other_product = demo_shop.products["honor-of-kings"]
    with django_capture_on_commit_callbacks(execute=True):
        theirs = imports.create_batch(product=other_product, sku=other_product.skus.first(), text="HOK-0000-1111\n")
    theirs.refresh_from_db()
    assert theirs.status == Status.READY

    for name in ("change", "progress", "errors", "history"):
        assert staff_client.get(url(name, theirs)).status_code == 404, name
    for name in ("confirm", "cancel", "mode", "rerun"):
        assert staff_client.post(url(name, theirs), {"mode": "valid"}).status_code == 404, name
    assert staff_client.get(f"/admin/catalog/importbatch/{theirs.pk}/delete/").status_code in {403, 404}
    changelist = staff_client.get("/admin/catalog/importbatch/").content.decode()
    assert f"#{theirs.pk} " not in changelist
    # The action cannot reach it either: actions only see the merchant's own rows.
    staff_client.post(
        "/admin/catalog/importbatch/", {"action": "rerun_failed", "_selected_action": [theirs.pk]}
    )  # fmt: skip
    theirs.refresh_from_db()
    assert theirs.status == Status.READY and ImportRow.objects.filter(batch=theirs).count() == 1


def test_progress_endpoint_reports_counts_without_codes(staff_client, product, sku):
    batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n{code_for(1)}\n", enqueue=False)
    assert staff_client.get(url("progress", batch)).json()["status"] == "uploaded"
    imports.parse_batch(batch_id=batch.pk)
    response = staff_client.get(url("progress", batch))
    data = response.json()
    assert data == {
        "id": batch.pk, "status": "ready", "status_label": "ready to confirm", "running": False, "processed": 2,
        "total": 2, "percent": 100, "valid": 1, "errors": 1, "imported": 0, "failure": "",
        "message": "Check finished: 1 code can be imported. Nothing is imported until you confirm.",
    }  # fmt: skip
    assert code_for(1) not in response.content.decode()


def test_error_report_download(staff_client, product, sku):
    batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n\n{code_for(1)}\n", enqueue=False)
    imports.parse_batch(batch_id=batch.pk)
    response = staff_client.get(url("errors", batch))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="import-{batch.pk}-errors.xlsx"'
    content = b"".join(response.streaming_content)
    rows = list(load_workbook(io.BytesIO(content), read_only=True).worksheets[0].values)
    assert rows[1] == (3, "duplicate inside the file", "same code as row 1", codes.mask(code_for(1)))


def test_template_download(staff_client, product):
    response = staff_client.get(reverse("admin:catalog_importbatch_template") + f"?product={product.pk}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert [c.value for c in workbook.worksheets[0][1]] == ["卡号\nCode", "卡密\nPassword", "面额\nDenomination"]
    assert workbook.worksheets[0]["C2"].value == "50元"  # the product's first SKU
    assert "面额 Denomination: 200元" in [row[0] for row in workbook.worksheets[1].values]
    changelist = staff_client.get("/admin/catalog/importbatch/").content.decode()
    assert reverse("admin:catalog_importbatch_template") in changelist


def test_cancel_from_the_preview(staff_client, product, sku, django_capture_on_commit_callbacks):
    batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n", enqueue=False)
    imports.parse_batch(batch_id=batch.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url("cancel", batch), follow=True)
    assert "cancelled" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == Status.CANCELLED and stored_files() == [] and not CardCode.objects.filter(batch=batch)
    assert staff_client.get(url("confirm", batch)).status_code == 405  # POST only


def test_rerun_failed_action(staff_client, product, sku, settings, django_capture_on_commit_callbacks):
    settings.IMPORT_MAX_ROWS = 1
    batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n{code_for(2)}\n", enqueue=False)
    imports.parse_batch(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == Status.FAILED
    assert "more than 1 rows" in staff_client.get(url("change", batch)).content.decode()

    settings.IMPORT_MAX_ROWS = 100
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/catalog/importbatch/", {"action": "rerun_failed", "_selected_action": [batch.pk]}, follow=True
        )
    assert "1 imports are being checked again" in response.content.decode()
    batch.refresh_from_db()
    assert (batch.status, batch.valid_rows) == (Status.READY, 2)


def test_rerun_button_on_a_failed_batch(staff_client, product, sku, settings, django_capture_on_commit_callbacks):
    settings.IMPORT_MAX_ROWS = 1
    batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n{code_for(2)}\n", enqueue=False)
    imports.parse_batch(batch_id=batch.pk)
    assert "Re-run the check" in staff_client.get(url("change", batch)).content.decode()
    settings.IMPORT_MAX_ROWS = 100
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url("rerun", batch))
    batch.refresh_from_db()
    assert batch.status == Status.READY
    assert "Re-run the check" not in staff_client.get(url("change", batch)).content.decode()


def test_batches_cannot_be_deleted_in_admin(client, operator, password, product, sku):
    signed_in(client, operator, password)
    batch = imports.create_batch(product=product, sku=sku, text="A1234567\n", enqueue=False)
    assert client.get(f"/admin/catalog/importbatch/{batch.pk}/delete/").status_code == 403
