"""The code is shaped the way docs/ARCHITECTURE.md says it works: checks over the source tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ["kameng", "accounts", "catalog", "orders", "payments", "marketing"]


def sources(*apps: str):
    for app in apps:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "tests" not in path.parts and "migrations" not in path.parts:
                yield path, path.read_text()


def test_only_catalog_writes_card_codes():
    """Stock belongs to catalog (catalog/allocation.py): other apps call it, never the model's writers."""
    writes = re.compile(r"CardCode\.objects[^\n]*\.(update|create|bulk_create|bulk_update|delete|select_for_update)\(")
    offenders = [
        str(path.relative_to(ROOT)) for path, text in sources("accounts", "orders", "payments", "marketing")
        if writes.search(text)
    ]  # fmt: skip
    assert offenders == []


def test_row_locks_are_taken_through_the_lock_modules():
    """Orders, payments and settlements are locked only by orders/locks.py and payments/locks.py,
    which state the lock order; nothing else calls select_for_update on them."""
    lock = re.compile(r"\b(Order|Payment|Settlement|Refund)\.objects[^\n]*select_for_update\(")
    allowed = {ROOT / "orders" / "locks.py", ROOT / "payments" / "locks.py"}
    offenders = [
        str(path.relative_to(ROOT)) for path, text in sources(*APPS) if path not in allowed and lock.search(text)
    ]
    assert offenders == []


def test_the_structure_checks_see_a_violation():
    """Negative control: the patterns above match the code they forbid."""
    sample = 'order = Order.objects.select_for_update().get(pk=1)\nCardCode.objects.filter(pk=1).update(status="sold")'
    assert re.search(r"\b(Order|Payment|Settlement|Refund)\.objects[^\n]*select_for_update\(", sample)
    assert re.search(r"CardCode\.objects[^\n]*\.(update|create)\(", sample)
