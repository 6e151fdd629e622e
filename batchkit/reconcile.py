"""The pure core: put each Nextflow task beside its AWS Batch job and judge the pair.

No boto3, no widgets, no I/O. The verdicts, scope and waste are vectorized
pandas/numpy; Python loops walk the raw DescribeJobs dicts once in ``jobs_frame``, the
job work dirs once in ``_under_work_dir``, and write the text: one f-string per row
for the reasons (``_ReasonText``), one ``KillJob`` per planned kill (``plan_kills``).

Decisions worth knowing (docs/ARCHITECTURE.md §5-§8 gives the rules, these are the edges):

Scope (``in_scope``) — who owns a Batch job. Ownership is a proof, never a neighbourhood
(nextflow-io/nextflow shares one work dir between every run of a launch dir, and a
``-resume`` run re-executes unfinished tasks there under new hashes):
  * ``"native_id"``: the job id was recorded by this run (a task's ``native_id`` from the
    trace the log names, the log's ``[AWS BATCH] … submitted > job=`` lines, weblog
    events of the run's session; or the job is the parent of a recorded array child)
    AND the job agrees with the record: its launcher's task work dir is the recording
    task's (its ``workdir``, else its ``hash`` under the run's work dir), it sits on one
    of the run's queues, and Batch created it within the run's lifetime;
  * ``"hash"``: no id recorded, but the job's command is Nextflow's launcher for a task
    dir ``<work dir>/ab/<30 hex>`` whose hash this run submitted (a non-CACHED task's
    ``hash``: ``[ab/cdef12] Submitted process`` lines, the trace's ``hash``), on the run's
    queue, within its lifetime — e.g. a duplicate from an unanswered SubmitJob retry;
  * ``"neighbourhood"``: under the run's work dir and nothing more. Shown (unclaimed,
    verdict ``untracked``), never killed unless the user names the job;
  * ``"other_run"``: another run's evidence points to it (``run.other_runs``: its log or
    trace recorded the id or submitted the hash, or the job was created outside this
    run's lifetime but during that run's; ``other_runs=``: the local ledger recorded the
    job under another run — submitted from the submit form, killed or claimed as that
    run's). Never this run's; left out of the frame and
    listed in ``frame.attrs["other_runs"]`` (job id -> which run);
  * ``""``: nothing ties it to the run (a recorded job that disagrees with its record
    keeps its task row, with the reason why in ``proof``).
  The launcher is parsed whole (``extract_workdir``); a command that does not parse
  proves nothing, and paths are compared in ``normal_dir`` form. The lifetime is
  [launch - ``CLOCK_SKEW``, last sign of life (``end_time``, ``last_activity``) +
  ``LIFETIME_GRACE``], shifted by the clock error the run's own verified jobs show
  (``_clock_offset``: log times carry no zone). The run's queues are ``queues=``, else
  ``run.queues``, else those of its verified recorded jobs; when none is known, no
  hash proof is possible. ``RecCol.PROOF`` says, per row, which proof holds or why
  none does; ``plan_kills`` copies it into each ``KillJob``.
  * A CACHED row's native_id is the job of the run that computed the result (the trace
    repeats it from the cache): it proves nothing for this run and claims no job.
  * A job name alone never proves ownership: names are not even read here.

Matching a task to a job, strongest first:
  1. ``native_id == job_id`` (array children are ``<id>:<i>`` on both sides; the array
     parent gets no row of its own — its children carry the verdicts);
  2. only for tasks without a Batch job id: the task's full work dir equals the job's;
  3. else the task's short hash ``ab/cdef12`` is a prefix of the job work dir's last two
     parts (docs/ARCHITECTURE.md §3). Steps 2-3 only consider jobs proven by hash that no task
     claimed by id, so a ``-resume`` run in another work dir (same hashes!) or an older
     run in the same work dir (created before launch) never matches. When two jobs
     share a task's work dir (a duplicate from an ambiguous SubmitJob retry), the most
     recently created one is matched and the other is reported ``untracked``. CACHED
     tasks never claim a job by work dir or hash (that would hide a running job).
     Two task rows holding the same native_id (unmerged sources) both get the job;
     ``plan_kills`` still plans one kill per job.
  A ``native_id`` made only of digits is a PID (local/grid executors in a mixed
  pipeline), not a Batch job id.

Verdicts (first rule that applies wins):
  * ``untracked``: a job shown that no task claims; killable only when proven (by hash),
    while active and once the run has ended. While the run is alive an unclaimed job may simply be one
    Nextflow submitted after we last read its files (the trace gets a row only when a
    task ends, docs/ARCHITECTURE.md §3), so killing it needs ``force`` like any job of a live run.
  * ``ok`` for CACHED tasks (they need no job).
  * ``orphan``: Batch has the job active while the task is COMPLETED/FAILED/ABORTED, or
    the run has ended (completed/aborted) with the task still SUBMITTED/RUNNING.
  * ``stale``: Batch terminal, Nextflow still SUBMITTED/RUNNING (any run state).
  * ``disagree``: both terminal with opposite outcomes (COMPLETED vs FAILED, FAILED vs
    SUCCEEDED). ABORTED with any terminal Batch state is ``ok``: Nextflow gave up on
    the task and Batch has finished it, nothing disagrees that a person must act on.
  * ``vanished``: the task holds a Batch job id and Batch has no such job.
  * ``ok`` otherwise, including: no job id yet and the run alive (not yet submitted),
    no job id and the task terminal (e.g. ABORTED rows whose fields are all "-"), no
    job id and the run ended with the task in flight (never submitted, or submitted
    outside the scope we could see — nothing to kill that we can prove).

Reasons are one line each, clock times in UTC ("Nextflow aborted at 13:37 UTC (SIGINT)
but Batch still RUNNING for 2h 3m, …"); the cause is quoted when the run object has an
``abort_cause`` attribute (optional, not part of RunLike).

Attempts and retries (``jobs_frame``): Batch lists an attempt in ``attempts[]`` once
it has stopped; a try running now is not listed. So
``attempts = len(attempts[]) + (1 if status is STARTING/RUNNING)`` and
``batch_retries = max(len(attempts[]) + (1 if status is active) - 1, 0)``: a job back
in RUNNABLE after a spot reclaim already counts its retry, so the count never flickers.
ListJobs summaries carry no ``attempts[]``: attempts and batch_retries stay <NA>.
Rows without a job have batch_retries 0.

Waste (vCPU-hours; cost = vCPU-hours x price): vCPUs x seconds of every try (listed
attempts plus the one running now, up to ``now``) that lies after the cutoff where
Nextflow stopped caring, for ``orphan``/``untracked`` rows; plus, on any row, the
seconds of tries beyond the first that lie before the cutoff (no double counting).
Cutoff: orphan with a terminal task -> the task's ``complete`` time, else the run's
``end_time``; orphan of an ended run -> ``end_time``; untracked -> the job's start (all
of its run time). Only RUNNING time burns vCPUs: RUNNABLE/STARTING waits cost nothing.
A job without a vCPU figure (ListJobs summaries) is priced at 1 vCPU, the VCPU value
Nextflow registers in every job definition (it overrides it only when cpus > 1).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from batchkit._time import as_utc
from batchkit.schema import (
    JOB_ACTIVE,
    JOB_COLUMNS,
    JOB_TERMINAL,
    SUBMISSION_TAG,
    TASK_ALIVE,
    TASK_COLUMNS,
    TASK_DTYPES,
    VERDICTS,
    JobCol,
    KillJob,
    RecCol,
    RunLike,
    TaskCol,
)

__all__ = [
    "CLOCK_SKEW",
    "JOB_EXTRA_COLUMNS",
    "LIFETIME_GRACE",
    "REC_COLUMNS",
    "OtherRun",
    "extract_workdir",
    "in_scope",
    "jobs_frame",
    "normal_dir",
    "plan_kills",
    "reconcile",
    "summarize",
]

#: Tolerance between the launch machine's clock and Batch's createdAt: a run's lifetime
#: starts this long before its logged launch.
CLOCK_SKEW: Final = pd.Timedelta(minutes=5)
#: How long after a run's last sign of life (its last log line, weblog event or trace
#: write; its end) a job may still be its own. Nextflow can submit for seconds after an
#: abort (nextflow-io/nextflow#7445: 7.5 s of submissions after "Session aborted"), and
#: the launch machine's clock may run behind Batch's; longer would only let a later run
#: of the same work dir closer.
LIFETIME_GRACE: Final = pd.Timedelta(minutes=5)
#: Batch's limit on TerminateJob's reason (TerminateJob API reference).
REASON_LIMIT: Final = 1024

# Columns jobs_frame adds beyond schema.JOB_COLUMNS; reconcile needs them for waste.
# Only reconcile reads them (the waste needs each try's span), so they live here, not in schema.JobCol.
LISTED_ATTEMPTS: Final = "listed_attempts"  # Int64: len(attempts[]) as Batch returned it
ATTEMPT_SPANS: Final = "attempt_spans"  # object: tuple of (index, start_ms, stop_ms) per finished try
TRY_STARTED_AT: Final = "try_started_at"  # datetime64[ns, UTC]: start of the try running now
JOB_EXTRA_COLUMNS: Final[tuple[str, ...]] = (LISTED_ATTEMPTS, ATTEMPT_SPANS, TRY_STARTED_AT)

_UTC: Final = "datetime64[ns, UTC]"
_JOB_DTYPES: Final[dict[str, str]] = {
    JobCol.JOB_ID: "string",
    JobCol.JOB_NAME: "string",
    JobCol.JOB_QUEUE: "string",
    JobCol.STATUS: "string",
    JobCol.STATUS_REASON: "string",
    JobCol.CREATED_AT: _UTC,
    JobCol.STARTED_AT: _UTC,
    JobCol.STOPPED_AT: _UTC,
    JobCol.VCPUS: "Float64",
    JobCol.MEMORY_MIB: "Float64",
    JobCol.ATTEMPTS: "Int64",
    JobCol.EXIT_CODE: "Int64",
    JobCol.COMMAND: "string",
    JobCol.WORK_DIR: "string",
    JobCol.SUBMISSION_ID: "string",
    LISTED_ATTEMPTS: "Int64",
    ATTEMPT_SPANS: "object",
    TRY_STARTED_AT: _UTC,
}
_EPOCH: Final = pd.Timestamp(0, tz="UTC")
#: Task columns a reconcile frame shows (Nextflow's status follows as ``nf_status``).
_TASK_SHOWN: Final = (
    TaskCol.TASK_ID,
    TaskCol.NAME,
    TaskCol.PROCESS,
    TaskCol.HASH,
    TaskCol.NATIVE_ID,
    TaskCol.WORKDIR,
    TaskCol.SUBMIT,
    TaskCol.COMPLETE,
)
_TASK_CARRIED: Final = (*_TASK_SHOWN, TaskCol.STATUS)
#: Job columns a reconcile frame shows, in JOB_COLUMNS order: all but the memory, the exit
#: code, the raw command (its work dir is shown) and the submission tag.
_JOB_SHOWN: Final = tuple(
    col for col in JOB_COLUMNS
    if col not in {JobCol.MEMORY_MIB, JobCol.EXIT_CODE, JobCol.COMMAND, JobCol.SUBMISSION_ID}
)
#: ... and those it carries through matching, for the waste.
_JOB_CARRIED: Final = (*_JOB_SHOWN, LISTED_ATTEMPTS, ATTEMPT_SPANS, TRY_STARTED_AT)

#: Columns of a reconcile frame, in order (RecCol's docstring lists the carried-over ones).
REC_COLUMNS: Final[tuple[str, ...]] = (
    *_TASK_SHOWN,
    RecCol.NF_STATUS,
    *_JOB_SHOWN,  # its JobCol.STATUS is RecCol.BATCH_STATUS
    RecCol.BATCH_RETRIES,
    RecCol.VERDICT,
    RecCol.REASON,
    RecCol.KILLABLE,
    RecCol.NF_ALIVE,
    RecCol.IN_SCOPE_BY,
    RecCol.PROOF,
    RecCol.WASTE_VCPU_H,
    RecCol.WASTE_COST,
)
_RUNNING_NOW: Final = frozenset({"STARTING", "RUNNING"})
_TASK_DONE: Final = frozenset({"COMPLETED", "FAILED", "ABORTED"})
_WASTE_VERDICTS: Final = ("orphan", "untracked")
#: The two proofs of ownership; the only scope rules a kill may rest on.
_SCOPE_RULES: Final = frozenset({"native_id", "hash"})
#: Rules whose unclaimed jobs get a row: the proven ones and the neighbourhood.
_SHOWN_RULES: Final = frozenset({"native_id", "hash", "neighbourhood"})
#: A task dir directly under the work dir: ``ab/`` + 30 hex digits (docs/ARCHITECTURE.md §3).
_TASK_DIR: Final = re.compile(r"[0-9a-f]{2}/[0-9a-f]{30}")

# Nextflow's container commands (nextflow-io/nextflow AwsBatchTaskHandler: classicSubmitCli,
# s5cmdSubmitCli, fusionSubmitCli), parsed whole — never "the first `.command.run` seen":
#   bash -o pipefail -c trap "{ ret=$?; <aws> s3 cp --only-show-errors .command.log <wd>/.command.log||true; exit $ret; }" EXIT; <aws> s3 cp --only-show-errors <wd>/.command.run - | bash 2>&1 | tee .command.log
#   bash -o pipefail -c trap "{ …; <s5cmd> cp .command.log <wd>/.command.log||true; … }" EXIT; <s5cmd> cat <wd>/.command.run | bash 2>&1 | tee .command.log
#   /usr/bin/fusion bash /fusion/s3/<bucket>/…/<wd>/.command.run
# The trap may only upload to the same work dir; a trailing `# …` comment (bash ignores
# it; batchkit's simulator writes its timing there) is allowed; every word is plain (no
# quotes, no expansions, no other commands). Anything else — Wave/`nxf_*` wrappers
# included — is "not recognised" and proves nothing. String methods, not one big regex:
# this runs once per job on the reconcile hot path (benchmarks/bench_reconcile.py), where
# a backtracking regex is several times slower.
_BASH_C: Final = "bash -o pipefail -c "
_TRAP_HEAD: Final = 'trap "{ ret=$?; '
_TRAP_END: Final = 'exit $ret; }" EXIT; '
_LOG_UPLOAD: Final = "/.command.log||true; "
_PIPE_TAIL: Final = " | bash 2>&1 | tee .command.log"
_RUN_FILE: Final = "/.command.run"
_UNSAFE_RE: Final = re.compile(r"[;|&<>\"'`$(){}\\\s]")  # anything but a plain word
_URL_RE: Final = re.compile(r"(s3|gs|az)://([^/\s]+)/(.*)", re.IGNORECASE)
_FUSION_RE: Final = re.compile(r"/fusion/(s3|gs|az)/([^/\s]+)/(.*)")
_ARRAY_CHILD_RE: Final = r"^([^:\n]+):\d+$"


# --- jobs -------------------------------------------------------------------------


def _epoch_ms_or_none(value: Any) -> Any:
    """Epoch milliseconds as Batch returns them (int); anything else is missing."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _container_of(job: Mapping[str, Any]) -> Mapping[str, Any]:
    container = job.get("container")
    if type(container) is dict or isinstance(container, Mapping):  # dict first: abc checks are slow
        return container
    # Jobs defined with ecsProperties (multi-container) keep their containers here.
    ecs = job.get("ecsProperties") or {}
    for task in ecs.get("taskProperties") or ():
        for c in task.get("containers") or ():
            if isinstance(c, Mapping):
                return c
    return {}


def jobs_frame(jobs: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """DescribeJobs job dicts (or ListJobs summaries) -> a ``schema.JOB_COLUMNS`` frame.

    Also adds ``JOB_EXTRA_COLUMNS`` that ``reconcile`` needs for waste. Timestamps are
    epoch milliseconds -> UTC. ``vcpus``/``memory_mib`` come from
    ``container.resourceRequirements`` (VCPU/MEMORY), else the legacy
    ``container.vcpus``/``memory``. ``attempts`` = ``len(attempts[])`` plus one when a try
    is STARTING/RUNNING now (Batch lists a try only once it stopped). ``command`` is the
    container command joined by spaces; ``job_workdir`` the task work dir found in it
    (``extract_workdir``); ``submission_id`` the ``schema.SUBMISSION_TAG`` tag. Fields a
    ListJobs summary lacks (queue, command, attempts) are <NA>.
    """
    return _typed_job_frame(_read_jobs(jobs))


@dataclass
class _JobFields:
    """The raw values ``jobs_frame`` keeps from each job dict, one list per column."""

    ids: list[Any]
    names: list[Any]
    queues: list[Any]
    statuses: list[Any]
    reasons: list[Any]
    created: list[Any]
    started: list[Any]
    stopped: list[Any]
    vcpus: list[Any]
    memory: list[Any]
    n_listed: list[Any]  # len(attempts[]), None without the list
    exit_codes: list[Any]
    commands: list[Any]
    workdirs: list[Any]
    submission_ids: list[Any]
    spans: list[tuple[tuple[int, float, float], ...]]  # finished tries: (index, start_ms, stop_ms)
    last_stops: list[Any]  # when the last listed try stopped


def _read_jobs(jobs: Iterable[Mapping[str, Any]]) -> _JobFields:
    """One pass over the job dicts collecting raw values (conversions come after, vectorized)."""
    ids: list[Any] = []
    names: list[Any] = []
    queues: list[Any] = []
    statuses: list[Any] = []
    reasons: list[Any] = []
    created: list[Any] = []
    started: list[Any] = []
    stopped: list[Any] = []
    vcpus: list[Any] = []
    memory: list[Any] = []
    n_listed: list[Any] = []
    exit_codes: list[Any] = []
    commands: list[Any] = []
    workdirs: list[Any] = []
    submission_ids: list[Any] = []
    spans: list[tuple[tuple[int, float, float], ...]] = []
    last_stops: list[Any] = []
    for job in jobs:
        get = job.get
        container = _container_of(job)
        status = get("status")
        ids.append(get("jobId"))
        names.append(get("jobName"))
        queues.append(get("jobQueue"))
        statuses.append(status)
        reasons.append(get("statusReason"))
        created.append(get("createdAt"))
        started.append(get("startedAt"))
        stopped.append(get("stoppedAt"))
        listed = get("attempts")
        tries, last_stop = _finished_tries(listed, status, get)
        spans.append(tries)
        last_stops.append(last_stop)
        n_listed.append(len(listed) if isinstance(listed, list) else None)
        vcpu, mem = _requested(container)
        vcpus.append(vcpu)
        memory.append(mem)
        exit_codes.append(container.get("exitCode"))
        command = container.get("command")
        joined = " ".join(map(str, command)) if isinstance(command, list) else None
        commands.append(joined)
        workdirs.append(_workdir_of(joined) if joined and isinstance(command, list) and _launcher_argv(command) else None)
        tags = get("tags")
        submission_ids.append(tags.get(SUBMISSION_TAG) if tags and isinstance(tags, dict | Mapping) else None)
    return _JobFields(
        ids, names, queues, statuses, reasons, created, started, stopped, vcpus, memory,
        n_listed, exit_codes, commands, workdirs, submission_ids, spans, last_stops,
    )


def _finished_tries(
    listed: Any, status: Any, get: Callable[[str], Any]
) -> tuple[tuple[tuple[int, float, float], ...], Any]:
    """The (index, start_ms, stop_ms) of each finished try of a job, and when the last
    listed try stopped (None when none did)."""
    if listed:
        found = []
        last_stop = None
        for i, attempt in enumerate(listed):
            a_start, a_stop = _epoch_ms_or_none(attempt.get("startedAt")), _epoch_ms_or_none(attempt.get("stoppedAt"))
            if a_stop is not None:
                last_stop = a_stop if last_stop is None else max(last_stop, a_stop)
                if a_start is not None:
                    found.append((i, a_start, a_stop))
        return tuple(found), last_stop
    if status in JOB_TERMINAL:
        # A summary, or a describe answer without attempts[]: the one try we can see.
        j_start, j_stop = _epoch_ms_or_none(get("startedAt")), _epoch_ms_or_none(get("stoppedAt"))
        if j_start is not None and j_stop is not None:
            return ((0, j_start, j_stop),), None
    return (), None


def _requested(container: Mapping[str, Any]) -> tuple[Any, Any]:
    """A container's vCPUs and memory (MiB): ``resourceRequirements``, else the legacy
    ``vcpus``/``memory`` fields."""
    vcpu = mem = None
    for req in container.get("resourceRequirements") or ():
        kind = req.get("type")
        if kind == "VCPU":
            vcpu = req.get("value")
        elif kind == "MEMORY":
            mem = req.get("value")
    return (
        vcpu if vcpu is not None else container.get("vcpus"),
        mem if mem is not None else container.get("memory"),
    )


def _typed_job_frame(raw: _JobFields) -> pd.DataFrame:
    """The raw job values as a frame of ``_JOB_DTYPES`` columns."""

    def when(values: list[Any]) -> pd.Series:
        epoch_ms = pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce")
        return pd.to_datetime(epoch_ms, unit="ms", utc=True).astype(_UTC)

    def number(values: list[Any], dtype: str) -> pd.Series:
        return pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").astype(dtype)

    status_s = pd.Series(raw.statuses, dtype="string")
    listed_s = number(raw.n_listed, "Int64")
    running_now = status_s.isin(_RUNNING_NOW).to_numpy(bool)
    started_s = when(raw.started)
    # Whether startedAt moves to the latest try is not documented: the running try
    # cannot have started before the last listed attempt stopped.
    try_start = pd.concat([started_s, when(raw.last_stops)], axis=1).max(axis=1).astype(_UTC)
    try_start = try_start.where(status_s.eq("RUNNING").fillna(False) & started_s.notna())
    return pd.DataFrame(
        {
            JobCol.JOB_ID: pd.Series(raw.ids, dtype="string"),
            JobCol.JOB_NAME: pd.Series(raw.names, dtype="string"),
            JobCol.JOB_QUEUE: pd.Series(raw.queues, dtype="string"),
            JobCol.STATUS: status_s,
            JobCol.STATUS_REASON: pd.Series(raw.reasons, dtype="string"),
            JobCol.CREATED_AT: when(raw.created),
            JobCol.STARTED_AT: started_s,
            JobCol.STOPPED_AT: when(raw.stopped),
            JobCol.VCPUS: number(raw.vcpus, "Float64"),
            JobCol.MEMORY_MIB: number(raw.memory, "Float64"),
            JobCol.ATTEMPTS: listed_s + running_now.astype(int),
            JobCol.EXIT_CODE: number(raw.exit_codes, "Int64"),
            JobCol.COMMAND: pd.Series(raw.commands, dtype="string"),
            JobCol.WORK_DIR: pd.Series(raw.workdirs, dtype="string"),
            JobCol.SUBMISSION_ID: pd.Series(raw.submission_ids, dtype="string"),
            LISTED_ATTEMPTS: listed_s,
            ATTEMPT_SPANS: pd.Series(raw.spans, dtype="object"),
            TRY_STARTED_AT: try_start,
        }
    )


def normal_dir(path: str) -> str | None:
    """A work dir as one canonical string, or None when it cannot be one.

    ``s3://``/``gs://``/``az://`` URLs get a lowercase scheme; the bucket and the key keep
    their case (legacy S3 buckets may hold capitals: ``s3://B`` is not ``s3://b``);
    Fusion's mount ``/fusion/s3/<bucket>/…`` becomes ``s3://<bucket>/…``; ``.`` and empty
    segments (duplicate slashes) are dropped and ``..`` removes the segment before it —
    a ``..`` that would climb out of the bucket (or above ``/``) makes the path no
    work dir at all. Compare work dirs only in this form: ``s3://b/work/../work2/x`` is
    under ``s3://b/work2``, not ``s3://b/work``.
    """
    found = _URL_RE.fullmatch(path) or _FUSION_RE.fullmatch(path)
    if found is not None:
        # The bucket keeps its case: legacy S3 buckets may hold capitals, so `s3://B` and
        # `s3://b` can be two buckets; and Unicode case folding maps look-alikes such as
        # the Kelvin sign onto ASCII letters (`"\u212a".lower() == "k"`).
        head = f"{found.group(1).lower()}://{found.group(2)}"
        rest = found.group(3)
    elif path.startswith("/"):
        head, rest = "", path
    else:
        return None
    parts: list[str] = []
    for part in rest.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return f"{head}/{'/'.join(parts)}" if parts else (head or "/")


def _workdir_of(command: str) -> str | None:
    """The one task work dir of a Nextflow launcher command (see ``extract_workdir``)."""
    if command.startswith(_BASH_C):
        body = command[len(_BASH_C) :]
        upload = None
        if body.startswith(_TRAP_HEAD):
            end = body.find(_TRAP_END)
            if end < 0:
                return None
            trap, body = body[len(_TRAP_HEAD) : end], body[end + len(_TRAP_END) :]
            if trap:
                if not trap.endswith(_LOG_UPLOAD) or _RUN_FILE in trap:
                    return None
                upload_words = trap[: -len(_LOG_UPLOAD)].split(" ")
                # Plain words only: `$(…)` in the trap runs another command when the job exits.
                if any(not w or _UNSAFE_RE.search(w) for w in upload_words):
                    return None
                upload = upload_words[-1]
        cut = body.find(_PIPE_TAIL)
        if cut < 0:
            return None
        rest = body[cut + len(_PIPE_TAIL) :]
        # A trailing comment ends at the first newline: what follows it is another command.
        if rest and (not rest.startswith(" #") or "\n" in rest or "\r" in rest):
            return None
        words = body[:cut].split(" ")
        if len(words) < 3 or any(not w or _UNSAFE_RE.search(w) for w in words):
            return None
        program = words[0].rpartition("/")[2]
        if program == "aws":
            options = words[1:-5]
            if words[-5:-2] != ["s3", "cp", "--only-show-errors"] or words[-1] != "-" or (
                options and (len(options) != 2 or options[0] != "--region")
            ):
                return None
            path = words[-2]
        elif program == "s5cmd":
            if words[-2] != "cat" or not all(w.startswith("--") for w in words[1:-2]):
                return None
            path = words[-1]
        else:
            return None
        if not path.endswith(_RUN_FILE):
            return None
        raw = path[: -len(_RUN_FILE)]
        if upload is not None and upload != raw:
            return None  # the trap writes to another task dir: not Nextflow's launcher
        return normal_dir(raw)
    words = command.split(" ")
    # Fusion: `/usr/bin/fusion bash /fusion/s3/<bucket>/…/.command.run`.
    if (
        len(words) == 3
        and words[0].rpartition("/")[2] == "fusion"
        and words[1] == "bash"
        and words[2].startswith("/fusion/")
        and words[2].endswith(_RUN_FILE)
        and not any(_UNSAFE_RE.search(w) for w in words)
    ):
        return normal_dir(words[2][: -len(_RUN_FILE)])
    return None


def _launcher_argv(command: list[Any]) -> bool:
    """The argument vector of Nextflow's launchers: ``bash -o pipefail -c <script>`` (one
    script argument) or ``<fusion> bash <path>``. The same words split otherwise run
    something else (``bash … -c aws`` runs ``aws`` alone), so they prove nothing."""
    if len(command) == 5:
        return [str(w) for w in command[:4]] == ["bash", "-o", "pipefail", "-c"]
    return len(command) == 3 and str(command[1]) == "bash"


def extract_workdir(commands: pd.Series) -> pd.Series:
    """The task work dir (the folder holding ``.command.run``) in each job command.

    Understands Nextflow's three launchers, each matched on the whole command:
    ``aws s3 cp --only-show-errors <wd>/.command.run - | bash …``, ``s5cmd cat
    <wd>/.command.run | bash …``, and Fusion's ``bash /fusion/s3/<bucket>/…/.command.run``.
    The path comes back in ``normal_dir`` form (Fusion's mount -> ``s3://<bucket>/…``,
    ``..`` and duplicate slashes resolved). <NA> where the command is not one of these
    launchers: a command that does not parse proves nothing.
    """
    return commands.astype("string").map(_workdir_of, na_action="ignore").astype("string")


def _as_jobs(jobs: pd.DataFrame | Iterable[Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.Index]:
    """A jobs frame with every column, one row per job id, and the index of those ids."""
    # Copy-on-write (pandas 3): a shallow copy keeps the caller's frame untouched.
    frame = jobs.copy(deep=False) if isinstance(jobs, pd.DataFrame) else jobs_frame(jobs)
    missing_extras = [c for c in JOB_EXTRA_COLUMNS if c not in frame.columns]
    for col, dtype in _JOB_DTYPES.items():
        if col not in frame.columns:
            frame[col] = pd.Series([None] * len(frame), index=frame.index, dtype="object")
        if str(frame[col].dtype) != dtype:
            frame[col] = (
                pd.to_datetime(frame[col], utc=True).astype(dtype)
                if dtype == _UTC
                else frame[col].astype(dtype)
            )
    if missing_extras:
        _derive_extras(frame, missing_extras)
    if frame[JobCol.WORK_DIR].isna().all() and frame[JobCol.COMMAND].notna().any():
        frame[JobCol.WORK_DIR] = extract_workdir(frame[JobCol.COMMAND])
    # Describe pages can repeat a job; the last answer is the freshest.
    # The Index's hash table, built once by is_unique, serves every get_indexer after.
    index = pd.Index(frame[JobCol.JOB_ID])
    if index.hasnans or not index.is_unique:
        ids = frame[JobCol.JOB_ID]
        drop = ids.isna().to_numpy(bool) | ids.duplicated(keep="last").to_numpy(bool)
        frame = frame[~drop]
        index = pd.Index(frame[JobCol.JOB_ID])
    return frame.reset_index(drop=True), index


def _derive_extras(frame: pd.DataFrame, missing: list[str]) -> None:
    """Best guesses for JOB_EXTRA_COLUMNS when a frame was built without ``jobs_frame``.

    Without attempts[] the visible try is the job's own startedAt..stoppedAt, the try
    running now starts at startedAt, and attempts listed = attempts minus the running try.
    """
    status = frame[JobCol.STATUS]
    if LISTED_ATTEMPTS in missing:
        running_now = status.isin(_RUNNING_NOW).fillna(False).astype(int)
        frame[LISTED_ATTEMPTS] = (frame[JobCol.ATTEMPTS] - running_now).astype("Int64")
    if TRY_STARTED_AT in missing:
        frame[TRY_STARTED_AT] = frame[JobCol.STARTED_AT].where(status.eq("RUNNING").fillna(False))
    if ATTEMPT_SPANS in missing:
        start_ms = (_seconds(frame[JobCol.STARTED_AT]) * 1000.0).tolist()
        stop_ms = (_seconds(frame[JobCol.STOPPED_AT]) * 1000.0).tolist()
        done = (status.isin(JOB_TERMINAL).fillna(False) & frame[JobCol.STARTED_AT].notna()
                & frame[JobCol.STOPPED_AT].notna()).tolist()
        frame[ATTEMPT_SPANS] = pd.Series(
            [((0, a, b),) if d else () for a, b, d in zip(start_ms, stop_ms, done, strict=True)],
            index=frame.index,
            dtype="object",
        )


# --- tasks and scope --------------------------------------------------------------


def _as_tasks(run: RunLike) -> pd.DataFrame:
    tasks = run.tasks
    if tasks is None:
        tasks = pd.DataFrame(columns=list(TASK_COLUMNS))
    tasks = tasks.reindex(columns=list(TASK_COLUMNS))
    for col, dtype in TASK_DTYPES.items():
        if str(tasks[col].dtype) != dtype:
            if dtype == _UTC:
                tasks[col] = pd.to_datetime(tasks[col], utc=True).astype(dtype)
            elif dtype.startswith("timedelta"):
                tasks[col] = pd.to_timedelta(tasks[col]).astype(dtype)
            else:
                tasks[col] = tasks[col].astype(dtype)
    return tasks.reset_index(drop=True)


def _recorded_ids(tasks: pd.DataFrame, job_index: pd.Index) -> tuple[pd.Series, np.ndarray]:
    """The Batch job ids this run recorded per task row (<NA> where none), and where
    each sits in ``job_index`` (-1 when Batch did not return it).

    A CACHED row's native_id (the trace repeats it from the cache) is the job of the
    run that computed the result, not of this run: it proves nothing about scope. A
    PID (digits only: local/grid executors in a mixed pipeline) or a blank is no Batch
    id; Batch ids are UUIDs, so only ids Batch did not return need that check.
    """
    cached = _Codes(tasks[TaskCol.STATUS]).isin({"CACHED"})
    recorded = tasks[TaskCol.NATIVE_ID].mask(cached)
    pos: np.ndarray = job_index.get_indexer(recorded)
    unknown = np.flatnonzero(recorded.notna().to_numpy(bool) & (pos < 0))
    if len(unknown):
        ids = recorded.iloc[unknown]
        not_batch = ids.str.isdigit().to_numpy(dtype=bool, na_value=False) | ids.eq("").to_numpy(
            dtype=bool, na_value=False
        )
        if not_batch.any():
            recorded = recorded.copy()
            recorded.iloc[unknown[not_batch]] = pd.NA
    return recorded, pos


def _array_parents(ids: pd.Series) -> list[str]:
    """The parent ids of array children ``<id>:<i>`` among ``ids`` (usually none)."""
    ids = ids.dropna()
    children = ids[ids.str.contains(":", regex=False).to_numpy(dtype=bool, na_value=False)]
    return sorted(set(children.str.extract(_ARRAY_CHILD_RE, expand=False).dropna()))


def _queue_names(values: pd.Series | Collection[str]) -> Any:
    """Queue ARNs (``arn:aws:batch:…:job-queue/NAME``) and names -> names."""
    series = pd.Series(list(values), dtype="string") if not isinstance(values, pd.Series) else values
    return series.str.rsplit("/", n=1).str[-1]


@dataclass(frozen=True)
class OtherRun:
    """Another run of the same launch dir or work dir, and what it recorded.

    Built by the readers (``NextflowRun.other_runs``: ``.nextflow/history``, rotated
    ``.nextflow.log.N`` of other launches, traces of other sessions); ``reconcile`` never
    lets a job this evidence points to be another run's kill.
    """

    name: str | None
    session_id: str | None = None
    source: str = ""  # where we learnt of it, e.g. ".nextflow.log.1" or ".nextflow/history"
    launch_time: pd.Timestamp | None = None
    end_time: pd.Timestamp | None = None
    job_ids: frozenset[str] = frozenset()
    #: short hashes ``ab/cdef12`` it submitted (never its CACHED ones: those are older dirs)
    hashes: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        where = f", {self.source}" if self.source else ""
        return f"run '{self.name or self.session_id or '?'}'{where}"


@dataclass
class _Scope:
    """What ``_scope`` found, per job of the jobs frame (see ``in_scope``)."""

    rule: pd.Series  # RecCol.IN_SCOPE_BY values
    proof: np.ndarray  # object: one line per job saying which proof holds, or why none does
    other: dict[str, str]  # job id -> the other run it belongs to (kept out of the frame)
    lifetime: tuple[pd.Timestamp, pd.Timestamp]


def _lifetime(run: RunLike, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """[launch - CLOCK_SKEW, last sign of life + LIFETIME_GRACE], or None without a launch."""
    launch = as_utc(run.launch_time)
    if launch is None:
        return None
    ends = [t for t in (as_utc(run.end_time), as_utc(getattr(run, "last_activity", None))) if t is not None]
    # A live run may submit at any moment; the Tracker re-reads its files each refresh,
    # so last_activity moves on — without one, nothing bounds it but now.
    last = max(ends) if ends else (now if run.state == "alive" else launch)
    return launch - CLOCK_SKEW, max(last, launch) + LIFETIME_GRACE


def _clock_offset(created: pd.Series, submit: pd.Series) -> pd.Timedelta:
    """How far the run's zone-less times are off Batch's clock, from its own jobs.

    Nextflow's log and trace times carry no zone (docs/ARCHITECTURE.md §3), so a log read in the wrong
    zone is off by whole quarter hours. A job is created within seconds of the task's
    submit time, so the median gap of the run's verified jobs, rounded to 15 minutes,
    is that error (the median: a minority of forged rows cannot move it).
    """
    gap = (created - submit).dropna()
    if gap.empty:
        return pd.Timedelta(0)
    middle = gap.median()
    # Zones span UTC-12..UTC+14: a larger gap is not a zone error but times that do not
    # belong together; the logged launch stands then.
    if abs(middle) <= CLOCK_SKEW or abs(middle) > pd.Timedelta(hours=26):
        return pd.Timedelta(0)
    quarter = pd.Timedelta(minutes=15)
    return quarter * round(middle / quarter)


def _reanchor(
    start: pd.Timestamp, end: pd.Timestamp, anchors: pd.Series
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A lifetime whose logged times are not even within a zone of the run's own jobs.

    When the logged launch lies more than a day away from the median createdAt of the
    run's verified jobs (a wrong year, a "-" date read as 1970), the log's times say
    nothing: the lifetime becomes those jobs' own span (+ skew and grace), narrowed — never
    widened — from the logged one. Jobs more than a day from the median (a forged
    record among them) do not count.
    """
    known = anchors.dropna()
    if known.empty:
        return start, end
    middle = known.median()
    day = pd.Timedelta(hours=26)
    if abs(start + CLOCK_SKEW - middle) <= day:
        return start, end
    near = known[(known - middle).abs() <= day]
    return near.min() - CLOCK_SKEW, near.max() + LIFETIME_GRACE


def _under_work_dir(wd: pd.Series, prefix: str | None) -> tuple[np.ndarray, list[str | None]]:
    """Per job: is its launcher's work dir under the run's (``prefix``, ending in "/"), and
    the task dir's last two parts "ab/<30 hex>" when it sits directly under it (else None).

    One pass over the work dirs as Python strings: pandas' string methods cost ~0.1 s
    each on 100k jobs.
    """
    n = len(wd)
    wd_obj = wd.to_numpy(dtype=object, na_value=None)
    keys: list[str | None] = [None] * n
    under: np.ndarray = np.zeros(n, dtype=bool)
    if prefix:
        cut = len(prefix)
        is_task_dir = _TASK_DIR.fullmatch
        for row, w in enumerate(wd_obj):
            if w is not None and w.startswith(prefix):
                under[row] = True
                if is_task_dir(w, cut):
                    keys[row] = w[cut:]
    return under, keys


@dataclass
class _Records:
    """The job ids this run recorded, cross-checked against the jobs Batch returned."""

    rows: np.ndarray  # task rows whose recorded id Batch returned
    jobs: np.ndarray  # ... the job position each of those rows names
    agree_row: np.ndarray  # per recorded row: the job's launcher work dir is the task's
    by_id: np.ndarray  # per job: recorded by the run, or the parent of a recorded array child
    wd_agrees: np.ndarray  # per job: its command agrees with the recording task's dir
    array_job: np.ndarray  # per job: an array child ``<id>:<i>`` or a recorded child's parent
    unparsed: np.ndarray  # per job: its command is no launcher we could read a work dir from
    sources: np.ndarray  # per job: what recorded it ("" where nothing did)
    contradicted: np.ndarray  # per job: the trace or log name another job for its task


def _check_records(
    run: RunLike,
    tasks: pd.DataFrame,
    jobs: pd.DataFrame,
    pos: np.ndarray,
    parents: list[str],
    key_obj: np.ndarray,
    prefix: str | None,
) -> _Records:
    """Does each recorded job agree with its record? Its launcher's task dir must be the
    recording task's: the task's ``workdir``, else its ``hash`` under the run's work dir."""
    n = len(jobs)
    ids = jobs[JobCol.JOB_ID]
    wd = jobs[JobCol.WORK_DIR]
    rec_rows = np.flatnonzero(pos >= 0)
    rec_jobs = pos[rec_rows]
    by_id: np.ndarray = np.zeros(n, dtype=bool)
    by_id[rec_jobs] = True
    is_parent: np.ndarray = np.zeros(n, dtype=bool)
    if parents:
        found = pd.Index(ids).get_indexer(parents)
        is_parent[found[found >= 0]] = True
    task_wd = tasks[TaskCol.WORKDIR].iloc[rec_rows].map(normal_dir, na_action="ignore").astype("string")
    task_hash = tasks[TaskCol.HASH].iloc[rec_rows].to_numpy(dtype=object, na_value=None)
    job_wd = wd.iloc[rec_jobs].reset_index(drop=True)
    task_wd = task_wd.reset_index(drop=True)
    same_dir = (task_wd == job_wd).fillna(False)
    hash_ok = np.array(
        [k is not None and h is not None and len(h) >= 4 and k.startswith(h) for k, h in zip(key_obj[rec_jobs], task_hash, strict=True)],
        dtype=bool,
    )
    agree_row = np.asarray(same_dir, dtype=bool) | (task_wd.isna().to_numpy(bool) & hash_ok)
    wd_agrees: np.ndarray = np.zeros(n, dtype=bool)
    wd_agrees[rec_jobs[agree_row]] = True
    array_job = ids.str.contains(":", regex=False).fillna(False).to_numpy(bool) | is_parent
    unparsed = wd.isna().to_numpy(bool)
    array_rows = np.flatnonzero(array_job[rec_jobs] & unparsed[rec_jobs] & ~agree_row)
    if len(array_rows):
        commands = jobs[JobCol.COMMAND].iloc[rec_jobs[array_rows]].to_numpy(dtype=object, na_value=None)
        dirs = task_wd.iloc[array_rows].to_numpy(dtype=object, na_value=None)
        named = _arrays_name_their_dirs(commands, dirs, task_hash[array_rows], prefix)
        wd_agrees[rec_jobs[array_rows[named]]] = True
    if is_parent.any():
        agreeing = ids[wd_agrees & array_job & ~is_parent]
        good = set(agreeing.str.extract(_ARRAY_CHILD_RE, expand=False).dropna())
        wd_agrees |= is_parent & unparsed & ids.isin(list(good)).fillna(False).to_numpy(bool)
    by_id |= is_parent
    contradicted_ids = getattr(run, "contradicted_ids", None) or frozenset()
    contradicted = ids.isin(list(contradicted_ids)).fillna(False).to_numpy(bool) if contradicted_ids else np.zeros(n, dtype=bool)
    sources = _record_sources(run, tasks, ids, rec_rows, rec_jobs, by_id)
    return _Records(rec_rows, rec_jobs, agree_row, by_id, wd_agrees, array_job, unparsed, sources, contradicted)


def _arrays_name_their_dirs(
    commands: np.ndarray, dirs: np.ndarray, hashes: np.ndarray, prefix: str | None
) -> np.ndarray:
    """Whether each recorded array job's command names the recording task's dir.

    Array children/parents (Nextflow >= 24.04 job arrays) run a launcher that picks the
    task dir by index from the list of the array's task dirs (TaskArrayExecutor): their
    command names no single work dir, but it names the recording task's among its
    dirs. One that names none (another user's array, a forged ``<id>:<i>`` record)
    disagrees; a parent agrees only through a child that does (its TerminateJob would
    stop every child).
    """
    named = [
        c is not None and (
            (d is not None and d in c)
            or (prefix is not None and h is not None and len(h) >= 4 and f"{prefix}{h}" in c)
        )
        for c, d, h in zip(commands, dirs, hashes, strict=True)
    ]
    out: np.ndarray = np.asarray(named, dtype=bool)
    return out


def _record_sources(
    run: RunLike, tasks: pd.DataFrame, ids: pd.Series, rec_rows: np.ndarray, rec_jobs: np.ndarray, by_id: np.ndarray
) -> np.ndarray:
    """Per job, what recorded its id for the proof line: the run's ``recorded_by`` map
    when it has one, else the recording task row's source ("" where nothing did)."""
    sources_of = getattr(run, "recorded_by", None)
    if isinstance(sources_of, Mapping) and sources_of:
        sources = ids.map(lambda j: sources_of.get(j, "")).to_numpy(dtype=object, na_value="")
    else:
        src: np.ndarray = np.full(len(ids), "", dtype=object)
        src[rec_jobs] = tasks[TaskCol.SOURCE].iloc[rec_rows].fillna("the run's records").to_numpy(dtype=object)
        sources = src
    out: np.ndarray = np.where((sources == "") & by_id, "the run's records", sources)
    return out


def _other_run_labels(others: Sequence[OtherRun], ids: pd.Series, key: pd.Series) -> np.ndarray:
    """Per job, the label of the first other run whose evidence names it ("" where none):
    it recorded the job's id, or submitted the hash of the job's task dir."""
    other_label: np.ndarray = np.full(len(ids), "", dtype=object)
    if others:
        short_key = key.str.slice(0, 9)
        for other in others:
            hit: np.ndarray = np.zeros(len(ids), dtype=bool)
            if other.job_ids:
                hit |= ids.isin(list(other.job_ids)).fillna(False).to_numpy(bool)
            if other.hashes:
                # A hash both runs claim (a forged record, or a hash collision) proves
                # nothing for either: the other run's claim stands in the way.
                hit |= short_key.isin(list(other.hashes)).fillna(False).to_numpy(bool)
            other_label[hit & (other_label == "")] = other.label
    return other_label


def _anchored_lifetime(
    run: RunLike,
    now: pd.Timestamp,
    tasks: pd.DataFrame,
    created: pd.Series,
    rec: _Records,
    claimed_elsewhere: np.ndarray,
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The run's lifetime (``_lifetime``) on Batch's clock, or None without a launch time.

    Shifted by the zone error the run's own verified jobs show (``_clock_offset``), and
    re-anchored on them when the logged times are not even within a day (``_reanchor``).
    Anchors are recorded jobs that agree with their record, that nothing contradicts and
    that no other run claims.
    """
    life = _lifetime(run, now)
    if life is None:
        return None
    submit = tasks[TaskCol.SUBMIT].iloc[rec.rows].reset_index(drop=True)
    anchor = rec.agree_row & ~np.asarray(rec.contradicted[rec.jobs] | claimed_elsewhere[rec.jobs], dtype=bool)
    anchors = created.iloc[rec.jobs[anchor]].reset_index(drop=True)
    offset = _clock_offset(anchors, submit[anchor].reset_index(drop=True))
    return _reanchor(life[0] + offset, life[1] + offset, anchors)


def _created_during_others(
    others: Sequence[OtherRun], created_s: np.ndarray, outside: np.ndarray, labels: np.ndarray, now: pd.Timestamp
) -> np.ndarray:
    """``labels`` plus, for each job of ``outside`` (under the work dir, created outside
    this run's lifetime) that no run claims yet, the first other run it was created
    during: it is that run's."""
    labels = labels.copy()
    for other in others:
        o_start = as_utc(other.launch_time)
        if o_start is None:
            continue
        o_end = (as_utc(other.end_time) or now) + LIFETIME_GRACE
        during = (created_s >= (o_start - CLOCK_SKEW - _EPOCH).total_seconds()) & (
            created_s <= (o_end - _EPOCH).total_seconds()
        )
        labels[outside & during & (labels == "")] = other.label + " (created during it)"
    return labels


def _on_run_queues(
    run: RunLike, job_queues: pd.Series, queues: Collection[str] | None, verified: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per job: is it on one of the run's queues, and its queue's name ("?" where none).

    The run's queues are ``queues``, else ``run.queues``, else those of its ``verified``
    recorded jobs (when none is known, no hash proof is possible).
    """
    if queues is None:
        queues = getattr(run, "queues", None) or None
    qcodes, quniques = pd.factorize(job_queues)
    qnames = _queue_names(pd.Series(quniques, dtype="string")).to_numpy(dtype=object)
    if queues:
        wanted = set(_queue_names(queues).dropna())
    else:
        wanted = {qnames[c] for c in set(qcodes[verified].tolist()) if c >= 0}
    known_q = np.array([q in wanted for q in qnames] + [False], dtype=bool)
    qtext: np.ndarray = np.append(qnames, "?").astype(object)[qcodes]
    return known_q[qcodes], qtext


def _submitted_task_dirs(keys: list[str | None], tasks: pd.DataFrame) -> np.ndarray:
    """Per job, whether its task dir "ab/<30 hex>" starts with a hash this run submitted
    (a non-CACHED task's ``hash``; "ab/c" at least: shorter is no evidence)."""
    submitted = set(tasks.loc[~_Codes(tasks[TaskCol.STATUS]).isin({"CACHED"}), TaskCol.HASH].dropna().astype(str))
    hash_rec: np.ndarray = np.zeros(len(keys), dtype=bool)
    if submitted:
        by_length: dict[int, set[str]] = {}
        for h in submitted:
            if len(h) >= 4:
                by_length.setdefault(len(h), set()).add(h)
        for row, k in enumerate(keys):
            if k is not None and any(k[:length] in group for length, group in by_length.items()):
                hash_rec[row] = True
    return hash_rec


@dataclass
class _Evidence:
    """Per job, the facts its proof line cites (see ``_proof_lines``)."""

    rec: _Records
    key: pd.Series  # the task dir "ab/<30 hex>" under the run's work dir, <NA> where none
    other_label: np.ndarray  # the other run whose evidence or lifetime points to it, or ""
    claimed_elsewhere: np.ndarray  # another run's evidence (not only its lifetime) points to it
    on_queue: np.ndarray
    queue: np.ndarray  # its queue's name, "?" where none
    in_life: np.ndarray
    at: np.ndarray  # "created HH:MM UTC", "" where unknown
    life_text: str  # the run's lifetime, for the lines that say a job lies outside it


def _proof_lines(
    ev: _Evidence,
    recorded_ok: np.ndarray,
    by_hash: np.ndarray,
    neighbourhood: np.ndarray,
    other: np.ndarray,
) -> np.ndarray:
    """One line per job: which proof holds, or why none does ("" where nothing ties it)."""
    rec, qtext, at = ev.rec, ev.queue, ev.at
    proof: np.ndarray = np.full(len(recorded_ok), "", dtype=object)
    if recorded_ok.any():
        i = np.flatnonzero(recorded_ok)
        proof[i] = "recorded by " + rec.sources[i] + "; on queue " + qtext[i] + "; " + at[i] + " in the run's lifetime; its launcher's work dir is the task's"
    if by_hash.any():
        i = np.flatnonzero(by_hash)
        proof[i] = "hash " + _object_array(ev.key.iloc[i].str.slice(0, 9)) + " submitted by this run; launcher under its work dir; on queue " + qtext[i] + "; " + at[i] + " in the run's lifetime"
    failed = rec.by_id & ~recorded_ok
    if failed.any():
        i = np.flatnonzero(failed)
        proof[i] = "recorded by " + rec.sources[i] + ", but the job disagrees" + _disagreements(ev, i) + " — not proof"
    if neighbourhood.any():
        i = np.flatnonzero(neighbourhood)
        extra = np.where(ev.in_life[i], "", "; " + at[i] + ", outside the run's lifetime " + ev.life_text)
        proof[i] = (
            "neighbourhood only: under the run's work dir, but neither its id nor its hash was recorded by this run"
            + extra + " — not proof (kill only by naming it)"
        )
    if other.any():
        i = np.flatnonzero(other)
        proof[i] = "another run's: " + ev.other_label[i] + " — never this run's"
    return proof


def _disagreements(ev: _Evidence, i: np.ndarray) -> np.ndarray:
    """"; <why>" for every way each recorded job ``i`` disagrees with its record."""
    rec = ev.rec
    why: np.ndarray = np.full(len(i), "", dtype=object)
    why = np.where(ev.claimed_elsewhere[i], why + "; " + ev.other_label[i] + " recorded it", why)
    why = np.where(rec.contradicted[i], why + "; the trace or log name another job for this task", why)
    why = np.where(rec.unparsed[i] & ~rec.array_job[i], why + "; its command is not a Nextflow launcher", why)
    why = np.where(~rec.unparsed[i] & ~rec.wd_agrees[i], why + "; its launcher's work dir is not the task's", why)
    why = np.where(~ev.on_queue[i], why + "; it is on queue " + ev.queue[i] + ", not the run's", why)
    why = np.where(~ev.in_life[i], why + "; " + ev.at[i] + ", outside the run's lifetime " + ev.life_text, why)
    return why


def _scope(
    run: RunLike,
    tasks: pd.DataFrame,
    jobs: pd.DataFrame,
    pos: np.ndarray,
    parents: list[str],
    queues: Collection[str] | None,
    now: pd.Timestamp,
    more_others: Sequence[OtherRun] = (),
) -> _Scope:
    """Ownership as proof (module docstring, "Scope"), one verdict per job.

    ``pos``: the job each task row recorded (``_recorded_ids``); ``more_others``: other
    runs known beside ``run.other_runs`` (the Tracker passes those its ledger records:
    jobs submitted from the submit form, killed or claimed as another run's), as data,
    so this stays pure.
    """
    n = len(jobs)
    ids = jobs[JobCol.JOB_ID]
    created_s = _seconds(jobs[JobCol.CREATED_AT])
    work_dir = normal_dir(run.work_dir) if run.work_dir else None
    prefix = (work_dir.rstrip("/") + "/") if work_dir else None
    under, keys = _under_work_dir(jobs[JobCol.WORK_DIR], prefix)
    key_obj = np.array(keys, dtype=object)
    key = pd.Series(key_obj, index=jobs.index, dtype="string")
    rec = _check_records(run, tasks, jobs, pos, parents, key_obj, prefix)
    others: Sequence[OtherRun] = (*(getattr(run, "other_runs", None) or ()), *more_others)
    other_label = _other_run_labels(others, ids, key)
    claimed_elsewhere = other_label != ""
    life = _anchored_lifetime(run, now, tasks, jobs[JobCol.CREATED_AT], rec, claimed_elsewhere)
    if life is None:
        start, end = pd.Timestamp.max.tz_localize("UTC"), pd.Timestamp.min.tz_localize("UTC")
        in_life: np.ndarray = np.zeros(n, dtype=bool)
    else:
        start, end = life
        in_life = (created_s >= (start - _EPOCH).total_seconds()) & (created_s <= (end - _EPOCH).total_seconds())
        other_label = _created_during_others(others, created_s, under & ~in_life, other_label, now)

    verified_no_queue = rec.by_id & rec.wd_agrees & in_life & ~rec.contradicted & ~claimed_elsewhere
    on_queue, queue = _on_run_queues(run, jobs[JobCol.JOB_QUEUE], queues, verified_no_queue)
    recorded_ok = verified_no_queue & on_queue
    hash_ok_job = ~rec.by_id & _submitted_task_dirs(keys, tasks) & under & on_queue & in_life & ~claimed_elsewhere
    # Labelled by time only (created during another run, outside this one's lifetime).
    during_other = (other_label != "") & ~claimed_elsewhere
    neighbourhood = under & ~recorded_ok & ~hash_ok_job & ~claimed_elsewhere & ~during_other & ~rec.by_id
    other = (claimed_elsewhere | during_other) & ~recorded_ok & ~hash_ok_job
    rule = np.select(
        [recorded_ok, hash_ok_job, other, neighbourhood],
        ["native_id", "hash", "other_run", "neighbourhood"],
        default="",
    )

    clock = _clock(created_s)
    at = np.where(clock == "", "", "created " + clock)
    life_text = f"{start:%H:%M}–{end:%H:%M} UTC" if life is not None else "unknown (no launch time)"
    evidence = _Evidence(rec, key, other_label, claimed_elsewhere, on_queue, queue, in_life, at, life_text)
    other_jobs = {str(j): str(lbl) for j, lbl in zip(ids.to_numpy()[other], other_label[other], strict=True)}
    return _Scope(
        rule=pd.Series(rule, index=jobs.index, dtype="string", name=RecCol.IN_SCOPE_BY),
        proof=_proof_lines(evidence, recorded_ok, hash_ok_job, neighbourhood, other),
        other=other_jobs,
        lifetime=(start, end),
    )


def in_scope(
    run: RunLike,
    jobs: pd.DataFrame,
    *,
    queues: Collection[str] | None = None,
    now: pd.Timestamp | None = None,
    other_runs: Sequence[OtherRun] = (),
) -> pd.Series:
    """How each job is proven to belong to ``run`` (module docstring, "Scope").

    ``"native_id"`` (recorded by the run and agreeing with the record), ``"hash"`` (the
    launcher names a task dir whose hash the run submitted), ``"neighbourhood"`` (under
    the work dir, nothing more: not proof), ``"other_run"`` (another run's evidence
    points to it) or ``""``. ``jobs`` is a ``jobs_frame``; the result shares its index.
    ``other_runs``: other runs known beside ``run.other_runs`` (see ``reconcile``).
    """
    now_ts = as_utc(now) or pd.Timestamp.now(tz="UTC")
    normal, job_index = _as_jobs(jobs)
    tasks = _as_tasks(run)
    recorded, pos = _recorded_ids(tasks, job_index)
    rule = _scope(run, tasks, normal, pos, _array_parents(recorded), queues, now_ts, other_runs).rule
    # _as_jobs drops jobs without an id and repeated ids; map back onto the caller's rows.
    lookup = pd.Series(rule.to_numpy(), index=normal[JobCol.JOB_ID].to_numpy())
    out = jobs[JobCol.JOB_ID].astype("string").map(lookup).astype("string")
    return out.fillna("").rename(RecCol.IN_SCOPE_BY)


# --- reconcile --------------------------------------------------------------------


def _seconds(ts: pd.Series) -> np.ndarray:
    """UTC timestamps -> float epoch seconds (NaN where missing), any resolution."""
    out: np.ndarray = np.asarray((ts - _EPOCH).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan))
    return out


#: "HH:MM UTC" for every minute of a day, so clock times are a lookup, not strftime.
_CLOCK: Final = np.array([f"{i // 60:02d}:{i % 60:02d} UTC" for i in range(1440)], dtype=object)


def _clock(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds -> "HH:MM UTC" (object array; "" where missing)."""
    known = ~np.isnan(seconds)
    minute = (np.nan_to_num(seconds) // 60 % 1440).astype(np.int64)
    out: np.ndarray = np.where(known, _CLOCK[minute], "")
    return out


def _object_array(series: pd.Series, fill: str = "?") -> np.ndarray:
    out: np.ndarray = series.to_numpy(dtype=object, na_value=fill)
    return out


class _Codes:
    """A status column factorized once, optionally taken by row positions (-1 = no row)."""

    def __init__(self, values: pd.Series, rows: np.ndarray | None = None) -> None:
        codes, uniques = pd.factorize(values)
        self.uniques = np.asarray(uniques, dtype=object)
        # A trailing -1 lets row -1 ("no task"/"no job") read code -1 even when empty.
        self.codes: np.ndarray = codes if rows is None else np.append(codes, -1)[rows]
        self.known: np.ndarray = self.codes >= 0

    def isin(self, values: Collection[str]) -> np.ndarray:
        hits = np.array([u in values for u in self.uniques] + [False], dtype=bool)
        out: np.ndarray = hits[self.codes]  # code -1 reads the trailing False
        return out

    def text(self, missing: str = "?") -> np.ndarray:
        out: np.ndarray = np.append(self.uniques, missing).astype(object)[self.codes]
        return out


def reconcile(
    run: RunLike,
    jobs: pd.DataFrame | Iterable[Mapping[str, Any]],
    *,
    price_per_vcpu_hour: float = 0.05,
    now: pd.Timestamp | None = None,
    queues: Collection[str] | None = None,
    other_runs: Sequence[OtherRun] = (),
) -> pd.DataFrame:
    """One row per (task, job) pair with a verdict, a reason, killability and waste.

    ``jobs``: a ``jobs_frame`` or the job dicts DescribeJobs returned. Rows: every task
    of ``run`` (with its job, or none), then every job in the run's scope that no task
    claims (``untracked``). Columns: ``REC_COLUMNS``. The frame's ``attrs`` carry
    ``run_name``, ``run_state``, ``price_per_vcpu_hour`` and ``now`` for ``plan_kills``
    and ``summarize``. ``other_runs``: other runs known beside ``run.other_runs`` (the
    Tracker's ledger: jobs it records under another run); a job they name is never this
    run's. See the module docstring for every rule and edge.
    """
    now_ts = as_utc(now) or pd.Timestamp.now(tz="UTC")
    tasks = _as_tasks(run)
    jobs_df, job_index = _as_jobs(jobs)
    # 1. native_id == job_id
    recorded, pos = _recorded_ids(tasks, job_index)
    parents = _array_parents(recorded)
    proven_by = _scope(run, tasks, jobs_df, pos, parents, queues, now_ts, other_runs)
    scope = proven_by.rule
    # 2./3. work dir, then hash prefix
    pos = _match_unrecorded(run, tasks, jobs_df, scope, recorded, pos)
    untracked_pos = _unclaimed_jobs(jobs_df, job_index, scope, pos, parents)

    n_tasks, n_untracked = len(tasks), len(untracked_pos)
    task_rows = np.concatenate([np.arange(n_tasks), np.full(n_untracked, -1)])
    job_rows = np.concatenate([pos, untracked_pos])
    frame, job_part = _pair_frame(tasks, jobs_df, task_rows, job_rows)
    scope_part = scope.reindex(job_rows).fillna("").reset_index(drop=True)
    proof_part = np.append(proven_by.proof, "").astype(object)[job_rows]

    st = _Statuses(tasks, jobs_df, task_rows, job_rows)
    run_ended = run.state in ("completed", "aborted")
    batch_id = np.concatenate([recorded.notna().to_numpy(bool), np.zeros(n_untracked, dtype=bool)])
    verdict = _verdicts(st, task_rows < 0, batch_id, run_ended)
    frame[RecCol.VERDICT] = pd.Series(verdict, dtype="string")

    # --- batch retries: tries made or scheduled beyond the first ---
    retries = (job_part[LISTED_ATTEMPTS] + st.active.astype(int) - 1).clip(lower=0)
    retries = retries.mask(~st.has_job, 0)
    frame[RecCol.BATCH_RETRIES] = retries.astype("Int64")

    # Only jobs proven the run's carry its waste or may be killed: a neighbour's burn is
    # not this run's.
    proven = scope_part.isin(_SCOPE_RULES).to_numpy(bool)
    waste_s = _waste_seconds(run, frame, job_part, st, verdict, run_ended, now_ts)
    vcpus = frame[JobCol.VCPUS].fillna(1.0).to_numpy(dtype=float)
    waste_h = np.where(st.has_job & proven, waste_s * vcpus / 3600.0, 0.0)
    frame[RecCol.WASTE_VCPU_H] = pd.array(waste_h, dtype="Float64")
    frame[RecCol.WASTE_COST] = pd.array(waste_h * price_per_vcpu_hour, dtype="Float64")

    # --- killable, nf_alive, scope ---
    frame[RecCol.KILLABLE] = proven & ((verdict == "orphan") | ((verdict == "untracked") & st.active & run_ended))
    frame[RecCol.NF_ALIVE] = (run.state == "alive") & st.nf_alive
    frame[RecCol.IN_SCOPE_BY] = scope_part.astype("string")
    frame[RecCol.PROOF] = pd.Series(proof_part, dtype="string")

    frame[RecCol.REASON] = _reasons(run, frame, verdict, now_ts, st.nf, st.bs, batch_id, run_ended)
    frame = frame[list(REC_COLUMNS)]
    frame.attrs.update(
        run_name=run.name,
        run_state=run.state,
        price_per_vcpu_hour=price_per_vcpu_hour,
        now=now_ts.isoformat(),
        lifetime=[proven_by.lifetime[0].isoformat(), proven_by.lifetime[1].isoformat()],
        other_runs=proven_by.other,
    )
    return frame


def _match_unrecorded(
    run: RunLike, tasks: pd.DataFrame, jobs_df: pd.DataFrame, scope: pd.Series, recorded: pd.Series, pos: np.ndarray
) -> np.ndarray:
    """``pos`` (the job each task row recorded, -1 for none) plus matching steps 2-3.

    Only tasks without a Batch id, and only jobs proven by hash that no task claimed by
    id: first the task's full work dir (latest-created job wins a shared work dir), then
    the task's short hash as a prefix of the job's task dir. A job claimed by two tasks'
    work dirs or hashes (a collision) stays with the first task; two rows holding the
    same native_id both keep it (``plan_kills`` dedupes by job id).
    """
    pos = pos.copy()
    claimed: np.ndarray = np.zeros(len(jobs_df), dtype=bool)
    claimed[pos[pos >= 0]] = True
    free = np.flatnonzero((scope == "hash").to_numpy(bool) & ~claimed)
    # CACHED tasks never claim a job: their work dir is an earlier run's, and letting one
    # match would hide a job that is running now.
    cached_task = _Codes(tasks[TaskCol.STATUS]).isin({"CACHED"})
    need = np.flatnonzero(recorded.isna().to_numpy(bool) & (pos < 0) & ~cached_task)
    if len(free) and len(need):
        cand = jobs_df.iloc[free][[JobCol.WORK_DIR, JobCol.CREATED_AT]].assign(_pos=free)
        cand = cand.sort_values(JobCol.CREATED_AT, kind="stable", na_position="first")
        found = _by_work_dir(tasks[TaskCol.WORKDIR].iloc[need], cand)
        pos[need[found >= 0]] = found[found >= 0]
        need = need[found < 0]
        # Candidates all lie under the run's work dir + "/": what follows is "ab/cdef…".
        base = len((normal_dir(run.work_dir or "") or "").rstrip("/")) + 1
        found = _by_hash_prefix(tasks[TaskCol.HASH].iloc[need], cand, base)
        pos[need[found >= 0]] = found[found >= 0]
    by_work = (pos >= 0) & recorded.isna().to_numpy(bool)
    dup = pd.Series(np.where(by_work, pos, -1)).duplicated(keep="first").to_numpy() & by_work
    pos[dup] = -1
    return pos


def _by_work_dir(task_dirs: pd.Series, cand: pd.DataFrame) -> np.ndarray:
    """Per task work dir, the candidate job (``cand``'s ``_pos``, oldest created first)
    whose work dir is the same, the latest created winning; -1 where none."""
    by_dir = cand.drop_duplicates(JobCol.WORK_DIR, keep="last")
    wd = task_dirs.map(normal_dir, na_action="ignore").astype("string")
    hit = pd.Index(by_dir[JobCol.WORK_DIR]).get_indexer(wd)
    found: np.ndarray = np.full(len(hit), -1, dtype=np.intp)
    found[hit >= 0] = by_dir["_pos"].to_numpy()[hit[hit >= 0]]
    return found


def _by_hash_prefix(hashes: pd.Series, cand: pd.DataFrame, base: int) -> np.ndarray:
    """Per short task hash ``ab/cdef12``, the candidate job (``cand``'s ``_pos``, oldest
    created first) whose task dir — its work dir from character ``base`` on — starts
    with it, the latest created winning; -1 where none. Nextflow writes hashes and work
    dirs in lowercase hex on both sides."""
    found: np.ndarray = np.full(len(hashes), -1, dtype=np.intp)
    keys = cand[JobCol.WORK_DIR].str.slice(base)
    for length in hashes.str.len().dropna().unique():
        length = int(length)
        if length < 4:  # "ab/c" at least: shorter is no evidence
            continue
        sel = (hashes.str.len() == length).fillna(False).to_numpy(bool)
        short = keys.str.slice(0, length).where(keys.str.len() >= length)
        table = pd.DataFrame({"k": short.to_numpy(), "_pos": cand["_pos"].to_numpy()})
        table = table.dropna().drop_duplicates("k", keep="last")
        hit = pd.Index(table["k"]).get_indexer(hashes[sel])
        rows = np.flatnonzero(sel)
        found[rows[hit >= 0]] = table["_pos"].to_numpy()[hit[hit >= 0]]
    return found


def _unclaimed_jobs(
    jobs_df: pd.DataFrame, job_index: pd.Index, scope: pd.Series, pos: np.ndarray, parents: list[str]
) -> np.ndarray:
    """The jobs no task claims that get a row of their own, oldest first: the proven ones
    and the neighbourhood (shown, unclaimed). Jobs another run's evidence points to are
    left out (``frame.attrs["other_runs"]``); an array parent's children carry its verdicts."""
    matched: np.ndarray = np.zeros(len(jobs_df), dtype=bool)
    matched[pos[pos >= 0]] = True
    is_parent: np.ndarray = np.zeros(len(jobs_df), dtype=bool)
    if parents:
        found = job_index.get_indexer(parents)
        is_parent[found[found >= 0]] = True
    shown = scope.isin(_SHOWN_RULES).to_numpy(bool)
    unclaimed = np.flatnonzero(shown & ~matched & ~is_parent)
    out: np.ndarray = unclaimed[np.argsort(_seconds(jobs_df[JobCol.CREATED_AT].iloc[unclaimed]), kind="stable")]
    return out


def _pair_frame(
    tasks: pd.DataFrame, jobs_df: pd.DataFrame, task_rows: np.ndarray, job_rows: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shown task and job columns side by side, one row per (task row, job row) pair
    (-1: none), and the job columns carried for the waste, on the same rows."""
    task_part = tasks[list(_TASK_CARRIED)].reindex(task_rows).reset_index(drop=True)
    job_part = jobs_df[list(_JOB_CARRIED)].reindex(job_rows).reset_index(drop=True)
    frame = pd.DataFrame({**{col: task_part[col] for col in _TASK_SHOWN}, RecCol.NF_STATUS: task_part[TaskCol.STATUS]})
    for col in _JOB_SHOWN:
        frame[col] = job_part[col]
    return frame, job_part


class _Statuses:
    """Per row of a reconcile frame, both statuses and the facts each verdict rests on.

    Statuses are factorized once; every membership test is then a lookup by code
    (pandas' python-backed strings make each isin/isna a pass over Python objects).
    """

    def __init__(self, tasks: pd.DataFrame, jobs_df: pd.DataFrame, task_rows: np.ndarray, job_rows: np.ndarray) -> None:
        self.nf = _Codes(tasks[TaskCol.STATUS], task_rows)
        self.bs = _Codes(jobs_df[JobCol.STATUS], job_rows)
        self.has_job: np.ndarray = self.bs.known
        self.active = self.bs.isin(JOB_ACTIVE)
        self.b_terminal = self.bs.isin(JOB_TERMINAL)
        self.nf_alive = self.nf.isin(TASK_ALIVE)
        self.nf_done = self.nf.isin(_TASK_DONE)


def _verdicts(st: _Statuses, untracked: np.ndarray, batch_id: np.ndarray, run_ended: bool) -> np.ndarray:
    """The verdict of each row: the first rule of the module docstring's "Verdicts" that applies."""
    nf, bs = st.nf, st.bs
    cached = ~untracked & nf.isin({"CACHED"})
    orphan = ~cached & st.has_job & st.active & (st.nf_done | (st.nf_alive & run_ended))
    stale = st.has_job & st.b_terminal & st.nf_alive
    disagree = st.has_job & (
        (nf.isin({"COMPLETED"}) & bs.isin({"FAILED"})) | (nf.isin({"FAILED"}) & bs.isin({"SUCCEEDED"}))
    )
    vanished = ~untracked & ~cached & ~st.has_job & batch_id
    out: np.ndarray = np.select(
        [untracked, cached, orphan, stale, disagree, vanished],
        ["untracked", "ok", "orphan", "stale", "disagree", "vanished"],
        default="ok",
    )
    return out


def _waste_seconds(
    run: RunLike,
    frame: pd.DataFrame,
    job_part: pd.DataFrame,
    st: _Statuses,
    verdict: np.ndarray,
    run_ended: bool,
    now: pd.Timestamp,
) -> np.ndarray:
    """Per row, the RUNNING seconds burnt after Nextflow stopped caring (orphan and
    untracked rows, and jobs that were orphans until they stopped), plus those of tries
    beyond the first before then (module docstring, "Waste")."""
    run_end = as_utc(run.end_time)
    run_end_s = np.nan if run_end is None else (run_end - _EPOCH).total_seconds()
    cutoff, stopped_caring = _care_cutoff(frame, st, verdict, run_ended, run_end_s)
    listed_n = job_part[LISTED_ATTEMPTS].fillna(0).to_numpy(dtype=np.int64)
    running_start = _seconds(job_part[TRY_STARTED_AT])
    running = st.bs.isin({"RUNNING"}) & ~np.isnan(running_start)
    # Finished tries, exploded to one row per try, then the try running now. Only rows
    # where a finished try can count: waste verdicts, or jobs with an extra attempt.
    span_rows = np.flatnonzero(
        np.asarray(st.has_job, dtype=bool) & (np.isin(verdict, _WASTE_VERDICTS) | stopped_caring | (listed_n >= 2))
    )
    exploded = job_part[ATTEMPT_SPANS].iloc[span_rows].explode().dropna()
    tries = np.array(exploded.tolist(), dtype=float).reshape(-1, 3)
    try_row = np.concatenate([exploded.index.to_numpy(dtype=np.int64), np.flatnonzero(running)])
    try_k = np.concatenate([tries[:, 0], listed_n[running]])
    try_start = np.concatenate([tries[:, 1] / 1000.0, running_start[running]])
    try_stop = np.concatenate([tries[:, 2] / 1000.0, np.full(int(running.sum()), (now - _EPOCH).total_seconds())])
    c = cutoff[try_row]
    after = np.clip(try_stop - np.maximum(try_start, c), 0.0, None)
    before = np.clip(np.minimum(try_stop, c) - try_start, 0.0, None)
    burnt = after + np.where(try_k >= 1, before, 0.0)
    out: np.ndarray = np.bincount(try_row, weights=burnt, minlength=len(frame))
    return out


def _care_cutoff(
    frame: pd.DataFrame, st: _Statuses, verdict: np.ndarray, run_ended: bool, run_end_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, when Nextflow stopped caring about its job (epoch seconds; inf: it still
    does, -inf: it never did), and which rows' jobs it stopped caring about.

    Those are the orphans, and the jobs that were orphans until they stopped (killed by
    us, or finished on their own) — their burnt time stays in the post-mortem after the
    kill turns them "stale"/"ok". Cutoff: a terminal task's ``complete`` time, else the
    run's ``end_time``; untracked jobs: all of their run time.
    """
    complete_s = _seconds(frame[TaskCol.COMPLETE])
    cutoff = np.full(len(frame), np.inf)
    ended_early = np.asarray(st.b_terminal & ((st.nf_alive & run_ended) | st.nf.isin({"ABORTED"})), dtype=bool)
    stopped_caring = ((verdict == "orphan") | ended_early) & np.asarray(st.has_job, dtype=bool)
    done_np = np.asarray(st.nf_done, dtype=bool)
    caring_done = stopped_caring & done_np
    cutoff[caring_done] = np.where(np.isnan(complete_s[caring_done]), run_end_s, complete_s[caring_done])
    cutoff[stopped_caring & ~done_np] = run_end_s
    cutoff[verdict == "untracked"] = -np.inf
    # An orphan whose cutoff is unknown (no complete time, no run end): all of its run time.
    cutoff[np.isnan(cutoff)] = -np.inf
    return cutoff, stopped_caring


def _reasons(
    run: RunLike,
    frame: pd.DataFrame,
    verdict: np.ndarray,
    now: pd.Timestamp,
    nf_codes: _Codes,
    bs_codes: _Codes,
    batch_id: np.ndarray,
    run_ended: bool,
) -> pd.Series:
    """One readable line per row (module docstring, "Reasons"): the line of the row's
    case, then how often Batch retried, then whether its record fails to prove it."""
    say = _ReasonText(run, run_ended, frame, now, nf_codes, bs_codes)
    orphan, ok = verdict == "orphan", verdict == "ok"
    nf_done, alive, cached = nf_codes.isin(_TASK_DONE), nf_codes.isin(TASK_ALIVE), nf_codes.isin({"CACHED"})
    has_job = bs_codes.known
    # A native_id that is no Batch id (digits: a PID of a local/grid executor).
    pid = frame[TaskCol.NATIVE_ID].notna().to_numpy(bool) & ~batch_id
    no_job = ok & ~cached & ~has_job & ~pid
    cases: tuple[tuple[np.ndarray, Callable[[np.ndarray], list[str]]], ...] = (
        (orphan & nf_done, say.orphan_of_done_task),
        (orphan & ~nf_done & run_ended, say.orphan_of_ended_run),
        (verdict == "untracked", say.untracked),
        (verdict == "stale", say.stale),
        (verdict == "disagree", say.disagree),
        (verdict == "vanished", say.vanished),
        (ok & cached, say.cached),
        (ok & ~cached & has_job, say.both_statuses),
        (ok & ~cached & ~has_job & pid, say.local_process),
        (no_job & alive, say.never_submitted if run_ended else say.not_yet_submitted),
        (no_job & ~alive, say.no_job_recorded),
    )
    reason: np.ndarray = np.full(len(frame), "", dtype=object)
    for mask, lines in cases:
        rows = np.flatnonzero(mask)
        if len(rows):
            reason[rows] = lines(rows)
    retries = frame[RecCol.BATCH_RETRIES].fillna(0).to_numpy(dtype=np.int64)
    rows = np.flatnonzero(retries > 0)
    reason[rows] = [f"{line}; Batch retried {n}×" for line, n in zip(reason[rows].tolist(), retries[rows].tolist(), strict=True)]
    # A task's record names a job that does not agree with it (another queue, outside the
    # run's lifetime, another task dir, another run's): shown, never killed.
    rows = np.flatnonzero(has_job & (verdict != "untracked") & ~np.isin(say.rule, list(_SCOPE_RULES)))
    reason[rows] = [f"{line} — not proven this run's job (see proof): not killable" for line in reason[rows].tolist()]
    return pd.Series(reason, index=frame.index, dtype="string")


class _ReasonText:
    """The reason lines of each verdict case: rows (positions in the frame) -> one line each."""

    def __init__(
        self, run: RunLike, run_ended: bool, frame: pd.DataFrame, now: pd.Timestamp, nf_codes: _Codes, bs_codes: _Codes
    ) -> None:
        self.run, self.run_ended, self.frame = run, run_ended, frame
        self.now_s = (now - _EPOCH).total_seconds()
        self.nf_text, self.bs_text = nf_codes.text(), bs_codes.text()
        self.active = bs_codes.isin(JOB_ACTIVE)
        self.rule = frame[RecCol.IN_SCOPE_BY].to_numpy(dtype=object, na_value="")

    def _column_values(self, name: str, idx: np.ndarray, fill: Any = "?") -> list[Any]:
        values: list[Any] = self.frame[name].iloc[idx].to_numpy(dtype=object, na_value=fill).tolist()
        return values

    def _nf_statuses(self, idx: np.ndarray) -> list[str]:
        statuses: list[str] = self.nf_text[idx].tolist()
        return statuses

    def _batch_statuses(self, idx: np.ndarray) -> list[str]:
        statuses: list[str] = self.bs_text[idx].tolist()
        return statuses

    def _short_job_ids(self, idx: np.ndarray) -> list[str]:
        """The job id cut to 8 characters; a vanished row has no job: the task's native_id."""
        ids = self.frame[JobCol.JOB_ID].iloc[idx].fillna(self.frame[TaskCol.NATIVE_ID].iloc[idx])
        return [i if len(i) <= 8 else f"{i[:8]}…" for i in map(str, _object_array(ids).tolist())]

    def _active_for(self, idx: np.ndarray) -> list[str]:
        """How long each job has been in its active state: running since started_at, else since created."""
        started = _seconds(self.frame[JobCol.STARTED_AT].iloc[idx])
        since = np.where(np.isnan(started), _seconds(self.frame[JobCol.CREATED_AT].iloc[idx]), started)
        return [_duration(s) for s in (self.now_s - since).tolist()]

    def orphan_of_done_task(self, idx: np.ndarray) -> list[str]:
        at = [f" at {clock}" if clock else "" for clock in _clock(_seconds(self.frame[TaskCol.COMPLETE].iloc[idx])).tolist()]
        return [
            f"Nextflow marked the task {nf}{when} but Batch still {bs} for {span}"
            for nf, when, bs, span in zip(self._nf_statuses(idx), at, self._batch_statuses(idx), self._active_for(idx), strict=True)
        ]

    def orphan_of_ended_run(self, idx: np.ndarray) -> list[str]:
        run = self.run
        end = as_utc(run.end_time)
        end_text = f" at {end:%H:%M} UTC" if end is not None else ""
        cause = getattr(run, "abort_cause", None)
        cause_text = f" ({cause})" if cause and run.state == "aborted" else ""
        verb = "aborted" if run.state == "aborted" else "completed"
        return [
            f"Nextflow {verb}{end_text}{cause_text} but Batch still {bs} for {span}, task still {nf} in its records"
            for bs, span, nf in zip(self._batch_statuses(idx), self._active_for(idx), self._nf_statuses(idx), strict=True)
        ]

    def untracked(self, idx: np.ndarray) -> list[str]:
        cut = len((normal_dir(self.run.work_dir or "") or "").rstrip("/")) + 1
        lines = []
        for job, wd, rule, bs, active, span in zip(
            self._short_job_ids(idx), self._column_values(JobCol.WORK_DIR, idx, None), self.rule[idx].tolist(),
            self._batch_statuses(idx), self.active[idx].tolist(), self._active_for(idx), strict=True,
        ):
            if rule == "hash":
                what = "a task dir this run submitted"
                caveat = "" if self.run_ended else " — the run is alive: it may have just been submitted (kill only with force)"
            else:
                what, caveat = "under the run's work dir only, not proof", " — unclaimed: kill only by naming the job"
            line = f"no Nextflow record of job {job} (work dir …/{'?' if wd is None else wd[cut:]}: {what}); Batch {bs}"
            lines.append(f"{line} for {span}{caveat}" if active else line)
        return lines

    def stale(self, idx: np.ndarray) -> list[str]:
        return [f"Batch says {bs}, Nextflow still thinks {nf}" for bs, nf in zip(self._batch_statuses(idx), self._nf_statuses(idx), strict=True)]

    def disagree(self, idx: np.ndarray) -> list[str]:
        return [
            f"Nextflow says {nf}, Batch says {bs}" + (f" ({why})" if why else "")
            for nf, bs, why in zip(self._nf_statuses(idx), self._batch_statuses(idx), self._column_values(JobCol.STATUS_REASON, idx, ""), strict=True)
        ]

    def vanished(self, idx: np.ndarray) -> list[str]:
        return [
            f"job id {job} not found in Batch (aged out, wrong region/account, or nextflow-io/nextflow#7301)"
            for job in self._short_job_ids(idx)
        ]

    def cached(self, idx: np.ndarray) -> list[str]:
        return ["cached by Nextflow: no Batch job needed"] * len(idx)

    def both_statuses(self, idx: np.ndarray) -> list[str]:
        return [f"Nextflow {nf}, Batch {bs}" for nf, bs in zip(self._nf_statuses(idx), self._batch_statuses(idx), strict=True)]

    def local_process(self, idx: np.ndarray) -> list[str]:
        return [
            f"Nextflow {nf}; native_id {pid} is a local process, not a Batch job"
            for nf, pid in zip(self._nf_statuses(idx), self._column_values(TaskCol.NATIVE_ID, idx), strict=True)
        ]

    def not_yet_submitted(self, idx: np.ndarray) -> list[str]:
        return [f"Nextflow {nf}, no Batch job id yet (not yet submitted)" for nf in self._nf_statuses(idx)]

    def never_submitted(self, idx: np.ndarray) -> list[str]:
        return [f"run ended with the task {nf} and no Batch job recorded or found in scope" for nf in self._nf_statuses(idx)]

    def no_job_recorded(self, idx: np.ndarray) -> list[str]:
        return [f"Nextflow {nf}, no Batch job recorded" for nf in self._nf_statuses(idx)]


def _duration(seconds: float) -> str:
    """``1d 4h`` / ``2h 3m`` / ``7m`` / ``42s``: the largest unit and the next (0s when negative or unknown)."""
    days, rest = divmod(int(seconds) if seconds > 0 else 0, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{secs}s"


# --- kills and summaries -----------------------------------------------------------


def plan_kills(
    frame: pd.DataFrame,
    *,
    force: bool = False,
    run_name: str | None = None,
    verdicts: Collection[str] | None = None,
    job_ids: Collection[str] | None = None,
) -> list[KillJob]:
    """The kills a reconcile frame justifies (docs/ARCHITECTURE.md §8), one ``KillJob`` per job.

    Only ``killable`` rows; with ``force`` also proven active rows Nextflow still tracks
    as alive (``nf_alive``) and the proven unclaimed jobs of a live run. Only the two
    proofs count (``scope_rule`` ``"native_id"`` or ``"hash"``); a ``"neighbourhood"`` job
    (under the work dir, nothing more) is taken only when ``job_ids`` names it — the
    user picked that very job — and a job of another run or of no known run never is.
    Never a job Batch has already finished. ``verdicts`` and ``job_ids`` narrow the plan
    (a UI button for one row). The reason is ``batchkit: <verdict> of run '<name>'``
    (forced rows: ``forced kill``; named neighbours: ``named kill``), cut to Batch's
    1024 characters; ``run_name`` defaults to the frame's ``attrs``. Each ``KillJob``
    carries the row's ``proof`` line for the dry run to show.
    """
    if frame.empty:
        return []
    name = run_name if run_name is not None else frame.attrs.get("run_name")
    name = name or "unnamed"
    rule = frame[RecCol.IN_SCOPE_BY]
    # Only the two proofs of docs/ARCHITECTURE.md §5.1 count; anything else (e.g. a hand-edited frame) does not.
    scoped = rule.isin(_SCOPE_RULES).to_numpy(dtype=bool, na_value=False)
    has_id = frame[JobCol.JOB_ID].notna().to_numpy(bool)
    active = frame[RecCol.BATCH_STATUS].isin(JOB_ACTIVE).to_numpy(bool)
    killable = frame[RecCol.KILLABLE].fillna(False).to_numpy(bool) & scoped
    named: np.ndarray = np.zeros(len(frame), dtype=bool)
    if job_ids is not None:
        named = frame[JobCol.JOB_ID].isin(set(job_ids)).to_numpy(dtype=bool, na_value=False)
    neighbour = rule.eq("neighbourhood").to_numpy(dtype=bool, na_value=False) & named
    # force adds every other proven active job: the tasks Nextflow still tracks as
    # alive, and the unclaimed jobs of a run that is still alive.
    forced = force & ~killable & scoped
    pick = has_id & active & (killable | forced | neighbour)
    if verdicts is not None:
        pick &= frame[RecCol.VERDICT].isin(set(verdicts)).to_numpy(bool)
    if job_ids is not None:
        pick &= named
    chosen = frame[pick]
    label = np.where(neighbour, "named kill", np.where(forced, "forced kill", frame[RecCol.VERDICT].to_numpy(dtype=object, na_value="?")))[pick]
    keep = ~chosen[JobCol.JOB_ID].duplicated(keep="first").to_numpy(bool)
    chosen, label = chosen[keep], label[keep]
    proofs = chosen[RecCol.PROOF] if RecCol.PROOF in chosen else pd.Series("", index=chosen.index)
    plan = []
    for job_id, verdict, task, hours, why, proof in zip(
        chosen[JobCol.JOB_ID],
        chosen[RecCol.VERDICT],
        chosen[TaskCol.NAME],
        chosen[RecCol.WASTE_VCPU_H],
        label,
        proofs,
        strict=True,
    ):
        plan.append(
            KillJob(
                job_id=str(job_id),
                verdict=str(verdict),
                reason=f"batchkit: {why} of run '{name}'"[:REASON_LIMIT],
                task_name=None if pd.isna(task) else str(task),
                vcpu_hours=0.0 if pd.isna(hours) else float(hours),
                proof="" if pd.isna(proof) else str(proof),
            )
        )
    return plan


def summarize(frame: pd.DataFrame) -> dict[str, Any]:
    """Plain (JSON-ready) totals of a reconcile frame for dashboards, the CLI and the ledger."""
    counts = frame[RecCol.VERDICT].value_counts()
    verdicts = {v: int(counts.get(v, 0)) for v in VERDICTS}
    return {
        "run_name": frame.attrs.get("run_name"),
        "run_state": frame.attrs.get("run_state"),
        "rows": len(frame),
        "verdicts": verdicts,
        "mismatches": sum(n for v, n in verdicts.items() if v != "ok"),
        "killable": int(frame[RecCol.KILLABLE].fillna(False).sum()),
        "nf_alive": int(frame[RecCol.NF_ALIVE].fillna(False).sum()),
        "batch_retries": int(frame[RecCol.BATCH_RETRIES].fillna(0).sum()),
        "waste_vcpu_hours": float(frame[RecCol.WASTE_VCPU_H].fillna(0.0).sum()),
        "waste_cost": float(frame[RecCol.WASTE_COST].fillna(0.0).sum()),
        "price_per_vcpu_hour": frame.attrs.get("price_per_vcpu_hour"),
    }
