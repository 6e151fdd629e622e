"""The tracker: polls Batch for one Nextflow run and reconciles.

The pure work lives elsewhere (``batchkit.reconcile``); this module only decides *what to
ask* Batch and keeps what it learnt. Kills are planned here (``plan``) and handed whole to
the kill executor (``batchkit.kills``), which owns the ledger claims, the sends, the
retries, the verification and the results; the tracker only re-reconciles from what the
kill verified. It polls only what can still
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
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

import pandas as pd

from batchkit.client import BatchApi
from batchkit.errors import BatchkitError, InputError
from batchkit.kills import KillExecutor, KillStatus, select_redrives
from batchkit.kills import KillReport as KillReport  # re-exported: callers import it from here
from batchkit.reconcile import OtherRun, in_scope, jobs_frame, plan_kills, reconcile, summarize
from batchkit.schema import (
    JOB_ACTIVE,
    JOB_TERMINAL,
    DescribeResult,
    JobCol,
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
#: Seconds a kill may take as a whole, unless told otherwise (``Tracker(kill_deadline=)``).
KILL_DEADLINE = 300.0


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
    #: the kill's full progress (killed, waiting, failing since, retries, last error)
    status: KillStatus | None = None


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


def _str_or_none(value: Any) -> str | None:
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
            columns.append([_str_or_none(v) for v in values])
        else:
            columns.append([None] * len(frame))
    return list(zip(*columns, strict=True)) if len(frame) else []


def _row_identity(job_id: str | None, task_id: str | None, name: str | None) -> str:
    """What names a reconcile row in both frames: its job id, or (no job yet) its task id and name."""
    return f"job:{job_id}" if job_id is not None else f"task:{task_id}:{name}"


def diff_frames(old: pd.DataFrame | None, new: pd.DataFrame) -> list[Event]:
    """Events between two reconcile frames: job state and verdict changes, in row order."""
    before: dict[str, tuple[str | None, ...]] = {}
    if old is not None:
        for row in _diff_rows(old):
            before.setdefault(_row_identity(row[0], row[1], row[2]), row)
    events: list[Event] = []
    seen_jobs: set[str] = set()
    for job_id, task_id, name, new_status, new_verdict in _diff_rows(new):
        prev = before.get(_row_identity(job_id, task_id, name))
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
        client: BatchApi,
        *,
        queues: Sequence[str] | None = None,
        ledger: Ledger | str | Path | Literal[False] | None = None,
        price_per_vcpu_hour: float = 0.05,
        interval: float = 15.0,
        reload_run: bool = True,
        clock: Clock | None = None,
        witness: Callable[[pd.DataFrame, pd.DataFrame | None], pd.DataFrame] | None = None,
        kill_deadline: float = KILL_DEADLINE,
        kill_clock: Callable[[], float] | None = None,
        kill_sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.run = run
        #: amends reasons from the task work dirs (``batchkit.inspect.WorkdirWitness``); never a verdict
        self.witness = witness
        self.client = client
        #: seconds a kill may take as a whole (every chunk, retry and verification)
        self.kill_deadline = float(kill_deadline)
        # The kill's own time (tests inject a fake pair; default: real, Cancel-aware).
        self._kill_clock = kill_clock
        self._kill_sleep = kill_sleep
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
        self._kill_cancels: set[threading.Event] = set()  # running kills, cancelled by close()
        #: the ledger's newest kill row when the current snapshot was taken: kills written
        #: after it by other processes are this snapshot's plan's concurrent kills
        self._kill_mark: int | None = None
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

    def own_keys(self) -> set[str]:
        """Every ledger key this run may have written kills under (``run_key``'s forms).

        A run read first from its trace alone and later with its log changes key (from
        ``unnamed session …`` to its name): its own earlier kills are not another run's.
        """
        keys = {self.run_name, run_key(self.run)}
        session = getattr(self.run, "session_id", None)
        if session:
            keys.add(f"unnamed session {session}")
        launch_dir = getattr(self.run, "launch_dir", None)
        if launch_dir:
            keys.add(f"unnamed {launch_dir}")
        return keys

    def ledger_other_runs(self) -> tuple[OtherRun, ...]:
        """The other runs the ledger knows, with the jobs it records under each.

        Passed to ``reconcile``/``in_scope`` as data (issue #15: the ledger's other runs
        are known and excluded): a job submitted from the submit form, or killed or
        claimed as another run's, is labelled with that run and never this run's.
        """
        if self.ledger is None:
            return ()
        from batchkit.ledger import SUBMISSIONS_RUN  # the ledger module loads with a ledger

        found = self.ledger.other_runs_jobs(self.own_keys())
        return tuple(
            OtherRun(
                name=key,
                source="the ledger's submissions" if key == SUBMISSIONS_RUN else "the ledger's kills",
                job_ids=frozenset(ids),
            )
            for key, ids in sorted(found.items())
        )

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
            other_runs=self.ledger_other_runs(),
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
        self._mark_kills()
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

    def _mark_kills(self) -> None:
        if self.ledger is None:
            return
        try:
            self._kill_mark = self.ledger.max_kill_id()
        except Exception:  # a mark is an optimisation of the report; never fail a poll
            log.exception("batchkit tracker: could not read the ledger's kill mark")

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
        1,000 summaries a page (docs/ARCHITECTURE.md §4), enough to find which recorded jobs are still
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
            now=pd.Timestamp(fetched_at), queues=queues, other_runs=self.ledger_other_runs(),
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
        alone never is proof (docs/ARCHITECTURE.md §5).
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
                rule = in_scope(self.run, frame, queues=queues, other_runs=self.ledger_other_runs())
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
        self,
        plan: Sequence[KillJob],
        *,
        progress: Callable[[int, int], None] | None = None,
        on_status: Callable[[KillStatus], None] | None = None,
    ) -> KillReport:
        """Kill the plan's jobs with the kill executor (``batchkit.kills``); blocking.

        Ledger claims first, one deadline (``kill_deadline``) for the whole kill, one
        verification describe per chunk; what is not final by then stays pending in the
        ledger. A job the ledger already shows killed is skipped. Kills interrupted earlier
        are finished too when their job is in the plan or is not seen active
        (``kills.select_redrives``); a pending kill of another job that still runs is left
        for ``resume_kills`` (and ``start``): ``kill --job X`` must not terminate jobs the
        user did not pick this time. ``progress(done, total)`` after each answered chunk;
        ``on_status(KillStatus)`` after every call and wait.
        """
        return self._kill(plan, progress, self._emit, on_status=on_status)

    async def kill_async(
        self,
        plan: Sequence[KillJob],
        progress: Callable[[int, int], None] | None = None,
        on_status: Callable[[KillStatus], None] | None = None,
    ) -> KillReport:
        """``kill`` in a worker thread; progress and events are delivered on this loop."""
        return await self._kill_in_thread(plan, progress, resume=False, on_status=on_status)

    async def _kill_in_thread(
        self,
        plan: Sequence[KillJob],
        progress: Callable[[int, int], None] | None,
        *,
        resume: bool,
        on_status: Callable[[KillStatus], None] | None = None,
    ) -> KillReport:
        loop = asyncio.get_running_loop()
        emit, on_progress, status = _on_loop(loop, self._emit, progress, on_status)
        return await asyncio.to_thread(self._kill, plan, on_progress, emit, resume=resume, on_status=status)

    def start_kill(
        self,
        plan: Sequence[KillJob],
        *,
        on_status: Callable[[KillStatus], None] | None = None,
        on_done: Callable[[KillReport | None, BaseException | None], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        resume: bool = False,
    ) -> KillHandle:
        """Kill in a background thread and return at once (a dashboard's button).

        Callbacks and events run on ``loop`` when given (the kernel's), else on the kill's
        thread. ``KillHandle.cancel()`` stops it between calls: what was sent stays sent
        in the ledger, what was not stays pending, and the next kill finishes both.
        """
        handle = KillHandle()
        emit: Emit = self._emit
        done = on_done
        if loop is not None:
            emit, _, on_status = _on_loop(loop, self._emit, None, on_status)
            if on_done is not None:
                done_cb = on_done

                def done(report: KillReport | None, error: BaseException | None) -> None:
                    loop.call_soon_threadsafe(done_cb, report, error)

        def work() -> None:
            report: KillReport | None = None
            error: BaseException | None = None
            try:
                report = self._kill(plan, None, emit, on_status=on_status, cancel=handle._cancel, resume=resume)
            except BaseException as exc:  # reported to on_done; the thread must not die silently
                error = exc
                log.exception("batchkit tracker: background kill of run %r failed", self.run_name)
            finally:
                handle._finish(report, error)
                if done is not None:
                    done(report, error)

        handle._thread = threading.Thread(target=work, name=f"batchkit-kill-{self.run_name}", daemon=True)
        handle._thread.start()
        return handle

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

    def _is_active(self, job_id: str) -> bool:
        with self._lock:
            return _status(self._jobs.get(job_id)) in JOB_ACTIVE

    def pending_for(self, plan: Sequence[KillJob]) -> list[KillJob]:
        """The interrupted kills ``kill(plan)`` would re-drive (see ``kill``), from the ledger."""
        if self.ledger is None:
            return []
        return self._still_proven(select_redrives(self.ledger.pending_kills(self.run_name), plan, self._is_active), plan)

    def _still_proven(self, pending: Sequence[KillJob], plan: Sequence[KillJob]) -> list[KillJob]:
        """The pending kills that may be sent again: the ledger is a record, not a proof.

        A pending row may have been added by hand, or written by an older batchkit that
        judged by work dir alone (issue #15): it is re-sent only for a job in ``plan``,
        proven the run's by the current reconcile (``native_id``/``hash``), or one this
        tracker saw finished (sending again only records how it ended). Refreshes first
        when nothing was fetched yet (a tracker resuming at start). Others stay pending,
        untouched.
        """
        plan_ids = {job.job_id for job in plan}
        if all(job.job_id in plan_ids for job in pending):
            return list(pending)
        snapshot = self.snapshot
        if snapshot is None or not snapshot.has_result:
            snapshot = self.refresh()
        proven: set[str] = set()
        if snapshot.has_result and len(snapshot.frame):
            frame = snapshot.frame
            ok = frame[RecCol.IN_SCOPE_BY].isin(["native_id", "hash"]).fillna(False).to_numpy(bool)
            proven = set(frame.loc[ok, JobCol.JOB_ID].dropna().astype(str))
        with self._lock:
            finished = {j for j, job in self._jobs.items() if _status(job) in JOB_TERMINAL}
        kept = [job for job in pending if job.job_id in plan_ids | proven | finished]
        if len(kept) < len(pending):
            log.warning(
                "batchkit tracker: %d pending kill(s) of run %r name jobs not proven the run's: left unsent",
                len(pending) - len(kept), self.run_name,
            )
        return kept

    def _kill(
        self,
        plan: Sequence[KillJob],
        progress: Callable[[int, int], None] | None,
        emit: Emit,
        *,
        resume: bool = False,
        on_status: Callable[[KillStatus], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> KillReport:
        ledger = self._require_ledger()
        run_name = self.run_name
        redrive = self._still_proven(
            select_redrives(ledger.pending_kills(run_name), plan, self._is_active, resume=resume), plan
        )
        entries = list({job.job_id: job for job in [*redrive, *plan]}.values())
        cancel = cancel if cancel is not None else threading.Event()
        self._kill_cancels.add(cancel)
        if self._closed:
            cancel.set()
        reported = [0]

        def relay(status: KillStatus) -> None:
            # The dashboard header's "degraded" line reads the snapshot's client stats:
            # keep them current while the kill fails, not only at the next poll.
            with self._lock:
                if self.snapshot is not None:
                    self.snapshot = replace(self.snapshot, client_stats=self._client_stats())
            emit(KillProgress(status.done, status.total, status))
            if on_status is not None:
                on_status(status)
            if progress is not None and status.done > reported[0]:
                reported[0] = status.done
                progress(status.done, status.total)

        executor = KillExecutor(
            self.client, ledger, run_name=run_name, deadline=self.kill_deadline,
            clock=self._kill_clock, sleep=self._kill_sleep, on_status=relay, cancel=cancel,
        )
        report: KillReport | None = None
        emit(KillStarted([job.job_id for job in entries]))
        try:
            report = executor.run(entries, concurrent_after=self._kill_mark)
            self._cache_statuses(report)
            self._mark_kills()
            if report.outcomes and not self._closed:
                with self._lock:
                    if self.snapshot is not None:
                        self._publish_quietly(emit)
        finally:
            self._kill_cancels.discard(cancel)
            # Always, even when the kernel is interrupted: a dashboard that saw
            # KillStarted must not stay on "killing" forever.
            if report is None:
                report = KillReport(complete=False, cancelled=cancel.is_set())
            emit(KillFinished(report))
        return report

    def _cache_statuses(self, report: KillReport) -> None:
        """Keep what the kill's verification saw, so the redraw needs no extra call."""
        with self._lock:
            for job_id, described in report.described.items():
                if job_id in self._jobs:
                    self._jobs[job_id] = dict(described)
            for kill, _, status in report.outcomes:
                cached = self._jobs.get(kill.job_id)
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
        is a daemon thread. Kills a previous tracker left half done are re-driven in the background.
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
            # In the background: under an outage the resumed kill may take its whole
            # deadline, and the notebook must see the run meanwhile.
            try:
                self.start_kill([], resume=True, loop=asyncio.get_running_loop())
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
                self.start_kill([], resume=True)  # in the background, as in _loop_async
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
        for cancel in list(self._kill_cancels):
            cancel.set()  # a running kill stops before its next call
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


class KillHandle:
    """A kill running in the background (``Tracker.start_kill``)."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.report: KillReport | None = None
        self.error: BaseException | None = None

    def cancel(self) -> None:
        """Stop before the next call; what was sent stays sent, the rest pending."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> KillReport | None:
        """Block until the kill ends (or ``timeout``); its report, None while it runs."""
        self._done.wait(timeout)
        return self.report

    def _finish(self, report: KillReport | None, error: BaseException | None) -> None:
        self.report, self.error = report, error
        self._done.set()


def _on_loop(
    loop: asyncio.AbstractEventLoop,
    emit: Emit,
    progress: Callable[[int, int], None] | None,
    on_status: Callable[[KillStatus], None] | None,
) -> tuple[Emit, Callable[[int, int], None] | None, Callable[[KillStatus], None] | None]:
    """Callbacks that run on ``loop`` whatever thread calls them."""

    def emit_on(event: Event) -> None:
        loop.call_soon_threadsafe(emit, event)

    progress_on: Callable[[int, int], None] | None = None
    if progress is not None:
        cb = progress

        def progress_on(done: int, total: int) -> None:
            loop.call_soon_threadsafe(cb, done, total)

    status_on: Callable[[KillStatus], None] | None = None
    if on_status is not None:
        sb = on_status

        def status_on(status: KillStatus) -> None:
            loop.call_soon_threadsafe(sb, status)

    return emit_on, progress_on, status_on

