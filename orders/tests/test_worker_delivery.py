"""Delivery through a real Celery worker: one task hands over the codes and sends the e-mail."""

from __future__ import annotations

import time

import pytest
from celery import signals

from orders.models import Order
from orders.tests.conftest import make_sku, pay, place

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def task_names():
    names: list[str] = []

    def record(sender=None, **_):
        names.append(sender.name)

    signals.task_prerun.connect(record, weak=False, dispatch_uid="test.task_names")
    yield names
    signals.task_prerun.disconnect(dispatch_uid="test.task_names")


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_delivery_task_sends_the_codes_email_itself_once(celery_worker, demo_shop, mailoutbox, task_names):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=3)
    order = place(sku, 2).order
    assert pay(order) == "confirmed"

    assert wait_for(lambda: Order.objects.get(pk=order.pk).delivery_email_sent_at is not None)
    time.sleep(0.5)  # anything else queued would run by now
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert [name for name in task_names if name.startswith("orders.")] == ["orders.tasks.deliver_order"]
    sent = [message for message in mailoutbox if message.to == [order.email]]
    assert len(sent) == 1
    assert order.number in sent[0].subject + sent[0].body

    # The delivery task again (the sweeper re-queues a stuck order; a broker redelivers): no second mail.
    from orders.tasks import deliver_order

    assert deliver_order.ignore_result  # queued from the web on payment: no result subscription
    again = deliver_order.apply_async(kwargs={"order_id": order.pk}, ignore_result=False)
    assert again.get(timeout=20) == "skipped"
    assert len([message for message in mailoutbox if message.to == [order.email]]) == 1
