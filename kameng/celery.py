"""The Celery application.

Broker and result backend come from ``REDIS_URL`` (see settings); with no ``REDIS_URL`` every task
runs eagerly in-process, which is what the embedded ``make run`` uses. Start a worker with
``celery -A kameng worker`` and the scheduler with ``celery -A kameng beat``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kameng.settings")

app = Celery("kameng", task_cls="kameng.tasks:KamengTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
