"""Staged rows (``catalog_importrow``) and the set-based SQL over them: ``COPY`` in chunks
(``bulk_create`` on SQLite), overlapping the parse through :class:`_Stager`; the codes already in
stock and the duplicates inside the file marked in SQL; the summary kept on the batch; and the
``INSERT … SELECT … ON CONFLICT`` that commits the valid rows."""

from __future__ import annotations

import io
import queue
import threading

from django.db import connection

from catalog.imports.reasons import ERROR_SAMPLE, IN_STOCK
from catalog.models import ImportBatch, ImportRow

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SQL = (
    "COPY catalog_importrow (batch_id, row_number, sku_id, payload, fingerprint, hint, error, detail) FROM STDIN"
)


def _stage(batch_id: int, chunk: list[tuple]) -> None:
    if not chunk:
        return
    if connection.vendor == "postgresql":
        prefix, null = f"{batch_id}\t", "\\N"
        lines = [
            f"{prefix}{row}\t{null if sku is None else sku}\t{payload}\t{fp}\t{hint.translate(_COPY_ESCAPES)}"
            f"\t{error}\t{detail.translate(_COPY_ESCAPES)}\n"
            for row, sku, payload, fp, hint, error, detail in chunk
        ]
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(_COPY_SQL, io.StringIO("".join(lines)))
    else:
        ImportRow.objects.bulk_create(
            [
                ImportRow(batch_id=batch_id, row_number=row, sku_id=sku, payload=payload, fingerprint=fp,
                          hint=hint, error=error, detail=detail)
                for row, sku, payload, fp, hint, error, detail in chunk
            ],
            batch_size=1000,
        )  # fmt: skip


class _Stager:
    """Stages chunks of rows. With PostgreSQL, outside any transaction (a worker, the management
    command), a background thread with its own connection COPYs one chunk while the next one is
    parsed, so the database work overlaps the Python work; at most two chunks wait in between.
    Inside a transaction (tests, callers' atomic blocks) it stages synchronously, because another
    connection could not see the uncommitted batch."""

    def __init__(self, batch_id: int):
        self.batch_id = batch_id
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self.queue: queue.Queue = queue.Queue(maxsize=2)
            self.thread = threading.Thread(target=self._run, name=f"import-{batch_id}-copy", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        from django.db import connection as thread_connection  # this thread's own connection

        try:
            while (chunk := self.queue.get()) is not None:
                if self.error is None:  # after a failure keep draining, so the producer never blocks
                    try:
                        _stage(self.batch_id, chunk)
                    except BaseException as exc:
                        self.error = exc
        finally:
            thread_connection.close()

    def put(self, chunk: list[tuple]) -> None:
        if self.thread is None:
            _stage(self.batch_id, chunk)
            return
        if self.error is not None:
            raise self.error
        self.queue.put(chunk)

    def close(self, *, raise_errors: bool = True) -> None:
        """Wait until everything queued is staged; raises what staging raised."""
        if self.thread is not None and self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        if self.error is not None and raise_errors:
            error, self.error = self.error, None
            raise error


_IN_STOCK_SQL = """
UPDATE catalog_importrow AS r SET error = %s, detail = ''
FROM catalog_cardcode AS c
WHERE r.batch_id = %s AND r.error = '' AND c.sku_id = r.sku_id AND c.fingerprint = r.fingerprint
  AND (c.batch_id IS NULL OR c.batch_id <> r.batch_id) {only_sku}
"""

_DUPLICATES_SQL = """
WITH firsts AS (
    SELECT sku_id, fingerprint, MIN(row_number) AS first_row
    FROM catalog_importrow
    WHERE batch_id = %s AND error = ''
    GROUP BY sku_id, fingerprint
    HAVING COUNT(*) > 1
)
UPDATE catalog_importrow AS r SET error = %s, detail = CAST(f.first_row AS TEXT)
FROM firsts AS f
WHERE r.batch_id = %s AND r.error = '' AND r.sku_id = f.sku_id AND r.fingerprint = f.fingerprint
  AND r.row_number > f.first_row
"""

_COMMIT_SQL = """
INSERT INTO catalog_cardcode (sku_id, batch_id, payload, fingerprint, hint, status, reusable, times_sold, created_at)
SELECT r.sku_id, r.batch_id, r.payload, r.fingerprint, r.hint, %s, s.reusable_code, 0, %s
FROM catalog_importrow AS r INNER JOIN catalog_sku AS s ON s.id = r.sku_id
WHERE r.batch_id = %s AND r.error = ''
ORDER BY r.row_number
ON CONFLICT (sku_id, fingerprint) DO NOTHING
"""


def _summarise(batch: ImportBatch) -> dict:
    """Counts by reason and the first errors, from the staged rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT error, COUNT(*) FROM catalog_importrow WHERE batch_id = %s GROUP BY error", [batch.pk])
        counts = dict(cursor.fetchall())
    valid = counts.pop("", 0)
    sample = [
        {"row": row, "reason": error, "detail": detail, "hint": hint}
        for row, error, detail, hint in ImportRow.objects.filter(batch_id=batch.pk)
        .exclude(error="")
        .order_by("row_number")
        .values_list("row_number", "error", "detail", "hint")[:ERROR_SAMPLE]
    ]
    return {
        "valid_rows": valid,
        "error_rows": sum(counts.values()),
        "error_counts": dict(sorted(counts.items())),
        "errors": sample,
    }


def _mark_in_stock(batch_id: int, sku_id: int | None) -> None:
    """Rows whose code the SKU already has. With one SKU for the whole batch, the constant lets
    the planner read only that SKU's stock, not the whole (large) code table."""
    with connection.cursor() as cursor:
        if sku_id:
            cursor.execute(_IN_STOCK_SQL.format(only_sku="AND c.sku_id = %s"), [IN_STOCK, batch_id, sku_id])
        else:
            cursor.execute(_IN_STOCK_SQL.format(only_sku=""), [IN_STOCK, batch_id])
