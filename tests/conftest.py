"""Shared test fixtures.

Real artefacts live in ../shared/fixtures/real (never copied into the project);
tests that read them skip cleanly when that folder is absent (e.g. a user's clone).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "fixtures" / "real"
ARTIFACTS = ROOT / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def real_fixture(name: str) -> Path:
    """Path of a real artefact in ../shared/fixtures/real, or skip the test."""
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is not next to this checkout)")
    return path


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
