"""Plotly figures and the static post-mortem, over hand-built reconcile frames.

``make_frame`` builds a reconcile frame the way ``batchkit.reconcile`` shapes it (the
schema's column names and dtypes), with every verdict represented; the dashboard
tests import it too.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from batchkit import figures
from batchkit.schema import VERDICTS, JobCol, RecCol, TaskCol

T0 = pd.Timestamp("2024-01-24 12:00:00", tz="UTC")

#: verdict -> (nf_status, batch_status, killable)
_SHAPES = {
    "ok": ("COMPLETED", "SUCCEEDED", False),
    "orphan": ("ABORTED", "RUNNING", True),
    "untracked": (None, "RUNNING", True),
    "stale": ("RUNNING", "SUCCEEDED", False),
    "vanished": ("RUNNING", None, False),
    "disagree": ("COMPLETED", "FAILED", False),
}


def make_frame(n: int = 24, *, names: list[str] | None = None, cycle: tuple[str, ...] = VERDICTS) -> pd.DataFrame:
    """A reconcile frame of ``n`` rows whose verdicts cycle through ``cycle``."""
    rows = []
    for i in range(n):
        verdict = cycle[i % len(cycle)]
        nf, batch, killable = _SHAPES[verdict]
        submit = T0 + pd.Timedelta(seconds=30 * i)
        started = submit + pd.Timedelta(seconds=60)
        stopped = None if batch in (None, "RUNNING") else started + pd.Timedelta(minutes=20)
        waste = 0.5 * (i % 4) if verdict in ("orphan", "untracked") else 0.0
        name = names[i] if names is not None else f"ALIGN (sample_{i:05d})"
        rows.append(
            {
                TaskCol.TASK_ID: None if nf is None else i + 1,
                TaskCol.NAME: None if nf is None else name,
                TaskCol.PROCESS: None if nf is None else "ALIGN",
                TaskCol.HASH: f"{i % 256:02x}/abcdef",
                TaskCol.NATIVE_ID: None if nf is None else f"job-{i:05d}",
                TaskCol.WORKDIR: f"s3://bucket/work/{i % 256:02x}/abcdef{i:026x}",
                TaskCol.SUBMIT: None if nf is None else submit,
                TaskCol.COMPLETE: submit + pd.Timedelta(minutes=21) if nf in ("COMPLETED", "ABORTED") else None,
                RecCol.NF_STATUS: nf,
                JobCol.JOB_ID: f"job-{i:05d}",
                JobCol.JOB_NAME: f"ALIGN_sample_{i:05d}",
                JobCol.JOB_QUEUE: "default-queue",
                RecCol.BATCH_STATUS: batch,
                JobCol.STATUS_REASON: None,
                JobCol.CREATED_AT: None if batch is None else submit,
                JobCol.STARTED_AT: None if batch is None else started,
                JobCol.STOPPED_AT: stopped,
                JobCol.VCPUS: None if batch is None else 2.0,
                RecCol.BATCH_RETRIES: None if batch is None else (1 if i % 5 == 1 else 0),
                RecCol.VERDICT: verdict,
                RecCol.REASON: f"{verdict}: because of row {i}",
                RecCol.KILLABLE: killable,
                RecCol.NF_ALIVE: nf in ("SUBMITTED", "RUNNING"),
                RecCol.IN_SCOPE_BY: "native_id" if nf is not None else "workdir",
                RecCol.WASTE_VCPU_H: waste,
                RecCol.WASTE_COST: waste * 0.05,
            }
        )
    frame = pd.DataFrame(rows)
    dtypes = {
        TaskCol.TASK_ID: "Int64", RecCol.BATCH_RETRIES: "Int64", JobCol.VCPUS: "Float64",
        RecCol.WASTE_VCPU_H: "Float64", RecCol.WASTE_COST: "Float64", RecCol.KILLABLE: "boolean",
        RecCol.NF_ALIVE: "boolean",
    }
    for col in (TaskCol.SUBMIT, TaskCol.COMPLETE, JobCol.CREATED_AT, JobCol.STARTED_AT, JobCol.STOPPED_AT):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    for col in frame.columns:
        if col in dtypes:
            frame[col] = frame[col].astype(dtypes[col])
        elif frame[col].dtype == object:
            frame[col] = frame[col].astype("string")
    return frame


def _trace_types(fig: go.Figure) -> set[str]:
    return {t.type for t in fig.data}


def test_timeline_draws_both_views_with_one_legend_entry_per_verdict() -> None:
    frame = make_frame(24)
    fig = figures.timeline_figure(frame, now=T0 + pd.Timedelta(hours=1), run_end=T0 + pd.Timedelta(minutes=15))
    assert _trace_types(fig) == {"scatter"}
    titles = [a.text for a in fig.layout.annotations]
    assert "What Nextflow recorded" in titles and "What AWS Batch ran" in titles
    assert "Nextflow stopped" in titles
    by_axis: dict[str, set[str]] = {}
    for trace in fig.data:
        by_axis.setdefault(trace.xaxis, set()).add(trace.name)
    # Untracked jobs have no Nextflow record: they appear only on Batch's side.
    assert "untracked" not in by_axis["x"]
    assert {"orphan", "untracked", "stale", "disagree", "ok"} <= by_axis["x2"]
    # A vanished job has no Batch side at all.
    assert "vanished" not in by_axis["x2"]
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert sorted(legend) == sorted({*legend})  # each verdict once
    assert set(legend) >= {"ok", "orphan", "untracked", "stale", "disagree", "vanished"}
    # Spot retries Batch made: rows 1, 6, 11, … (i % 5 == 1) with a Batch side.
    retries = next(t for t in fig.data if t.name == "extra Batch attempts")
    assert all("2 attempts" in h for h in retries.hovertext)


def test_timeline_orphan_bar_runs_until_now_and_rows_follow_submit_order() -> None:
    frame = make_frame(6).iloc[::-1]  # reversed: the figure must sort by submit time
    now = T0 + pd.Timedelta(hours=2)
    fig = figures.timeline_figure(frame, now=now)
    orphan_batch = next(t for t in fig.data if t.name == "orphan" and t.xaxis == "x2")
    # Row 1 is the orphan (cycle order); it is still RUNNING so its bar ends at "now".
    assert list(orphan_batch.y[:2]) == [1, 1]
    assert pd.Timestamp(orphan_batch.x[1]) == now.tz_localize(None)
    assert list(fig.layout.yaxis.ticktext[:2]) == ["ALIGN (sample_00000)", "ALIGN (sample_00001)"]


def test_timeline_switches_to_webgl_above_threshold() -> None:
    small = figures.timeline_figure(make_frame(50))
    big = figures.timeline_figure(make_frame(figures.WEBGL_THRESHOLD + 1))
    assert _trace_types(small) == {"scatter"}
    assert _trace_types(big) == {"scattergl"}
    # Past MAX_TICK_LABELS the task names are not printed (the axis says how many).
    assert big.layout.yaxis.showticklabels is False
    assert f"{figures.WEBGL_THRESHOLD + 1:,} tasks" in big.layout.yaxis.title.text


def test_timeline_escapes_task_names_in_labels_and_hover() -> None:
    evil = "<img src=x onerror=alert(1)>"
    frame = make_frame(6, names=[evil] * 6)
    fig = figures.timeline_figure(frame)
    payload = fig.to_json()
    assert "<img" not in payload
    assert html.escape(evil) in json.loads(payload)["layout"]["yaxis"]["ticktext"]


def test_timeline_of_an_empty_frame_is_an_empty_figure() -> None:
    fig = figures.timeline_figure(make_frame(6).iloc[0:0])
    assert len(fig.data) == 0


def test_summary_counts_and_waste_per_verdict() -> None:
    frame = make_frame(24)
    fig = figures.summary_figure(frame)
    counts, waste = fig.data
    assert dict(zip(counts.x, counts.y, strict=True)) == {v: 4 for v in VERDICTS}
    by_verdict = dict(zip(waste.x, waste.y, strict=True))
    expected = frame.groupby(RecCol.VERDICT)[RecCol.WASTE_VCPU_H].sum()
    assert by_verdict["orphan"] == pytest.approx(float(expected["orphan"]))
    assert by_verdict["ok"] == 0.0


def test_export_html_of_a_frame_is_self_contained_and_escaped(tmp_path: Path) -> None:
    evil = "</script><script>alert('x')</script>"
    frame = make_frame(12, names=[evil] * 12)
    out = figures.export_html(frame, tmp_path / "pm.html")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "alert('x')</script>" not in text.replace(html.escape(evil), "")
    assert html.escape(evil) in text
    # plotly.js is embedded so the file opens offline
    assert "plotly.js v" in text or "Plotly=" in text or len(text) > 1_000_000
    # only the mismatching rows are listed
    assert text.count('class="bk-row bk-') == 10
    assert 'class="bk-row bk-orphan"' in text and 'class="bk-row bk-ok"' not in text


def test_export_html_rejects_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="refresh the dashboard once"):
        figures.export_html(object(), tmp_path / "x.html")
