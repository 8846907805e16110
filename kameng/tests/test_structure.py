"""The code is shaped the way docs/ARCHITECTURE.md says it works: checks over the source tree."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ["kameng", "accounts", "catalog", "orders", "payments", "marketing"]

# The layering of docs/ARCHITECTURE.md, bottom first: an app may import only apps below it.
LAYERS = ["kameng", "accounts", "catalog", "orders", "payments", "marketing"]
# kameng's composition root may import every app: it joins them (URLs, settings, workers).
COMPOSITION_ROOT = {"urls.py", "wsgi.py", "asgi.py", "celery.py", "settings.py", "stack.py", "setup_checklist.py"}


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


# --- the app import graph -----------------------------------------------------------------------------------
def import_graph(files) -> dict[tuple[str, str], list[str]]:
    """App → app import edges of ``files`` ((path relative to the root, text) pairs), every import
    counted, those inside functions too (``ast.walk``); tests, migrations, kameng/testing and
    kameng's composition root are left out."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path, text in files:
        app = path.parts[0]
        if app not in APPS or {"tests", "migrations", "testing"} & set(path.parts):
            continue
        if app == "kameng" and path.name in COMPOSITION_ROOT:
            continue
        for node in ast.walk(ast.parse(text)):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                top = module.split(".")[0]
                if top in APPS and top != app:
                    edges[(app, top)].append(f"{path}:{node.lineno} {module}")
    return edges


def tree_files():
    for path, text in sources(*APPS):
        yield path.relative_to(ROOT), text


def find_cycle(edges) -> list[str] | None:
    """One cycle of the graph as the apps along it (first == last), or None."""
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(succ[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for start in sorted(succ):
        if start not in state and (found := visit(start, [])):
            return found
    return None


def upward_edges(edges) -> list[str]:
    """Imports that do not go down the layering, with where they are."""
    rank = {app: i for i, app in enumerate(LAYERS)}
    return [f"{a} -> {b}: {where[0]}" for (a, b), where in sorted(edges.items()) if rank[a] <= rank[b]]


def test_the_app_import_graph_has_no_cycle():
    edges = import_graph(tree_files())
    assert ("payments", "orders") in edges  # the graph is really read: payments builds on orders
    assert find_cycle(edges) is None, dict(edges)


def test_every_app_import_goes_down_the_layering():
    """kameng and accounts at the bottom, then catalog, orders, payments, marketing (orders asks
    payments through orders/payment_port.py, never by importing it)."""
    assert upward_edges(import_graph(tree_files())) == []


def test_the_import_graph_checks_see_a_violation():
    """Negative control: a cycle and an upward import in a small synthetic tree are found, also when
    the import hides inside a function, and the composition root and tests are left out."""
    files = [
        (Path("orders/views.py"), "def pay():\n    from payments import views\n"),
        (Path("payments/services.py"), "from orders.models import Order\n"),
        (Path("kameng/outbox.py"), "import accounts.roles\n"),
        (Path("kameng/urls.py"), "import marketing.urls\n"),
        (Path("catalog/tests/test_x.py"), "from orders import services\n"),
    ]
    edges = import_graph(files)
    assert set(edges) == {("orders", "payments"), ("payments", "orders"), ("kameng", "accounts")}
    assert find_cycle(edges) in (["orders", "payments", "orders"], ["payments", "orders", "payments"])
    assert find_cycle({("a", "b"): [], ("b", "c"): [], ("c", "a"): []}) == ["a", "b", "c", "a"]
    assert find_cycle({("a", "b"): [], ("b", "c"): [], ("a", "c"): []}) is None
    assert upward_edges(edges) == [
        "kameng -> accounts: kameng/outbox.py:1 accounts.roles",
        "orders -> payments: orders/views.py:2 payments",
    ]
