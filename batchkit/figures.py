"""Plotly figures over a reconcile frame, and a static HTML post-mortem.

- ``timeline_figure(frame)``: two timelines side by side, one row per task — left what
  Nextflow recorded (submit → complete), right what AWS Batch ran (start → stop, or
  "still running" up to now) — coloured by verdict so every mismatch stands out, with
  Batch's extra attempts (spot retries Nextflow never saw) marked. Above
  ``WEBGL_THRESHOLD`` tasks the traces are WebGL (``Scattergl``): SVG with 10,000
  line segments makes the browser crawl.
- ``summary_figure(frame)``: how many rows per verdict, and the waste per verdict.
- ``export_html(dashboard_or_frame, path)``: both figures and the mismatch table in
  one self-contained HTML file to attach to a post-mortem.

Figures are built from plain frame data; nothing here calls AWS.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from batchkit.reconcile import summarize
from batchkit.schema import VERDICTS, JobCol, RecCol, TaskCol
from batchkit.table_model import (
    FILTER_MISMATCHES,
    KILLED,
    TABLE_CSS,
    VERDICT_COLOURS,
    TableQuery,
    column_text,
    render_table,
    select,
)

#: Above this many tasks, traces switch to WebGL.
WEBGL_THRESHOLD: Final = 1000
#: Task names label the y axis only while they can be read.
MAX_TICK_LABELS: Final = 60
#: The post-mortem lists at most this many mismatching rows (the figures show all).
EXPORT_MAX_ROWS: Final = 5000

#: Colour of a verdict's line in the timelines; "ok" is a quiet grey.
LINE_COLOURS: Final[dict[str, str]] = dict(VERDICT_COLOURS)
#: Verdicts in drawing order ("ok" first, so the mismatches are drawn on top of it).
DRAWN_VERDICTS: Final[tuple[str, ...]] = ("ok", KILLED, *(v for v in VERDICTS if v != "ok"))

#: plotly cannot read JupyterLab's CSS variables, so the figures stay readable on
#: either theme instead: transparent backgrounds, mid-grey text and translucent grid
#: lines work on a light and on a dark page alike.
THEME_LAYOUT: Final[dict[str, Any]] = {
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "font": {"color": "#8a94a0", "family": "DejaVu Sans, Arial, sans-serif"},
}
GRID_COLOUR: Final = "rgba(128,128,128,0.25)"


def _utc_column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    return pd.to_datetime(frame[column], utc=True, errors="coerce")


def _plot_time(ts: Any) -> dt.datetime:
    """Plotly draws naive datetimes as given: hand it UTC wall time, labelled as UTC."""
    return pd.Timestamp(ts).tz_convert("UTC").tz_localize(None).to_pydatetime()  # type: ignore[no-any-return]


def _order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows top to bottom in the order work started (submit, else Batch's created time)."""
    start = _utc_column(frame, TaskCol.SUBMIT).fillna(_utc_column(frame, JobCol.CREATED_AT))
    order = pd.DataFrame(
        {"start": start, "name": column_text(frame, TaskCol.NAME), "job": column_text(frame, JobCol.JOB_ID)},
        index=frame.index,
    )
    index = order.sort_values(["start", "name", "job"], kind="mergesort", na_position="last").index
    return frame.loc[index].reset_index(drop=True)


def _hover(row: Mapping[str, Any]) -> str:
    def esc(value: Any) -> str:
        return "—" if value is None or (not isinstance(value, str) and pd.isna(value)) else html.escape(str(value))

    retries = row.get(RecCol.BATCH_RETRIES)
    attempts = "—" if retries is None or pd.isna(retries) else str(int(retries) + 1)
    return (
        f"<b>{esc(row.get(TaskCol.NAME))}</b><br>"
        f"Nextflow: {esc(row.get(RecCol.NF_STATUS))}<br>"
        f"Batch: {esc(row.get(JobCol.STATUS))} · attempts {attempts} · job {esc(row.get(JobCol.JOB_ID))}<br>"
        f"{esc(row.get(RecCol.VERDICT))}: {esc(row.get(RecCol.REASON))}"
    )


def _segments(
    starts: pd.Series, ends: pd.Series, rows: list[int], now: dt.datetime
) -> tuple[list[Any], list[Any], list[int]]:
    """Line x/y lists with ``None`` gaps; a missing end draws up to ``now`` (still running)."""
    xs: list[Any] = []
    ys: list[Any] = []
    drawn: list[int] = []
    for i in rows:
        s = starts.iat[i]
        if pd.isna(s):
            continue
        e = ends.iat[i]
        xs += [_plot_time(s), now if pd.isna(e) else _plot_time(e), None]
        ys += [i, i, None]
        drawn.append(i)
    return xs, ys, drawn


def _spans(rows: pd.DataFrame, run_end: Any) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """(Nextflow start, Nextflow end, Batch start, Batch end) of every row, as UTC times.

    An end left missing means still running (``_segments`` draws it up to "now").
    """
    nf_start, nf_end = _utc_column(rows, TaskCol.SUBMIT), _utc_column(rows, TaskCol.COMPLETE)
    b_start = _utc_column(rows, JobCol.STARTED_AT).fillna(_utc_column(rows, JobCol.CREATED_AT))
    b_end = _utc_column(rows, JobCol.STOPPED_AT)
    # A terminal Nextflow task without a completion time ended when the run did.
    nf_status = column_text(rows, RecCol.NF_STATUS)
    nf_alive = nf_status.isin(["SUBMITTED", "RUNNING"])
    if run_end is not None:
        nf_end = nf_end.where(nf_end.notna() | nf_alive, pd.Timestamp(run_end).tz_convert("UTC"))
    # A job Batch has finished but with no stop time (cancelled before it started)
    # is a point, not a bar to "now".
    b_terminal = column_text(rows, JobCol.STATUS).isin(["SUCCEEDED", "FAILED"])
    b_end = b_end.where(b_end.notna() | ~b_terminal, b_start)
    return nf_start, nf_end, b_start, b_end


def _add_verdict_lines(
    fig: go.Figure,
    scatter: Any,
    verdicts: pd.Series,
    sides: tuple[tuple[pd.Series, pd.Series], tuple[pd.Series, pd.Series]],
    hovers: list[str],
    now: dt.datetime,
) -> None:
    """One trace per verdict and side (Nextflow left, Batch right), one legend entry per verdict."""
    for verdict in DRAWN_VERDICTS:
        idx = [i for i in range(len(verdicts)) if verdicts.iat[i] == verdict]
        if not idx:
            continue
        colour = LINE_COLOURS.get(verdict, "#888")
        width = 2 if verdict == "ok" else 4
        in_legend = False
        for col, (starts, ends) in enumerate(sides, start=1):
            xs, ys, drawn = _segments(starts, ends, idx, now)
            if not drawn:
                continue
            fig.add_trace(
                scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers",
                    line={"color": colour, "width": width},
                    marker={"size": 4 if verdict == "ok" else 6, "color": colour},
                    name=verdict,
                    legendgroup=verdict,
                    showlegend=not in_legend,
                    hovertext=[h for i in drawn for h in (hovers[i], hovers[i], None)],
                    hoverinfo="text",
                    connectgaps=False,
                ),
                row=1,
                col=col,
            )
            in_legend = True


def _add_extra_attempts(
    fig: go.Figure, scatter: Any, rows: pd.DataFrame, b_start: pd.Series, hovers: list[str]
) -> None:
    """Batch's extra attempts: the retries Nextflow never heard of (docs/ARCHITECTURE.md §6)."""
    retries = (
        pd.to_numeric(rows[RecCol.BATCH_RETRIES], errors="coerce").fillna(0)
        if RecCol.BATCH_RETRIES in rows.columns
        else pd.Series(0, index=rows.index)
    )
    retried = [i for i in range(len(rows)) if retries.iat[i] > 0 and not pd.isna(b_start.iat[i])]
    if not retried:
        return
    fig.add_trace(
        scatter(
            x=[_plot_time(b_start.iat[i]) for i in retried],
            y=retried,
            mode="markers",
            marker={"symbol": "x", "size": 9, "color": "#8a94a0"},
            name="extra Batch attempts",
            hovertext=[f"{int(retries.iat[i]) + 1} attempts<br>{hovers[i]}" for i in retried],
            hoverinfo="text",
        ),
        row=1,
        col=2,
    )


def _mark_run_end(fig: go.Figure, run_end: Any) -> None:
    """A dashed line on both timelines where Nextflow stopped caring."""
    if run_end is None or pd.isna(run_end):
        return
    end = _plot_time(run_end)
    for col in (1, 2):
        fig.add_vline(x=end, line={"color": "#8a94a0", "dash": "dash", "width": 1}, row=1, col=col)
    # Inside the plot, under its top edge: above it, the label ran into the subplot title.
    fig.add_annotation(
        x=end, y=1.0, yref="paper", xref="x2", text="Nextflow stopped", showarrow=False,
        yanchor="top", xanchor="left", xshift=4, font={"size": 11, "color": "#8a94a0"},
    )


def _lay_out_timelines(fig: go.Figure, rows: pd.DataFrame, title: str | None) -> None:
    """Task names on the y axis while they can be read (else a count), height by rows."""
    n = len(rows)
    yaxis: dict[str, Any] = {"autorange": "reversed", "showgrid": False, "zeroline": False}
    if 0 < n <= MAX_TICK_LABELS:
        names = column_text(rows, TaskCol.NAME).where(column_text(rows, TaskCol.NAME) != "", column_text(rows, JobCol.JOB_NAME))
        yaxis.update(tickmode="array", tickvals=list(range(n)), ticktext=[html.escape(s) for s in names])
    else:
        yaxis.update(title={"text": f"{n:,} tasks (by submit time)"}, showticklabels=False)
    fig.update_yaxes(**yaxis)
    fig.update_xaxes(title={"text": "time (UTC)"}, showgrid=True, gridcolor=GRID_COLOUR)
    height = min(900, max(320, 120 + 14 * min(n, MAX_TICK_LABELS)))
    fig.update_layout(
        title={"text": html.escape(title)} if title else None,
        height=height,
        margin={"l": 10, "r": 10, "t": 60 if title else 40, "b": 40},
        hovermode="closest",
        **THEME_LAYOUT,
        legend={"orientation": "h", "y": -0.12 if n <= MAX_TICK_LABELS else -0.15},
    )


def timeline_figure(
    frame: pd.DataFrame,
    *,
    now: Any = None,
    run_end: Any = None,
    webgl: bool | None = None,
    title: str | None = None,
) -> go.Figure:
    """Nextflow's timeline beside Batch's, one row per (task, job), coloured by verdict.

    ``now`` closes bars that have no end yet (default: the current time); ``run_end``
    draws the moment Nextflow stopped caring (abort or completion). ``webgl`` forces
    the trace type; by default WebGL is used above ``WEBGL_THRESHOLD`` rows.
    """
    rows = _order(frame)
    use_gl = (len(rows) > WEBGL_THRESHOLD) if webgl is None else webgl
    scatter = go.Scattergl if use_gl else go.Scatter
    now_py = _plot_time(now if now is not None else pd.Timestamp.now(tz="UTC"))

    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.03,
        subplot_titles=("What Nextflow recorded", "What AWS Batch ran"),
    )
    verdicts = column_text(rows, RecCol.VERDICT).replace("", "ok")
    hovers = [_hover(r) for r in rows.to_dict("records")]
    nf_start, nf_end, b_start, b_end = _spans(rows, run_end)
    _add_verdict_lines(fig, scatter, verdicts, ((nf_start, nf_end), (b_start, b_end)), hovers, now_py)
    _add_extra_attempts(fig, scatter, rows, b_start, hovers)
    _mark_run_end(fig, run_end)
    _lay_out_timelines(fig, rows, title)
    return fig


def summary_figure(frame: pd.DataFrame, *, price_label: str = "$") -> go.Figure:
    """Rows per verdict (left) and the waste they burnt in vCPU-hours (right)."""
    verdicts = column_text(frame, RecCol.VERDICT).replace("", "ok")
    counts = verdicts.value_counts()
    waste = (
        pd.to_numeric(frame[RecCol.WASTE_VCPU_H], errors="coerce").astype("float64").fillna(0.0)
        if RecCol.WASTE_VCPU_H in frame.columns
        else pd.Series(0.0, index=frame.index)
    )
    cost = (
        pd.to_numeric(frame[RecCol.WASTE_COST], errors="coerce").astype("float64").fillna(0.0)
        if RecCol.WASTE_COST in frame.columns
        else pd.Series(0.0, index=frame.index)
    )
    by_verdict = pd.DataFrame({"v": verdicts, "w": waste, "c": cost}).groupby("v").sum()
    order = [v for v in (*VERDICTS, KILLED) if v in counts.index or v in by_verdict.index]
    colours = [LINE_COLOURS.get(v, "#888") for v in order]
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.12,
        subplot_titles=("Rows per verdict", "Waste (vCPU-hours)"),
    )
    fig.add_trace(
        go.Bar(
            x=order, y=[int(counts.get(v, 0)) for v in order], marker_color=colours,
            text=[f"{int(counts.get(v, 0)):,}" for v in order], textposition="outside", cliponaxis=False,
            name="rows", showlegend=False,
        ),
        row=1, col=1,
    )
    w = [float(by_verdict["w"].get(v, 0.0)) for v in order]
    c = [float(by_verdict["c"].get(v, 0.0)) for v in order]
    fig.add_trace(
        go.Bar(
            x=order, y=w, marker_color=colours,
            text=[f"{wi:,.2f} · {price_label}{ci:,.2f}" if wi else "" for wi, ci in zip(w, c, strict=True)],
            textposition="outside", cliponaxis=False, name="waste", showlegend=False,
            hovertemplate="%{x}: %{y:,.2f} vCPU-h<extra></extra>",
        ),
        row=1, col=2,
    )
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 50, "b": 30}, **THEME_LAYOUT)
    fig.update_yaxes(gridcolor=GRID_COLOUR)
    return fig


# --- the static post-mortem ----------------------------------------------------------


def _source_of(obj: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(frame, header facts) from a Dashboard, a Tracker, a Snapshot or a bare frame."""
    if isinstance(obj, pd.DataFrame):
        return obj, {}
    tracker = getattr(obj, "tracker", None)
    snapshot = getattr(tracker, "snapshot", None) if tracker is not None else getattr(obj, "snapshot", obj)
    frame = getattr(snapshot, "frame", None)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"export_html needs a Dashboard, a Tracker, a Snapshot or a reconcile DataFrame, "
            f"not {type(obj).__name__}; refresh the dashboard once before exporting"
        )
    run = getattr(obj, "run", None) or getattr(tracker, "run", None)
    facts: dict[str, Any] = {}
    if run is not None:
        facts["run"] = getattr(run, "name", None)
        facts["state"] = getattr(run, "state", None)
        facts["cause"] = getattr(run, "abort_cause", None)
        facts["end"] = getattr(run, "end_time", None)
        facts["year_note"] = getattr(run, "year_note", "") or ""
    facts["taken_at"] = getattr(snapshot, "taken_at", None)
    return frame, facts


def export_html(
    dashboard_or_frame: Any,
    path: str | Path,
    *,
    title: str | None = None,
    include_plotlyjs: bool | str = True,
) -> Path:
    """Write a self-contained HTML post-mortem: summary, both figures, the mismatching rows.

    ``dashboard_or_frame`` is a ``Dashboard`` (its last good refresh is used), a
    ``Tracker``, a ``Snapshot`` or a reconcile DataFrame. The file embeds plotly.js
    (``include_plotlyjs=True``) so it opens offline; pass ``"directory"`` or a URL
    to share one copy between several reports.
    """
    frame, facts = _source_of(dashboard_or_frame)
    out = Path(path)
    summary = summarize(frame) if not frame.empty else {}
    counts = summary.get("verdicts", {})
    run_name = facts.get("run") or "unnamed run"
    heading = title or f"batchkit post-mortem — {run_name}"
    state = facts.get("state")
    cause = facts.get("cause")
    state_text = f"{state}" + (f" — {cause}" if cause else "") if state else "unknown"
    taken = facts.get("taken_at")
    taken_text = pd.Timestamp(taken).strftime("%Y-%m-%d %H:%M:%S UTC") if taken is not None else "—"

    chips = "".join(
        f'<span class="bk-verdict bk-verdict-{v}" style="font-size:13px;padding:3px 10px">'
        f"{html.escape(v)}: {int(counts.get(v, 0)):,}</span>"
        for v in VERDICTS
    )
    waste_h = float(summary.get("waste_vcpu_hours", 0.0) or 0.0)
    waste_c = float(summary.get("waste_cost", 0.0) or 0.0)
    page = select(frame, TableQuery(verdict=FILTER_MISMATCHES, page_size=EXPORT_MAX_ROWS))
    more = (
        f"<p>Showing the first {page.last:,} of {page.total:,} mismatching rows.</p>"
        if page.total > page.last
        else ""
    )
    summary_div = summary_figure(frame).to_html(full_html=False, include_plotlyjs=include_plotlyjs)
    timeline_div = timeline_figure(frame, run_end=facts.get("end"), now=taken).to_html(
        full_html=False, include_plotlyjs=False
    )
    # Log lines carry no year: when the run's is a guess, the report's times say so.
    year_note = str(facts.get("year_note") or "")
    year_row = f"<tr><td>Times</td><td><b>{html.escape(year_note)}</b></td></tr>\n" if year_note else ""
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>
{TABLE_CSS}
<style>body {{ font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #222; }}
.bk-facts td {{ padding: 2px 12px 2px 0; }} .bk-chips span {{ margin-right: 6px; }}</style>
</head><body>
<h1>{html.escape(heading)}</h1>
<table class="bk-facts">
<tr><td>Run</td><td><b>{html.escape(str(run_name))}</b></td></tr>
<tr><td>Nextflow</td><td>{html.escape(state_text)}</td></tr>
<tr><td>Batch view taken</td><td>{html.escape(taken_text)}</td></tr>
{year_row}<tr><td>Waste</td><td><b>{waste_h:,.2f} vCPU-h</b> (${waste_c:,.2f})</td></tr>
<tr><td>Killable now</td><td>{int(summary.get("killable", 0)):,}</td></tr>
</table>
<p class="bk-chips">{chips}</p>
{summary_div}
{timeline_div}
<h2>Mismatching rows</h2>
{more}
{render_table(page)}
</body></html>
"""
    out.write_text(body, encoding="utf-8")
    return out
