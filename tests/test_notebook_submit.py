"""notebooks/03-submit-and-track.ipynb runs top to bottom with no AWS account."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_notebooks import ALIVE, NOTEBOOKS, no_aws, outputs_text, run_notebook

__all__ = ["no_aws"]  # the fixture, re-used


@pytest.mark.slow
def test_submit_and_track_runs_top_to_bottom(tmp_path: Path, no_aws: None) -> None:
    nb = run_notebook(NOTEBOOKS / "03-submit-and-track.ipynb", tmp_path, timeout=300,
                      then=ALIVE + "\nprint('FORM', not form._closed)")
    text = outputs_text(nb)
    assert "ALIVE True" in text and "FORM True" in text  # Run All ends with the widgets up
    # The validation message as plain text: no doubled label, no HTML entities.
    assert "vCPUs: 'two' is not a number" in text
    assert "vCPUs: vCPUs" not in text and "&#x27;" not in text
    assert "3 jobs on the queue" in text
    assert "active jobs of the run: []" in text
    assert "nextflow exited with" in text
