"""Celery tasks of the catalog: thin wrappers that load ids and call services (see kameng/tasks.py)."""

import logging
import threading

from celery import shared_task
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import translation

from catalog import favourites, home, imports, stock
from kameng.tasks import enqueue_on_commit, exclusive

logger = logging.getLogger(__name__)


def enqueue_long(task, /, **kwargs) -> None:
    """Queue a long task (an import's check or commit) once the current transaction commits.

    With a broker this is :func:`kameng.tasks.enqueue_on_commit`: a worker runs it. In the
    embedded run (``CELERY_TASK_ALWAYS_EAGER``: no broker, no worker) an eager task would run
    inside the request that queued it, and a 100,000-row file kept the upload page loading for
    half a minute with the progress bar never seen moving; there it runs in a daemon thread of
    this process instead, with its own database connection, closed at the end. A crash or restart
    of the process mid-way leaves the batch PARSING/COMMITTING, which ``sweep_stalled_imports``
    queues again, as for a lost worker.

    Still inside a transaction when the callback runs (a test, or a caller's atomic block around
    the whole thing) the task runs right here: another connection could not see the batch.
    """

    def start() -> None:
        if not settings.CELERY_TASK_ALWAYS_EAGER or connection.in_atomic_block:
            task.apply_async(kwargs=kwargs)
            return
        thread = threading.Thread(
            target=_run_in_thread, args=(task, kwargs), name=f"{task.name}-{kwargs.get('batch_id', '')}", daemon=True
        )
        thread.start()

    if settings.CELERY_TASK_ALWAYS_EAGER:
        transaction.on_commit(start, robust=True)
    else:
        enqueue_on_commit(task, **kwargs)


def _run_in_thread(task, kwargs: dict) -> None:
    try:
        task.apply(kwargs=kwargs, throw=True)
    except Exception as exc:  # the services record failures on the batch; this is the unexpected rest
        logger.error("background %s failed with %s", task.name, type(exc).__name__)  # never the message: codes
    finally:
        connections.close_all()  # this thread's connections; nobody else would close them


# --- Low-stock alerts (catalog/stock.py) ------------------------------------------------------------
@shared_task(ignore_result=True)  # queued after sales; nobody reads the result
def check_low_stock(*, sku_ids: list[int]) -> int:
    """Re-evaluate the low-stock alerts of these SKUs; returns how many alerts it opened."""
    stock.starting_low_stock_check(sku_ids=sku_ids)
    return len(stock.check_low_stock(sku_ids=sku_ids).opened)


@shared_task
def notify_stock_alert(*, alert_id: int) -> bool:
    return stock.notify_stock_alert(alert_id=alert_id)


@shared_task
@exclusive(timeout=600)
def sweep_low_stock() -> int:
    result = stock.sweep_low_stock()
    return len(result.opened) + result.closed


@shared_task
@exclusive(timeout=1800)
def send_low_stock_digest() -> int:
    return stock.send_low_stock_digest()


# --- Favourites' notices (catalog/favourites.py) --------------------------------------------------
@shared_task(ignore_result=True)  # queued after stock and price changes, coalesced per SKU
def check_favourites(*, sku_ids: list[int]) -> int:
    """Look for price drops and restocks on the favourites of these SKUs' products."""
    return len(favourites.check_skus(sku_ids=sku_ids))


@shared_task
def send_favourite_notice(*, notice_id: int) -> bool:
    return favourites.send_notice(notice_id=notice_id)


@shared_task
@exclusive(timeout=600)
def sweep_favourites() -> int:
    return len(favourites.sweep_favourites())


# --- Card-code imports (catalog/imports/) ------------------------------------------------------------
@shared_task(bind=True)
def parse_import(self, *, batch_id: int, language: str = "") -> str | None:
    """Check and stage an uploaded batch. Idempotent (a batch past parsing is left alone); a
    failure marks the batch FAILED with a message instead of raising, worded in ``language``
    (the uploader's; the site's by default)."""
    with translation.override(language or settings.LANGUAGE_CODE):
        batch = imports.parse_batch(batch_id=batch_id, task_id=self.request.id or "")
    return batch.status if batch else None


@shared_task
def commit_import(*, batch_id: int, language: str = "") -> str | None:
    """Move a confirmed batch's valid rows into stock (once, however often it runs)."""
    with translation.override(language or settings.LANGUAGE_CODE):
        batch = imports.commit_batch(batch_id=batch_id)
    return batch.status if batch else None


@shared_task
@exclusive(timeout=600)
def sweep_stalled_imports() -> int:
    """Periodic: queue again the parse or commit of batches whose task was lost."""
    return imports.requeue_stalled()


# --- The home page's best sellers (catalog/home.py) ------------------------------------------------
@shared_task
@exclusive(timeout=600)
def roll_up_sales() -> int:
    """Periodic: each product's sales of the last 30 days into ``ProductSalesRollup``."""
    return home.roll_up_sales()
