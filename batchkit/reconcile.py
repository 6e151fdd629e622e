"""The pure core: put each Nextflow task beside its AWS Batch job and judge the pair.

No boto3, no widgets, no I/O. Everything on the hot path is vectorized pandas/numpy
(the only Python loops walk the raw DescribeJobs dicts once in ``jobs_frame`` and
build the final ``KillJob`` list in ``plan_kills``).

Decisions worth knowing (DESIGN §4-6 gives the rules, these are the edges):

Scope (``in_scope``) — who owns a Batch job:
  * rule 1 ``"native_id"``: the run recorded the job id (a task's ``native_id``), or the
    job is the parent of a recorded array child ``<id>:<i>``;
  * rule 2 ``"workdir"``: the task work dir extracted from the job's command lies under
    ``run.work_dir + "/"`` (the "/" boundary keeps ``s3://b/work2`` out of
    ``s3://b/work``), the job was created no earlier than ``run.launch_time`` minus
    ``CLOCK_SKEW``, and — when the run's queues are known (``queues=``, else a
    ``queues`` attribute of the run object if it has one) — it sits on one of them
    (names and ARNs compare by name). Without a launch time or a work dir rule 2
    cannot prove anything. A job the answer gives no queue for (a ListJobs summary)
    fails the queue check (conservative).
  * A CACHED row's native_id is the job of the run that computed the result (the trace
    repeats it from the cache): it proves nothing for this run and claims no job.
  * A job name alone never proves ownership: names are not even read here.
  * Known limit: two runs sharing one work dir and one queue, launched close together,
    cannot be told apart by rule 2 (their work dirs are under the same prefix).

Matching a task to a job, strongest first:
  1. ``native_id == job_id`` (array children are ``<id>:<i>`` on both sides; the array
     parent gets no row of its own — its children carry the verdicts);
  2. only for tasks without a Batch job id: the task's full work dir equals the job's;
  3. else the task's short hash ``ab/cdef12`` is a prefix of the job work dir's last two
     parts (DESIGN §2). Steps 2-3 only consider jobs in scope by rule 2 that no task
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
  * ``untracked``: a job in scope that no task claims; killable only while active and
    once the run has ended. While the run is alive an unclaimed job may simply be one
    Nextflow submitted after we last read its files (the trace gets a row only when a
    task ends, DESIGN §2), so killing it needs ``force`` like any job of a live run.
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
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

from batchkit.schema import (
    JOB_ACTIVE,
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
    "REC_COLUMNS",
    "extract_workdir",
    "in_scope",
    "jobs_frame",
    "plan_kills",
    "reconcile",
    "summarize",
]

#: Tolerance between the launch machine's clock and Batch's createdAt (scope rule 2).
CLOCK_SKEW: Final = pd.Timedelta(minutes=5)
#: Batch's limit on TerminateJob's reason (DESIGN §3).
REASON_LIMIT: Final = 1024

# Columns jobs_frame adds beyond schema.JOB_COLUMNS; reconcile needs them for waste.
# (Candidates for schema.JobCol; kept local until the lead adds them.)
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
#: Job columns a reconcile frame shows.
_JOB_SHOWN: Final = (
    JobCol.JOB_ID,
    JobCol.JOB_NAME,
    JobCol.JOB_QUEUE,
    JobCol.STATUS,
    JobCol.STATUS_REASON,
    JobCol.CREATED_AT,
    JobCol.STARTED_AT,
    JobCol.STOPPED_AT,
    JobCol.VCPUS,
    JobCol.ATTEMPTS,
    JobCol.WORK_DIR,
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
    RecCol.WASTE_VCPU_H,
    RecCol.WASTE_COST,
)
_RUNNING_NOW: Final = frozenset({"STARTING", "RUNNING"})
_TASK_DONE: Final = frozenset({"COMPLETED", "FAILED", "ABORTED"})
_WASTE_VERDICTS: Final = ("orphan", "untracked")
_SCOPE_RULES: Final = frozenset({"native_id", "workdir"})

# Nextflow's container command (AwsBatchTaskHandler.classicSubmitCli / s5Cmd /
# fusionSubmitCli): `... aws s3 cp --only-show-errors s3://b/work/ab/cd…/.command.run - | bash`,
# `s5cmd cat s3://b/work/ab/cd…/.command.run | bash`, `fusion bash /fusion/s3/b/work/ab/cd…/.command.run`.
# The trap before it copies `.command.log`, so the first `/.command.run` is the launcher's.
# The path is the token that ends there; a regex search over these ~300-char commands
# cost 15.7 µs each (measured), str.find/rfind 1.7 µs: this runs once per job.
_RUN_FILE: Final = "/.command.run"
_SCHEME_RE: Final = re.compile(r"(?:s3|gs|az)://[^/\s]+/|/fusion/(s3|gs|az)/[^/\s]+/")
_ARRAY_CHILD_RE: Final = r"^([^:\n]+):\d+$"


# --- jobs -------------------------------------------------------------------------


def _ms(value: Any) -> Any:
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
    # One pass over the dicts collecting raw values; conversions happen vectorized below.
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
        tries: tuple[tuple[int, float, float], ...] = ()
        last_stop = None
        if listed:
            found = []
            for i, attempt in enumerate(listed):
                a_start, a_stop = _ms(attempt.get("startedAt")), _ms(attempt.get("stoppedAt"))
                if a_stop is not None:
                    last_stop = a_stop if last_stop is None else max(last_stop, a_stop)
                    if a_start is not None:
                        found.append((i, a_start, a_stop))
            tries = tuple(found)
        elif status in JOB_TERMINAL:
            # A summary, or a describe answer without attempts[]: the one try we can see.
            j_start, j_stop = _ms(get("startedAt")), _ms(get("stoppedAt"))
            if j_start is not None and j_stop is not None:
                tries = ((0, j_start, j_stop),)
        spans.append(tries)
        last_stops.append(last_stop)
        n_listed.append(len(listed) if isinstance(listed, list) else None)
        vcpu = mem = None
        for req in container.get("resourceRequirements") or ():
            kind = req.get("type")
            if kind == "VCPU":
                vcpu = req.get("value")
            elif kind == "MEMORY":
                mem = req.get("value")
        vcpus.append(vcpu if vcpu is not None else container.get("vcpus"))
        memory.append(mem if mem is not None else container.get("memory"))
        exit_codes.append(container.get("exitCode"))
        command = container.get("command")
        joined = " ".join(map(str, command)) if isinstance(command, list) else None
        commands.append(joined)
        workdirs.append(_workdir_of(joined) if joined else None)
        tags = get("tags")
        submission_ids.append(tags.get(SUBMISSION_TAG) if tags and isinstance(tags, dict | Mapping) else None)

    def when(values: list[Any]) -> pd.Series:
        epoch_ms = pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce")
        return pd.to_datetime(epoch_ms, unit="ms", utc=True).astype(_UTC)

    def number(values: list[Any], dtype: str) -> pd.Series:
        return pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").astype(dtype)

    status_s = pd.Series(statuses, dtype="string")
    listed_s = number(n_listed, "Int64")
    running_now = status_s.isin(_RUNNING_NOW).to_numpy(bool)
    started_s = when(started)
    # Whether startedAt moves to the latest try is not documented: the running try
    # cannot have started before the last listed attempt stopped.
    try_start = pd.concat([started_s, when(last_stops)], axis=1).max(axis=1).astype(_UTC)
    try_start = try_start.where(status_s.eq("RUNNING").fillna(False) & started_s.notna())
    frame = pd.DataFrame(
        {
            JobCol.JOB_ID: pd.Series(ids, dtype="string"),
            JobCol.JOB_NAME: pd.Series(names, dtype="string"),
            JobCol.JOB_QUEUE: pd.Series(queues, dtype="string"),
            JobCol.STATUS: status_s,
            JobCol.STATUS_REASON: pd.Series(reasons, dtype="string"),
            JobCol.CREATED_AT: when(created),
            JobCol.STARTED_AT: started_s,
            JobCol.STOPPED_AT: when(stopped),
            JobCol.VCPUS: number(vcpus, "Float64"),
            JobCol.MEMORY_MIB: number(memory, "Float64"),
            JobCol.ATTEMPTS: listed_s + running_now.astype(int),
            JobCol.EXIT_CODE: number(exit_codes, "Int64"),
            JobCol.COMMAND: pd.Series(commands, dtype="string"),
            JobCol.WORK_DIR: pd.Series(workdirs, dtype="string"),
            JobCol.SUBMISSION_ID: pd.Series(submission_ids, dtype="string"),
            LISTED_ATTEMPTS: listed_s,
            ATTEMPT_SPANS: pd.Series(spans, dtype="object"),
            TRY_STARTED_AT: try_start,
        }
    )
    return frame


def _workdir_of(command: str) -> str | None:
    """The folder holding ``.command.run`` in one command string (see ``extract_workdir``)."""
    end = command.find(_RUN_FILE)
    if end < 0:
        return None
    after = command[end + len(_RUN_FILE) : end + len(_RUN_FILE) + 1]
    if after and (after.isalnum() or after in "._"):
        return None  # `.command.run.bak`, `.command.runner`: not the launcher
    # The path is a shell word: it starts after a blank or an opening quote.
    start = max(command.rfind(" ", 0, end), command.rfind("'", 0, end), command.rfind('"', 0, end)) + 1
    path = command[start:end]
    found = _SCHEME_RE.match(path)
    if found is None:
        return None
    if found.group(1):  # Fusion mounts the bucket at /fusion/<scheme>/<bucket>/
        return f"{found.group(1)}://{path[len('/fusion/') + len(found.group(1)) + 1 :]}"
    return path


def extract_workdir(commands: pd.Series) -> pd.Series:
    """The task work dir (the folder holding ``.command.run``) in each job command.

    Understands Nextflow's three launchers: ``aws s3 cp <wd>/.command.run - | bash``,
    ``s5cmd cat <wd>/.command.run``, and Fusion's ``bash /fusion/s3/<bucket>/…/.command.run``.
    A Fusion mount path is normalised back to the object-store URL
    (``/fusion/s3/<bucket>/…`` -> ``s3://<bucket>/…``, likewise gs/az), so it compares
    with ``run.work_dir``. <NA> where no launcher is found.
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


def _claimed_by_id(job_index: pd.Index, pos: np.ndarray, parents: list[str]) -> np.ndarray:
    """Rule 1: which jobs the run recorded (a task's job id, or an array child's parent)."""
    by_id: np.ndarray = np.zeros(len(job_index), dtype=bool)
    by_id[pos[pos >= 0]] = True
    if parents:
        found = job_index.get_indexer(parents)
        by_id[found[found >= 0]] = True
    return by_id


def _queue_names(values: pd.Series | Collection[str]) -> Any:
    """Queue ARNs (``arn:aws:batch:…:job-queue/NAME``) and names -> names."""
    series = pd.Series(list(values), dtype="string") if not isinstance(values, pd.Series) else values
    return series.str.rsplit("/", n=1).str[-1]


def _scope(
    run: RunLike,
    jobs: pd.DataFrame,
    by_id: np.ndarray,
    queues: Collection[str] | None,
) -> pd.Series:
    by_dir: np.ndarray = np.zeros(len(jobs), dtype=bool)
    work_dir = run.work_dir
    launch = _utc_or_none(run.launch_time)
    if work_dir and launch is not None:
        prefix = work_dir.rstrip("/") + "/"
        under = jobs[JobCol.WORK_DIR].str.startswith(prefix).fillna(False).to_numpy(bool)
        floor = launch - CLOCK_SKEW
        # The log's launch time has no zone marker (DESIGN §2): read in the wrong zone it
        # can be hours early and let an earlier run's jobs in. Batch's own createdAt of
        # the run's recorded jobs bounds it: none of them predates the launch.
        recorded_created = jobs[JobCol.CREATED_AT][by_id]
        if recorded_created.notna().any():
            floor = max(floor, recorded_created.min() - CLOCK_SKEW)
        after = (jobs[JobCol.CREATED_AT] >= floor).fillna(False)
        by_dir = under & after.to_numpy(bool)
        if queues is None:
            queues = getattr(run, "queues", None)
        if queues:
            wanted = set(_queue_names(queues).dropna())
            # Few distinct queues: name them once each, then look the codes up.
            codes, uniques = pd.factorize(jobs[JobCol.JOB_QUEUE])
            known = _queue_names(pd.Series(uniques, dtype="string")).isin(wanted).to_numpy(bool)
            by_dir &= (codes >= 0) & np.append(known, False)[codes]
    rule = np.where(by_id, "native_id", np.where(by_dir, "workdir", ""))
    return pd.Series(rule, index=jobs.index, dtype="string", name=RecCol.IN_SCOPE_BY)


def in_scope(
    run: RunLike,
    jobs: pd.DataFrame,
    *,
    queues: Collection[str] | None = None,
) -> pd.Series:
    """How each job is proven to belong to ``run``: ``"native_id"``, ``"workdir"`` or ``""``.

    Rule 1: the run recorded the job id (or the job is the parent of a recorded array
    child). Rule 2: the command's work dir is under ``run.work_dir + "/"``, the job was
    created after ``run.launch_time - CLOCK_SKEW``, and it is on one of ``queues``
    (default: ``run.queues`` when the run object has it; no queue check when unknown).
    A job name never counts. ``jobs`` is a ``jobs_frame``; the result shares its index.
    """
    normal, job_index = _as_jobs(jobs)
    recorded, pos = _recorded_ids(_as_tasks(run), job_index)
    by_id = _claimed_by_id(job_index, pos, _array_parents(recorded))
    rule = _scope(run, normal, by_id, queues)
    # _as_jobs drops jobs without an id and repeated ids; map back onto the caller's rows.
    lookup = pd.Series(rule.to_numpy(), index=normal[JobCol.JOB_ID].to_numpy())
    out = jobs[JobCol.JOB_ID].astype("string").map(lookup).astype("string")
    return out.fillna("").rename(RecCol.IN_SCOPE_BY)


# --- reconcile --------------------------------------------------------------------


def _seconds(ts: pd.Series) -> np.ndarray:
    """UTC timestamps -> float epoch seconds (NaN where missing), any resolution."""
    out: np.ndarray = np.asarray((ts - _EPOCH).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan))
    return out


#: Decimal strings of 0..9999 as Python objects: small numbers in reasons are lookups.
_NUMBERS: Final = np.array([str(i) for i in range(10_000)], dtype=object)


def _utc_or_none(value: Any) -> pd.Timestamp | None:
    """A run's timestamp as UTC; a naive one is taken as UTC (RunLike promises UTC)."""
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _text(values: np.ndarray) -> np.ndarray:
    """Non-negative integers -> an object array of their decimal strings."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) and values.max() >= len(_NUMBERS):
        big: np.ndarray = values.astype(str).astype(object)
        return big
    out: np.ndarray = _NUMBERS[values]
    return out


def _duration_text(seconds: np.ndarray) -> np.ndarray:
    """Vectorized ``2h 3m`` / ``1d 4h`` / ``7m`` / ``42s`` (object array)."""
    secs = np.nan_to_num(np.maximum(seconds, 0.0)).astype(np.int64)
    d, rest = np.divmod(secs, 86400)
    h, rest = np.divmod(rest, 3600)
    m, s = np.divmod(rest, 60)
    out: np.ndarray = np.empty(len(secs), dtype=object)
    days, hours = d > 0, (d == 0) & (h > 0)
    mins = (d == 0) & (h == 0) & (m > 0)
    rest_ = ~(days | hours | mins)
    out[days] = _text(d[days]) + "d " + _text(h[days]) + "h"
    out[hours] = _text(h[hours]) + "h " + _text(m[hours]) + "m"
    out[mins] = _text(m[mins]) + "m"
    out[rest_] = _text(s[rest_]) + "s"
    return out


#: "HH:MM UTC" for every minute of a day, so clock times are a lookup, not strftime.
_CLOCK: Final = np.array([f"{i // 60:02d}:{i % 60:02d} UTC" for i in range(1440)], dtype=object)


def _clock(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds -> "HH:MM UTC" (object array; "" where missing)."""
    known = ~np.isnan(seconds)
    minute = (np.nan_to_num(seconds) // 60 % 1440).astype(np.int64)
    out: np.ndarray = np.where(known, _CLOCK[minute], "")
    return out


def _obj(series: pd.Series, fill: str = "?") -> np.ndarray:
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

    def pair_text(self, other: _Codes, idx: np.ndarray, build: Any) -> np.ndarray:
        """``build(mine, theirs)`` per row of ``idx``, evaluated once per distinct status pair.

        Reasons such as "Nextflow COMPLETED, Batch SUCCEEDED" depend only on the two
        statuses: tens of thousands of rows share a handful of texts.
        """
        width = len(other.uniques) + 1
        keys = (self.codes[idx] + 1) * width + (other.codes[idx] + 1)
        pairs, inverse = np.unique(keys, return_inverse=True)
        mine = np.append("?", self.uniques).astype(object)[pairs // width]
        theirs = np.append("?", other.uniques).astype(object)[pairs % width]
        out: np.ndarray = np.asarray(build(mine, theirs), dtype=object)[inverse.reshape(-1)]
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
) -> pd.DataFrame:
    """One row per (task, job) pair with a verdict, a reason, killability and waste.

    ``jobs``: a ``jobs_frame`` or the job dicts DescribeJobs returned. Rows: every task
    of ``run`` (with its job, or none), then every job in the run's scope that no task
    claims (``untracked``). Columns: ``REC_COLUMNS``. The frame's ``attrs`` carry
    ``run_name``, ``run_state``, ``price_per_vcpu_hour`` and ``now`` for ``plan_kills``
    and ``summarize``. See the module docstring for every rule and edge.
    """
    now_ts = _utc_or_none(now) or pd.Timestamp.now(tz="UTC")
    tasks = _as_tasks(run)
    jobs_df, job_index = _as_jobs(jobs)
    # 1. native_id == job_id
    recorded, pos = _recorded_ids(tasks, job_index)
    parents = _array_parents(recorded)
    by_id = _claimed_by_id(job_index, pos, parents)
    scope = _scope(run, jobs_df, by_id, queues)
    # 2./3. work dir, then hash prefix: tasks without a Batch id, jobs in scope by rule 2
    # that no task claimed by id. Latest-created job wins a shared work dir.
    claimed: np.ndarray = np.zeros(len(jobs_df), dtype=bool)
    claimed[pos[pos >= 0]] = True
    free = np.flatnonzero((scope == "workdir").to_numpy(bool) & ~claimed)
    # CACHED tasks never claim a job: their work dir is an earlier run's, and letting one
    # match would hide a job that is running now.
    cached_task = _Codes(tasks[TaskCol.STATUS]).isin({"CACHED"})
    need = np.flatnonzero(recorded.isna().to_numpy(bool) & (pos < 0) & ~cached_task)
    if len(free) and len(need):
        cand = jobs_df.iloc[free][[JobCol.WORK_DIR, JobCol.CREATED_AT]].assign(_pos=free)
        cand = cand.sort_values(JobCol.CREATED_AT, kind="stable", na_position="first")
        by_dir = cand.drop_duplicates(JobCol.WORK_DIR, keep="last")
        wd = tasks[TaskCol.WORKDIR].iloc[need].str.rstrip("/")
        hit = pd.Index(by_dir[JobCol.WORK_DIR]).get_indexer(wd)
        pos[need[hit >= 0]] = by_dir["_pos"].to_numpy()[hit[hit >= 0]]
        need = need[hit < 0]
        # Nextflow writes hashes and work dirs in lowercase hex on both sides.
        hashes = tasks[TaskCol.HASH].iloc[need]
        # Candidates all lie under run.work_dir + "/": what follows is "ab/cdef…".
        keys = cand[JobCol.WORK_DIR].str.slice(len((run.work_dir or "").rstrip("/")) + 1)
        for length in hashes.str.len().dropna().unique():
            length = int(length)
            if length < 4:  # "ab/c" at least: shorter is no evidence
                continue
            sel = (hashes.str.len() == length).fillna(False).to_numpy(bool)
            short = keys.str.slice(0, length).where(keys.str.len() >= length)
            table = pd.DataFrame({"k": short.to_numpy(), "_pos": cand["_pos"].to_numpy()})
            table = table.dropna().drop_duplicates("k", keep="last")
            hit = pd.Index(table["k"]).get_indexer(hashes[sel])
            rows = need[sel]
            pos[rows[hit >= 0]] = table["_pos"].to_numpy()[hit[hit >= 0]]
    # A job claimed by two tasks' hashes (a collision) stays with the first task. Two
    # rows holding the same native_id both keep it (plan_kills dedupes by job id).
    by_work = (pos >= 0) & recorded.isna().to_numpy(bool)
    dup = pd.Series(np.where(by_work, pos, -1)).duplicated(keep="first").to_numpy() & by_work
    pos[dup] = -1

    matched: np.ndarray = np.zeros(len(jobs_df), dtype=bool)
    matched[pos[pos >= 0]] = True
    is_parent: np.ndarray = np.zeros(len(jobs_df), dtype=bool)
    if parents:
        found = job_index.get_indexer(parents)
        is_parent[found[found >= 0]] = True
    untracked_pos = np.flatnonzero((scope != "").to_numpy(bool) & ~matched & ~is_parent)
    untracked_pos = untracked_pos[np.argsort(_seconds(jobs_df[JobCol.CREATED_AT].iloc[untracked_pos]), kind="stable")]

    n_tasks, n_untracked = len(tasks), len(untracked_pos)
    task_rows = np.concatenate([np.arange(n_tasks), np.full(n_untracked, -1)])
    job_rows = np.concatenate([pos, untracked_pos])
    task_part = tasks[list(_TASK_CARRIED)].reindex(task_rows).reset_index(drop=True)
    job_part = jobs_df[list(_JOB_CARRIED)].reindex(job_rows).reset_index(drop=True)
    scope_part = scope.reindex(job_rows).fillna("").reset_index(drop=True)

    frame = pd.DataFrame(
        {
            TaskCol.TASK_ID: task_part[TaskCol.TASK_ID],
            TaskCol.NAME: task_part[TaskCol.NAME],
            TaskCol.PROCESS: task_part[TaskCol.PROCESS],
            TaskCol.HASH: task_part[TaskCol.HASH],
            TaskCol.NATIVE_ID: task_part[TaskCol.NATIVE_ID],
            TaskCol.WORKDIR: task_part[TaskCol.WORKDIR],
            TaskCol.SUBMIT: task_part[TaskCol.SUBMIT],
            TaskCol.COMPLETE: task_part[TaskCol.COMPLETE],
            RecCol.NF_STATUS: task_part[TaskCol.STATUS],
        }
    )
    for col in _JOB_SHOWN:
        frame[col] = job_part[col]

    # --- the facts each verdict rests on (plain numpy bools) ---
    # Statuses are factorized once; every membership test is then a lookup by code
    # (pandas' python-backed strings make each isin/isna a pass over Python objects).
    nf = _Codes(tasks[TaskCol.STATUS], task_rows)
    bs = _Codes(jobs_df[JobCol.STATUS], job_rows)
    is_untracked = task_rows < 0
    has_job = bs.known
    active = bs.isin(JOB_ACTIVE)
    b_terminal = bs.isin(JOB_TERMINAL)
    nf_alive_status = nf.isin(TASK_ALIVE)
    nf_done = nf.isin(_TASK_DONE)
    cached = nf.isin({"CACHED"})
    run_ended = run.state in ("completed", "aborted")
    batch_id = np.concatenate([recorded.notna().to_numpy(bool), np.zeros(n_untracked, dtype=bool)])
    nf_is = {s: nf.isin({s}) for s in ("COMPLETED", "FAILED", "ABORTED")}
    b_is = {s: bs.isin({s}) for s in ("SUCCEEDED", "FAILED")}

    c_untracked = is_untracked
    c_cached = ~c_untracked & cached
    c_orphan = ~c_cached & has_job & active & (nf_done | (nf_alive_status & run_ended))
    c_stale = has_job & b_terminal & nf_alive_status
    c_disagree = has_job & ((nf_is["COMPLETED"] & b_is["FAILED"]) | (nf_is["FAILED"] & b_is["SUCCEEDED"]))
    c_vanished = ~c_untracked & ~c_cached & ~has_job & batch_id
    verdict = np.select(
        [c_untracked, c_cached, c_orphan, c_stale, c_disagree, c_vanished],
        ["untracked", "ok", "orphan", "stale", "disagree", "vanished"],
        default="ok",
    )
    frame[RecCol.VERDICT] = pd.Series(verdict, dtype="string")

    # --- batch retries: tries made or scheduled beyond the first ---
    listed = job_part[LISTED_ATTEMPTS]
    retries = (listed + active.astype(int) - 1).clip(lower=0)
    retries = retries.mask(~has_job, 0)
    frame[RecCol.BATCH_RETRIES] = retries.astype("Int64")

    # --- waste ---
    now_s = (now_ts - _EPOCH).total_seconds()
    run_end = _utc_or_none(run.end_time)
    run_end_s = np.nan if run_end is None else (run_end - _EPOCH).total_seconds()
    complete_s = _seconds(frame[TaskCol.COMPLETE])
    cutoff = np.full(len(frame), np.inf)
    # Rows where Nextflow had stopped caring: the orphans, and the jobs that were
    # orphans until they stopped (killed by us, or finished on their own) — their
    # burnt time stays in the post-mortem after the kill turns them "stale"/"ok".
    ended_early = np.asarray(b_terminal & ((nf_alive_status & run_ended) | nf_is["ABORTED"]), dtype=bool)
    stopped_caring = ((verdict == "orphan") | ended_early) & np.asarray(has_job, dtype=bool)
    done_np = np.asarray(nf_done, dtype=bool)
    caring_done = stopped_caring & done_np
    cutoff[caring_done] = np.where(np.isnan(complete_s[caring_done]), run_end_s, complete_s[caring_done])
    cutoff[stopped_caring & ~done_np] = run_end_s
    cutoff[verdict == "untracked"] = -np.inf
    # An orphan whose cutoff is unknown (no complete time, no run end): all of its run time.
    cutoff[np.isnan(cutoff)] = -np.inf
    listed_n = listed.fillna(0).to_numpy(dtype=np.int64)
    running_start = _seconds(job_part[TRY_STARTED_AT])
    running = bs.isin({"RUNNING"}) & ~np.isnan(running_start)
    # Finished tries, exploded to one row per try, then the try running now. Only rows
    # where a finished try can count: waste verdicts, or jobs with an extra attempt.
    span_rows = np.flatnonzero(
        np.asarray(has_job, dtype=bool) & (np.isin(verdict, _WASTE_VERDICTS) | stopped_caring | (listed_n >= 2))
    )
    exploded = job_part[ATTEMPT_SPANS].iloc[span_rows].explode().dropna()
    tries = np.array(exploded.tolist(), dtype=float).reshape(-1, 3)
    try_row = np.concatenate([exploded.index.to_numpy(dtype=np.int64), np.flatnonzero(running)])
    try_k = np.concatenate([tries[:, 0], listed_n[running]])
    try_start = np.concatenate([tries[:, 1] / 1000.0, running_start[running]])
    try_stop = np.concatenate([tries[:, 2] / 1000.0, np.full(int(running.sum()), now_s)])
    c = cutoff[try_row]
    after = np.clip(try_stop - np.maximum(try_start, c), 0.0, None)
    before = np.clip(np.minimum(try_stop, c) - try_start, 0.0, None)
    burnt = after + np.where(try_k >= 1, before, 0.0)
    waste_s = np.bincount(try_row, weights=burnt, minlength=len(frame))
    vcpus = frame[JobCol.VCPUS].fillna(1.0).to_numpy(dtype=float)
    waste_h = np.where(has_job, waste_s * vcpus / 3600.0, 0.0)
    frame[RecCol.WASTE_VCPU_H] = pd.array(waste_h, dtype="Float64")
    frame[RecCol.WASTE_COST] = pd.array(waste_h * price_per_vcpu_hour, dtype="Float64")

    # --- killable, nf_alive, scope ---
    frame[RecCol.KILLABLE] = (verdict == "orphan") | ((verdict == "untracked") & active & run_ended)
    frame[RecCol.NF_ALIVE] = (run.state == "alive") & nf_alive_status
    frame[RecCol.IN_SCOPE_BY] = scope_part.astype("string")

    frame[RecCol.REASON] = _reasons(run, frame, verdict, now_ts, nf, bs, batch_id, run_ended)
    frame = frame[list(REC_COLUMNS)]
    frame.attrs.update(
        run_name=run.name,
        run_state=run.state,
        price_per_vcpu_hour=price_per_vcpu_hour,
        now=now_ts.isoformat(),
    )
    return frame


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
    """One readable line per row, built per verdict on numpy object arrays.

    Each template is evaluated only on the rows of its verdict; object-array ``+`` runs
    the string concatenation in numpy's loop, far cheaper than pandas string columns.
    """
    reason: np.ndarray = np.full(len(frame), "", dtype=object)

    def put(mask: np.ndarray, build: Any) -> None:
        if mask.any():
            idx = np.flatnonzero(mask)
            reason[idx] = build(idx)

    nf, bs = nf_codes.text(), bs_codes.text()
    nf_done, active, has_job = nf_codes.isin(_TASK_DONE), bs_codes.isin(JOB_ACTIVE), bs_codes.known
    def col(name: str, idx: np.ndarray, fill: str = "?") -> np.ndarray:
        return _obj(frame[name].iloc[idx], fill)  # only the rows a template needs

    def short(idx: np.ndarray) -> np.ndarray:
        # A vanished row has no job: the id it holds is the task's native_id.
        ids = frame[JobCol.JOB_ID].iloc[idx].fillna(frame[TaskCol.NATIVE_ID].iloc[idx])
        text: np.ndarray = _obj(ids).astype(str)  # numpy unicode: astype("U8") cuts to 8 characters
        head: np.ndarray = text.astype("U8").astype(object)
        out: np.ndarray = np.where(np.char.str_len(text) > 8, head + "…", head)
        return out

    # How long the job has been in its active state: running since started_at, else created.
    now_s = (now - _EPOCH).total_seconds()

    def for_text(idx: np.ndarray) -> np.ndarray:
        started = _seconds(frame[JobCol.STARTED_AT].iloc[idx])
        since = np.where(np.isnan(started), _seconds(frame[JobCol.CREATED_AT].iloc[idx]), started)
        out: np.ndarray = " for " + _duration_text(now_s - since)
        return out

    orphan = verdict == "orphan"

    def orphan_done(idx: np.ndarray) -> np.ndarray:
        clock = _clock(_seconds(frame[TaskCol.COMPLETE].iloc[idx]))
        at = np.where(clock == "", "", " at " + clock)
        out: np.ndarray = "Nextflow marked the task " + nf[idx] + at + " but Batch still " + bs[idx] + for_text(idx)
        return out

    put(orphan & nf_done, orphan_done)
    if run_ended:
        end = _utc_or_none(run.end_time)
        end_text = f" at {end:%H:%M} UTC" if end is not None else ""
        cause = getattr(run, "abort_cause", None)
        cause_text = f" ({cause})" if cause and run.state == "aborted" else ""
        verb = "aborted" if run.state == "aborted" else "completed"
        head = f"Nextflow {verb}{end_text}{cause_text} but Batch still "
        put(
            orphan & ~nf_done,
            lambda idx: head + bs[idx] + for_text(idx) + ", task still " + nf[idx] + " in its records",
        )
    def untracked(idx: np.ndarray) -> np.ndarray:
        # Untracked jobs are in scope by rule 2: their work dir lies under run.work_dir + "/".
        tail = _obj(frame[JobCol.WORK_DIR].iloc[idx].str.slice(len((run.work_dir or "").rstrip("/")) + 1))
        text = "no Nextflow record of job " + short(idx) + " (work dir …/" + tail + " in the run's scope); Batch " + bs[idx]
        live = "" if run_ended else " — the run is alive: it may have just been submitted (kill only with force)"
        out: np.ndarray = np.where(active[idx], text + for_text(idx) + live, text)
        return out

    put(verdict == "untracked", untracked)
    put(
        verdict == "stale",
        lambda idx: nf_codes.pair_text(bs_codes, idx, lambda n, b: "Batch says " + b + ", Nextflow still thinks " + n),
    )
    def disagree(idx: np.ndarray) -> np.ndarray:
        why = col(JobCol.STATUS_REASON, idx, "")
        out: np.ndarray = "Nextflow says " + nf[idx] + ", Batch says " + bs[idx] + np.where(why == "", "", " (" + why + ")")
        return out

    put(verdict == "disagree", disagree)
    put(
        verdict == "vanished",
        lambda idx: "job id " + short(idx) + " not found in Batch (aged out, wrong region/account, or nextflow-io/nextflow#7301)",
    )
    # ok, by case
    ok = verdict == "ok"
    cached = nf_codes.isin({"CACHED"})
    put(ok & cached, lambda idx: "cached by Nextflow: no Batch job needed")
    put(ok & ~cached & has_job, lambda idx: nf_codes.pair_text(bs_codes, idx, lambda n, b: "Nextflow " + n + ", Batch " + b))
    no_job = ok & ~cached & ~has_job
    alive = nf_codes.isin(TASK_ALIVE)
    pid = frame[TaskCol.NATIVE_ID].notna().to_numpy(bool) & ~batch_id
    put(
        no_job & pid,
        lambda idx: "Nextflow " + nf[idx] + "; native_id " + col(TaskCol.NATIVE_ID, idx) + " is a local process, not a Batch job",
    )
    rest = no_job & ~pid
    if not run_ended:
        put(rest & alive, lambda idx: "Nextflow " + nf[idx] + ", no Batch job id yet (not yet submitted)")
    else:
        put(rest & alive, lambda idx: "run ended with the task " + nf[idx] + " and no Batch job recorded or found in scope")
    put(rest & ~alive, lambda idx: "Nextflow " + nf[idx] + ", no Batch job recorded")
    retries = frame[RecCol.BATCH_RETRIES].fillna(0).to_numpy(dtype=np.int64)
    put(retries > 0, lambda idx: reason[idx] + "; Batch retried " + _text(retries[idx]) + "×")
    return pd.Series(reason, index=frame.index, dtype="string")


# --- kills and summaries -----------------------------------------------------------


def plan_kills(
    frame: pd.DataFrame,
    *,
    force: bool = False,
    run_name: str | None = None,
    verdicts: Collection[str] | None = None,
    job_ids: Collection[str] | None = None,
) -> list[KillJob]:
    """The kills a reconcile frame justifies (DESIGN §6), one ``KillJob`` per job.

    Only ``killable`` rows; with ``force`` also in-scope active rows Nextflow still tracks
    as alive (``nf_alive``). Never a job whose ``scope_rule`` is ``""`` (not proven to
    belong to the run) and never a job Batch has already finished. ``verdicts`` and
    ``job_ids`` narrow the plan (a UI button for one row). The reason is
    ``batchkit: <verdict> of run '<name>'`` (forced rows: ``forced kill``), cut to
    Batch's 1024 characters; ``run_name`` defaults to the frame's ``attrs``.
    """
    if frame.empty:
        return []
    name = run_name if run_name is not None else frame.attrs.get("run_name")
    name = name or "unnamed"
    # Only the two proofs of DESIGN §4 count; anything else (e.g. a hand-edited frame) does not.
    scoped = frame[RecCol.IN_SCOPE_BY].isin(_SCOPE_RULES).to_numpy(dtype=bool, na_value=False)
    has_id = frame[JobCol.JOB_ID].notna().to_numpy(bool)
    active = frame[RecCol.BATCH_STATUS].isin(JOB_ACTIVE).to_numpy(bool)
    killable = frame[RecCol.KILLABLE].fillna(False).to_numpy(bool)
    # force adds every other in-scope active job: the tasks Nextflow still tracks as
    # alive, and the unclaimed jobs of a run that is still alive.
    forced = force & ~killable
    pick = scoped & has_id & active & (killable | forced)
    if verdicts is not None:
        pick &= frame[RecCol.VERDICT].isin(set(verdicts)).to_numpy(bool)
    if job_ids is not None:
        pick &= frame[JobCol.JOB_ID].isin(set(job_ids)).to_numpy(bool)
    chosen = frame[pick]
    is_forced = forced[pick]
    keep = ~chosen[JobCol.JOB_ID].duplicated(keep="first").to_numpy(bool)
    chosen, is_forced = chosen[keep], is_forced[keep]
    plan = []
    for job_id, verdict, task, hours, f in zip(
        chosen[JobCol.JOB_ID],
        chosen[RecCol.VERDICT],
        chosen[TaskCol.NAME],
        chosen[RecCol.WASTE_VCPU_H],
        is_forced,
        strict=True,
    ):
        label = "forced kill" if f else str(verdict)
        plan.append(
            KillJob(
                job_id=str(job_id),
                verdict=str(verdict),
                reason=f"batchkit: {label} of run '{name}'"[:REASON_LIMIT],
                task_name=None if pd.isna(task) else str(task),
                vcpu_hours=0.0 if pd.isna(hours) else float(hours),
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
