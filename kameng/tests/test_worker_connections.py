"""Worker tasks keep their PostgreSQL connection (kameng/celery.py), within CONN_MAX_AGE."""

import pytest
from celery import shared_task
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection, connections

from kameng.celery import app

pytestmark = pytest.mark.worker


@shared_task
def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def run_tasks(count: int) -> list[int]:
    return [backend_pid.delay().get(timeout=20) for _ in range(count)]


def test_celerys_django_fixup_is_told_to_leave_connections_open(settings):
    assert settings.CELERY_DB_REUSE_MAX >= 100_000
    # The fix-up reads it through the app's configuration (namespace CELERY).
    assert DjangoWorkerFixup(app).db_reuse_max == settings.CELERY_DB_REUSE_MAX


def test_a_worker_reuses_its_connection_between_tasks(celery_worker, monkeypatch):
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)
    pids = run_tasks(4)
    assert len(set(pids)) == 1, pids


def test_without_reuse_the_fixup_would_open_one_per_task(celery_worker, monkeypatch):
    """Negative control: the fix-up as it behaves without CELERY_DB_REUSE_MAX."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)
    fixup = DjangoWorkerFixup(app)
    fixup.db_reuse_max = None
    fixup.install()
    try:
        pids = run_tasks(3)
    finally:
        from celery import signals

        signals.task_prerun.disconnect(fixup.on_task_prerun)
        signals.task_postrun.disconnect(fixup.on_task_postrun)
        signals.worker_process_init.disconnect(fixup.on_worker_process_init)
        signals.beat_embedded_init.disconnect(fixup.close_database)
    assert len(set(pids)) == 3, pids


def test_conn_max_age_zero_still_closes_after_every_task(celery_worker, monkeypatch):
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    pids = run_tasks(3)
    assert len(set(pids)) == 3, pids


def test_a_connection_killed_between_tasks_is_replaced(celery_worker, monkeypatch):
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)
    first = run_tasks(1)[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [first])
    (second,) = run_tasks(1)
    assert second != first
