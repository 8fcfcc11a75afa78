"""The seams hold: channels never touch storage, SQL lives only in the storage layer, heavy modules stay lazy.

Each rule is read from the source (the AST), every import counted, those under ``if TYPE_CHECKING:`` included,
so a type hint cannot smuggle a dependency in either.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "publisher"
STORAGE = ("publisher.store", "publisher.ledger", "publisher.db")
#: calls that claim, mark or open storage: only the pipeline (and the storage layer itself) may make them
LEDGER_CALLS = {"begin", "begin_many", "mark", "mark_many", "ensure_pending", "ledger", "store", "database",
                "subscribers", "feed_cache"}


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_no_channel_imports_the_storage_layer() -> None:
    offenders = [f"{path.relative_to(ROOT.parent)}:{line}: {name}"
                 for path in modules(ROOT / "channels") for line, name in imported(path)
                 if name.startswith(STORAGE)]
    assert offenders == []


def test_no_channel_claims_marks_or_opens_storage() -> None:
    offenders = []
    for path in modules(ROOT / "channels"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LEDGER_CALLS:
                offenders.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: .{node.func.attr}()")
    assert offenders == []


def test_sql_lives_only_in_the_storage_layer() -> None:
    drivers = ("sqlite3", "psycopg", "psycopg2")
    offenders = [f"{path.relative_to(ROOT.parent)}:{line}: {name}"
                 for path in modules(ROOT) if not path.is_relative_to(ROOT / "store")
                 for line, name in imported(path) if name.split(".")[0] in drivers]
    assert offenders == []


def test_the_neutral_types_import_nothing_of_channels_or_storage() -> None:
    names = [name for _, name in imported(ROOT / "delivery.py") if name.startswith("publisher")]
    assert names == []


def test_the_storage_layer_imports_no_channel() -> None:
    offenders = [f"{path.relative_to(ROOT.parent)}:{line}: {name}"
                 for path in modules(ROOT / "store") for line, name in imported(path)
                 if name.startswith(("publisher.channels", "publisher.pipeline", "publisher.formatters"))]
    assert offenders == []


def test_this_test_sees_a_violation(tmp_path: Path) -> None:
    """The rules above are not vacuous: a channel importing the ledger under TYPE_CHECKING is seen."""
    sample = tmp_path / "bad.py"
    sample.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from publisher.store import Ledger\n"
                      "def f(site):\n    site.ledger().mark(1)\n", encoding="utf-8")
    assert (3, "publisher.store.Ledger") in imported(sample)
    calls = [node.func.attr for node in ast.walk(ast.parse(sample.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]
    assert {"ledger", "mark"} <= set(calls)
