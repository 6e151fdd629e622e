"""The one ``.nextflow.log`` reader: run facts and a task table (every other module asks it).

Nextflow's log lines look like
``Jan-24 12:49:27.026 [Task submitter] INFO  nextflow.Session - [16/b7af3d] Submitted process > NAME (1)``
(logback pattern ``%d{MMM-dd HH:mm:ss.SSS} [%t] %-5level %logger{36} - %msg``):
the timestamp has no year and no zone. Lines without a timestamp continue the
previous message: the in-flight dumps (``~> TaskHandler[...]``), the ``Caused by:``
block of ``Error executing process``, a failed launch's exception. Only those are
read; stack traces and DAG dumps are skipped.

The file is streamed line by line (each line cut at ``_formats.MAX_LINE_BYTES``):
memory grows with the tasks the log names, not with its size, and what is not a
regular file (a FIFO, ``/dev/zero``) is refused before it is opened.

Each ``.nextflow.log.N`` is an earlier *launch* (logback ``RollOnStartupPolicy``),
not a size rotation. Read together they are oldest first: the run facts (name,
abort, end) come from the newest launch; tasks from earlier launches are kept
when they share its session id (``-resume`` keeps the session), because the
earlier launch may have left jobs running that the newest log never mentions.

What a task's status becomes, beyond the submit and ``Task completed`` lines:

- ``Error executing process > 'NAME'`` (and ``[ab/cdef12] NOTE: Process … -- Error is
  ignored / Execution is retried``) make a task that ended FAILED, even after a ``Task
  completed … status: COMPLETED; exit: 0`` line: missing outputs are found after the
  task completed (``TaskProcessor.finalizeTask``). The ``Caused by:`` line is its reason.
  A task the error names that never ended keeps its status (and gets the reason): its
  status check threw and it was dropped without a kill (nextflow-io/nextflow#5516).
- ``status: COMPLETED; exit: -`` is not a success: the handler could not read the exit
  file (``[AWS BATCH] Cannot read exit status``; the processor then sees
  ``Integer.MAX_VALUE`` and fails the task, ``TaskProcessor`` "terminated for an
  unknown reason"). It reads FAILED with exit unknown and the reason "outcome unknown".
- Tasks Nextflow killed — in flight at ``Killing running tasks (N)`` (before 21.12
  ``Killing pending tasks (N)``), or named by ``[AWS BATCH] killing job=<id>`` — are
  ABORTED, as the trace writes them (``TaskPollingMonitor.cleanup``). Tasks submitted
  after that line (nextflow-io/nextflow#7445) keep their status.
- The in-flight dumps list every task still in flight at each poll: the newest wins.

The year (log lines carry none), in order of proof:

1. the caller's ``year``;
2. ``reference_time``: a dated fact from the launch dir (a trace date, a weblog
   ``utcTime``, a ``trace-<timestamp>.txt`` name);
3. the log's own epoch times (``started: 1579898976775`` / ``exited: 2025-07-29T…``
   in TaskHandler lines);
4. the banner's build date (``Created: 04-03-2025 17:55 UTC``) is a lower bound and
   the newest file's modification time an upper bound (a copy only moves it later):
   when they leave one year, it is proven; otherwise the lower bound is used
   (a fresh ``cp``/``git clone`` reads as the original did) and flagged unproven;
5. the file time alone (unproven); then the clock (unproven).

A month that goes backwards between lines (Dec -> Jan) starts a new year.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from batchkit._time import to_utc
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
#: ``N E X T F L O W  ~  version 24.10.5`` (log and console); ``nextflow -version``
#: prints ``version 24.10.4 build 5934``.
VERSION_RE: Final = re.compile(r"N E X T F L O W\s+~\s+version\s+(\S+)")
_BARE_VERSION_RE: Final = re.compile(r"\bversion\s+(\d+\.\d+\.\d+(?:-\w+)?)")
_LAUNCHING_RE: Final = re.compile(r"Launching `[^`]*` \[([^\]]+)\]")
_SESSION_RE: Final = re.compile(r"Session (?:UUID|uuid): (\S+)")
_RUN_NAME_RE: Final = re.compile(r"^Run name: (\S+)")
_WORK_DIR_RE: Final = re.compile(r"^Work-dir: (\S+)")
_COMMAND_RE: Final = re.compile(r"^\$> (.*)$")
_PROFILE_RE: Final = re.compile(r"Applying config profile: `([^`]+)`")
_PARSING_RE: Final = re.compile(r"Parsing config file: (.+?)\s*$")
_LOCAL_CONFIG_RE: Final = re.compile(r"Found config local: (.+?)\s*$")
# "Workflow started -- trace file: /abs/launch/trace-new.txt" (TraceFileObserver)
_TRACE_FILE_RE: Final = re.compile(r"trace file: (.+?)\s*$")
# Banner detail block (a continuation line): "  Created: 04-03-2025 17:55 UTC (17:55 BST)"
_CREATED_RE: Final = re.compile(r"^\s*Created: (\d\d)-(\d\d)-(\d{4})")
# "[warm up] executor > awsbatch"
_WARM_UP_RE: Final = re.compile(r"\[warm up\] executor > (\S+)")
# "[AWS BATCH] Executor options=AwsOptions(... region:eu-north-1, ...)"; awsCli "--region eu-north-1"
_REGION_RE: Final = re.compile(r"(?:\bregion:|--region[ =])([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d)\b")
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
_CLOUD_EXECUTORS: Final = {"AWS BATCH": "awsbatch", "GOOGLE BATCH": "google-batch"}
# "TaskHandler[jobId: 4; id: 1; name: NAME; status: COMPLETED; exit: 0; error: -; workDir: /w/ab/cd…
#  started: 1579898976775; exited: 2020-01-24T21:49:48Z; ]" (jobId/started/exited: grid
# executors and some versions; AWS Batch 24.x writes neither).
_HANDLER_RE: Final = re.compile(
    r"TaskHandler\[(?:jobId: ([^;]+); )?id: (\d+); name: (.*?); status: (\w+); "
    r"exit: ([^;]+); error: (.*?); workDir: (\S+?)(?:[\s\]]|$)(?:.*?started: (\d+);)?(?:.*?exited: ([0-9T:.\-]+Z);)?"
)
_TASK_DONE_PREFIX: Final = "Task completed > "
_DUMP_RE: Final = re.compile(r"^!! executor (\S+) > tasks to be completed: \d+")
_ERROR_EXECUTING_RE: Final = re.compile(r"^Error executing process > '(.+)'\s*$")
# "[66/a45068] NOTE: Process `X (1)` terminated with an error exit status (137) -- Execution is retried (1)"
_NOTE_RE: Final = re.compile(r"^\[([0-9a-f]{2}/[0-9a-f]{6})\] NOTE: (.+?)(?: -- (Execution is retried|Error is ignored).*)?$")
_ABORT_RE: Final = re.compile(r"^Session aborted -- Cause: ?(.*)$")
_KILLING_TASKS_RE: Final = re.compile(r"Killing (?:running|pending) tasks \((\d+)\)")
# Kill wordings: before 25.04 "[AWS BATCH] killing job=<id>; response=..." (logged after
# TerminateJob answered); since 25.04 "[AWS BATCH] cleanup = terminating job <id>" (before
# the call is queued to the reaper) and "[AWS BATCH] cleanup = killing job <id>" (after).
_KILL_RE: Final = re.compile(r"^\[AWS BATCH\].*?\b(terminating|killing) job[= ]([\w:-]+)")
_REAPER_GAVE_UP: Final = "Some jobs may not be terminated"
_REAPER_WAIT_RE: Final = re.compile(r"Waiting jobs reaper to complete \((\d+) jobs? to be terminated\)")
_GOODBYE: Final = "Execution complete -- Goodbye"
# A failed launch (no live run): "DEBUG nextflow.cli.Launcher - Operation aborted" then the
# exception on the next line; "ERROR nextflow.cli.Launcher - <message>" (``@unknown``: the
# message is on the exception line); "ERROR nextflow.Nextflow - > Error: <message>".
_OPERATION_ABORTED: Final = "Operation aborted"
_UNEXPECTED: Final = "Handling unexpected condition for"
_UNEXPECTED_TASK_RE: Final = re.compile(r"^task: name=.*; work-dir=(\S+)")
_UNEXPECTED_ERROR_RE: Final = re.compile(r"^error \[[^\]]*\]: (.+)$")
_EXCEPTION_RE: Final = re.compile(r"^([A-Za-z_$][\w$]*(?:\.[\w$]+)+(?:Exception|Error)): ?(.*)$")
_ROTATION_RE: Final = re.compile(r"\.(\d+)$")
#: Every line the run facts below the task lines come from holds one of these.
_RARE_RE: Final = re.compile(
    r"warm up|N E X T F L O W|Launching `|Session (?:UUID|uuid|aborted)|Run name: |Work-dir: |"
    r"Applying config profile|Found config local|Parsing config file|Killing (?:running|pending)|"
    r"Some jobs may not|Waiting jobs reaper|Execution complete|trace file: "
)
# Console output saved as a log: the banner, "executor >  awsbatch (5)", "[ab/cdef12] NAME …".
_CONSOLE_RE: Final = re.compile(
    r"^\s*(?:┃\s*)?(?:N E X T F L O W|Launching `|executor >\s+\S+|\[[0-9a-f]{2}/[0-9a-f]{6}\] )"
)
#: Before the first timestamped line, this many lines at most (a log starts with one).
_PROBE_LINES: Final = 2000
#: A file with no timestamped line in its first 4 MiB is not a log (read no further).
_PROBE_BYTES: Final = 4 * 1024 * 1024
_LINE_RE_BYTES: Final = re.compile(
    rb"(?m)^(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d\d \d\d:\d\d:\d\d\.\d{3} \["
)
#: Reasons written into ``TaskCol.NF_REASON``.
UNKNOWN_OUTCOME: Final = "outcome unknown: Nextflow could not read the task's exit status (exit: -)"
KILLED_BY_NEXTFLOW: Final = "killed by Nextflow"

# A time waiting for its year: (year offset, month, day, hour, minute, second, millisecond,
# line number, file index) — the last two only name the line of an impossible date.
_When = tuple[int, ...]


@dataclass
class LogInfo:
    """What ``.nextflow.log`` says about a run (times are UTC Timestamps or None)."""

    paths: list[str]
    version: str | None = None
    run_name: str | None = None
    session_id: str | None = None
    work_dir: str | None = None
    launch_time: pd.Timestamp | None = None
    #: TASK_COLUMNS frame (plus ``nf_reason``), source "log".
    tasks: pd.DataFrame = field(default_factory=fmt.empty_tasks)
    #: "Session aborted -- Cause: …", or a failed launch's error (then ``launch_failed``).
    abort_cause: str | None = None
    abort_time: pd.Timestamp | None = None
    #: the launch failed before or while starting (Launcher error, compile error): no live run.
    launch_failed: bool = False
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
    #: the year given to the first line, how it was chosen, and whether that is proven.
    year: int | None = None
    year_source: str = ""
    year_proven: bool = False
    #: executors the run used, in order of first mention ("awsbatch", "slurm", "local", …).
    executors: list[str] = field(default_factory=list)
    #: the AWS region of ``AwsOptions(… region:…)`` / ``--region`` in awsCli, if logged.
    region: str | None = None
    #: the command line (``$> nextflow run …``) and the trace file the run wrote, if logged.
    command: str | None = None
    trace_file: str | None = None
    #: config profiles applied (None: no "Applying config profile" line), config files parsed
    #: (in order), and the launch dir on the launch machine — to read the run's own config.
    profiles: list[str] | None = None
    config_files: list[str] = field(default_factory=list)
    config_local_dir: str | None = None
    #: earlier launches left out because their session id differs.
    ignored_paths: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The newest log file read."""
        return self.paths[-1]

    @property
    def used_aws_batch(self) -> bool:
        """The log shows the AWS Batch executor at work."""
        return "awsbatch" in self.executors


@dataclass
class LogScan:
    """One log file's facts, streamed once; times still wait for their year (pure data).

    ``*_line`` fields are 1-based line numbers (for the doctor's evidence).
    """

    path: str
    version: str | None = None
    version_line: int | None = None
    command: str | None = None
    run_name: str | None = None
    session_id: str | None = None
    work_dir: str | None = None
    profiles: list[str] = field(default_factory=list)
    config_files: list[str] = field(default_factory=list)
    #: the launch dir on the launch machine ("Found config local: <dir>/nextflow.config").
    config_local_dir: str | None = None
    trace_file: str | None = None
    executors: list[str] = field(default_factory=list)
    region: str | None = None
    #: banner "Created: dd-MM-yyyy": (year, month, day)
    build_date: tuple[int, int, int] | None = None
    abort_cause: str | None = None
    abort_when: _When | None = None
    abort_line: int | None = None
    launch_failed: bool = False
    killed_count: int | None = None
    killed: list[str] = field(default_factory=list)
    kill_requested: list[str] = field(default_factory=list)
    reaper_gave_up: bool = False
    reaper_line: int | None = None
    reaper_pending: int | None = None
    end_when: _When | None = None
    completed: bool = False
    first_when: _When | None = None
    last_when: _When | None = None
    #: months of the first and last line, and the year offset reached (Dec -> Jan bumps).
    first_month: int = 0
    last_month: int = 0
    #: a log line paired with an epoch instant it reports (TaskHandler started/exited).
    epoch_evidence: tuple[_When, pd.Timestamp] | None = None
    #: (line, job id) of AWS Batch submissions logged after the abort (#7445).
    submitted_after_abort: list[tuple[int, str]] = field(default_factory=list)
    #: per task hash: the facts gathered so far (a dict of TaskCol -> value; times as _When).
    tasks: dict[str, dict[str, object]] = field(default_factory=dict)
    #: hashes of "[ab/cdef12] Submitted process" / "Re-submitted process" lines (not cached).
    submitted_hashes: set[str] = field(default_factory=set)
    #: job ids of every cloud Batch submit line ("[AWS BATCH] … submitted > job=<id>"), in order.
    cloud_job_ids: list[str] = field(default_factory=list)

    @property
    def used_aws_batch(self) -> bool:
        return "awsbatch" in self.executors

    def named_traces(self) -> list[str]:
        """Trace paths the log names: ``-with-trace FILE`` on the command line, then the
        TraceFileObserver line (``Workflow started -- trace file:``; 21.x ``Flow starting``)."""
        names: list[str] = []
        args = (self.command or "").split()
        for i, arg in enumerate(args):
            if arg == "-with-trace" and i + 1 < len(args) and not args[i + 1].startswith("-"):
                names.append(args[i + 1])
            elif arg.startswith("-with-trace="):
                names.append(arg.split("=", 1)[1])
        if self.trace_file:
            names.append(self.trace_file)
        return list(dict.fromkeys(n.strip("'\"") for n in names if n.strip("'\"")))


def read_log(
    paths: PathLike | Sequence[PathLike],
    *,
    tz: str | tzinfo | None = None,
    year: int | None = None,
    reference_time: pd.Timestamp | None = None,
    follower: LogFollower | None = None,
) -> LogInfo:
    """Read ``.nextflow.log`` (and rotations ``.nextflow.log.1`` …) into a :class:`LogInfo`.

    ``tz`` is the zone of the machine that ran Nextflow (default: this
    machine's); ``year`` the year of the oldest file's first line;
    ``reference_time`` a dated fact about the run (see the module doc);
    ``follower`` keeps each file's scan between calls, so that reading a growing log
    again scans only what was appended (see :class:`LogFollower`).
    """
    path_list = _order_oldest_first(_path_list(paths))
    if not path_list:
        raise NextflowReadError("no log file given: pass the path of .nextflow.log")
    zone = fmt.resolve_tz(tz)
    scans = [scan_log_file(p) if follower is None else follower.scan(p) for p in path_list]
    mtime = _mtime_utc(path_list[-1])
    return build_log_info(scans, tz=zone, year=year, reference_time=reference_time, mtime=mtime)


def scan_log_file(path: PathLike) -> LogScan:
    """Stream one log file into a :class:`LogScan` (refuses what is not a regular file)."""
    p = Path(path)
    with fmt.open_regular(p, "log file") as fh:
        _probe_head(fh, p)
        return scan_log_lines(_decoded_lines(fh), path=str(p))


def _probe_head(fh: Any, path: Path) -> bytes:
    """The file's first bytes (the handle is left at its start again); refuses a compressed file or
    one without a log line in its first few MiB (a 2 GB sparse file, a binary) at once."""
    fh.seek(0)
    head: bytes = fh.read(_PROBE_BYTES)
    if (hint := fmt.compressed_hint(head)) is not None:
        raise NextflowReadError(f"{hint}; then read the .nextflow.log inside", path=str(path), line=1)
    if _LINE_RE_BYTES.search(head) is None:
        text = head[:65536].decode("utf-8", errors="replace").splitlines()
        raise NextflowReadError(_not_a_log_message(text[:50]), path=str(path), line=1)
    fh.seek(0)
    return head


def _decoded_lines(fh: Any) -> Iterator[str]:
    return (raw.decode("utf-8", errors="replace") for raw in fmt.bounded_lines(fh))


def scan_log_head(path: PathLike, max_bytes: int = 1 << 20) -> LogScan:
    """The facts of a log's first ``max_bytes`` (command line, trace file: written in the
    first seconds of a launch); an empty scan when it is no log or cannot be read."""
    p = Path(path)
    try:
        with fmt.open_regular(p, "log file") as fh:
            head = fh.read(max_bytes)
    except NextflowReadError:
        return LogScan(path=str(p))
    return scan_log_lines(head.decode("utf-8", errors="replace").splitlines(), path=str(p), require_log=False)


def parse_log_text(text: str, *, path: str = "<log>") -> LogScan:
    """Scan one log file's text (pure)."""
    return scan_log_lines(text.splitlines(), path=path)


def scan_log_lines(lines: Iterable[str], *, path: str = "<log>", require_log: bool = True) -> LogScan:
    """Scan log lines into a :class:`LogScan` (pure; one pass, memory bounded by the tasks).

    ``require_log``: refuse text without a timestamped line (console output, another file).
    """
    scanner = _Scanner(path)
    _feed(scanner, lines, 0, require_log=require_log)
    return scanner.facts


def _feed(scanner: _Scanner, lines: Iterable[str], done: int, *, require_log: bool) -> int:
    """Feed ``lines`` (numbered from ``done + 1``) to ``scanner``; the number of the last one."""
    probe: list[str] = []
    number = done
    for number, raw in enumerate(lines, start=done + 1):
        if scanner.seen is None:
            if _LINE_RE.match(raw) is None:
                if len(probe) < 50:
                    probe.append(raw)
                if number >= _PROBE_LINES and require_log:
                    break
                continue
            scanner.seen = number
        scanner.feed(number, raw)
    if scanner.seen is None and require_log:
        raise NextflowReadError(_not_a_log_message(probe), path=scanner.facts.path, line=1)
    return number


def version_of(text: str) -> str | None:
    """The Nextflow version in a banner or ``nextflow -version`` output, or None."""
    match = VERSION_RE.search(text) or _BARE_VERSION_RE.search(text)
    return match.group(1) if match else None


def _not_a_log_message(head: Sequence[str]) -> str:
    if any(_CONSOLE_RE.match(line) for line in head):
        name = next((m.group(1) for line in head if (m := _LAUNCHING_RE.search(line))), None)
        run = f" of run '{name}'" if name else ""
        return (
            f"this is Nextflow's console output{run}, not its .nextflow.log (no line has a "
            "timestamp): read the .nextflow.log file in the directory where `nextflow run` "
            "was started (hidden: `ls -a`; earlier runs are .nextflow.log.1, .2, …)"
        )
    return (
        "not a Nextflow log: no line starts with a timestamp like "
        "'Jan-24 12:49:23.194 [main] DEBUG nextflow.cli.Launcher - …'"
    )


#: One kind of task line: reads ``(line number, message)`` into the scan. Returns None when
#: the message is not its kind (the next kind is tried), True when read, False when read and
#: nothing more is to be taken from it (a submit line whose work dir names no task).
_TaskKind = Callable[[int, str], "bool | None"]


class _Scanner:
    """The line-by-line state of one scan (pure)."""

    def __init__(self, path: str) -> None:
        self.facts = LogScan(path=path)
        self.seen: int | None = None
        self.offset = 0
        self.month = 0
        self.when: _When = (0, 1, 1, 0, 0, 0, 0, 0, 0)
        self.message = ""  # the message the continuation lines belong to
        self.pending_error: str | None = None  # hash of an "Error executing process" task
        self.after_caused_by = False
        self.launch_error_pending = False
        self.attempts: dict[str, int] = {}
        self.by_name: dict[str, str] = {}
        self.by_job: dict[str, str] = {}
        self.errored: set[str] = set()
        self.unexpected: str | None = None  # hash named by "Handling unexpected condition for"
        # Task lines by their first character: most lines of a long log are task lines, and
        # one dict look-up leaves each line one or two patterns to try, in this order.
        self._task_kinds: dict[str, tuple[_TaskKind, ...]] = {
            "[": (self._submitted, self._batch_submit, self._note, self._kill),
            "T": (self._task_completed,),
            "!": (self._dump,),
            "E": (self._error_executing,),
        }

    # --- helpers ---

    def _task_row(self, short: str) -> dict[str, object]:
        """The facts gathered so far about the task with this short hash (a new row on first mention)."""
        return self.facts.tasks.setdefault(short, {TaskCol.HASH: short})

    def _executor(self, name: str) -> None:
        name = name.strip().lower()
        if name and name not in self.facts.executors:
            self.facts.executors.append(name)

    # --- feeding ---

    def feed(self, number: int, raw: str) -> None:
        match = _LINE_RE.match(raw)
        if match is None:
            self._continuation(raw)
            return
        mon, day, hh, mm, ss, ms, _thread, level, logger, message = match.groups()
        month = _MONTHS[mon]
        if self.month and month < self.month:
            self.offset += 1
        self.month = month
        self.when = (self.offset, month, int(day), int(hh), int(mm), int(ss), int(ms), number, 0)
        facts = self.facts
        if facts.first_when is None:
            facts.first_when, facts.first_month = self.when, month
        facts.last_when, facts.last_month = self.when, month
        self.message = message
        self.pending_error = None
        self.after_caused_by = False
        self.launch_error_pending = False
        self.unexpected = None
        self._line(number, level, logger, message)

    def _continuation(self, raw: str) -> None:
        facts = self.facts
        if raw.startswith("~> TaskHandler["):
            self._handler(raw, dump=True)
        elif self.pending_error is not None:
            text = raw.strip()
            if self.after_caused_by and text:
                self._error_reason(text)
            elif text.startswith("Caused by:"):
                rest = text[len("Caused by:") :].strip()
                if rest:
                    self._error_reason(rest)
                else:
                    self.after_caused_by = True
        elif self.message.startswith(_UNEXPECTED):
            # "Handling unexpected condition for\n  task: name=X; work-dir=WD\n  error [cls]: message":
            # a status check or task handler that threw (nextflow-io/nextflow#5516)
            text = raw.strip()
            if (m := _UNEXPECTED_TASK_RE.match(text)) is not None:
                self.unexpected = fmt.hash_of_workdir(m.group(1))
            elif self.unexpected is not None and (m := _UNEXPECTED_ERROR_RE.match(text)) is not None:
                row = facts.tasks.get(self.unexpected)
                if row is not None and not row.get(TaskCol.NF_REASON):
                    row[TaskCol.NF_REASON] = m.group(1).strip()
                self.unexpected = None
        elif self.launch_error_pending:
            text = raw.strip()
            if m := _EXCEPTION_RE.match(text):
                facts.abort_cause = (m.group(2).strip() or m.group(1).rsplit(".", 1)[-1])
                self.launch_error_pending = False
        elif facts.build_date is None and (m := _CREATED_RE.match(raw)):
            day, month, year = (int(g) for g in m.groups())
            facts.build_date = (year, month, day)

    def _error_reason(self, text: str) -> None:
        """The ``Caused by:`` line replaces the placeholder reason (not an earlier, sharper one)."""
        row = self.facts.tasks.get(self.pending_error or "")
        if row is not None and row.get(TaskCol.NF_REASON) in (None, self.message):
            row[TaskCol.NF_REASON] = text
        self.pending_error = None

    def _line(self, number: int, level: str, logger: str, msg: str) -> None:
        """One timestamped line: a task's line (told apart by its first character), else a run fact."""
        read = self._task_line(number, msg)
        # one search rules out every run fact (most lines of a long log are neither)
        if read is None and (level == "ERROR" or logger.endswith("Launcher") or _RARE_RE.search(msg) is not None):
            self._run_fact(number, level, logger, msg)
        if read is not False:
            self._aws_facts(msg)

    def _task_line(self, number: int, msg: str) -> bool | None:
        """The first task-line kind that claims ``msg`` reads it (see ``_TaskKind``)."""
        for kind in self._task_kinds.get(msg[:1], ()):
            if (read := kind(number, msg)) is not None:
                return read
        return None

    # --- task lines: each returns None when the line is not its kind (see ``_TaskKind``) ---

    def _submitted(self, number: int, msg: str) -> bool | None:
        """``[ab/cdef12] Submitted process > NAME (tag)`` (also Re-submitted, Cached)."""
        if (m := _SUBMITTED_RE.match(msg)) is None:
            return None
        short, kind, name = m.groups()
        if kind == "Re-submitted":
            self.attempts[name] = self.attempts.get(name, 1) + 1
        elif kind == "Submitted":
            self.attempts[name] = 1
        row = self._task_row(short)
        row[TaskCol.NAME] = name
        self.by_name[name] = short
        row[TaskCol.STATUS] = "CACHED" if kind == "Cached" else row.get(TaskCol.STATUS, "SUBMITTED")
        if kind != "Cached":
            row[TaskCol.ATTEMPT] = self.attempts[name]
            row.setdefault(TaskCol.SUBMIT, self.when)
            self.facts.submitted_hashes.add(short)
        return True

    def _batch_submit(self, number: int, msg: str) -> bool | None:
        """A cloud or grid executor's submit line: the task's job id and work dir."""
        if (m := _CLOUD_SUBMIT_RE.match(msg) or _GRID_SUBMIT_RE.match(msg)) is None:
            return None
        facts = self.facts
        executor, name, job_id, workdir = m.groups()
        self._executor(_CLOUD_EXECUTORS.get(executor, executor))
        if executor in _CLOUD_EXECUTORS:
            facts.cloud_job_ids.append(job_id)
        if facts.abort_line is not None and executor == "AWS BATCH":
            facts.submitted_after_abort.append((number, job_id))
        short = fmt.hash_of_workdir(workdir)
        if short is None:
            return False
        row = self._task_row(short)
        row[TaskCol.NATIVE_ID] = job_id
        self.by_job[job_id] = short
        row[TaskCol.WORKDIR] = workdir.rstrip("/")
        if name:
            row.setdefault(TaskCol.NAME, name)
            self.by_name.setdefault(name, short)
        row.setdefault(TaskCol.STATUS, "SUBMITTED")
        row.setdefault(TaskCol.SUBMIT, self.when)
        return True

    def _task_completed(self, number: int, msg: str) -> bool | None:
        """``Task completed > TaskHandler[…]``: the task's end."""
        if not msg.startswith(_TASK_DONE_PREFIX):
            return None
        self._handler(msg[len(_TASK_DONE_PREFIX) :], dump=False)
        return True

    def _dump(self, number: int, msg: str) -> bool | None:
        """``!! executor NAME > tasks to be completed: N``: the in-flight dump's header."""
        if (m := _DUMP_RE.match(msg)) is None:
            return None
        self._executor(m.group(1))
        return True

    def _error_executing(self, number: int, msg: str) -> bool | None:
        """``Error executing process > 'NAME'``: the task failed (its ``Caused by:`` follows)."""
        if (m := _ERROR_EXECUTING_RE.match(msg)) is None:
            return None
        short = self.by_name.get(m.group(1))
        if short is not None:
            row = self._task_row(short)
            if TaskCol.COMPLETE in row:
                row[TaskCol.STATUS] = "FAILED"
            else:
                # No end seen: a status check that threw (nextflow-io/nextflow#5516) drops
                # the task from the running queue without killing its job, so the kill
                # sweep (``_abort_in_flight``) does not cover it and its job may well still run.
                self.errored.add(short)
            row.setdefault(TaskCol.NF_REASON, msg)
            self.pending_error = short
        return True

    def _note(self, number: int, msg: str) -> bool | None:
        """``[ab/cdef12] NOTE: Process … terminated … -- Execution is retried``: that attempt failed."""
        m = _NOTE_RE.match(msg)
        if m is None or not (m.group(3) or "terminated" in msg):
            return None
        short, text, _what = m.groups()
        row = self._task_row(short)
        row[TaskCol.STATUS] = "FAILED"
        row[TaskCol.NF_REASON] = text.strip()
        return True

    def _kill(self, number: int, msg: str) -> bool | None:
        """``[AWS BATCH] killing job=<id>`` / ``cleanup = terminating job <id>``: Nextflow's own kill."""
        if (m := _KILL_RE.match(msg)) is None:
            return None
        verb, job_id = m.groups()
        self._executor("awsbatch")
        self.facts.kill_requested.append(job_id)
        if verb == "killing":
            self.facts.killed.append(job_id)
        short = self.by_job.get(job_id)
        if short is not None:
            row = self._task_row(short)
            if row.get(TaskCol.STATUS) in ("SUBMITTED", "RUNNING", None):
                row[TaskCol.STATUS] = "ABORTED"
                row[TaskCol.NF_REASON] = f"{KILLED_BY_NEXTFLOW} ({msg.strip()[:120]})"
        return True

    # --- run facts: rare lines, the first that matches is read ---

    def _run_fact(self, number: int, level: str, logger: str, msg: str) -> None:
        if not self._launch_fact(number, logger, msg):
            self._ending_fact(number, level, logger, msg)

    def _launch_fact(self, number: int, logger: str, msg: str) -> bool:
        """The banner and the launch's settings; False when ``msg`` is none of them."""
        facts = self.facts
        if (m := _WARM_UP_RE.search(msg)) is not None:
            self._executor(m.group(1))
        elif (m := _COMMAND_RE.match(msg)) is not None and logger.endswith("Launcher"):
            facts.command = facts.command or m.group(1).strip()
        elif (m := VERSION_RE.search(msg)) is not None:
            if facts.version is None:
                facts.version, facts.version_line = m.group(1), number
        elif (m := _LAUNCHING_RE.search(msg)) is not None:
            facts.run_name = facts.run_name or m.group(1)
        elif (m := _SESSION_RE.search(msg)) is not None:
            facts.session_id = m.group(1)
        elif (m := _RUN_NAME_RE.match(msg)) is not None:
            facts.run_name = m.group(1)
        elif (m := _WORK_DIR_RE.match(msg)) is not None:
            facts.work_dir = m.group(1).rstrip("/")
        elif (m := _PROFILE_RE.search(msg)) is not None:
            if m.group(1) not in facts.profiles:
                facts.profiles.append(m.group(1))
        elif (m := _LOCAL_CONFIG_RE.search(msg)) is not None:
            facts.config_local_dir = str(Path(m.group(1)).parent)
        elif (m := _PARSING_RE.search(msg)) is not None:
            if m.group(1) not in facts.config_files:
                facts.config_files.append(m.group(1))
        else:
            return False
        return True

    def _ending_fact(self, number: int, level: str, logger: str, msg: str) -> None:
        """How the run ends: abort, Nextflow's kills, the jobs reaper, goodbye; a failed launch."""
        facts = self.facts
        if (m := _ABORT_RE.match(msg)) is not None:
            if facts.abort_when is None:  # the first abort is the cause; later ones echo it
                facts.abort_cause = m.group(1).strip() or "(no cause given)"
                facts.abort_when, facts.abort_line = self.when, number
        elif (m := _KILLING_TASKS_RE.search(msg)) is not None:
            facts.killed_count = (facts.killed_count or 0) + int(m.group(1))
            self._abort_in_flight(msg.strip())
        elif _REAPER_GAVE_UP in msg:
            facts.reaper_gave_up = True
            facts.reaper_line = facts.reaper_line or number
        elif (m := _REAPER_WAIT_RE.search(msg)) is not None:
            facts.reaper_pending = int(m.group(1))
        elif _GOODBYE in msg:
            facts.completed = True
            facts.end_when = self.when
        elif "TraceFileObserver" in logger and (m := _TRACE_FILE_RE.search(msg)) is not None:
            facts.trace_file = m.group(1)
        elif (logger.endswith("cli.Launcher") and (msg.strip() == _OPERATION_ABORTED or level == "ERROR")) or (
            level == "ERROR" and logger == "nextflow.Nextflow"
        ):
            self._launch_failed(number, msg)

    def _aws_facts(self, msg: str) -> None:
        """Any line: the AWS Batch executor at work, and the region it was given."""
        if msg.startswith("[AWS BATCH]"):
            self._executor("awsbatch")
        if "AwsOptions(" in msg or "awsCli" in msg:
            if "AwsOptions(" in msg:
                self._executor("awsbatch")
            if self.facts.region is None and (m := _REGION_RE.search(msg)) is not None:
                self.facts.region = m.group(1)

    def _launch_failed(self, number: int, msg: str) -> None:
        facts = self.facts
        text = msg.strip()
        text = re.sub(r"^>\s*", "", text)
        text = re.sub(r"^Error:\s*", "", text)
        facts.launch_failed = True
        if facts.abort_when is None:
            facts.abort_when, facts.abort_line = self.when, number
            if text in (_OPERATION_ABORTED, "@unknown", ""):
                facts.abort_cause = "the launch failed (no message)"
                self.launch_error_pending = True  # the exception line names it
            else:
                facts.abort_cause = text

    def _handler(self, text: str, *, dump: bool) -> None:
        m = _HANDLER_RE.search(text)
        if m is None:
            return
        job_id, task_id, name, status, exit_text, error, workdir, started, exited = m.groups()
        short = fmt.hash_of_workdir(workdir)
        if short is None:
            return
        self._evidence(started, exited)
        row = self._task_row(short)
        row[TaskCol.TASK_ID] = int(task_id)
        row.setdefault(TaskCol.NAME, name)
        self.by_name.setdefault(name, short)
        row[TaskCol.WORKDIR] = workdir.rstrip("/")
        job = (job_id or "").strip()
        if job and job not in ("-", "null"):
            row.setdefault(TaskCol.NATIVE_ID, job)
            self.by_job.setdefault(job, short)
        if dump:
            # in flight at this poll: SUBMITTED/RUNNING (the newest dump wins), never
            # over an end the log already recorded
            if row.get(TaskCol.STATUS) in (None, "SUBMITTED", "RUNNING") and status in ("SUBMITTED", "RUNNING"):
                row[TaskCol.STATUS] = status
            return
        exit_code = _int_or_none(exit_text)
        row[TaskCol.EXIT] = exit_code
        row[TaskCol.COMPLETE] = self.when
        if status == "COMPLETED" and exit_text.strip() == "-":
            row[TaskCol.STATUS] = "FAILED"
            row[TaskCol.NF_REASON] = UNKNOWN_OUTCOME
            return
        failed = (exit_code not in (None, 0)) or error.strip() not in ("-", "", "null")
        if row.get(TaskCol.STATUS) != "FAILED":  # an earlier NOTE/error line stands
            row[TaskCol.STATUS] = "FAILED" if failed else "COMPLETED"
        if failed and error.strip() not in ("-", "", "null"):
            row.setdefault(TaskCol.NF_REASON, error.strip())

    def _evidence(self, started: str | None, exited: str | None) -> None:
        if self.facts.epoch_evidence is not None:
            return
        instant: pd.Timestamp | None = None
        if started:
            instant = fmt.epoch_ms_to_utc(int(started))
        if instant is None and exited:
            try:
                instant = pd.Timestamp(exited)
            except ValueError:
                instant = None
        if instant is not None and instant.year > 2000:
            self.facts.epoch_evidence = (self.when, instant)

    def _abort_in_flight(self, msg: str) -> None:
        """Tasks in flight when Nextflow kills its running tasks end ABORTED (the trace agrees)."""
        for short, row in self.facts.tasks.items():
            if row.get(TaskCol.STATUS) in ("SUBMITTED", "RUNNING") and short not in self.errored:
                row[TaskCol.STATUS] = "ABORTED"
                row[TaskCol.NF_REASON] = f"{KILLED_BY_NEXTFLOW} ({msg})"


# --- following a growing log ----------------------------------------------------

#: How many of a log's first bytes, and of the bytes before where reading stopped, tell
#: that it is still the file read before (a relaunch's log has another launch line,
#: session id and times).
_FINGERPRINT_BYTES: Final = 4096


@dataclass
class _Followed:
    """One log file as far as it was read: the scanner, its state kept, and what tells the file."""

    scanner: _Scanner
    device: int
    inode: int
    #: bytes and lines read (the scan covers exactly these).
    offset: int
    lines: int
    head: bytes
    #: the bytes just before ``offset``.
    tail: bytes
    #: the file's modification time when reading stopped at its end (else None).
    mtime_ns: int | None
    #: the last line read had no line end: a write may have been cut in the middle.
    torn: bool


class LogFollower:
    """Log scans kept between reads, so that reading a growing log again scans only what
    Nextflow appended since (a :class:`~batchkit.nextflow.NextflowRun` and its reloads
    share one). A scan is the follower's own and changes with the next scan: threads that
    share a follower hold ``lock`` while they scan and use the scans (reloads do).

    A file is scanned from its start again when it is not the file read before: another
    device or inode (a relaunch renames ``.nextflow.log`` to ``.nextflow.log.1`` and
    writes a new one, logback's ``RollOnStartupPolicy``), smaller than what was read
    (truncated), other first bytes or other bytes before where reading stopped (rewritten
    in place), the same size with another modification time (rewritten to the same size),
    or grown after a read that ended inside a line (the line read was cut by a write in
    progress). So a scan always equals :func:`scan_log_file` of the file as it is. A file
    renamed (``.nextflow.log`` to ``.nextflow.log.1``) is followed to its new name.
    """

    def __init__(self) -> None:
        self._files: dict[str, _Followed] = {}
        self.lock = threading.RLock()
        #: scans that read a file from its start (the rest read only what was appended).
        self.full_scans = 0
        #: scans that read any byte (from the start or appended): unchanged while every file
        #: scanned is the one read before, as it was (a reload then reuses its run view).
        self.reads = 0

    def scan(self, path: PathLike) -> LogScan:
        """The :class:`LogScan` of ``path`` as it is now (the follower's own: read, do not keep)."""
        p = Path(path)
        with self.lock, fmt.open_regular(p, "log file") as fh:
            st = os.fstat(fh.fileno())
            state = self._read_before(str(p), st)
            if state is None or not _still_the_file_read(state, fh, st):
                head = _probe_head(fh, p)
                state = _Followed(
                    _Scanner(str(p)), device=st.st_dev, inode=st.st_ino, offset=0, lines=0,
                    head=head[:_FINGERPRINT_BYTES], tail=b"", mtime_ns=None, torn=False,
                )  # fmt: skip
                self.full_scans += 1
            elif st.st_size == state.offset:
                self._files[str(p)] = state
                return state.scanner.facts
            self.reads += 1
            fh.seek(state.offset)
            state.lines = _feed(state.scanner, _decoded_lines(fh), state.lines, require_log=True)
            _note_where_reading_stopped(state, fh)
            self._files[str(p)] = state
            return state.scanner.facts

    def _read_before(self, key: str, st: os.stat_result) -> _Followed | None:
        """What was read of the file at ``key``: kept under its path, or under the path it had
        before a rename (a relaunch renames ``.nextflow.log`` to ``.nextflow.log.1``: its scan
        goes on there; ``_still_the_file_read`` still checks the content)."""
        state = self._files.pop(key, None)
        if state is not None and (state.device, state.inode) == (st.st_dev, st.st_ino):
            return state
        renamed = next((k for k, s in self._files.items() if (s.device, s.inode) == (st.st_dev, st.st_ino)), None)
        if renamed is None:
            return state
        state = self._files.pop(renamed)
        state.scanner.facts.path = key
        return state


def _still_the_file_read(state: _Followed, fh: Any, st: os.stat_result) -> bool:
    if (st.st_dev, st.st_ino) != (state.device, state.inode) or st.st_size < state.offset:
        return False
    if st.st_size > state.offset and state.torn:
        return False
    if st.st_size == state.offset and st.st_mtime_ns != state.mtime_ns:
        return False
    fh.seek(0)
    if fh.read(len(state.head)) != state.head:
        return False
    fh.seek(state.offset - len(state.tail))
    return bool(fh.read(len(state.tail)) == state.tail)


def _note_where_reading_stopped(state: _Followed, fh: Any) -> None:
    end = fh.tell()
    start = max(0, end - _FINGERPRINT_BYTES)
    fh.seek(start)
    state.offset, state.tail = end, fh.read(end - start)
    state.torn = not state.tail.endswith(b"\n")
    st = os.fstat(fh.fileno())
    # Only a file that ended where reading stopped: a later write changes its size too.
    state.mtime_ns = st.st_mtime_ns if st.st_size == end else None


# --- combining launches -----------------------------------------------------------


def build_log_info(
    scans: Sequence[LogScan],
    *,
    tz: tzinfo,
    year: int | None,
    reference_time: pd.Timestamp | None,
    mtime: pd.Timestamp | None,
) -> LogInfo:
    """Combine scanned launches (oldest first) into a :class:`LogInfo` (pure)."""
    bases = _file_offsets(scans)
    base, source, proven = _base_year(scans, bases, tz, year, reference_time, mtime)
    to_utc = _Clock(base, tz, [s.path for s in scans])

    newest = scans[-1]
    kept_idx = [i for i, s in enumerate(scans[:-1]) if s.session_id is None or s.session_id == newest.session_id]
    ignored = [s.path for i, s in enumerate(scans[:-1]) if i not in kept_idx]
    order = [*kept_idx, len(scans) - 1]
    in_order = [scans[i] for i in order]

    def utc_in_file(i: int, when: _When | None) -> pd.Timestamp | None:
        """A time read in file ``i`` (its year offset applied) as UTC."""
        return None if when is None else to_utc.utc(_shift(when, bases[i], i))

    last = len(scans) - 1
    info = LogInfo(
        paths=[s.path for s in in_order], ignored_paths=ignored, year=base, year_source=source, year_proven=proven
    )
    info.version = newest.version
    info.run_name = newest.run_name
    info.session_id = newest.session_id
    info.work_dir = newest.work_dir
    info.launch_time = utc_in_file(last, newest.first_when)
    info.abort_cause = newest.abort_cause
    info.abort_time = utc_in_file(last, newest.abort_when)
    info.launch_failed = newest.launch_failed
    info.killed_count = newest.killed_count
    info.reaper_gave_up = newest.reaper_gave_up
    info.reaper_pending = newest.reaper_pending
    info.end_time = utc_in_file(last, newest.end_when)
    info.completed = newest.completed
    info.last_line_time = utc_in_file(last, newest.last_when)
    info.command = newest.command
    info.trace_file = newest.trace_file
    info.profiles = list(newest.profiles) if newest.profiles else None
    info.config_files = list(newest.config_files)
    info.config_local_dir = newest.config_local_dir
    info.executors = _unique(e for s in in_order for e in s.executors)
    info.region = next((s.region for s in reversed(in_order) if s.region), None)
    info.killed_job_ids = _unique(j for s in in_order for j in s.killed)
    info.kill_requested_job_ids = _unique(j for s in in_order for j in s.kill_requested)
    info.tasks = _tasks_frame([(scans[i], bases[i], i) for i in order], to_utc)
    return info


def _shift(when: _When, base: int, index: int = 0) -> _When:
    return (when[0] + base, *when[1:8], index)


def _file_offsets(scans: Sequence[LogScan]) -> list[int]:
    """The year offset each file's first line starts at (a month going back between files bumps it)."""
    out: list[int] = []
    offset = 0
    previous: LogScan | None = None
    for scan in scans:
        if previous is not None and previous.last_when is not None:
            offset += previous.last_when[0]
            if scan.first_month and scan.first_month < previous.last_month:
                offset += 1
        out.append(offset)
        previous = scan
    return out


def _tasks_frame(scans: Sequence[tuple[LogScan, int, int]], to_utc: _Clock) -> pd.DataFrame:
    rows: dict[str, dict[str, object]] = {}
    for scan, base, index in scans:  # oldest first: a later launch's facts about a hash win
        for short, row in scan.tasks.items():
            merged = rows.setdefault(short, {})
            for key, value in row.items():
                if key in (TaskCol.SUBMIT, TaskCol.COMPLETE) and isinstance(value, tuple):
                    value = _shift(value, base, index)
                merged[key] = value
    if not rows:
        empty = fmt.empty_tasks()
        empty[TaskCol.NF_REASON] = pd.Series(dtype="string")
        return empty
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))
    columns: dict[str, object] = {}
    for key in keys:  # column by column: a frame from a list of dicts costs several times more memory
        values = [row.get(key) for row in rows.values()]
        if key in (TaskCol.SUBMIT, TaskCol.COMPLETE):
            columns[key] = to_utc.utc_series(values).to_numpy()
        elif key in (TaskCol.TASK_ID, TaskCol.EXIT, TaskCol.ATTEMPT):
            columns[key] = pd.array(values, dtype="Int64")
        else:
            columns[key] = pd.array(values, dtype="string")
    rows.clear()
    frame = pd.DataFrame(columns)
    if TaskCol.NAME in frame:
        process, tag = fmt.split_name(frame[TaskCol.NAME])
        frame[TaskCol.PROCESS] = process
        frame[TaskCol.TAG] = tag
    frame[TaskCol.SOURCE] = "log"
    if TaskCol.NF_REASON not in frame:
        frame[TaskCol.NF_REASON] = None
    frame[TaskCol.NF_REASON] = frame[TaskCol.NF_REASON].astype("string")
    return fmt.conform_tasks(frame)


# --- years and zones ------------------------------------------------------------


class _Clock:
    """``_When`` -> UTC, for one base year and zone (vectorized over many)."""

    def __init__(self, base: int, tz: tzinfo, paths: Sequence[str] = ()) -> None:
        self.base = base
        self.tz = tz
        self.paths = list(paths)

    def utc(self, when: _When) -> pd.Timestamp:
        return pd.Timestamp(self.utc_series([when]).iloc[0])

    def utc_series(self, whens: Sequence[object]) -> pd.Series:
        present = [w for w in whens if isinstance(w, tuple)]
        if not present:
            return pd.Series([pd.NaT] * len(whens), dtype="datetime64[ns, UTC]")
        unique = list(dict.fromkeys(present))
        stamps = _timestamps(unique, self.base, self.tz, self.paths)
        lookup = dict(zip(unique, stamps, strict=True))
        return pd.Series([lookup[w] if isinstance(w, tuple) else pd.NaT for w in whens], dtype="datetime64[ns, UTC]")


def _base_year(
    scans: Sequence[LogScan],
    bases: Sequence[int],
    tz: tzinfo,
    year: int | None,
    reference_time: pd.Timestamp | None,
    mtime: pd.Timestamp | None,
) -> tuple[int, str, bool]:
    """(year of the first line, how it was chosen, proven?) — see the module doc."""
    if year is not None:
        return year, "given", True
    first = next((s.first_when for s in scans if s.first_when is not None), None)
    if first is None:  # no timestamped line at all (a scan of non-log text)
        now = pd.Timestamp.now(tz="UTC").year
        return now, "clock", False
    if reference_time is not None:
        ref = to_utc(reference_time)
        return _closest(first, ref, tz), "reference", True
    for scan, base in zip(scans, bases, strict=True):
        if scan.epoch_evidence is not None:
            when, instant = scan.epoch_evidence
            when = _shift(when, base, 0)
            # the line was written after the instant it reports: the closest year at or after
            best = _closest(when, instant, tz, after=True)
            return best - when[0], "log epoch times", True
    last_scan = scans[-1]
    last = _shift(last_scan.last_when, bases[-1], 0) if last_scan.last_when else first
    build = next((s.build_date for s in scans if s.build_date is not None), None)
    low = None
    if build is not None:
        low = build[0] if (first[1], first[2]) >= (build[1], build[2]) else build[0] + 1
    high = None
    if mtime is not None:
        local = mtime.tz_convert(tz)
        last_year = local.year if (last[1], last[2]) <= (local.month, local.day) else local.year - 1
        high = last_year - last[0]
    if low is not None and high is not None and low == high:
        return low, "build date and file time agree", True
    if low is not None:
        return low, "build date (lower bound)", False
    if high is not None:
        return high, "file time", False
    return pd.Timestamp.now(tz="UTC").year - last[0], "clock", False


def _closest(when: _When, ref: pd.Timestamp, tz: tzinfo, *, after: bool = False) -> int:
    """The year for ``when``'s offset 0 that puts it closest to ``ref`` (at/after it if ``after``)."""
    candidates = []
    for y in (ref.year - 1, ref.year, ref.year + 1):
        try:
            stamp = _timestamps([when], y - when[0], tz)[0]
        except NextflowReadError:
            continue
        gap = (stamp - ref).total_seconds()
        if after and gap < -86400:  # a day of slack for zone/clock differences
            continue
        candidates.append((abs(gap), int(y - when[0])))
    if not candidates:
        return int(ref.year - when[0])
    return int(min(candidates)[1])


def _timestamps(whens: Sequence[_When], base: int, tz: tzinfo, paths: Sequence[str] = ()) -> list[pd.Timestamp]:
    """Times in UTC, computed with numpy date arithmetic (no per-line parsing)."""
    arr = np.array(whens, dtype=np.int64).reshape(-1, 9)
    years = base + arr[:, 0]
    months = arr[:, 1]
    days = arr[:, 2]
    clock = arr[:, 3:7]
    in_range = (years > 1677) & (years < 2262)
    month_start = ((np.where(in_range, years, 1970) - 1970) * 12 + months - 1).astype("datetime64[M]")
    days_in_month = ((month_start + 1).astype("datetime64[D]") - month_start.astype("datetime64[D]")).astype(np.int64)
    valid = in_range & (days >= 1) & (days <= days_in_month)
    valid &= (clock[:, 0] < 24) & (clock[:, 1] < 60) & (clock[:, 2] < 60)
    if not valid.all():
        index = int(np.flatnonzero(~valid)[0])
        raise NextflowReadError(
            f"a timestamp's day or time is invalid in year {int(years[index])} (e.g. Feb-29 "
            "outside a leap year, or hour 25): pass year= to read_log if the year was guessed wrong",
            path=paths[int(arr[index, 8])] if int(arr[index, 8]) < len(paths) else None,
            line=int(arr[index, 7]) or None,
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

