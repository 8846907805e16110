"""The use cases, one function a step (admin views, Celery tasks and ``manage.py import_codes`` call
them through :mod:`catalog.imports`): :func:`create_batch`; :func:`parse_batch`, one parser a batch
(:func:`_parse_lock`); the preview decisions :func:`set_mode`, :func:`request_commit` and
:func:`cancel_batch`; :func:`commit_batch`; :func:`rerun_batch` and :func:`requeue_stalled`. The
status moves by conditional updates, so every step is idempotent: a redelivered task does nothing."""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from time import monotonic
from typing import IO

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from catalog.imports.checks import _Checker
from catalog.imports.readers import _open_rows
from catalog.imports.reasons import DUPLICATE, ImportRefused
from catalog.imports.staging import _COMMIT_SQL, _DUPLICATES_SQL, _mark_in_stock, _Stager, _summarise
from catalog.imports.storage import _delete_upload, _inspect, _store, _stored_path, max_upload_bytes
from catalog.models import CardCode, ImportBatch, ImportRow, Product, Sku
from catalog.signals import send_stock_changed

logger = logging.getLogger("catalog.imports")  # the name the import's log lines have always had

CHUNK_ROWS = 5000  # rows staged per COPY; the progress bar moves at least once per chunk
PROGRESS_SECONDS = 0.5  # ...and at least this often while a chunk is being read (slow sheets, SQLite)
PROGRESS_CHECK_ROWS = 256  # rows between two looks at the clock (the per-row path stays lean)
_LOCK_NAMESPACE = 0x4B4D4950  # "KMIP": pg advisory locks of import parses, (namespace, batch id)


class _Cancelled(Exception):
    pass


# --- Creating a batch ------------------------------------------------------------------------------
def create_batch(
    *,
    product: Product,
    sku: Sku | None,
    mode: str = ImportBatch.Mode.ALL_OR_NOTHING,
    delimiter: str = "",
    created_by=None,
    upload: IO[bytes] | None = None,
    filename: str = "",
    text: str | None = None,
    source: str = "",
    max_bytes: int | None = -1,
    enqueue: bool = True,
) -> ImportBatch:
    """Check and store an upload (a binary file-like ``upload``, or pasted ``text``) and create its
    batch. ``max_bytes``: -1 for ``IMPORT_MAX_UPLOAD_MB``, ``None`` for no limit. Queues the check
    on commit unless ``enqueue`` is false (the management command parses synchronously)."""
    if sku is not None and sku.product_id != product.pk:
        raise ImportRefused(_("This SKU does not belong to the chosen product."))
    if mode not in ImportBatch.Mode.values:
        raise ImportRefused(_("Unknown import mode."))
    if len(delimiter) > 4 or any(ch in delimiter for ch in '\r\n"'):
        raise ImportRefused(_("The delimiter must be 1 to 4 characters, not a quote or a line break."))
    if max_bytes == -1:
        max_bytes = max_upload_bytes()
    kind: str
    if text is not None:
        if upload is not None:
            raise ImportRefused(_("Upload a file or paste codes, not both."))
        if not text.strip():
            raise ImportRefused(_("The pasted text contains no codes."))
        data = text.encode()
        if max_bytes is not None and len(data) > max_bytes:
            raise ImportRefused(_("The pasted text is too long. Upload it as a file."))
        kind, chunks = ImportBatch.Source.TEXT, iter([data])
    elif upload is not None:
        kind, chunks = _inspect(upload, claimed=source, filename=filename, max_bytes=max_bytes)
    else:
        raise ImportRefused(_("Upload a file or paste codes."))

    stored = _store(chunks)
    try:
        with transaction.atomic():
            batch = ImportBatch.objects.create(
                merchant_id=product.merchant_id,
                product=product,
                sku=sku,
                created_by=created_by,
                source=kind,
                filename=Path(filename).name[-200:] if filename else "",
                upload_path=stored,
                delimiter=delimiter,
                mode=mode,
            )
            if enqueue:
                _enqueue_parse(batch.pk)
    except BaseException:
        _delete_upload(stored)
        raise
    return batch


def _enqueue_parse(batch_id: int) -> None:
    from catalog import tasks

    # In the background, even in the embedded run; messages in the language of whoever queued it.
    tasks.enqueue_long(tasks.parse_import, batch_id=batch_id, language=get_language() or "")


def _enqueue_commit(batch_id: int) -> None:
    from catalog import tasks

    tasks.enqueue_long(tasks.commit_import, batch_id=batch_id, language=get_language() or "")


# --- Parsing ---------------------------------------------------------------------------------------
_LOCAL_PARSES: set[int] = set()  # SQLite only: batches being parsed by a thread of this process
_LOCAL_PARSES_LOCK = threading.Lock()


@contextlib.contextmanager
def _parse_lock(batch_id: int):
    """One parser per batch across all workers: a session-level PostgreSQL advisory lock, released
    by PostgreSQL itself if the worker dies. SQLite, the embedded run, is one process, but parses
    run in background threads there (a sweep could queue a second one next to a long first one):
    a set of this process's parses stands in for the lock."""
    if connection.vendor != "postgresql":
        with _LOCAL_PARSES_LOCK:
            acquired = batch_id not in _LOCAL_PARSES
            _LOCAL_PARSES.add(batch_id)
        try:
            yield acquired
        finally:
            if acquired:
                with _LOCAL_PARSES_LOCK:
                    _LOCAL_PARSES.discard(batch_id)
        return
    key = batch_id % (1 << 31)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, key])


def parse_batch(
    *, batch_id: int, task_id: str = "", progress: Callable[[int, int], None] | None = None
) -> ImportBatch | None:
    """Check and stage the rows of an UPLOADED batch (or restart a PARSING one whose worker died).
    Idempotent: any other status, or another parser holding the batch, does nothing (returns None).
    Never raises: a failure marks the batch FAILED with a message for the merchant."""
    Status = ImportBatch.Status
    with _parse_lock(batch_id) as acquired:
        if not acquired:
            return None
        claimed = ImportBatch.objects.filter(pk=batch_id, status__in=[Status.UPLOADED, Status.PARSING]).update(
            status=Status.PARSING, processed_rows=0, total_rows=0, valid_rows=0, error_rows=0, failure="",
            errors=[], error_counts={}, task_id=task_id[:64],
        )  # fmt: skip
        if not claimed:
            return None
        batch = ImportBatch.objects.select_related("sku").get(pk=batch_id)
        ImportRow.objects.filter(batch_id=batch_id).delete()  # a restarted parse starts over
        try:
            with warnings.catch_warnings():
                # openpyxl warns about cell contents (dates out of range…): never let a code reach a log.
                warnings.simplefilter("ignore")
                _parse(batch, progress)
        except _Cancelled:
            ImportRow.objects.filter(batch_id=batch_id).delete()
        except ImportRefused as exc:
            _fail(batch_id, str(exc))
        except Exception as exc:
            _log_failure(batch_id, "parsing", exc)
            _fail(
                batch_id,
                _("The file could not be read (%(error)s). Check it and upload it again, or re-run the import.")
                % {"error": type(exc).__name__},
            )
    return ImportBatch.objects.filter(pk=batch_id).first()


def _log_failure(batch_id: int, step: str, exc: Exception) -> None:
    """Only the exception type and the frames: the messages of parser and database errors may quote
    cell contents, that is codes."""
    logger.error(
        "import batch %s: %s failed with %s\n%s",
        batch_id,
        step,
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)),
    )


def _fail(batch_id: int, message: str) -> None:
    try:
        ImportRow.objects.filter(batch_id=batch_id).delete()
        # Nothing is staged: no row counts either (the bar and "rows" of a refused file say 0).
        ImportBatch.objects.filter(pk=batch_id, status=ImportBatch.Status.PARSING).update(
            status=ImportBatch.Status.FAILED, failure=message, finished_at=timezone.now(), processed_rows=0,
            total_rows=0, valid_rows=0, error_rows=0,
        )  # fmt: skip
    except Exception as exc:  # the database itself is gone: the batch stays PARSING, re-run it later
        logger.error("import batch %s: could not record the failure (%s)", batch_id, type(exc).__name__)


def _parse(batch: ImportBatch, progress: Callable[[int, int], None] | None) -> None:
    Status = ImportBatch.Status
    max_rows = settings.IMPORT_MAX_ROWS
    with contextlib.ExitStack() as stack:
        rows = _open_rows(batch, stack)
        checker = _Checker(batch, rows)
        stager = _Stager(batch.pk)
        stack.callback(stager.close, raise_errors=False)
        chunk: list[tuple] = []
        plaintexts: dict[int, str] = {}  # index in chunk -> code, only while a key rotation is pending
        seen = data_rows = 0
        report_at = monotonic() + PROGRESS_SECONDS

        def report() -> None:
            """Move the bar (one short UPDATE, its own transaction: SQLite readers never wait long)."""
            nonlocal report_at
            total = max(rows.estimate, seen)
            if not ImportBatch.objects.filter(pk=batch.pk, status=Status.PARSING).update(
                processed_rows=seen, total_rows=total
            ):
                raise _Cancelled
            report_at = monotonic() + PROGRESS_SECONDS
            if progress is not None:
                progress(seen, total)

        def flush() -> None:
            nonlocal chunk
            if checker.old_keys and plaintexts:
                chunk = checker.mark_old_key_duplicates(chunk, plaintexts)
                plaintexts.clear()
            stager.put(chunk)
            chunk = []
            report()

        for number, cells in rows.rows:
            seen += 1
            if not seen % PROGRESS_CHECK_ROWS and monotonic() >= report_at:
                report()
            staged = checker.check(number, cells)
            if staged is not None:
                data_rows += 1
                if data_rows > max_rows:
                    raise ImportRefused(
                        _("The file has more than %(max)s rows. Split it into several files.")
                        % {"max": f"{max_rows:,}"}
                    )
                if checker.old_keys and not staged[5]:
                    plaintexts[len(chunk)] = checker.last_code
                chunk.append(staged)
                if len(chunk) >= CHUNK_ROWS:
                    flush()
        flush()
        stager.close()
    if data_rows == 0:
        if checker.foreign_header is not None and checker.header_row is None:
            checker.use_header(*checker.foreign_header, {})
        if checker.header_row is None:  # not a single non-blank cell
            raise ImportRefused(_("The file is empty (0 rows): there is nothing to import."))
        raise ImportRefused(_("The file contains no codes."))

    if connection.vendor == "postgresql":
        # Fresh statistics for the rows just loaded: with stale ones (say, from when the table was
        # empty) the planner may re-run the duplicate grouping once per row — quadratic time.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE catalog_importrow (batch_id, sku_id, fingerprint, error)")
    _mark_in_stock(batch.pk, batch.sku_id)
    with connection.cursor() as cursor:
        cursor.execute(_DUPLICATES_SQL, [batch.pk, DUPLICATE, batch.pk])
    summary = _summarise(batch)
    if not ImportBatch.objects.filter(pk=batch.pk, status=Status.PARSING).update(
        status=Status.READY, total_rows=data_rows, processed_rows=data_rows, **summary
    ):
        raise _Cancelled
    if progress is not None:
        progress(data_rows, data_rows)


# --- Preview decisions, commit, cancel, re-run ------------------------------------------------------
def set_mode(*, batch: ImportBatch, mode: str) -> bool:
    """Switch all-or-nothing / valid rows while the batch waits for confirmation."""
    if mode not in ImportBatch.Mode.values:
        raise ImportRefused(_("Unknown import mode."))
    changed = ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.READY).update(mode=mode)
    if changed:
        batch.mode = mode
    return bool(changed)


def request_commit(*, batch: ImportBatch, enqueue: bool = True) -> bool:
    """The merchant confirms: READY → COMMITTING, once (a double click or two tabs commit once).
    Returns False when the batch was not READY any more. Raises ImportRefused when the mode or
    the content forbids importing."""
    batch.refresh_from_db()
    if batch.status != ImportBatch.Status.READY:
        return False
    if batch.valid_rows == 0:
        raise ImportRefused(_("There is no valid code to import."))
    if batch.mode == ImportBatch.Mode.ALL_OR_NOTHING and batch.error_rows:
        raise ImportRefused(
            _(
                "%(count)s rows have errors and the mode is “all or nothing”: nothing was imported. Fix "
                "the file and upload it again, or switch to “import the valid rows”."
            )
            % {"count": batch.error_rows}
        )
    with transaction.atomic():
        claimed = ImportBatch.objects.filter(
            pk=batch.pk, status=ImportBatch.Status.READY, mode=batch.mode, error_rows=batch.error_rows
        ).update(status=ImportBatch.Status.COMMITTING, failure="")
        if claimed and enqueue:
            _enqueue_commit(batch.pk)
    if claimed:
        batch.status = ImportBatch.Status.COMMITTING
    return bool(claimed)


class _AllOrNothingConflict(Exception):
    def __init__(self, missing: int):
        self.missing = missing


def commit_batch(*, batch_id: int) -> ImportBatch | None:
    """Move the valid staged rows of a COMMITTING batch into stock in one transaction.
    Idempotent: a batch in any other status is left alone (returns None)."""
    Status = ImportBatch.Status
    try:
        with transaction.atomic():
            batch = ImportBatch.objects.select_for_update().filter(pk=batch_id, status=Status.COMMITTING).first()
            if batch is None:
                return None
            with connection.cursor() as cursor:
                if batch.sku_id:
                    sku_ids = [batch.sku_id]
                else:
                    cursor.execute(
                        "SELECT DISTINCT sku_id FROM catalog_importrow WHERE batch_id = %s AND error = ''", [batch_id]
                    )
                    sku_ids = [row[0] for row in cursor.fetchall()]
                cursor.execute(_COMMIT_SQL, [CardCode.Status.AVAILABLE, timezone.now(), batch_id])
                inserted = cursor.rowcount
            if batch.mode == ImportBatch.Mode.ALL_OR_NOTHING and inserted < batch.valid_rows:
                raise _AllOrNothingConflict(batch.valid_rows - inserted)
            if inserted < batch.valid_rows:
                _mark_in_stock(batch_id, batch.sku_id)  # taken by a concurrent import: report them too
                summary = _summarise(batch)
            else:
                summary = {}
            ImportRow.objects.filter(batch_id=batch_id).delete()
            upload = batch.upload_path
            ImportBatch.objects.filter(pk=batch_id).update(
                status=Status.COMMITTED, imported_rows=inserted, upload_path="", finished_at=timezone.now(), **summary
            )
            send_stock_changed(sku_ids=sku_ids)
            transaction.on_commit(lambda: _delete_upload(upload))
    except _AllOrNothingConflict as conflict:
        with transaction.atomic():
            _mark_in_stock(batch_id, ImportBatch.objects.values_list("sku_id", flat=True).get(pk=batch_id))
            summary = _summarise(ImportBatch(pk=batch_id))
            ImportBatch.objects.filter(pk=batch_id, status=Status.COMMITTING).update(
                status=Status.READY,
                failure=_(
                    "Nothing was imported: %(count)s of the codes were added to stock by another import after "
                    "the check. They are now marked “already in stock”; switch to “import the valid rows” or "
                    "cancel."
                )
                % {"count": conflict.missing},
                **summary,
            )
    except Exception as exc:
        _log_failure(batch_id, "commit", exc)
        ImportBatch.objects.filter(pk=batch_id, status=Status.COMMITTING).update(
            status=Status.FAILED,
            failure=_("Importing failed (%(error)s); nothing was imported. Re-run the import.")
            % {"error": type(exc).__name__},
        )
    return ImportBatch.objects.filter(pk=batch_id).first()


def cancel_batch(*, batch: ImportBatch) -> bool:
    """Drop a batch that is not imported: staged rows and the stored upload go."""
    Status = ImportBatch.Status
    with transaction.atomic():
        cancelled = ImportBatch.objects.filter(
            pk=batch.pk, status__in=[Status.UPLOADED, Status.PARSING, Status.READY, Status.FAILED]
        ).update(status=Status.CANCELLED, upload_path="", finished_at=timezone.now())
        if cancelled:
            ImportRow.objects.filter(batch_id=batch.pk).delete()
            upload = batch.upload_path
            transaction.on_commit(lambda: _delete_upload(upload))
    batch.refresh_from_db()
    return bool(cancelled)


def rerun_batch(*, batch: ImportBatch) -> bool:
    """Queue the check again for a FAILED batch (the stored upload is still there)."""
    Status = ImportBatch.Status
    if batch.status != Status.FAILED:
        return False
    _stored_path(batch)  # ImportRefused if the file is gone
    with transaction.atomic():
        requeued = ImportBatch.objects.filter(pk=batch.pk, status=Status.FAILED).update(
            status=Status.UPLOADED, failure="", finished_at=None, processed_rows=0, total_rows=0,
            valid_rows=0, error_rows=0, imported_rows=0, errors=[], error_counts={},
        )  # fmt: skip
        if requeued:
            ImportRow.objects.filter(batch_id=batch.pk).delete()
            _enqueue_parse(batch.pk)
    return bool(requeued)


def requeue_stalled(*, min_age: timedelta = timedelta(minutes=10)) -> int:
    """Queue again the work whose task was lost (broker down, a worker killed without
    redelivery); for a periodic sweeper. Safe to run any time, twice, on two hosts: the tasks are
    idempotent. A batch being parsed right now holds its advisory lock and is left alone; a batch
    being committed holds its row lock. Returns how many tasks were queued."""
    Status = ImportBatch.Status
    stale = ImportBatch.objects.filter(created_at__lt=timezone.now() - min_age)
    queued = 0
    for batch_id, status in stale.filter(status__in=[Status.UPLOADED, Status.PARSING]).values_list("pk", "status"):
        if status == Status.PARSING:
            with _parse_lock(batch_id) as free:
                if not free:
                    continue  # a parser is alive
        _enqueue_parse(batch_id)
        queued += 1
    for batch_id in stale.filter(status=Status.COMMITTING).values_list("pk", flat=True):
        with transaction.atomic():
            if ImportBatch.objects.select_for_update(skip_locked=True).filter(pk=batch_id).exists():
                _enqueue_commit(batch_id)  # nobody is committing it now
                queued += 1
    return queued
