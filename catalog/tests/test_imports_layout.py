"""The import package's layering (catalog/imports/__init__.py, "Where things are"): each module
imports only the modules listed above it, so the graph inside the package has no cycle, and the
reports read models and the reason codes only. Read from the source, imports inside functions and
under TYPE_CHECKING included."""

from __future__ import annotations

import ast
from pathlib import Path

import catalog.imports

PACKAGE = Path(catalog.imports.__file__).parent
ORDER = ["reasons", "storage", "readers", "checks", "staging", "flow", "reports"]
ALLOWED = {name: set(ORDER[:index]) for index, name in enumerate(ORDER)}
ALLOWED["reports"] = {"reasons"}


def imported_siblings(name: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("catalog.imports."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.ImportFrom) and node.module == "catalog.imports":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("catalog.imports."))
    return found


def test_every_module_of_the_package_is_placed_in_the_order():
    assert {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"} == set(ORDER)


def test_modules_import_only_the_ones_below_them():
    wrong = {name: imported_siblings(name) - ALLOWED[name] for name in ORDER}
    assert wrong == {name: set() for name in ORDER}


def test_the_tunables_are_not_re_exported_so_a_patch_cannot_miss():
    for name in ("CHUNK_ROWS", "PROGRESS_SECONDS", "PROGRESS_CHECK_ROWS", "MAX_MERGED_ROWS", "_stage", "_parse_lock"):
        assert not hasattr(catalog.imports, name), name
