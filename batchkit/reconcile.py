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
    ``CLOCK_SKEW``, and — when the run's queues are known — it sits on one of them.
    Without a launch time or a work dir rule 2 cannot prove anything. A job the
    describe answer gives no queue for fails the queue check (conservative).
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
     recently created one is matched and the other is reported ``untracked``.
  A ``native_id`` made only of digits is a PID (local/grid executors in a mixed
  pipeline), not a Batch job id.

Verdicts (first rule that applies wins):
  * ``untracked``: a job in scope that no task claims; killable only while active.
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

Attempts and retries (``jobs_frame``): Batch lists an attempt in ``attempts[]`` once
it has stopped; a try running now is not listed. So
``attempts = len(attempts[]) + (1 if status is STARTING/RUNNING)`` and
``batch_retries = max(len(attempts[]) + (1 if status is active) - 1, 0)``: a job back
in RUNNABLE after a spot reclaim already counts its retry, so the count never flickers.
ListJobs summaries carry no ``attempts[]``: attempts and batch_retries stay <NA>.

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

#: Columns of a reconcile frame, in order (RecCol's docstring lists the carried-over ones).
REC_COLUMNS: Final[tuple[str, ...]] = (
    TaskCol.TASK_ID,
    TaskCol.NAME,
    TaskCol.PROCESS,
    TaskCol.HASH,
    TaskCol.NATIVE_ID,
    TaskCol.WORKDIR,
    TaskCol.SUBMIT,
    TaskCol.COMPLETE,
    RecCol.NF_STATUS,
    JobCol.JOB_ID,
    JobCol.JOB_NAME,
    JobCol.JOB_QUEUE,
    RecCol.BATCH_STATUS,
    JobCol.STATUS_REASON,
    JobCol.CREATED_AT,
    JobCol.STARTED_AT,
    JobCol.STOPPED_AT,
    JobCol.VCPUS,
    JobCol.ATTEMPTS,
    JobCol.WORK_DIR,
    RecCol.BATCH_RETRIES,
    RecCol.VERDICT,
    RecCol.REASON,
    RecCol.KILLABLE,
    RecCol.NF_ALIVE,
    RecCol.IN_SCOPE_BY,
    RecCol.WASTE_VCPU_H,
    RecCol.WASTE_COST,
)

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
_RUNNING_NOW: Final = frozenset({"STARTING", "RUNNING"})
_TASK_DONE: Final = frozenset({"COMPLETED", "FAILED", "ABORTED"})
_WASTE_VERDICTS: Final = ("orphan", "untracked")

# Nextflow's container command (AwsBatchTaskHandler.classicSubmitCli / s5Cmd /
# fusionSubmitCli): `... aws s3 cp --only-show-errors s3://b/work/ab/cd…/.command.run - | bash`,
# `s5cmd cat s3://b/work/ab/cd…/.command.run | bash`, `fusion bash /fusion/s3/b/work/ab/cd…/.command.run`.
# The trap before it copies `.command.log` and is skipped because `|`/`;` end a path.
_WORKDIR_RE: Final = r"((?:(?:s3|gs|az)://|/fusion/(?:s3|gs|az)/)[^\s'\"|;&<>]+?)/\.command\.run(?![\w.])"
_FUSION_RE: Final = re.compile(r"^/fusion/(s3|gs|az)/")
_PID_RE: Final = r"\d+"
_ARRAY_CHILD_RE: Final = r"^([^:]+):\d+$"


# --- jobs -------------------------------------------------------------------------


def _ms(value: Any) -> Any:
    """Epoch milliseconds as Batch returns them (int); anything else is missing."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _resource(container: Mapping[str, Any], kind: str) -> float | None:
    for req in container.get("resourceRequirements") or ():
        if req.get("type") == kind:
            try:
                return float(req.get("value"))
            except (TypeError, ValueError):
                return None
    return None


def _container_of(job: Mapping[str, Any]) -> Mapping[str, Any]:
    container = job.get("container")
    if isinstance(container, Mapping):
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
    cols: dict[str, list[Any]] = {c: [] for c in (*JOB_COLUMNS, *JOB_EXTRA_COLUMNS)}
    for job in jobs:
        container = _container_of(job)
        status = job.get("status")
        listed = job.get("attempts")
        started = _ms(job.get("startedAt"))
        stopped = _ms(job.get("stoppedAt"))
        spans: list[tuple[int, float, float]] = []
        last_stop: float | None = None
        if isinstance(listed, list):
            for i, attempt in enumerate(listed):
                a_start, a_stop = _ms(attempt.get("startedAt")), _ms(attempt.get("stoppedAt"))
                if a_stop is not None:
                    last_stop = a_stop if last_stop is None else max(last_stop, a_stop)
                if a_start is not None and a_stop is not None:
                    spans.append((i, a_start, a_stop))
        if not spans and status in JOB_TERMINAL and started is not None and stopped is not None:
            # A summary, or a describe answer without attempts[]: the one try we can see.
            spans.append((0, started, stopped))
        try_start = None
        if status == "RUNNING" and started is not None:
            # Whether startedAt moves to the latest try is not documented: the running
            # try cannot have started before the last listed attempt stopped.
            try_start = started if last_stop is None else max(started, last_stop)
        n_listed = len(listed) if isinstance(listed, list) else None
        command = container.get("command")
        vcpus = _resource(container, "VCPU")
        if vcpus is None and isinstance(container.get("vcpus"), int | float):
            vcpus = float(container["vcpus"])
        memory = _resource(container, "MEMORY")
        if memory is None and isinstance(container.get("memory"), int | float):
            memory = float(container["memory"])
        tags = job.get("tags") or {}
        cols[JobCol.JOB_ID].append(job.get("jobId"))
        cols[JobCol.JOB_NAME].append(job.get("jobName"))
        cols[JobCol.JOB_QUEUE].append(job.get("jobQueue"))
        cols[JobCol.STATUS].append(status)
        cols[JobCol.STATUS_REASON].append(job.get("statusReason"))
        cols[JobCol.CREATED_AT].append(_ms(job.get("createdAt")))
        cols[JobCol.STARTED_AT].append(started)
        cols[JobCol.STOPPED_AT].append(stopped)
        cols[JobCol.VCPUS].append(vcpus)
        cols[JobCol.MEMORY_MIB].append(memory)
        cols[JobCol.ATTEMPTS].append(
            None if n_listed is None else n_listed + (status in _RUNNING_NOW)
        )
        cols[JobCol.EXIT_CODE].append(container.get("exitCode"))
        cols[JobCol.COMMAND].append(" ".join(map(str, command)) if isinstance(command, list) else None)
        cols[JobCol.WORK_DIR].append(None)
        cols[JobCol.SUBMISSION_ID].append(tags.get(SUBMISSION_TAG) if isinstance(tags, Mapping) else None)
        cols[LISTED_ATTEMPTS].append(n_listed)
        cols[ATTEMPT_SPANS].append(tuple(spans))
        cols[TRY_STARTED_AT].append(try_start)
    frame = pd.DataFrame(cols)
    for col in (JobCol.CREATED_AT, JobCol.STARTED_AT, JobCol.STOPPED_AT, TRY_STARTED_AT):
        frame[col] = pd.to_datetime(frame[col], unit="ms", utc=True).astype(_UTC)
    for col, dtype in _JOB_DTYPES.items():
        if col not in (JobCol.CREATED_AT, JobCol.STARTED_AT, JobCol.STOPPED_AT, TRY_STARTED_AT):
            frame[col] = frame[col].astype(dtype)
    frame[JobCol.WORK_DIR] = extract_workdir(frame[JobCol.COMMAND])
    return frame


def extract_workdir(commands: pd.Series) -> pd.Series:
    """The task work dir (the folder holding ``.command.run``) in each job command.

    Understands Nextflow's three launchers: ``aws s3 cp <wd>/.command.run - | bash``,
    ``s5cmd cat <wd>/.command.run``, and Fusion's ``bash /fusion/s3/<bucket>/…/.command.run``.
    A Fusion mount path is normalised back to the object-store URL
    (``/fusion/s3/<bucket>/…`` -> ``s3://<bucket>/…``, likewise gs/az), so it compares
    with ``run.work_dir``. <NA> where no launcher is found.
    """
    found = commands.astype("string").str.extract(_WORKDIR_RE, expand=False).astype("string")
    return found.str.replace(_FUSION_RE, r"\1://", regex=True)


def _as_jobs(jobs: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    frame = jobs.copy() if isinstance(jobs, pd.DataFrame) else jobs_frame(jobs)
    for col, dtype in _JOB_DTYPES.items():
        if col not in frame.columns:
            frame[col] = pd.Series([() if col == ATTEMPT_SPANS else None] * len(frame), index=frame.index)
        if str(frame[col].dtype) != dtype:
            frame[col] = (
                pd.to_datetime(frame[col], utc=True).astype(dtype)
                if dtype == _UTC
                else frame[col].astype(dtype)
            )
    if frame[JobCol.WORK_DIR].isna().all() and frame[JobCol.COMMAND].notna().any():
        frame[JobCol.WORK_DIR] = extract_workdir(frame[JobCol.COMMAND])
    # Describe pages can repeat a job; the last answer is the freshest.
    frame = frame[frame[JobCol.JOB_ID].notna()]
    return frame.drop_duplicates(JobCol.JOB_ID, keep="last").reset_index(drop=True)


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


def _batch_ids(native_ids: pd.Series) -> pd.Series:
    """native_id where it is a Batch job id; PIDs (digits only) and blanks -> <NA>."""
    pid = native_ids.str.fullmatch(_PID_RE).fillna(False).astype(bool)
    return native_ids.mask(pid | native_ids.eq("").fillna(False).astype(bool))


def _queue_names(values: pd.Series | Collection[str]) -> Any:
    """Queue ARNs (``arn:aws:batch:…:job-queue/NAME``) and names -> names."""
    series = pd.Series(list(values), dtype="string") if not isinstance(values, pd.Series) else values
    return series.str.rsplit("/", n=1).str[-1]


def _scope(
    run: RunLike,
    jobs: pd.DataFrame,
    recorded: pd.Series,
    queues: Collection[str] | None,
) -> pd.Series:
    ids = recorded.dropna()
    parents = ids.str.extract(_ARRAY_CHILD_RE, expand=False).dropna()
    by_id = jobs[JobCol.JOB_ID].isin(pd.concat([ids, parents])).to_numpy(bool)

    by_dir: np.ndarray = np.zeros(len(jobs), dtype=bool)
    work_dir = run.work_dir
    launch = run.launch_time
    if work_dir and launch is not None and not pd.isna(launch):
        prefix = work_dir.rstrip("/") + "/"
        under = jobs[JobCol.WORK_DIR].str.startswith(prefix).fillna(False).to_numpy(bool)
        after = (jobs[JobCol.CREATED_AT] >= pd.Timestamp(launch) - CLOCK_SKEW).fillna(False)
        by_dir = under & after.to_numpy(bool)
        if queues is None:
            queues = getattr(run, "queues", None)
        if queues:
            wanted = set(_queue_names(queues).dropna())
            on_queue = _queue_names(jobs[JobCol.JOB_QUEUE]).isin(wanted).fillna(False)
            by_dir &= on_queue.to_numpy(bool)
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
    normal = _as_jobs(jobs)
    recorded = _batch_ids(_as_tasks(run)[TaskCol.NATIVE_ID])
    rule = _scope(run, normal, recorded, queues)
    # _as_jobs drops jobs without an id and repeated ids; map back onto the caller's rows.
    lookup = pd.Series(rule.to_numpy(), index=normal[JobCol.JOB_ID].to_numpy())
    out = jobs[JobCol.JOB_ID].astype("string").map(lookup).astype("string")
    return out.fillna("").rename(RecCol.IN_SCOPE_BY)


# --- reconcile --------------------------------------------------------------------


def _seconds(ts: pd.Series) -> np.ndarray:
    """UTC timestamps -> float epoch seconds (NaN where missing), any resolution."""
    out: np.ndarray = np.asarray((ts - _EPOCH).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan))
    return out


def _duration_text(seconds: np.ndarray) -> pd.Series:
    """Vectorized ``2h 3m`` / ``1d 4h`` / ``7m`` / ``42s``."""
    secs = np.nan_to_num(np.maximum(seconds, 0.0)).astype(np.int64)
    d, rest = np.divmod(secs, 86400)
    h, rest = np.divmod(rest, 3600)
    m, s = np.divmod(rest, 60)
    ds, hs, ms, ss = (pd.Series(x).astype(str) for x in (d, h, m, s))
    text = np.select(
        [d > 0, h > 0, m > 0],
        [ds + "d " + hs + "h", hs + "h " + ms + "m", ms + "m"],
        default=ss + "s",
    )
    return pd.Series(text, dtype="string")


def _clock(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%H:%M UTC").astype("string")


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
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now_ts.tzinfo is None:
        now_ts = now_ts.tz_localize("UTC")
    tasks = _as_tasks(run)
    jobs_df = _as_jobs(jobs)
    recorded = _batch_ids(tasks[TaskCol.NATIVE_ID])
    scope = _scope(run, jobs_df, recorded, queues)

    # 1. native_id == job_id
    job_index = pd.Index(jobs_df[JobCol.JOB_ID])
    pos = job_index.get_indexer(recorded)
    # 2./3. work dir, then hash prefix: tasks without a Batch id, jobs in scope by rule 2
    # that no task claimed by id. Latest-created job wins a shared work dir.
    claimed: np.ndarray = np.zeros(len(jobs_df), dtype=bool)
    claimed[pos[pos >= 0]] = True
    free = np.flatnonzero((scope == "workdir").to_numpy(bool) & ~claimed)
    need = np.flatnonzero(recorded.isna().to_numpy(bool) & (pos < 0))
    if len(free) and len(need):
        cand = jobs_df.iloc[free][[JobCol.WORK_DIR, JobCol.CREATED_AT]].assign(_pos=free)
        cand = cand.sort_values(JobCol.CREATED_AT, kind="stable", na_position="first")
        by_dir = cand.drop_duplicates(JobCol.WORK_DIR, keep="last")
        wd = tasks[TaskCol.WORKDIR].iloc[need].str.rstrip("/")
        hit = pd.Index(by_dir[JobCol.WORK_DIR]).get_indexer(wd)
        pos[need[hit >= 0]] = by_dir["_pos"].to_numpy()[hit[hit >= 0]]
        need = need[hit < 0]
        hashes = tasks[TaskCol.HASH].iloc[need].str.lower()
        keys = cand[JobCol.WORK_DIR].str.lower().str.extract(r"([^/]+/[^/]+)$", expand=False)
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
    parents = recorded.dropna().str.extract(_ARRAY_CHILD_RE, expand=False).dropna()
    is_parent = jobs_df[JobCol.JOB_ID].isin(parents).to_numpy(bool)
    untracked_pos = np.flatnonzero((scope != "").to_numpy(bool) & ~matched & ~is_parent)
    untracked_pos = untracked_pos[np.argsort(_seconds(jobs_df[JobCol.CREATED_AT].iloc[untracked_pos]), kind="stable")]

    n_tasks, n_untracked = len(tasks), len(untracked_pos)
    task_rows = np.concatenate([np.arange(n_tasks), np.full(n_untracked, -1)])
    job_rows = np.concatenate([pos, untracked_pos])
    task_part = tasks.reindex(task_rows).reset_index(drop=True)
    job_part = jobs_df.reindex(job_rows).reset_index(drop=True)
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
    for col in (
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
    ):
        frame[col] = job_part[col]

    # --- the facts each verdict rests on (plain numpy bools) ---
    nf = frame[RecCol.NF_STATUS]
    bs = frame[RecCol.BATCH_STATUS]
    is_untracked = task_rows < 0
    has_job = bs.notna().to_numpy(bool)
    active = bs.isin(JOB_ACTIVE).to_numpy(bool)
    b_terminal = bs.isin(JOB_TERMINAL).to_numpy(bool)
    nf_alive_status = nf.isin(TASK_ALIVE).to_numpy(bool)
    nf_done = nf.isin(_TASK_DONE).to_numpy(bool)
    cached = nf.isin({"CACHED"}).to_numpy(bool)
    run_ended = run.state in ("completed", "aborted")
    batch_id = np.concatenate([recorded.notna().to_numpy(bool), np.zeros(n_untracked, dtype=bool)])
    nf_is = {s: nf.isin({s}).to_numpy(bool) for s in ("COMPLETED", "FAILED", "ABORTED")}
    b_is = {s: bs.isin({s}).to_numpy(bool) for s in ("SUCCEEDED", "FAILED")}

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
    retries = (listed + pd.Series(active.astype(int), dtype="Int64") - 1).clip(lower=0)
    retries = retries.mask(~pd.Series(has_job), 0)
    frame[RecCol.BATCH_RETRIES] = retries.astype("Int64")

    # --- waste ---
    now_s = (now_ts - _EPOCH).total_seconds()
    end_s = run.end_time
    run_end_s = (
        (pd.Timestamp(end_s) - _EPOCH).total_seconds() if end_s is not None and not pd.isna(end_s) else np.nan
    )
    complete_s = _seconds(frame[TaskCol.COMPLETE])
    cutoff = np.full(len(frame), np.inf)
    orphan_done = (verdict == "orphan") & nf_done
    cutoff[orphan_done] = np.where(np.isnan(complete_s[orphan_done]), run_end_s, complete_s[orphan_done])
    orphan_run = (verdict == "orphan") & ~nf_done
    cutoff[orphan_run] = run_end_s
    cutoff[verdict == "untracked"] = -np.inf
    # An orphan whose cutoff is unknown (no complete time, no run end): all of its run time.
    cutoff[np.isnan(cutoff)] = -np.inf
    spans = job_part[ATTEMPT_SPANS]
    has_spans = spans.notna().to_numpy(bool) & (spans.str.len().fillna(0).to_numpy() > 0)
    running_start = _seconds(job_part[TRY_STARTED_AT])
    running = bs.isin({"RUNNING"}).to_numpy(bool) & ~np.isnan(running_start)
    listed_n = listed.fillna(0).to_numpy(dtype=np.int64)
    # Finished tries, exploded (one row per try), then the try running now.
    span_rows = np.flatnonzero(has_spans)
    exploded = spans.iloc[span_rows].explode()
    tries = pd.DataFrame(exploded.tolist(), columns=["k", "start", "stop"]) if len(exploded) else pd.DataFrame(columns=["k", "start", "stop"])
    try_row = np.concatenate([exploded.index.to_numpy(dtype=np.int64), np.flatnonzero(running)])
    try_k = np.concatenate([tries["k"].to_numpy(dtype=np.int64), listed_n[running]])
    try_start = np.concatenate([tries["start"].to_numpy(dtype=float) / 1000.0, running_start[running]])
    try_stop = np.concatenate([tries["stop"].to_numpy(dtype=float) / 1000.0, np.full(running.sum(), now_s)])
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
    frame[RecCol.KILLABLE] = (verdict == "orphan") | ((verdict == "untracked") & active)
    frame[RecCol.NF_ALIVE] = (run.state == "alive") & nf_alive_status
    frame[RecCol.IN_SCOPE_BY] = scope_part.astype("string")

    frame[RecCol.REASON] = _reasons(run, frame, verdict, now_ts, nf_done, active, has_job, batch_id, run_ended)
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
    nf_done: np.ndarray,
    active: np.ndarray,
    has_job: np.ndarray,
    batch_id: np.ndarray,
    run_ended: bool,
) -> pd.Series:
    """One readable line per row, built per verdict with vectorized string ops."""
    reason = pd.Series("", index=frame.index, dtype="string")
    nf = frame[RecCol.NF_STATUS].fillna("?")
    bs = frame[RecCol.BATCH_STATUS].fillna("?")
    # A vanished row has no job: the id it holds is the task's native_id.
    job = frame[JobCol.JOB_ID].fillna(frame[TaskCol.NATIVE_ID]).fillna("?")
    short = job.str.slice(0, 8) + np.where(job.str.len() > 8, "…", "")
    # How long the job has been in its active state: running since started_at, else since created.
    since = frame[JobCol.STARTED_AT].where(frame[JobCol.STARTED_AT].notna(), frame[JobCol.CREATED_AT])
    for_text = " for " + _duration_text((now - since).dt.total_seconds().to_numpy(dtype=float, na_value=0.0))

    def put(mask: np.ndarray, text: Any) -> None:
        if mask.any():
            reason[mask] = (text[mask] if isinstance(text, pd.Series) else text)

    # orphan
    done_at = _clock(frame[TaskCol.COMPLETE])
    at_done = (" at " + done_at).fillna("")
    put((verdict == "orphan") & nf_done, "Nextflow marked the task " + nf + at_done + " but Batch still " + bs + for_text)
    if run_ended:
        end = run.end_time
        end_text = f" at {pd.Timestamp(end):%H:%M} UTC" if end is not None and not pd.isna(end) else ""
        cause = getattr(run, "abort_cause", None)
        cause_text = f" ({cause})" if cause and run.state == "aborted" else ""
        verb = "aborted" if run.state == "aborted" else "completed"
        put(
            (verdict == "orphan") & ~nf_done,
            f"Nextflow {verb}{end_text}{cause_text} but Batch still " + bs + for_text + ", task still " + nf + " in its records",
        )
    # untracked
    tail = frame[JobCol.WORK_DIR].str.extract(r"([^/]+/[^/]+)$", expand=False).fillna("?")
    untracked_text = "no Nextflow record of job " + short + " (work dir …/" + tail + " in the run's scope); Batch " + bs
    put((verdict == "untracked") & active, untracked_text + for_text)
    put((verdict == "untracked") & ~active, untracked_text)
    put(verdict == "stale", "Batch says " + bs + ", Nextflow still thinks " + nf)
    reason_text = (" (" + frame[JobCol.STATUS_REASON] + ")").fillna("")
    put(verdict == "disagree", "Nextflow says " + nf + ", Batch says " + bs + reason_text)
    put(
        verdict == "vanished",
        "job id " + short + " not found in Batch (aged out, wrong region/account, or nextflow-io/nextflow#7301)",
    )
    # ok, by case
    ok = verdict == "ok"
    cached = frame[RecCol.NF_STATUS].isin({"CACHED"}).to_numpy(bool)
    put(ok & cached, pd.Series("cached by Nextflow: no Batch job needed", index=frame.index, dtype="string"))
    put(ok & ~cached & has_job, "Nextflow " + nf + ", Batch " + bs)
    no_job = ok & ~cached & ~has_job
    alive = frame[RecCol.NF_STATUS].isin(TASK_ALIVE).to_numpy(bool)
    pid = frame[TaskCol.NATIVE_ID].notna().to_numpy(bool) & ~batch_id
    put(no_job & pid, "Nextflow " + nf + "; native_id " + frame[TaskCol.NATIVE_ID].fillna("") + " is a local process, not a Batch job")
    rest = no_job & ~pid
    if not run_ended:
        put(rest & alive, "Nextflow " + nf + ", no Batch job id yet (not yet submitted)")
    else:
        put(rest & alive, "run ended with the task " + nf + " and no Batch job recorded or found in scope")
    put(rest & ~alive, "Nextflow " + nf + ", no Batch job recorded")
    retries = frame[RecCol.BATCH_RETRIES].fillna(0).to_numpy(dtype=np.int64)
    extra = pd.Series(np.where(retries > 0, "; Batch retried " + pd.Series(retries).astype(str) + "×", ""), dtype="string")
    return (reason + extra.to_numpy()).astype("string")


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
    scoped = frame[RecCol.IN_SCOPE_BY].fillna("").ne("").to_numpy(bool)
    has_id = frame[JobCol.JOB_ID].notna().to_numpy(bool)
    active = frame[RecCol.BATCH_STATUS].isin(JOB_ACTIVE).to_numpy(bool)
    killable = frame[RecCol.KILLABLE].fillna(False).to_numpy(bool)
    forced = force & frame[RecCol.NF_ALIVE].fillna(False).to_numpy(bool) & ~killable
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
