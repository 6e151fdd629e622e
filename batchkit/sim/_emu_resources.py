"""AWS Batch's resources as LocalBatch holds them, and the checks AWS applies to them.

The "models" of the emulator, in moto's sense: compute environments, job queues and
jobs with what a describe call shows of each, the naming of their ARNs, and the rules
a request must meet beyond what botocore's model types say (names, vCPU and memory
minimums, tag keys, list lengths). Pure: no clock, no sockets.

Each rule cites the AWS Batch API reference (the documentation strings of botocore's
``batch`` service model, ``botocore/data/batch/2016-08-10/service-2.json``) or the public
source of an AWS error text.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from ._emu_model import client_error

ACTIVE: Final = frozenset({"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"})
TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED"})
CANCELLABLE: Final = frozenset({"SUBMITTED", "PENDING", "RUNNABLE"})

ESSENTIAL_EXITED: Final = "Essential container in task exited"
TIMEOUT_REASON: Final = "Job attempt duration exceeded timeout"
#: The statusReason of a job whose dependency failed, as AWS Batch writes it (quoted in
#: public failure classifiers of Batch jobs next to "Host EC2" and the timeout reason).
DEPENDENCY_FAILED: Final = "Dependent Job failed"

#: Duration of a job whose command has no ``sleep N`` (seconds).
DEFAULT_DURATION: Final = 60.0
#: Duration of a loaded job (replayed incident) whose command has no ``sleep N``: long
#: enough that a replayed orphan is still running when someone looks for it.
DEFAULT_LOADED_DURATION: Final = 3600.0

#: "A job can depend upon a maximum of 20 jobs." (SubmitJob dependsOn)
MAX_DEPENDS_ON: Final = 20
#: "You can associate up to three compute environments with a job queue." (CreateJobQueue
#: computeEnvironmentOrder)
MAX_QUEUE_CES: Final = 3
#: "You must specify at least 4 MiB of memory for a job." (ResourceRequirement value, MEMORY)
MIN_MEMORY_MIB: Final = 4
#: Smithy "integer" members (every Batch count, vCPU and memory member) are 32-bit signed.
INT32_MAX: Final = 2**31 - 1

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_SLEEP = re.compile(r"\bsleep\s+(\d+(?:\.\d+)?)([smhd]?)\b")
_EXIT = re.compile(r"\bexit\s+(\d{1,3})\b")
_ECHO = re.compile(r"""\becho\s+(?:-[neE]+\s+)?('([^']*)'|"([^"]*)"|([^;&|<>\n]*))""")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def ms(t: float | None) -> int | None:
    return None if t is None else round(t * 1000)


def to_ms_instant(t: float) -> float:
    """``t`` rounded to the millisecond AWS shows: every comparison then uses what clients see."""
    return round(t * 1000) / 1000.0


# --- what a command does ---------------------------------------------------------------


def parse_command(command: Iterable[str] | None) -> tuple[float | None, int | None]:
    """The duration (sum of ``sleep N``) and exit code (``exit N``) a command asks for.

    Nextflow's own command (``bash -o pipefail -c 'trap ...; exit $ret; ...'``) holds
    ``exit $ret``, which is not a number and so sets nothing.
    """
    text = " ".join(command or ())
    sleeps = [float(n) * _UNIT[u] for n, u in _SLEEP.findall(text)]
    duration = sum(sleeps) if sleeps else None
    exits = _EXIT.findall(text)
    exit_code = int(exits[-1]) if exits else None
    return duration, exit_code


def parse_output(command: Iterable[str] | None) -> list[str]:
    """The lines a command's ``echo`` statements print (what its log stream shows)."""
    text = " ".join(command or ())
    lines: list[str] = []
    for m in _ECHO.finditer(text):
        single, double, bare = m.group(2), m.group(3), m.group(4)
        line = single if single is not None else double if double is not None else (bare or "").strip()
        lines.extend(line.split("\\n") if line else [""])
    return lines


def glob_match(pattern: str, value: str | None) -> bool:
    """evaluateOnExit matching: exact, or a prefix when the pattern ends in ``*``.

    A missing value matches as "": Nextflow's spot strategy ends in
    ``{onReason: "*", action: EXIT}`` to stop every other failure from retrying, and
    an ordinary non-zero exit carries no container reason at all.
    """
    if value is None:
        value = ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


# --- resources -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Naming:
    """ARNs of one region and account."""

    region: str
    account_id: str

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:batch:{self.region}:{self.account_id}:{kind}/{name}"

    def ecs(self, kind: str, name: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account_id}:{kind}/{name}"

    def iam_role(self, role: str) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{role}"


def cluster_name(ce_name: str) -> str:
    """The ECS cluster Batch makes for a compute environment: ``<name>_Batch_<uuid>``."""
    return f"{ce_name}_Batch_{uuid.uuid4()}"


@dataclass(eq=False, slots=True)
class ComputeEnv:
    name: str
    arn: str
    detail: dict[str, Any]
    capacity: float
    used: float = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.detail.get("state", "ENABLED") == "ENABLED")

    @property
    def cluster(self) -> str:
        """The ECS cluster's name (the last part of ``ecsClusterArn``)."""
        return str(self.detail["ecsClusterArn"]).rsplit("/", 1)[-1]


@dataclass(eq=False, slots=True)
class JobQueue:
    name: str
    arn: str
    detail: dict[str, Any]
    ces: list[ComputeEnv]  # in computeEnvironmentOrder: "tried in ascending order"
    jobs: list[Job] = field(default_factory=list)  # top-level jobs in creation order
    runnable: deque[Job] = field(default_factory=deque)  # FIFO of jobs waiting for vCPUs
    stuck: list[Job] = field(default_factory=list)  # need more vCPUs than any of its CEs has

    @property
    def priority(self) -> int:
        return int(self.detail.get("priority", 1))


@dataclass(eq=False, slots=True)
class Job:
    job_id: str
    name: str
    queue: JobQueue
    job_definition: str
    created: float
    container: dict[str, Any]
    vcpus: float
    status: str = "SUBMITTED"
    status_reason: str | None = None
    started: float | None = None
    stopped: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    retry_strategy: dict[str, Any] | None = None
    timeout: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # other describe members, kept as given
    duration: float = DEFAULT_DURATION
    exit_code: int = 0
    gen: int = 0  # bumped when the pending event of this job becomes obsolete
    next_event: tuple[float, str] | None = None
    attempt_start: float | None = None  # STARTING instant of the current try
    running_since: float | None = None
    end_kind: str | None = None  # how the current try will end: exit | timeout | spot
    ce: ComputeEnv | None = None  # where the current try holds its vCPUs
    is_cancelled: bool = False
    is_terminated: bool = False
    array_size: int | None = None
    array_index: int | None = None
    parent: Job | None = None
    children: list[Job] = field(default_factory=list)
    cancel_reason: str | None = None  # an array parent cancelled while children still run
    forgotten: bool = False  # aged out / vanished: absent from every answer
    open_children: int = 0  # array parent: children not finished yet (O(1) per child end)
    kill_reason: str | None = None  # TerminateJob received; the container is still stopping
    failed_children: int = 0
    #: what the container prints: written to the attempt's CloudWatch Logs stream when it runs
    output: list[str] = field(default_factory=list)
    #: the current attempt's ECS task id (32 hex digits), set when the attempt is STARTING
    task_id: str | None = None
    instance_arn: str | None = None
    #: jobs this one waits for (dependsOn), and the jobs waiting for this one
    depends_on: list[Job] = field(default_factory=list)
    dependents: list[Job] = field(default_factory=list)
    held: bool = False  # PENDING past its delay, waiting for a dependency

    @property
    def holds_vcpus(self) -> bool:
        return self.ce is not None

    @property
    def job_definition_name(self) -> str:
        return self.job_definition.rsplit("/", 1)[-1].split(":")[0]


def describe_job(job: Job, naming: Naming) -> dict[str, Any]:
    """The job as DescribeJobs shows it."""
    d: dict[str, Any] = dict(job.extra)
    d.update(
        {
            "jobArn": naming.arn("job", job.job_id),
            "jobName": job.name,
            "jobId": job.job_id,
            "jobQueue": job.queue.arn,
            "status": job.status,
            "attempts": [dict(a) for a in job.attempts],
            "createdAt": ms(job.created),
            "dependsOn": d.get("dependsOn", []),
            "jobDefinition": job.job_definition,
            "parameters": dict(job.parameters),
            "container": dict(job.container),
            "tags": dict(job.tags),
            "platformCapabilities": d.get("platformCapabilities", ["EC2"]),
            "propagateTags": bool(d.get("propagateTags", False)),
            "isCancelled": job.is_cancelled,
            "isTerminated": job.is_terminated,
        }
    )
    d.update(_once_known(job))
    if job.retry_strategy is not None:
        d["retryStrategy"] = job.retry_strategy
    if job.timeout is not None:
        d["timeout"] = {"attemptDurationSeconds": int(job.timeout)}
    if job.array_size is not None:
        d["arrayProperties"] = {"statusSummary": status_summary(job), "size": job.array_size}
    elif job.array_index is not None:
        d["arrayProperties"] = {"index": job.array_index}
    return d


def _once_known(job: Job) -> dict[str, Any]:
    """The members a job (DescribeJobs) or its summary (ListJobs) carries only once there is
    something to say: statusReason, startedAt, stoppedAt."""
    known: dict[str, Any] = {}
    if job.status_reason is not None:
        known["statusReason"] = job.status_reason
    if job.started is not None:
        known["startedAt"] = ms(job.started)
    if job.stopped is not None:
        known["stoppedAt"] = ms(job.stopped)
    return known


def status_summary(job: Job) -> dict[str, int]:
    summary = dict.fromkeys(("STARTING", "FAILED", "RUNNING", "SUCCEEDED", "RUNNABLE", "SUBMITTED", "PENDING"), 0)
    for c in job.children:
        summary[c.status] += 1
    return summary


def summarize_job(job: Job, naming: Naming) -> dict[str, Any]:
    """A ListJobs summary: no command (DescribeJobs is needed for that).

    ``isCancelled`` / ``isTerminated`` are JobSummary members in the API model.
    """
    s: dict[str, Any] = {
        "jobArn": naming.arn("job", job.job_id),
        "jobId": job.job_id,
        "jobName": job.name,
        "createdAt": ms(job.created),
        "status": job.status,
        "jobDefinition": job.job_definition,
        "isCancelled": job.is_cancelled,
        "isTerminated": job.is_terminated,
    }
    s.update(_once_known(job))
    if job.status in TERMINAL and "exitCode" in job.container:
        s["container"] = {"exitCode": job.container["exitCode"]}
    if job.array_size is not None:
        s["arrayProperties"] = {"size": job.array_size}
    elif job.array_index is not None:
        s["arrayProperties"] = {"index": job.array_index}
    return s


# --- checks AWS applies ----------------------------------------------------------------


def check_name(kind: str, name: str) -> None:
    """Names: "Up to 128 letters (uppercase and lowercase), numbers, hyphens, and
    underscores are allowed" and (job names) "It must start with an alphanumeric character"."""
    if _NAME.match(name):
        return
    if kind == "Job":
        # AWS's own text for a bad job name (quoted in fluidattacks/makes#697).
        raise client_error("Error executing request, Exception : Job name should match valid pattern")
    raise client_error(
        f"{kind} name {name!r} is invalid: up to 128 letters, numbers, hyphens and underscores, "
        "starting with a letter or number"
    )


def check_tags(tags: dict[str, Any] | None) -> None:
    """Tag keys: "The aws: prefix is reserved for AWS use" (AWS General Reference, Tagging
    AWS resources: tag naming limits); counts and lengths are checked from the model."""
    for key in tags or {}:
        if str(key).lower().startswith("aws:"):
            raise client_error(f"Tag key {key!r} is invalid: the aws: prefix is reserved for AWS use")


def check_compute_resources(resources: dict[str, Any]) -> float:
    """minvCpus <= desiredvCpus <= maxvCpus, none negative (ComputeResource); returns maxvCpus."""
    lo = resources.get("minvCpus", 0)
    hi = resources.get("maxvCpus")
    if hi is None:
        raise client_error("computeResources.maxvCpus is required for a MANAGED compute environment")
    desired = resources.get("desiredvCpus", lo)
    for key, value in (("minvCpus", lo), ("maxvCpus", hi), ("desiredvCpus", desired)):
        if value < 0:
            raise client_error(f"computeResources.{key} {value} must be 0 or more")
    if not lo <= desired <= hi:
        raise client_error(
            f"computeResources: minvCpus ({lo}) <= desiredvCpus ({desired}) <= maxvCpus ({hi}) must hold"
        )
    return float(hi)


def job_vcpus(container: dict[str, Any], platforms: Iterable[str] = ("EC2",)) -> float:
    """The job's vCPUs, checked: "For EC2 resources, you must specify at least one vCPU";
    Fargate takes 0.25, 0.5, 1, 2, 4, 8 or 16 (ResourceRequirement value, VCPU)."""
    value: Any = None
    for r in container.get("resourceRequirements") or ():
        if r.get("type") == "VCPU":
            value = r.get("value")
    if value is None:
        value = container.get("vcpus")
    if value is None:
        return 1.0
    try:
        vcpus = float(value)
    except (TypeError, ValueError):
        raise client_error(f"resourceRequirements VCPU value {value!r} is not a number") from None
    fargate = "FARGATE" in set(platforms)
    if not math.isfinite(vcpus) or vcpus > INT32_MAX:
        raise client_error(f"VCPU value {value!r} is not a finite number of vCPUs")
    if fargate and vcpus not in (0.25, 0.5, 1, 2, 4, 8, 16):
        raise client_error(f"VCPU value {value!r}: Fargate jobs take 0.25, 0.5, 1, 2, 4, 8 or 16 vCPUs")
    if not fargate and (vcpus < 1 or vcpus != int(vcpus)):
        raise client_error(f"VCPU value {value!r}: a job on EC2 resources needs a whole number of vCPUs, at least 1")
    return vcpus


def check_memory(container: dict[str, Any]) -> None:
    """"You must specify at least 4 MiB of memory for a job" (ResourceRequirement, MEMORY)."""
    values: list[Any] = [r.get("value") for r in container.get("resourceRequirements") or () if r.get("type") == "MEMORY"]
    if container.get("memory") is not None:
        values.append(container["memory"])
    for value in values:
        try:
            mib = int(str(value))
        except ValueError:
            raise client_error(f"MEMORY value {value!r} is not a whole number of MiB") from None
        if not MIN_MEMORY_MIB <= mib <= INT32_MAX:
            raise client_error(f"MEMORY value {value!r} MiB is out of range: at least {MIN_MEMORY_MIB} MiB")


def merge_container(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """The job definition's containerProperties with SubmitJob's containerOverrides applied."""
    c: dict[str, Any] = json.loads(json.dumps(base))
    for key in ("vcpus", "memory", "command", "instanceType"):
        if over.get(key) is not None:
            c[key] = over[key]
    # An override wins over the job definition, whichever of the two spellings each used.
    for key, rtype in (("vcpus", "VCPU"), ("memory", "MEMORY")):
        if over.get(key) is not None and c.get("resourceRequirements"):
            c["resourceRequirements"] = [r for r in c["resourceRequirements"] if r.get("type") != rtype]
    for r in over.get("resourceRequirements") or ():
        legacy = {"VCPU": "vcpus", "MEMORY": "memory"}.get(r.get("type", ""))
        if legacy is not None:
            c.pop(legacy, None)
    if over.get("environment"):
        env = {e["name"]: e for e in c.get("environment", []) if "name" in e}
        for e in over["environment"]:
            env[e.get("name", "")] = e
        c["environment"] = list(env.values())
    if over.get("resourceRequirements"):
        rr = {r["type"]: r for r in c.get("resourceRequirements", []) if "type" in r}
        for r in over["resourceRequirements"]:
            rr[r.get("type", "")] = r
        c["resourceRequirements"] = list(rr.values())
    c.setdefault("command", [])
    c.setdefault("environment", [])
    c.setdefault("networkInterfaces", [])
    return c


def check_retry_strategy(retry: dict[str, Any] | None) -> None:
    """attempts 1-10, up to 5 evaluateOnExit conditions, action RETRY or EXIT (RetryStrategy)."""
    if retry is None:
        return
    n = retry.get("attempts", 1)
    if not 1 <= int(n) <= 10:
        raise client_error(f"retryStrategy.attempts {n} is out of range: use 1 to 10")
    if len(retry.get("evaluateOnExit") or ()) > 5:
        raise client_error("retryStrategy.evaluateOnExit accepts up to 5 conditions")
    for cond in retry.get("evaluateOnExit") or ():
        if str(cond.get("action", "")).upper() not in ("RETRY", "EXIT"):
            raise client_error("evaluateOnExit.action must be RETRY or EXIT")


def reason_of(p: dict[str, Any]) -> str:
    """TerminateJob / CancelJob reason: "up to 1024 characters"."""
    reason = p["reason"]
    if len(reason) > 1024:
        raise client_error(f"reason is {len(reason)} characters long: the limit is 1024")
    return str(reason)
