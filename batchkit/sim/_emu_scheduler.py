"""The emulator's lifecycle: a clock, an event queue, and what moves a job from state to state.

Pure and single-threaded by design: the HTTP layer holds one lock around every call.
Time comes from an ``EmuClock``; the lifecycle is an event queue evaluated lazily up to
"now" at the start of each call, so 10,000 jobs cost nothing while nobody looks and a
DescribeJobs of 100 ids touches only those 100 jobs.

Lifecycle: SUBMITTED -(1 s)-> PENDING -(1 s, and every dependsOn job SUCCEEDED)->
RUNNABLE -(vCPUs free on one of the queue's compute environments, tried in
computeEnvironmentOrder)-> STARTING -(1 s)-> RUNNING -(duration)-> SUCCEEDED / FAILED.
Each try is an entry of ``attempts[]``; ``retryStrategy`` (attempts, evaluateOnExit)
decides whether a failed try goes back to RUNNABLE.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import os
import random
import time
from typing import Any, Final

from ._emu_logs import LogWrite
from ._emu_resources import (
    ACTIVE,
    CANCELLABLE,
    DEPENDENCY_FAILED,
    ESSENTIAL_EXITED,
    TERMINAL,
    TIMEOUT_REASON,
    ComputeEnv,
    Job,
    JobQueue,
    Naming,
    glob_match,
    ms,
)

# Fixed delays of the early states, in emulator seconds.
SUBMITTED_DELAY: Final = 1.0
PENDING_DELAY: Final = 1.0
STARTING_DELAY: Final = 1.0


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
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"clock speed {speed!r} must be a finite number > 0")
        if start_time is not None and not math.isfinite(start_time):
            raise ValueError(f"start_time {start_time!r} must be a finite epoch time")
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
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"cannot move the clock by {seconds!r} s: give a finite number >= 0")
        self._manual_now += seconds

    def set(self, when: float) -> None:
        """Jump to ``when`` (restoring a dumped state); never moves backwards."""
        if not math.isfinite(when):
            raise ValueError(f"clock time {when!r} must be finite")
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
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"clock speed {speed!r} must be a finite number > 0")
        self._start, self._t0 = self.now(), time.monotonic()
        self.speed, self.manual = speed, False


class Scheduler:
    """Job lifecycle over compute environments: placement, attempts, retries, kills."""

    def __init__(self, clock: EmuClock, naming: Naming, *, seed: int = 0) -> None:
        self.clock = clock
        self.naming = naming
        self.rng = random.Random(seed)
        # Ids (ECS task ids, job ids) come from the system's entropy, not the seed: they stay
        # unique across emulator restarts, as AWS's are. One generator, not uuid4() per id:
        # a 10,000-job lifecycle spends most of its time naming tasks otherwise.
        self.ids = random.Random(os.urandom(32))
        self.spot_interruption_rate = 0.0
        #: Seconds after which a finished job ages out of every answer (real Batch:
        #: about a week); None keeps every job.
        self.retention: float | None = None
        #: Seconds a STARTING/RUNNING job keeps its state after TerminateJob before it is
        #: FAILED (real Batch takes a few seconds to stop the container); 0 = at once.
        self.terminate_delay = 0.0
        #: Job output waiting to be written to CloudWatch Logs (None: no logs endpoint, keep nothing).
        self.log_outbox: list[LogWrite] | None = None
        #: every job queue, by name (the backend creates them; placement reads them)
        self.queues: dict[str, JobQueue] = {}
        self._events: list[tuple[float, int, Job, int, str]] = []
        self._seq = itertools.count()

    # --- the event queue ----------------------------------------------------------

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
        return now

    def _push(self, job: Job, when: float, kind: str) -> None:
        job.gen += 1
        job.next_event = (when, kind)
        heapq.heappush(self._events, (when, next(self._seq), job, job.gen, kind))

    def _cancel_event(self, job: Job) -> None:
        job.gen += 1
        job.next_event = None

    def enter(self, job: Job, now: float) -> None:
        """A new job enters the lifecycle as SUBMITTED."""
        self._push(job, now + self.clock.span(SUBMITTED_DELAY), "to_pending")

    def _fire(self, job: Job, kind: str, t: float) -> None:
        if kind == "to_pending":
            job.status = "PENDING"
            if job.array_size is not None:
                return  # an array parent waits in PENDING for its children
            self._push(job, t + self.clock.span(PENDING_DELAY), "to_runnable")
        elif kind == "to_runnable":
            self._leave_pending(job, t)
        elif kind == "to_running":
            self._run(job, t)
        elif kind == "end":
            self._end_attempt(job, t, job.end_kind or "exit")
        elif kind == "kill":
            self._kill_now(job, job.kill_reason or "Terminated", t)

    # --- dependencies ---------------------------------------------------------------

    def _leave_pending(self, job: Job, t: float) -> None:
        """PENDING -> RUNNABLE once every dependency SUCCEEDED; FAILED if one failed.

        dependsOn: "A job can depend upon a maximum of 20 jobs"; a job waits in PENDING
        for them (JobDetail.status docs) and fails when one of them fails.
        """
        if job.cancel_reason is not None and job.array_size is None:
            # CancelJob: "A PENDING job is cancelled after all dependency jobs are completed."
            if all(d.status in TERMINAL for d in job.depends_on):
                job.is_cancelled = True
                self._finish(job, "FAILED", job.cancel_reason, t)
            else:
                job.held = True
            return
        if any(d.status == "FAILED" for d in job.depends_on):
            self._finish(job, "FAILED", DEPENDENCY_FAILED, t)
            return
        if any(d.status != "SUCCEEDED" for d in job.depends_on):
            job.held = True
            return
        job.held = False
        self._make_runnable(job, t)

    def _notify_dependents(self, job: Job, t: float) -> None:
        for dep in list(job.dependents):
            if dep.held and dep.status == "PENDING":
                self._leave_pending(dep, t)

    # --- placement --------------------------------------------------------------------

    def _make_runnable(self, job: Job, t: float) -> None:
        job.status = "RUNNABLE"
        queue = job.queue
        if not queue.ces:
            return  # a queue without a compute environment never starts anything
        if job.vcpus > max(ce.capacity for ce in queue.ces) + 1e-9:
            # Real Batch leaves such a job RUNNABLE forever; it must not block the queue.
            queue.stuck.append(job)
            return
        queue.runnable.append(job)
        self._schedule(queue, t)

    def _retry_stuck(self, queue: JobQueue, t: float) -> None:
        """Place again the queue's jobs too big for every compute environment it had, after
        its CEs or their bounds changed (they stay RUNNABLE, and stuck, if still too big)."""
        stuck, queue.stuck = queue.stuck, []
        for job in stuck:
            if job.status == "RUNNABLE":
                self._make_runnable(job, t)

    def _schedule(self, queue: JobQueue, t: float) -> None:
        """Start the queue's RUNNABLE jobs in FIFO order while one of its compute
        environments has room, trying them "in ascending order" (ComputeEnvironmentOrder)."""
        q = queue.runnable
        while q:
            head = q[0]
            if head.status != "RUNNABLE" or head.holds_vcpus or head.forgotten:
                q.popleft()  # cancelled/terminated/replaced while waiting
                continue
            ce = next((c for c in queue.ces if c.enabled and c.used + head.vcpus <= c.capacity + 1e-9), None)
            if ce is None:
                return  # FIFO: the head waits for capacity
            q.popleft()
            self._start_attempt(head, ce, t)

    def queues_on(self, ce: ComputeEnv) -> list[JobQueue]:
        """The queues that place jobs on ``ce``, highest priority first ("Job queues with a
        higher priority ... are evaluated first when associated with the same compute environment")."""
        on = [q for q in self.queues.values() if any(c is ce for c in q.ces)]
        return sorted(on, key=lambda q: -q.priority)

    def _release(self, job: Job, t: float) -> None:
        ce, job.ce = job.ce, None
        if ce is None:
            return
        ce.used = max(0.0, ce.used - job.vcpus)
        for queue in self.queues_on(ce):
            self._schedule(queue, t)

    # --- attempts --------------------------------------------------------------------

    def _start_attempt(self, job: Job, ce: ComputeEnv, t: float) -> None:
        ce.used += job.vcpus
        job.ce = ce
        job.status = "STARTING"
        job.status_reason = None
        job.attempt_start = t
        job.running_since = None
        job.started = None
        # "Each container attempt receives a task ARN when they reach the STARTING status"
        # (ContainerDetail.taskArn). The top-level container describes the current attempt,
        # so the previous attempt's exit code and log stream go (they stay in attempts[]).
        job.task_id = self.new_hex()
        job.instance_arn = self.naming.ecs("container-instance", f"{ce.cluster}/{self.new_hex()}")
        for key in ("exitCode", "reason", "logStreamName"):
            job.container.pop(key, None)
        job.container["taskArn"] = self._task_arn(job)
        job.container["containerInstanceArn"] = job.instance_arn
        self._push(job, t + self.clock.span(STARTING_DELAY), "to_running")

    def new_hex(self) -> str:
        """32 random hex digits: an ECS task id."""
        return f"{self.ids.getrandbits(128):032x}"

    def _run(self, job: Job, t: float) -> None:
        job.status = "RUNNING"
        job.running_since = t
        # "Each container attempt receives a log stream name when they reach the RUNNING
        # status" (ContainerDetail.logStreamName).
        stream = self._log_stream(job)
        job.container["logStreamName"] = stream
        if self.log_outbox is not None:
            self.log_outbox.append(LogWrite(stream, tuple((ms(t) or 0, line) for line in job.output)))
        self._plan_end(job)

    def _task_arn(self, job: Job) -> str:
        # arn:aws:ecs:<region>:<account>:task/<cluster name>/<32 hex task id>
        ce = job.ce or (job.queue.ces[0] if job.queue.ces else None)
        cluster = ce.cluster if ce is not None else "LocalBatch"
        return self.naming.ecs("task", f"{cluster}/{job.task_id}")

    def _log_stream(self, job: Job) -> str:
        # <jobDefinitionName>/default/<ecs task id>: the stream name Batch gives each attempt.
        return f"{job.job_definition_name}/default/{job.task_id}"

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

    def _instance_id(self, job: Job) -> str:
        digest = hashlib.sha1(f"{job.job_id}/{len(job.attempts)}".encode()).hexdigest()
        return "i-0" + digest[:16]

    def _attempt_record(self, job: Job, t: float, reason: str, exit_code: int | None) -> dict[str, Any]:
        if job.task_id is None:  # an attempt of a loaded job that started before we knew it
            job.task_id = self.new_hex()
        container: dict[str, Any] = {
            "containerInstanceArn": job.instance_arn
            or self.naming.ecs("container-instance", f"LocalBatch/{self.new_hex()}"),
            "taskArn": self._task_arn(job),
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
        job.held = False
        if job.started is None and job.running_since is not None:
            job.started = job.running_since
        parent = job.parent
        if parent is not None:
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
        self._notify_dependents(job, t)

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
        if job.status in ("SUBMITTED", "PENDING") and any(d.status not in TERMINAL for d in job.depends_on):
            # "A PENDING job is cancelled after all dependency jobs are completed. Therefore, it
            # might take longer than expected to cancel a job in PENDING status." (CancelJob)
            if job.cancel_reason is None:
                job.cancel_reason = reason
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
        if duration is not None and not (math.isfinite(duration) and duration >= 0):
            raise ValueError(f"duration {duration!r} must be a finite number >= 0")
        if exit_code is not None and not 0 <= int(exit_code) <= 255:
            raise ValueError(f"exit_code {exit_code!r} must be 0 to 255")
        for j in (job, *job.children):
            if output is not None:
                j.output = [str(line) for line in output]
                if j.status == "RUNNING" and self.log_outbox is not None and "logStreamName" in j.container:
                    # Already running: its stream exists; the new lines are printed now.
                    t = ms(self.clock.now()) or 0
                    self.log_outbox.append(LogWrite(j.container["logStreamName"], tuple((t, x) for x in j.output)))
            if duration is not None:
                j.duration = float(duration)
            if exit_code is not None:
                j.exit_code = int(exit_code)
            if j.status == "RUNNING" and j.running_since is not None and j.kill_reason is None:
                prev, was_spot = j.next_event, j.end_kind == "spot"
                self._plan_end(j, spot_roll=False, not_before=self.clock.now())
                if was_spot and prev is not None and j.next_event is not None and prev[0] < j.next_event[0]:
                    j.end_kind = "spot"  # a planned spot reclaim still comes first
                    self._push(j, prev[0], "end")

    # --- visibility -------------------------------------------------------------------

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

    # --- restoring ----------------------------------------------------------------------

    def resume(self, job: Job, sim: dict[str, Any] | None, now: float) -> None:
        """Put a loaded active job back on the lifecycle."""
        if job.status in TERMINAL:
            return
        if job.status in ("STARTING", "RUNNING") and job.queue.ces:
            ce = job.queue.ces[0]
            ce.used += job.vcpus  # may exceed capacity: what was running keeps running
            job.ce = ce
        if job.status in ("STARTING", "RUNNING") and job.task_id is None:
            arn = job.container.get("taskArn")
            job.task_id = str(arn).rsplit("/", 1)[-1] if arn else self.new_hex()
            job.container.setdefault("taskArn", self._task_arn(job))
            if job.status == "RUNNING":
                job.container.setdefault("logStreamName", self._log_stream(job))
        nxt = (sim or {}).get("nextEvent")
        if nxt is not None:
            self._push(job, float(nxt[0]), str(nxt[1]))
            return
        span = self.clock.span
        if job.status == "SUBMITTED":
            self._push(job, now + span(SUBMITTED_DELAY), "to_pending")
        elif job.status == "PENDING":
            if job.array_size is None:
                self._push(job, now + span(PENDING_DELAY), "to_runnable")
        elif job.status == "RUNNABLE":
            self._make_runnable(job, now)
        elif job.status == "STARTING":
            job.attempt_start = job.attempt_start or now
            self._push(job, now + span(STARTING_DELAY), "to_running")
        elif job.status == "RUNNING":
            # An incident replayed offline: a job loaded RUNNING runs for its full duration from now,
            # so the orphans of a captured incident are still there to find.
            job.attempt_start = job.attempt_start or now
            job.running_since = now
            started = job.started
            self._plan_end(job, spot_roll=False)
            if started is not None:
                job.started = started
