"""The task inspector's pure core: what one task or job looks like from every side.

No boto3, no files, no widgets. :mod:`batchkit.inspect` fetches the pieces (the Batch
job, the tail of its CloudWatch log, the tails of the task's work-dir files) and this
module assembles and renders them, and turns the work dir into a third witness for
reconcile rows.

Why the work dir is a witness: Nextflow's task wrapper (``.command.run``) writes its own
record next to the task — ``.command.begin`` when the task starts, ``.exitcode`` when the
script ends (nextflow-io/nextflow, ``modules/nextflow/src/main/resources/nextflow/executor/
command-run.txt``: ``on_exit`` writes ``$exit_status`` to ``.exitcode``; on AWS Batch the
wrapper copies it to the S3 work dir). When Nextflow still says RUNNING and Batch no longer
has the job (aged out, nextflow-io/nextflow#7301), or Nextflow logged ``exit: -`` because it
"Cannot read exitstatus", that file says how the task really ended. It explains a row; it
never proves ownership, so :func:`explain_with_workdir` only ever touches the ``reason``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd

from batchkit._time import from_epoch_ms
from batchkit.schema import JOB_ACTIVE, JobCol, RecCol, TaskCol
from batchkit.table_model import escape_html

__all__ = [
    "DEFAULT_LINES",
    "DEFAULT_TAIL_BYTES",
    "LOG_GROUP",
    "WORKDIR_FILES",
    "Attempt",
    "FileTail",
    "Inspection",
    "LogLine",
    "LogTail",
    "WorkdirEvidence",
    "attempts_of",
    "explain_with_workdir",
    "parse_exitcode",
    "render_html",
    "render_text",
    "tail_lines",
    "workdir_targets",
]

#: Log events shown by default (the tail of the attempt's CloudWatch stream).
DEFAULT_LINES: Final = 200
#: Bytes read from the end of each work-dir file by default: tails only, never the whole object.
DEFAULT_TAIL_BYTES: Final = 256 * 1024
#: AWS Batch sends container output to this group unless the job definition's logConfiguration
#: says otherwise ("Using the awslogs log driver", AWS Batch User Guide).
LOG_GROUP: Final = "/aws/batch/job"
#: The files Nextflow's task wrapper keeps in a task work dir, in the order shown.
WORKDIR_FILES: Final[tuple[str, ...]] = (
    ".exitcode",
    ".command.begin",
    ".command.err",
    ".command.out",
    ".command.log",
    ".command.sh",
    ".command.run",
)
#: Work dirs the reconcile witness looks at per call (two S3 GETs each at most).
DEFAULT_WITNESS_LIMIT: Final = 50
#: Rows whose verdict the work dir can explain.
WITNESS_VERDICTS: Final = frozenset({"stale", "vanished", "disagree"})

_EXIT_RE: Final = re.compile(r"^\s*(-?\d{1,10})\s*$")


def _clock(when: datetime | None) -> str:
    return f"{when:%Y-%m-%d %H:%M:%S} UTC" if when is not None else "-"


def _short_clock(when: datetime | None) -> str:
    return f" at {when:%H:%M} UTC" if when is not None else ""


def _nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- Batch attempts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a Batch job: a finished entry of ``attempts[]``, or the one running now."""

    index: int  # 1-based
    running: bool
    status_reason: str | None  # the attempt's statusReason ("Essential container in task exited")
    #: for the try that ended the job: the job's statusReason (a TerminateJob reason lands here)
    job_reason: str | None
    exit_code: int | None
    container_reason: str | None
    container_instance: str | None
    task_arn: str | None
    started_at: datetime | None
    stopped_at: datetime | None
    log_stream: str | None

    @property
    def reason(self) -> str:
        """The line a person reads for this try: who or what ended it."""
        parts = [p for p in (self.job_reason, self.status_reason, self.container_reason) if p]
        return " — ".join(dict.fromkeys(parts)) if parts else ("running" if self.running else "-")


def attempts_of(job: Mapping[str, Any]) -> list[Attempt]:
    """Every try of a DescribeJobs job dict, oldest first.

    Batch lists a try in ``attempts[]`` only once it has stopped; the try running now is
    described by the job's top-level ``container`` (its ``logStreamName`` appears there once
    the job is RUNNING — AWS Batch API reference, ContainerDetail.logStreamName). The job's
    own ``statusReason`` (where TerminateJob's reason ends up) is attached to the try that
    ended a finished job.
    """
    raw = job.get("attempts")
    listed = [a for a in raw if isinstance(a, Mapping)] if isinstance(raw, list) else []
    status = str(job.get("status") or "")
    terminal = status in ("SUCCEEDED", "FAILED")
    job_reason = _nonempty_str(job.get("statusReason"))
    out: list[Attempt] = []
    for i, att in enumerate(listed, start=1):
        c = _mapping(att.get("container"))
        last = i == len(listed)
        out.append(
            Attempt(
                index=i,
                running=False,
                status_reason=_nonempty_str(att.get("statusReason")),
                job_reason=job_reason if (terminal and last) else None,
                exit_code=_int_or_none(c.get("exitCode")),
                container_reason=_nonempty_str(c.get("reason")),
                container_instance=_nonempty_str(c.get("containerInstanceArn")),
                task_arn=_nonempty_str(c.get("taskArn")),
                started_at=from_epoch_ms(att.get("startedAt")),
                stopped_at=from_epoch_ms(att.get("stoppedAt")),
                log_stream=_nonempty_str(c.get("logStreamName")),
            )
        )
    if status in ("STARTING", "RUNNING"):
        c = _mapping(job.get("container"))
        out.append(
            Attempt(
                index=len(listed) + 1,
                running=True,
                status_reason=None,
                job_reason=job_reason,
                exit_code=None,  # while a retry runs, container.exitCode may still be the last try's
                container_reason=None,
                container_instance=_nonempty_str(c.get("containerInstanceArn")),
                task_arn=_nonempty_str(c.get("taskArn")),
                started_at=from_epoch_ms(job.get("startedAt")),
                stopped_at=None,
                log_stream=_nonempty_str(c.get("logStreamName")),
            )
        )
    return out


# --- log and file tails ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogLine:
    timestamp: datetime | None
    message: str


@dataclass(frozen=True, slots=True)
class LogTail:
    """The last lines of one CloudWatch log stream; ``earlier_token`` pages further back."""

    group: str
    stream: str
    lines: tuple[LogLine, ...] = ()
    #: GetLogEvents' nextBackwardToken for "load earlier"; None once the stream's start is shown
    earlier_token: str | None = None
    #: why the tail could not be read (e.g. the IAM action to add); lines are then empty
    error: str | None = None

    def with_earlier(self, earlier: LogTail) -> LogTail:
        """This tail with an earlier page put in front of it."""
        return replace(self, lines=earlier.lines + self.lines, earlier_token=earlier.earlier_token,
                       error=earlier.error or self.error)


@dataclass(frozen=True, slots=True)
class FileTail:
    """The end of one work-dir file, read with one ranged GET."""

    name: str
    url: str
    exists: bool = False
    size: int | None = None
    text: str = ""
    #: the file is longer than what was read: ``text`` is its last bytes only
    truncated: bool = False
    modified: datetime | None = None
    error: str | None = None


def tail_lines(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text`` (a partial first line of a ranged read dropped)."""
    if lines <= 0:
        return ""
    parts = text.splitlines()
    return "\n".join(parts[-lines:])


def parse_exitcode(text: str) -> int | None:
    """The number in a ``.exitcode`` file, or None when it holds none (empty, garbled)."""
    m = _EXIT_RE.match(text)
    if m is None:
        return None
    try:
        return int(m.group(1))
    except ValueError:  # pragma: no cover - the regex admits only digits
        return None


# --- the work dir as a witness --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkdirEvidence:
    """What the task wrapper left in one work dir: ``.exitcode`` and ``.command.begin``."""

    workdir: str
    exit_code: int | None = None
    exit_at: datetime | None = None
    #: the wrapper started the task (``.command.begin`` is there)
    began: bool = False
    began_at: datetime | None = None
    #: ``.exitcode`` exists but holds no number
    garbled: bool = False
    #: why the work dir could not be read (e.g. the IAM action to add)
    error: str | None = None
    #: not looked at (over the call's limit)
    skipped: bool = False

    @property
    def exited(self) -> bool:
        return self.exit_code is not None

    def summary(self) -> str:
        """One clause for a reason: "work dir says exit 0 at 12:04 UTC"."""
        if self.skipped:
            return "work dir not checked (over this refresh's limit)"
        if self.error is not None:
            return f"work dir unreadable: {self.error}"
        if self.exit_code is not None:
            return f"work dir says exit {self.exit_code}{_short_clock(self.exit_at)}"
        if self.garbled:
            return "work dir's .exitcode holds no number"
        if self.began:
            return f"work dir says started{_short_clock(self.began_at)}, no .exitcode yet"
        return "work dir has no .command.begin or .exitcode (the task never started there)"


def workdir_targets(
    frame: pd.DataFrame, tasks: pd.DataFrame | None = None, *, limit: int = DEFAULT_WITNESS_LIMIT
) -> list[str]:
    """The work dirs worth reading for ``frame``: at most ``limit``, in row order.

    Rows whose verdict is stale, vanished or disagree, and tasks whose exit is unknown
    (terminal in Nextflow's view with no exit: the log's ``exit: -`` after "Cannot read
    exitstatus"; ``tasks`` supplies the exit, which a reconcile frame does not carry).
    """
    if frame.empty or limit <= 0:
        return []
    wanted = frame[RecCol.VERDICT].isin(WITNESS_VERDICTS).to_numpy(dtype=bool, copy=True)
    if tasks is not None and not tasks.empty and TaskCol.EXIT in tasks and TaskCol.TASK_ID in tasks:
        done = tasks[TaskCol.STATUS].isin({"COMPLETED", "FAILED"}) & tasks[TaskCol.EXIT].isna()
        unknown = set(tasks.loc[done.to_numpy(bool), TaskCol.TASK_ID].dropna().tolist())
        if unknown:
            wanted |= frame[TaskCol.TASK_ID].isin(unknown).to_numpy(bool)
    dirs = frame[TaskCol.WORKDIR].fillna(frame[JobCol.WORK_DIR]).to_numpy(dtype=object)[wanted]
    out: dict[str, None] = {}
    for d in dirs:
        if isinstance(d, str) and d and d not in out:
            out[d.rstrip("/")] = None
            if len(out) >= limit:
                break
    return list(out)


def explain_with_workdir(frame: pd.DataFrame, evidence: Mapping[str, WorkdirEvidence]) -> pd.DataFrame:
    """``frame`` with the work dir's evidence added to the reason of the rows it explains.

    Pure and conservative: a new frame whose ``reason`` column alone may differ. Verdicts,
    ``killable``, ``nf_alive``, ``scope_rule`` and the waste stay exactly as reconcile set
    them — a file in a work dir says how a task ended, it proves nothing about who owns a
    job (every run of a launch dir shares the work dir), so it never makes a kill.
    """
    if frame.empty or not evidence:
        return frame
    dirs = frame[TaskCol.WORKDIR].fillna(frame[JobCol.WORK_DIR]).astype("string").str.rstrip("/")
    # Only the rows the evidence is about are visited: a 100,000-row frame costs one isin.
    rows = np.flatnonzero(dirs.isin(list(evidence)).to_numpy(dtype=bool, na_value=False))
    if not len(rows):
        return frame
    out = frame.copy()
    new = out[RecCol.REASON].astype("string").fillna("").to_numpy(dtype=object).copy()
    verdicts = out[RecCol.VERDICT].to_numpy(dtype=object)
    batch = out[RecCol.BATCH_STATUS].to_numpy(dtype=object)
    for pos in rows:
        ev = evidence[str(dirs.iloc[pos])]
        if ev.skipped:
            continue
        verdict = str(verdicts[pos])
        clause = ev.summary() + _verdict_note(ev, verdict, batch[pos], verdict in WITNESS_VERDICTS)
        if clause in str(new[pos]):
            continue  # explained already (a refresh applying the same evidence again)
        new[pos] = f"{new[pos]}; {clause}" if new[pos] else clause
    out[RecCol.REASON] = pd.Series(new, index=out.index, dtype="string")
    return out


def _verdict_note(ev: WorkdirEvidence, verdict: str, bs: Any, witness_row: bool) -> str:
    """What the evidence means for this row, in a few words (never a change of verdict)."""
    if ev.exit_code is None or not witness_row:
        return ""
    outcome = "succeeded" if ev.exit_code == 0 else "failed"
    if verdict == "vanished":
        return f" — the task {outcome} before Batch forgot the job"
    if verdict == "stale":
        return f" — the task {outcome}; Nextflow's view is behind"
    if verdict == "disagree":
        if isinstance(bs, str) and bs in JOB_ACTIVE:
            return ""
        return f" — the task's own wrapper says it {outcome}"
    return ""


# --- the whole inspection -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inspection:
    """Everything known about one task or job, from Nextflow, Batch, CloudWatch and S3."""

    query: str
    task: Mapping[str, Any] | None = None
    #: lines of .nextflow.log that name the task's hash, job id or work dir (newest last)
    nextflow_lines: tuple[str, ...] = ()
    job_id: str | None = None
    job_status: str | None = None
    job_reason: str | None = None
    job_name: str | None = None
    job_queue: str | None = None
    attempts: tuple[Attempt, ...] = ()
    log: LogTail | None = None
    workdir: str | None = None
    files: Mapping[str, FileTail] = field(default_factory=dict)
    evidence: WorkdirEvidence | None = None
    #: what could not be read, each naming what to do
    problems: tuple[str, ...] = ()

    @property
    def running_attempt(self) -> Attempt | None:
        return next((a for a in self.attempts if a.running), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (datetimes as ISO 8601 UTC)."""
        data = asdict(self)
        data["files"] = {k: asdict(v) for k, v in self.files.items()}
        data["task"] = dict(self.task) if self.task is not None else None
        return _jsonable(data)  # type: ignore[no-any-return]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self, *, lines: int | None = None) -> str:
        return render_text(self, lines=lines)

    def to_html(self) -> str:
        return render_html(self)

    def _repr_html_(self) -> str:
        return render_html(self)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, pd.Timedelta):
        return None if pd.isna(value) else value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            return value.item()
        except (AttributeError, ValueError):
            return str(value)
    return value


def task_fields(task: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, text) pairs of a task row worth showing, missing values left out."""
    keys = (TaskCol.NAME, TaskCol.STATUS, TaskCol.EXIT, TaskCol.HASH, TaskCol.NATIVE_ID,
            TaskCol.SUBMIT, TaskCol.START, TaskCol.COMPLETE, TaskCol.WORKDIR, TaskCol.SOURCE)
    out = []
    for k in keys:
        v = task.get(k)
        if v is None or v is pd.NA or (not isinstance(v, str) and pd.isna(v)):
            continue
        out.append((k, str(v)))
    return out


def render_text(insp: Inspection, *, lines: int | None = None) -> str:
    """A plain-text report (the CLI's ``--format text``)."""
    out: list[str] = [f"== {insp.query}"]
    if insp.task is not None:
        out.append("-- Nextflow")
        out += [f"  {k}: {v}" for k, v in task_fields(insp.task)]
    else:
        out.append("-- Nextflow: no task of this run matches")
    for line in insp.nextflow_lines:
        out.append(f"  | {line}")
    head = f"-- Batch job {insp.job_id}" if insp.job_id else "-- Batch: no job"
    if insp.job_status:
        head += f": {insp.job_status}"
        if insp.job_reason:
            head += f" ({insp.job_reason})"
    out.append(head)
    for a in insp.attempts:
        state = "running" if a.running else f"exit {a.exit_code if a.exit_code is not None else '-'}"
        out.append(
            f"  attempt {a.index}: {state}; {_clock(a.started_at)} -> {_clock(a.stopped_at)}; "
            f"{a.reason}; instance {a.container_instance or '-'}; log {a.log_stream or '-'}"
        )
    if insp.log is not None:
        out.append(f"-- CloudWatch {insp.log.group} {insp.log.stream}")
        if insp.log.error:
            out.append(f"  ! {insp.log.error}")
        shown = insp.log.lines if lines is None else insp.log.lines[-lines:] if lines > 0 else ()
        for ln in shown:
            out.append(f"  {_clock(ln.timestamp)} {ln.message}")
    if insp.workdir:
        out.append(f"-- work dir {insp.workdir}")
        if insp.evidence is not None:
            out.append(f"  {insp.evidence.summary()}")
        for f in insp.files.values():
            if f.error:
                out.append(f"  {f.name}: ! {f.error}")
            elif not f.exists:
                out.append(f"  {f.name}: (absent)")
            else:
                note = f" (last {len(f.text.encode())} of {f.size} bytes)" if f.truncated else ""
                out.append(f"  {f.name}: {f.size} bytes{note}")
                text = f.text if lines is None else tail_lines(f.text, lines)
                out += [f"    {t}" for t in text.splitlines()]
    for p in insp.problems:
        out.append(f"! {p}")
    return "\n".join(out)


_CSS: Final = """
<style>
.bk-insp{font-family:var(--jp-ui-font-family,sans-serif);font-size:var(--jp-ui-font-size1,13px);
 color:var(--jp-ui-font-color1,#222);border:1px solid var(--jp-border-color2,#ccc);padding:6px 10px}
.bk-insp h4{margin:8px 0 4px 0;font-size:var(--jp-ui-font-size2,14px)}
.bk-insp table{border-collapse:collapse}
.bk-insp td,.bk-insp th{padding:2px 8px;text-align:left;vertical-align:top;
 border-bottom:1px solid var(--jp-border-color3,#eee)}
.bk-insp pre{background:var(--jp-layout-color2,#f5f5f5);color:var(--jp-content-font-color1,#222);
 max-height:24em;overflow:auto;padding:4px 6px;margin:2px 0 6px 0;white-space:pre-wrap}
.bk-insp .bk-err{color:var(--jp-error-color1,#c00)}
.bk-insp .bk-dim{color:var(--jp-ui-font-color2,#666)}
</style>
"""


def render_html(insp: Inspection, *, standalone: bool = False) -> str:
    """The inspector as HTML; every piece of text from a file, a log or AWS is escaped."""
    parts: list[str] = [_CSS, f'<div class="bk-insp" data-query="{escape_html(insp.query)}">']
    parts.append(f"<h4>Nextflow — {escape_html(insp.query)}</h4>")
    if insp.task is not None:
        rows = "".join(f"<tr><th>{escape_html(k)}</th><td>{escape_html(v)}</td></tr>" for k, v in task_fields(insp.task))
        parts.append(f"<table>{rows}</table>")
    else:
        parts.append('<div class="bk-dim">no task of this run matches</div>')
    if insp.nextflow_lines:
        parts.append("<pre class=\"bk-nflog\">" + escape_html("\n".join(insp.nextflow_lines)) + "</pre>")
    title = f"Batch job {insp.job_id}" if insp.job_id else "Batch: no job"
    if insp.job_status:
        title += f" — {insp.job_status}"
    parts.append(f"<h4>{escape_html(title)}</h4>")
    if insp.job_reason:
        parts.append(f"<div>{escape_html(insp.job_reason)}</div>")
    if insp.attempts:
        head = "<tr><th>#</th><th>state</th><th>exit</th><th>started</th><th>stopped</th><th>reason</th><th>container instance</th><th>log stream</th></tr>"
        body = "".join(
            f'<tr class="bk-attempt"><td>{a.index}</td><td>{"running" if a.running else "stopped"}</td>'
            f"<td>{escape_html(a.exit_code if a.exit_code is not None else '-')}</td><td>{escape_html(_clock(a.started_at))}</td>"
            f"<td>{escape_html(_clock(a.stopped_at))}</td><td>{escape_html(a.reason)}</td><td>{escape_html(a.container_instance or '-')}</td>"
            f"<td>{escape_html(a.log_stream or '-')}</td></tr>"
            for a in insp.attempts
        )
        parts.append(f"<table>{head}{body}</table>")
    if insp.log is not None:
        parts.append(f"<h4>CloudWatch log {escape_html(insp.log.group)} {escape_html(insp.log.stream)}</h4>")
        if insp.log.error:
            parts.append(f'<div class="bk-err">{escape_html(insp.log.error)}</div>')
        text = "\n".join(f"{_clock(ln.timestamp)}  {ln.message}" for ln in insp.log.lines)
        parts.append(f'<pre class="bk-logtail">{escape_html(text)}</pre>')
    if insp.workdir:
        parts.append(f"<h4>Work dir {escape_html(insp.workdir)}</h4>")
        if insp.evidence is not None:
            parts.append(f"<div>{escape_html(insp.evidence.summary())}</div>")
        for f in insp.files.values():
            if f.error:
                parts.append(f'<div><b>{escape_html(f.name)}</b> <span class="bk-err">{escape_html(f.error)}</span></div>')
            elif not f.exists:
                parts.append(f'<div><b>{escape_html(f.name)}</b> <span class="bk-dim">absent</span></div>')
            else:
                note = f" — last {len(f.text.encode())} of {f.size} bytes" if f.truncated else ""
                parts.append(f'<div><b>{escape_html(f.name)}</b> <span class="bk-dim">{escape_html(f.size)} bytes{escape_html(note)}</span></div>')
                parts.append(f'<pre class="bk-file" data-name="{escape_html(f.name)}">{escape_html(f.text)}</pre>')
    for p in insp.problems:
        parts.append(f'<div class="bk-err">{escape_html(p)}</div>')
    parts.append("</div>")
    body = "".join(parts)
    if standalone:
        return f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape_html(insp.query)}</title></head><body>{body}</body></html>'
    return body


def needles_for(task: Mapping[str, Any] | None, job_id: str | None, workdir: str | None) -> list[str]:
    """The strings that identify a task in ``.nextflow.log``: ``[ab/cdef12]``, the job id, the work dir."""
    out: list[str] = []
    if task is not None:
        h = task.get(TaskCol.HASH)
        if isinstance(h, str) and h:
            out.append(f"[{h}]")
    for v in (job_id, workdir):
        if v:
            out.append(v)
    return list(dict.fromkeys(out))


def evidence_from_files(workdir: str, files: Iterable[FileTail]) -> WorkdirEvidence:
    """Read the witness out of the ``.exitcode`` and ``.command.begin`` tails."""
    by = {f.name: f for f in files}
    ex, begin = by.get(".exitcode"), by.get(".command.begin")
    errors = [f.error for f in (ex, begin) if f is not None and f.error]
    if ex is not None and ex.exists:
        code = parse_exitcode(ex.text)
        return WorkdirEvidence(workdir, exit_code=code, exit_at=ex.modified, began=bool(begin and begin.exists),
                               began_at=begin.modified if begin else None, garbled=code is None)
    if errors:
        return WorkdirEvidence(workdir, error=errors[0])
    if begin is not None and begin.exists:
        return WorkdirEvidence(workdir, began=True, began_at=begin.modified)
    return WorkdirEvidence(workdir)
