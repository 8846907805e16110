"""Low-stock alerts under concurrency, on the real PostgreSQL (and a real Celery worker)."""

from __future__ import annotations

import threading
import time

import pytest
from django.core import mail
from django.db import connection, connections, transaction
from django.utils import timezone

from catalog import stock
from catalog.models import CardCode, Sku, StockAlert
from catalog.signals import send_stock_changed

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(target, *args, **kwargs):
    """Run ``target`` in a thread with its own database connection; returns (thread, results, errors)."""
    results, errors = [], []

    def run():
        try:
            results.append(target(*args, **kwargs))
        except Exception as exc:  # surfaced by the test
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results, errors


def wait_for(condition, *, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


def make_low(sku: Sku, left: int) -> None:
    ids = CardCode.objects.filter(sku=sku, status="available").order_by("pk").values_list("pk", flat=True)
    CardCode.objects.filter(pk__in=list(ids[left:])).update(status="sold", sold_at=timezone.now(), times_sold=1)


@pytest.fixture
def low_sku(demo_shop, merchant_staff):
    sku = Sku.objects.get(product__slug="steam-wallet", label="50元")
    make_low(sku, 4)
    StockAlert.objects.all().delete()  # whatever the demo's own commits opened
    mail.outbox.clear()
    return sku


def test_two_concurrent_checks_open_one_alert_and_send_one_email(low_sku, merchant_staff):
    for round_ in range(5):
        barrier = threading.Barrier(2)

        def check(barrier=barrier):
            barrier.wait(5)
            return stock.check_low_stock(sku_ids=[low_sku.pk])

        runs = [in_thread(check) for _ in range(2)]
        for thread, _results, _errors in runs:
            thread.join(20)
        assert [errors for _t, _r, errors in runs] == [[], []]
        opened = [len(results[0].opened) for _t, results, _e in runs]
        assert sorted(opened) == [0, 1], f"round {round_}"
        assert StockAlert.objects.filter(sku=low_sku, closed_at__isnull=True).count() == 1
        assert [m.to for m in mail.outbox] == [[merchant_staff.email]]
        # Next episode: restocked (closes), then low again.
        StockAlert.objects.filter(sku=low_sku).update(closed_at=timezone.now())
        mail.outbox.clear()


def test_a_concurrent_insert_of_the_same_episode_is_absorbed(low_sku):
    """The partial unique index holds even against a writer that skips the SKU lock: the check's
    insert waits for the other transaction, gets IntegrityError when it commits, and yields."""
    with transaction.atomic():
        theirs = StockAlert.objects.create(sku=low_sku, available_at_open=4, threshold=10)  # not committed yet
        thread, results, errors = in_thread(stock.check_low_stock, sku_ids=[low_sku.pk])
        assert wait_for(waiting_on_a_lock), "the check should be blocked on the unique index"
    thread.join(20)
    assert errors == []
    assert results[0].opened == []
    assert list(StockAlert.objects.filter(sku=low_sku).values_list("pk", flat=True)) == [theirs.pk]


def test_a_rolled_back_concurrent_insert_lets_the_check_open_its_alert(low_sku):
    """Negative control of the test above: the wait is real; once the other writer rolls back the
    check's own insert goes through."""
    with pytest.raises(RuntimeError), transaction.atomic():
        StockAlert.objects.create(sku=low_sku, available_at_open=4, threshold=10)
        thread, results, errors = in_thread(stock.check_low_stock, sku_ids=[low_sku.pk])
        assert wait_for(waiting_on_a_lock)
        raise RuntimeError("roll back")
    thread.join(20)
    assert errors == []
    assert len(results[0].opened) == 1
    assert StockAlert.objects.filter(sku=low_sku).count() == 1


@pytest.mark.worker
def test_a_real_worker_raises_the_alert_once(celery_worker, demo_shop, merchant_staff):
    sku = Sku.objects.get(product__slug="qq-music-vip", label="3个月")
    for _ in range(3):  # three sales, each committed and announced
        with transaction.atomic():
            ids = list(CardCode.objects.filter(sku=sku, status="available").values_list("pk", flat=True)[:8])
            CardCode.objects.filter(pk__in=ids).update(status="sold", sold_at=timezone.now(), times_sold=1)
            send_stock_changed(sku_ids=[sku.pk])
    assert wait_for(lambda: StockAlert.objects.filter(sku=sku, notified_at__isnull=False).exists())
    time.sleep(1)  # let any duplicate work drain
    alert = StockAlert.objects.get(sku=sku)
    assert alert.closed_at is None and alert.available_at_open <= 10
    # (the worker also handles the alerts of the SKUs the demo seeds low: only this SKU's count here)
    assert [m.to for m in mail.outbox if "3个月" in m.subject] == [[merchant_staff.email]]


# --- Coalesced checks (catalog.stock.on_stock_changed) ---------------------------------------------
def sell_one(sku: Sku) -> None:
    with transaction.atomic():
        code_id = CardCode.objects.filter(sku=sku, status="available").order_by("pk").values_list("pk", flat=True)[0]
        CardCode.objects.filter(pk=code_id).update(status="sold", sold_at=timezone.now(), times_sold=1)
        send_stock_changed(sku_ids=[sku.pk])


@pytest.fixture
def check_runs():
    """sku_ids of every check_low_stock task the worker starts."""
    from celery import signals

    runs: list[list[int]] = []

    def record(sender=None, kwargs=None, **_):
        if sender is not None and sender.name == "catalog.tasks.check_low_stock":
            runs.append(list((kwargs or {}).get("sku_ids", [])))

    signals.task_prerun.connect(record, weak=False, dispatch_uid="test.check_runs")
    yield runs
    signals.task_prerun.disconnect(dispatch_uid="test.check_runs")


@pytest.mark.worker
def test_a_burst_of_sales_is_checked_once_and_the_check_sees_the_last_sale(
    celery_worker, demo_shop, merchant_staff, settings, check_runs
):
    settings.LOW_STOCK_CHECK_DELAY = 3
    sku = Sku.objects.get(product__slug="steam-wallet", label="50元")  # 30 codes, threshold 10
    StockAlert.objects.filter(sku=sku).delete()
    for _ in range(20):  # down to 10 left: low, reached by the very last sale
        sell_one(sku)
    assert wait_for(lambda: StockAlert.objects.filter(sku=sku, notified_at__isnull=False).exists())
    time.sleep(0.5)
    assert [ids for ids in check_runs if sku.pk in ids] == [[sku.pk]]  # one check for 20 sales
    alert = StockAlert.objects.get(sku=sku)
    assert alert.available_at_open == 10
    assert [m.to for m in mail.outbox if "50元" in m.subject] == [[merchant_staff.email]]

    # The check that ran let go of its key: the next sale is checked again (and the episode
    # goes on: still one alert, one e-mail).
    sell_one(sku)
    assert wait_for(lambda: len([ids for ids in check_runs if sku.pk in ids]) == 2, timeout=20)
    assert StockAlert.objects.filter(sku=sku).count() == 1
    assert len([m for m in mail.outbox if "50元" in m.subject]) == 1


def test_with_the_cache_down_every_change_is_still_checked(demo_shop, settings):
    """Coalescing fails open: no reachable cache, the check is queued (here: eager) anyway."""
    sku = Sku.objects.get(product__slug="qq-music-vip", label="1个月")
    StockAlert.objects.filter(sku=sku).delete()
    make_low(sku, 5)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with transaction.atomic():
        send_stock_changed(sku_ids=[sku.pk])
    assert StockAlert.objects.get(sku=sku, closed_at__isnull=True).available_at_open == 5
