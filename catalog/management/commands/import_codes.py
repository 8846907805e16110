"""``python manage.py import_codes --sku ID FILE``: import card codes from a file, for large files and scripts.

Runs the same checks as the admin upload (catalog/imports/), synchronously, with a progress line
on stderr; prints the error summary with row numbers; then imports after asking (or at once with
``--yes``). There is no upload size limit here (``IMPORT_MAX_ROWS`` still applies). Exits non-zero
when nothing was imported: a refused file, errors in all-or-nothing mode (the default), a "no"
at the prompt, or a failed commit. A refused batch is cancelled, so its encrypted copy of the file
does not linger. Codes are never printed.

Examples::

    python manage.py import_codes --sku 12 codes.xlsx
    python manage.py import_codes --sku 12 --mode valid --delimiter=---- --yes codes.txt
    python manage.py import_codes --sku 12 --delimiter '\\t' export.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog import imports
from catalog.models import ImportBatch, Sku

ESCAPES = {"\\t": "\t", "tab": "\t", "space": " "}


class Command(BaseCommand):
    help = "Import card codes from an .xlsx, .csv or text file into one SKU (same checks as the admin upload)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help=".xlsx (first sheet), .csv or a text file, one code per line")
        parser.add_argument("--sku", type=int, required=True, help="id of the SKU that receives the codes")
        parser.add_argument(
            "--mode",
            choices=[ImportBatch.Mode.ALL_OR_NOTHING, ImportBatch.Mode.VALID_ROWS],
            default=ImportBatch.Mode.ALL_OR_NOTHING,
            help="all: import nothing if any row has an error (default); valid: import the valid rows",
        )
        parser.add_argument("--delimiter", default="", help="between code and password: ',', ';', '----', '\\t' (tab)…")
        parser.add_argument("--yes", action="store_true", help="import without asking")

    def handle(self, *args, **options):
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        sku = Sku.objects.select_related("product").filter(pk=options["sku"]).first()
        if sku is None:
            raise CommandError(f"There is no SKU with id {options['sku']}.")
        delimiter = ESCAPES.get(options["delimiter"], options["delimiter"])

        try:
            with open(path, "rb") as upload:
                batch = imports.create_batch(
                    product=sku.product,
                    sku=sku,
                    mode=options["mode"],
                    delimiter=delimiter,
                    upload=upload,
                    filename=path.name,
                    max_bytes=None,
                    enqueue=False,
                )
        except imports.ImportRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Batch #{batch.pk}: {sku.product} · {sku.label}, {batch.get_source_display()}")

        def progress(done: int, total: int) -> None:
            shown = f"{done:,}/{total:,}" if total else f"{done:,}"
            self.stderr.write(f"\rchecking rows: {shown}", ending="")
            self.stderr.flush()

        batch = imports.parse_batch(batch_id=batch.pk, progress=progress) or ImportBatch.objects.get(pk=batch.pk)
        self.stderr.write("")
        if batch.status != ImportBatch.Status.READY:
            raise CommandError(batch.failure or f"The batch is {batch.get_status_display()}.")
        for line in imports.summary_lines(batch):
            self.stdout.write(line)

        refusal = None
        if batch.valid_rows == 0:
            refusal = "No valid code to import."
        elif batch.mode == ImportBatch.Mode.ALL_OR_NOTHING and batch.error_rows:
            refusal = (
                f"{batch.error_rows} rows have errors: nothing imported (all or nothing). "
                "Fix the file or use --mode valid."
            )
        elif not options["yes"] and not sys.stdin.isatty():
            refusal = "Not confirmed: run with --yes to import without asking."
        elif not options["yes"] and not self._ask(f"Import {batch.valid_rows:,} codes into “{sku}”? [y/N] "):
            refusal = "Nothing imported."
        if refusal:
            imports.cancel_batch(batch=batch)
            raise CommandError(f"{refusal} Batch #{batch.pk} cancelled.")

        try:
            imports.request_commit(batch=batch, enqueue=False)
        except imports.ImportRefused as exc:
            imports.cancel_batch(batch=batch)
            raise CommandError(str(exc)) from None
        batch = imports.commit_batch(batch_id=batch.pk)
        if batch is None or batch.status != ImportBatch.Status.COMMITTED:
            raise CommandError((batch.failure if batch else "") or "The import did not complete.")
        self.stdout.write(self.style.SUCCESS(f"Imported {batch.imported_rows:,} codes (batch #{batch.pk})."))

    def _ask(self, question: str) -> bool:
        return input(question).strip().lower() in {"y", "yes", "是"}
