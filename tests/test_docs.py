"""docs/ARCHITECTURE.md and README.md stay true to the code they describe.

Comments cite the architecture as ``docs/ARCHITECTURE.md §N`` (§13): each such number must
be a section of it, every module of the package must be findable in its "where each thing
lives" table (§11), and every file or test the two documents name must exist.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
README = ROOT / "README.md"
CODE_DIRS = ("batchkit", "tests", "benchmarks")


def _sections(text: str) -> dict[str, str]:
    """Section number -> title, for ``## N. Title`` and ``### N.M Title`` headings."""
    return {m[1]: m[2] for m in re.finditer(r"^#{2,3} (\d+(?:\.\d+)?)\.? (.+)$", text, re.M)}


def _code_files() -> list[Path]:
    return sorted(p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py"))


def _section_text(text: str, number: str) -> str:
    start = re.search(rf"^## {re.escape(number)}\. .*$", text, re.M)
    assert start is not None, f"no section {number}"
    end = re.search(r"^## \d+\. ", text[start.end() :], re.M)
    return text[start.start() : start.end() + (end.start() if end else len(text))]


def test_every_architecture_reference_in_the_code_names_an_existing_section() -> None:
    sections = _sections(ARCHITECTURE.read_text())
    cited = [
        (f"{path.relative_to(ROOT)}:{number}", m[1])
        for path in _code_files()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for m in re.finditer(r"ARCHITECTURE(?:\.md)?\s*§\s*(\d+(?:\.\d+)?)", line)
    ]
    assert cited, "no code cites the architecture: the pattern no longer matches"
    dangling = [(where, number) for where, number in cited if number not in sections]
    assert not dangling


def test_no_code_cites_a_file_outside_the_repository() -> None:
    """A maintainer with only the repository can follow every reference (issue #17)."""
    outside = re.compile(r"design\s*§|design\.md|style\.md|\.\./shared", re.IGNORECASE)
    offending = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "batchkit").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if outside.search(line)
    ]
    assert not offending


def test_every_module_is_in_the_where_it_lives_table() -> None:
    table = _section_text(ARCHITECTURE.read_text(), "11")
    named = re.findall(r"`([^`]+\.py)`", table)
    assert named, "the table names no module: the pattern no longer matches"
    missing = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "batchkit").rglob("*.py"))
        if not any(
            fnmatch.fnmatch(str(path.relative_to(ROOT)), name) or fnmatch.fnmatch(path.name, name)
            for name in named
        )
    ]
    assert not missing


def test_every_file_the_documents_name_exists() -> None:
    for doc in (ARCHITECTURE, README):
        text = doc.read_text()
        paths = set(re.findall(r"`((?:batchkit|tests|benchmarks|docs)/[\w/.*]+\.(?:py|md))", text))
        tests = set(re.findall(r"`(test_[\w*]+\.py)`", text))
        assert paths and (tests or doc is README), f"{doc.name}: the patterns no longer match"
        missing = [p for p in paths if not list(ROOT.glob(p))]
        missing += [t for t in tests if not list((ROOT / "tests").glob(t))]
        assert not missing, doc.name
