import threading

import pytest
from celery import shared_task
from django.db import transaction

from kameng.tasks import enqueue_on_commit, exclusive

calls: list[int] = []


@shared_task
def record(*, value: int) -> int:
    calls.append(value)
    return value


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()


@pytest.mark.django_db
def test_enqueue_on_commit_waits_for_the_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        enqueue_on_commit(record, value=1)
        assert calls == []  # nothing runs while the transaction is open
    assert calls == [1]


@pytest.mark.django_db(transaction=True)
def test_enqueue_on_commit_drops_work_of_a_rolled_back_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(record, value=2)
        raise RuntimeError("roll back")
    with transaction.atomic():
        enqueue_on_commit(record, value=3)
    assert calls == [3]


def test_exclusive_runs_one_holder_at_a_time():
    """Two threads race for the same periodic job; the Redis-backed lock lets exactly one in."""
    inside = threading.Event()
    release = threading.Event()
    results = []

    @exclusive(timeout=30)
    def job(tag):
        inside.set()
        release.wait(5)
        return tag

    first = threading.Thread(target=lambda: results.append(job("first")))
    first.start()
    assert inside.wait(5)
    results.append(job("second"))  # lock is held: skipped
    release.set()
    first.join(5)
    assert results == [None, "first"]
    assert job("third") == "third"  # the lock was released


def test_every_beat_entry_names_a_registered_task_and_expires_before_its_next_run():
    from django.conf import settings

    from kameng.celery import app

    app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
        expires = entry.get("options", {}).get("expires")
        assert expires, f"{name} has no expires: a backlog would pile up"
        if isinstance(entry["schedule"], float):  # crontab entries run hourly or rarer, with shorter expiries
            assert expires < entry["schedule"], name


def test_periodic_sweepers_are_all_scheduled():
    """A sweeper nobody schedules is a safety net with a hole: every ``sweep_*`` task has a beat entry."""
    from django.conf import settings

    from kameng.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    sweepers = {name for name in app.tasks if name.rsplit(".", 1)[-1].startswith("sweep_")}
    assert sweepers and sweepers <= scheduled, sorted(sweepers - scheduled)
