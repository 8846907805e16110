"""Card-code imports with the real parts running concurrently: a real Celery worker (Redis) and the
progress JSON, two confirmations racing on PostgreSQL, a worker that survives a bad file, and the
whole flow in Chromium."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.urls import reverse

from catalog import codes, imports
from catalog.imports import flow
from catalog.models import CardCode, ImportBatch, ImportRow
from catalog.signals import stock_changed
from catalog.tests.test_imports import code_for, stored_files, xlsx_bytes
from catalog.tests.test_imports_admin import ADD_URL, signed_in, upload_form

Status = ImportBatch.Status


@pytest.fixture(autouse=True)
def _private_upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


@pytest.fixture
def product(demo_shop):
    return demo_shop.products["steam-wallet"]


@pytest.fixture
def sku(product):
    return product.skus.get(label="100元")


def poll(client, url: str, *, until, timeout: float = 60) -> list[dict]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.get(url).json()
        seen.append(data)
        if until(data):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"timed out; last progress: {seen[-1]}")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_progress_reaches_100_through_the_json_endpoint_with_a_real_worker(
    celery_worker, client, merchant_staff, password, product, sku, monkeypatch
):
    monkeypatch.setattr(flow, "CHUNK_ROWS", 400)  # several progress steps for 4,000 rows
    signed_in(client, merchant_staff, password)
    rows = [("卡号", "卡密")] + [(code_for(n), f"pw{n}") for n in range(4000)]
    response = client.post(ADD_URL, upload_form(product, sku, data=xlsx_bytes(rows)))
    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    progress_url = reverse("admin:catalog_importbatch_progress", args=[batch.pk])

    seen = poll(client, progress_url, until=lambda d: not d["running"])
    final = seen[-1]
    assert (final["status"], final["percent"], final["valid"], final["errors"]) == ("ready", 100, 4000, 0)
    percents = [d["percent"] for d in seen]
    assert percents == sorted(percents)  # the bar only moves forward
    assert ImportRow.objects.filter(batch=batch).count() == 4000  # staged by the worker's COPY thread

    response = client.post(reverse("admin:catalog_importbatch_confirm", args=[batch.pk]))
    assert response.status_code == 302
    final = poll(client, progress_url, until=lambda d: d["status"] == "committed")[-1]
    assert (final["imported"], final["percent"]) == (4000, 100)
    assert CardCode.objects.filter(batch=batch).count() == 4000
    assert not ImportRow.objects.filter(batch=batch).exists()
    # The encrypted upload is deleted once the commit is durable (an on-commit hook of the worker's
    # transaction), a moment after the status the page polls says "committed".
    deadline = time.monotonic() + 10
    while stored_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored_files() == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_survives_a_file_that_cannot_be_parsed(celery_worker, product, sku):
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:  # passes the upload check, breaks openpyxl
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook><sheets><sheet")
    broken = imports.create_batch(product=product, sku=sku, upload=io.BytesIO(out.getvalue()), filename="b.xlsx")
    good = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n")

    deadline = time.monotonic() + 60
    while ImportBatch.objects.filter(pk__in=[broken.pk, good.pk], status__in=imports.RUNNING).exists():
        assert time.monotonic() < deadline, "the worker did not finish both batches"
        time.sleep(0.05)
    broken.refresh_from_db()
    good.refresh_from_db()
    # The worker records the message in the site's language; the exception type is in it either way.
    assert broken.status == Status.FAILED and "Error)" in broken.failure.replace("）", ")")
    assert good.status == Status.READY and good.valid_rows == 1


@pytest.mark.django_db(transaction=True)
def test_two_confirmations_racing_commit_once(product, sku):
    """Two clicks (two web processes) confirm the same batch at the same moment on PostgreSQL."""
    batch = imports.create_batch(
        product=product, sku=sku, text="".join(f"{code_for(n)}\n" for n in range(50)), enqueue=False
    )
    imports.parse_batch(batch_id=batch.pk)  # outside any transaction: the pipelined COPY path
    signals = []
    stock_changed.connect(receiver := lambda sender, sku_ids, **kw: signals.append(sku_ids))
    barrier = threading.Barrier(2)
    results = []

    def confirm():
        try:
            mine = ImportBatch.objects.get(pk=batch.pk)
            barrier.wait(timeout=10)
            results.append(imports.request_commit(batch=mine))  # the commit task runs eagerly on commit
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=confirm) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        stock_changed.disconnect(receiver)

    assert sorted(results) == [False, True]
    batch.refresh_from_db()
    assert (batch.status, batch.imported_rows) == (Status.COMMITTED, 50)
    assert CardCode.objects.filter(batch=batch).count() == 50
    assert signals == [[sku.pk]]


@pytest.mark.django_db(transaction=True)
def test_two_commit_tasks_racing_leave_one_result(product, sku):
    """A redelivered commit task running next to the first: the row lock serialises them and the
    second sees the batch committed (without it, it would overwrite imported_rows with 0)."""
    batch = imports.create_batch(
        product=product, sku=sku, text="".join(f"{code_for(n)}\n" for n in range(30)), enqueue=False
    )
    imports.parse_batch(batch_id=batch.pk)
    assert imports.request_commit(batch=batch, enqueue=False)
    barrier = threading.Barrier(2)
    outcomes = []

    def commit():
        try:
            barrier.wait(timeout=10)
            outcomes.append(imports.commit_batch(batch_id=batch.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=commit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcome is None for outcome in outcomes) == [False, True]
    batch.refresh_from_db()
    assert (batch.status, batch.imported_rows) == (Status.COMMITTED, 30)
    assert CardCode.objects.filter(batch=batch).count() == 30


@pytest.mark.django_db(transaction=True)
def test_pipelined_staging_keeps_every_row_and_its_order(product, sku, monkeypatch):
    monkeypatch.setattr(flow, "CHUNK_ROWS", 7)  # many chunks through the COPY thread
    text = "".join(f"{code_for(n)}\t{n}\n" for n in range(100))
    batch = imports.create_batch(product=product, sku=sku, text=text, delimiter="\t", enqueue=False)
    imports.parse_batch(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.valid_rows) == (Status.READY, 100)
    staged = ImportRow.objects.filter(batch=batch).order_by("row_number")
    assert [codes.decrypt(row.payload) for row in staged] == [codes.Secret(code_for(n), str(n)) for n in range(100)]


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_merchant_uploads_watches_the_check_and_confirms_in_the_browser(
    page, live_server, celery_worker, merchant_staff, password, product, sku, tmp_path
):
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page.goto("/admin/login/")
    page.fill("#id_username", merchant_staff.email)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.goto(ADD_URL)
    page.select_option("#id_product", label=product.title)
    page.select_option("#id_sku", label=f"{product.title} · {sku.label}")
    workbook = tmp_path / "codes.xlsx"
    workbook.write_bytes(xlsx_bytes([("卡号", "卡密")] + [(code_for(n), "pw") for n in range(2000)] + [("", "x")]))
    page.set_input_files("#id_file", str(workbook))
    page.get_by_label("import the valid rows").check()
    page.click("input[name=_upload]")

    # The page polls the progress endpoint and reloads itself once the check is over.
    page.get_by_text("ready to confirm").wait_for(timeout=30_000)
    assert page.locator("#import-progress progress").get_attribute("value") == "100"
    assert page.locator("#import-errors tbody tr").count() == 1  # row 2002: empty code
    page.get_by_role("button", name="Confirm: import 2000 codes").click()
    page.get_by_text("codes imported").wait_for(timeout=30_000)
    assert CardCode.objects.filter(batch__product=product, sku=sku, batch__isnull=False).count() == 2000


@pytest.mark.django_db(transaction=True)
def test_sweeper_requeues_lost_work_and_leaves_live_work_alone(product, sku):
    """Tasks lost with a broker: the periodic sweeper queues them again (Celery is eager here)."""
    from datetime import timedelta

    from django.utils import timezone

    def batch(text: str) -> ImportBatch:
        return imports.create_batch(product=product, sku=sku, text=text, enqueue=False)

    lost_parse = batch(f"{code_for(1)}\n")
    live_parse = batch(f"{code_for(2)}\n")
    lost_commit = batch(f"{code_for(3)}\n")
    recent = batch(f"{code_for(4)}\n")
    imports.parse_batch(batch_id=lost_commit.pk)
    assert imports.request_commit(batch=lost_commit, enqueue=False)  # the commit task never arrives
    ImportBatch.objects.filter(pk=live_parse.pk).update(status=Status.PARSING)
    ImportBatch.objects.exclude(pk=recent.pk).update(created_at=timezone.now() - timedelta(hours=1))

    holding, release = threading.Event(), threading.Event()

    def live_parser():  # another worker, parsing live_parse right now: it holds the batch's lock
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", [flow._LOCK_NAMESPACE, live_parse.pk])
            holding.set()
            release.wait(30)
        finally:
            connection.close()  # ends the session, and with it the lock

    thread = threading.Thread(target=live_parser)
    thread.start()
    try:
        assert holding.wait(10)
        assert imports.requeue_stalled() == 2
    finally:
        release.set()
        thread.join(10)

    statuses = dict(ImportBatch.objects.values_list("pk", "status"))
    assert statuses == {
        lost_parse.pk: Status.READY,
        live_parse.pk: Status.PARSING,  # left to its parser
        lost_commit.pk: Status.COMMITTED,
        recent.pk: Status.UPLOADED,  # its task may still be on its way
    }
    assert CardCode.objects.filter(batch=lost_commit).count() == 1
    assert imports.requeue_stalled() == 1  # live_parse's parser is gone now: its turn
    assert ImportBatch.objects.get(pk=live_parse.pk).status == Status.READY


@pytest.mark.django_db
def test_the_sweeper_task_runs_the_service(product, sku):
    from catalog import tasks

    assert tasks.sweep_stalled_imports.delay().get() == 0  # nothing stalled
