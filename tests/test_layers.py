"""Layers point one way: the pure core loads no AWS, UI, database or network code.

``reconcile``, ``table_model``, ``schema`` and ``_time`` take data and return data
(docs/ARCHITECTURE.md §2), so their tests build inputs by hand and a notebook or the CLI can
use them without boto3 or ipywidgets. Checked twice: in a fresh interpreter (what importing
the module really loads, through every import it makes) and over each module's own source
(no direct import of a network or I/O library, even inside a function).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = ("batchkit.reconcile", "batchkit.table_model", "batchkit.schema", "batchkit._time")
#: What importing a pure module must not load: AWS, widgets, plots, the database, and
#: batchkit's own I/O modules.
NOT_LOADED = (
    "boto3", "botocore", "s3transfer", "ipywidgets", "anywidget", "plotly", "sqlite3",
    "batchkit.client", "batchkit.aws_readers", "batchkit.ledger", "batchkit.kills",
    "batchkit.tracker", "batchkit.launcher", "batchkit.widgets", "batchkit.sim",
)  # fmt: skip
#: Libraries a pure module must not import itself (pandas may load some of them for its own use).
NOT_IMPORTED = (*NOT_LOADED, "socket", "http", "urllib3", "requests", "asyncio", "subprocess")


def _loaded_after_import(module: str) -> list[str]:
    code = (
        f"import sys, {module}; wanted = {NOT_LOADED!r}; "
        "print(sorted(m for m in sys.modules if any(m == w or m.startswith(w + '.') for w in wanted)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = ast.literal_eval(out.stdout.strip())
    return loaded


def _imported_names(module: str) -> list[str]:
    path = ROOT / (module.replace(".", "/") + ".py")
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_loads_no_io_or_ui_code(module: str) -> None:
    assert _loaded_after_import(module) == []


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_no_network_library_itself(module: str) -> None:
    names = _imported_names(module)
    assert names, f"{module}: no imports found, the parser no longer sees them"
    forbidden = [n for n in names if any(n == w or n.startswith(w + ".") for w in NOT_IMPORTED)]
    assert forbidden == []


def test_the_check_sees_a_loaded_io_module() -> None:
    """The fresh-interpreter check reports what it should (it is not blind)."""
    assert "batchkit.client" in _loaded_after_import("batchkit.client")
