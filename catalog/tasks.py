"""Celery tasks of the catalog: thin wrappers that load ids and call services (see kameng/tasks.py)."""

from celery import shared_task

from catalog import imports, stock
from kameng.tasks import exclusive


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


# --- Card-code imports (catalog/imports.py) -----------------------------------------------------------
@shared_task(bind=True)
def parse_import(self, *, batch_id: int) -> str | None:
    """Check and stage an uploaded batch. Idempotent (a batch past parsing is left alone); a
    failure marks the batch FAILED with a message instead of raising."""
    batch = imports.parse_batch(batch_id=batch_id, task_id=self.request.id or "")
    return batch.status if batch else None


@shared_task
def commit_import(*, batch_id: int) -> str | None:
    """Move a confirmed batch's valid rows into stock (once, however often it runs)."""
    batch = imports.commit_batch(batch_id=batch_id)
    return batch.status if batch else None


@shared_task
@exclusive(timeout=600)
def sweep_stalled_imports() -> int:
    """Periodic: queue again the parse or commit of batches whose task was lost."""
    return imports.requeue_stalled()
