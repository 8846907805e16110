"""``manage.py import_codes``: the same checks as the admin upload, synchronous, for large files and scripts."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from catalog import codes
from catalog.models import CardCode, ImportBatch
from catalog.tests.test_imports import code_for, stored_files, xlsx_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    """In-process commands print in the active language; these assertions read the English source.
    (The subprocess test below runs with the site default, Chinese.)"""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _private_upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


@pytest.fixture
def sku(demo_shop):
    return demo_shop.products["steam-wallet"].skus.get(label="100元")


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_codes", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_imports_a_workbook_with_yes(sku, tmp_path, django_capture_on_commit_callbacks):
    path = tmp_path / "codes.xlsx"
    path.write_bytes(xlsx_bytes([("卡号", "卡密")] + [(code_for(n), f"pw{n}") for n in range(3)]))
    with django_capture_on_commit_callbacks(execute=True):
        out, err = run("--sku", str(sku.pk), str(path), "--yes")
    assert "3 valid rows, 0 rows with errors, of 3 rows." in out and "Imported 3 codes" in out
    assert "checking rows: 3/3" in err  # the progress line
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.imported_rows) == (ImportBatch.Status.COMMITTED, 3)
    assert codes.decrypt(CardCode.objects.filter(batch=batch).first().payload) == codes.Secret(code_for(0), "pw0")
    assert stored_files() == []
    for n in range(3):
        assert code_for(n) not in out + err


@pytest.mark.django_db(transaction=True)
def test_all_or_nothing_with_errors_exits_non_zero_and_imports_nothing(sku, tmp_path, settings):
    """The real ``manage.py`` in a process of its own, on the test database: exit code 1."""
    path = tmp_path / "codes.txt"
    path.write_text(f"{code_for(1)}----a\n----b\n{code_for(1)}----c\n", encoding="utf-8")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "IMPORT_UPLOAD_DIR": str(settings.IMPORT_UPLOAD_DIR),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "import_codes", "--sku", str(sku.pk), "--delimiter=----", str(path)],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    # Commands speak the site's language (zh-hans by default), like the admin.
    assert "第 2 行：卡号为空" in result.stdout
    assert "第 3 行：文件内重复 — 与第 1 行卡密相同" in result.stdout
    assert "2 rows have errors: nothing imported" in result.stderr and "cancelled" in result.stderr
    assert ImportBatch.objects.get().status == ImportBatch.Status.CANCELLED
    assert not CardCode.objects.filter(batch__isnull=False).exists()
    assert stored_files() == []
    assert code_for(1) not in result.stdout + result.stderr


def test_valid_rows_mode_imports_the_rest(sku, tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text(f"{code_for(1)},x\n{'Q' * 300},y\n{code_for(2)},z\n", encoding="utf-8")
    out, _err = run("--sku", str(sku.pk), "--mode", "valid", "--yes", str(path))
    assert "row 2: too long" in out and "Imported 2 codes" in out


def test_tab_delimiter_by_name(sku, tmp_path):
    path = tmp_path / "codes.txt"
    path.write_text(f"{code_for(1)}\tsecret\n", encoding="utf-8")
    run("--sku", str(sku.pk), "--delimiter", "\\t", "--yes", str(path))
    assert codes.decrypt(CardCode.objects.get(batch__isnull=False).payload) == codes.Secret(code_for(1), "secret")


def test_without_yes_and_without_a_terminal_nothing_is_imported(sku, tmp_path):
    path = tmp_path / "codes.txt"
    path.write_text(f"{code_for(1)}\n", encoding="utf-8")
    with pytest.raises(CommandError, match="run with --yes"):
        run("--sku", str(sku.pk), str(path))
    assert ImportBatch.objects.get().status == ImportBatch.Status.CANCELLED


def test_a_refused_file_and_an_unknown_sku_give_clear_errors(sku, tmp_path):
    path = tmp_path / "codes.xlsx"
    path.write_bytes(b"definitely not a workbook")
    with pytest.raises(CommandError, match=r"not a valid \.xlsx workbook"):
        run("--sku", str(sku.pk), str(path), "--yes")
    with pytest.raises(CommandError, match="no SKU with id 999999"):
        run("--sku", "999999", str(path), "--yes")
    with pytest.raises(CommandError, match="no such file"):
        run("--sku", str(sku.pk), str(tmp_path / "missing.csv"))
    assert not ImportBatch.objects.exists()


def test_too_many_rows_is_refused(sku, tmp_path, settings):
    settings.IMPORT_MAX_ROWS = 2
    path = tmp_path / "codes.txt"
    path.write_text("".join(f"{code_for(n)}\n" for n in range(3)), encoding="utf-8")
    with pytest.raises(CommandError, match="more than 2 rows"):
        run("--sku", str(sku.pk), str(path), "--yes")
    assert ImportBatch.objects.get().status == ImportBatch.Status.FAILED
