"""The batch page says what the batch is doing from its state, not from a flash message (issue 11:
"正在校验卡密…" went on showing while the batch waited for confirmation, "正在导入 2000 个卡密…" once it
was imported). The progress poll carries the same words, so the page updates them live."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from catalog import imports
from catalog.models import ImportBatch
from catalog.tests.test_imports import code_for, xlsx_bytes
from catalog.tests.test_imports_admin import ADD_URL, signed_in, upload_form

pytestmark = pytest.mark.django_db

Status = ImportBatch.Status
STALE = ("being checked", "Checking the codes", "Importing 3 codes", "Waiting for the check")


@pytest.fixture(autouse=True)
def _private_upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


@pytest.fixture
def product(demo_shop):
    return demo_shop.products["steam-wallet"]


@pytest.fixture
def sku(product):
    return product.skus.get(label="100元")


@pytest.fixture
def staff_client(client, merchant_staff, password):
    return signed_in(client, merchant_staff, password)


def url(name: str, batch: ImportBatch) -> str:
    return reverse(f"admin:catalog_importbatch_{name}", args=[batch.pk])


def message_of(page: str) -> str:
    start = page.index('data-field="message"')
    return page[page.index(">", start) + 1 : page.index("</p>", start)]


def test_after_upload_and_after_confirm_the_page_states_the_batch_as_it_is(
    staff_client, product, sku, django_capture_on_commit_callbacks
):
    rows = [("卡号", "卡密")] + [(code_for(n), "pw") for n in range(3)]
    with django_capture_on_commit_callbacks(execute=True):  # the check runs and finishes before the page
        response = staff_client.post(ADD_URL, upload_form(product, sku, data=xlsx_bytes(rows)))
    batch = ImportBatch.objects.get()
    assert batch.status == Status.READY
    page = staff_client.get(response.url).content.decode()
    assert message_of(page) == "Check finished: 3 codes can be imported. Nothing is imported until you confirm."
    assert not [stale for stale in STALE if stale in page], "a message of an earlier state"

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url("confirm", batch))
    batch.refresh_from_db()
    assert batch.status == Status.COMMITTED
    page = staff_client.get(response.url).content.decode()
    assert message_of(page) == "Imported 3 codes into stock."
    assert not [stale for stale in STALE if stale in page], "a message of an earlier state"
    # And it stays true on the next visit.
    assert message_of(staff_client.get(url("change", batch)).content.decode()) == "Imported 3 codes into stock."


def test_the_poll_carries_the_message_of_each_state(staff_client, product, sku):
    batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n{code_for(2)}\n", enqueue=False)

    def polled() -> str:
        return staff_client.get(url("progress", batch)).json()["message"]

    def shown() -> str:
        return message_of(staff_client.get(url("change", batch)).content.decode())

    expected = "Waiting for the check to start… Nothing is imported until you confirm."
    assert polled() == shown() == expected
    ImportBatch.objects.filter(pk=batch.pk).update(status=Status.PARSING, processed_rows=1, total_rows=2)
    assert polled() == shown() == "Checking the codes… Nothing is imported until you confirm."
    ImportBatch.objects.filter(pk=batch.pk).update(status=Status.UPLOADED)
    imports.parse_batch(batch_id=batch.pk)
    assert polled() == shown() == "Check finished: 2 codes can be imported. Nothing is imported until you confirm."
    assert imports.request_commit(batch=batch, enqueue=False)
    assert polled() == shown() == "Importing 2 codes…"
    imports.commit_batch(batch_id=batch.pk)
    assert polled() == shown() == "Imported 2 codes into stock."


def test_cancelled_and_failed_batches_say_so_without_a_progress_bar(staff_client, product, sku):
    batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n", enqueue=False)
    response = staff_client.post(url("cancel", batch), follow=True)
    page = response.content.decode()
    assert message_of(page) == "The import was cancelled; nothing was imported."
    assert page.count("nothing was imported") == 1 and "<progress" not in page

    failed = imports.create_batch(product=product, sku=sku, text=f"{code_for(2)}\n", enqueue=False)
    ImportBatch.objects.filter(pk=failed.pk).update(status=Status.FAILED, failure="The file could not be read.")
    page = staff_client.get(url("change", failed)).content.decode()
    assert message_of(page) == "The import failed; nothing was imported."
    assert "The file could not be read." in page and "<progress" not in page


def test_the_message_is_translated(staff_client, product, sku):
    batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n", enqueue=False)
    imports.parse_batch(batch_id=batch.pk)
    staff_client.cookies["django_language"] = "zh-hans"
    page = staff_client.get(url("change", batch)).content.decode()
    with translation.override("zh-hans"):
        batch.refresh_from_db()
        expected = imports.status_message(batch)
    assert expected != "Check finished: 1 code can be imported. Nothing is imported until you confirm."
    assert message_of(page) == expected
