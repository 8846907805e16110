"""How background work is written here.

* A task is a thin wrapper: it loads ids and calls a service. Business rules live in services.
* Tasks are dispatched with :func:`enqueue_on_commit`, so a worker never sees an id whose row is
  not committed yet, and a rolled-back transaction queues nothing.
* Every task is idempotent: running it twice, late, or concurrently leaves one effect. Services
  make that true with conditional updates and unique rows; the task only retries.
* Periodic jobs wrap their body in :func:`exclusive`, a cache lock, so two beat hosts (or a slow
  run overlapping the next one) never run the same job at the same time.
* Task arguments are ids and flags only, never card codes or other secrets: arguments end up in
  the broker and in worker logs.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable

from celery import Task
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, transaction

logger = logging.getLogger(__name__)


class KamengTask(Task):
    """Default base class of every task (set on the app in kameng/celery.py)."""

    # Transient infrastructure errors: try again with exponential back-off.
    autoretry_for = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
    retry_backoff = 2
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 8
    acks_late = True


def enqueue_on_commit(task: Task, /, *args, using: str | None = None, **kwargs) -> None:
    """Queue ``task`` once the current transaction commits (at once outside a transaction).

    ``robust=True``: if the broker is unreachable the committed request still succeeds; the error
    is logged and the sweeper of the owning app re-enqueues the work later.
    """
    transaction.on_commit(lambda: task.apply_async(args=args, kwargs=kwargs), using=using, robust=True)


def exclusive(*, timeout: int) -> Callable:
    """Run the decorated function only if no other process is running it (cache lock).

    ``timeout`` (seconds) bounds how long a crashed holder blocks others. Returns ``None`` without
    running when the lock is taken.
    """

    def decorator(func: Callable) -> Callable:
        key = f"exclusive:{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            token = uuid.uuid4().hex
            if not cache.add(key, token, timeout):
                logger.info("skipped %s: already running elsewhere", key)
                return None
            try:
                return func(*args, **kwargs)
            finally:
                if cache.get(key) == token:
                    cache.delete(key)

        return wrapper

    return decorator
