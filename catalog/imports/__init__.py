"""Bulk import of card codes: upload → background check → preview → confirm → commit.

The flow (every step is a function of :mod:`catalog.imports.flow`, re-exported here; admin views,
Celery tasks and ``manage.py import_codes`` all call them as ``imports.<name>``):

1. :func:`create_batch` checks the upload *before storing anything* (empty, over
   ``IMPORT_MAX_UPLOAD_MB``, not an .xlsx although it claims to be, an old .xls, binary junk, text
   that is neither UTF-8 nor GB18030 — the usual encoding of a CSV saved by Chinese Excel/WPS),
   stores it Fernet-encrypted under ``IMPORT_UPLOAD_DIR`` (it holds plaintext codes; CSV and text
   are stored re-encoded as UTF-8), creates the :class:`ImportBatch` and queues the check on commit
   (a worker runs it; in the embedded run, a background thread: ``catalog.tasks.enqueue_long``).
2. :func:`parse_batch` (task ``catalog.tasks.parse_import``) streams the rows — openpyxl read-only
   for .xlsx, the csv module for CSV, plain lines for pasted text — validates each row, encrypts,
   fingerprints and masks the valid ones and stages every row (valid or not) as
   :class:`ImportRow` in chunks of :data:`flow.CHUNK_ROWS` (PostgreSQL ``COPY``; ``bulk_create`` on
   SQLite), moving ``processed_rows`` after every chunk and at least every
   :data:`flow.PROGRESS_SECONDS` for the progress bar (its total: the rows counted in the sheet XML
   while looking for merged cells, or the lines of a text file). Then set-based SQL
   marks duplicates inside the file and codes already in stock, counts the errors by reason, keeps
   the first :data:`reasons.ERROR_SAMPLE` of them in ``ImportBatch.errors`` and moves the batch to
   READY. Python holds a few chunks of rows at most (one being read, up to two waiting for COPY,
   one being copied), whatever the file size.
3. The merchant looks at the preview (its status line is :func:`status_message`, from the batch's
   state, refreshed by the poll), may switch the mode (:func:`set_mode`), and confirms
   (:func:`request_commit`: READY → COMMITTING, a conditional update, so a double click commits
   once) or cancels (:func:`cancel_batch`).
4. :func:`commit_batch` (task ``catalog.tasks.commit_import``) copies the valid staged rows into
   ``catalog_cardcode`` with one ``INSERT … SELECT … ON CONFLICT (sku_id, fingerprint) DO NOTHING``
   in one transaction. In all-or-nothing mode, fewer inserted rows than valid ones (a concurrent
   import added some of the codes meanwhile) rolls everything back; the rows now in stock are
   marked and the batch goes back to READY with a message. Then the staged rows and the upload
   are deleted and ``stock_changed`` is sent.

Row rules
* Columns: code (卡号), password (卡密, optional), denomination (面额: the SKU label; needed when
  the batch has no SKU). A header row is recognised by its words (see :data:`checks.HEADER_WORDS`)
  and maps the columns in any order; without a header the order is code, password, denomination.
  A first row worded like column names but naming none of ours ("序号, 商品, 金额"; a title row
  above our header is allowed), a header without a code column, or — with no SKU chosen — without
  a denomination column refuses the file as a whole, naming the columns found and the header's
  row, instead of reading it as codes. A file without a single non-blank cell is "empty (0 rows)".
  In text (and CSV with a multi-character delimiter such as ``----``) each line is split on the
  merchant's delimiter; in a one-column sheet a cell holding ``code<delimiter>password`` is split
  the same way. Completely blank rows are skipped, not errors.
* Errors (:data:`REASONS`): empty code, too long (> ``codes.MAX_CODE_LENGTH``), duplicate inside
  the file, already in stock, unknown denomination, formula instead of value, inside merged cells,
  a long number Excel has rounded (15+ digits stored as a number), the template's example row.
* Only the first worksheet of a workbook is read. A sheet with more than
  :data:`readers.MAX_MERGED_ROWS` rows inside merged cells is refused as a whole.
* Duplicates against stock compare the newest-key fingerprint set-based in SQL; while a key
  rotation is pending (several ``CARD_CODE_KEYS``) the older-key fingerprints are also checked,
  one query per chunk. ``ON CONFLICT`` at commit only knows the newest key, which
  ``rotate_card_keys`` makes the only one.

Speed and memory (figures in docs/PERFORMANCE.md)
* Memory is flat in the number of rows: a few chunks of rows in Python at a time; .xlsx shared
  strings (where Excel keeps every text cell) are held in a compact table
  (:class:`readers._SharedStrings`) instead of openpyxl's list of str, which alone took >250 MB
  for a million codes and passwords; the decrypted .xlsx itself is bounded by the upload limit.
* Outside a transaction (a worker, the command) each chunk is COPYed by a background thread on
  its own connection while the next chunk is parsed (:class:`staging._Stager`).
* After staging, ``ANALYZE`` refreshes the staging table's statistics: with stale ones PostgreSQL
  may plan the duplicate check as a nested loop that regroups the batch for every row (quadratic).

Secrecy: codes never appear in log lines, exception messages, task arguments or error details —
an error row shows at most the mask (``AB••••56``). The stored upload is encrypted in chunks of
:data:`storage.STORE_CHUNK` bytes (one Fernet token per line); .xlsx files are decrypted into
memory (a ``SpooledTemporaryFile``, so only files bigger than 64 MB, possible through the
management command, touch the disk) because the zip format needs random access. The full error
list lives in ``ImportRow`` until the batch is committed or cancelled; afterwards the first
:data:`reasons.ERROR_SAMPLE` errors remain in ``ImportBatch.errors`` (and in the downloadable
report).

Where things are (each module imports only those above it in this list; ``flow`` is the only one
that changes a batch's status):

* ``reasons``  — :class:`ImportRefused`, the row error codes and :data:`REASONS`, the template's
  example row, ``ERROR_SAMPLE``.
* ``storage``  — the checks an upload passes before it is stored; the encrypted store.
* ``readers``  — rows out of the stored upload: .xlsx (streaming, compact shared strings, merged
  cells and row count from the sheet XML), CSV, text.
* ``checks``   — header detection, cell values, :class:`checks._Checker` (one raw row → one staged
  row or error row).
* ``staging``  — COPY into ``ImportRow`` (:class:`staging._Stager`), the SQL that marks duplicates
  and codes in stock, the summary, the commit's ``INSERT … SELECT``.
* ``flow``     — the use cases: create, parse (with its one-parser-a-batch lock), set the mode,
  confirm, commit, cancel, re-run, re-queue stalled work.
* ``reports``  — what the merchant reads: error explanations, status line, progress poll, error
  report, template, the command's summary. It reads models only.

This module re-exports the public names; the tunables (``flow.CHUNK_ROWS``,
``flow.PROGRESS_SECONDS``, ``readers.MAX_MERGED_ROWS``…) and the private helpers (leading
underscore: private to the package) are not re-exported, on purpose: a test that patches one must
patch the module that reads it, and patching a re-export would silently change nothing.
"""

from catalog.imports.flow import (
    cancel_batch,
    commit_batch,
    create_batch,
    parse_batch,
    request_commit,
    requeue_stalled,
    rerun_batch,
    set_mode,
)
from catalog.imports.reasons import EXAMPLE_CODE, EXAMPLE_PASSWORD, REASONS, ImportRefused
from catalog.imports.reports import (
    RUNNING,
    describe,
    error_rows,
    progress,
    status_message,
    summary_lines,
    write_error_report,
    write_template,
)
from catalog.imports.storage import max_upload_bytes

__all__ = [
    "EXAMPLE_CODE",
    "EXAMPLE_PASSWORD",
    "REASONS",
    "RUNNING",
    "ImportRefused",
    "cancel_batch",
    "commit_batch",
    "create_batch",
    "describe",
    "error_rows",
    "max_upload_bytes",
    "parse_batch",
    "progress",
    "request_commit",
    "requeue_stalled",
    "rerun_batch",
    "set_mode",
    "status_message",
    "summary_lines",
    "write_error_report",
    "write_template",
]
