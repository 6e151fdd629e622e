"""The notebook dashboard: what Nextflow believes beside what AWS Batch holds.

``Dashboard`` is a thin ipywidgets 8 view over a ``Tracker``: the tracker polls Batch
on the kernel's event loop and announces each refresh; the dashboard only assigns
trait values from the snapshot it is handed, and acts (kills) through the tracker,
never calling AWS itself. Everything shown is computed by pure functions
(``header_html``, ``chip_labels``, ``kill_all_label``, ``outcome_rows_html`` and the
table module) that tests exercise on hand-built data.

A 100,000-task run stays responsive: one refresh is one vectorised filter/sort and one
table widget (``_table_view.TableView``) holding the visible page (``page_size`` rows),
each row with its own kill button. Rows batchkit killed read ``killed`` everywhere (badge,
chips, filter, reason: ``table_model.overlay_kills``), from the ledger's audit.

Panels that show one job in detail hook in with ``on_row_selected`` (a click on a row)
and ``add_panel`` (a collapsible section below the table).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import ipywidgets as widgets
import pandas as pd

from batchkit.schema import VERDICTS, JobCol, KillJob, RecCol, TaskCol
from batchkit.table_model import (
    FILTER_ALL,
    FILTER_MISMATCHES,
    FILTERS,
    KILLED,
    NOT_BATCH,
    SORT_KEYS,
    SORT_LABELS,
    TABLE_CSS,
    KillRecord,
    OrderCache,
    TablePage,
    TableQuery,
    escape_html,
    keep_in_view,
    overlay_kills,
    page_label,
    render_table,
    select,
)
from batchkit.widgets._background import run_off_loop, running_loop, wait_all
from batchkit.widgets._table_view import TableView

log = logging.getLogger(__name__)

#: Verdicts the kill-all button terminates: jobs nobody will ever collect. Both are
#: only planned when ownership is proven (native id or work dir, docs/ARCHITECTURE.md §8).
KILL_ALL_VERDICTS: Final[tuple[str, ...]] = ("orphan", "untracked")
#: Seconds between refreshes unless told otherwise: fresh enough to watch a kill land,
#: and 6 polls a minute stay far inside the API budget Nextflow shares.
DEFAULT_INTERVAL: Final = 10.0

#: Colours come from JupyterLab's theme variables (``--jp-*``, with fallbacks for Voila
#: and exported pages), so the light and the dark theme both read; accents are used as
#: badges with white text or as translucent tints, which work on either background.
DASHBOARD_CSS: Final = """
<style>
.bk-dashboard { font-family: var(--jp-ui-font-family, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif);
  color: var(--jp-ui-font-color1, #1f2933); max-width: 1400px; min-width: 0; }
.bk-dashboard .bk-card { border: 1px solid var(--jp-border-color2, #dfe3e8); border-radius: 8px;
  padding: 10px 14px; background: var(--jp-layout-color1, #fafbfc); }
.bk-head-title { font-size: 18px; font-weight: 700; color: var(--jp-ui-font-color0, #1f2933); }
.bk-head-line { margin-top: 4px; font-size: 13px; color: var(--jp-ui-font-color1, #3e4c59); }
.bk-head-line b { color: var(--jp-ui-font-color0, #1f2933); }
.bk-badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 12px;
  font-weight: 700; color: #fff; margin: 0 4px; }
.bk-badge-alive { background: var(--jp-success-color1, #2e7d32); }
.bk-badge-completed { background: var(--jp-ui-font-color2, #546e7a); }
.bk-badge-aborted { background: var(--jp-error-color1, #c0392b); }
.bk-badge-unknown { background: var(--jp-ui-font-color3, #8a8a8a); }
.bk-health-ok { color: var(--jp-success-color1, #2e7d32); font-weight: 600; }
.bk-health-degraded { color: var(--jp-warn-color1, #b26a00); font-weight: 600; }
.bk-health-failing { color: var(--jp-error-color1, #c0392b); font-weight: 600; }
.bk-muted { color: var(--jp-ui-font-color2, #7b8794); }
.bk-waste { font-size: 13px; color: var(--jp-ui-font-color1, #3e4c59); padding: 4px 8px; }
.bk-waste b { color: var(--jp-error-color1, #c0392b); font-size: 15px; }
.jupyter-widgets.widget-button.bk-chip { border-radius: 14px; font-weight: 600; height: 28px;
  margin: 2px 4px 2px 0; padding: 0 12px; border: 1px solid var(--jp-border-color1, #cfd6dd);
  background: var(--jp-layout-color1, #fff); color: var(--jp-ui-font-color1, #1f2933); }
.jupyter-widgets.widget-button.bk-chip.bk-chip-active {
  box-shadow: 0 0 0 2px var(--jp-brand-color1, #1f2933) inset; }
.jupyter-widgets.widget-button.bk-kill-all { background: var(--jp-error-color1, #c0392b); color: #fff;
  font-weight: 700; }
.jupyter-widgets.widget-button.bk-kill-all:disabled { opacity: 0.45; }
.jupyter-widgets.widget-button.bk-confirm { background: var(--jp-error-color0, #8e1b10); color: #fff;
  font-weight: 700; }
.bk-confirm-text { color: var(--jp-error-color1, #8e1b10); font-weight: 600; }
.bk-kill-status { font-size: 13px; }
.bk-outcomes { border-collapse: collapse; font-size: 12px; margin-top: 4px; }
.bk-outcomes td, .bk-outcomes th { padding: 2px 10px 2px 0; text-align: left; }
.bk-out-ok { color: var(--jp-success-color1, #1e7e34); font-weight: 600; }
.bk-out-err { color: var(--jp-error-color1, #c0392b); font-weight: 600; }
.bk-advice-item { margin: 6px 0; } .bk-sev-error { color: var(--jp-error-color1, #c0392b); font-weight: 700; }
.bk-sev-warning { color: var(--jp-warn-color1, #b26a00); font-weight: 700; }
.bk-sev-info { color: var(--jp-brand-color1, #2e6da4); font-weight: 700; }
.bk-dashboard .bk-controls .widget-html-content { white-space: nowrap; }
.bk-dashboard .bk-figures .js-plotly-plot { min-height: 200px; }
</style>
"""


# --- pure view functions (tested on hand-built data) -----------------------------------


def format_age(seconds: float | None) -> str:
    """'just now', '42 s ago', '3 min ago', '2 h ago'."""
    if seconds is None:
        return "never"
    if seconds < 2:
        return "just now"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def api_health(client_stats: Any, *, degraded: bool, error: str | None) -> tuple[str, str]:
    """(css class, text) for the Batch API's health from the client's stats and the last refresh."""
    text = ""
    stats_degraded = False
    if client_stats is not None:
        with contextlib.suppress(Exception):  # stats are decoration: never break the header
            stats_degraded = bool(getattr(client_stats, "degraded", False))
            summary = getattr(client_stats, "summary", None)
            text = str(summary() if callable(summary) else summary or "")
    if degraded and error:
        return "bk-health-failing", f"last refresh failed: {error}" + (f" ({text})" if text else "")
    if stats_degraded:
        return "bk-health-degraded", text or "degraded"
    return "bk-health-ok", text or "healthy"


def header_html(
    *,
    run_name: str | None,
    run_state: str | None,
    abort_cause: str | None,
    health: tuple[str, str],
    age: float | None,
    paused: bool = False,
    loading: bool = False,
    taken_at: Any = None,
    region: tuple[str, str] | None = None,
    queues: Mapping[str, str] | None = None,
    year_note: str = "",
    not_batch: str | None = None,
) -> str:
    """The header card: run name, Nextflow's state, Batch API health, freshness.

    ``taken_at`` (when the data shown was fetched) is also written as an attribute, so
    a browser test or benchmark can tell one refresh from the next. ``region`` is
    (region, where it was read) and ``queues`` queue -> where it was read: a user who
    passed no flag sees what batchkit chose and why. ``year_note`` says the log's year
    is a guess (log lines carry none). ``not_batch`` (why) replaces the Batch lines for
    a run that did not use AWS Batch: nothing is asked of AWS for it.
    """
    state = (run_state or "unknown").lower()
    badge = state if state in {"alive", "completed", "aborted"} else "unknown"
    cause = f' <span class="bk-muted">cause:</span> {escape_html(abort_cause)}' if state == "aborted" and abort_cause else ""
    health_cls, health_text = health
    if loading:
        fresh = '<span class="bk-muted">asking AWS Batch…</span>'
    else:
        fresh = f"updated <b>{escape_html(format_age(age))}</b>"
    if paused:
        fresh += ' <span class="bk-muted">(paused)</span>'
    stamp = "" if taken_at is None else escape_html(pd.Timestamp(taken_at).isoformat())
    if not_batch is not None:
        batch = (
            '<div class="bk-head-line bk-not-batch">AWS Batch: <b>not used by this run</b> '
            f'<span class="bk-muted">({escape_html(not_batch)})</span>: nothing is asked of AWS; '
            "Nextflow's side alone is shown.</div>"
        )
    else:
        where = ""
        if region is not None:
            where += (f'Region <b class="bk-region">{escape_html(region[0])}</b> '
                      f'<span class="bk-muted">(from {escape_html(region[1])})</span>')
        if queues is not None:
            shown = " · ".join(
                f'<b>{escape_html(q)}</b> <span class="bk-muted">(from {escape_html(src)})</span>' for q, src in queues.items()
            ) or '<span class="bk-muted">none known (untracked jobs are not searched for)</span>'
            where += f'{" · " if where else ""}<span class="bk-queues">queues {shown}</span>'
        batch = (
            f'<div class="bk-head-line">Batch API: <span class="{health_cls} bk-api-health">{escape_html(health_text)}</span>'
            f" · {fresh}</div>"
            + (f'<div class="bk-head-line bk-aws-where">{where}</div>' if where else "")
        )
    note = (
        f'<div class="bk-head-line bk-year-note bk-health-degraded">Times: {escape_html(year_note)}</div>'
        if year_note else ""
    )
    return (
        f'<div class="bk-card bk-header-card" data-taken-at="{stamp}">'
        f'<div class="bk-head-title">Run <span class="bk-run-name">{escape_html(run_name or "(unnamed)")}</span></div>'
        f'<div class="bk-head-line">Nextflow: <span class="bk-badge bk-badge-{badge} bk-run-state">{escape_html(state)}</span>{cause}</div>'
        f"{batch}{note}"
        "</div>"
    )


def verdict_counts(summary: Mapping[str, Any], frame: pd.DataFrame | None = None) -> dict[str, int]:
    """Rows per verdict, from ``summarize``'s dict (or counted from the frame)."""
    counts: dict[str, int] = {}
    nested = summary.get("verdicts") if isinstance(summary.get("verdicts"), Mapping) else None
    for verdict in VERDICTS:
        value = (nested or summary).get(verdict)
        if isinstance(value, int | float) and not isinstance(value, bool):
            counts[verdict] = int(value)
    if len(counts) < len(VERDICTS) and frame is not None and RecCol.VERDICT in frame.columns:
        observed = frame[RecCol.VERDICT].astype("string").value_counts()
        for verdict in VERDICTS:
            counts.setdefault(verdict, int(observed.get(verdict, 0)))
    for verdict in VERDICTS:
        counts.setdefault(verdict, 0)
    if frame is not None and RecCol.VERDICT in frame.columns:
        counts[KILLED] = int((frame[RecCol.VERDICT].astype("string") == KILLED).sum())
    return counts


def chip_labels(counts: Mapping[str, int], total: int) -> dict[str, str]:
    """Button labels of the filter chips: 'all 40', 'mismatches 12', 'orphan 5', …"""
    mismatches = sum(n for v, n in counts.items() if v in VERDICTS and v != "ok")
    labels = {FILTER_ALL: f"all {total:,}", FILTER_MISMATCHES: f"mismatches {mismatches:,}"}
    labels.update({v: f"{v} {counts.get(v, 0):,}" for v in (*VERDICTS, KILLED)})
    return labels


def waste_numbers(frame: pd.DataFrame, summary: Mapping[str, Any]) -> tuple[float, float]:
    """(vCPU-hours, cost) wasted, from the summary when it has them, else the frame."""
    hours = summary.get("waste_vcpu_hours")
    cost = summary.get("waste_cost")
    if hours is None and RecCol.WASTE_VCPU_H in frame.columns:
        hours = pd.to_numeric(frame[RecCol.WASTE_VCPU_H], errors="coerce").sum()
    if cost is None and RecCol.WASTE_COST in frame.columns:
        cost = pd.to_numeric(frame[RecCol.WASTE_COST], errors="coerce").sum()
    return float(hours or 0.0), float(cost or 0.0)


def waste_html(hours: float, cost: float, killable: int) -> str:
    return (
        f'<div class="bk-waste">Waste so far: <b>{hours:,.2f} vCPU-h</b> (${cost:,.2f})'
        f' · <span class="bk-muted">{killable:,} job(s) can be killed</span></div>'
    )


def killable_rows(frame: pd.DataFrame, verdicts: Sequence[str] = KILL_ALL_VERDICTS) -> pd.DataFrame:
    """Rows the kill-all button would terminate: killable, with one of ``verdicts``."""
    if frame.empty or RecCol.KILLABLE not in frame.columns or RecCol.VERDICT not in frame.columns:
        return frame.iloc[0:0]
    mask = frame[RecCol.KILLABLE].astype("boolean").fillna(False).astype(bool) & frame[
        RecCol.VERDICT
    ].astype("string").isin(list(verdicts)).fillna(False).astype(bool)
    return frame.loc[mask]


def kill_all_label(frame: pd.DataFrame, exclude: set[str] | frozenset[str] = frozenset()) -> tuple[str, int]:
    """('Kill all orphans (N jobs)', N) for the killable rows not yet killed.

    No waste figure here: the waste line above is the one figure shown (a second,
    computed from another subset or moment, would disagree with it).
    """
    rows = killable_rows(frame)
    if exclude and JobCol.JOB_ID in rows.columns:
        rows = rows.loc[~rows[JobCol.JOB_ID].astype("string").isin(sorted(exclude)).fillna(False).astype(bool)]
    n = len(rows)
    return f"Kill all orphans ({n:,} job{'s' if n != 1 else ''})", n


def plan_text(plan: Sequence[KillJob], run_name: str | None) -> str:
    """The confirmation question, naming what will be killed and why (escaped HTML)."""
    by_verdict: dict[str, int] = {}
    for job in plan:
        by_verdict[job.verdict] = by_verdict.get(job.verdict, 0) + 1
    parts = ", ".join(f"{n:,} {v}" for v, n in sorted(by_verdict.items()))
    reason = plan[0].reason if plan else ""
    # No waste figure here: the waste line above keeps counting while this question is
    # open; a second figure, frozen at the click, would soon disagree with it.
    return (
        f'<span class="bk-confirm-text">Terminate {len(plan):,} job(s) of run '
        f"{escape_html(run_name or '(unnamed)')} ({escape_html(parts)})?</span> "
        f'<span class="bk-muted">Batch will record the reason “{escape_html(reason)}”.</span>'
    )


def outcome_mark(outcome_kind: str, verified: str | None) -> str:
    """The row mark for one job's kill outcome (see ``table_model.KILL_MARK_TEXT``)."""
    if outcome_kind in {"terminated", "cancelled"}:
        return "killed"
    if outcome_kind in {"already_done", "not_found"}:
        return "already_done"
    return "failed"


def outcome_rows_html(outcomes: Sequence[tuple[KillJob, Any, str | None]], summary: str) -> str:
    """Per-job verified outcomes of a kill, as a small escaped table."""
    rows = []
    for job, outcome, verified in outcomes:
        ok = bool(getattr(outcome, "ok", False))
        kind = str(getattr(outcome, "outcome", "error"))
        detail = getattr(outcome, "error_code", None) or getattr(outcome, "message", "") or ""
        rows.append(
            f"<tr><td>{escape_html(job.task_name or '')}</td><td><code>{escape_html(job.job_id)}</code></td>"
            f'<td class="{"bk-out-ok" if ok else "bk-out-err"}">{escape_html(kind)}</td>'
            f"<td>Batch now: <b>{escape_html(verified or 'unknown')}</b></td><td>{escape_html(detail)}</td></tr>"
        )
    more = ""
    if len(rows) > 200:
        more = f'<div class="bk-muted">… and {len(rows) - 200:,} more (see the ledger).</div>'
        rows = rows[:200]
    return (
        f'<details class="bk-kill-details"><summary class="bk-kill-summary"><b>{escape_html(summary)}</b>'
        ' <span class="bk-muted">(each job\'s verified outcome)</span></summary>'
        '<table class="bk-outcomes"><tr><th>task</th><th>job</th><th>outcome</th><th>verified</th><th></th></tr>'
        + "".join(rows)
        + "</table>"
        + more
        + "</details>"
    )


def alert_html(text: str | None) -> str:
    """An alert banner (escaped), or nothing."""
    if not text:
        return ""
    return (
        '<div class="bk-alert-banner" style="border:1px solid #d92d20;background:#fef3f2;color:#912018;'
        f'border-radius:6px;padding:8px 12px;margin:6px 0;font-weight:600">⚠ {html.escape(text)}</div>'
    )


def advice_html(findings: Sequence[Any]) -> str:
    """``doctor()`` findings as an escaped list (most severe first)."""
    if not findings:
        return '<div class="bk-muted">No problem found.</div>'
    order = {"error": 0, "warning": 1, "info": 2}
    items = []
    for f in sorted(findings, key=lambda f: order.get(str(getattr(f, "severity", "info")), 3)):
        sev = str(getattr(f, "severity", "info"))
        items.append(
            f'<div class="bk-advice-item"><span class="bk-sev-{escape_html(sev)}">{escape_html(sev)}</span> '
            f"<b>{escape_html(getattr(f, 'title', ''))}</b> <span class=\"bk-muted\">[{escape_html(getattr(f, 'rule', ''))}]</span><br>"
            f"{escape_html(getattr(f, 'evidence', ''))}<br><i>{escape_html(getattr(f, 'advice', ''))}</i>"
            + (f'<br><span class="bk-muted">{escape_html(getattr(f, "source", ""))}</span>' if getattr(f, "source", "") else "")
            + "</div>"
        )
    return "".join(items)


def figure_output(fig: Any) -> dict[str, Any]:
    """A plotly figure as one ``display_data`` output (what JupyterLab and Voila render)."""
    payload = json.loads(fig.to_json())
    # Not "responsive": plotly.js's resize handler drops the figure's height and asks
    # its container, which inside a collapsed or re-laid-out panel answers 0 (a blank
    # panel after the first window resize, NaN transforms on a cold start). The
    # figure takes the panel's width when drawn, and is drawn again when reopened.
    payload.setdefault("config", {"displaylogo": False, "responsive": False})
    return {
        "output_type": "display_data",
        "data": {"application/vnd.plotly.v1+json": payload, "text/plain": "<plotly figure>"},
        "metadata": {},
    }


#: The verdict shown before Batch has answered: Nextflow's side only.
PENDING: Final = "pending"


def provisional_frame(tasks: pd.DataFrame | None) -> pd.DataFrame:
    """Nextflow's tasks shaped as reconcile rows, before Batch has answered.

    The first poll of a large run takes a while (DescribeJobs answers 100 jobs a call,
    within a rate budget that leaves room for Nextflow): meanwhile the table shows
    what Nextflow recorded, marked "asking AWS Batch", with nothing killable.
    """
    if tasks is None or len(tasks) == 0:
        return pd.DataFrame()
    carried = [c for c in (TaskCol.TASK_ID, TaskCol.NAME, TaskCol.PROCESS, TaskCol.HASH,
                           TaskCol.NATIVE_ID, TaskCol.WORKDIR, TaskCol.SUBMIT, TaskCol.COMPLETE)
               if c in tasks.columns]
    frame = tasks[carried].copy()
    n = len(frame)
    status = tasks[TaskCol.STATUS] if TaskCol.STATUS in tasks.columns else pd.Series(pd.NA, index=tasks.index)
    frame[RecCol.NF_STATUS] = status.astype("string")
    frame[RecCol.VERDICT] = pd.array([PENDING] * n, dtype="string")
    frame[RecCol.REASON] = pd.array(["asking AWS Batch…"] * n, dtype="string")
    frame[RecCol.KILLABLE] = pd.array([False] * n, dtype="boolean")
    return frame.reset_index(drop=True)


def nextflow_only_frame(tasks: pd.DataFrame | None, why: str) -> pd.DataFrame:
    """Nextflow's tasks as rows of a run that did not use AWS Batch: nothing to ask, nothing to kill."""
    frame = provisional_frame(tasks)
    if not frame.empty:
        frame[RecCol.VERDICT] = pd.array([NOT_BATCH] * len(frame), dtype="string")
        frame[RecCol.REASON] = pd.array([why] * len(frame), dtype="string")
    return frame


def not_batch_reason(run: Any) -> str | None:
    """Why the run's jobs are not AWS Batch jobs ("executor: slurm; from log …"), or None
    when the run used AWS Batch or its executor is unknown (then Batch is asked)."""
    if getattr(run, "on_aws_batch", None) is not False:
        return None
    used = ", ".join(e for e in getattr(run, "executors", []) if e != "not awsbatch") or "not AWS Batch"
    source = getattr(run, "executor_source", "")
    return f"executor: {used}" + (f"; from {source}" if source else "")


def _client_for(run: Any) -> tuple[Any, tuple[str, str]]:
    """A BatchClient in the region the run used, and (region, where it was read).

    The run's log (its AwsOptions line) or config (``aws.region``) names the region, as
    the CLI takes it; else the AWS configuration's.
    """
    from batchkit.client import BatchClient
    from batchkit.errors import AwsError

    run_region = getattr(run, "region", None)
    try:
        client = BatchClient(region=run_region) if run_region else BatchClient()
    except AwsError as exc:
        if exc.code != "NoRegion":
            raise
        raise AwsError(
            "No AWS region: the run's log (AwsOptions line) and nextflow.config "
            "(aws.region) name none, nor does the AWS configuration; pass "
            "client=BatchClient(region=...) to Dashboard, or set AWS_REGION",
            code="NoRegion",
        ) from None
    where = getattr(run, "region_source", "") if run_region else "the AWS configuration"
    return client, (str(client.region), where or "the run")


def _tracker_for(
    run_or_launch_dir: Any,
    client: Any,
    *,
    queues: Sequence[str] | None,
    interval: float | None,
    price_per_vcpu_hour: float | None,
    clock: Callable[[], Any] | None,
) -> tuple[Any, tuple[str, str] | None]:
    """The Dashboard's own Tracker for a run (or launch dir), and (region, where it was read)."""
    from batchkit.tracker import Tracker

    run = run_or_launch_dir
    if isinstance(run_or_launch_dir, str | Path):
        from batchkit.nextflow import NextflowRun

        run = NextflowRun.from_dir(run_or_launch_dir)
    extra: dict[str, Any] = {}
    region: tuple[str, str] | None = None
    if not_batch_reason(run) is not None:
        # Not a Batch run: no client is made (it would need a region and
        # credentials for nothing) and no ledger is opened in its launch dir.
        extra["ledger"] = False
    elif client is None:
        client, region = _client_for(run)
    else:
        region = (str(getattr(client, "region", "?")), "the client given to the Dashboard")
    if price_per_vcpu_hour is not None:
        extra["price_per_vcpu_hour"] = price_per_vcpu_hour
    if clock is not None:
        extra["clock"] = clock
    tracker = Tracker(run, client, queues=queues, interval=DEFAULT_INTERVAL if interval is None else interval, **extra)
    return tracker, region


# --- the widget --------------------------------------------------------------------------


class Dashboard(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """Nextflow's view beside AWS Batch's for one run, refreshed on the kernel's loop.

    >>> dash = Dashboard("path/to/launch-dir", client=BatchClient(region="eu-west-1"))
    >>> dash                     # displays at once; refreshes every ``interval`` (10) seconds
    >>> dash.pause(); dash.resume(); dash.close()
    >>> await dash.kill_orphans_async()   # what "Kill all orphans" + confirm does

    ``run_or_launch_dir`` is a ``NextflowRun`` or a launch directory. Pass ``tracker``
    to share one with other code (the dashboard then leaves it running on ``close``).
    ``clock`` (a callable returning an aware UTC datetime) is the tracker's "now" for
    waste; pass the emulator's clock when watching a LocalBatch that runs faster than
    real time. The header's "updated … ago" is always the viewer's wall clock.
    With ``autostart=False`` nothing polls until ``refresh()`` is called (scripts, tests).

    Without ``client``, the region is the run's (its log's ``AwsOptions`` line, else
    ``aws.region`` in its config), else the AWS configuration's; without ``queues``,
    the run's. The header says where each came from, and says so when the log's year
    is a guess. A run that did not use AWS Batch (``run.on_aws_batch`` False: SLURM
    ids, PIDs) shows Nextflow's side alone: no client is made and AWS is asked nothing.
    """

    def __init__(
        self,
        run_or_launch_dir: Any,
        client: Any = None,
        *,
        tracker: Any = None,
        queues: Sequence[str] | None = None,
        interval: float | None = None,
        page_size: int = 50,
        price_per_vcpu_hour: float | None = None,
        clock: Callable[[], Any] | None = None,
        autostart: bool = True,
        **kwargs: Any,
    ) -> None:
        from batchkit.tracker import Refreshed, RefreshFailed

        self._Refreshed, self._RefreshFailed = Refreshed, RefreshFailed
        #: (region, where it was read), shown in the header; None when a tracker was given
        self.region: tuple[str, str] | None = None
        self._owns_tracker = tracker is None
        if tracker is None:
            tracker, self.region = _tracker_for(
                run_or_launch_dir, client, queues=queues, interval=interval,
                price_per_vcpu_hour=price_per_vcpu_hour, clock=clock,
            )
        else:
            if interval is not None:
                tracker.interval = interval
            if getattr(tracker.client, "region", None):
                self.region = (str(tracker.client.region), "the tracker's client")
        self.tracker = tracker
        #: why the run's jobs are not AWS Batch jobs (None: a Batch run). Then the dashboard
        #: shows Nextflow's side alone and never calls the tracker's client.
        self.not_batch: str | None = not_batch_reason(tracker.run)
        self._init_view_state(page_size)

        self._build()
        super().__init__(children=self._layout_children(), **kwargs)
        self.add_class("bk-dashboard")
        self._unsubscribe = tracker.subscribe(self._on_event)
        self._first_paint()
        if autostart and self.not_batch is None and not getattr(tracker, "closed", False):
            tracker.start()

    def _init_view_state(self, page_size: int) -> None:
        """What the view keeps between refreshes: the query, kill marks, background work."""
        self.query = TableQuery(page_size=max(1, int(page_size)))
        self.marks: dict[str, str] = {}  # job id -> kill mark, kept across refreshes
        self._pinned: dict[str, str] = {}  # job id -> verdict it was killed under (see _view_frame)
        self._busy: set[str] = set()  # job ids a kill is working on right now
        self._pending_plan: list[KillJob] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._page: TablePage | None = None
        self._order_cache = OrderCache()
        self._syncing = False  # set while a control is updated to match the query
        self._frame: pd.DataFrame = pd.DataFrame()
        self._closed = False
        self._lock = threading.RLock()
        self._figure_key: object = None
        #: wall-clock (monotonic) time of the last good refresh this dashboard saw
        self._fresh_at: float | None = None
        snapshot = self.tracker.snapshot
        if snapshot is not None and not snapshot.frame.empty:
            self._fresh_at = time.monotonic() - max(0.0, float(snapshot.age))
        self._advice_loaded = False

    def _first_paint(self) -> None:
        """Draw what is known before the first poll: a shared tracker's last snapshot, or
        Nextflow's tasks marked "asking AWS Batch", or a non-Batch run's tasks."""
        if self.not_batch is not None:
            self._render_nextflow_only()
        elif self.tracker.snapshot is not None:
            self._render()
        else:
            self._render_header(loading=True)
            self._frame = provisional_frame(getattr(self.tracker.run, "tasks", None))
            if not self._frame.empty:
                self._render_table()

    # --- building ------------------------------------------------------------------------

    def _build(self) -> None:
        """Every widget, built in the order they are displayed (see ``_layout_children``)."""
        self._build_summary()
        self._build_actions()
        self._build_table_controls()
        self._build_table()
        self._build_panels()

    def _build_summary(self) -> None:
        """The header card, the alert line, the verdict chips and the waste line."""
        W = widgets
        self.style_html = W.HTML(TABLE_CSS + DASHBOARD_CSS, layout=W.Layout(display="none"))
        self.header = W.HTML()
        self.header.add_class("bk-header")
        # Alerts from outside the tracker (the launcher's watchdog): empty until raised.
        self.alert = W.HTML()
        self.alert.add_class("bk-alert")

        self.chips: dict[str, Any] = {}
        for key in FILTERS:
            chip = W.Button(description=key, tooltip=f"show {key} rows", layout=W.Layout(width="auto"))
            chip.add_class("bk-chip")
            chip.add_class(f"bk-chip-{key}")
            chip.on_click(self._chip_clicked(key))
            self.chips[key] = chip
        self.waste = W.HTML()
        self.waste.add_class("bk-waste-box")

    def _build_actions(self) -> None:
        """Kill all (with its confirmation and its progress), refresh and pause."""
        W = widgets
        self.refresh_button = W.Button(description="refresh now", icon="refresh", layout=W.Layout(width="130px"))
        self.refresh_button.add_class("bk-refresh")
        self.refresh_button.on_click(lambda _b: self._refresh_clicked())
        self.pause_button = W.ToggleButton(value=False, description="pause", icon="pause",
                                           layout=W.Layout(width="100px"))
        self.pause_button.add_class("bk-pause")
        self.pause_button.observe(self._pause_toggled, names="value")

        # Disabled until Batch has answered: there is nothing proven to kill before that.
        self.kill_all_button = W.Button(description="Kill all orphans", disabled=True, layout=W.Layout(width="auto"))
        self.kill_all_button.add_class("bk-kill-all")
        self.kill_all_button.on_click(self._kill_all_clicked)
        self.confirm_text = W.HTML(layout=W.Layout(flex="1 1 auto"))
        self.confirm_button = W.Button(description="Yes, kill them", layout=W.Layout(width="auto", flex="0 0 auto"))
        self.confirm_button.add_class("bk-confirm")
        self.confirm_button.on_click(self._confirm_clicked)
        self.cancel_button = W.Button(description="Cancel", layout=W.Layout(width="auto", flex="0 0 auto"))
        self.cancel_button.add_class("bk-cancel")
        self.cancel_button.on_click(self._cancel_clicked)
        self.confirm_panel = W.HBox(
            [self.confirm_text, self.confirm_button, self.cancel_button],
            layout=W.Layout(display="none", align_items="center", padding="6px", border="1px solid #e3b5b0"),
        )
        self.confirm_panel.add_class("bk-confirm-panel")
        self.kill_status = W.HTML()
        self.kill_status.add_class("bk-kill-status")
        # Stops a kill running in the background (batchkit.kills): shown only meanwhile.
        self.stop_kill_button = W.Button(description="Cancel kill", icon="stop", layout=W.Layout(width="auto", display="none"))
        self.stop_kill_button.add_class("bk-stop-kill")
        self.stop_kill_button.on_click(self._stop_kill_clicked)

    def _build_table_controls(self) -> None:
        """Filter, search, sort, reverse and the pager: each sets one field of the query."""
        W = widgets
        self.filter = W.Dropdown(
            options=[(f"verdict: {k}", k) for k in FILTERS], value=self.query.verdict,
            layout=W.Layout(width="170px"),
        )
        self.filter.add_class("bk-filter")
        self.search = W.Text(
            placeholder="search task name or job id", continuous_update=False,
            layout=W.Layout(width="auto", flex="1 1 160px", max_width="320px"),
        )
        self.search.add_class("bk-search")
        self.sort = W.Dropdown(
            options=[(f"sort: {SORT_LABELS[k]}", k) for k in SORT_KEYS], value=self.query.sort,
            layout=W.Layout(width="190px"),
        )
        self.sort.add_class("bk-sort")
        self.descending = W.ToggleButton(value=False, description="reverse", icon="sort",
                                         layout=W.Layout(width="90px"))
        self.descending.add_class("bk-reverse")
        self.prev_button = W.Button(description="◀ prev", layout=W.Layout(width="80px"))
        self.prev_button.add_class("bk-prev")
        self.next_button = W.Button(description="next ▶", layout=W.Layout(width="80px"))
        self.next_button.add_class("bk-next")
        self.page_info = W.HTML()
        self.page_info.add_class("bk-page-info")
        self.filter.observe(lambda c: self._set_query(verdict=c["new"]), names="value")
        self.search.observe(lambda c: self._set_query(search=c["new"]), names="value")
        self.sort.observe(lambda c: self._set_query(sort=c["new"]), names="value")
        self.descending.observe(lambda c: self._set_query(ascending=not c["new"]), names="value")
        self.prev_button.on_click(lambda _b: self._set_query(page=self.query.page - 1))
        self.next_button.on_click(lambda _b: self._set_query(page=self.query.page + 1))

    def _build_table(self) -> None:
        """One widget for the rows and their kill buttons (see _table_view)."""
        self.table = TableView(self._row_kill_requested, layout=widgets.Layout(width="100%"))
        self.table.add_class("bk-table-html")
        self.table.on_select(self._row_selected)
        self._row_listeners: list[Callable[[str], None]] = []

    def _build_panels(self) -> None:
        """The collapsible panels below the table: verdicts and waste, timelines, advice."""
        W = widgets
        self.timeline_out = W.Output()
        self.summary_out = W.Output()
        self.export_button = W.Button(description="export post-mortem (HTML)", icon="download", layout=W.Layout(width="auto"))
        self.export_button.add_class("bk-export")
        self.export_button.on_click(lambda _b: self._export_clicked())
        self.export_status = W.HTML()
        self.advice = W.HTML('<div class="bk-muted">Open to run the checks.</div>')
        self.advice.add_class("bk-advice")
        self.figures = W.Accordion(
            children=[
                W.VBox([self.summary_out, W.HBox([self.export_button, self.export_status])]),
                self.timeline_out,
                self.advice,
            ],
            titles=("Verdicts and waste", "Timelines: Nextflow beside Batch", "Advice"),
            selected_index=None,
        )
        self.figures.add_class("bk-figures")
        self.figures.observe(self._panel_opened, names="selected_index")

    def _layout_children(self) -> list[Any]:
        W = widgets
        chips = W.HBox([self.chips[k] for k in FILTERS], layout=W.Layout(flex_flow="row wrap"))
        chips.add_class("bk-chips")
        # The pager is one group: when the row is too narrow it moves down whole, never
        # leaving "next" alone on a line of its own.
        self.pager = W.HBox([self.prev_button, self.page_info, self.next_button],
                            layout=W.Layout(align_items="center", flex="0 0 auto"))
        self.pager.add_class("bk-pager")
        controls = W.HBox(
            [self.filter, self.search, self.sort, self.descending, self.pager],
            layout=W.Layout(flex_flow="row wrap", align_items="center"),
        )
        controls.add_class("bk-controls")
        actions = W.HBox(
            [self.kill_all_button, self.stop_kill_button, self.refresh_button, self.pause_button],
            layout=W.Layout(align_items="center", margin="4px 0"),
        )
        return [
            self.style_html, self.header, self.alert, chips, self.waste, actions, self.confirm_panel,
            self.kill_status, controls, self.table, self.figures,
        ]

    # --- public API -----------------------------------------------------------------------

    def on_row_selected(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(job_id)`` when the user clicks a row; returns an unsubscribe.

        The hook for panels that show one job in detail (an inspector): the table
        stays the dashboard's, the panel only listens.
        """
        self._row_listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._row_listeners:
                self._row_listeners.remove(callback)

        return unsubscribe

    def add_panel(self, title: str, widget: Any) -> None:
        """Add a collapsible panel below the table (after the figures and the advice)."""
        self.figures.children = (*self.figures.children, widget)
        self.figures.set_title(len(self.figures.children) - 1, title)

    def inspect(self, target: str, **attach: Any) -> Any:
        """Open the inspector below the table on ``target`` (a job id or task name).

        The first call attaches it (``batchkit.widgets.inspector.attach_inspector``; ``attach``
        goes there, e.g. ``endpoint_urls=incident.endpoint_urls``); from then on a row click
        opens it too. Returns the panel.
        """
        from batchkit.widgets.inspector import attach_inspector

        panel = getattr(self, "inspector", None)
        if panel is None:
            panel = self.inspector = attach_inspector(self, **attach)
        panel.show(target, self._frame)
        return panel

    def show_alert(self, text: str | None) -> None:
        """Show (or with None, clear) an alert above the table, e.g. from the watchdog."""
        self.alert.value = alert_html(text)

    @property
    def run(self) -> Any:
        """The run as the tracker last read it (a live run's files are re-read every poll)."""
        return self.tracker.run

    @property
    def interval(self) -> float:
        """Seconds between refreshes (settable; takes effect after the current wait)."""
        return float(self.tracker.interval)

    @interval.setter
    def interval(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"interval must be a positive number of seconds, not {seconds!r}")
        self.tracker.interval = float(seconds)

    @property
    def page(self) -> TablePage | None:
        """The page of rows currently shown."""
        return self._page

    @property
    def frame(self) -> pd.DataFrame:
        """The reconcile frame of the last good refresh (empty before the first one)."""
        return self._frame

    def refresh(self) -> None:
        """Poll Batch now (blocking) and redraw; the tracker's events do the redraw.

        For a run that did not use AWS Batch: read the run's files again, ask AWS nothing.
        """
        if self.not_batch is not None:
            self._reload_nextflow_only()
            return
        self.tracker.refresh()

    async def refresh_async(self) -> None:
        if self.not_batch is not None:
            await asyncio.to_thread(self._reload_nextflow_only)
            return
        await self.tracker.refresh_async()

    async def ready(self) -> None:
        """Wait for the first refresh (a cell that needs ``dash.frame`` awaits this first)."""
        if self.tracker.snapshot is None and self.not_batch is None:
            await self.tracker.refresh_async()

    def _refresh_clicked(self) -> None:
        if self.not_batch is not None:
            self._reload_nextflow_only()
            return
        self._spawn(self.tracker.refresh_async, self.tracker.refresh)

    def pause(self) -> None:
        """Stop polling until ``resume`` (the tracker keeps its state)."""
        self.pause_button.value = True

    def resume(self) -> None:
        self.pause_button.value = False

    @property
    def paused(self) -> bool:
        return bool(self.pause_button.value)

    def show(
        self, *, verdict: str | None = None, search: str | None = None, sort: str | None = None,
        page: int | None = None,
    ) -> None:
        """Set the table's filter, search, sort or page, as the controls do."""
        if verdict is not None:
            self.filter.value = verdict
        if search is not None:
            self.search.value = search
        if sort is not None:
            self.sort.value = sort
        if page is not None:
            self._set_query(page=page)

    def kill_orphans(self) -> Any:
        """Kill every killable orphan/untracked job now, blocking; returns the KillReport
        (None for a run that did not use AWS Batch: it has no Batch job to kill)."""
        if self.not_batch is not None:
            return None
        plan = self.tracker.plan(verdicts=list(KILL_ALL_VERDICTS))
        return self._kill_blocking(plan)

    async def kill_orphans_async(self) -> Any:
        """What "Kill all orphans" followed by "confirm" does; returns the KillReport."""
        if self.not_batch is not None:
            return None
        snapshot = self.tracker.snapshot
        if snapshot is None or snapshot.frame.empty:
            await self.tracker.refresh_async()
        plan = self.tracker.plan(verdicts=list(KILL_ALL_VERDICTS))
        return await self._kill_async(plan)

    async def wait_idle(self) -> None:
        """Wait for kills and refreshes the buttons started on this loop."""
        await wait_all(self._tasks)

    def close(self) -> None:
        """Stop refreshing (and the tracker, when the dashboard made it) and close the widgets."""
        # Not built (its __init__ raised, e.g. no region): ipywidgets' __del__ still calls close().
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._unsubscribe()
        if self._owns_tracker:
            self.tracker.close()
        for task in list(self._tasks):
            task.cancel()
        for child in self._all_widgets():
            child.close()
        super().close()

    def _all_widgets(self) -> list[Any]:
        return [
            self.style_html, self.header, self.alert, *self.chips.values(), self.waste, self.filter, self.search,
            self.sort, self.descending, self.prev_button, self.next_button, self.page_info,
            self.refresh_button, self.pause_button, self.kill_all_button, self.stop_kill_button, self.confirm_text,
            self.confirm_button, self.cancel_button, self.confirm_panel, self.kill_status,
            self.table, self.timeline_out,
            self.summary_out, self.export_button, self.export_status, self.advice, self.figures,
        ]

    # --- events from the tracker ------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        if self._closed or self.not_batch is not None:
            return  # a shared tracker's events: a non-Batch run's view is Nextflow's alone
        if isinstance(event, self._Refreshed):
            self._fresh_at = time.monotonic()
        if isinstance(event, self._Refreshed | self._RefreshFailed):
            self._render()

    # --- rendering -----------------------------------------------------------------------------

    def _queue_sources(self) -> dict[str, str] | None:
        """Queue -> where it came from (given to the dashboard, the run's config/trace/log)."""
        if self.tracker.queues:
            return {str(q): "given to the Dashboard" for q in self.tracker.queues}
        run = self.run
        sources = dict(getattr(run, "queue_sources", None) or {})
        for queue in getattr(run, "queues", None) or []:
            sources.setdefault(str(queue), "the run")
        return sources

    def _render_nextflow_only(self) -> None:
        """A run that did not use AWS Batch: its tasks as Nextflow recorded them, nothing killable."""
        with self._lock:
            why = self.not_batch or ""
            self._frame = nextflow_only_frame(getattr(self.run, "tasks", None), "not an AWS Batch job: " + why)
            self._order_cache.clear()
            self._render_header()
            labels = chip_labels(verdict_counts({}, self._frame), len(self._frame))
            for key, chip in self.chips.items():
                chip.description = labels[key]
            self.waste.value = ""
            if self._frame.empty:
                self.table.value = '<div class="bk-empty">This run has no tasks yet.</div>'
            else:
                self._render_table()
            self.kill_all_button.description = "Nothing to kill on AWS Batch"
            self.kill_all_button.disabled = True
            self.pause_button.layout.display = "none"
            self.refresh_button.description = "re-read the run"

    def _reload_nextflow_only(self) -> None:
        try:
            self.tracker.run = self.run.reload()
        except Exception as exc:  # a log being rewritten: keep the last view, say why
            log.warning("batchkit dashboard: could not re-read the run: %s", exc)
        self._render_nextflow_only()

    def _render_header(self, *, loading: bool = False) -> None:
        if self.not_batch is not None:
            self.header.value = header_html(
                run_name=getattr(self.run, "name", None),
                run_state=getattr(self.run, "state", None),
                abort_cause=getattr(self.run, "abort_cause", None),
                health=("bk-muted", ""),
                age=None,
                year_note=str(getattr(self.run, "year_note", "") or ""),
                not_batch=self.not_batch,
            )
            return
        snapshot = self.tracker.snapshot
        run_state = getattr(snapshot, "run_state", None) or getattr(self.run, "state", None)
        health = api_health(
            getattr(snapshot, "client_stats", None),
            degraded=bool(getattr(snapshot, "degraded", False)),
            error=getattr(snapshot, "error", None),
        )
        has_data = snapshot is not None and not snapshot.frame.empty
        self.header.value = header_html(
            run_name=getattr(self.run, "name", None),
            run_state=run_state,
            abort_cause=getattr(self.run, "abort_cause", None),
            health=health,
            age=None if self._fresh_at is None or not has_data else time.monotonic() - self._fresh_at,
            paused=self.paused,
            loading=loading or (snapshot is None),
            taken_at=getattr(snapshot, "taken_at", None) if has_data else None,
            region=self.region,
            queues=self._queue_sources(),
            year_note=str(getattr(self.run, "year_note", "") or ""),
        )

    def _render(self) -> None:
        with self._lock:
            snapshot = self.tracker.snapshot
            self._render_header()
            if snapshot is None or (snapshot.frame.empty and self._frame.empty):
                if snapshot is not None and not snapshot.degraded:
                    self.table.value = '<div class="bk-empty">This run has no tasks and no Batch jobs yet.</div>'
                self._update_kill_all()
                return
            if not snapshot.frame.empty and snapshot.frame is not self._frame:
                self._frame = snapshot.frame
                self._order_cache.clear()
            frame = self._frame
            view = self._view_frame()
            counts = verdict_counts({}, view)
            labels = chip_labels(counts, len(view))
            for key, chip in self.chips.items():
                chip.description = labels[key]
                active = key == self.query.verdict
                if active and "bk-chip-active" not in chip._dom_classes:
                    chip.add_class("bk-chip-active")
                elif not active and "bk-chip-active" in chip._dom_classes:
                    chip.remove_class("bk-chip-active")
            hours, cost = waste_numbers(frame, snapshot.summary or {})
            self.waste.value = waste_html(hours, cost, len(killable_rows(view)))
            self._render_table(view)
            self._update_kill_all()
            self._redraw_open_panel()

    def _view_frame(self) -> pd.DataFrame:
        """The frame everything shows: reconcile's rows, with batchkit's kills as ``killed``.

        The badge, the chips, the filter and the reason all read this one frame, so a
        row has one verdict at any moment. A killed row keeps its place in the default
        order (see ``table_model.SEVERITY``): the next click on the same spot hits the same job.
        """
        return overlay_kills(self._frame, self._kill_records())

    def _kill_records(self) -> dict[str, KillRecord]:
        """Jobs batchkit killed for this run: the ledger's audit, and this session's marks."""
        records: dict[str, KillRecord] = {}
        ledger = getattr(self.tracker, "ledger", None)
        if ledger is not None:
            try:
                rows = ledger.kills(self.tracker.run_name)
            except Exception:  # the audit is decoration here: never break the table
                log.exception("batchkit dashboard: could not read the kill ledger")
                rows = []
            for row in rows:
                if row.get("finished_at") and row.get("outcome") in {"terminated", "cancelled"}:
                    at = pd.Timestamp(row["finished_at"])
                    records[str(row["job_id"])] = KillRecord(
                        verdict=str(row.get("verdict") or "orphan"),
                        at=at.tz_localize("UTC") if at.tzinfo is None else at,
                        verified=row.get("verified_status"),
                    )
        for job_id, mark in self.marks.items():
            if mark == "killed" and job_id not in records:
                records[job_id] = KillRecord(verdict=self._pinned.get(job_id, "orphan"))
        return records

    def _render_table(self, view: pd.DataFrame | None = None) -> None:
        view = self._view_frame() if view is None else view
        # Paging reuses the sorted order of this frame; an overlaid view is a fresh frame.
        page = select(view, self.query, self._order_cache if view is self._frame else None)
        self._page = page
        self.query = page.query
        html_text = render_table(page, self.marks, actions=True, busy=self._busy)
        if self.table.value != html_text:
            self.table.value = html_text
        self.page_info.value = f'<span class="bk-muted">{escape_html(page_label(page))}</span>'
        self.prev_button.disabled = page.page <= 0
        self.next_button.disabled = page.page >= page.n_pages - 1

    def _update_kill_all(self) -> None:
        label, n = kill_all_label(self._frame, exclude=frozenset(self.marks))
        busy = bool(self._busy)
        if not busy:
            self.kill_all_button.description = label
        self.kill_all_button.disabled = busy or n == 0 or self.confirm_panel.layout.display != "none"

    def _set_query(self, **changes: Any) -> None:
        if self._syncing:
            return  # the dropdown echoing a chip click: already applied
        self.query = self.query.with_(**changes)
        for key, chip in self.chips.items():
            active = key == self.query.verdict
            if active:
                chip.add_class("bk-chip-active")
            else:
                chip.remove_class("bk-chip-active")
        if self.filter.value != self.query.verdict:
            self._syncing = True
            try:
                self.filter.value = self.query.verdict
            finally:
                self._syncing = False
        if not self._frame.empty:
            with self._lock:
                self._render_table()

    def _chip_clicked(self, key: str) -> Callable[[Any], None]:
        def clicked(_button: Any) -> None:
            self._set_query(verdict=key)

        return clicked

    def _pause_toggled(self, change: Mapping[str, Any]) -> None:
        if change["new"]:
            self.tracker.pause()
            self.pause_button.description, self.pause_button.icon = "resume", "play"
        else:
            self.tracker.resume()
            self.pause_button.description, self.pause_button.icon = "pause", "pause"
        self._render_header()

    # --- panels: figures and advice ----------------------------------------------------------

    def _panel_opened(self, change: Mapping[str, Any]) -> None:
        self._figure_key = None
        self._redraw_open_panel()

    def _redraw_open_panel(self) -> None:
        index = self.figures.selected_index
        if index is None or index > 2 or (self._frame.empty and index != 2):
            return  # closed, a panel added with add_panel (it draws itself), or no data yet
        if index == 2:
            if not self._advice_loaded:
                self._advice_loaded = True
                self._load_advice()
            return
        frame = self._view_frame()  # the verdicts the table shows, killed rows included
        # Redraw only when what the figure shows changed: a 10,000-task timeline is
        # megabytes of JSON, not something to resend every poll. The summary shows the
        # waste: redrawn when it moves by a hundredth, so it matches the waste line.
        hours, _cost = waste_numbers(self._frame, {})
        key = (index, len(frame), tuple(sorted(verdict_counts({}, frame).items())),
               tuple(frame[JobCol.STATUS].astype("string").fillna("").value_counts().sort_index().items())
               if JobCol.STATUS in frame.columns else (),
               round(hours, 2) if index == 0 else None)
        if key == self._figure_key:
            return
        self._figure_key = key
        from batchkit import figures

        out = self.summary_out if index == 0 else self.timeline_out
        snapshot = self.tracker.snapshot
        if index == 0:
            fig = figures.summary_figure(frame)
        else:
            fig = figures.timeline_figure(
                frame, now=getattr(snapshot, "taken_at", None),
                run_end=getattr(self.run, "end_time", None),
            )
        # Set the Output's content directly (not `with out: display(fig)`): no dependence
        # on IPython's display hook or plotly's default renderer, same bytes everywhere.
        out.outputs = (figure_output(fig),)
        note = str(getattr(self.run, "year_note", "") or "")
        if index == 1 and note:  # the timeline shows the log's times: say their year is a guess
            out.outputs = (*out.outputs, {
                "output_type": "display_data", "metadata": {},
                "data": {"text/html": f'<div class="bk-year-note bk-health-degraded">Times: {escape_html(note)}</div>',
                         "text/plain": f"Times: {note}"},
            })

    def _load_advice(self) -> None:
        self.advice.value = '<div class="bk-muted">Running the checks…</div>'
        try:
            from batchkit.doctor import doctor
        except ImportError:
            self.advice.value = '<div class="bk-muted">Advice needs batchkit.doctor, which this installation lacks.</div>'
            return

        def work() -> None:
            try:
                # The dashboard's queues, not only the log's: a run whose log names no
                # queue still has one when the dashboard was given queues=[...].
                # A run that did not use AWS Batch: the offline checks only, no client.
                client = None if self.not_batch is not None else self.tracker.client
                findings = doctor(self.run, client, queues=self.tracker.queues or None)
            except Exception as exc:  # advice is optional: say why it is missing, keep the rest up
                log.exception("batchkit dashboard: doctor failed")
                self.advice.value = f'<div class="bk-health-failing">The checks failed: {escape_html(exc)}</div>'
                return
            self.advice.value = advice_html(findings)

        # doctor() asks AWS about queues and compute environments: keep the loop free.
        run_off_loop(work, self._tasks)

    def _export_clicked(self) -> None:
        from batchkit.figures import export_html

        if self.not_batch is not None:
            self.export_status.value = (
                '<span class="bk-muted">No post-mortem: it compares Nextflow with AWS Batch, '
                "and this run did not use AWS Batch.</span>"
            )
            return
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(getattr(self.run, "name", "") or "run"))
        path = Path.cwd() / f"batchkit-{name}-postmortem.html"
        try:
            export_html(self, path)
        except Exception as exc:  # a failed export must not break the dashboard
            self.export_status.value = f'<span class="bk-health-failing">export failed: {escape_html(exc)}</span>'
            return
        self.export_status.value = f'<span class="bk-muted">saved {escape_html(path)}</span>'

    # --- killing -------------------------------------------------------------------------------

    def _row_kill_requested(self, job_id: str) -> None:
        """A row's own Kill button: kill that job (the entry point of every per-row kill)."""
        if self.not_batch is not None:
            return  # no row of a non-Batch run has a Kill button; a forged message kills nothing
        if job_id in self._busy or self.marks.get(job_id) in {"pending", "killed", "already_done"}:
            return  # a double click, or a row already dealt with: harmless
        # The button is drawn for killable rows only; a click names that row, not the job
        # itself: a job the current snapshot does not prove killable (a neighbour in the
        # work dir, a row that changed under a refresh) is never a "named kill" from here
        # (issue #15: naming a neighbour is `kill --job`'s, on purpose).
        plan = [job for job in self.tracker.plan(job_ids=[job_id]) if job.job_id in self._killable_ids()]
        if not plan:
            self.kill_status.value = (
                f'<span class="bk-muted">Job {escape_html(job_id)} is no longer killable '
                "(it finished, or the ledger shows it killed).</span>"
            )
            self._render_table()
            return
        self.marks.pop(job_id, None)  # a retry after a failed kill
        self._start_kill(plan)

    def _killable_ids(self) -> set[str]:
        snapshot = self.tracker.snapshot
        if snapshot is None or not snapshot.has_result or snapshot.frame.empty:
            return set()
        frame = snapshot.frame
        killable = frame[RecCol.KILLABLE].fillna(False).to_numpy(dtype=bool)
        return set(frame.loc[killable, JobCol.JOB_ID].dropna().astype(str))

    def _row_selected(self, job_id: str) -> None:
        for listener in list(self._row_listeners):
            try:
                listener(job_id)
            except Exception:  # a panel's bug must not break the table
                log.exception("batchkit dashboard: a row listener failed")

    def _kill_all_clicked(self, _button: Any) -> None:
        if self._busy or self.not_batch is not None:
            return
        plan = [job for job in self.tracker.plan(verdicts=list(KILL_ALL_VERDICTS)) if job.job_id not in self.marks]
        if not plan:
            self.kill_status.value = '<span class="bk-muted">No orphans to kill.</span>'
            return
        # What the user confirms is exactly what gets killed: keep this plan.
        self._pending_plan = plan
        self.confirm_text.value = plan_text(plan, getattr(self.run, "name", None))
        self.confirm_button.description = f"Yes, kill {len(plan):,} job{'s' if len(plan) != 1 else ''}"
        self.confirm_button.disabled = False
        self.confirm_panel.layout.display = "flex"
        self.kill_all_button.disabled = True

    def _confirm_clicked(self, _button: Any) -> None:
        plan, self._pending_plan = self._pending_plan, []
        self.confirm_button.disabled = True
        self.confirm_panel.layout.display = "none"
        if plan:
            self._start_kill(plan)
        else:
            self._update_kill_all()

    def _cancel_clicked(self, _button: Any) -> None:
        self._pending_plan = []
        self.confirm_panel.layout.display = "none"
        self.kill_status.value = '<span class="bk-muted">Nothing was killed.</span>'
        self._update_kill_all()

    def _start_kill(self, plan: list[KillJob]) -> None:
        """Start a kill in the background and return at once (with or without a loop).

        The kill executor runs in its own thread; its progress, and its end, come back on
        the kernel's loop when there is one. ``wait_kill`` (or ``wait_idle`` on a loop)
        waits for it; the Cancel button stops it between calls.
        """
        if not plan:
            return
        self._begin(plan)
        loop = running_loop()
        finished = threading.Event()
        future: asyncio.Future[Any] | None = loop.create_future() if loop is not None else None
        if future is not None:
            self._tasks.add(future)
            future.add_done_callback(self._tasks.discard)

        def done(report: Any, error: BaseException | None) -> None:
            try:
                self._finish(plan, report, error)
            finally:
                finished.set()
                if future is not None and not future.done():
                    future.set_result(report)

        self._kill_finished = finished
        self._kill_handle = self.tracker.start_kill(plan, on_status=self._progress, on_done=done, loop=loop)

    def wait_kill(self, timeout: float | None = None) -> Any:
        """Block until the background kill (if any) has ended and been drawn; its report."""
        finished = getattr(self, "_kill_finished", None)
        if finished is not None:
            finished.wait(timeout)
        handle = getattr(self, "_kill_handle", None)
        return None if handle is None else handle.report

    def _stop_kill_clicked(self, _button: Any) -> None:
        """Cancel: what was sent stays sent in the ledger, the rest pending; the next kill
        (or the next dashboard on this launch dir) finishes it."""
        handle = getattr(self, "_kill_handle", None)
        if handle is None or handle.done():
            return
        handle.cancel()
        self.stop_kill_button.disabled = True
        self.stop_kill_button.description = "Cancelling…"

    def _spawn(self, coroutine: Callable[[], Awaitable[Any]], blocking: Callable[[], Any]) -> None:
        """Run on the kernel's loop when there is one (the cell returns at once), else inline."""
        loop = running_loop()
        if loop is None:
            blocking()
            return
        task = asyncio.ensure_future(coroutine())
        self._tasks.add(task)

        def done(t: asyncio.Future[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("batchkit dashboard: background action failed", exc_info=t.exception())

        task.add_done_callback(done)

    def _begin(self, plan: Sequence[KillJob]) -> None:
        ids = [job.job_id for job in plan]
        # The user's filter stays, and the rows it shows now stay in it when they turn
        # "killed", so the user sees what became of them (until the filter changes).
        self.query = keep_in_view(self._view_frame(), self.query, ids)
        self._busy.update(ids)
        for job in plan:
            self.marks[job.job_id] = "pending"
            self._pinned[job.job_id] = job.verdict
        self.kill_all_button.disabled = True
        self.kill_all_button.description = f"Killing 0/{len(ids):,}…"
        self.kill_status.value = f'<span class="bk-muted bk-kill-progress">Terminating {len(ids):,} job(s)…</span>'
        self.stop_kill_button.disabled = False
        self.stop_kill_button.description = "Cancel kill"
        self.stop_kill_button.layout.display = None
        if not self._frame.empty:
            self._render_table()

    def _progress(self, status: Any) -> None:
        """A kill's progress (``kills.KillStatus``): the button, the line, the header."""
        if self._closed:
            return
        self.kill_all_button.description = f"Killing {status.done:,}/{status.total:,}…"
        failing = getattr(status, "failing_since", None) is not None
        css = "bk-health-degraded" if failing else "bk-muted"
        self.kill_status.value = f'<span class="{css} bk-kill-progress">{escape_html(status.line())}</span>'
        # The tracker keeps the snapshot's client stats current while the kill runs, so the
        # header's "degraded" line counts the kill's failures too.
        with contextlib.suppress(Exception):  # decoration: never break a kill over it
            self._render_header()

    def _finish(self, plan: Sequence[KillJob], report: Any = None, error: BaseException | None = None) -> None:
        for job in plan:
            self._busy.discard(job.job_id)
        self.stop_kill_button.layout.display = "none"
        if self._closed:
            return
        if error is not None or report is None:
            for job in plan:
                if self.marks.get(job.job_id) == "pending":
                    del self.marks[job.job_id]
            self.kill_status.value = (
                f'<span class="bk-health-failing">The kill stopped: {escape_html(error)}. '
                "The ledger kept every intent; press the button again to finish.</span>"
            )
        else:
            for job, outcome, verified in report.outcomes:
                self.marks[job.job_id] = outcome_mark(str(outcome.outcome), verified)
            for job in report.skipped:
                self.marks[job.job_id] = "killed"
            for job in plan:  # pending in the ledger: killable again, the next kill finishes it
                if self.marks.get(job.job_id) == "pending":
                    del self.marks[job.job_id]
            text = outcome_rows_html(report.outcomes, report.summary())
            if report.error is not None:
                text = f'<div class="bk-health-failing">{escape_html(report.error)}</div>' + text
            if report.pending:
                why = report.pending[0][1]
                text += (
                    f'<div class="bk-muted bk-kill-pending">{len(report.pending):,} kill(s) pending in the '
                    f"ledger ({escape_html(why)}): press the button again to finish them.</div>"
                )
            self.kill_status.value = text
        self._render()

    def _kill_blocking(self, plan: list[KillJob]) -> Any:
        if not plan:
            return None
        self._begin(plan)
        try:
            report = self.tracker.kill(plan, on_status=self._progress)
        except Exception as exc:
            self._finish(plan, error=exc)
            raise
        self._finish(plan, report)
        return report

    async def _kill_async(self, plan: list[KillJob]) -> Any:
        if not plan:
            return None
        self._begin(plan)
        try:
            report = await self.tracker.kill_async(plan, on_status=self._progress)
        except Exception as exc:
            self._finish(plan, error=exc)
            raise
        self._finish(plan, report)
        return report


__all__ = ["Dashboard"]
