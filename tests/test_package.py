"""The package surface: lazy public names, no work at import."""

from __future__ import annotations

import subprocess
import sys

import batchkit


def test_every_public_name_resolves() -> None:
    for name in batchkit.__all__:
        assert getattr(batchkit, name) is not None, name


def test_import_pulls_in_no_heavy_dependency() -> None:
    code = (
        "import sys, batchkit; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "{'boto3', 'botocore', 'pandas', 'ipywidgets', 'plotly', 'nest_asyncio'}]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        batchkit.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
