"""A real Celery worker, consuming from the real Redis, runs work queued on commit."""

import time

import pytest
from django.core import mail
from django.db import transaction

from accounts import services
from accounts.models import User

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(condition, *, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_task_queued_on_commit_is_executed_by_the_worker(celery_worker):
    rolled_back = User.objects.create_user(email="rolled-back@example.com")
    committed = User.objects.create_user(email="committed@example.com")

    with pytest.raises(RuntimeError), transaction.atomic():
        services.welcome_new_user(user=rolled_back)
        raise RuntimeError("checkout failed")

    with transaction.atomic():
        services.welcome_new_user(user=committed)
        # Still inside the transaction: nothing has reached the broker yet.
        time.sleep(0.3)
        assert not User.objects.filter(pk=committed.pk, welcome_sent_at__isnull=False).exists()

    assert wait_for(lambda: User.objects.filter(pk=committed.pk, welcome_sent_at__isnull=False).exists())
    # The worker is a single FIFO consumer: had the rolled-back task been queued, it would have
    # run before the committed one.
    rolled_back.refresh_from_db()
    assert rolled_back.welcome_sent_at is None
    assert [m.to for m in mail.outbox] == [["committed@example.com"]]


def test_the_worker_runs_a_repeated_task_once(celery_worker):
    from accounts.tasks import send_welcome_email

    user = User.objects.create_user(email="twice@example.com")
    results = [send_welcome_email.delay(user_id=user.pk) for _ in range(3)]
    outcomes = [result.get(timeout=20) for result in results]
    assert sorted(outcomes) == [False, False, True]
    assert len(mail.outbox) == 1
