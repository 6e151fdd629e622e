"""One view of a Nextflow run: what Nextflow believes now, from trace, log and weblog.

Tasks are merged per task (key: the hash when known — a task id or job id is
mapped to the hash another source gives it — else the task id, else the
native id). Where sources disagree on the status, the order of belief is:

1. a trace row with a terminal status (COMPLETED/FAILED/ABORTED/CACHED): written
   when the task ended, it is Nextflow's final word;
2. the weblog's latest event: live, ahead of a trace that only writes in-flight
   tasks at the end of the run;
3. a trace row with a live status (written at the end of the run);
4. the log (submission lines; DEBUG "Task completed" lines).

Every other column is filled from the first source in that order that has it
(the log's ``[AWS BATCH] … submitted > job=…`` line is the one place an
in-flight job id survives a crash). ``source`` lists the contributing sources.

The run's ``state``: ``"aborted"`` when the log says ``Session aborted -- Cause: …``
or the weblog sent ``error`` (or a ``completed`` whose workflow did not
succeed), or — trace alone — a task is ABORTED; ``"completed"`` when the log
says ``Execution complete -- Goodbye`` without an abort or the weblog sent
``completed``; else ``"alive"``. A log that simply stops (a hard crash) still
reads ``"alive"``: there is no marker to tell a crash from a quiet run, so
callers judge with :attr:`NextflowRun.last_activity` and
:meth:`NextflowRun.silent_for`. Task statuses are never rewritten from the run
state: after an abort, tasks Nextflow still lists as SUBMITTED/RUNNING keep that
status, and the reconciler combines it with ``state``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from batchkit._nfconfig import (
    NfConfig,
    aws_region,
    process_executors,
    process_queues,
    run_config,
    trace_file,
)
from batchkit._time import to_utc
from batchkit.errors import NextflowReadError
from batchkit.nextflow import _formats as fmt
from batchkit.nextflow.log import (
    LogFollower,
    LogInfo,
    LogScan,
    read_log,
    scan_log_file,
    scan_log_head,
    scan_log_lines,
)
from batchkit.nextflow.trace import merge_trace_frames, read_trace, task_key
from batchkit.nextflow.weblog import WeblogReceiver
from batchkit.reconcile import OtherRun
from batchkit.schema import TASK_TERMINAL, RunLike, TaskCol

PathLike = str | Path

_SOURCE_ORDER: Final = ("trace", "weblog", "log")
_LOG_NAME_RE: Final = re.compile(r"^\.nextflow\.log(\.\d+)?$")
_TRACE_GLOBS: Final = (
    "trace-*.txt",
    "trace.txt",
    "pipeline_info/execution_trace*.txt",
    "*/pipeline_info/execution_trace*.txt",
)


@dataclass(frozen=True, eq=False)
class NextflowRun:
    """What Nextflow believes about a run and each of its tasks (satisfies ``schema.RunLike``)."""

    name: str | None
    session_id: str | None
    version: str | None
    work_dir: str | None
    launch_time: pd.Timestamp | None
    end_time: pd.Timestamp | None
    state: str
    abort_cause: str | None
    abort_time: pd.Timestamp | None
    last_activity: pd.Timestamp | None
    tasks: pd.DataFrame
    launch_dir: str | None = None
    sources: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    trace_paths: list[str] = field(default_factory=list)
    log_paths: list[str] = field(default_factory=list)
    log: LogInfo | None = field(default=None, repr=False)
    warnings: list[str] = field(default_factory=list, repr=False)
    #: other runs of the launch dir (rotated logs of other launches, ``.nextflow/history``)
    #: and what they recorded: reconcile never lets their jobs be this run's.
    other_runs: list[OtherRun] = field(default_factory=list, repr=False)
    #: job id -> the sources that recorded that very id ("trace+log"), for the kill proof
    recorded_by: dict[str, str] = field(default_factory=dict, repr=False)
    #: ids only the weblog names for a task whose trace or log record names another job:
    #: a weblog claim the files contradict is never proof (issue #15)
    contradicted_ids: frozenset[str] = field(default_factory=frozenset, repr=False)
    #: where each of ``queues`` was read ("trace", "nextflow.config:12", …).
    queue_sources: dict[str, str] = field(default_factory=dict, repr=False)
    #: the run's AWS region and where it was read (the log's AwsOptions line, aws.region).
    region: str | None = None
    region_source: str = ""
    #: executors the run used ("awsbatch", "slurm", "local", …) and where that was read.
    executors: list[str] = field(default_factory=list)
    executor_source: str = ""
    #: the year of the log's times, how it was chosen, and whether it is proven (log lines
    #: carry no year; see ``batchkit.nextflow.log``). A trace alone carries its year.
    year: int | None = None
    year_source: str = ""
    year_proven: bool = True
    #: the config files its settings were read from (with those they include or could not
    #: read); None when the config could not be read at all.
    config_files: tuple[str, ...] | None = field(default=(), repr=False)
    _loader: Callable[[], NextflowRun] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        counts = self.tasks[TaskCol.STATUS].value_counts(dropna=False).to_dict() if len(self.tasks) else {}
        shown = ", ".join(f"{k}={v}" for k, v in counts.items())
        return (
            f"NextflowRun(name={self.name!r}, state={self.state!r}, tasks={len(self.tasks)} "
            f"[{shown}], sources={'+'.join(self.sources)})"
        )

    @property
    def on_aws_batch(self) -> bool | None:
        """True when the run used AWS Batch, False when it provably did not, None when unknown."""
        if not self.executors:
            return None
        return "awsbatch" in self.executors

    @property
    def year_note(self) -> str:
        """A note for every place times are shown, "" when the year is proven."""
        if self.year_proven or self.year is None:
            return ""
        return (
            f"the year {self.year} of the log's times is a guess ({self.year_source}): "
            ".nextflow.log carries no year and nothing in the launch dir proves it; "
            "pass year= to NextflowRun.from_dir/from_files if it is wrong"
        )

    def silent_for(self, now: pd.Timestamp | None = None) -> pd.Timedelta:
        """Time since the last sign of life (a log line, weblog event or trace write)."""
        if self.last_activity is None:
            return pd.Timedelta("NaT")
        current = pd.Timestamp.now(tz="UTC") if now is None else to_utc(now)
        return current - self.last_activity

    def reload(self) -> NextflowRun:
        """Read the same files (and weblog receiver) again: a new object, or this very view
        when nothing it was built from changed (see :class:`ReloadMemo`)."""
        if self._loader is None:
            raise NextflowReadError("this NextflowRun was built by hand and has no files to reload")
        return self._loader()

    @classmethod
    def from_files(
        cls,
        *,
        trace: PathLike | Sequence[PathLike] | None = None,
        log: PathLike | Sequence[PathLike] | None = None,
        weblog: WeblogReceiver | None = None,
        tz: str | tzinfo | None = None,
        year: int | None = None,
        follower: LogFollower | None = None,
        memo: ReloadMemo | None = None,
    ) -> NextflowRun:
        """Merge explicit trace file(s), log file(s) and/or a live weblog receiver.

        ``follower``: the log scans of an earlier read to continue (``reload`` passes its
        own, so that a reload scans only what was appended to a log); ``memo``: the view an
        earlier read built and its inputs (``reload`` passes its own: see :class:`ReloadMemo`).
        """
        if trace is None and log is None and weblog is None:
            raise NextflowReadError("nothing to read: pass trace=, log= and/or weblog=")
        trace_list = _paths(trace)
        log_list = _paths(log)
        logs, memo = follower or LogFollower(), memo or ReloadMemo()
        folder = log_list[-1].parent if log_list else None

        def inputs() -> tuple[object, ...]:
            return _inputs(folder, log_list, trace_list, logs, weblog, tz=tz, config_files=memo.config_files())

        before = inputs()  # taken before reading: a change while reading shows at the next reload
        trace_frame = read_trace(trace_list, tz=tz) if trace_list else None

        def loader() -> NextflowRun:
            with logs.lock:  # a tracker's refresh and a reload by hand may overlap
                return memo.reused(inputs()) or cls.from_files(
                    trace=trace_list or None, log=log_list or None, weblog=weblog, tz=tz, year=year, follower=logs,
                    memo=memo,
                )  # fmt: skip

        return memo.keep(before, _assemble(
            trace_frame,
            trace_list,
            log_list,
            weblog,
            tz=tz,
            year=year,
            launch_dir=str(folder) if folder is not None else None,
            loader=loader,
            logs=logs,
        ))

    @classmethod
    def from_dir(
        cls,
        launch_dir: PathLike,
        *,
        tz: str | tzinfo | None = None,
        year: int | None = None,
        weblog: WeblogReceiver | None = None,
        run_name: str | None = None,
        follower: LogFollower | None = None,
        memo: ReloadMemo | None = None,
    ) -> NextflowRun:
        """Find and merge the run's files in Nextflow's launch directory.

        ``run_name``: read that run (``-name``), not whichever launched last: a relaunch
        in the same dir rotates the run's log to ``.nextflow.log.N``, and its own becomes
        ``.nextflow.log`` (the launcher knows the name it gave; issue #15). Until that
        run's log exists, no log or trace of the dir is read as it.

        Looks for ``trace-*.txt``, ``trace.txt``, ``pipeline_info/execution_trace*.txt``
        (also one folder down, e.g. ``results/pipeline_info``) and ``.nextflow.log*``.
        The trace read is the one the log names (``-with-trace FILE`` on its
        command line, or TraceFileObserver's ``trace file:`` line); when the log
        names none, only traces sharing a submitted task hash with the log; with no
        log, the newest trace that has rows (a header-only trace never wins). Older
        traces sharing a task hash with the chosen one are read too: a task's hash
        includes the session id (``TaskProcessor`` hashes ``session.uniqueId``
        first), so only the earlier launches of a ``-resume``d run share hashes —
        and they alone record the tasks they abandoned. A trace of another session
        never replaces the run's own (see ``other_runs`` for what such files say).
        ``follower`` and ``memo`` as in ``from_files``.
        """
        folder = Path(launch_dir)
        if not folder.is_dir():
            raise NextflowReadError(
                "not a directory: pass the folder where `nextflow run` was launched", path=str(folder)
            )
        logs, memo = follower or LogFollower(), memo or ReloadMemo()

        def inputs() -> tuple[object, ...]:
            return _inputs(
                folder, [], _find_traces(folder), logs, weblog, tz=tz, config_files=memo.config_files(),
                config_trace=_config_trace(folder),
            )  # fmt: skip

        before = inputs()  # taken before reading: a change while reading shows at the next reload
        trace_candidates = _find_traces(folder)
        log_list = _log_files(folder)
        if run_name is not None:
            own = [_rotation(p.name) for p in log_list if scan_log_head(p).run_name == run_name]
            # Its own launch and the earlier ones (a -resume reads its session's earlier logs).
            log_list = [p for p in log_list if own and _rotation(p.name) >= min(own)]
            if not log_list:
                trace_candidates = []
        if not trace_candidates and not log_list and weblog is None:
            raise NextflowReadError(
                "no Nextflow trace or log found here: expected trace-*.txt, trace.txt, "
                "pipeline_info/execution_trace*.txt or .nextflow.log (run with -with-trace, "
                "or pass the files to NextflowRun.from_files)",
                path=str(folder),
            )
        frames = [read_trace(p, tz=tz) for p in trace_candidates]
        chosen = _choose_traces(folder, trace_candidates, frames, log_list, logs)
        trace_list = [trace_candidates[i] for i in chosen]
        trace_frame = merge_trace_frames([frames[i] for i in chosen]) if chosen else None
        if trace_frame is not None:
            trace_frame.attrs["warnings"] = [w for i in chosen for w in frames[i].attrs.get("warnings", [])]

        def loader() -> NextflowRun:
            with logs.lock:  # a tracker's refresh and a reload by hand may overlap
                return memo.reused(inputs()) or cls.from_dir(
                    folder, tz=tz, year=year, weblog=weblog, run_name=run_name, follower=logs, memo=memo
                )

        return memo.keep(before, _assemble(
            trace_frame, trace_list, log_list, weblog, tz=tz, year=year, launch_dir=str(folder), loader=loader, logs=logs
        ))  # fmt: skip


class ReloadMemo:
    """The run view built last and the inputs it was built from, kept between reloads.

    A reload first takes the inputs again (:func:`_inputs`): every log file of the launch
    dir as the :class:`LogFollower` checks it (no byte read since: same inode, size,
    modification time, first and last bytes), the device, inode, size and modification
    time of each trace, config file and ``.nextflow/history``, the weblog's count of
    events received, and the clock's year (a log's year may be guessed from it). When
    all equal the kept ones it returns the kept view: a dead run's static launch dir then
    costs a refresh a few ``stat`` calls, not a rebuild of its task table. Anything in
    doubt rebuilds: a view whose config could not be read is never reused.
    """

    def __init__(self) -> None:
        self._inputs: tuple[object, ...] | None = None
        self._run: NextflowRun | None = None
        #: run views built (every other reload reused the last one)
        self.builds = 0

    def config_files(self) -> tuple[str, ...]:
        """The config files the kept view was read from (their facts are inputs too)."""
        return (self._run.config_files or ()) if self._run is not None else ()

    def reused(self, inputs: tuple[object, ...]) -> NextflowRun | None:
        """The kept view when it was built from exactly ``inputs``, else None."""
        if self._run is None or self._inputs is None or inputs != self._inputs:
            return None
        return self._run

    def keep(self, inputs: tuple[object, ...], run: NextflowRun) -> NextflowRun:
        """Keep ``run``, built from ``inputs`` (taken before it was read), and return it."""
        self.builds += 1
        # ``inputs`` stat the config files of the view kept before: when this one read
        # others, the next inputs differ in those files' names (and so rebuild once).
        self._inputs = inputs if run.config_files is not None else None  # unreadable: never reused
        self._run = run
        return run


def _inputs(
    folder: Path | None,
    log_list: Sequence[Path],
    trace_list: Sequence[Path],
    follower: LogFollower,
    weblog: WeblogReceiver | None,
    *,
    tz: str | tzinfo | None,
    config_files: tuple[str, ...],
    config_trace: Sequence[str] = (),
) -> tuple[object, ...]:
    """The facts a run view's inputs are compared by (see :class:`ReloadMemo`).

    ``folder``: the launch dir, whose every ``.nextflow.log*`` (another launch's too: its
    jobs are never this run's), ``nextflow.config`` and ``.nextflow/history`` are read.
    """
    logs = list(dict.fromkeys([*log_list, *(_log_files(folder) if folder is not None else [])]))
    for path in logs:
        with contextlib.suppress(NextflowReadError, OSError):  # not a log (yet): its file facts tell
            follower.scan(path)  # reads only what changed; ``reads`` counts any byte read
    extra = [folder / "nextflow.config", folder / ".nextflow" / "history"] if folder is not None else []
    files = [*logs, *trace_list, *extra, *(Path(p) for p in config_files)]
    # Without tz the log's times are in this machine's zone (batchkit.nextflow._formats.resolve_tz).
    zone = (os.environ.get("TZ"), _stat(Path("/etc/localtime"))) if tz is None else None
    return (
        follower.reads,
        tuple((str(p), _stat(p)) for p in files),
        tuple(config_trace),
        None if weblog is None else (id(weblog), weblog.received),
        pd.Timestamp.now(tz="UTC").year,
        zone,
    )


def _stat(path: Path) -> tuple[int, int, int, int] | None:
    """(device, inode, size, modification time in ns) of ``path``; None when it is not there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _log_files(folder: Path) -> list[Path]:
    """The launch dir's ``.nextflow.log`` and its rotations, by name."""
    return sorted(
        (p for p in folder.glob(".nextflow.log*") if _LOG_NAME_RE.match(p.name) and p.is_file()),
        key=lambda p: p.name,
    )


# --- assembling -----------------------------------------------------------------


def _assemble(
    trace_frame: pd.DataFrame | None,
    trace_list: list[Path],
    log_list: list[Path],
    weblog: WeblogReceiver | None,
    *,
    tz: str | tzinfo | None,
    year: int | None,
    launch_dir: str | None,
    loader: Callable[[], NextflowRun],
    logs: LogFollower,
) -> NextflowRun:
    reference = None
    if trace_frame is not None and len(trace_frame) and trace_frame[TaskCol.SUBMIT].notna().any():
        reference = trace_frame[TaskCol.SUBMIT].min()
    year_ref = reference if reference is not None else _year_reference(trace_frame, trace_list, weblog)
    log_info = read_log(log_list, tz=tz, year=year, reference_time=year_ref, follower=logs) if log_list else None
    weblog_tasks = weblog.tasks() if weblog is not None else None
    log_session = log_info.session_id if log_info is not None else None
    if weblog is not None and log_session and weblog.run_id and weblog.run_id != log_session:
        # The receiver heard another session than the log's: none of its tasks are this
        # run's records (a forged POST, or another run given the same URL; issue #15).
        weblog_tasks = None
    tasks = merge_tasks(trace_frame, log_info.tasks if log_info else None, weblog_tasks)
    recorded, contradicted = record_evidence(
        {"trace": trace_frame, "log": log_info.tasks if log_info else None, "weblog": weblog_tasks}
    )
    state, cause, abort_time, end_time = run_state(
        log_info, weblog, trace_frame if trace_frame is not None else None
    )
    sources = [
        name
        for name, present in (("trace", trace_frame is not None), ("log", log_info is not None), ("weblog", weblog is not None))
        if present
    ]
    warnings = list(trace_frame.attrs.get("warnings", [])) if trace_frame is not None else []
    settings = run_settings(log_info, tasks, launch_dir)
    return NextflowRun(
        name=_first(log_info.run_name if log_info else None, weblog.run_name if weblog else None),
        session_id=_first(log_info.session_id if log_info else None, weblog.run_id if weblog else None),
        version=_first(log_info.version if log_info else None, weblog.version if weblog else None),
        work_dir=_first(
            log_info.work_dir if log_info else None,
            weblog.work_dir if weblog else None,
            _work_dir_from_tasks(tasks),
        ),
        launch_time=_first(
            log_info.launch_time if log_info else None,
            weblog.launch_time if weblog else None,
            reference,
        ),
        end_time=end_time,
        state=state,
        abort_cause=cause,
        abort_time=abort_time,
        last_activity=_last_activity(trace_frame, trace_list, log_info, weblog),
        tasks=tasks,
        launch_dir=launch_dir,
        sources=sources,
        queues=list(settings.queue_sources),
        trace_paths=[str(p) for p in trace_list],
        log_paths=log_info.paths if log_info else [],
        log=log_info,
        warnings=warnings,
        other_runs=other_runs_of(
            launch_dir, log_info, name=log_info.run_name if log_info else None, tz=tz, follower=logs
        ),
        recorded_by=recorded,
        contradicted_ids=contradicted,
        _loader=loader,
        queue_sources=settings.queue_sources,
        region=settings.region,
        region_source=settings.region_source,
        executors=settings.executors,
        executor_source=settings.executor_source,
        year=log_info.year if log_info is not None else None,
        year_source=log_info.year_source if log_info is not None else "",
        year_proven=log_info.year_proven if log_info is not None else True,
        config_files=settings.config_files,
    )


def merge_tasks(
    trace: pd.DataFrame | None, log: pd.DataFrame | None, weblog: pd.DataFrame | None
) -> pd.DataFrame:
    """Merge the three sources' task frames into one row per task (pure; see module doc)."""
    parts: list[pd.DataFrame] = []
    if trace is not None and len(trace):
        terminal = trace[TaskCol.STATUS].isin(list(TASK_TERMINAL)).fillna(False).to_numpy(dtype=bool)
        parts.append(trace.assign(_rank=np.where(terminal, 0, 2)))
    if weblog is not None and len(weblog):
        parts.append(weblog.assign(_rank=1))
    if log is not None and len(log):
        parts.append(log.assign(_rank=3))
    if not parts:
        return fmt.empty_tasks()
    combined = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    combined["_key"] = _merge_keys(combined).to_numpy()
    combined = combined.sort_values(["_key", "_rank"], kind="stable")
    source = combined[TaskCol.SOURCE].astype("string")
    grouped = combined.drop(columns=[TaskCol.SOURCE, "_rank"]).groupby("_key", sort=False)
    merged = grouped.first()
    labels = pd.Series("", index=merged.index, dtype=object)
    for name in _SOURCE_ORDER:
        has = (source == name).fillna(False).groupby(combined["_key"], sort=False).any()
        has = has.reindex(merged.index, fill_value=False).to_numpy(dtype=bool)
        labels = labels.where(~has, labels + name + "+")
    merged[TaskCol.SOURCE] = labels.str.rstrip("+")
    merged = merged.reset_index(drop=True)
    out = fmt.conform_tasks(merged)
    order = out.sort_values([TaskCol.TASK_ID, TaskCol.SUBMIT], na_position="last", kind="stable").index
    return out.loc[order].reset_index(drop=True)


def _merge_keys(frame: pd.DataFrame) -> pd.Series:
    """The hash when known here or (via the job id / task id) in another source."""
    short = frame[TaskCol.HASH].astype("string")
    known = frame[short.notna().to_numpy()]
    for col in (TaskCol.NATIVE_ID, TaskCol.TASK_ID):
        ids = known[col].astype("string")
        pairs = pd.DataFrame({"id": ids, "hash": known[TaskCol.HASH].astype("string")}).dropna()
        pairs = pairs.drop_duplicates()
        unique = pairs[~pairs["id"].duplicated(keep=False)]  # ambiguous ids (resumes) map nowhere
        lookup = pd.Series(unique["hash"].to_numpy(), index=unique["id"].to_numpy(), dtype="string")
        short = short.fillna(frame[col].astype("string").map(lookup).astype("string"))
    with_hash = frame.assign(**{TaskCol.HASH: short})
    return task_key(with_hash)


def run_state(
    log_info: LogInfo | None, weblog: WeblogReceiver | None, trace: pd.DataFrame | None
) -> tuple[str, str | None, pd.Timestamp | None, pd.Timestamp | None]:
    """(state, abort cause, abort time, end time) from what the sources say (pure)."""
    aborted = completed = False
    cause: str | None = None
    abort_time: pd.Timestamp | None = None
    end_time: pd.Timestamp | None = None
    if log_info is not None:
        if log_info.abort_cause is not None:
            aborted, cause, abort_time = True, log_info.abort_cause, log_info.abort_time
        elif log_info.completed:
            completed, end_time = True, log_info.end_time
    # With a log, the run's end is the log's word: Nextflow logs its abort and its
    # "Execution complete" as it sends those events, and a POST can be forged (a leaked
    # token) — one forged "completed" would make a live run's jobs orphans (issue #15).
    if weblog is not None and log_info is None:
        if weblog.run_state == "aborted":
            aborted = True
            cause = cause or weblog.error_message or "the weblog reported an error"
            abort_time = abort_time or weblog.abort_time
        elif weblog.run_state == "completed":
            completed = True
            end_time = end_time or weblog.end_time
    if log_info is None and weblog is None and trace is not None and len(trace):
        # A trace alone: ABORTED rows are only written when Nextflow aborted the run.
        aborted_rows = trace[TaskCol.STATUS].eq("ABORTED").fillna(False)
        if aborted_rows.any():
            aborted = True
            cause = f"the trace lists {int(aborted_rows.sum())} ABORTED task(s)"
    if aborted:
        return "aborted", cause, abort_time, abort_time
    if completed:
        return "completed", None, None, end_time
    return "alive", None, None, None


# --- helpers ----------------------------------------------------------------------


def _paths(value: PathLike | Sequence[PathLike] | None) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, str | Path):
        return [Path(value)]
    return [Path(v) for v in value]


def _find_traces(folder: Path) -> list[Path]:
    found: set[Path] = set()
    for pattern in _TRACE_GLOBS:
        found.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(found, key=lambda p: (_mtime(p), p.name))  # oldest first


def _same_run_traces(frames: Sequence[pd.DataFrame], newest: int | None = None) -> list[int]:
    """Indices (oldest first) of trace ``newest`` (default: the last) and the older ones
    sharing a hash with it (the earlier launches of a ``-resume``d run)."""
    if not frames:
        return []
    top = len(frames) - 1 if newest is None else newest
    chosen = [top]
    hashes = _hashes(frames[top])
    for i in range(top - 1, -1, -1):
        older = _hashes(frames[i])
        if older & hashes:
            chosen.append(i)
            hashes |= older
    return sorted(chosen)


def named_traces(log_text: str) -> list[str]:
    """Trace paths a log names: ``-with-trace FILE`` on its ``$>`` command line and the
    path in TraceFileObserver's ``trace file:`` line (pure; read by the one log reader)."""
    return scan_log_lines(log_text.splitlines(), require_log=False).named_traces()


def _full_scan(path: Path, follower: LogFollower | None = None) -> LogScan:
    try:
        return scan_log_file(path) if follower is None else follower.scan(path)
    except NextflowReadError:  # not a log after all: it records nothing
        return LogScan(path=str(path))


def record_evidence(sources: dict[str, pd.DataFrame | None]) -> tuple[dict[str, str], frozenset[str]]:
    """Which sources recorded each job id, and the weblog-only ids the files contradict (pure).

    ``sources`` maps "trace"/"log"/"weblog" to that source's task frame. An id is
    contradicted when only the weblog names it and the trace or the log names another
    job id for the same task hash.
    """
    by_id: dict[str, list[str]] = {}
    file_ids: dict[str, set[str]] = {}  # hash -> ids the trace/log recorded for it
    weblog_pairs: list[tuple[str, str]] = []
    for name, frame in sources.items():
        if frame is None or not len(frame):
            continue
        cached = frame[TaskCol.STATUS].eq("CACHED").fillna(False).to_numpy(dtype=bool)
        ids = frame[TaskCol.NATIVE_ID].to_numpy(dtype=object, na_value=None)
        hashes = frame[TaskCol.HASH].to_numpy(dtype=object, na_value=None)
        for job_id, short, was_cached in zip(ids, hashes, cached, strict=True):
            if job_id is None or was_cached:
                continue
            seen = by_id.setdefault(str(job_id), [])
            if name not in seen:
                seen.append(name)
            if short is not None:
                if name == "weblog":
                    weblog_pairs.append((str(job_id), str(short)))
                else:
                    file_ids.setdefault(str(short), set()).add(str(job_id))
    contradicted = frozenset(
        job_id
        for job_id, short in weblog_pairs
        if by_id[job_id] == ["weblog"] and file_ids.get(short, set()) - {job_id}
    )
    order = {s: i for i, s in enumerate(_SOURCE_ORDER)}
    recorded = {j: "+".join(sorted(names, key=lambda s: order.get(s, 9))) for j, names in by_id.items()}
    return recorded, contradicted


def _config_trace(folder: Path) -> list[str]:
    """``trace.file`` of the launch dir's ``nextflow.config`` (enabled, literal), if any.

    Asked only when the log's head names no trace (TraceFileObserver logs the path
    whenever a trace is written, whatever enabled it).
    """
    try:
        name = trace_file(run_config(folder, home=False))
    except Exception:  # an unreadable config only means no name from it
        return []
    return [name] if name else []


def _choose_traces(
    folder: Path,
    candidates: Sequence[Path],
    frames: Sequence[pd.DataFrame],
    log_list: Sequence[Path],
    follower: LogFollower | None = None,
) -> list[int]:
    """Which of ``candidates`` (oldest first) are this run's traces (see ``from_dir``)."""
    if not candidates:
        return []
    if log_list:
        newest_log = min(log_list, key=lambda p: _rotation(p.name))  # .nextflow.log is the newest
        names = scan_log_head(newest_log).named_traces()
        if names:
            wanted = set()
            for name in names:
                path = Path(name)
                wanted.add(str((path if path.is_absolute() else folder / path).resolve()))
                wanted.add("name:" + path.name)  # written on another machine: same file name here
            exact = [i for i, p in enumerate(candidates) if str(p.resolve()) in wanted]
            hits = exact or [i for i, p in enumerate(candidates) if "name:" + p.name in wanted]
            if not hits:
                return []  # the log's trace is not here: another run's trace must not stand in
            return sorted({j for i in hits for j in _same_run_traces(frames, i)})
        # No trace named: only traces sharing a task hash this session submitted.
        submitted = _full_scan(newest_log, follower).submitted_hashes
        own = [i for i, f in enumerate(frames) if _hashes(f) & submitted]
        # Among those, the one `trace.file` in the launch dir's config names, if any.
        configured = {Path(name).name for name in _config_trace(folder)}
        preferred = [i for i in own if candidates[i].name in configured] or own
        return sorted({j for i in preferred[-1:] for j in _same_run_traces(frames, i)})
    # No log: the newest trace with rows (a header-only trace, e.g. from `trace.file` in a
    # config, never wins over one with rows).
    with_rows = [i for i, f in enumerate(frames) if len(f)]
    return _same_run_traces(frames, with_rows[-1] if with_rows else None)


def _rotation(name: str) -> int:
    """``.nextflow.log`` -> 0, ``.nextflow.log.2`` -> 2."""
    suffix = name.rpartition(".nextflow.log")[2].lstrip(".")
    return int(suffix) if suffix.isdigit() else 0


def other_runs_of(
    launch_dir: str | None,
    log_info: LogInfo | None,
    *,
    name: str | None,
    tz: str | tzinfo | None = None,
    follower: LogFollower | None = None,
) -> list[OtherRun]:
    """The other launches of ``launch_dir`` and what each recorded (job ids, submitted hashes).

    Read from every ``.nextflow.log*`` that is not one of this run's (each is one launch,
    logback's RollOnStartupPolicy) and from ``.nextflow/history`` (one tab-separated line
    per run: time, duration, run name, status, revision, session id, command). A launch
    is another run when its run name differs from this run's: a ``-resume`` keeps the
    session id but is a run of its own, with its own jobs.
    """
    if launch_dir is None:
        return []
    folder = Path(launch_dir)
    mine = {str(Path(p).resolve()) for p in (log_info.paths if log_info else [])}
    found: dict[str, OtherRun] = {}
    for path in sorted(folder.glob(".nextflow.log*")):
        if not _LOG_NAME_RE.match(path.name) or not path.is_file() or str(path.resolve()) in mine:
            continue
        scan = _full_scan(path, follower)  # streamed by the one log reader: bounded memory
        other = scan.run_name
        if other is not None and other == name:
            continue
        found[other or path.name] = OtherRun(
            name=other,
            session_id=scan.session_id,
            source=path.name,
            job_ids=frozenset(scan.cloud_job_ids),
            hashes=frozenset(scan.submitted_hashes),
        )
    history = folder / ".nextflow" / "history"
    zone = fmt.resolve_tz(tz)
    for line in _history_lines(history):
        parts = line.split("\t")
        if len(parts) >= 6 and parts[2] and parts[2] != name:
            # Its times bound the run: a job created during it (and outside this run's
            # lifetime) is labelled its, even when its log was rotated away.
            start, end = _history_span(parts[0], parts[1], zone)
            known = found.get(parts[2])
            if known is None:
                found[parts[2]] = OtherRun(
                    name=parts[2], session_id=parts[5] or None, source=".nextflow/history",
                    launch_time=start, end_time=end,
                )
            else:
                found[parts[2]] = dataclasses.replace(
                    known, launch_time=known.launch_time or start, end_time=known.end_time or end
                )
    return list(found.values())


def _history_span(stamp: str, duration: str, zone: tzinfo) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """(start, end) in UTC of one ``.nextflow/history`` line: a local ``yyyy-MM-dd HH:mm:ss``
    (the launch machine's zone, like the log) and a duration such as ``1h 2m 3s`` (``-``
    while the run goes on, or for a run that never ended: no end then)."""
    naive = pd.to_datetime(pd.Series([stamp.strip()]), errors="coerce", format="%Y-%m-%d %H:%M:%S")
    if naive.isna().all():
        return None, None
    start = fmt.localize_to_utc(naive, zone).iloc[0]
    try:
        length = pd.to_timedelta(re.sub(r"(\d)d\b", r"\1D", duration.strip()).replace(" ", ""))
    except (ValueError, TypeError):
        return start, None
    return start, (None if pd.isna(length) else start + length)



def _history_lines(path: Path, limit: int = 100_000) -> list[str]:
    """``.nextflow/history``'s lines, streamed and bounded (one line per run; a damaged or
    sparse file costs at most ``limit`` cut lines, never its size)."""
    if not path.is_file():
        return []
    try:
        with fmt.open_regular(path, "history file") as fh:
            lines = []
            for raw in fmt.bounded_lines(fh, 64 * 1024):
                lines.append(raw.decode("utf-8", errors="replace"))
                if len(lines) >= limit:
                    break
            return lines
    except NextflowReadError:
        return []


def _hashes(frame: pd.DataFrame) -> set[str]:
    return set(frame[TaskCol.HASH].dropna().astype(str)) if TaskCol.HASH in frame else set()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None and not (isinstance(value, float) and value != value) and value is not pd.NaT:
            return value
    return None


def _work_dir_from_tasks(tasks: pd.DataFrame) -> str | None:
    dirs = tasks[TaskCol.WORKDIR].dropna()
    if dirs.empty:
        return None
    return fmt.workdir_root(str(dirs.iloc[0]))


def _last_activity(
    trace: pd.DataFrame | None,
    trace_list: Sequence[Path],
    log_info: LogInfo | None,
    weblog: WeblogReceiver | None,
) -> pd.Timestamp | None:
    if log_info is not None and log_info.last_line_time is not None:
        # Nextflow writes its log as it goes (in-flight dumps every few minutes), so no
        # genuine trace or weblog time lies past its last line. A trace row can be edited
        # and a weblog POST forged (a leaked token): letting their times count would
        # stretch the lifetime that bounds which jobs can be the run's (issue #15).
        return log_info.last_line_time
    stamps: list[pd.Timestamp] = []
    if weblog is not None and weblog.last_event_time is not None:
        stamps.append(weblog.last_event_time)
    if trace is not None and len(trace):
        for col in (TaskCol.SUBMIT, TaskCol.START, TaskCol.COMPLETE):
            latest = trace[col].max()
            if latest is not None and latest is not pd.NaT:
                stamps.append(latest)
    if not stamps:
        # Only when nothing dated says more: a file time is moved to "now" by any copy
        # (cp, git clone, aws s3 sync), which would make a dead run look active and
        # stretch its lifetime — the window reconcile proves a job's ownership in.
        for path in trace_list:
            mtime = _mtime(path)
            if mtime:
                stamps.append(pd.Timestamp(mtime, unit="s", tz="UTC"))
    return max(stamps) if stamps else None


# --- where the jobs went: executors, region, queues, and the year's evidence ------------

_STAMP_IN_NAME_RE: Final = re.compile(r"((?:19|20)\d\d)-?([01]\d)-?([0-3]\d)[_-]?([0-2]\d)-?([0-5]\d)-?([0-5]\d)")
_NUMERIC_ID_RE: Final = r"\d+(?:[_.]\d+|\[\d+\])?"
_UUID_RE: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(:\d+)?$"


@dataclass
class RunSettings:
    """Executors, region and queues of a run, each with the place it was read."""

    executors: list[str] = field(default_factory=list)
    executor_source: str = ""
    region: str | None = None
    region_source: str = ""
    queue_sources: dict[str, str] = field(default_factory=dict)
    #: the config files read (see ``NextflowRun.config_files``)
    config_files: tuple[str, ...] | None = ()


def run_settings(log_info: LogInfo | None, tasks: pd.DataFrame, launch_dir: str | None) -> RunSettings:
    """What the log, the launch dir's config and the tasks say about where the jobs went.

    Region: the log's ``AwsOptions(… region:…)`` line first (what the run used), then
    ``aws.region`` in the config. Queues: the trace's ``queue`` column and the config's
    ``process.queue`` and per-process (``withName``/``withLabel``) queues, together (a
    step that has not finished yet is in no trace row).
    Executors: the log's ``[warm up] executor > …`` and submit lines, then the config's
    ``process.executor``, then the job ids (Batch ids are UUIDs; PIDs and grid ids are
    numbers).
    """
    out = RunSettings()
    config = _run_config(log_info, launch_dir)
    out.config_files = _config_files(config) if config is not None else (None if launch_dir else ())
    if log_info is not None and log_info.executors:
        out.executors, out.executor_source = list(log_info.executors), f"log ({log_info.path})"
    elif config is not None and (found := process_executors(config)):
        out.executors, out.executor_source = found, "nextflow.config (process.executor)"
    else:
        ids = tasks[TaskCol.NATIVE_ID].dropna().astype(str) if len(tasks) else pd.Series(dtype=str)
        if len(ids):
            if ids.str.match(_UUID_RE).all():
                out.executors, out.executor_source = ["awsbatch"], "job ids (AWS Batch UUIDs)"
            elif ids.str.fullmatch(_NUMERIC_ID_RE).all():  # PIDs, SLURM/SGE/LSF/PBS job ids
                out.executors, out.executor_source = ["not awsbatch"], "job ids (numbers, not AWS Batch UUIDs)"
    if log_info is not None and log_info.region:
        out.region, out.region_source = log_info.region, f"log ({log_info.path}: AwsOptions region)"
    elif config is not None and (region := aws_region(config)) is not None:
        out.region, out.region_source = region[0], f"{region[1]} (aws.region)"
    if "queue" in tasks:
        for q in sorted({str(q) for q in tasks["queue"].dropna().unique()}):
            out.queue_sources.setdefault(q, "trace (queue column)")
    if config is not None:  # also queues no finished task used yet (withName queues of later steps)
        for queue, where in process_queues(config):
            out.queue_sources.setdefault(queue, f"{where} (process queue)")
    return out


def _run_config(log_info: LogInfo | None, launch_dir: str | None) -> NfConfig | None:
    if launch_dir is None or not Path(launch_dir).is_dir():
        return None
    try:
        return run_config(
            launch_dir,
            logged_files=log_info.config_files if log_info is not None else (),
            original_launch_dir=log_info.config_local_dir if log_info is not None else None,
            cli_args=(log_info.command or "").split() if log_info is not None else (),
            profiles=log_info.profiles if log_info is not None else None,
            home=False,
        )
    except (OSError, ValueError, RecursionError):  # an unreadable config names nothing for sure
        return None


def _config_files(config: NfConfig) -> tuple[str, ...]:
    """Every file ``config`` was read from: read, included, or the run read and we could not."""
    unreadable = (o.path for o in config.opaque if o.path)
    included = (i.resolved for i in config.includes if i.resolved)
    return tuple(dict.fromkeys([*config.files, *unreadable, *included]))


def _year_reference(
    trace: pd.DataFrame | None, trace_list: Sequence[Path], weblog: WeblogReceiver | None
) -> pd.Timestamp | None:
    """A dated fact about the run besides trace dates: the weblog's utcTime, a trace-<timestamp> name."""
    if weblog is not None and weblog.launch_time is not None:
        return pd.Timestamp(weblog.launch_time)
    for path in trace_list:
        if (m := _STAMP_IN_NAME_RE.search(path.name)) is not None:
            y, mo, d, hh, mm, ss = (int(g) for g in m.groups())
            try:
                return pd.Timestamp(year=y, month=mo, day=d, hour=hh, minute=mm, second=ss, tz="UTC")
            except ValueError:
                continue
    return None


if TYPE_CHECKING:

    def _is_run_like(run: NextflowRun) -> RunLike:  # mypy proves NextflowRun satisfies RunLike
        return run
