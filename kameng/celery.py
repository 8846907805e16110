"""The Celery application.

Broker and result backend come from ``REDIS_URL`` (see settings); with no ``REDIS_URL`` every task
runs eagerly in-process, which is what the embedded ``make run`` uses. Start a worker with
``celery -A kameng worker`` and the scheduler with ``celery -A kameng beat``.

Database connections in workers: Celery's Django fix-up (``celery/fixups/django.py``) closes every
connection before and after each task unless ``CELERY_DB_REUSE_MAX`` is set, whatever
``CONN_MAX_AGE`` says — a new PostgreSQL backend (a fork on the server) for every task. Settings set
``CELERY_DB_REUSE_MAX`` so the fix-up leaves connections open, and the handlers below do what
Django's request signals do for web requests: :func:`django.db.close_old_connections` before and
after each task, which closes a connection past ``CONN_MAX_AGE`` (at once when it is 0), one that
saw an error or whose health check fails (``CONN_HEALTH_CHECKS``), and one left in a transaction.
Eager tasks (the embedded run) are left alone: they run inside the caller's request.
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kameng.settings")

app = Celery("kameng", task_cls="kameng.tasks:KamengTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect(weak=False, dispatch_uid="kameng.close_old_connections_prerun")
@signals.task_postrun.connect(weak=False, dispatch_uid="kameng.close_old_connections_postrun")
def close_old_connections(sender=None, **kwargs) -> None:
    """Retire this thread's database connections that are too old or broken (worker tasks only)."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections as close

    close()
