"""The tracker: polls Batch for one Nextflow run, reconciles, and kills what should not run.

The pure work lives elsewhere (``batchkit.reconcile``); this module only decides *what to
ask* Batch, keeps what it learnt, and carries out kill plans. It polls only what can still
change: the run's recorded job ids and the in-scope jobs it discovered, minus jobs already
seen in a terminal state (Batch never moves a job out of SUCCEEDED/FAILED), plus a scope
discovery on the run's queues restricted to jobs created since the last poll.

AWS failing is a state, not an exception: a refresh that cannot reach Batch keeps the last
good snapshot, marks it degraded and says why (the 500 bursts that killed Nextflow runs in
nextflow-io/nextflow#4709 and #5516 must not kill the notebook watching them).

Events are plain dataclasses named for what happened; subscribers run on the thread or
event loop that produced them, and a failing subscriber is logged, never propagated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

import pandas as pd

from batchkit.client import BatchClient
from batchkit.errors import BatchkitError, InputError
from batchkit.reconcile import in_scope, jobs_frame, plan_kills, reconcile, summarize
from batchkit.retry import is_code_retryable
from batchkit.schema import (
    JOB_ACTIVE,
    JOB_TERMINAL,
    DescribeResult,
    JobCol,
    JobOutcome,
    KillJob,
    RecCol,
    RunLike,
    TaskCol,
)

if TYPE_CHECKING:
    from batchkit.ledger import Ledger

log = logging.getLogger(__name__)

Clock: TypeAlias = Callable[[], datetime]

#: Jobs listed by ListJobs may show up a little after their createdAt, and the launch
#: machine's clock is not Batch's: discovery looks this far behind its watermark.
DISCOVERY_SKEW = timedelta(minutes=5)
#: From this many recorded jobs on (10+ DescribeJobs calls), the first refresh shows a
#: first look from ListJobs before the details are in (see ``Tracker._first_look``).
FIRST_LOOK_MIN_JOBS = 1000
#: TerminateJobs takes at most 50 ids a call (DESIGN §3); one chunk = one progress step.
KILL_CHUNK = 50
#: A job whose terminate answered a per-job error (throttling, ServerException — the bulk
#: API returns HTTP 200 and the SDK does not retry them) is re-driven this many times.
KILL_ROUNDS = 3


class TrackedRun(RunLike, Protocol):
    """What the tracker reads from a run; ``batchkit.nextflow.NextflowRun`` satisfies it."""

    @property
    def launch_dir(self) -> Any: ...  # Path | None: where the ledger lives by default
    @property
    def queues(self) -> Any: ...  # job queues the run used, from the log/config, if known
    def reload(self) -> Any: ...  # re-read the trace/log (the run may still be going)


def _open_ledger(where: str | Path | None, launch_dir: Any) -> Ledger | None:
    if where is None and launch_dir is None:
        return None
    # Imported here: the ledger (sqlite) is only needed once a tracker is built with one.
    from batchkit.ledger import Ledger

    if where is not None:
        return Ledger(where)
    if launch_dir is not None:
        return Ledger.for_launch_dir(launch_dir)
    return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- values -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The last good reconciliation of a run, with how fresh and how trustworthy it is."""

    frame: pd.DataFrame
    summary: dict[str, Any]
    taken_at: datetime  # UTC, when the data in ``frame`` was fetched
    run_state: str
    degraded: bool = False
    error: str | None = None
    client_stats: Any = None
    clock: Clock = field(default=_utcnow, repr=False, compare=False)
    #: False only for the placeholder kept while no poll has ever succeeded (Batch down
    #: from the start): empty frame, ``degraded`` and ``error`` set, nothing to act on.
    has_result: bool = True
    #: True for the first look of a large run: statuses of its active jobs from ListJobs,
    #: the other recorded jobs "pending" until DescribeJobs has answered for them.
    provisional: bool = False

    @property
    def age(self) -> float:
        """Seconds since the data was fetched (grows while Batch keeps failing)."""
        return (self.clock() - self.taken_at).total_seconds()


@dataclass(frozen=True, slots=True)
class KillReport:
    """What a kill did, per job, with Batch's status described after the call."""

    #: (instruction, what terminate answered, Batch's status on verification or None
    #: when the job could not be described; "not_found" when Batch no longer knows it).
    outcomes: list[tuple[KillJob, JobOutcome, str | None]] = field(default_factory=list)
    #: jobs of the plan the ledger already showed killed (a double click is harmless).
    skipped: list[KillJob] = field(default_factory=list)
    #: False when the tracker was closed before every chunk was sent, or Batch failed
    #: past the client's deadline mid-kill (the failed entries name the error); the
    #: ledger holds the intents, and the next ``kill`` of those jobs (or
    #: ``resume_kills``) re-drives what is left under the same audit rows.
    complete: bool = True

    @property
    def ok(self) -> bool:
        return self.complete and all(outcome.ok for _, outcome, _ in self.outcomes)

    @property
    def failed(self) -> list[tuple[KillJob, JobOutcome, str | None]]:
        return [row for row in self.outcomes if not row[1].ok]

    def summary(self) -> str:
        done = sum(1 for _, outcome, _ in self.outcomes if outcome.ok)
        text = f"{done} of {len(self.outcomes)} job(s) killed"
        if self.skipped:
            text += f", {len(self.skipped)} already killed"
        if self.failed:
            text += f", {len(self.failed)} failed"
        if not self.complete:
            text += " (stopped before the end: run the kill again to finish)"
        return text


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refreshed:
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class RefreshFailed:
    error: str
    age: float | None  # seconds since the last good snapshot, None if there never was one


@dataclass(frozen=True, slots=True)
class JobStateChanged:
    job_id: str
    old: str | None  # None the first time the tracker sees the job
    new: str | None  # None when Batch no longer returns it


@dataclass(frozen=True, slots=True)
class VerdictChanged:
    job_id: str | None  # None for a task that has no Batch job (e.g. CACHED)
    task_name: str | None
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class KillStarted:
    job_ids: list[str]


@dataclass(frozen=True, slots=True)
class KillProgress:
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class KillFinished:
    report: KillReport


Event: TypeAlias = (
    Refreshed
    | RefreshFailed
    | JobStateChanged
    | VerdictChanged
    | KillStarted
    | KillProgress
    | KillFinished
)
Emit: TypeAlias = Callable[[Event], None]


# --- pure helpers (tested with hand-built frames) ----------------------------------------


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


_DIFF_COLUMNS: tuple[str, ...] = (
    JobCol.JOB_ID,
    TaskCol.TASK_ID,
    TaskCol.NAME,
    RecCol.BATCH_STATUS,
    RecCol.VERDICT,
)


def _diff_rows(frame: pd.DataFrame) -> list[tuple[str | None, ...]]:
    """(job_id, task_id, name, batch_status, verdict) per row as plain text or None.

    Column-wise, not ``iterrows``: a 2,000-row frame took seconds row by row.
    """
    columns: list[list[str | None]] = []
    for col in _DIFF_COLUMNS:
        if col in frame.columns:
            values = frame[col].astype(object).tolist()
            columns.append([_text(v) for v in values])
        else:
            columns.append([None] * len(frame))
    return list(zip(*columns, strict=True)) if len(frame) else []


def _key(job_id: str | None, task_id: str | None, name: str | None) -> str:
    return f"job:{job_id}" if job_id is not None else f"task:{task_id}:{name}"


def diff_frames(old: pd.DataFrame | None, new: pd.DataFrame) -> list[Event]:
    """Events between two reconcile frames: job state and verdict changes, in row order."""
    before: dict[str, tuple[str | None, ...]] = {}
    if old is not None:
        for row in _diff_rows(old):
            before.setdefault(_key(row[0], row[1], row[2]), row)
    events: list[Event] = []
    seen_jobs: set[str] = set()
    for job_id, task_id, name, new_status, new_verdict in _diff_rows(new):
        prev = before.get(_key(job_id, task_id, name))
        old_status = prev[3] if prev is not None else None
        old_verdict = prev[4] if prev is not None else None
        if job_id is not None and job_id not in seen_jobs:
            seen_jobs.add(job_id)
            if new_status != old_status and not (prev is None and new_status is None):
                events.append(JobStateChanged(job_id, old_status, new_status))
        if new_verdict != old_verdict:
            events.append(VerdictChanged(job_id, name, old_verdict, new_verdict))
    return events


def _created_at(summary: dict[str, Any]) -> datetime | None:
    value = summary.get("createdAt")
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    # ListJobs answers epoch milliseconds on the wire.
    return datetime.fromtimestamp(float(value) / 1000.0, tz=UTC)


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        stamp = value if value.tzinfo else value.tz_localize(UTC)
        return datetime.fromtimestamp(stamp.timestamp(), tz=UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=UTC)  # epoch seconds
    if isinstance(value, str) and value:
        return _as_datetime(pd.Timestamp(value))
    return None


def _status(job: dict[str, Any] | None) -> str | None:
    if job is None:
        return None
    value = job.get("status")
    return None if value is None else str(value)


def run_key(run: Any) -> str:
    """The ledger key (and kill-reason name) of a run: its name, else what tells it apart.

    A trace-only run has no name (only the log and the weblog carry "Run name:"); a
    shared fallback such as "run" would give every such run on one ledger the same
    known jobs, discovery mark and pending kills. So: the session id when known, else
    the work dir and launch time (to the minute: a trace-only run's launch time is its
    earliest submit seen so far, which can move by seconds as slow first tasks finish),
    else the launch dir. Kept readable, since Batch shows it in the kill reason.
    """
    name = getattr(run, "name", None)
    if name:
        return str(name)
    session = getattr(run, "session_id", None)
    if session:
        return f"unnamed session {session}"
    work_dir = getattr(run, "work_dir", None)
    launched = _as_datetime(getattr(run, "launch_time", None))
    if work_dir and launched is not None:
        return f"unnamed {work_dir} @ {launched:%Y-%m-%dT%H:%MZ}"
    launch_dir = getattr(run, "launch_dir", None)
    if launch_dir:
        return f"unnamed {launch_dir}"
    if work_dir:
        return f"unnamed {work_dir}"
    return "unnamed"


_HTTP_RETRYABLE = re.compile(r"HTTP(429|5\d\d)")


def _retryable(outcome: JobOutcome) -> bool:
    """Whether a failed terminate is worth sending again later (it stays pending).

    Throttling, 5xx and "kept failing until the deadline" (the client's outcome once its
    retries ran out, whose code may be a connection error's class name) are; a refusal
    such as AccessDeniedException or ClientException gives the same answer every time,
    so it is final: re-sending it on every start and every later kill only hides it.
    """
    if outcome.ok:
        return False
    code = outcome.error_code
    if code is None:
        return True  # no answer at all for this job
    if is_code_retryable(code) or _HTTP_RETRYABLE.fullmatch(code):
        return True
    return "until the deadline" in outcome.message


# --- the tracker ------------------------------------------------------------------------


class Tracker:
    """Keeps one run's reconciliation fresh and carries out kill plans.

    >>> tracker = Tracker(NextflowRun.from_dir("launch"), BatchClient(region="eu-west-1"))
    >>> tracker.start()           # in a notebook: an asyncio task; returns at once
    >>> tracker.snapshot.summary  # the last good result
    >>> tracker.kill(tracker.plan())
    """

    def __init__(
        self,
        run: TrackedRun,
        client: BatchClient,
        *,
        queues: Sequence[str] | None = None,
        ledger: Ledger | str | Path | Literal[False] | None = None,
        price_per_vcpu_hour: float = 0.05,
        interval: float = 15.0,
        reload_run: bool = True,
        clock: Clock | None = None,
        witness: Callable[[pd.DataFrame, pd.DataFrame | None], pd.DataFrame] | None = None,
    ) -> None:
        self.run = run
        #: amends reasons from the task work dirs (``batchkit.inspect.WorkdirWitness``); never a verdict
        self.witness = witness
        self.client = client
        self.queues: list[str] | None = list(queues) if queues else None
        # None: the launch dir's ledger; False: none at all (a read-only tracker, e.g.
        # `batchkit reconcile` on a launch dir it may not write to; kill then refuses).
        if ledger is False:
            ledger = None
        elif ledger is None or isinstance(ledger, str | Path):
            ledger = _open_ledger(ledger, getattr(run, "launch_dir", None))
        self.ledger: Ledger | None = ledger
        self.price_per_vcpu_hour = price_per_vcpu_hour
        self.interval = interval
        self.reload_run = reload_run
        self.clock: Clock = clock or _utcnow

        self.snapshot: Snapshot | None = None
        #: the exception behind the last failed refresh (the CLI turns it into one line)
        self.last_error: BaseException | None = None

        self._jobs: dict[str, dict[str, Any]] = {}  # recorded + in-scope jobs, last answer
        self._known: set[str] = set()  # in-scope job ids found by discovery
        self._foreign: set[str] = set()  # described once, proven out of scope: never again
        self._candidates: set[str] = set()  # listed but not yet described (API failing)
        self._watermark: datetime | None = None  # every job created before it was listed
        self._seeded = False
        self._recorded_key: dict[str, Any] | None = None  # summary last written to the ledger
        self._unnamed_key: str | None = None  # ``run_key`` of a run without a name, fixed once

        self._subscribers: list[Emit] = []
        self._lock = threading.RLock()  # one refresh at a time; guards the caches
        self._kill_lock = threading.Lock()  # one kill at a time (a double click waits)
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._runner: asyncio.Task[None] | threading.Thread | None = None
        self._runner_loop: asyncio.AbstractEventLoop | None = None

    # --- subscriptions ------------------------------------------------------------------

    def subscribe(self, callback: Emit) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken widget must never stop the tracker
                log.exception("batchkit tracker: subscriber %r failed on %s", callback, event)

    def _emit_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self._emit(event)

    # --- polling ------------------------------------------------------------------------

    @property
    def run_name(self) -> str:
        """The run's key in the ledger and its name in kill reasons (see ``run_key``).

        An unnamed run's key is fixed the first time it is asked for: a trace-only run's
        launch time is its earliest submit *so far*, and rows arrive as tasks end.
        """
        name = self.run.name
        if name:
            return str(name)
        if self._unnamed_key is None:
            self._unnamed_key = run_key(self.run)
        return self._unnamed_key

    def refresh(self) -> Snapshot:
        """Poll Batch once (blocking) and reconcile; never raises because AWS is failing.

        Returns the new snapshot, or the last good one marked degraded when Batch could
        not be reached (``snapshot.error`` says why, ``snapshot.age`` how old it is).
        """
        snapshot, events = self._poll(self._emit)
        self._emit_all(events)
        return snapshot

    async def refresh_async(self) -> Snapshot:
        """``refresh`` with the blocking I/O in a worker thread; events fire on this loop."""
        loop = asyncio.get_running_loop()

        def early(event: Event) -> None:
            loop.call_soon_threadsafe(self._emit, event)

        snapshot, events = await asyncio.to_thread(self._poll, early)
        self._emit_all(events)
        return snapshot

    def _poll(self, early: Emit | None = None) -> tuple[Snapshot, list[Event]]:
        with self._lock:
            fetched_at = self.clock()
            try:
                if self.reload_run:
                    # NextflowRun is immutable: reload() returns the fresh view.
                    self.run = self.run.reload()
                self._seed_from_ledger()
                if self.snapshot is None and early is not None:
                    self._first_look(fetched_at, early)
                failed = self._describe_tracked()
                failed |= self._discover(fetched_at)
            except (BatchkitError, OSError) as exc:
                # AwsError: Batch unreachable past the client's deadline; InputError/OSError:
                # the trace or log is being rewritten under us. Either way the last good
                # answer stays up, marked degraded.
                return self._degrade(exc)
            unknown = [i for i in failed if i not in self._jobs]
            if unknown:
                partial = _PartialAnswer(
                    f"Batch did not answer for {len(unknown)} job(s) (e.g. {unknown[0]}); "
                    "showing the last good result, retrying on the next poll"
                )
                return self._degrade(partial)
            error = None
            if failed:
                error = (
                    f"{len(failed)} job(s) could not be described this time; "
                    "their last known state is shown"
                )
            return self._publish(fetched_at, degraded=bool(failed), error=error)

    def _degrade(self, exc: BaseException) -> tuple[Snapshot, list[Event]]:
        self.last_error = exc
        message = str(exc) or type(exc).__name__
        log.warning("batchkit tracker: refresh of run %r failed: %s", self.run_name, message)
        stats = self._client_stats()
        if self.snapshot is None or not self.snapshot.has_result:
            # Nothing good to keep yet: a placeholder, so a dashboard can show why.
            self.snapshot = Snapshot(
                frame=pd.DataFrame(),
                summary={},
                taken_at=self.clock(),
                run_state=str(self.run.state),
                degraded=True,
                error=message,
                client_stats=stats,
                clock=self.clock,
                has_result=False,
            )
            return self.snapshot, [RefreshFailed(message, None)]
        self.snapshot = replace(self.snapshot, degraded=True, error=message, client_stats=stats)
        return self.snapshot, [RefreshFailed(message, self.snapshot.age)]

    def _publish(
        self, fetched_at: datetime, *, degraded: bool, error: str | None
    ) -> tuple[Snapshot, list[Event]]:
        frame = reconcile(
            self.run,
            list(self._jobs.values()),
            price_per_vcpu_hour=self.price_per_vcpu_hour,
            now=pd.Timestamp(fetched_at),
            queues=self._queue_names(),
        )
        if self.witness is not None:
            frame = self.witness(frame, self.run.tasks)
        old = (
            self.snapshot.frame if self.snapshot is not None and self.snapshot.has_result else None
        )
        events = diff_frames(old, frame)
        self.snapshot = Snapshot(
            frame=frame,
            summary=summarize(frame),
            taken_at=fetched_at,
            run_state=str(self.run.state),
            degraded=degraded,
            error=error,
            client_stats=self._client_stats(),
            clock=self.clock,
        )
        if not degraded:
            self.last_error = None
        self._record_snapshot(self.snapshot)
        events.append(Refreshed(self.snapshot))
        return self.snapshot, events

    def _record_snapshot(self, snapshot: Snapshot) -> None:
        """Keep the run's history in the ledger, one entry per change of verdicts.

        Waste grows on every poll while orphans run, so it is not a change by itself;
        a post-mortem reads the verdict timeline and the newest frame.
        """
        if self.ledger is None:
            return
        key = {k: v for k, v in snapshot.summary.items() if not str(k).startswith("waste")}
        if key == self._recorded_key:
            return
        try:
            self.ledger.record_snapshot(self.run_name, snapshot.summary, snapshot.frame)
        except Exception:  # history is a convenience; never fail a poll over it
            log.exception("batchkit tracker: could not record a snapshot of run %r", self.run_name)
            return
        self._recorded_key = key

    def _client_stats(self) -> Any:
        try:
            return self.client.stats
        except Exception:  # stats are decoration; never fail a refresh over them
            return None

    def _seed_from_ledger(self) -> None:
        """A restarted tracker picks up what the last one found (jobs, discovery mark)."""
        if self._seeded:
            return
        self._seeded = True
        if self.ledger is None:
            return
        self._known.update(self.ledger.known_jobs(self.run_name))
        self._watermark = _as_datetime(self.ledger.last_poll(self.run_name))

    def _first_look(self, fetched_at: datetime, emit: Emit) -> None:
        """Show a large run at once: its active jobs from ListJobs, the rest pending.

        DescribeJobs takes 100 ids a call, so at the 20 requests/s budget a 10,000-task
        run needs 5 s of calls before anything can be shown; ListJobs by status returns
        1,000 summaries a page (DESIGN §3), enough to find which recorded jobs are still
        running — the orphans — in a handful of calls. Summaries carry no command, so
        only recorded ids (scope rule 1) are placed; discovery and the details
        (attempts, vCPUs) follow in the same refresh.
        """
        recorded = self._recorded_ids()
        queues = self._queue_names()
        if len(recorded) < FIRST_LOOK_MIN_JOBS or not queues:
            return
        wanted = set(recorded)
        found: dict[str, dict[str, Any]] = {}
        try:
            for queue in queues:
                # No re-ask of empty pages here: the full poll right after checks everything.
                for summary in self.client.list_jobs(queue, statuses=sorted(JOB_ACTIVE), confirm_empty=False):
                    job_id = str(summary.get("jobId", ""))
                    if job_id in wanted:
                        found[job_id] = {"jobQueue": queue, **summary}
        except BatchkitError as exc:  # the full poll that follows says what is wrong
            log.info("batchkit tracker: first look at run %r skipped: %s", self.run_name, exc)
            return
        frame = reconcile(
            self.run, list(found.values()), price_per_vcpu_hour=self.price_per_vcpu_hour,
            now=pd.Timestamp(fetched_at), queues=queues,
        )
        if len(frame):
            asked = frame[TaskCol.NATIVE_ID].astype("string").isin(list(found))
            pending = frame[RecCol.VERDICT].eq("vanished").fillna(False) & ~asked.fillna(False)
            frame.loc[pending, RecCol.VERDICT] = "pending"
            frame.loc[pending, RecCol.REASON] = "not active in Batch; asking DescribeJobs for its final state…"
            frame.loc[pending, RecCol.KILLABLE] = False
        snapshot = Snapshot(
            frame=frame,
            summary=summarize(frame),
            taken_at=fetched_at,
            run_state=str(self.run.state),
            client_stats=self._client_stats(),
            clock=self.clock,
            provisional=True,
        )
        self.snapshot = snapshot
        emit(Refreshed(snapshot))

    def _recorded_ids(self) -> list[str]:
        tasks = self.run.tasks
        if tasks is None or len(tasks) == 0 or TaskCol.NATIVE_ID not in tasks:
            return []
        ids = tasks[TaskCol.NATIVE_ID].dropna().astype(str)
        return list(dict.fromkeys(i for i in ids if i))

    def _describe_tracked(self) -> set[str]:
        """Describe recorded and known jobs that can still change; returns ids that failed."""
        wanted = [*self._recorded_ids(), *sorted(self._known)]
        todo = [
            job_id
            for job_id in dict.fromkeys(wanted)
            if _status(self._jobs.get(job_id)) not in JOB_TERMINAL
        ]
        if not todo:
            return set()
        result = self.client.describe_jobs(todo)
        self._absorb(result)
        return set(result.failed)

    def _absorb(self, result: DescribeResult) -> None:
        for job_id, job in result.jobs.items():
            self._jobs[job_id] = dict(job)
        for job_id in result.missing:
            # DescribeJobs drops unknown ids silently (nextflow-io/nextflow#7301): forget
            # what we had so reconcile calls the pair "vanished" rather than trusting it.
            self._jobs.pop(job_id, None)

    def _queue_names(self) -> list[str] | None:
        if self.queues:
            return self.queues
        queues = [str(q) for q in (getattr(self.run, "queues", None) or []) if q]
        if not queues:
            for job in self._jobs.values():
                queue = job.get("jobQueue")
                if queue:
                    queues.append(str(queue))
        return list(dict.fromkeys(queues)) or None

    def _discover(self, started: datetime) -> set[str]:
        """List jobs created on the run's queues since the last poll; keep those in scope.

        Jobs never recorded by Nextflow (submitted after an abort, nextflow-io/nextflow#7445,
        or lost from a crashed trace) are only visible this way. ListJobs summaries carry no
        command, so candidates are described once to prove scope by work dir; a name match
        alone never is proof (DESIGN §4).
        """
        queues = self._queue_names()
        if not queues:
            return set()
        since = self._watermark
        if since is None:
            since = _as_datetime(self.run.launch_time)
        created_after = None if since is None else since - DISCOVERY_SKEW
        newest: datetime | None = None
        listed: list[str] = []
        for queue in queues:
            for summary in self.client.list_jobs(queue, created_after=created_after):
                job_id = str(summary.get("jobId", ""))
                if job_id:
                    listed.append(job_id)
                created = _created_at(summary)
                if created is not None and (newest is None or created > newest):
                    newest = created
        candidates = self._candidates | {
            i
            for i in listed
            if i not in self._foreign and i not in self._known and i not in self._jobs
        }
        failed: set[str] = set()
        if candidates:
            result = self.client.describe_jobs(sorted(candidates))
            failed = set(result.failed)
            found = list(result.jobs.values())
            fresh: list[str] = []
            if found:
                frame = jobs_frame(found)
                rule = in_scope(self.run, frame, queues=queues)
                ours = set(frame.loc[rule.ne("").to_numpy(dtype=bool), JobCol.JOB_ID].astype(str))
                for job_id, job in result.jobs.items():
                    if job_id in ours:
                        self._jobs[job_id] = dict(job)
                        if job_id not in self._known:
                            fresh.append(job_id)
                        self._known.add(job_id)
                    else:
                        self._foreign.add(job_id)
            self._foreign.update(result.missing)
            self._candidates = failed
            if fresh and self.ledger is not None:
                self.ledger.remember_jobs(self.run_name, fresh)
        # Batch's clock and ours differ (and the emulator runs on its own): never move the
        # mark past the newest job Batch showed, nor past the moment this poll began.
        mark = started if newest is None else min(started, newest)
        if self._watermark is not None and newest is None:
            mark = min(mark, self._watermark)
        if self._watermark is None or mark > self._watermark:
            self._watermark = mark
            if self.ledger is not None:
                self.ledger.set_last_poll(self.run_name, mark)
        return failed

    # --- kill planning and execution -------------------------------------------------------

    def plan(
        self,
        *,
        force: bool = False,
        verdicts: Sequence[str] | None = None,
        job_ids: Sequence[str] | None = None,
    ) -> list[KillJob]:
        """What a kill would terminate now (refreshes first if nothing was fetched yet)."""
        snapshot = self.snapshot
        if snapshot is None or not snapshot.has_result:
            snapshot = self.refresh()
        if not snapshot.has_result or snapshot.frame.empty:
            return []
        plan = plan_kills(
            snapshot.frame,
            force=force,
            run_name=self.run_name,
            verdicts=list(verdicts) if verdicts is not None else None,
            job_ids=list(job_ids) if job_ids is not None else None,
        )
        killed = set(self.ledger.killed_job_ids()) if self.ledger is not None else set()
        return [job for job in plan if job.job_id not in killed]

    def kill(
        self, plan: Sequence[KillJob], *, progress: Callable[[int, int], None] | None = None
    ) -> KillReport:
        """Terminate the plan's jobs, ledger first, then describe them to verify.

        A job the ledger already shows killed is skipped. Kills interrupted earlier (an
        intent with no final result: the kernel died mid-kill, or Batch kept failing)
        are re-driven under their original audit entry when their job is in the plan,
        or when the tracker does not see the job active (finished, gone, or not polled
        yet: sending again only records how it ended). A pending kill of another job that
        still runs is left for ``resume_kills`` (and ``start``): ``kill --job X`` must
        not terminate jobs the user did not pick this time.
        """
        return self._kill(plan, progress, self._emit)

    async def kill_async(
        self, plan: Sequence[KillJob], progress: Callable[[int, int], None] | None = None
    ) -> KillReport:
        """``kill`` in a worker thread; progress and events are delivered on this loop."""
        return await self._kill_in_thread(plan, progress, resume=False)

    async def _kill_in_thread(
        self,
        plan: Sequence[KillJob],
        progress: Callable[[int, int], None] | None,
        *,
        resume: bool,
    ) -> KillReport:
        loop = asyncio.get_running_loop()

        def emit(event: Event) -> None:
            loop.call_soon_threadsafe(self._emit, event)

        def on_progress(done: int, total: int) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, done, total)

        return await asyncio.to_thread(self._kill, plan, on_progress, emit, resume=resume)

    def resume_kills(self, *, progress: Callable[[int, int], None] | None = None) -> KillReport:
        """Finish every kill of this run a previous tracker recorded but never completed."""
        return self._kill([], progress, self._emit, resume=True)

    def _require_ledger(self) -> Ledger:
        if self.ledger is None:
            raise InputError(
                f"this tracker of run {self.run_name!r} has no ledger to record kills in "
                "(it was made read-only, or the run has no launch directory); pass "
                "ledger=PATH to Tracker (or --ledger to the CLI)"
            )
        return self.ledger

    def pending_for(self, plan: Sequence[KillJob]) -> list[KillJob]:
        """The interrupted kills ``kill(plan)`` would re-drive (see ``kill``), from the ledger."""
        if self.ledger is None:
            return []
        plan_ids = {job.job_id for job in plan}
        return [
            job
            for job in self.ledger.pending_kills(self.run_name)
            if self._redrives(job, plan_ids, resume=False)
        ]

    def _redrives(self, job: KillJob, plan_ids: set[str], resume: bool) -> bool:
        if resume or job.job_id in plan_ids:
            return True
        with self._lock:
            return _status(self._jobs.get(job.job_id)) not in JOB_ACTIVE

    def _kill(
        self,
        plan: Sequence[KillJob],
        progress: Callable[[int, int], None] | None,
        emit: Emit,
        *,
        resume: bool = False,
    ) -> KillReport:
        ledger = self._require_ledger()
        outcomes: list[tuple[KillJob, JobOutcome, str | None]] = []
        skipped: list[KillJob] = []
        complete = False
        started = False
        try:
            with self._kill_lock:
                run_name = self.run_name
                killed = set(ledger.killed_job_ids())
                plan_ids = {job.job_id for job in plan}
                todo: dict[str, tuple[KillJob, int | None]] = {}
                for job, kill_id in _pending_with_ids(ledger, run_name):
                    if self._redrives(job, plan_ids, resume):
                        todo.setdefault(job.job_id, (job, kill_id))
                for job in plan:
                    if job.job_id in killed:
                        skipped.append(job)
                    elif job.job_id not in todo:
                        todo[job.job_id] = (job, None)
                entries = list(todo.values())
                total = len(entries)
                emit(KillStarted([job.job_id for job, _ in entries]))
                started = True
                kill_ids: dict[str, int] = {}
                failure: BatchkitError | None = None
                done = 0
                for chunk in _chunks_by_reason(entries, KILL_CHUNK):
                    if self._closed:
                        break
                    rows, ids, failure = self._kill_chunk(ledger, run_name, chunk)
                    outcomes.extend(rows)
                    kill_ids.update(ids)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                    emit(KillProgress(done, total))
                    if failure is not None:
                        # Batch is failing past the client's deadline: every further chunk
                        # would wait out its own deadline too. The ledger keeps the rest.
                        break
                complete = done == total and failure is None
                # Verify only when Batch is answering: a failing describe would cost
                # another full deadline, and terminate_jobs' own answer is kept anyway.
                if outcomes and failure is None and not self._closed:
                    outcomes[:] = self._verify(ledger, outcomes, kill_ids)
                self._cache_statuses(outcomes)
            if outcomes and not self._closed:
                with self._lock:
                    if self.snapshot is not None:
                        self._publish_quietly(emit)
        finally:
            # Always, even when a chunk raised or the kernel is interrupted: a dashboard
            # that saw KillStarted must not stay on "killing" forever.
            report = KillReport(outcomes=list(outcomes), skipped=skipped, complete=complete)
            if started:
                emit(KillFinished(report))
        return report

    def _kill_chunk(
        self, ledger: Ledger, run_name: str, chunk: list[tuple[KillJob, int | None]]
    ) -> tuple[list[tuple[KillJob, JobOutcome, str | None]], dict[str, int], BatchkitError | None]:
        """Terminate one chunk (one reason): (rows, kill id per job, the AWS error that
        stopped it or None). Every answer received is written, even when a later round
        raised; jobs without a final answer stay pending in the ledger."""
        reason = chunk[0][0].reason
        request = {"operation": "TerminateJob", "reason": reason, "request_id": str(uuid.uuid4())}
        ids: dict[str, int] = {}
        jobs: dict[str, KillJob] = {}
        # Intent BEFORE the call: a kernel that dies inside terminate_jobs leaves a pending
        # entry that the next kill re-drives (TerminateJob is idempotent, DESIGN §6).
        for job, kill_id in chunk:
            jobs[job.job_id] = job
            ids[job.job_id] = (
                kill_id
                if kill_id is not None
                else ledger.record_kill_intent(run_name, job, request)
            )
        answers: dict[str, JobOutcome] = {}
        remaining = list(jobs)
        failure: BatchkitError | None = None
        for _ in range(KILL_ROUNDS):
            if not remaining:
                break
            try:
                # Per-job throttling/5xx come back inside an HTTP 200 that the SDK does not
                # retry (DESIGN §3): those ids are sent again in the next round.
                answered = self.client.terminate_jobs(remaining, reason)
            except BatchkitError as exc:  # AwsError/ApiUnavailableError past the deadline
                failure = exc
                break
            for answer in answered:
                answers[answer.job_id] = answer
            remaining = [i for i in remaining if i not in answers or _retryable(answers[i])]
        rows: list[tuple[KillJob, JobOutcome, str | None]] = []
        for job_id, job in jobs.items():
            got = answers.get(job_id)
            if failure is not None and job_id in remaining:
                code = getattr(failure, "code", None) or type(failure).__name__
                outcome = JobOutcome(
                    job_id,
                    "error",
                    status=got.status if got is not None else None,
                    error_code=code,
                    message=f"terminate stopped: {failure}; the kill stays pending, run it again",
                )
            elif got is None:
                outcome = JobOutcome(job_id, "error", message="Batch gave no answer for this job")
            else:
                outcome = got
            status = "not_found" if outcome.outcome == "not_found" else outcome.status
            # Result AFTER the call: a refusal that would be the same next time is final;
            # throttling, 5xx, a deadline or no answer keep the intent pending.
            ledger.record_kill_result(ids[job_id], outcome, status, final=not _retryable(outcome))
            rows.append((job, outcome, status))
        return rows, ids, failure

    def _verify(
        self,
        ledger: Ledger,
        rows: list[tuple[KillJob, JobOutcome, str | None]],
        kill_ids: dict[str, int],
    ) -> list[tuple[KillJob, JobOutcome, str | None]]:
        """Describe the killed jobs once more and record what Batch shows now.

        A terminated STARTING/RUNNING job stays RUNNING until its container stops (real
        Batch takes seconds to minutes), so the status terminate_jobs saw right after the
        call is not the end state. If describing fails, terminate_jobs' answer is kept.
        """
        try:
            result = self.client.describe_jobs([job.job_id for job, _, _ in rows])
        except BatchkitError as exc:
            log.warning("batchkit tracker: could not verify the kill of run %r: %s", self.run_name, exc)
            return rows
        missing = set(result.missing)
        verified: list[tuple[KillJob, JobOutcome, str | None]] = []
        for job, outcome, status in rows:
            described = result.jobs.get(job.job_id)
            if described is not None:
                status = _status(described)
                with self._lock:
                    if job.job_id in self._jobs:
                        self._jobs[job.job_id] = dict(described)
            elif job.job_id in missing:
                status = "not_found"
            else:  # its describe chunk failed: keep what terminate answered
                verified.append((job, outcome, status))
                continue
            if status is not None:
                ledger.record_kill_verification(kill_ids[job.job_id], status)
            verified.append((job, outcome, status))
        return verified

    def _cache_statuses(self, rows: list[tuple[KillJob, JobOutcome, str | None]]) -> None:
        with self._lock:
            for job, _, status in rows:
                cached = self._jobs.get(job.job_id)
                if cached is not None and status in JOB_TERMINAL:
                    cached["status"] = status

    def _publish_quietly(self, emit: Emit) -> None:
        """Re-reconcile from the cache after a kill (no extra API call) and announce it."""
        try:
            _, events = self._publish(self.clock(), degraded=False, error=None)
        except Exception:  # the kill succeeded; a failing redraw must not hide that
            log.exception("batchkit tracker: re-reconcile after kill failed")
            return
        for event in events:
            emit(event)

    # --- running in the background ---------------------------------------------------------

    def pause(self) -> None:
        """Stop polling until ``resume``; a refresh already under way finishes."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> asyncio.Task[None] | threading.Thread:
        """Refresh every ``interval`` seconds in the background; returns at once.

        In a notebook (a running event loop) the loop is an asyncio task whose blocking
        calls run in worker threads, so cells stay responsive; without a running loop it
        is a daemon thread. Kills a previous tracker left half done are re-driven first.
        """
        if self._closed:
            raise InputError("this tracker is closed; create a new Tracker to start again")
        if self._runner is not None:
            return self._runner
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._runner_loop = loop
            self._runner = loop.create_task(
                self._loop_async(), name=f"batchkit-tracker-{self.run_name}"
            )
        else:
            thread = threading.Thread(
                target=self._loop_thread, name=f"batchkit-tracker-{self.run_name}", daemon=True
            )
            self._runner = thread
            thread.start()
        return self._runner

    def _has_pending_kills(self) -> bool:
        return self.ledger is not None and bool(self.ledger.pending_kills(self.run_name))

    def _unexpected(self, what: str, exc: Exception) -> None:
        """A bug (not an AWS failure) in one poll: log it, tell subscribers, keep polling."""
        log.exception("batchkit tracker: %s of run %r failed", what, self.run_name)
        self.last_error = exc
        age = self.snapshot.age if self.snapshot is not None and self.snapshot.has_result else None
        self._emit(RefreshFailed(f"{what} failed: {type(exc).__name__}: {exc}", age))

    async def _loop_async(self) -> None:
        if self._has_pending_kills():
            try:
                await self._kill_in_thread([], None, resume=True)
            except Exception as exc:
                self._unexpected("resuming interrupted kills", exc)
        while not self._closed:
            if not self._paused.is_set():
                try:
                    await self.refresh_async()
                except Exception as exc:
                    self._unexpected("refresh", exc)
            await asyncio.sleep(self.interval)

    def _loop_thread(self) -> None:
        if self._has_pending_kills():
            try:
                self.resume_kills()
            except Exception as exc:
                self._unexpected("resuming interrupted kills", exc)
        while not self._closed:
            if not self._paused.is_set():
                try:
                    self.refresh()
                except Exception as exc:
                    self._unexpected("refresh", exc)
            if self._stop.wait(self.interval):
                break

    def run_blocking(self, *, until: Callable[[Snapshot], bool] | None = None) -> Snapshot | None:
        """Refresh every ``interval`` seconds in this thread until ``until(snapshot)`` or close."""
        while not self._closed:
            if not self._paused.is_set():
                snapshot = self.refresh()
                if until is not None and until(snapshot):
                    return snapshot
            if self._stop.wait(self.interval):
                break
        return self.snapshot

    def close(self) -> None:
        """Stop the background loop and any kill at its next chunk; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        runner, self._runner = self._runner, None
        if isinstance(runner, threading.Thread):
            if runner is not threading.current_thread():
                runner.join(timeout=max(1.0, self.interval))
        elif runner is not None:
            loop = self._runner_loop
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if loop is None or running is loop:
                runner.cancel()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(runner.cancel)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PartialAnswer(BatchkitError):
    """Some recorded jobs could not be described: the new frame would mislabel them."""


def _chunks_by_reason(
    entries: list[tuple[KillJob, int | None]], size: int
) -> list[list[tuple[KillJob, int | None]]]:
    """Group by reason (one reason per TerminateJobs call), then cut into chunks of ``size``."""
    groups: dict[str, list[tuple[KillJob, int | None]]] = {}
    for entry in entries:
        groups.setdefault(entry[0].reason, []).append(entry)
    chunks: list[list[tuple[KillJob, int | None]]] = []
    for group in groups.values():
        chunks.extend(group[i : i + size] for i in range(0, len(group), size))
    return chunks


def _pending_with_ids(ledger: Ledger, run_name: str) -> list[tuple[KillJob, int | None]]:
    """Interrupted kills to re-drive. No entry id is needed: the ledger keeps at most one
    open intent per job and ``record_kill_intent`` returns that same id for a re-drive,
    so the result lands on the original audit row (each job audited exactly once)."""
    return [(job, None) for job in ledger.pending_kills(run_name)]
