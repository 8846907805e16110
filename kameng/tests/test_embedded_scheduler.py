"""The embedded run's periodic jobs (kameng/embedded.py): celery beat's schedule, run in-process.

Before it existed, `make run` ran no periodic job at all: unpaid orders past their deadline stayed
pending, delivered orders were never split (the merchant's balance stayed ¥0.00), lost payments were
never queried.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from celery import signals
from celery.schedules import crontab
from django.conf import settings
from django.utils import timezone

from catalog import codes
from catalog import services as catalog_services
from catalog.models import Sku
from kameng import embedded
from kameng.embedded import EmbeddedBeat
from orders.models import Order
from orders.tests.conftest import delivered, place
from payments.models import Settlement

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def sku(demo_shop):
    product = demo_shop.products["steam-wallet"]
    sku = Sku.objects.create(product=product, label="定时任务", price_fen=1000, low_stock_threshold=0)
    catalog_services.add_codes(sku=sku, secrets=[codes.Secret(f"BEAT-{i:03d}") for i in range(4)])
    return sku


@pytest.fixture
def tasks_run():
    """Names of the tasks that actually ran (celery's own signal, sent for eager runs too)."""
    names: list[str] = []

    def record(sender=None, **kwargs):
        names.append(sender.name)

    signals.task_postrun.connect(record, weak=False)
    yield names
    signals.task_postrun.disconnect(record)


def test_a_tick_expires_overdue_orders_and_settles_delivered_ones(sku):
    unpaid = place(sku).order
    Order.objects.filter(pk=unpaid.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))
    sold = delivered(sku)
    assert not Settlement.objects.filter(order=sold).exists()  # nothing but beat creates settlements

    ran, wait = EmbeddedBeat(now=Clock()).tick()

    assert "orders.expire_overdue_orders" in ran and "payments.create_due_settlements" in ran
    unpaid.refresh_from_db()
    assert unpaid.status == Order.Status.EXPIRED
    assert Settlement.objects.filter(order=sold).count() == 1
    assert 0 < wait <= 60


def test_every_beat_entry_is_run_on_its_schedule(tasks_run):
    schedule = settings.CELERY_BEAT_SCHEDULE
    by_interval = {name for name, spec in schedule.items() if not isinstance(spec["schedule"], crontab)}
    by_clock = set(schedule) - by_interval
    assert by_interval and by_clock  # both kinds exist, so both paths below are exercised
    clock = Clock()
    beat = EmbeddedBeat(now=clock)
    assert set(beat.entries) == set(schedule)

    ran, _wait = beat.tick()  # interval jobs catch up at once; crontab jobs wait for their time
    assert set(ran) == by_interval
    assert beat.tick()[0] == []  # nothing is due twice in the same minute

    clock.advance(days=1, minutes=1)  # past every crontab's next time (daily ones included)
    ran, _wait = beat.tick()
    assert set(ran) == set(schedule)
    assert {spec["task"] for spec in schedule.values()} <= set(tasks_run)  # ran for real, each task
    assert all(entry.runs == (1 if name in by_clock else 2) for name, entry in beat.entries.items())


def test_a_failing_job_does_not_stop_the_others(monkeypatch, tasks_run):
    from payments import settlement

    def broken(**kwargs):
        raise RuntimeError("gateway down")

    monkeypatch.setattr(settlement, "create_due_settlements", broken)
    ran, _wait = EmbeddedBeat(now=Clock()).tick()
    assert "payments.create_due_settlements" in ran
    assert "orders.tasks.expire_overdue_orders" in tasks_run and "payments.tasks.reconcile_refunds" in tasks_run


def test_a_beat_entry_naming_an_unknown_task_is_refused_at_start():
    with pytest.raises(LookupError, match=r"nope\.tasks\.missing"):
        EmbeddedBeat({"x": {"task": "nope.tasks.missing", "schedule": 60.0}}, now=Clock())


def test_it_starts_only_without_a_broker(settings, monkeypatch):
    monkeypatch.setattr(embedded, "_running", None)
    settings.EMBEDDED_SCHEDULER = False  # what settings compute when REDIS_URL is set (tests, production)
    assert embedded.start(out=io.StringIO()) is None
    assert embedded._running is None
