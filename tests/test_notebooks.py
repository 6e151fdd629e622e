"""Both notebooks run top to bottom in a real kernel (the venv's python), with no AWS account."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import boto3
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

#: Every way boto3 could find real credentials, switched off: these notebooks must run
#: without an AWS account, and must never reach the instance metadata service.
NO_AWS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/batchkit-test/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/batchkit-test/config",
    "AWS_EC2_METADATA_DISABLED": "true",
}
UNSET = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "BATCHKIT_LAUNCH_DIR",
)


def run_notebook(path: Path, cwd: Path, *, timeout: int = 240, then: str = "") -> nbformat.NotebookNode:
    """Execute ``path`` in a fresh kernel started from this interpreter; returns the executed notebook.

    The kernelspec ``python3`` starts ``python -m ipykernel_launcher``; jupyter_client
    replaces a bare ``python`` with ``sys.executable``, so the kernel is this venv's
    (checked by the last cell).
    """
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys as _sys; print('KERNEL', _sys.executable)\n" + then))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        allow_errors=False,
    )
    client.execute()
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out:
                parts.append(str(out["data"].get("text/plain", "")))
    return "\n".join(parts)


#: Appended to a notebook: is its dashboard still up after Run All? (Cleanup is optional.)
ALIVE = "print('ALIVE', not dash._closed and not dash.tracker.closed)"


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in NO_AWS.items():
        monkeypatch.setenv(key, value)
    for key in UNSET:
        monkeypatch.delenv(key, raising=False)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_incident_replay_with_no_settings_leaves_the_orphans_running(tmp_path: Path, no_aws: None) -> None:
    # What a newcomer gets from `make demo` and Run All: nothing killed, the dashboard
    # alive, and the abandoned jobs still running (in real time) a minute later.
    nb = nbformat.read(NOTEBOOKS / "01-incident-replay.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "print('ALIVE', not dash._closed, not dash.tracker.closed)\n"
        "print('ABANDONED', ' '.join(sorted(incident.truth.abandoned_job_ids)))"
    ))
    client = NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        text = outputs_text(nb)
        assert "ALIVE True True" in text  # Run All ends with the dashboard alive
        assert "Nothing killed" in text
        endpoint = re.search(r"LocalBatch endpoint:\s*(http://127\.0\.0\.1:\d+)", text)
        assert endpoint, text
        abandoned = re.search(r"ABANDONED ([\w\- ]+)", text)
        assert abandoned, text
        job_ids = abandoned.group(1).split()
        assert job_ids
        batch = boto3.client(
            "batch", endpoint_url=endpoint.group(1), region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
        )
        time.sleep(60)  # one minute of wall time after the last cell: the emulator runs in real time
        jobs = [job for i in range(0, len(job_ids), 100) for job in batch.describe_jobs(jobs=job_ids[i : i + 100])["jobs"]]
        # The emulator's word over the real API: every job Nextflow abandoned still runs.
        assert sorted(j["jobId"] for j in jobs) == sorted(job_ids)
        assert {j["status"] for j in jobs} == {"RUNNING"}, [(j["jobId"], j["status"]) for j in jobs]


@pytest.mark.slow
def test_incident_replay_runs_top_to_bottom_and_ends_with_no_orphans(
    tmp_path: Path, no_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real-time clock `make demo` uses (60x): the replay must finish and nothing may hang.
    monkeypatch.setenv("BATCHKIT_SIM_SPEED", "60")
    monkeypatch.setenv("BATCHKIT_AUTO_KILL", "1")
    nb = run_notebook(NOTEBOOKS / "01-incident-replay.ipynb", tmp_path)
    text = outputs_text(nb)
    assert f"KERNEL {sys.executable}" in text
    assert "LocalBatch endpoint: http://127.0.0.1:" in text
    assert "aborted" in text
    assert "orphans still running: 0" in text
    # the dashboard was displayed as a widget (not a repr string)
    widget_views = [
        out
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in out.get("data", {})
    ]
    assert widget_views, "the dashboard cell displayed no widget"
    # the plotly figures were rendered as plotly output
    assert any(
        "application/vnd.plotly.v1+json" in out.get("data", {})
        for cell in nb.cells
        for out in cell.get("outputs", [])
    )


@pytest.mark.slow
def test_investigate_without_credentials_says_so_and_uses_the_example(tmp_path: Path, no_aws: None) -> None:
    nb = run_notebook(NOTEBOOKS / "02-investigate-a-run.ipynb", tmp_path, then=ALIVE)
    text = outputs_text(nb)
    assert "ALIVE True" in text  # Run All ends with the dashboard still refreshing
    assert f"KERNEL {sys.executable}" in text
    assert "no AWS credentials found" in text
    assert "Falling back to the saved example" in text
    assert "state: aborted" in text
    assert "mismatches" in text
    assert "wrote " in text and "batchkit-post-mortem.html" in text


def test_committed_notebooks_carry_no_outputs() -> None:
    # Outputs would embed a temp path, an endpoint port and megabytes of plotly JSON.
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: a code cell has saved outputs; clear them"
                assert cell.execution_count is None, f"{path.name}: clear execution counts"
