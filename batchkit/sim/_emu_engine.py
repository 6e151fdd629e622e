"""The emulator's state and lifecycle: compute environments, queues, job definitions, jobs.

Pure and single-threaded by design: the HTTP layer holds one lock around every
call. Time comes from an ``EmuClock``; the lifecycle is an event queue evaluated
lazily up to "now" at the start of each call, so 10,000 jobs cost nothing while
nobody looks and a DescribeJobs of 100 ids touches only those 100 jobs.

Lifecycle (DESIGN §3): SUBMITTED -(1 s)-> PENDING -(1 s)-> RUNNABLE -(vCPUs free on
the queue's compute environment)-> STARTING -(1 s)-> RUNNING -(duration)->
SUCCEEDED / FAILED. Each try is an entry of ``attempts[]``; ``retryStrategy``
(attempts, evaluateOnExit) decides whether a failed try goes back to RUNNABLE.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import json
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from ._emu_logs import LogWrite
from ._emu_model import client_error

# Fixed delays of the early states, in emulator seconds.
SUBMITTED_DELAY: Final = 1.0
PENDING_DELAY: Final = 1.0
STARTING_DELAY: Final = 1.0
#: Duration of a job whose command has no ``sleep N`` (seconds).
DEFAULT_DURATION: Final = 60.0
#: Duration of a loaded job (replayed incident) whose command has no ``sleep N``: long
#: enough that a replayed orphan is still running when someone looks for it.
DEFAULT_LOADED_DURATION: Final = 3600.0

ACTIVE: Final = frozenset({"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"})
TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED"})
CANCELLABLE: Final = frozenset({"SUBMITTED", "PENDING", "RUNNABLE"})

ESSENTIAL_EXITED: Final = "Essential container in task exited"
TIMEOUT_REASON: Final = "Job attempt duration exceeded timeout"
DEPENDENCY_FAILED: Final = "Dependent Job failed"

_SLEEP = re.compile(r"\bsleep\s+(\d+(?:\.\d+)?)([smhd]?)\b")
_EXIT = re.compile(r"\bexit\s+(\d{1,3})\b")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


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


_ECHO = re.compile(r"""\becho\s+(?:-[neE]+\s+)?('([^']*)'|"([^"]*)"|([^;&|<>\n]*))""")


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


class EmuClock:
    """Emulator time in epoch seconds: real time, sped up, or stepped by hand.

    A sped-up clock has two ways to keep time, chosen by ``wall``:

    - ``wall=False`` (in-process default): the emulator's clock itself runs ``speed``
      times faster, so timestamps run ahead of this machine's clock; whoever reads them
      must take "now" from ``now()`` (the tracker does, with ``clock=``), and every HTTP
      answer's ``Date`` header carries the emulator's time so the drift is visible.
    - ``wall=True`` (``batchkit sim serve``, for outside clients): timestamps stay on the
      wall clock and every lifecycle span (state delays, ``sleep N`` durations, timeouts,
      terminate delays, retention) is ``speed`` times shorter, so an AWS CLI user's
      AFTER_CREATED_AT or job age built from their own clock stays right; a ``sleep 600``
      job at x60 shows ``stoppedAt - startedAt`` = 10 s.
    """

    def __init__(
        self, *, speed: float = 1.0, manual: bool = False, start_time: float | None = None, wall: bool = False
    ) -> None:
        if not speed > 0 or speed == float("inf"):
            raise ValueError(f"clock speed {speed!r} must be a finite number > 0")
        self.speed = speed
        self.manual = manual
        self.wall = wall and not manual
        self._start = time.time() if start_time is None else float(start_time)
        self._t0 = time.monotonic()
        self._manual_now = self._start

    def now(self) -> float:
        if self.manual:
            return self._manual_now
        if self.wall:
            return self._start + (time.monotonic() - self._t0)
        return self._start + (time.monotonic() - self._t0) * self.speed

    def span(self, seconds: float) -> float:
        """How long ``seconds`` of simulated work lasts on this clock (shorter in wall mode)."""
        return seconds / self.speed if self.wall else seconds

    def advance(self, seconds: float) -> None:
        """Step a manual clock forward (``LocalBatch.advance`` also runs the lifecycle)."""
        if not self.manual:
            raise ValueError("advance() needs a manual clock: LocalBatch(manual_clock=True)")
        if seconds < 0:
            raise ValueError(f"cannot move the clock backwards ({seconds!r} s)")
        self._manual_now += seconds

    def set(self, when: float) -> None:
        """Jump to ``when`` (restoring a dumped state); never moves backwards."""
        if self.manual:
            self._manual_now = max(self._manual_now, when)
        else:
            now = self.now()
            if when > now:
                self._start += when - now

    def run(self, speed: float = 1.0) -> None:
        """From now on run at ``speed`` (a manual clock starts moving by itself).

        A replay stepped by hand in milliseconds can then be watched live: the demo
        notebook replays the incident on a manual clock and then runs it in real time,
        so its 4-hour orphans keep running for hours of wall time.
        """
        if speed <= 0:
            raise ValueError(f"clock speed {speed!r} must be > 0")
        self._start, self._t0 = self.now(), time.monotonic()
        self.speed, self.manual = speed, False


def ms(t: float | None) -> int | None:
    return None if t is None else round(t * 1000)


@dataclass(eq=False, slots=True)
class ComputeEnv:
    name: str
    arn: str
    detail: dict[str, Any]
    capacity: float
    used: float = 0.0
    runnable: deque[Job] = field(default_factory=deque)
    stuck: list[Job] = field(default_factory=list)  # need more vCPUs than the CE can ever give


@dataclass(eq=False, slots=True)
class JobQueue:
    name: str
    arn: str
    detail: dict[str, Any]
    ce: ComputeEnv | None
    jobs: list[Job] = field(default_factory=list)  # top-level jobs in creation order


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
    holds_vcpus: bool = False
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


class Engine:
    """All emulator state; every public method is one API call or one test hook."""

    def __init__(self, clock: EmuClock, *, region: str, account_id: str, seed: int = 0) -> None:
        self.clock = clock
        self.region = region
        self.account_id = account_id
        self.rng = random.Random(seed)
        self.spot_interruption_rate = 0.0
        #: Seconds after which a finished job ages out of every answer (real Batch:
        #: about a week); None keeps every job.
        self.retention: float | None = None
        #: Seconds a STARTING/RUNNING job keeps its state after TerminateJob before it is
        #: FAILED (real Batch takes a few seconds to stop the container); 0 = at once.
        self.terminate_delay = 0.0
        self.ces: dict[str, ComputeEnv] = {}
        self.queues: dict[str, JobQueue] = {}
        self.jobdefs: dict[str, list[dict[str, Any]]] = {}  # name -> revisions (index = rev - 1)
        self.jobs: dict[str, Job] = {}
        self.tags: dict[str, dict[str, str]] = {}  # non-job resource ARN -> tags
        self._events: list[tuple[float, int, Job, int, str]] = []
        self._seq = itertools.count()
        self._processed_until = clock.now()
        #: Job output waiting to be written to CloudWatch Logs (None: no logs endpoint, keep nothing).
        self.log_outbox: list[LogWrite] | None = None

    # --- naming -------------------------------------------------------------------

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:batch:{self.region}:{self.account_id}:{kind}/{name}"

    def new_job_id(self) -> str:
        # Random, not seeded: ids stay unique across emulator restarts, as AWS's are.
        return str(uuid.uuid4())

    # --- lifecycle ----------------------------------------------------------------

    def catch_up(self) -> float:
        """Run every lifecycle event due by now; return now."""
        now = self.clock.now()
        events = self._events
        while events and events[0][0] <= now:
            t, _, job, gen, kind = heapq.heappop(events)
            if gen != job.gen:
                continue
            job.next_event = None
            self._fire(job, kind, t)
        self._processed_until = max(self._processed_until, now)
        return now

    def _push(self, job: Job, when: float, kind: str) -> None:
        job.gen += 1
        job.next_event = (when, kind)
        heapq.heappush(self._events, (when, next(self._seq), job, job.gen, kind))

    def _cancel_event(self, job: Job) -> None:
        job.gen += 1
        job.next_event = None

    def _fire(self, job: Job, kind: str, t: float) -> None:
        if kind == "to_pending":
            job.status = "PENDING"
            if job.array_size is not None:
                return  # an array parent waits in PENDING for its children
            self._push(job, t + self.clock.span(PENDING_DELAY), "to_runnable")
        elif kind == "to_runnable":
            self._make_runnable(job, t)
        elif kind == "to_running":
            job.status = "RUNNING"
            job.running_since = t
            # "Each container attempt receives a log stream name when they reach the RUNNING
            # status" (ContainerDetail.logStreamName, AWS Batch API reference).
            stream = self._log_stream(job)
            job.container["logStreamName"] = stream
            if self.log_outbox is not None:
                self.log_outbox.append(LogWrite(stream, tuple((ms(t) or 0, line) for line in job.output)))
            self._plan_end(job)
        elif kind == "end":
            self._end_attempt(job, t, job.end_kind or "exit")
        elif kind == "kill":
            self._kill_now(job, job.kill_reason or "Terminated", t)

    def _make_runnable(self, job: Job, t: float) -> None:
        job.status = "RUNNABLE"
        ce = job.queue.ce
        if ce is None:
            return  # a queue without a compute environment never starts anything
        if job.vcpus > ce.capacity:
            # Real Batch leaves such a job RUNNABLE forever; it must not block the queue.
            ce.stuck.append(job)
            return
        ce.runnable.append(job)
        self._schedule(ce, t)

    def _schedule(self, ce: ComputeEnv, t: float) -> None:
        q = ce.runnable
        while q:
            head = q[0]
            if head.status != "RUNNABLE" or head.holds_vcpus or head.forgotten:
                q.popleft()  # cancelled/terminated/replaced while waiting
                continue
            if ce.used + head.vcpus > ce.capacity + 1e-9:
                return  # FIFO: the head waits for capacity
            q.popleft()
            self._start_attempt(head, ce, t)

    def _start_attempt(self, job: Job, ce: ComputeEnv, t: float) -> None:
        ce.used += job.vcpus
        job.holds_vcpus = True
        job.status = "STARTING"
        job.status_reason = None
        # "Each container attempt receives a task ARN when they reach the STARTING status"
        # (ContainerDetail.taskArn). The top-level container describes the current attempt,
        # so the previous attempt's exit code and log stream go (they stay in attempts[]).
        job.task_id = uuid.uuid4().hex
        job.instance_arn = f"{self._cluster_arn(ce).replace(':cluster/', ':container-instance/')}/{uuid.uuid4().hex}"
        for key in ("exitCode", "reason", "logStreamName"):
            job.container.pop(key, None)
        job.container["taskArn"] = self._task_arn(job, ce)
        job.container["containerInstanceArn"] = job.instance_arn
        job.attempt_start = t
        job.running_since = None
        job.started = None
        self._push(job, t + STARTING_DELAY, "to_running")

    def _plan_end(self, job: Job, spot_roll: bool = True, not_before: float | None = None) -> None:
        """Schedule how the running try ends: exit, timeout or spot reclaim, whichever is first.

        ``not_before``: a try shortened while it runs ends now at the earliest, never in the past.
        """
        assert job.running_since is not None and job.attempt_start is not None
        job.started = job.running_since
        span = self.clock.span
        end = job.running_since + span(job.duration)
        kind = "exit"
        if job.timeout is not None:
            # attemptDurationSeconds counts from the attempt's startedAt.
            limit = job.running_since + span(job.timeout)
            if limit < end:
                end, kind = limit, "timeout"
        if spot_roll and self.spot_interruption_rate > 0 and self.rng.random() < self.spot_interruption_rate:
            at = job.running_since + span(job.duration) * self.rng.uniform(0.1, 0.9)
            if at < end:
                end, kind = at, "spot"
        job.end_kind = kind
        if not_before is not None:
            end = max(end, not_before)
        self._push(job, end, "end")

    def _release(self, job: Job, t: float) -> None:
        if job.holds_vcpus and job.queue.ce is not None:
            ce = job.queue.ce
            ce.used = max(0.0, ce.used - job.vcpus)
            job.holds_vcpus = False
            self._schedule(ce, t)
        job.holds_vcpus = False

    def _instance_id(self, job: Job) -> str:
        digest = hashlib.sha1(f"{job.job_id}/{len(job.attempts)}".encode()).hexdigest()
        return "i-0" + digest[:16]

    def _cluster_arn(self, ce: ComputeEnv | None) -> str:
        if ce is not None and ce.detail.get("ecsClusterArn"):
            return str(ce.detail["ecsClusterArn"])
        return f"arn:aws:ecs:{self.region}:{self.account_id}:cluster/{job_queue_cluster_name(None)}"

    def _task_arn(self, job: Job, ce: ComputeEnv | None) -> str:
        # AWS: arn:aws:ecs:<region>:<account>:task/<cluster name>/<32 hex task id>
        cluster = self._cluster_arn(ce).rsplit("/", 1)[-1]
        return f"arn:aws:ecs:{self.region}:{self.account_id}:task/{cluster}/{job.task_id}"

    def _log_stream(self, job: Job) -> str:
        # <jobDefinitionName>/default/<ecs task id>: the stream name Batch gives each attempt.
        return f"{job.job_definition.rsplit('/', 1)[-1].split(':')[0]}/default/{job.task_id}"

    def _attempt_record(self, job: Job, t: float, reason: str, exit_code: int | None) -> dict[str, Any]:
        if job.task_id is None:  # an attempt of a loaded job that started before we knew it
            job.task_id = uuid.uuid4().hex
        ce = job.queue.ce
        container: dict[str, Any] = {
            "containerInstanceArn": job.instance_arn
            or f"{self._cluster_arn(ce).replace(':cluster/', ':container-instance/')}/{uuid.uuid4().hex}",
            "taskArn": self._task_arn(job, ce),
            "networkInterfaces": [],
        }
        if job.running_since is not None:  # a stream exists only for an attempt that ran
            container["logStreamName"] = self._log_stream(job)
        if exit_code is not None:
            container["exitCode"] = exit_code
        started = job.running_since if job.running_since is not None else job.attempt_start
        return {
            "container": container,
            "startedAt": ms(started),
            "stoppedAt": ms(t),
            "statusReason": reason,
        }

    def _end_attempt(self, job: Job, t: float, how: str) -> None:
        """A try ended on its own (exit), by timeout, or by a spot reclaim."""
        if how == "spot":
            reason, code = f"Host EC2 (instance {self._instance_id(job)}) terminated.", None
        elif how == "timeout":
            reason, code = TIMEOUT_REASON, None
        else:
            reason, code = ESSENTIAL_EXITED, job.exit_code
        rec = self._attempt_record(job, t, reason, code)
        job.attempts.append(rec)
        self._release(job, t)
        job.container["exitCode"] = code
        if code is None:
            job.container.pop("exitCode", None)
        if how == "exit" and code == 0:
            self._finish(job, "SUCCEEDED", reason, t)
            return
        # AWS Batch: "If a job is terminated due to a timeout, it isn't retried."
        if job.kill_reason is not None:
            # It ended on its own while being terminated: no new try for a killed job.
            self._finish(job, "FAILED", job.kill_reason, t)
            return
        if how != "timeout" and self._should_retry(job, rec):
            job.status = "RUNNABLE"
            job.status_reason = None
            job.attempt_start = None
            job.running_since = None
            self._make_runnable(job, t)
            return
        self._finish(job, "FAILED", reason, t)

    def _should_retry(self, job: Job, rec: dict[str, Any]) -> bool:
        strategy = job.retry_strategy or {}
        allowed = int(strategy.get("attempts") or 1)
        if len(job.attempts) >= allowed:
            return False
        code = rec.get("container", {}).get("exitCode")
        for cond in strategy.get("evaluateOnExit") or ():
            checks = [
                ("onStatusReason", rec.get("statusReason")),
                ("onReason", rec.get("container", {}).get("reason")),
                ("onExitCode", None if code is None else str(code)),
            ]
            if all(glob_match(cond[k], v) for k, v in checks if cond.get(k) is not None):
                return str(cond.get("action", "")).upper() == "RETRY"
        # "If none of the EvaluateOnExit conditions match, the job is retried."
        return True

    def _finish(self, job: Job, status: str, reason: str | None, t: float) -> None:
        self._cancel_event(job)
        job.status = status
        job.status_reason = reason
        job.stopped = t
        if job.started is None and job.running_since is not None:
            job.started = job.running_since
        parent = job.parent
        if parent is None:
            return
        parent.open_children -= 1
        if status == "FAILED":
            parent.failed_children += 1
        if parent.status in ACTIVE and parent.open_children <= 0:
            ok = parent.failed_children == 0
            if parent.cancel_reason is not None:
                parent.is_cancelled = True
                self._finish(parent, "FAILED", parent.cancel_reason, t)
            else:
                self._finish(parent, "SUCCEEDED" if ok else "FAILED", None if ok else "Array Child Job failed", t)

    # --- kills ------------------------------------------------------------------------

    def terminate(self, job: Job, reason: str, t: float) -> None:
        """TerminateJob: STARTING/RUNNING -> FAILED with the reason; earlier states are cancelled."""
        if job.status in TERMINAL or job.kill_reason is not None:
            return  # idempotent: a finished or already-terminating job is left alone
        if job.status in ("STARTING", "RUNNING") and self.terminate_delay > 0:
            # The job stays STARTING/RUNNING while its container stops (SIGTERM, then SIGKILL).
            job.kill_reason = reason
            when = t + self.clock.span(self.terminate_delay)
            if job.status == "STARTING" or job.next_event is None or job.next_event[0] > when:
                self._push(job, when, "kill")
            return
        self._kill_now(job, reason, t)

    def _kill_now(self, job: Job, reason: str, t: float) -> None:
        if job.status in ("STARTING", "RUNNING"):
            job.is_terminated = True
            if job.running_since is None and job.status == "RUNNING":
                job.running_since = t
            # The container gets SIGTERM: bash exits 128+15.
            job.attempts.append(self._attempt_record(job, t, ESSENTIAL_EXITED, 143))
            job.container["exitCode"] = 143
            self._release(job, t)
        else:
            job.is_cancelled = True
        # The parent first, so its children finishing do not overwrite its reason.
        self._finish(job, "FAILED", reason, t)
        for child in job.children:
            self.terminate(child, reason, t)

    def cancel(self, job: Job, reason: str, t: float) -> None:
        """CancelJob: only SUBMITTED/PENDING/RUNNABLE; STARTING/RUNNING are quietly left running."""
        if job.status not in CANCELLABLE:
            return
        if job.children:
            # "When you try to cancel an array parent job in PENDING, Batch attempts to cancel all
            # child jobs. The array parent job is cancelled when all child jobs are completed."
            job.cancel_reason = reason
            for child in job.children:
                self.cancel(child, reason, t)
            return
        job.is_cancelled = True
        self._finish(job, "FAILED", reason, t)

    def interrupt(self, job: Job, t: float) -> None:
        """A spot reclaim now: the running try ends; retryStrategy decides what follows."""
        if job.status not in ("STARTING", "RUNNING"):
            raise ValueError(
                f"job {job.job_id} is {job.status}: only a STARTING or RUNNING job runs on a host that can be reclaimed"
            )
        if job.running_since is None:
            job.running_since = t
        self._cancel_event(job)
        self._end_attempt(job, t, "spot")

    def set_behavior(
        self, job: Job, duration: float | None, exit_code: int | None, output: list[str] | None = None
    ) -> None:
        targets = [job, *job.children]
        for j in targets:
            if output is not None:
                j.output = [str(line) for line in output]
                if j.status == "RUNNING" and self.log_outbox is not None and "logStreamName" in j.container:
                    # Already running: its stream exists; the new lines are printed now.
                    t = ms(self.clock.now()) or 0
                    self.log_outbox.append(LogWrite(j.container["logStreamName"], tuple((t, x) for x in j.output)))
            if duration is not None:
                if duration < 0:
                    raise ValueError(f"duration {duration!r} must be >= 0")
                j.duration = float(duration)
            if exit_code is not None:
                j.exit_code = int(exit_code)
            if j.status == "RUNNING" and j.running_since is not None and j.kill_reason is None:
                prev, was_spot = j.next_event, j.end_kind == "spot"
                self._plan_end(j, spot_roll=False, not_before=self.clock.now())
                if was_spot and prev is not None and j.next_event is not None and prev[0] < j.next_event[0]:
                    j.end_kind = "spot"  # a planned spot reclaim still comes first
                    self._push(j, prev[0], "end")

    # --- resolution -------------------------------------------------------------------

    def find_ce(self, ref: str) -> ComputeEnv | None:
        name = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
        return self.ces.get(name)

    def find_queue(self, ref: str) -> JobQueue | None:
        name = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
        return self.queues.get(name)

    def find_jobdef(self, ref: str) -> dict[str, Any] | None:
        """A job definition by name (latest ACTIVE revision), name:revision or ARN."""
        name = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
        rev: int | None = None
        if ":" in name:
            base, _, r = name.rpartition(":")
            if not r.isdigit():
                return None
            name, rev = base, int(r)
        revs = self.jobdefs.get(name)
        if not revs:
            return None
        if rev is not None:
            return revs[rev - 1] if 1 <= rev <= len(revs) else None
        active = [d for d in revs if d.get("status") == "ACTIVE"]
        return active[-1] if active else None

    def find_job(self, ref: str) -> Job | None:
        key = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
        job = self.jobs.get(key)
        return job if job is not None and self.visible(job) else None

    def visible(self, job: Job) -> bool:
        """False for a job that has aged out or was forgotten (nextflow-io/nextflow#7301)."""
        if job.forgotten:
            return False
        if self.retention is not None and job.stopped is not None and job.status in TERMINAL:
            return self.clock.now() - job.stopped <= self.clock.span(self.retention)
        return True

    def forget(self, job: Job) -> None:
        """Make a job vanish from every answer, as an aged-out job does; it stops running."""
        self.terminate(job, "forgotten", self.clock.now())
        for j in (job, *job.children):
            j.forgotten = True

    # --- describing -----------------------------------------------------------------

    def describe(self, job: Job) -> dict[str, Any]:
        d: dict[str, Any] = dict(job.extra)
        d.update(
            {
                "jobArn": self.arn("job", job.job_id),
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
            }
        )
        if job.status_reason is not None:
            d["statusReason"] = job.status_reason
        started = job.started
        if started is not None:
            d["startedAt"] = ms(started)
        if job.stopped is not None:
            d["stoppedAt"] = ms(job.stopped)
        if job.retry_strategy is not None:
            d["retryStrategy"] = job.retry_strategy
        if job.timeout is not None:
            d["timeout"] = {"attemptDurationSeconds": int(job.timeout)}
        if job.is_cancelled:
            d["isCancelled"] = True
        if job.is_terminated:
            d["isTerminated"] = True
        if job.array_size is not None:
            d["arrayProperties"] = {"statusSummary": self._status_summary(job), "size": job.array_size}
        elif job.array_index is not None:
            d["arrayProperties"] = {"index": job.array_index}
        return d

    def _status_summary(self, job: Job) -> dict[str, int]:
        summary = dict.fromkeys(("STARTING", "FAILED", "RUNNING", "SUCCEEDED", "RUNNABLE", "SUBMITTED", "PENDING"), 0)
        for c in job.children:
            summary[c.status] += 1
        return summary

    def summary(self, job: Job) -> dict[str, Any]:
        """A ListJobs summary: no command (DESIGN §3: DescribeJobs is needed for that)."""
        s: dict[str, Any] = {
            "jobArn": self.arn("job", job.job_id),
            "jobId": job.job_id,
            "jobName": job.name,
            "createdAt": ms(job.created),
            "status": job.status,
            "jobDefinition": job.job_definition,
        }
        if job.status_reason is not None:
            s["statusReason"] = job.status_reason
        if job.started is not None:
            s["startedAt"] = ms(job.started)
        if job.stopped is not None:
            s["stoppedAt"] = ms(job.stopped)
        if job.status in TERMINAL and "exitCode" in job.container:
            s["container"] = {"exitCode": job.container["exitCode"]}
        if job.array_size is not None:
            s["arrayProperties"] = {"size": job.array_size}
        elif job.array_index is not None:
            s["arrayProperties"] = {"index": job.array_index}
        if job.is_cancelled:
            s["isCancelled"] = True
        if job.is_terminated:
            s["isTerminated"] = True
        return s

    # --- API: compute environments, queues, job definitions -------------------------

    def create_compute_environment(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["computeEnvironmentName"]
        if not _NAME.match(name):
            raise client_error(
                f"Compute environment name {name!r} is invalid: up to 128 letters, numbers, hyphens and underscores, starting with a letter or number"
            )
        if name in self.ces:
            raise client_error(f"Object already exists: compute environment {name}")
        resources = p.get("computeResources")
        ctype = p.get("type", "MANAGED")
        if ctype == "MANAGED":
            if not resources:
                raise client_error("computeResources is required for a MANAGED compute environment")
            capacity = float(resources.get("maxvCpus", 256))
        else:
            capacity = float(p.get("unmanagedvCpus") or 256)
        arn = self.arn("compute-environment", name)
        detail = {
            "computeEnvironmentName": name,
            "computeEnvironmentArn": arn,
            "ecsClusterArn": f"arn:aws:ecs:{self.region}:{self.account_id}:cluster/{job_queue_cluster_name(name)}",
            "tags": dict(p.get("tags") or {}),
            "type": ctype,
            "state": p.get("state", "ENABLED"),
            "status": "VALID",
            "statusReason": "ComputeEnvironment Healthy",
            "serviceRole": p.get("serviceRole", self.arn_iam("AWSBatchServiceRole")),
        }
        if resources:
            detail["computeResources"] = resources
        if p.get("tags"):
            self.tags[arn] = dict(p["tags"])
        self.ces[name] = ComputeEnv(name, arn, detail, capacity)
        return {"computeEnvironmentName": name, "computeEnvironmentArn": arn}

    def arn_iam(self, role: str) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{role}"

    def describe_compute_environments(self, p: dict[str, Any]) -> dict[str, Any]:
        wanted = p.get("computeEnvironments") or None
        items = list(self.ces.values())
        if wanted:
            found = [self.find_ce(w) for w in wanted]
            items = [c for c in found if c is not None]
        page, token = _page(items, p, 100)
        out = []
        for c in page:
            d = dict(c.detail)
            d["tags"] = dict(self.tags.get(c.arn, {}))
            out.append(d)
        return _with_token({"computeEnvironments": out}, token)

    def create_job_queue(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["jobQueueName"]
        if not _NAME.match(name):
            raise client_error(f"Job queue name {name!r} is invalid: up to 128 letters, numbers, hyphens and underscores")
        if name in self.queues:
            raise client_error(f"Object already exists: job queue {name}")
        order = sorted(p.get("computeEnvironmentOrder") or [], key=lambda o: o.get("order", 0))
        ce: ComputeEnv | None = None
        for o in order:
            found = self.find_ce(o.get("computeEnvironment", ""))
            if found is None:
                raise client_error(f"Compute environment {o.get('computeEnvironment')} does not exist")
            ce = ce or found
        arn = self.arn("job-queue", name)
        detail = {
            "jobQueueName": name,
            "jobQueueArn": arn,
            "state": p.get("state", "ENABLED"),
            "status": "VALID",
            "statusReason": "JobQueue Healthy",
            "priority": p["priority"],
            "computeEnvironmentOrder": [
                {"order": o.get("order", 0), "computeEnvironment": self.find_ce(o["computeEnvironment"]).arn}  # type: ignore[union-attr]
                for o in order
            ],
            "tags": dict(p.get("tags") or {}),
        }
        if p.get("tags"):
            self.tags[arn] = dict(p["tags"])
        self.queues[name] = JobQueue(name, arn, detail, ce)
        return {"jobQueueName": name, "jobQueueArn": arn}

    def describe_job_queues(self, p: dict[str, Any]) -> dict[str, Any]:
        wanted = p.get("jobQueues") or None
        items = list(self.queues.values())
        if wanted:
            found = [self.find_queue(w) for w in wanted]
            items = [q for q in found if q is not None]
        page, token = _page(items, p, 100)
        out = []
        for q in page:
            d = dict(q.detail)
            d["tags"] = dict(self.tags.get(q.arn, {}))
            out.append(d)
        return _with_token({"jobQueues": out}, token)

    def register_job_definition(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["jobDefinitionName"]
        if not _NAME.match(name):
            raise client_error(f"Job definition name {name!r} is invalid: up to 128 letters, numbers, hyphens and underscores")
        revs = self.jobdefs.setdefault(name, [])
        rev = len(revs) + 1
        arn = self.arn("job-definition", f"{name}:{rev}")
        d = {k: v for k, v in p.items() if v is not None}
        d.update({"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": rev, "status": "ACTIVE"})
        d.setdefault("containerOrchestrationType", "ECS")
        revs.append(d)
        if p.get("tags"):
            self.tags[arn] = dict(p["tags"])
        return {"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": rev}

    def describe_job_definitions(self, p: dict[str, Any]) -> dict[str, Any]:
        items: list[dict[str, Any]]
        if p.get("jobDefinitions"):
            items = []
            for ref in p["jobDefinitions"]:
                name = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
                if ":" in name:
                    found = self.find_jobdef(ref)
                    if found is not None:
                        items.append(found)
                else:
                    items.extend(self.jobdefs.get(name, []))
        else:
            items = [d for revs in self.jobdefs.values() for d in revs]
        if p.get("jobDefinitionName"):
            items = [d for d in items if d["jobDefinitionName"] == p["jobDefinitionName"]]
        if p.get("status"):
            items = [d for d in items if d.get("status") == p["status"]]
        page, token = _page(items, p, 100)
        return _with_token({"jobDefinitions": [dict(d) for d in page]}, token)

    # --- API: jobs --------------------------------------------------------------------

    def submit_job(self, p: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        name = p["jobName"]
        if not _NAME.match(name):
            raise client_error(
                f"Job name {name!r} is invalid: it can be up to 128 characters long, must start with a letter or number, "
                "and can contain letters, numbers, hyphens (-) and underscores (_)"
            )
        queue = self.find_queue(p["jobQueue"])
        if queue is None:
            raise client_error(f"Job Queue {p['jobQueue']} does not exist")
        if queue.detail.get("state") != "ENABLED":
            raise client_error(f"Job Queue {queue.name} is DISABLED: it accepts no new jobs")
        jobdef = self.find_jobdef(p["jobDefinition"])
        if jobdef is None:
            raise client_error(f"Job Definition {p['jobDefinition']} does not exist")
        container = _merge_container(jobdef.get("containerProperties") or {}, p.get("containerOverrides") or {})
        retry = p.get("retryStrategy") or jobdef.get("retryStrategy")
        if retry is not None:
            n = retry.get("attempts", 1)
            if not 1 <= int(n) <= 10:
                raise client_error(f"retryStrategy.attempts {n} is out of range: use 1 to 10")
            if len(retry.get("evaluateOnExit") or ()) > 5:
                raise client_error("retryStrategy.evaluateOnExit accepts up to 5 conditions")
            for cond in retry.get("evaluateOnExit") or ():
                if str(cond.get("action", "")).upper() not in ("RETRY", "EXIT"):
                    raise client_error("evaluateOnExit.action must be RETRY or EXIT")
        timeout_spec = p.get("timeout") or jobdef.get("timeout")
        timeout: float | None = None
        if timeout_spec and timeout_spec.get("attemptDurationSeconds") is not None:
            timeout = float(timeout_spec["attemptDurationSeconds"])
            if timeout < 60:
                raise client_error("timeout.attemptDurationSeconds must be at least 60 seconds")
        size = (p.get("arrayProperties") or {}).get("size")
        if size is not None and not 2 <= size <= 10000:
            raise client_error(f"arrayProperties.size {size} is out of range: use 2 to 10000")
        extra: dict[str, Any] = {}
        for key in ("dependsOn", "propagateTags", "schedulingPriority", "shareIdentifier"):
            if p.get(key) is not None:
                extra[key] = p[key]
        if jobdef.get("platformCapabilities"):
            extra["platformCapabilities"] = jobdef["platformCapabilities"]
        params = dict(jobdef.get("parameters") or {})
        params.update(p.get("parameters") or {})
        job = self._new_job(
            self.new_job_id(), name, queue, jobdef["jobDefinitionArn"], now, container,
            retry=retry, timeout=timeout, tags=dict(p.get("tags") or {}), params=params, extra=extra,
        )
        if size is not None:
            job.array_size = size
            for i in range(size):
                child_container = dict(container)
                env = [e for e in child_container.get("environment", []) if e.get("name") != "AWS_BATCH_JOB_ARRAY_INDEX"]
                child_container["environment"] = [*env, {"name": "AWS_BATCH_JOB_ARRAY_INDEX", "value": str(i)}]
                child = self._new_job(
                    f"{job.job_id}:{i}", name, queue, job.job_definition, now, child_container,
                    retry=retry, timeout=timeout, tags=dict(job.tags), params=params, extra=dict(extra), top=False,
                )
                child.array_index = i
                child.parent = job
                job.children.append(child)
            job.open_children = size
        return {"jobArn": self.arn("job", job.job_id), "jobName": name, "jobId": job.job_id}

    def _new_job(
        self, job_id: str, name: str, queue: JobQueue, jobdef_arn: str, now: float, container: dict[str, Any], *,
        retry: dict[str, Any] | None, timeout: float | None, tags: dict[str, str], params: dict[str, str],
        extra: dict[str, Any], top: bool = True,
    ) -> Job:
        duration, exit_code = parse_command(container.get("command"))
        job = Job(
            output=parse_output(container.get("command")),
            job_id=job_id, name=name, queue=queue, job_definition=jobdef_arn, created=now,
            container=container, vcpus=_vcpus(container), retry_strategy=retry, timeout=timeout,
            tags=tags, parameters=params, extra=extra,
            duration=DEFAULT_DURATION if duration is None else duration,
            exit_code=0 if exit_code is None else exit_code,
        )
        self.jobs[job_id] = job
        if top:
            queue.jobs.append(job)
        self._push(job, now + self.clock.span(SUBMITTED_DELAY), "to_pending")
        return job

    def describe_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        ids = p["jobs"]
        if len(ids) > 100:
            raise client_error(f"Too many jobs: {len(ids)} job ids were given, DescribeJobs accepts at most 100")
        out = []
        seen: set[str] = set()
        for ref in ids:
            job = self.find_job(ref)
            # DescribeJobs drops unknown ids silently (DESIGN §3; nextflow-io/nextflow#7301).
            if job is not None and job.job_id not in seen:
                seen.add(job.job_id)
                out.append(self.describe(job))
        return {"jobs": out}

    def list_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        filters = p.get("filters") or []
        if len(filters) > 1:
            raise client_error("Only one filter can be used at a time")
        source: list[Job]
        if p.get("arrayJobId"):
            parent = self.find_job(p["arrayJobId"])
            if parent is None or parent.array_size is None:
                raise client_error(f"Array job {p['arrayJobId']} does not exist")
            source = parent.children
        elif p.get("multiNodeJobId"):
            raise client_error(f"Multi-node job {p['multiNodeJobId']} does not exist")
        elif p.get("jobQueue"):
            queue = self.find_queue(p["jobQueue"])
            if queue is None:
                raise client_error(f"Job Queue {p['jobQueue']} does not exist")
            source = queue.jobs
        else:
            raise client_error("jobQueue, arrayJobId or multiNodeJobId must be specified")
        limit = 100 if filters else 1000
        max_results = p.get("maxResults") or limit
        if max_results < 1:
            raise client_error(f"maxResults {max_results} must be at least 1")
        max_results = min(max_results, limit)
        match = _job_filter(filters[0]) if filters else _status_filter(p.get("jobStatus") or "RUNNING")
        fingerprint = _fingerprint(p)
        start = 0
        if p.get("nextToken"):
            start = _decode_token(p["nextToken"], fingerprint)
        out: list[dict[str, Any]] = []
        i = start
        n = len(source)
        while i < n and len(out) < max_results:
            job = source[i]
            i += 1
            if match(job) and self.visible(job):
                out.append(self.summary(job))
        body: dict[str, Any] = {"jobSummaryList": out}
        if i < n and any(match(j) for j in itertools.islice(source, i, None)):
            body["nextToken"] = _encode_token(i, fingerprint)
        return body

    def terminate_job(self, p: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        reason = _reason(p)
        job = self.find_job(p["jobId"])
        if job is not None:  # an unknown job is a success, as TerminateJobs documents
            self.terminate(job, reason, now)
        return {}

    def cancel_job(self, p: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        reason = _reason(p)
        job = self.find_job(p["jobId"])
        if job is not None:
            self.cancel(job, reason, now)
        return {}

    def bulk(
        self, p: dict[str, Any], action: str, fail: Callable[[str], str | None] | None = None
    ) -> dict[str, Any]:
        """TerminateJobs / CancelJobs: up to 50 ids; HTTP 200 with per-job errors; unknown = success.

        ``fail(job_id)`` returns an error code for a job the service "could not process"
        this time (an injected per-job error: reported, not applied, not retried by the SDK).
        """
        ids = p["jobs"]
        if len(ids) > 50:
            raise client_error(f"Too many jobs: {len(ids)} job ids were given, at most 50 are accepted")
        reason = _reason(p)
        now = self.clock.now()
        ok: list[str] = []
        errors: list[dict[str, str]] = []
        for ref in ids:
            code = fail(ref) if fail is not None else None
            if code is not None:
                errors.append({"job": ref, "code": code, "message": f"{code}: the job was not processed, try again"})
                continue
            job = self.find_job(ref)
            if job is not None:
                if action == "terminate":
                    self.terminate(job, reason, now)
                else:
                    self.cancel(job, reason, now)
            ok.append(ref)
        return {"successful": ok, "errors": errors}

    def tag_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["resourceArn"]
        tags = self._tags_of(arn)
        tags.update(p["tags"])
        return {}

    def untag_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        tags = self._tags_of(p["resourceArn"])
        for k in p.get("tagKeys") or []:
            tags.pop(k, None)
        return {}

    def list_tags_for_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"tags": dict(self._tags_of(p["resourceArn"]))}

    def _tags_of(self, arn: str) -> dict[str, str]:
        if ":job/" in arn:
            job = self.find_job(arn)
            if job is None:
                raise client_error(f"Resource {arn} does not exist")
            return job.tags
        known = {c.arn for c in self.ces.values()} | {q.arn for q in self.queues.values()}
        known |= {d["jobDefinitionArn"] for revs in self.jobdefs.values() for d in revs}
        if arn not in known:
            raise client_error(f"Resource {arn} does not exist")
        return self.tags.setdefault(arn, {})

    # --- iteration ---------------------------------------------------------------------

    def iter_jobs(self) -> Iterator[Job]:
        return (j for j in self.jobs.values() if self.visible(j))

    # --- state --------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        sim: dict[str, Any] = {}
        for job in self.iter_jobs():
            s: dict[str, Any] = {"duration": job.duration, "exitCode": job.exit_code, "vcpus": job.vcpus}
            if job.next_event is not None:
                s["nextEvent"] = list(job.next_event)
                s["endKind"] = job.end_kind
            if job.attempt_start is not None:
                s["attemptStart"] = job.attempt_start
            if job.running_since is not None:
                s["runningSince"] = job.running_since
            if job.kill_reason is not None:
                s["killReason"] = job.kill_reason
            sim[job.job_id] = s
        return {
            "version": 1,
            "now": self.clock.now(),
            "region": self.region,
            "accountId": self.account_id,
            "spotInterruptionRate": self.spot_interruption_rate,
            "terminateDelay": self.terminate_delay,
            "computeEnvironments": [dict(c.detail) | {"tags": dict(self.tags.get(c.arn, {}))} for c in self.ces.values()],
            "jobQueues": [dict(q.detail) | {"tags": dict(self.tags.get(q.arn, {}))} for q in self.queues.values()],
            "jobDefinitions": [dict(d) for revs in self.jobdefs.values() for d in revs],
            "jobs": [self.describe(j) for j in self.iter_jobs()],
            "simulation": sim,
            # The FIFO of each compute environment, so a reload starts jobs in the same order.
            "runnable": {c.name: [j.job_id for j in c.runnable if j.status == "RUNNABLE"] for c in self.ces.values()},
        }

    def load(self, state: dict[str, Any] | list[Any], duration: float | None = None) -> int:
        """Seed from dump() output or a saved ``aws batch describe-jobs`` answer; returns jobs loaded."""
        if isinstance(state, list):
            state = {"jobs": state}
        if not isinstance(state, dict) or not isinstance(state.get("jobs", []), list):
            raise ValueError('state must be {"jobs": [...]} (describe-jobs JSON) or LocalBatch.dump_state() output')
        if state.get("now") is not None:
            self.clock.set(float(state["now"]))
        if state.get("spotInterruptionRate") is not None:
            self.spot_interruption_rate = float(state["spotInterruptionRate"])
        if state.get("terminateDelay") is not None:
            self.terminate_delay = float(state["terminateDelay"])
        for ce in state.get("computeEnvironments") or []:
            if ce["computeEnvironmentName"] not in self.ces:
                p = {k: ce[k] for k in ("computeEnvironmentName", "type", "state", "computeResources", "serviceRole", "tags") if k in ce}
                self.create_compute_environment(p)
        for q in state.get("jobQueues") or []:
            if q["jobQueueName"] not in self.queues:
                p = {k: q[k] for k in ("jobQueueName", "state", "priority", "computeEnvironmentOrder", "tags") if k in q}
                p.setdefault("priority", 1)
                self.create_job_queue(p)
        for d in state.get("jobDefinitions") or []:
            revs = self.jobdefs.setdefault(d["jobDefinitionName"], [])
            rev = int(d.get("revision", len(revs) + 1))
            while len(revs) < rev - 1:  # keep revision numbers as given
                revs.append({"jobDefinitionName": d["jobDefinitionName"], "revision": len(revs) + 1,
                             "jobDefinitionArn": self.arn("job-definition", f"{d['jobDefinitionName']}:{len(revs) + 1}"),
                             "status": "INACTIVE", "type": "container"})
            if len(revs) < rev:
                revs.append(dict(d))
        sim = state.get("simulation") or {}
        fallback = DEFAULT_LOADED_DURATION if duration is None else float(duration)
        loaded = [self._load_job(j, sim.get(j.get("jobId")), fallback) for j in state.get("jobs", [])]
        now = self.clock.now()
        # Resume what holds vCPUs first, then the RUNNABLE jobs in their dumped FIFO order,
        # so capacity is counted before anything new starts.
        for job in loaded:
            if job.status != "RUNNABLE":
                self._resume(job, sim.get(job.job_id), now)
        order = {jid: k for k, jid in enumerate(i for ids in (state.get("runnable") or {}).values() for i in ids)}
        waiting = sorted((j for j in loaded if j.status == "RUNNABLE"), key=lambda j: order.get(j.job_id, len(order)))
        for job in waiting:
            self._resume(job, sim.get(job.job_id), now)
        # Link array children to their parents once every job exists.
        for job in loaded:
            if ":" in job.job_id and job.array_index is not None:
                parent = self.jobs.get(job.job_id.rsplit(":", 1)[0])
                if parent is not None and job.parent is not parent:
                    job.parent = parent
                    parent.children.append(job)
                    if job.status in TERMINAL:
                        parent.failed_children += job.status == "FAILED"
                    else:
                        parent.open_children += 1
        for q in self.queues.values():
            q.jobs = [j for j in q.jobs if self.jobs.get(j.job_id) is j]
            q.jobs.sort(key=lambda j: (j.created, j.job_id))
        return len(loaded)

    def _ensure_queue(self, ref: str) -> JobQueue:
        queue = self.find_queue(ref)
        if queue is not None:
            return queue
        name = ref.rsplit("/", 1)[-1]
        ce_name = f"{name}-ce"
        if ce_name not in self.ces:
            self.create_compute_environment(
                {"computeEnvironmentName": ce_name, "type": "MANAGED", "computeResources": {"type": "EC2", "maxvCpus": 100000}}
            )
        self.create_job_queue({"jobQueueName": name, "priority": 1, "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": ce_name}]})
        return self.queues[name]

    def _load_job(self, d: dict[str, Any], sim: dict[str, Any] | None, fallback: float) -> Job:
        if not isinstance(d, dict) or not d.get("jobId") or not d.get("jobQueue"):
            raise ValueError(f"a loaded job needs at least jobId and jobQueue: {json.dumps(d)[:200]}")
        now = self.clock.now()
        queue = self._ensure_queue(d["jobQueue"])
        status = d.get("status", "SUBMITTED")
        if status not in ACTIVE | TERMINAL:
            raise ValueError(f"job {d['jobId']}: unknown status {status!r}")
        container = dict(d.get("container") or {})
        known = {"jobArn", "jobName", "jobId", "jobQueue", "status", "statusReason", "attempts", "createdAt",
                 "startedAt", "stoppedAt", "jobDefinition", "parameters", "container", "tags", "retryStrategy",
                 "timeout", "isCancelled", "isTerminated", "arrayProperties"}
        extra = {k: v for k, v in d.items() if k not in known}
        duration, exit_code = parse_command(container.get("command"))
        timeout = (d.get("timeout") or {}).get("attemptDurationSeconds")
        old = self.jobs.get(d["jobId"])
        if old is not None:
            # The loaded record replaces the old one; the old object may still sit in a FIFO.
            self._cancel_event(old)
            old.forgotten = True
            self._release(old, now)  # its queue list entry is dropped once loading is done
        job = Job(
            job_id=d["jobId"], name=str(d.get("jobName") or d["jobId"]), queue=queue,
            job_definition=d.get("jobDefinition", self.arn("job-definition", "unknown:1")),
            created=(d.get("createdAt") or now * 1000) / 1000.0, container=container, vcpus=_vcpus(container),
            status=status, status_reason=d.get("statusReason"),
            started=None if d.get("startedAt") is None else d["startedAt"] / 1000.0,
            stopped=None if d.get("stoppedAt") is None else d["stoppedAt"] / 1000.0,
            attempts=[dict(a) for a in d.get("attempts") or []], retry_strategy=d.get("retryStrategy"),
            timeout=None if timeout is None else float(timeout), tags=dict(d.get("tags") or {}),
            parameters=dict(d.get("parameters") or {}), extra=extra,
            duration=fallback if duration is None else duration,
            exit_code=0 if exit_code is None else exit_code,
            is_cancelled=bool(d.get("isCancelled")), is_terminated=bool(d.get("isTerminated")),
        )
        arr = d.get("arrayProperties") or {}
        if arr.get("size") is not None:
            job.array_size = int(arr["size"])
        if arr.get("index") is not None:
            job.array_index = int(arr["index"])
        self.jobs[job.job_id] = job
        if job.array_index is None or ":" not in job.job_id:
            queue.jobs.append(job)
        if sim:
            job.duration = float(sim.get("duration", job.duration))
            job.exit_code = int(sim.get("exitCode", job.exit_code))
            job.vcpus = float(sim.get("vcpus", job.vcpus))
            job.attempt_start = sim.get("attemptStart")
            job.running_since = sim.get("runningSince")
            job.end_kind = sim.get("endKind")
            job.kill_reason = sim.get("killReason")
        return job

    def _resume(self, job: Job, sim: dict[str, Any] | None, now: float) -> None:
        """Put a loaded active job back on the lifecycle."""
        if job.status in TERMINAL:
            return
        ce = job.queue.ce
        if job.status in ("STARTING", "RUNNING") and ce is not None:
            ce.used += job.vcpus  # may exceed capacity: what was running keeps running
            job.holds_vcpus = True
        nxt = (sim or {}).get("nextEvent")
        if nxt is not None:
            self._push(job, float(nxt[0]), str(nxt[1]))
            return
        if job.status == "SUBMITTED":
            self._push(job, now + self.clock.span(SUBMITTED_DELAY), "to_pending")
        elif job.status == "PENDING":
            if job.array_size is None:
                self._push(job, now + self.clock.span(PENDING_DELAY), "to_runnable")
        elif job.status == "RUNNABLE":
            self._make_runnable(job, now)
        elif job.status == "STARTING":
            job.attempt_start = job.attempt_start or now
            self._push(job, now + self.clock.span(STARTING_DELAY), "to_running")
        elif job.status == "RUNNING":
            # An incident replayed offline: a job loaded RUNNING runs for its full duration from now,
            # so the orphans of a captured incident are still there to find.
            job.attempt_start = job.attempt_start or now
            job.running_since = now
            started = job.started
            self._plan_end(job, spot_roll=False)
            if started is not None:
                job.started = started


def job_queue_cluster_name(ce_name: str | None) -> str:
    """The ECS cluster Batch makes for a compute environment: ``<name>_Batch_<uuid>``."""
    return f"{ce_name or 'LocalBatch'}_Batch_{uuid.uuid4()}"


def _merge_container(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
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


def _vcpus(container: dict[str, Any]) -> float:
    for r in container.get("resourceRequirements") or ():
        if r.get("type") == "VCPU":
            try:
                return float(r.get("value", 1))
            except ValueError:
                raise client_error(f"resourceRequirements VCPU value {r.get('value')!r} is not a number") from None
    v = container.get("vcpus")
    return float(v) if v else 1.0


def _reason(p: dict[str, Any]) -> str:
    reason = p["reason"]
    if len(reason) > 1024:
        raise client_error(f"reason is {len(reason)} characters long: the limit is 1024")
    return str(reason)


def _status_filter(status: str) -> Any:
    return lambda job: job.status == status


def _job_filter(f: dict[str, Any]) -> Any:
    name = f.get("name")
    values = f.get("values") or []
    if name not in ("JOB_NAME", "JOB_DEFINITION", "BEFORE_CREATED_AT", "AFTER_CREATED_AT") or len(values) != 1:
        raise client_error(
            "filters: name must be JOB_NAME, JOB_DEFINITION, BEFORE_CREATED_AT or AFTER_CREATED_AT, with exactly one value"
        )
    value = str(values[0])
    if name == "JOB_NAME":
        # Case-insensitive; a trailing * matches a prefix.
        v = value.lower()
        if v.endswith("*"):
            prefix = v[:-1]
            return lambda job: job.name.lower().startswith(prefix)
        return lambda job: job.name.lower() == v
    if name == "JOB_DEFINITION":
        def by_def(job: Job) -> bool:
            arn = job.job_definition
            short = arn.rsplit("/", 1)[-1]
            cands = (arn, short, short.split(":")[0])
            if value.endswith("*"):
                return any(c.startswith(value[:-1]) for c in cands)
            return value in cands
        return by_def
    try:
        bound = int(value) / 1000.0
    except ValueError:
        raise client_error(f"filters: {name} value {value!r} must be epoch milliseconds") from None
    if name == "BEFORE_CREATED_AT":
        return lambda job: job.created < bound
    return lambda job: job.created > bound


def _fingerprint(p: dict[str, Any]) -> str:
    key = {k: p.get(k) for k in ("jobQueue", "arrayJobId", "jobStatus", "filters")}
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _encode_token(index: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"i": index, "f": fingerprint}).encode()).decode()


def _decode_token(token: str, fingerprint: str) -> int:
    try:
        d = json.loads(base64.urlsafe_b64decode(token.encode()))
        if d["f"] != fingerprint:
            raise ValueError
        return int(d["i"])
    except (ValueError, KeyError, TypeError):
        raise client_error("Invalid nextToken: it belongs to another query, or is corrupted") from None


def _page(items: list[Any], p: dict[str, Any], default: int) -> tuple[list[Any], str | None]:
    fingerprint = "page"
    start = _decode_token(p["nextToken"], fingerprint) if p.get("nextToken") else 0
    size = p.get("maxResults") or default
    end = start + size
    return items[start:end], (_encode_token(end, fingerprint) if end < len(items) else None)


def _with_token(body: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token is not None:
        body["nextToken"] = token
    return body
