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


def _widget_modules_after_import(module: str) -> str:
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m == 'ipywidgets' or m.startswith('batchkit.widgets')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_the_figures_do_not_import_the_widgets() -> None:
    # Layers point one way: the figures share the table model (batchkit.table_model) with the
    # dashboard instead of reaching into the widget package.
    assert _widget_modules_after_import("batchkit.figures") == "[]"


def test_the_launcher_opens_a_dashboard_without_importing_the_widgets_at_module_level() -> None:
    # Launcher.dashboard() imports batchkit.widgets inside the method: a headless launch
    # (CLI, CI) never pays for ipywidgets.
    assert _widget_modules_after_import("batchkit.launcher") == "[]"
