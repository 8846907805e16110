"""Imports run in the background in the embedded run too (issue 11: with Celery eager, checking a
100,000-row file ran inside the upload request — 33 s with no feedback — and the progress bar was
only ever seen at 100%).

* On PostgreSQL with the embedded run's setting (``CELERY_TASK_ALWAYS_EAGER``), the upload and the
  confirmation return while the work goes on in a thread, and the progress JSON is seen mid-way.
* In a child process on a fresh SQLite file, exactly as ``make run`` starts: two uploads checked
  and committed at once next to the polling requests, without "database is locked".
* The bar moves at least every ``PROGRESS_SECONDS`` within a chunk, not only once per chunk.
* In Chromium: the bar is seen between 0 and 100 with "Checking the codes…", then the page shows
  the result by itself.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse
from django.utils import translation

from catalog import imports
from catalog.imports import flow, readers, staging
from catalog.models import CardCode, ImportBatch
from catalog.tests.test_imports import code_for, xlsx_bytes
from catalog.tests.test_imports_admin import ADD_URL, signed_in, upload_form

Status = ImportBatch.Status
ROOT = Path(__file__).resolve().parents[2]


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
def embedded(settings):
    """The embedded run's setting: no broker, so no worker (the test suite itself has Redis)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def background_threads(transactional_db):
    """Wait, before the test database is flushed, for the import threads to finish (the commit's
    thread still runs the stock hooks after the status the test polls says "committed")."""
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("catalog.tasks."):
            thread.join(30)


@pytest.fixture
def held_check(monkeypatch):
    """The check stops after staging its first chunk until ``release`` is set (at most 8 s: on
    code that checks inside the request, the request then finishes late instead of hanging)."""
    monkeypatch.setattr(flow, "CHUNK_ROWS", 100)
    staged, release = threading.Event(), threading.Event()
    real_stage = staging._stage

    def stage(batch_id, chunk):
        real_stage(batch_id, chunk)
        if not staged.is_set():
            staged.set()
            release.wait(8)

    monkeypatch.setattr(staging, "_stage", stage)
    return staged, release


def poll(client, url: str, *, until, timeout: float = 60) -> list[dict]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(client.get(url).json())
        if until(seen[-1]):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"timed out; last progress: {seen[-1]}")


@pytest.mark.django_db(transaction=True)
def test_embedded_run_returns_from_the_upload_at_once_and_the_bar_moves(
    embedded, background_threads, held_check, client, merchant_staff, password, product, sku
):
    staged, release = held_check
    signed_in(client, merchant_staff, password)
    rows = [("卡号", "卡密")] + [(code_for(n), f"pw{n}") for n in range(500)]
    try:
        response = client.post(ADD_URL, upload_form(product, sku, data=xlsx_bytes(rows)))
        batch = ImportBatch.objects.get()
        assert response.status_code == 302
        batch.refresh_from_db()
        assert batch.status in {Status.UPLOADED, Status.PARSING}, "the check ran inside the upload request"
        assert staged.wait(10)
        progress_url = reverse("admin:catalog_importbatch_progress", args=[batch.pk])
        middle = poll(client, progress_url, until=lambda d: d["processed"] > 0)[-1]
        assert (middle["status"], middle["running"]) == ("parsing", True)
        assert 0 < middle["percent"] < 100
        assert middle["message"] == "Checking the codes… Nothing is imported until you confirm."
        page = client.get(response.url).content.decode()
        assert 'data-running="true"' in page and "Checking the codes…" in page
    finally:
        release.set()

    seen = poll(client, progress_url, until=lambda d: not d["running"])
    assert (seen[-1]["status"], seen[-1]["percent"], seen[-1]["valid"]) == ("ready", 100, 500)
    percents = [middle["percent"]] + [d["percent"] for d in seen]
    assert percents == sorted(percents)  # forward only

    response = client.post(reverse("admin:catalog_importbatch_confirm", args=[batch.pk]))
    assert response.status_code == 302
    final = poll(client, progress_url, until=lambda d: d["status"] == "committed")[-1]
    assert (final["imported"], final["message"]) == (500, "Imported 500 codes into stock.")
    assert CardCode.objects.filter(batch=batch).count() == 500


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_the_browser_the_bar_moves_then_the_page_shows_the_result(
    embedded, background_threads, held_check, page, live_server, merchant_staff, password, product, sku, tmp_path
):
    staged, release = held_check
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page.goto("/admin/login/")
    page.fill("#id_username", merchant_staff.email)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.goto(ADD_URL)
    page.select_option("#id_product", label=product.title)
    page.select_option("#id_sku", label=f"{product.title} · {sku.label}")
    workbook = tmp_path / "codes.xlsx"
    workbook.write_bytes(xlsx_bytes([("卡号", "卡密")] + [(code_for(n), "pw") for n in range(500)]))
    page.set_input_files("#id_file", str(workbook))
    try:
        page.click("input[name=_upload]")
        page.wait_for_url("**/change/")
        assert staged.wait(10)
        # The poll (once a second) moves the bar while the check is held mid-way.
        page.wait_for_function(
            "() => { const bar = document.querySelector('#import-progress progress');"
            " return bar && bar.hasAttribute('value') && bar.value > 0 && bar.value < 100; }",
            timeout=10_000,
        )
        message = page.locator("#import-progress [data-field=message]")
        assert message.inner_text() == "Checking the codes… Nothing is imported until you confirm."
        assert re.match(r"Checked [1-4]\d\d of 501 rows", page.locator(".import-progress-text").inner_text())
    finally:
        release.set()
    # Once the check is over the page shows the result by itself (no stale "checking" text).
    page.get_by_text("Check finished: 500 codes can be imported.").wait_for(timeout=30_000)
    assert page.locator("#import-progress progress").get_attribute("value") == "100"
    page.get_by_role("button", name="Confirm: import 500 codes").click()
    page.get_by_text("Imported 500 codes into stock.").wait_for(timeout=30_000)
    assert "Importing" not in page.locator("#content").inner_text()
    assert CardCode.objects.filter(batch__product=product, sku=sku, batch__isnull=False).count() == 500


@pytest.mark.django_db(transaction=True)
def test_a_refusal_found_in_the_background_is_worded_in_the_uploaders_language(
    embedded, background_threads, client, merchant_staff, password, product
):
    signed_in(client, merchant_staff, password)  # English
    rows = [("序号", "商品名称", "金额")] + [(n, "Steam", 100) for n in range(1, 7)]
    response = client.post(ADD_URL, upload_form(product, None, data=xlsx_bytes(rows)))
    batch = ImportBatch.objects.get()
    progress_url = reverse("admin:catalog_importbatch_progress", args=[batch.pk])
    final = poll(client, progress_url, until=lambda d: not d["running"])[-1]
    assert final["status"] == "failed"
    assert final["failure"].startswith("The file has no code column: the header in row 1 names no 卡号"), final
    assert "Found columns: 序号, 商品名称, 金额." in client.get(response.url).content.decode()


def test_on_sqlite_a_second_parse_of_a_batch_being_parsed_in_this_process_is_refused(monkeypatch):
    """The embedded run parses in threads; the sweeper (stalled imports, by age) must not start a
    second parse of a long-running one. PostgreSQL has its advisory lock; SQLite this."""
    from types import SimpleNamespace

    monkeypatch.setattr(flow, "connection", SimpleNamespace(vendor="sqlite"))
    with flow._parse_lock(7) as first:
        assert first
        with flow._parse_lock(7) as second:
            assert not second
        with flow._parse_lock(8) as other:
            assert other
    with flow._parse_lock(7) as again:
        assert again


@pytest.mark.django_db
def test_with_a_worker_the_request_only_queues(product, sku, django_capture_on_commit_callbacks, monkeypatch):
    """Not the embedded run (a broker is configured): the task goes to Celery, no thread starts."""
    from catalog import tasks

    queued = []
    monkeypatch.setattr(tasks.parse_import, "apply_async", lambda *args, **kw: queued.append(kw["kwargs"]))
    started = threading.active_count()
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        batch = imports.create_batch(product=product, sku=sku, text=f"{code_for(1)}\n")
    assert queued == [{"batch_id": batch.pk, "language": "en"}]
    assert threading.active_count() == started


@pytest.mark.django_db
def test_the_bar_moves_within_a_chunk_every_progress_interval(product, sku, monkeypatch):
    monkeypatch.setattr(flow, "PROGRESS_SECONDS", 0)  # every look at the clock reports
    monkeypatch.setattr(flow, "PROGRESS_CHECK_ROWS", 4)
    batch = imports.create_batch(
        product=product, sku=sku, text="".join(f"{code_for(n)}\n" for n in range(10)), enqueue=False
    )
    seen = []
    imports.parse_batch(batch_id=batch.pk, progress=lambda done, total: seen.append((done, total)))
    # One chunk (5,000 rows) holds the whole file: before, the bar moved only at its end.
    assert seen[:2] == [(4, 11), (8, 11)]
    assert seen[-1] == (10, 10)


def write_only_xlsx(rows) -> bytes:
    """A workbook whose sheet does not say its size (``<dimension ref="A1"/>``), as openpyxl's
    write-only mode and other exporters write it."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_bar_has_a_total_when_the_sheet_does_not_say_its_size(product, sku, monkeypatch):
    # Before: the total followed the rows read (max(dimension "A1", rows so far)): 100% from the start.
    monkeypatch.setattr(flow, "CHUNK_ROWS", 4)
    data = write_only_xlsx([("卡号", "卡密")] + [(code_for(n), "pw") for n in range(10)])
    batch = imports.create_batch(product=product, sku=sku, upload=io.BytesIO(data), filename="c.xlsx", enqueue=False)
    seen = []
    imports.parse_batch(batch_id=batch.pk, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(5, 11), (9, 11), (11, 11), (10, 10)]  # rows read of 11 (the header is a row too)


def test_rows_are_counted_across_the_chunks_of_a_large_sheet():
    rows = 60_000  # several MB of sheet XML: read in many 1 MB chunks
    data = write_only_xlsx((code_for(n), "pw") for n in range(rows))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.getinfo("xl/worksheets/sheet1.xml").file_size > 3 << 20
        assert readers._scan_sheet(archive, "xl/worksheets/sheet1.xml") == ({}, rows)


SQLITE_RUN = r"""
import io, time
from django.test import Client
from django.test.utils import setup_test_environment
from openpyxl import Workbook
from catalog.imports import flow
from catalog.models import CardCode, ImportBatch, Product

setup_test_environment()
flow.CHUNK_ROWS = 500  # many small write transactions next to the requests
flow.PROGRESS_SECONDS = 0.05
product = Product.objects.get(slug="steam-wallet")
sku = product.skus.get(label="100元")
client = Client()
client.cookies["django_language"] = "en"
assert client.login(email="merchant@kameng.local", password="kameng-merchant")

def workbook(start, count):
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["卡号", "卡密"])
    for n in range(start, start + count):
        sheet.append([f"SQ{n:07d}-ABCD-{n * 7919 % 100000:05d}", f"pw{n}"])
    out = io.BytesIO()
    book.save(out)
    out.seek(0)
    out.name = "codes.xlsx"
    return out

def upload(data):
    begun = time.monotonic()
    response = client.post("/admin/catalog/importbatch/add/", {
        "product": product.pk, "sku": sku.pk, "mode": "all", "delimiter": "", "source": "", "text": "",
        "file": data})
    assert response.status_code == 302, response.status_code
    batch = ImportBatch.objects.order_by("-pk").first()
    return batch, time.monotonic() - begun

def watch(batch, until):
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        data = client.get(f"/admin/catalog/importbatch/{batch.pk}/progress/").json()
        seen.append(data)
        if until(data):
            return seen
        time.sleep(0.02)
    raise SystemExit(f"timed out: {seen[-1]}")

first, first_took = upload(workbook(0, 6000))
print("AFTER_UPLOAD", ImportBatch.objects.get(pk=first.pk).status)
middle = watch(first, lambda d: 0 < d["percent"] < 100 or not d["running"])[-1]
print("MIDWAY", middle["running"] and 0 < middle["percent"] < 100)
second, _ = upload(workbook(100000, 3000))  # a second upload while the first is being checked
seen = watch(first, lambda d: not d["running"])
print("CHECKED", seen[-1]["status"], seen[-1]["valid"], seen[-1]["failure"] or "-")
print("CHECKED2", watch(second, lambda d: not d["running"])[-1]["status"])
for batch in (first, second):
    assert client.post(f"/admin/catalog/importbatch/{batch.pk}/confirm/").status_code == 302
done = [watch(batch, lambda d: d["status"] in {"committed", "failed", "ready"})[-1] for batch in (first, second)]
print("COMMITTED", [(d["status"], d["imported"], d["failure"] or "-") for d in done])
print("IN_STOCK", CardCode.objects.filter(batch__in=[first.pk, second.pk]).count())
"""


def test_embedded_sqlite_checks_and_commits_two_files_at_once_without_locking_errors(tmp_path):
    inherited = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}}
    env = {
        **inherited,
        "KAMENG_IGNORE_ENV_FILE": "1",
        "DEBUG": "true",
        "SECRET_KEY": "embedded-import-test-" + "x" * 40,
        "CARD_CODE_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "IMPORT_UPLOAD_DIR": str(tmp_path / "imports"),
    }

    def manage(*args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
        assert "database is locked" not in result.stdout + result.stderr
        return result.stdout

    manage("migrate", "--no-input")
    manage("seed_demo")
    out = manage("shell", "--no-imports", stdin=SQLITE_RUN)
    assert "AFTER_UPLOAD uploaded" in out or "AFTER_UPLOAD parsing" in out, out
    assert "MIDWAY True" in out, out
    assert "CHECKED ready 6000 -" in out, out
    assert "CHECKED2 ready" in out, out
    assert "COMMITTED [('committed', 6000, '-'), ('committed', 3000, '-')]" in out, out
    assert "IN_STOCK 9000" in out, out
