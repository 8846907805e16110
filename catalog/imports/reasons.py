"""Why an import refuses something: :class:`ImportRefused` for a whole file or an action, and the
reason codes of a refused row (``ImportRow.error``, the keys of ``ImportBatch.error_counts``) with
their labels. The other modules of the package read these; this one reads none of them."""

from __future__ import annotations

from django.utils.translation import gettext_lazy

ERROR_SAMPLE = 1000  # errors kept in ImportBatch.errors (and in the report once the batch is finished)
EXAMPLE_CODE = "EXAMPLE-0000-0000-0000"  # the template's example row, refused if left in the file
EXAMPLE_PASSWORD = "123456"  # noqa: S105 (printed in the template, refused on import)

# Reasons a row is refused (ImportRow.error / ImportBatch.error_counts keys).
EMPTY = "empty"
TOO_LONG = "too_long"
DUPLICATE = "duplicate_in_file"
IN_STOCK = "in_stock"
UNKNOWN_SKU = "unknown_sku"
FORMULA = "formula"
MERGED = "merged"
NUMBER = "number"
EXAMPLE = "example"

REASONS = {
    EMPTY: gettext_lazy("empty code"),
    TOO_LONG: gettext_lazy("too long"),
    DUPLICATE: gettext_lazy("duplicate inside the file"),
    IN_STOCK: gettext_lazy("already in stock"),
    UNKNOWN_SKU: gettext_lazy("unknown denomination"),
    FORMULA: gettext_lazy("formula instead of value"),
    MERGED: gettext_lazy("merged cells"),
    NUMBER: gettext_lazy("number rounded by Excel"),
    EXAMPLE: gettext_lazy("example row of the template"),
}


class ImportRefused(Exception):
    """A reason to refuse a file or an action, worded for the merchant. Never contains a code."""
