"""No function in batchkit/ longer than a screen, except those listed here with the reason.

A long function usually hides pieces that have names worth reading. The ones below are
known; each says why it is still long and may not grow past its listed length. A new
function over the limit fails this test: split it, or list it with a reason a reviewer
can accept. (An entry whose function has been split can simply be deleted.)
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "batchkit"
LIMIT = 80

#: "path/inside/batchkit.py:Qualified.name" -> (its length when listed, why it is still long).
KNOWN_LONG: dict[str, tuple[int, str]] = {
}


def long_functions(root: Path = PACKAGE, limit: int = LIMIT) -> dict[str, int]:
    """Every function and method under ``root`` longer than ``limit`` lines (docstring
    included), by ``file:qualified name``."""
    found: dict[str, int] = {}

    def walk(node: ast.AST, path: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                assert child.end_lineno is not None
                length = child.end_lineno - child.lineno + 1
                if length > limit:
                    found[f"{path}:{prefix}{child.name}"] = length
                walk(child, path, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, path, f"{prefix}{child.name}.")

    for file in sorted(root.rglob("*.py")):
        walk(ast.parse(file.read_text(encoding="utf-8")), file.relative_to(root).as_posix(), "")
    return found


def test_no_function_is_longer_than_a_screen_unless_listed_and_none_grew() -> None:
    problems = []
    for name, length in sorted(long_functions().items()):
        if name not in KNOWN_LONG:
            problems.append(f"{name} is {length} lines")
        elif length > KNOWN_LONG[name][0]:
            problems.append(f"{name} grew from {KNOWN_LONG[name][0]} to {length} lines")
    assert not problems, (
        f"over {LIMIT} lines: " + "; ".join(problems)
        + ". Split where the pieces have names worth reading, or list it in KNOWN_LONG with a reason."
    )


def test_the_measure_finds_long_functions_and_methods_only(tmp_path: Path) -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mod.py").write_text(
        f"class A:\n    def long(self):\n{body}\n\n    def short(self):\n        return 1\n\n\n"
        "async def fine():\n    return 2\n"
    )
    assert long_functions(tmp_path) == {"sub/mod.py:A.long": LIMIT + 1}
    assert long_functions(tmp_path, limit=LIMIT + 1) == {}
