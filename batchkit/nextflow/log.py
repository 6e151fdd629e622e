"""Read ``.nextflow.log`` (and its rotations) into run facts and a task table (DESIGN §2).

Nextflow's log lines look like
``Jan-24 12:49:27.026 [Task submitter] INFO  nextflow.Session - [16/b7af3d] Submitted process > NAME (1)``
(logback pattern ``%d{MMM-dd HH:mm:ss.SSS} [%t] %-5level %logger{36} - %msg``):
the timestamp has no year and no zone. Lines without a timestamp continue the
previous message (stack traces, DAG dumps) and are skipped.

Each ``.nextflow.log.N`` is an earlier *launch* (logback ``RollOnStartupPolicy``),
not a size rotation. Read together they are oldest first: the run facts (name,
abort, end) come from the newest launch; tasks from earlier launches are kept
when they share its session id (``-resume`` keeps the session), because the
earlier launch may have left jobs running that the newest log never mentions.

Year inference: the caller's ``year`` (the year of the first line), else the
year putting the launch closest to ``reference_time`` (e.g. the first trace
date), else the newest file's modification time (its last line was written
before it). A month that goes backwards between lines (Dec -> Jan) starts a new
year.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from batchkit.errors import NextflowReadError
from batchkit.nextflow import _formats as fmt
from batchkit.schema import TaskCol

log = logging.getLogger(__name__)

PathLike = str | Path

_MONTHS: Final = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1
)}  # fmt: skip
_LINE_RE: Final = re.compile(
    r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3}) "
    r"\[([^\]]*)\] ([A-Z]+)\s+(\S+) - (.*)$"
)
_VERSION_RE: Final = re.compile(r"N E X T F L O W\s+~\s+version (\S+)")
_LAUNCHING_RE: Final = re.compile(r"Launching `[^`]*` \[([^\]]+)\]")
_SESSION_RE: Final = re.compile(r"Session (?:UUID|uuid): (\S+)")
_RUN_NAME_RE: Final = re.compile(r"^Run name: (\S+)")
_WORK_DIR_RE: Final = re.compile(r"^Work-dir: (\S+)")
# "[ab/cdef12] Submitted process > NAME (tag)"; also "Re-submitted" and "Cached".
_SUBMITTED_RE: Final = re.compile(
    r"^\[([0-9a-f]{2}/[0-9a-f]{6})\] (Submitted|Re-submitted|Cached) process > (.+)$"
)
# AWS Batch submit line, the one place an in-flight job id survives a crash:
# "[AWS BATCH] Process `NAME (tag)` submitted > job=<id>; work-dir=<s3 path>"
# (before ~22.x without "Process `NAME`": "[AWS BATCH] submitted > job=<id>; work-dir=...").
# The same shape serves "[GOOGLE BATCH] ... submitted > job=<id>; uid=...; work-dir=...".
_CLOUD_SUBMIT_RE: Final = re.compile(
    r"^\[(AWS BATCH|GOOGLE BATCH)\] (?:Process `(.+)` )?submitted > job=([^;\s]+);.*?work-dir=(\S+)"
)
# Grid executors: "[SLURM] submitted process NAME > jobId: 44662446; workDir: /path/ab/cdef..."
_GRID_SUBMIT_RE: Final = re.compile(
    r"^\[([A-Z]+)\] submitted process (.+) > jobId: ([^;\s]+); workDir: (\S+)"
)
# "Task completed > TaskHandler[id: 1; name: NAME; status: COMPLETED; exit: 0; error: -; workDir: ...]"
_TASK_DONE_RE: Final = re.compile(
    r"^Task completed > TaskHandler\[(?:jobId: ([^;]+); )?id: (\d+); name: (.*?); status: (\w+); "
    r"exit: ([^;]+); error: (.*?); workDir: (\S+?)(?:[\s\]]|$)"
)
_ABORT_RE: Final = re.compile(r"^Session aborted -- Cause: ?(.*)$")
_KILLING_TASKS_RE: Final = re.compile(r"Killing (?:running|pending) tasks \((\d+)\)")
# Kill wordings: before 25.04 "[AWS BATCH] killing job=<id>; response=..." (logged after
# TerminateJob answered); since 25.04 "[AWS BATCH] cleanup = terminating job <id>" (before
# the call is queued to the reaper) and "[AWS BATCH] cleanup = killing job <id>" (after).
_KILL_RE: Final = re.compile(r"^\[AWS BATCH\].*?\b(terminating|killing) job[= ]([\w:-]+)")
_REAPER_GAVE_UP: Final = "Some jobs may not be terminated"
_REAPER_WAIT_RE: Final = re.compile(r"Waiting jobs reaper to complete \((\d+) jobs? to be terminated\)")
_GOODBYE: Final = "Execution complete -- Goodbye"
_ROTATION_RE: Final = re.compile(r"\.(\d+)$")


@dataclass
class LogInfo:
    """What ``.nextflow.log`` says about a run (times are UTC Timestamps or None)."""

    paths: list[str]
    version: str | None = None
    run_name: str | None = None
    session_id: str | None = None
    work_dir: str | None = None
    launch_time: pd.Timestamp | None = None
    #: TASK_COLUMNS frame, source "log": status SUBMITTED or CACHED, or COMPLETED/FAILED
    #: when a DEBUG "Task completed > TaskHandler[...]" line reports the end.
    tasks: pd.DataFrame = field(default_factory=fmt.empty_tasks)
    abort_cause: str | None = None
    abort_time: pd.Timestamp | None = None
    #: job ids whose TerminateJob call Nextflow logged as answered.
    killed_job_ids: list[str] = field(default_factory=list)
    #: job ids Nextflow decided to terminate (25.04+ "terminating job"), answered or not.
    kill_requested_job_ids: list[str] = field(default_factory=list)
    #: N from "Killing running tasks (N)" / "Killing pending tasks (N)" (summed over executors).
    killed_count: int | None = None
    #: "Exiting before jobs reaper thread pool complete -- Some jobs may not be terminated".
    reaper_gave_up: bool = False
    #: N from "Waiting jobs reaper to complete (N jobs to be terminated)", the last seen.
    reaper_pending: int | None = None
    end_time: pd.Timestamp | None = None
    #: "Execution complete -- Goodbye" was logged (also after an abort).
    completed: bool = False
    last_line_time: pd.Timestamp | None = None
    #: the year given to the first line, and how it was chosen.
    year: int | None = None
    year_source: str = ""
    #: earlier launches left out because their session id differs.
    ignored_paths: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The newest log file read."""
        return self.paths[-1]


@dataclass
class _Line:
    number: int
    month: int
    day: int
    hms: tuple[int, int, int, int]
    thread: str
    message: str


@dataclass
class _Launch:
    """One log file = one launch, with month/day times still waiting for their year."""

    path: str
    lines: list[_Line]


def read_log(
    paths: PathLike | Sequence[PathLike],
    *,
    tz: str | tzinfo | None = None,
    year: int | None = None,
    reference_time: pd.Timestamp | None = None,
) -> LogInfo:
    """Read ``.nextflow.log`` (and rotations ``.nextflow.log.1`` …) into a :class:`LogInfo`.

    ``tz`` is the zone of the machine that ran Nextflow (default: this
    machine's); ``year`` the year of the oldest file's first line.
    """
    path_list = _order_oldest_first(_path_list(paths))
    if not path_list:
        raise NextflowReadError("no log file given: pass the path of .nextflow.log")
    zone = fmt.resolve_tz(tz)
    launches = [parse_log_text(_read_text(p), path=str(p)) for p in path_list]
    mtime = _mtime_utc(path_list[-1])
    return build_log_info(
        launches, tz=zone, year=year, reference_time=reference_time, mtime=mtime
    )


def parse_log_text(text: str, *, path: str = "<log>") -> _Launch:
    """Split one log file's text into timestamped lines (pure)."""
    lines: list[_Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        match = _LINE_RE.match(raw)
        if match is None:
            continue  # a continuation line (stack trace, DAG dump) or noise
        mon, day, hh, mm, ss, ms, thread, _level, _logger, message = match.groups()
        lines.append(
            _Line(number, _MONTHS[mon], int(day), (int(hh), int(mm), int(ss), int(ms)), thread, message)
        )
    if not lines:
        raise NextflowReadError(
            "not a Nextflow log: no line starts with a timestamp like "
            "'Jan-24 12:49:23.194 [main] DEBUG nextflow.cli.Launcher - …'",
            path=path,
            line=1,
        )
    return _Launch(path, lines)


def build_log_info(
    launches: Sequence[_Launch],
    *,
    tz: tzinfo,
    year: int | None,
    reference_time: pd.Timestamp | None,
    mtime: pd.Timestamp | None,
) -> LogInfo:
    """Combine parsed launches (oldest first) into a :class:`LogInfo` (pure)."""
    all_lines = [(launch, line) for launch in launches for line in launch.lines]
    offsets = _year_offsets([line for _, line in all_lines])
    base, source = _base_year(all_lines, offsets, tz, year, reference_time, mtime)
    stamps = _timestamps(all_lines, offsets, base, tz)

    per_launch: list[_LaunchFacts] = []
    i = 0
    for launch in launches:
        n = len(launch.lines)
        per_launch.append(_scan(launch, stamps[i : i + n]))
        i += n

    newest = per_launch[-1]
    kept = [f for f in per_launch[:-1] if f.session_id is None or f.session_id == newest.session_id]
    ignored = [f.path for f in per_launch[:-1] if f not in kept]
    facts_in_order = [*kept, newest]

    info = LogInfo(paths=[f.path for f in facts_in_order], ignored_paths=ignored, year=base, year_source=source)
    info.version = newest.version
    info.run_name = newest.run_name
    info.session_id = newest.session_id
    info.work_dir = newest.work_dir
    info.launch_time = newest.launch_time
    info.abort_cause = newest.abort_cause
    info.abort_time = newest.abort_time
    info.killed_count = newest.killed_count
    info.reaper_gave_up = newest.reaper_gave_up
    info.reaper_pending = newest.reaper_pending
    info.end_time = newest.end_time
    info.completed = newest.completed
    info.last_line_time = newest.last_line_time
    info.killed_job_ids = _unique(j for f in facts_in_order for j in f.killed)
    info.kill_requested_job_ids = _unique(j for f in facts_in_order for j in f.kill_requested)
    info.tasks = _tasks_frame(facts_in_order)
    return info


# --- scanning one launch ----------------------------------------------------------------


@dataclass
class _LaunchFacts:
    path: str
    version: str | None = None
    run_name: str | None = None
    session_id: str | None = None
    work_dir: str | None = None
    launch_time: pd.Timestamp | None = None
    abort_cause: str | None = None
    abort_time: pd.Timestamp | None = None
    killed_count: int | None = None
    reaper_gave_up: bool = False
    reaper_pending: int | None = None
    end_time: pd.Timestamp | None = None
    completed: bool = False
    last_line_time: pd.Timestamp | None = None
    killed: list[str] = field(default_factory=list)
    kill_requested: list[str] = field(default_factory=list)
    #: per task hash: the facts gathered so far (a dict of TaskCol -> value).
    tasks: dict[str, dict[str, object]] = field(default_factory=dict)


def _scan(launch: _Launch, stamps: list[pd.Timestamp]) -> _LaunchFacts:
    facts = _LaunchFacts(path=launch.path)
    facts.launch_time = stamps[0] if stamps else None
    facts.last_line_time = stamps[-1] if stamps else None
    attempts: dict[str, int] = {}
    for line, when in zip(launch.lines, stamps, strict=True):
        msg = line.message
        if (m := _SUBMITTED_RE.match(msg)) is not None:
            short, kind, name = m.groups()
            if kind == "Re-submitted":
                attempts[name] = attempts.get(name, 1) + 1
            elif kind == "Submitted":
                attempts[name] = 1
            row = facts.tasks.setdefault(short, {TaskCol.HASH: short})
            row[TaskCol.NAME] = name
            row[TaskCol.STATUS] = "CACHED" if kind == "Cached" else row.get(TaskCol.STATUS, "SUBMITTED")
            if kind != "Cached":
                row[TaskCol.ATTEMPT] = attempts[name]
                row.setdefault(TaskCol.SUBMIT, when)
        elif (m := _CLOUD_SUBMIT_RE.match(msg) or _GRID_SUBMIT_RE.match(msg)) is not None:
            _executor, name, job_id, workdir = m.groups()
            short = fmt.hash_of_workdir(workdir)
            if short is None:
                continue
            row = facts.tasks.setdefault(short, {TaskCol.HASH: short})
            row[TaskCol.NATIVE_ID] = job_id
            row[TaskCol.WORKDIR] = workdir.rstrip("/")
            if name:
                row.setdefault(TaskCol.NAME, name)
            row.setdefault(TaskCol.STATUS, "SUBMITTED")
            row.setdefault(TaskCol.SUBMIT, when)
        elif (m := _TASK_DONE_RE.match(msg)) is not None:
            job_id, task_id, name, _status, exit_text, error, workdir = m.groups()
            short = fmt.hash_of_workdir(workdir)
            if short is None:
                continue
            row = facts.tasks.setdefault(short, {TaskCol.HASH: short})
            row[TaskCol.TASK_ID] = int(task_id)
            row.setdefault(TaskCol.NAME, name)
            row[TaskCol.WORKDIR] = workdir.rstrip("/")
            if job_id and job_id.strip() not in ("-", "null"):
                row.setdefault(TaskCol.NATIVE_ID, job_id.strip())
            exit_code = _int_or_none(exit_text)
            row[TaskCol.EXIT] = exit_code
            failed = (exit_code not in (None, 0)) or error.strip() not in ("-", "", "null")
            row[TaskCol.STATUS] = "FAILED" if failed else "COMPLETED"
            row[TaskCol.COMPLETE] = when
        elif (m := _KILL_RE.match(msg)) is not None:
            verb, job_id = m.groups()
            facts.kill_requested.append(job_id)
            if verb == "killing":
                facts.killed.append(job_id)
        elif (m := _VERSION_RE.search(msg)) is not None:
            facts.version = m.group(1)
        elif (m := _LAUNCHING_RE.search(msg)) is not None:
            facts.run_name = facts.run_name or m.group(1)
        elif (m := _SESSION_RE.search(msg)) is not None:
            facts.session_id = m.group(1)
        elif (m := _RUN_NAME_RE.match(msg)) is not None:
            facts.run_name = m.group(1)
        elif (m := _WORK_DIR_RE.match(msg)) is not None:
            facts.work_dir = m.group(1).rstrip("/")
        elif (m := _ABORT_RE.match(msg)) is not None:
            if facts.abort_time is None:  # the first abort is the cause; later ones echo it
                facts.abort_cause = m.group(1).strip() or "(no cause given)"
                facts.abort_time = when
        elif (m := _KILLING_TASKS_RE.search(msg)) is not None:
            facts.killed_count = (facts.killed_count or 0) + int(m.group(1))
        elif _REAPER_GAVE_UP in msg:
            facts.reaper_gave_up = True
        elif (m := _REAPER_WAIT_RE.search(msg)) is not None:
            facts.reaper_pending = int(m.group(1))
        elif _GOODBYE in msg:
            facts.completed = True
            facts.end_time = when
    return facts


def _tasks_frame(launches: Sequence[_LaunchFacts]) -> pd.DataFrame:
    rows: dict[str, dict[str, object]] = {}
    for facts in launches:  # oldest first: a later launch's facts about a hash win
        for short, row in facts.tasks.items():
            merged = rows.setdefault(short, {})
            merged.update(row)
    if not rows:
        return fmt.empty_tasks()
    frame = pd.DataFrame(list(rows.values()))
    if TaskCol.NAME in frame:
        process, tag = fmt.split_name(frame[TaskCol.NAME])
        frame[TaskCol.PROCESS] = process
        frame[TaskCol.TAG] = tag
    frame[TaskCol.SOURCE] = "log"
    return fmt.conform_tasks(frame)


# --- years and zones ------------------------------------------------------------


def _year_offsets(lines: Sequence[_Line]) -> list[int]:
    """Years to add to each line: +1 each time the month goes backwards (Dec -> Jan)."""
    offsets: list[int] = []
    offset = 0
    previous = None
    for line in lines:
        if previous is not None and line.month < previous:
            offset += 1
        previous = line.month
        offsets.append(offset)
    return offsets


def _base_year(
    lines: Sequence[tuple[_Launch, _Line]],
    offsets: Sequence[int],
    tz: tzinfo,
    year: int | None,
    reference_time: pd.Timestamp | None,
    mtime: pd.Timestamp | None,
) -> tuple[int, str]:
    if year is not None:
        return year, "given"
    first = lines[0][1]
    if reference_time is not None:
        ref = pd.Timestamp(reference_time)
        ref = ref.tz_localize("UTC") if ref.tzinfo is None else ref.tz_convert("UTC")
        best = min(
            (ref.year - 1, ref.year, ref.year + 1),
            key=lambda y: _distance(first, y, tz, ref),
        )
        return best, "reference"
    if mtime is not None:
        last = lines[-1][1]
        local = mtime.tz_convert(tz)
        # the last line was written at or before the file's modification time
        last_year = local.year if (last.month, last.day) <= (local.month, local.day) else local.year - 1
        return last_year - offsets[-1], "mtime"
    return pd.Timestamp.now(tz="UTC").year - offsets[-1], "now"


def _distance(line: _Line, year: int, tz: tzinfo, ref: pd.Timestamp) -> float:
    stamp = _stamp(line, year, tz)
    return abs((stamp - ref).total_seconds()) if stamp is not None else float("inf")


def _stamp(line: _Line, year: int, tz: tzinfo) -> pd.Timestamp | None:
    hh, mm, ss, ms = line.hms
    try:
        naive = pd.Timestamp(year=year, month=line.month, day=line.day, hour=hh, minute=mm, second=ss, microsecond=ms * 1000)
    except ValueError:
        return None
    return pd.Timestamp(fmt.localize_to_utc(pd.Series([naive]), tz).iloc[0])


def _timestamps(
    lines: Sequence[tuple[_Launch, _Line]], offsets: Sequence[int], base: int, tz: tzinfo
) -> list[pd.Timestamp]:
    """All lines' times in UTC, computed with numpy date arithmetic (no per-line parsing)."""
    years = base + np.asarray(offsets, dtype=np.int64)
    months = np.array([line.month for _, line in lines], dtype=np.int64)
    days = np.array([line.day for _, line in lines], dtype=np.int64)
    clock = np.array([line.hms for _, line in lines], dtype=np.int64).reshape(-1, 4)
    in_range = (years > 1677) & (years < 2262)
    month_start = ((np.where(in_range, years, 1970) - 1970) * 12 + months - 1).astype("datetime64[M]")
    days_in_month = ((month_start + 1).astype("datetime64[D]") - month_start.astype("datetime64[D]")).astype(np.int64)
    valid = in_range & (days >= 1) & (days <= days_in_month)
    valid &= (clock[:, 0] < 24) & (clock[:, 1] < 60) & (clock[:, 2] < 60)
    if not valid.all():
        index = int(np.flatnonzero(~valid)[0])
        launch, line = lines[index]
        raise NextflowReadError(
            f"the timestamp's day or time is invalid in year {int(years[index])} (e.g. Feb-29 "
            "outside a leap year, or hour 25): pass year= to read_log if the year was guessed wrong",
            path=launch.path,
            line=line.number,
        )
    millis = ((clock[:, 0] * 60 + clock[:, 1]) * 60 + clock[:, 2]) * 1000 + clock[:, 3]
    naive = month_start.astype("datetime64[D]") + (days - 1).astype("timedelta64[D]")
    naive_ms = naive.astype("datetime64[ms]") + millis.astype("timedelta64[ms]")
    utc = fmt.localize_to_utc(pd.Series(naive_ms.astype("datetime64[ns]")), tz)
    return list(utc)


# --- files ------------------------------------------------------------------------


def _path_list(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _order_oldest_first(paths: list[Path]) -> list[Path]:
    """``.nextflow.log.3, .nextflow.log.2, .nextflow.log.1, .nextflow.log`` (stable otherwise)."""

    def rotation(path: Path) -> int:
        match = _ROTATION_RE.search(path.name)
        return int(match.group(1)) if match and ".log." in path.name else 0

    return sorted(paths, key=lambda p: -rotation(p))


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise NextflowReadError("no such log file: check the path", path=str(path)) from None
    except IsADirectoryError:
        raise NextflowReadError(
            "is a directory, not a log file: use NextflowRun.from_dir for a launch directory",
            path=str(path),
        ) from None
    except OSError as exc:
        raise NextflowReadError(f"cannot read the log file: {exc.strerror}", path=str(path)) from None


def _mtime_utc(path: Path) -> pd.Timestamp | None:
    try:
        return pd.Timestamp(path.stat().st_mtime, unit="s", tz="UTC")
    except OSError:
        return None


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    if re.fullmatch(r"-?\d{1,18}", text):
        value = int(text)
        return None if value == fmt.UNKNOWN_EXIT else value
    return None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
