"""Races on a real PostgreSQL with real threads (and, for the crash test, a real worker process).

Each test makes many transactions collide on purpose; the assertions are about the database
afterwards: no code held or sold twice, one delivery per order, one confirmation per payment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Count
from django.utils import timezone

from catalog.models import CardCode
from catalog.selectors import for_sale_q
from kameng.celery import app as celery_app
from orders import services
from orders.models import Fulfilment, Order, OrderItem, OrderItemCode
from orders.tests.conftest import make_sku, place
from payments import services as payments
from payments.models import Payment, Refund

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def run_in_threads(count: int, target, *, workers: int = 32) -> list:
    """Run ``target(i)`` ``count`` times on ``workers`` threads released together; collect results
    (or exceptions). Each thread closes its own database connection."""
    start = threading.Barrier(min(count, workers))

    def wrapped(index):
        try:
            if index < workers:
                start.wait(timeout=30)
            return target(index)
        except Exception as exc:  # collected and asserted on by the test
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(wrapped, range(count)))


def test_200_buyers_for_50_codes(demo_shop):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=50)

    results = run_in_threads(200, lambda i: place(sku, 1, email=f"rush{i}@example.com"))

    placed = [r for r in results if isinstance(r, services.PlacedOrder)]
    sold_out = [r for r in results if isinstance(r, services.OutOfStock)]
    unexpected = [r for r in results if not isinstance(r, services.PlacedOrder | services.OutOfStock)]
    assert unexpected == []
    assert (len(placed), len(sold_out)) == (50, 150)
    held = OrderItemCode.objects.filter(item__sku=sku, status="reserved")
    assert held.count() == 50
    assert held.values("code_id").distinct().count() == 50  # no code reserved twice
    assert CardCode.objects.filter(sku=sku, status="reserved").count() == 50
    assert Order.objects.filter(items__sku=sku).count() == 50  # losers left no order behind


def _item_for(sku) -> OrderItem:
    order = Order.objects.create(
        number=services.new_order_number(), email="x@example.com", subtotal_fen=sku.price_fen, total_fen=sku.price_fen,
        reserved_until=timezone.now() + timedelta(minutes=15), idempotency_key=uuid.uuid4().hex,
    )  # fmt: skip
    return OrderItem.objects.create(
        order=order, sku=sku, merchant=sku.product.merchant, product_title="t", sku_label=sku.label,
        delivery_mode="automatic", unit_price_fen=sku.price_fen, quantity=1, total_fen=sku.price_fen,
    )  # fmt: skip


def _interleaved_reservations(sku, take) -> list:
    """Two transactions each take one code, both reading before either writes."""
    items = [_item_for(sku), _item_for(sku)]
    both_read = threading.Barrier(2)

    def reserve(index):
        with transaction.atomic():
            [code_id] = take()
            both_read.wait(timeout=10)
            OrderItemCode.objects.create(item=items[index], code_id=code_id)
            return code_id

    return run_in_threads(2, reserve, workers=2)


def test_negative_control_without_row_locks_the_database_constraint_catches_the_race(demo_shop):
    """Without FOR UPDATE SKIP LOCKED both transactions pick the same code; only the partial
    unique constraint on OrderItemCode stops the second. This shows the race is real."""
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=5)

    def naive():  # read without a row lock
        return list(CardCode.objects.filter(for_sale_q(), sku=sku).order_by("pk").values_list("pk", flat=True)[:1])

    results = _interleaved_reservations(sku, naive)
    assert sum(isinstance(r, IntegrityError) for r in results) == 1
    assert "single_use_code_held_once" in str(next(r for r in results if isinstance(r, IntegrityError)))


def test_with_skip_locked_the_interleaved_transactions_take_different_codes(demo_shop):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=5)
    now = timezone.now()
    results = _interleaved_reservations(sku, lambda: services.take_codes(sku=sku, quantity=1, now=now))
    assert all(isinstance(r, int) for r in results), results
    assert results[0] != results[1]


def test_20_concurrent_confirmations_of_one_payment_deliver_once(demo_shop, mailoutbox):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=10)
    order = place(sku, 2).order
    payment, _ = payments.start_payment(order=order, provider_name="sandbox")

    outcomes = run_in_threads(
        20,
        lambda i: payments.confirm_payment(
            out_trade_no=payment.out_trade_no, amount_fen=order.total_fen, gateway_trade_no="G-1", provider="sandbox"
        ),
    )

    assert sorted(outcomes) == ["confirmed"] + ["repeated"] * 19
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert Fulfilment.objects.filter(order=order).count() == 1
    assert CardCode.objects.filter(sku=sku, status="sold").count() == 2
    assert OrderItemCode.objects.filter(item__order=order, status="delivered").count() == 2
    assert len([m for m in mailoutbox if m.to == [order.email]]) == 1


def test_20_concurrent_deliveries_of_one_order_hand_over_once(demo_shop, mailoutbox):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=10)
    order = place(sku, 3).order
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID, paid_at=timezone.now())

    outcomes = run_in_threads(20, lambda i: services.deliver_order(order_id=order.pk))

    assert sorted(outcomes) == ["delivered"] + ["skipped"] * 19
    assert CardCode.objects.filter(sku=sku).values("status").annotate(n=Count("pk")).order_by("status")[0] == {
        "status": "available",
        "n": 7,
    }
    assert CardCode.objects.filter(sku=sku, status="sold", times_sold=1).count() == 3
    assert len([m for m in mailoutbox if m.to == [order.email]]) == 1


def test_ten_clicks_on_place_order_and_pay_place_one_order_and_open_one_payment(demo_shop):
    """The checkout form sent ten times at once by one browser (the same session, the same
    idempotency key): one order, one payment attempt; every other click lands on that order."""
    from django.test import Client
    from django.urls import reverse

    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=5)
    browser = Client()
    browser.post(reverse("orders:cart_add"), {"sku": sku.pk, "quantity": 1})
    key = browser.get(reverse("orders:checkout")).context["form"]["idempotency_key"].value()
    form = {"idempotency_key": key, "email": "clicker@example.com", "pay_with": "sandbox"}
    session = browser.cookies["sessionid"].value

    def click(_):
        tab = Client()
        tab.cookies["sessionid"] = session
        return tab.post(reverse("orders:checkout"), form)

    responses = run_in_threads(10, click, workers=10)

    order = Order.objects.get()
    [payment] = Payment.objects.filter(order=order)
    landed = sorted(getattr(r, "url", repr(r)) for r in responses)
    assert landed.count(reverse("payments:sandbox", kwargs={"out_trade_no": payment.out_trade_no})) == 1
    assert landed.count(order.get_absolute_url()) == 9  # not "this form was already used"
    assert OrderItemCode.objects.filter(item__order=order, status="reserved").count() == 1
    # Whichever click saved the session last, the browser still sees its order and, once, its secret.
    page = browser.get(order.get_absolute_url())
    assert page.status_code == 200
    assert page.context["query_secret"] and 'class="secret"' in page.content.decode()
    assert browser.get(order.get_absolute_url()).context["query_secret"] is None


def test_two_gateways_paying_one_order_at_once_refund_one(demo_shop):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=5)
    order = place(sku, 1).order
    attempts = [payments.start_payment(order=order, provider_name="sandbox")[0] for _ in range(2)]

    outcomes = run_in_threads(
        2,
        lambda i: payments.confirm_payment(
            out_trade_no=attempts[i].out_trade_no,
            amount_fen=order.total_fen,
            gateway_trade_no=f"G{i}",
            provider="sandbox",
        ),
        workers=2,
    )

    assert sorted(outcomes) == ["confirmed", "duplicate"]
    refund = Refund.objects.get(order=order)
    assert (refund.reason, refund.status) == ("duplicate_payment", "succeeded")
    assert Payment.objects.filter(order=order, status="paid").count() == 2
    order.refresh_from_db()
    assert (order.status, order.refunded_fen) == (Order.Status.DELIVERED, 0)


def test_checkout_racing_the_expiry_sweep_never_double_holds(demo_shop):
    """Buyers take over expired reservations while the sweeper releases the same codes."""
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=20)
    for i in range(4):
        stale = place(sku, 5, email=f"stale{i}@example.com").order
        past = timezone.now() - timedelta(minutes=1)
        Order.objects.filter(pk=stale.pk).update(reserved_until=past)
        CardCode.objects.filter(order_links__item__order=stale).update(reserved_until=past)

    def act(i):
        if i % 5 == 0:
            return services.expire_overdue_orders(batch_size=2)
        return place(sku, 1, email=f"fresh{i}@example.com")

    results = run_in_threads(25, act)

    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, services.OutOfStock)]
    held = OrderItemCode.objects.filter(item__sku=sku, status="reserved")
    assert held.count() == held.values("code_id").distinct().count()
    assert held.count() == sum(isinstance(r, services.PlacedOrder) for r in results) == 20
    assert CardCode.objects.filter(sku=sku, status="reserved", reserved_until__gt=timezone.now()).count() == 20


@pytest.mark.parametrize("retries", [3, 0])
def test_codes_the_sweep_holds_for_a_moment_are_not_sold_out(demo_shop, monkeypatch, retries):
    """The expiry sweep holds the codes it puts back for the length of its transaction; a checkout
    that SKIP LOCKED passes them over looks again rather than saying "sold out". Negative control:
    without the second look (retries=0) the same race refuses the buyer."""
    from catalog import allocation

    monkeypatch.setattr(allocation, "TAKE_RETRIES", retries)
    monkeypatch.setattr(allocation, "TAKE_RETRY_PAUSE", 0.15)
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=2)
    stale = place(sku, 2, email="stale@example.com").order
    past = timezone.now() - timedelta(minutes=1)
    Order.objects.filter(pk=stale.pk).update(reserved_until=past)
    CardCode.objects.filter(order_links__item__order=stale).update(reserved_until=past)
    holding, placed = threading.Event(), []

    def sweep_slowly():
        try:
            with transaction.atomic():
                list(CardCode.objects.select_for_update().filter(sku=sku))  # what a sweep locks
                holding.set()
                time.sleep(0.25)
        finally:
            connections.close_all()

    def buy():
        holding.wait(10)
        try:
            placed.append(place(sku, 2, email="fresh@example.com"))
        except services.OutOfStock as exc:
            placed.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep_slowly), threading.Thread(target=buy)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if retries:
        assert isinstance(placed[0], services.PlacedOrder)
        assert OrderItemCode.objects.filter(item__order=placed[0].order, status="reserved").count() == 2
    else:
        assert isinstance(placed[0], services.OutOfStock)


# -- a worker killed in the middle of a delivery ------------------------------------------------------------


def _worker_env() -> dict:
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "KAMENG_IGNORE_ENV_FILE": "1",
        "DJANGO_SETTINGS_MODULE": "kameng.settings",
    }


@pytest.mark.worker
def test_sweeper_completes_a_delivery_whose_worker_was_killed(demo_shop, tmp_path):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=5)
    order = place(sku, 2).order

    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    # Paid, and its delivery task goes through Redis to a worker process we can kill.
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID, paid_at=timezone.now() - timedelta(minutes=5))

    # Hold the order row so the delivery, once a worker picks it up, blocks mid-way.
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with transaction.atomic():
            Order.objects.select_for_update().get(pk=order.pk)
            locked.set()
            release.wait(60)
        connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(10)

    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "kameng", "worker", "--pool", "solo", "--loglevel", "WARNING",
         "--without-mingle", "--without-gossip", "--hostname", f"doomed-{uuid.uuid4().hex[:6]}@%h"],
        cwd=ROOT, env=_worker_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        from orders.tasks import deliver_order

        deliver_order.delay(order_id=order.pk)
        # Wait until the worker's delivery is blocked on our row lock, i.e. in the middle of it.
        deadline = time.monotonic() + 90  # generous: a cold worker start on a loaded 2-core CI box
        while time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s"
                    " AND pid <> pg_backend_pid() AND query ILIKE %s",
                    [connection.settings_dict["NAME"], "%orders_order%FOR UPDATE%"],
                )
                if cursor.fetchone()[0]:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the worker never reached the delivery:\n" + (tmp_path / "worker.log").read_text())
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        release.set()
        holder.join(10)
        log.close()

    order.refresh_from_db()
    assert order.status == Order.Status.PAID  # the killed delivery left nothing half-done
    assert not Fulfilment.objects.filter(order=order).exists()

    # The killed task's message is only redelivered after the broker's visibility timeout (an
    # hour): the sweeper is what finishes the job, through a fresh worker.
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=20):
        assert services.redeliver_stuck_orders() == 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Order.objects.get(pk=order.pk).status != Order.Status.DELIVERED:
            time.sleep(0.1)
    celery_app.control.purge()
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert CardCode.objects.filter(sku=sku, status="sold").count() == 2
