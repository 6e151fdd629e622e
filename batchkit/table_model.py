"""The side-by-side table of a reconcile frame, as pure functions: the dashboard draws it
live and the HTML post-mortem (``figures.export_html``) draws the same rows, so both import
this module and the figures never import the widgets.

``select(frame, query)`` filters, searches, sorts and pages; ``render_table(page)``
turns the one visible page into escaped HTML. Nothing here imports ipywidgets or
touches the network, so a 100,000-row run costs one vectorised pandas pass per
refresh and the browser only ever receives ``page_size`` rows.

Every piece of text is HTML-escaped: task names come from pipeline parameters
(``tag`` is user input), and Batch's status reasons are free text. ``escape_html`` is the
one escaping helper; the dashboard's header and the inspector's HTML use it too.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from batchkit.schema import MISMATCH_VERDICTS, VERDICTS, JobCol, RecCol, TaskCol

#: Verdict filter values besides the verdicts themselves.
FILTER_ALL: Final = "all"
FILTER_MISMATCHES: Final = "mismatches"
#: The view's own verdict for a row batchkit killed (ledger: terminated or cancelled).
#: Not a reconcile verdict: after the kill Batch says FAILED while Nextflow's record is
#: unchanged, and reconcile would call the row "stale" or "ok" — true, but the one thing
#: a user needs to read there is that batchkit killed it, when, and what Batch confirmed.
KILLED: Final = "killed"
#: The view's column holding the verdict a killed row had when batchkit killed it (orphan,
#: untracked): the row sorts as that, so it keeps its place in the table.
KILLED_FROM: Final = "killed_from"
FILTERS: Final[tuple[str, ...]] = (FILTER_ALL, FILTER_MISMATCHES, *VERDICTS, KILLED)

SORT_KEYS: Final[tuple[str, ...]] = ("severity", "task", "waste", "submit", "batch_status", "nf_status")
SORT_LABELS: Final[dict[str, str]] = {
    "severity": "mismatch first",
    "task": "task name",
    "waste": "waste",
    "submit": "submitted",
    "batch_status": "Batch state",
    "nf_status": "Nextflow state",
}

#: Most urgent first: what is burning money now, then what is merely inconsistent.
SEVERITY: Final[dict[str, int]] = {
    # A killed row sorts as what it was killed as (``KILLED_FROM``), else with the orphans.
    KILLED: 0,
    "orphan": 0,
    "untracked": 1,
    "disagree": 2,
    "stale": 3,
    "vanished": 4,
    "ok": 5,
}



@dataclass(frozen=True, slots=True)
class TableQuery:
    """What the user asked the table to show."""

    verdict: str = FILTER_ALL
    search: str = ""
    sort: str = "severity"
    ascending: bool = True
    page: int = 0
    page_size: int = 50
    #: Job ids shown whatever the filter: rows the user acted on in this view (see
    #: ``keep_in_view``), kept until the filter or the search changes.
    keep: frozenset[str] = frozenset()

    def with_(self, **changes: Any) -> TableQuery:
        """A copy with ``changes``; a new filter, search or sort starts again at page 0,
        and a new filter or search lets go of the rows kept in view."""
        if changes.keys() & {"verdict", "search", "sort", "ascending", "page_size"}:
            changes.setdefault("page", 0)
        if any(key in changes and changes[key] != getattr(self, key) for key in ("verdict", "search")):
            changes.setdefault("keep", frozenset())
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class TablePage:
    """One page of rows and where it sits in the filtered whole."""

    rows: pd.DataFrame
    total: int  # rows matching the filter and search
    page: int  # clamped to the pages that exist
    n_pages: int
    query: TableQuery
    killable_ids: tuple[str, ...] = field(default=())  # job ids on this page that may be killed
    kept: int = 0  # rows shown only because they are kept in view (query.keep), not by the filter

    @property
    def first(self) -> int:
        """1-based index of the first row shown (0 when nothing matches)."""
        return 0 if self.total == 0 else self.page * self.query.page_size + 1

    @property
    def last(self) -> int:
        return min(self.total, (self.page + 1) * self.query.page_size)


def column_text(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as plain strings with missing values as ''; absent columns read as empty."""
    if column not in frame.columns:
        return pd.Series([""] * len(frame), index=frame.index, dtype="object")
    return frame[column].astype("string").fillna("")


def _filter_mask(frame: pd.DataFrame, query: TableQuery) -> pd.Series:
    """Rows the query's verdict filter and search match, and the rows it keeps in view."""
    mask = pd.Series(True, index=frame.index)
    if query.verdict == FILTER_MISMATCHES:
        mask &= column_text(frame, RecCol.VERDICT).isin(sorted(MISMATCH_VERDICTS))
    elif query.verdict != FILTER_ALL:
        mask &= column_text(frame, RecCol.VERDICT) == query.verdict
    needle = query.search.strip().lower()
    if needle:
        # Search the task name and both ids: people paste a job id from the console.
        hay = (
            column_text(frame, TaskCol.NAME).str.lower()
            + "\x00"
            + column_text(frame, JobCol.JOB_ID).str.lower()
            + "\x00"
            + column_text(frame, JobCol.JOB_NAME).str.lower()
        )
        mask &= hay.str.contains(needle, regex=False)
    if query.keep:
        mask |= column_text(frame, JobCol.JOB_ID).isin(sorted(query.keep))
    return mask


def _kept_only(frame: pd.DataFrame, query: TableQuery) -> int:
    """How many rows the query shows only because it keeps them in view."""
    if not query.keep:
        return 0
    kept = frame.loc[column_text(frame, JobCol.JOB_ID).isin(sorted(query.keep)).to_numpy(dtype=bool)]
    return int((~_filter_mask(kept, replace(query, keep=frozenset()))).sum())


def keep_in_view(frame: pd.DataFrame, query: TableQuery, job_ids: Iterable[str]) -> TableQuery:
    """``query``, keeping those of ``job_ids`` it shows in ``frame`` now in view until its
    filter or search changes.

    A user who kills rows in a filtered view ("orphan") must see what became of them:
    once killed, a row's verdict is ``killed`` and the filter alone would drop it, leaving
    the rows the user just acted on gone from under the mouse, or an empty table.
    """
    wanted = {str(j) for j in job_ids}
    if not wanted or frame.empty or JobCol.JOB_ID not in frame.columns:
        return query
    ids = column_text(frame, JobCol.JOB_ID)
    candidates = frame.loc[ids.isin(sorted(wanted)).to_numpy(dtype=bool)]
    shown = set(column_text(candidates, JobCol.JOB_ID)[_filter_mask(candidates, query).to_numpy(dtype=bool)])
    if shown <= query.keep:
        return query
    return replace(query, keep=query.keep | frozenset(shown))


def _codes(values: pd.Series) -> np.ndarray:
    """Integer ranks of strings in lexical order (equal strings, equal ranks)."""
    codes: np.ndarray = np.asarray(pd.Categorical(values).codes, dtype=np.int64)
    return codes


def _severity(frame: pd.DataFrame) -> np.ndarray:
    """Each row's rank in ``SEVERITY``. A killed row ranks as the verdict it was killed
    under: it does not jump away under the mouse, and the next click on the same spot
    hits the same job."""
    verdict = column_text(frame, RecCol.VERDICT)
    if KILLED_FROM in frame.columns:
        was = column_text(frame, KILLED_FROM)
        verdict = verdict.where((verdict != KILLED) | (was == ""), was)
    severity: np.ndarray = verdict.map(SEVERITY).fillna(len(SEVERITY)).to_numpy(dtype=np.int64)
    return severity


def _order(frame: pd.DataFrame, query: TableQuery) -> np.ndarray:
    """Row positions of ``frame`` in the order ``query`` asks for.

    One ``np.lexsort`` over integer keys: sorting 100,000 rows on string columns with
    ``DataFrame.sort_values`` costs ten times more. The sort is stable and ends on the
    task name and job id, so equal keys keep one order between refreshes (rows that
    jump around while the user reads them are worse than any order).
    """
    severity = _severity(frame)
    name = _codes(column_text(frame, TaskCol.NAME).str.lower())
    job = _codes(column_text(frame, JobCol.JOB_ID))
    primary: np.ndarray
    if query.sort == "task":
        primary = name
    elif query.sort == "waste":
        waste = (
            pd.to_numeric(frame[RecCol.WASTE_VCPU_H], errors="coerce").astype("float64").fillna(0.0)
            if RecCol.WASTE_VCPU_H in frame.columns
            else pd.Series(0.0, index=frame.index)
        )
        # "ascending" on waste means the biggest first: that is what anyone sorting by waste wants.
        primary = -waste.to_numpy(dtype=np.float64)
    elif query.sort == "submit" and TaskCol.SUBMIT in frame.columns:
        submit = pd.to_datetime(frame[TaskCol.SUBMIT], utc=True, errors="coerce")
        ns = submit.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        primary = np.where(submit.isna().to_numpy(), np.iinfo(np.int64).max, ns)
    elif query.sort == "submit":
        primary = name
    elif query.sort == "batch_status":
        primary = _codes(column_text(frame, JobCol.STATUS))
    elif query.sort == "nf_status":
        primary = _codes(column_text(frame, RecCol.NF_STATUS))
    else:
        primary = severity
    if not query.ascending:
        primary = -primary
    # np.lexsort: the LAST key is the primary one.
    order: np.ndarray = np.lexsort((job, name, severity, primary))
    return order


class OrderCache:
    """The filtered, sorted row positions of one frame, per query (paging reuses them).

    Belongs to one frame: make a new one (or ``clear``) when the frame changes.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str, bool, frozenset[str]], np.ndarray] = {}

    @staticmethod
    def _key(query: TableQuery) -> tuple[str, str, str, bool, frozenset[str]]:
        return (query.verdict, query.search.strip().lower(), query.sort, query.ascending, query.keep)

    def get(self, query: TableQuery) -> np.ndarray | None:
        return self._entries.get(self._key(query))

    def put(self, query: TableQuery, positions: np.ndarray) -> None:
        if len(self._entries) > 16:  # a handful of recent views is all paging needs
            self._entries.clear()
        self._entries[self._key(query)] = positions

    def clear(self) -> None:
        self._entries.clear()


def select(frame: pd.DataFrame, query: TableQuery, cache: OrderCache | None = None) -> TablePage:
    """Filter, search, sort and cut one page out of a reconcile frame.

    ``cache`` (for this very frame) keeps the sorted positions, so turning pages costs
    one ``iloc`` of ``page_size`` rows.
    """
    size = max(1, int(query.page_size))
    if size != query.page_size:
        query = replace(query, page_size=size)
    positions = cache.get(query) if cache is not None else None
    if positions is None:
        mask = _filter_mask(frame, query).to_numpy(dtype=bool)
        matching = np.flatnonzero(mask)
        positions = matching[_order(frame.iloc[matching], query)] if len(matching) else matching
        if cache is not None:
            cache.put(query, positions)
    total = len(positions)
    n_pages = max(1, math.ceil(total / size))
    page = min(max(0, query.page), n_pages - 1)
    rows = frame.iloc[positions[page * size : (page + 1) * size]]
    killable: tuple[str, ...] = ()
    if RecCol.KILLABLE in rows.columns and JobCol.JOB_ID in rows.columns:
        flags = rows[RecCol.KILLABLE].astype("boolean").fillna(False).astype(bool)
        killable = tuple(str(j) for j in rows.loc[flags, JobCol.JOB_ID] if not pd.isna(j))
    return TablePage(
        rows=rows,
        total=total,
        page=page,
        n_pages=n_pages,
        query=replace(query, page=page),
        killable_ids=killable,
        kept=_kept_only(frame, query),
    )


# --- the kill overlay -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillRecord:
    """batchkit's kill of one job, as the ledger (or this session) recorded it."""

    verdict: str  # what the row was when it was killed (orphan, untracked)
    at: pd.Timestamp | None = None  # when the kill was answered
    verified: str | None = None  # Batch's state when batchkit described the job again


def killed_reason(record: KillRecord, batch_status: object) -> str:
    """'killed by batchkit at 08:12:03 UTC (was orphan); Batch confirmed FAILED'."""
    when = f" at {record.at.tz_convert('UTC'):%H:%M:%S} UTC" if record.at is not None else ""
    status = _cell(batch_status) or (record.verified or "")
    if status in {"FAILED", "SUCCEEDED"}:
        batch = f"Batch confirmed {status}"
    elif status:
        batch = f"Batch still says {status} (stopping)"
    else:
        batch = "Batch state not verified yet"
    return f"killed by batchkit{when} (was {record.verdict}); {batch}"


def overlay_kills(frame: pd.DataFrame, kills: dict[str, KillRecord]) -> pd.DataFrame:
    """``frame`` with every row batchkit killed shown as verdict ``killed``, with its reason
    (and the verdict it was killed under in ``KILLED_FROM``, which the sort reads).

    One verdict per row at any moment: the badge, the chips, the filter and the reason
    all read this frame, so they cannot disagree.
    """
    if not kills or frame.empty or JobCol.JOB_ID not in frame.columns:
        return frame
    ids = frame[JobCol.JOB_ID].astype("string")
    hit = ids.isin(list(kills)).fillna(False).to_numpy(dtype=bool)
    if not hit.any():
        return frame
    out = frame.copy()
    status = out[JobCol.STATUS] if JobCol.STATUS in out.columns else pd.Series(pd.NA, index=out.index)
    positions = np.flatnonzero(hit)
    verdict = out[RecCol.VERDICT].astype("string") if RecCol.VERDICT in out.columns else pd.Series(pd.NA, index=out.index, dtype="string")
    reason = out[RecCol.REASON].astype("string") if RecCol.REASON in out.columns else pd.Series(pd.NA, index=out.index, dtype="string")
    was = pd.Series(pd.NA, index=out.index, dtype="string")
    was.iloc[positions] = [kills[str(ids.iat[p])].verdict for p in positions]
    verdict.iloc[positions] = KILLED
    reason.iloc[positions] = [
        killed_reason(kills[str(ids.iat[p])], status.iat[p]) for p in positions
    ]
    out[RecCol.VERDICT] = verdict
    out[RecCol.REASON] = reason
    out[KILLED_FROM] = was
    if RecCol.KILLABLE in out.columns:
        killable = out[RecCol.KILLABLE].astype("boolean")
        killable.iloc[positions] = False
        out[RecCol.KILLABLE] = killable
    return out


# --- rendering ------------------------------------------------------------------------

#: Verdict -> accent colour, from JupyterLab's theme variables (with a fallback for
#: pages outside JupyterLab, like the exported post-mortem), so light and dark themes
#: both read. Mismatches get colour; "ok" stays plain so the eye goes to what is wrong.
VERDICT_ACCENTS: Final[dict[str, str]] = {
    "orphan": "var(--jp-error-color1, #d32f2f)",
    "untracked": "var(--jp-warn-color1, #f57c00)",
    "disagree": "var(--jp-accept-color-normal, #7b1fa2)",
    "stale": "var(--jp-warn-color2, #b7950b)",
    "vanished": "var(--jp-brand-color1, #1976d2)",
    "ok": "var(--jp-success-color1, #388e3c)",
    KILLED: "var(--jp-ui-font-color2, #616161)",
}

#: Plain colours of the same accents, for plotly (which cannot read CSS variables).
VERDICT_COLOURS: Final[dict[str, str]] = {
    "orphan": "#d32f2f",
    "untracked": "#f57c00",
    "disagree": "#8e44ad",
    "stale": "#b7950b",
    "vanished": "#1976d2",
    "ok": "#8a96a3",
    KILLED: "#757575",
}

#: Per-row kill states the dashboard overlays on rows while and after it kills, and their text.
KILL_MARK_TEXT: Final[dict[str, str]] = {
    "pending": "killing…",
    "killed": "killed",
    "already_done": "already finished",
    "failed": "kill failed",
}

_VERDICT_CSS: Final = "\n".join(
    f".bk-table tr.bk-{v} td {{ background: color-mix(in srgb, {accent} 13%, transparent); }}"
    f" .bk-table tr.bk-{v} td:first-child {{ box-shadow: inset 4px 0 0 {accent}; }}"
    f" .bk-table .bk-verdict-{v} {{ background: {accent}; }}"
    for v, accent in VERDICT_ACCENTS.items()
    if v != "ok"
)

TABLE_CSS: Final = f"""
<style>
.bk-table {{ border-collapse: collapse; width: 100%; table-layout: fixed;
  color: var(--jp-ui-font-color1, #1f2933);
  font: var(--jp-ui-font-size1, 13px)/1.35 var(--jp-ui-font-family, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif); }}
.bk-table th {{ box-sizing: border-box; text-align: left; padding: 6px 8px;
  background: var(--jp-layout-color2, #f4f5f7); color: var(--jp-ui-font-color1, #333); font-weight: 600;
  border-bottom: 2px solid var(--jp-border-color1, #d0d4da); white-space: normal; vertical-align: bottom; }}
.bk-table td {{ box-sizing: border-box; padding: 5px 8px;
  border-bottom: 1px solid var(--jp-border-color2, #e6e8eb); vertical-align: middle;
  overflow-wrap: anywhere; }}
.bk-table td.bk-task {{ font-weight: 500; }}
.bk-table .bk-sub {{ color: var(--jp-ui-font-color2, #777); font-size: 11px; margin-left: 6px; }}
.bk-table .bk-verdict {{ display: inline-block; min-width: 64px; padding: 1px 6px;
  border-radius: 9px; font-size: 11px; font-weight: 600; text-align: center;
  color: #fff; margin-right: 6px; }}
.bk-table tr.bk-killed td {{ color: var(--jp-ui-font-color2, #6b6b6b); }}
.bk-table tr.bk-killed td.bk-task {{ text-decoration: line-through; }}
.bk-table td.bk-act {{ text-align: right; white-space: nowrap; }}
.bk-table .bk-kill-row {{ font: inherit; font-size: 12px; font-weight: 600; padding: 2px 10px;
  border-radius: 4px; cursor: pointer; border: 1px solid {VERDICT_ACCENTS["orphan"]};
  color: {VERDICT_ACCENTS["orphan"]}; background: transparent; }}
.bk-table .bk-kill-row:hover:enabled {{ background: {VERDICT_ACCENTS["orphan"]}; color: #fff; }}
.bk-table .bk-kill-row:disabled {{ cursor: default; opacity: 0.7; }}
.bk-table span.bk-kill-row {{ border: none; cursor: default; color: var(--jp-ui-font-color2, #555); }}
.bk-table span.bk-kill-row.bk-killed-btn {{ color: {VERDICT_ACCENTS["ok"]}; }}
.bk-empty {{ padding: 18px; color: var(--jp-ui-font-color2, #666); font-style: italic; }}
{_VERDICT_CSS}
.bk-table .bk-verdict-ok {{ background: {VERDICT_ACCENTS["ok"]}; }}
.bk-table .bk-verdict-pending {{ background: var(--jp-ui-font-color3, #9aa5b1); }}
</style>
"""


#: The verdict of a row of a run that did not use AWS Batch: Nextflow's side alone, never asked of AWS.
NOT_BATCH: Final = "not batch"


def escape_html(value: object) -> str:
    """``value`` as text safe inside HTML, quotes too (so also in an attribute); None as ''."""
    return html.escape("" if value is None else str(value), quote=True)


def _cell(value: object) -> str:
    """Escaped text of one value; missing values (None, NaN, NA, NaT) as ''."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return escape_html(value)


def _int_or_none(value: object) -> int | None:
    if value is None or pd.isna(value):
        return None
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return None


def batch_state_text(batch_status: object, retries: object, job_id: object) -> str:
    """'RUNNING (2 attempts)', or what a missing job means (plain text, not escaped)."""
    status = _cell(batch_status)
    if not status:
        return "no such job" if _cell(job_id) else "no job"
    extra = _int_or_none(retries)
    attempts = 1 + (extra or 0)
    return f"{status} ({attempts} attempt{'s' if attempts != 1 else ''})"


def action_html(job_id: str, mark: str | None, killable: bool, busy: bool = False) -> str:
    """The row's own action cell: its Kill button, or what became of the kill.

    The button carries the job id: a click names the job itself, never a slot or a
    position, so a refresh that re-sorts the rows cannot redirect it.
    """
    jid = html.escape(job_id, quote=True)
    if mark == "failed":
        return (
            f'<button class="bk-kill-row bk-failed-btn" data-kill="{jid}" '
            f'title="the kill of {jid} failed: try again">kill failed · retry</button>'
        )
    if mark is not None:
        cls = "bk-killed-btn" if mark in {"killed", "already_done"} else "bk-pending-btn"
        return f'<span class="bk-kill-row {cls}">{html.escape(KILL_MARK_TEXT.get(mark, mark))}</span>'
    if killable and job_id:
        disabled = " disabled" if busy else ""
        return (
            f'<button class="bk-kill-row bk-can-kill" data-kill="{jid}" '
            f'title="terminate job {jid}"{disabled}>Kill</button>'
        )
    return ""


def _row_html(row: dict[str, object], mark: str | None, action: str | None) -> str:
    raw_verdict = row.get(RecCol.VERDICT)
    verdict = "ok" if raw_verdict is None or pd.isna(raw_verdict) or not raw_verdict else str(raw_verdict)
    verdict_cls = "pending" if verdict == NOT_BATCH else verdict if verdict in VERDICT_ACCENTS or verdict == "pending" else "ok"
    name = _cell(row.get(TaskCol.NAME)) or _cell(row.get(JobCol.JOB_NAME)) or "(unnamed)"
    job_id = _cell(row.get(JobCol.JOB_ID)) or _cell(row.get(TaskCol.NATIVE_ID))
    task_id = _int_or_none(row.get(TaskCol.TASK_ID))
    sub = f"#{task_id}" if task_id is not None else "no task"
    nf = _cell(row.get(RecCol.NF_STATUS)) or "no record"
    if verdict == "pending":  # the dashboard's first paint, before Batch has answered
        batch = "asking…"
    elif verdict == NOT_BATCH:  # a run on SLURM, local, …: its ids are not Batch jobs
        batch = "not a Batch job"
    else:
        batch = html.escape(
            batch_state_text(row.get(JobCol.STATUS), row.get(RecCol.BATCH_RETRIES), row.get(JobCol.JOB_ID))
        )
    reason = _cell(row.get(RecCol.REASON))
    classes = f"bk-row bk-{verdict_cls}"
    if mark is not None:
        classes += f" bk-mark-{mark}"
    if mark == "killed" or verdict == KILLED:
        classes += " bk-killed"
    full_task = f"{name} [{job_id}]" if job_id else name
    act = "" if action is None else f'<td class="bk-act">{action}</td>'
    return (
        f'<tr class="{classes}" data-job-id="{job_id}" data-verdict="{html.escape(verdict)}">'
        f'<td class="bk-task" title="{full_task}">{name}<span class="bk-sub">{html.escape(sub)}</span></td>'
        f'<td class="bk-nf">{nf}</td>'
        f'<td class="bk-batch" title="{job_id}">{batch}</td>'
        f'<td class="bk-why"><span class="bk-verdict bk-verdict-{verdict_cls}">'
        f"{html.escape(verdict)}</span>{reason}</td>"
        f"{act}</tr>"
    )


def render_table(
    page: TablePage,
    marks: dict[str, str] | None = None,
    *,
    actions: bool = False,
    busy: frozenset[str] | set[str] = frozenset(),
) -> str:
    """The page as one HTML ``<table>`` (style it with ``TABLE_CSS``).

    ``marks`` overlays kill progress by job id. With ``actions`` each row gets its own
    action cell (its Kill button, see ``action_html``), inside the row: no separate
    column of widgets to line up, so zoom, fonts and themes cannot misalign them.
    """
    marks = marks or {}
    cols = (
        '<col style="width:22%"><col style="width:11%"><col style="width:14%"><col style="width:44%">'
        '<col style="width:9%">'
        if actions
        else '<col style="width:30%"><col style="width:13%"><col style="width:17%"><col style="width:40%">'
    )
    head = (
        f'<table class="bk-table"><colgroup>{cols}</colgroup>'
        "<thead><tr><th>task</th><th>Nextflow state</th><th>Batch state (attempts)</th>"
        "<th>verdict and reason</th>" + ('<th class="bk-act">action</th>' if actions else "") + "</tr></thead><tbody>"
    )
    if page.total == 0:
        return head + '</tbody></table><div class="bk-empty">No task matches this filter.</div>'
    killable = set(page.killable_ids)
    body = []
    columns = list(page.rows.columns)
    for values in page.rows.itertuples(index=False, name=None):
        row = dict(zip(columns, values, strict=True))
        raw_id = row.get(JobCol.JOB_ID)
        job_id = "" if raw_id is None or pd.isna(raw_id) else str(raw_id)
        mark = marks.get(job_id) if job_id else None
        action = action_html(job_id, mark, job_id in killable, job_id in busy) if actions else None
        body.append(_row_html(row, mark, action))
    return head + "".join(body) + "</tbody></table>"


def page_label(page: TablePage) -> str:
    """'rows 51-100 of 1,234 · page 2 of 25' (plain text, with an en dash), and how many
    rows are kept in view when there are any."""
    if page.total == 0:
        return "no rows"
    kept = f" · {page.kept:,} kept in view until the filter changes" if page.kept else ""
    return (
        f"rows {page.first:,}–{page.last:,} of {page.total:,} · page {page.page + 1:,} of {page.n_pages:,}{kept}"
    )
