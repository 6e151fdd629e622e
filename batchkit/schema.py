"""The vocabularies and frame column names of batchkit, defined once.

Every module that builds or reads a frame uses these names; nothing else spells a
column name as a string literal. Pure: no I/O, no pandas import.

Conventions for frames built with these columns:
- timestamps are tz-aware pandas ``datetime64[ns, UTC]`` (readers convert local
  times to UTC after giving them their explicit zone);
- durations (``realtime``) are ``timedelta64[ns]``;
- integers that may be missing are the nullable ``Int64``; text is ``string``
  (pandas' nullable string dtype), missing as ``<NA>``;
- memory is in bytes (``Int64``); cpus/vCPUs are ``Float64``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, get_args

# --- state vocabularies ----------------------------------------------------------

#: Nextflow task states as the trace and weblog write them (docs/ARCHITECTURE.md §3).
TaskStatus = Literal["SUBMITTED", "RUNNING", "COMPLETED", "FAILED", "ABORTED", "CACHED"]
TASK_STATUSES: Final[tuple[str, ...]] = get_args(TaskStatus)
#: Task states in which Nextflow still believes the task is alive.
TASK_ALIVE: Final[frozenset[str]] = frozenset({"SUBMITTED", "RUNNING"})
TASK_TERMINAL: Final[frozenset[str]] = frozenset({"COMPLETED", "FAILED", "ABORTED", "CACHED"})

#: AWS Batch job states (docs/ARCHITECTURE.md §4; AWS Batch user guide, "Job states").
JobStatus = Literal["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
JOB_STATUSES: Final[tuple[str, ...]] = get_args(JobStatus)
JOB_ACTIVE: Final[frozenset[str]] = frozenset(
    {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"}
)
JOB_TERMINAL: Final[frozenset[str]] = frozenset({"SUCCEEDED", "FAILED"})
#: CancelJob only acts on these; on STARTING/RUNNING it quietly does nothing (CancelJob API
#: reference; docs/ARCHITECTURE.md §4).
JOB_CANCELLABLE: Final[frozenset[str]] = frozenset({"SUBMITTED", "PENDING", "RUNNABLE"})

#: What Nextflow believes about the run as a whole.
RunState = Literal["alive", "completed", "aborted"]

#: One verdict per (task, job) pair (docs/ARCHITECTURE.md §6).
Verdict = Literal["ok", "orphan", "untracked", "stale", "vanished", "disagree"]
VERDICTS: Final[tuple[str, ...]] = get_args(Verdict)
MISMATCH_VERDICTS: Final[frozenset[str]] = frozenset(VERDICTS) - {"ok"}

#: Tag key every batchkit submission carries (unique per request): SubmitJob has no
#: idempotency token (SubmitJob API reference; docs/ARCHITECTURE.md §4), so we look for
#: this tag before re-submitting.
SUBMISSION_TAG: Final = "batchkit:submission-id"


# --- the task schema (what Nextflow believes) --------------------------------------


class TaskCol:
    """Column names of a task frame (trace, log, weblog readers and NextflowRun.tasks)."""

    TASK_ID: Final = "task_id"  # Int64
    HASH: Final = "hash"  # string, short form "ab/cdef12"
    NATIVE_ID: Final = "native_id"  # string: Batch job id (array child "<id>:<i>"), or a PID
    NAME: Final = "name"  # string: "PROCESS (tag)"
    PROCESS: Final = "process"  # string
    TAG: Final = "tag"  # string
    STATUS: Final = "status"  # string, one of TASK_STATUSES
    EXIT: Final = "exit"  # Int64
    ATTEMPT: Final = "attempt"  # Int64
    SUBMIT: Final = "submit"  # datetime64[ns, UTC]
    START: Final = "start"  # datetime64[ns, UTC]
    COMPLETE: Final = "complete"  # datetime64[ns, UTC]
    REALTIME: Final = "realtime"  # timedelta64[ns]
    CPUS: Final = "cpus"  # Float64
    MEMORY: Final = "memory"  # Int64 bytes
    WORKDIR: Final = "workdir"  # string: full work dir (s3://bucket/work/ab/cdef...)
    SOURCE: Final = "source"  # string: "+"-joined sources, e.g. "trace+log"
    #: Not in TASK_COLUMNS: an extra column the log reader adds (why a task FAILED or was
    #: ABORTED, or "outcome unknown"), carried through NextflowRun.tasks.
    NF_REASON: Final = "nf_reason"  # string


TASK_COLUMNS: Final[tuple[str, ...]] = (
    TaskCol.TASK_ID,
    TaskCol.HASH,
    TaskCol.NATIVE_ID,
    TaskCol.NAME,
    TaskCol.PROCESS,
    TaskCol.TAG,
    TaskCol.STATUS,
    TaskCol.EXIT,
    TaskCol.ATTEMPT,
    TaskCol.SUBMIT,
    TaskCol.START,
    TaskCol.COMPLETE,
    TaskCol.REALTIME,
    TaskCol.CPUS,
    TaskCol.MEMORY,
    TaskCol.WORKDIR,
    TaskCol.SOURCE,
)

TASK_DTYPES: Final[dict[str, str]] = {
    TaskCol.TASK_ID: "Int64",
    TaskCol.HASH: "string",
    TaskCol.NATIVE_ID: "string",
    TaskCol.NAME: "string",
    TaskCol.PROCESS: "string",
    TaskCol.TAG: "string",
    TaskCol.STATUS: "string",
    TaskCol.EXIT: "Int64",
    TaskCol.ATTEMPT: "Int64",
    TaskCol.SUBMIT: "datetime64[ns, UTC]",
    TaskCol.START: "datetime64[ns, UTC]",
    TaskCol.COMPLETE: "datetime64[ns, UTC]",
    TaskCol.REALTIME: "timedelta64[ns]",
    TaskCol.CPUS: "Float64",
    TaskCol.MEMORY: "Int64",
    TaskCol.WORKDIR: "string",
    TaskCol.SOURCE: "string",
}


# --- the job schema (what AWS Batch holds) -----------------------------------------


class JobCol:
    """Column names of a job frame built from DescribeJobs answers (``batchkit.reconcile.jobs_frame``)."""

    JOB_ID: Final = "job_id"  # string
    JOB_NAME: Final = "job_name"  # string
    JOB_QUEUE: Final = "job_queue"  # string (name or ARN, as Batch returned it)
    STATUS: Final = "batch_status"  # string, one of JOB_STATUSES
    STATUS_REASON: Final = "status_reason"  # string
    CREATED_AT: Final = "created_at"  # datetime64[ns, UTC]
    STARTED_AT: Final = "started_at"  # datetime64[ns, UTC]
    STOPPED_AT: Final = "stopped_at"  # datetime64[ns, UTC]
    VCPUS: Final = "vcpus"  # Float64
    MEMORY_MIB: Final = "memory_mib"  # Float64
    ATTEMPTS: Final = "attempts"  # Int64: len(attempts[]) plus one if a try is running now
    EXIT_CODE: Final = "exit_code"  # Int64
    COMMAND: Final = "command"  # string: container command joined by spaces
    WORK_DIR: Final = "job_workdir"  # string: the task work dir found in the command, if any
    SUBMISSION_ID: Final = "submission_id"  # string: batchkit tag value, if any


JOB_COLUMNS: Final[tuple[str, ...]] = (
    JobCol.JOB_ID,
    JobCol.JOB_NAME,
    JobCol.JOB_QUEUE,
    JobCol.STATUS,
    JobCol.STATUS_REASON,
    JobCol.CREATED_AT,
    JobCol.STARTED_AT,
    JobCol.STOPPED_AT,
    JobCol.VCPUS,
    JobCol.MEMORY_MIB,
    JobCol.ATTEMPTS,
    JobCol.EXIT_CODE,
    JobCol.COMMAND,
    JobCol.WORK_DIR,
    JobCol.SUBMISSION_ID,
)


# --- the reconcile frame -----------------------------------------------------------


class RecCol:
    """Columns a reconcile frame adds beside TaskCol/JobCol columns it carries over.

    A reconcile frame holds, per (task, job) pair: TaskCol.TASK_ID, NAME, PROCESS,
    HASH, NATIVE_ID, WORKDIR, SUBMIT, COMPLETE; JobCol.JOB_ID, JOB_NAME, JOB_QUEUE,
    STARTED_AT, STOPPED_AT, CREATED_AT, VCPUS, STATUS_REASON; and these:
    """

    NF_STATUS: Final = "nf_status"  # string: Nextflow's task status, <NA> if untracked
    BATCH_STATUS: Final = JobCol.STATUS  # string: Batch's status, <NA> if vanished/no job
    BATCH_RETRIES: Final = "batch_retries"  # Int64: attempts beyond the first
    VERDICT: Final = "verdict"  # string, one of VERDICTS
    REASON: Final = "reason"  # string: one line a person can read
    KILLABLE: Final = "killable"  # bool
    NF_ALIVE: Final = "nf_alive"  # bool: Nextflow still tracks this task as alive
    #: string: how ownership was proven — "native_id" (recorded by the run, and the job
    #: agrees with the record) | "hash" (its launcher names a task dir the run submitted);
    #: not proof: "neighbourhood" (under the work dir only) | "other_run" | ""
    IN_SCOPE_BY: Final = "scope_rule"
    PROOF: Final = "proof"  # string: which proof holds (or why none does), one line
    WASTE_VCPU_H: Final = "waste_vcpu_hours"  # Float64
    WASTE_COST: Final = "waste_cost"  # Float64, at the price per vCPU-hour given to reconcile


# --- small shared value types --------------------------------------------------------

OutcomeKind = Literal["terminated", "cancelled", "already_done", "not_found", "error"]


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What happened to one job in a terminate/cancel call."""

    job_id: str
    outcome: OutcomeKind
    #: Batch's status after the call when known (verification describes again).
    status: str | None = None
    error_code: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome != "error"


@dataclass(frozen=True, slots=True)
class KillJob:
    """An instruction from ``plan_kills``: terminate this job, for this reason."""

    job_id: str
    verdict: str
    reason: str  # e.g. "batchkit: orphan of run 'wise_hypatia'" (<= 1024 chars, Batch's limit)
    task_name: str | None = None
    vcpu_hours: float = 0.0
    #: which proof of ownership holds (``RecCol.PROOF``), for the dry run to show
    proof: str = ""


@dataclass(slots=True)
class DescribeResult:
    """The answer of ``BatchClient.describe_jobs``: found jobs and ids Batch did not return."""

    jobs: dict[str, dict[str, object]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    #: ids whose chunk could not be described at all (API failing past the deadline).
    failed: list[str] = field(default_factory=list)


# --- what reconcile needs to know about a run ----------------------------------------

class RunLike(Protocol):
    """What ``reconcile`` reads from a run; ``batchkit.nextflow.NextflowRun`` satisfies it.

    Timestamps are tz-aware pandas Timestamps (UTC) or None.
    """

    @property
    def name(self) -> str | None: ...  # run name, e.g. "wise_hypatia"
    @property
    def state(self) -> str: ...  # RunState: "alive" | "completed" | "aborted"
    @property
    def work_dir(self) -> str | None: ...  # e.g. "s3://bucket/work" (no trailing slash)
    @property
    def launch_time(self) -> Any: ...  # pd.Timestamp | None
    @property
    def end_time(self) -> Any: ...  # pd.Timestamp | None: abort or completion time
    @property
    def tasks(self) -> Any: ...  # pd.DataFrame with TASK_COLUMNS
