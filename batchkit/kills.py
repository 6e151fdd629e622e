"""The kill executor: the one owner of a kill, from the ledger claim to the verified result.

For a plan (a list of ``KillJob``) a kill is, in this order and nowhere else:

1. **claim** every job in the ledger in one transaction (``Ledger.claim_kills``): a job
   already killed is reported, not sent; a job another live kill (thread, process or
   kernel) holds is left to it — this kill waits for its result and adopts it; every
   other job gets its audit row (the pending one of an interrupted kill is re-used);
2. **send**, grouped by reason (one reason per call) in chunks of at most 50 ids: in each
   backoff step ONE attempt per chunk that still has ids to send (``terminate_once``:
   TerminateJobs, or TerminateJob per id where the service lacks the bulk call);
3. **verify** each chunk that Batch answered with ONE DescribeJobs of those ids, after the
   step's calls (a few quick tries at most: if it still fails, the terminate's answer
   stands, unverified);
4. **record** each job's result in the ledger once it is final.

Retries happen here and only here, decided by the client's classification of each answer
(error codes and exception types, ``BatchClient._classified``), never by message text:
throttling, 5xx, dropped connections and per-job errors inside the HTTP 200 are sent again
after a full-jitter backoff; refusals are final; expired credentials stop the kill at once.
One deadline bounds the whole kill — every chunk, every step, the verifications and the
wait for another kill's claims — and ``cancel()`` stops it between calls. Whatever is not
final when it stops stays pending in the ledger (what was sent is marked sent), the claims
are released, and the next kill (or the next Tracker on the same ledger) finishes it under
the same audit rows: each job ends with exactly one final row.

The progress of a kill is pure data (``KillStatus``) handed to ``on_status`` after every
call and every wait; ``KillStatus.line()`` is the sentence a person reads, e.g.
"27 killed, 93 waiting: Batch API failing since 12:04:10, 14 retries, AuthorizerConfigurationException".
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from batchkit.client import BULK_KILL_CHUNK, TERMINATE, BatchApi, KillAttempt, KillMode
from batchkit.errors import BatchkitError, CredentialsError
from batchkit.retry import IDEMPOTENT_WRITE, RetryPolicy
from batchkit.schema import JOB_TERMINAL, JobOutcome, KillJob

if TYPE_CHECKING:
    from batchkit.ledger import Ledger

log = logging.getLogger(__name__)

#: A claim outlives the kill's deadline by this much, so a kill that is merely slow keeps
#: its jobs; a dead process's claims are taken over at once (same host, pid gone).
LEASE_MARGIN: Final = 60.0
#: Seconds between two looks at the ledger while another kill holds some of our jobs.
FOLLOW_INTERVAL: Final = 0.25
#: Tries of the one verification describe per chunk: a healthy API answers the first; a
#: flaky one (30% of calls failing) rarely fails three in a row; an outage does not hold
#: the kill long (the client's backoff is short for the first retries).
VERIFY_ATTEMPTS: Final = 3
#: Outcomes that end a kill well (the job is dead, or was never there).
KILLED_OUTCOMES: Final = frozenset({"terminated", "cancelled", "already_done", "not_found"})

Stage = Literal["claiming", "sending", "backing off", "following", "done", "cancelled", "stopped"]


# --- pure data ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillStatus:
    """Where a kill stands (pure data; ``line()`` renders it)."""

    total: int
    killed: int = 0
    failed: int = 0
    #: jobs another batchkit kill holds right now (this kill follows them)
    held: int = 0
    #: Terminate HTTP calls made, and how many of them were re-sends
    calls: int = 0
    retries: int = 0
    #: wall time of the first failure of the current run of failures, None when healthy
    failing_since: datetime | None = None
    last_error: str | None = None
    stage: Stage = "claiming"

    @property
    def waiting(self) -> int:
        return max(0, self.total - self.killed - self.failed)

    @property
    def done(self) -> int:
        return self.killed + self.failed

    def line(self) -> str:
        """'27 killed, 93 waiting: Batch API failing since 12:04:10, 14 retries, AuthorizerConfigurationException'."""
        text = f"{self.killed:,} killed, {self.waiting:,} waiting"
        if self.failed:
            text = f"{self.killed:,} killed, {self.failed:,} failed, {self.waiting:,} waiting"
        extra: list[str] = []
        if self.failing_since is not None:
            extra.append(f"Batch API failing since {self.failing_since:%H:%M:%S}")
        if self.retries:
            extra.append(f"{self.retries:,} {'retry' if self.retries == 1 else 'retries'}")
        if self.failing_since is not None and self.last_error:
            extra.append(self.last_error)
        if self.held:
            extra.append(f"{self.held:,} being killed by another batchkit process")
        if self.stage == "cancelled":
            extra.append("cancelled")
        return text + (": " + ", ".join(extra) if extra else "")


@dataclass(frozen=True, slots=True)
class KillReport:
    """What a kill did, per job, with Batch's status described after the call."""

    #: (instruction, the final outcome, Batch's status on verification or None when the
    #: job could not be described; "not_found" when Batch no longer knows it). Jobs this
    #: kill sent, and jobs a concurrent kill finished while this one followed them.
    outcomes: list[tuple[KillJob, JobOutcome, str | None]] = field(default_factory=list)
    #: jobs of the plan the ledger already showed killed (a double click is harmless).
    skipped: list[KillJob] = field(default_factory=list)
    #: jobs left pending in the ledger, each with why (the next kill finishes them).
    pending: list[tuple[KillJob, str]] = field(default_factory=list)
    #: False when something is pending: the deadline passed, the kill was cancelled or
    #: closed, credentials expired. The ledger holds the intents; run the kill again.
    complete: bool = True
    cancelled: bool = False
    #: what stopped the kill before the end (expired credentials), if anything
    error: BatchkitError | None = None
    #: Terminate HTTP calls (re-sends included) and re-sends alone
    calls: int = 0
    retries: int = 0
    #: jobs finished by another batchkit kill while this one followed them
    adopted: int = 0
    #: the verification answers, by job id (the tracker keeps them in its cache)
    described: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.complete and all(outcome.ok for _, outcome, _ in self.outcomes)

    @property
    def failed(self) -> list[tuple[KillJob, JobOutcome, str | None]]:
        return [row for row in self.outcomes if not row[1].ok]

    @property
    def total(self) -> int:
        return len(self.outcomes) + len(self.skipped) + len(self.pending)

    @property
    def killed(self) -> int:
        return sum(1 for _, outcome, _ in self.outcomes if outcome.ok) + len(self.skipped)

    def summary(self) -> str:
        """'120 of 120 job(s) killed', '27 of 120 job(s) killed, 93 pending (…)'; the same
        counts in every process that killed the same plan at the same time."""
        text = f"{self.killed} of {self.total} job(s) killed"
        if self.skipped:
            text += f" ({len(self.skipped)} already before)"
        if self.failed:
            text += f", {len(self.failed)} failed"
        if self.pending:
            text += f", {len(self.pending)} pending"
            if self.error is not None:
                text += " (stopped: credentials)"
            elif self.cancelled:
                text += " (cancelled: run the kill again to finish)"
            else:
                text += " (run the kill again to finish)"
        return text


# --- pure helpers --------------------------------------------------------------------------


def chunks_by_reason(jobs: Iterable[KillJob], size: int = BULK_KILL_CHUNK) -> list[list[KillJob]]:
    """Group by reason (one reason per TerminateJobs call), then cut into chunks of ``size``."""
    groups: dict[str, list[KillJob]] = {}
    for job in jobs:
        groups.setdefault(job.reason, []).append(job)
    out: list[list[KillJob]] = []
    for group in groups.values():
        out.extend(group[i : i + size] for i in range(0, len(group), size))
    return out


def select_redrives(
    pending: Sequence[KillJob],
    plan: Sequence[KillJob],
    is_active: Callable[[str], bool],
    *,
    resume: bool = False,
) -> list[KillJob]:
    """The interrupted kills a kill of ``plan`` finishes too.

    All of them with ``resume``; otherwise those of the plan's jobs, and those whose job
    is not seen active (finished, gone, or not polled yet: sending again only records how
    it ended). A pending kill of another job that still runs is left alone: ``kill --job X``
    must not terminate jobs the user did not pick this time.
    """
    plan_ids = {job.job_id for job in plan}
    return [job for job in pending if resume or job.job_id in plan_ids or not is_active(job.job_id)]


def verified_outcome(
    mode: KillMode, job_id: str, reason: str, described: dict[str, Any] | None, missing: bool
) -> tuple[JobOutcome, str | None]:
    """The final outcome of an accepted kill from the verification describe.

    Unknown ids are "successful" to TerminateJobs (AWS API reference): missing here means
    Batch has no such job. A job that is terminal with another status reason had ended
    before our call reached it.
    """
    if missing:
        return (JobOutcome(job_id, "not_found", message="Batch has no such job (unknown id, "
                           "another region/account, or aged out after about a week)"), "not_found")
    if described is None:
        return (JobOutcome(job_id, mode.done, message="not verified: the describe after the kill failed"), None)
    status = str(described.get("status"))
    if status in JOB_TERMINAL and described.get("statusReason") not in (None, reason):
        return (JobOutcome(job_id, "already_done", status=status, message=f"already {status}"), status)
    return (JobOutcome(job_id, mode.done, status=status), status)


# --- the executor ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Chunk:
    reason: str
    todo: list[str]


class KillExecutor:
    """Carries out one kill (see the module docstring); ``run`` once, ``cancel`` any time.

    ``clock``/``sleep``: seconds and how to wait (default: monotonic time, and a wait that
    ``cancel()`` interrupts); tests inject a fake pair so a 20 s outage takes no time.
    ``wall`` gives the "failing since" time of day.
    """

    def __init__(
        self,
        client: BatchApi,
        ledger: Ledger | None,
        *,
        run_name: str | None,
        deadline: float,
        mode: KillMode = TERMINATE,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        wall: Callable[[], datetime] | None = None,
        policy: RetryPolicy = IDEMPOTENT_WRITE,
        rng: random.Random | None = None,
        on_status: Callable[[KillStatus], None] | None = None,
        follow_interval: float = FOLLOW_INTERVAL,
        cancel: threading.Event | None = None,
    ) -> None:
        if deadline < 0:
            raise ValueError(f"a kill's deadline must be >= 0 seconds, got {deadline!r}")
        self.client = client
        self.ledger = ledger
        self.run_name = run_name
        self.deadline = float(deadline)
        self.mode = mode
        self._cancel = cancel if cancel is not None else threading.Event()
        self._clock = clock or time.monotonic
        self._sleep = sleep or (lambda seconds: self._cancel.wait(seconds) and None)
        self._wall = wall or (lambda: datetime.now().astimezone())
        self._policy = policy
        self._rng = rng or random.Random()
        self._on_status = on_status
        self._follow_interval = follow_interval
        self._lock = threading.Lock()
        self._status = KillStatus(total=0)
        self._started = False

    # -- control --------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop before the next call (a call already sent is answered and recorded)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def status(self) -> KillStatus:
        with self._lock:
            return self._status

    def _publish(self, **changes: Any) -> None:
        with self._lock:
            values = {name: getattr(self._status, name) for name in KillStatus.__slots__}
            values.update(changes)
            self._status = KillStatus(**values)
            status = self._status
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception:  # a broken progress display must not stop a kill
                log.exception("batchkit kill: progress callback failed")

    # -- the kill ---------------------------------------------------------------------------

    def run(
        self,
        jobs: Sequence[KillJob],
        *,
        concurrent_after: int | None = None,
        describe_first: bool = False,
        verify: bool = True,
    ) -> KillReport:
        """Kill ``jobs``; returns by the deadline (plus at most one call in flight).

        ``concurrent_after``: see ``Ledger.claim_kills``. ``describe_first``: describe the
        jobs before sending (for a caller without a fresh snapshot: a finished job is
        ``already_done``, an unknown one ``not_found``, without a call). Never raises for
        an AWS failure; a bug (or KeyboardInterrupt) propagates after the claims are
        released and what was answered is recorded.
        """
        if self._started:
            raise RuntimeError("a KillExecutor runs once: create a new one for the next kill")
        self._started = True
        run = _Run(self, jobs)
        try:
            run.claim(concurrent_after)
            if describe_first and run.mine:
                run.describe_first()
            run.send_all(verify)
        except CredentialsError as error:
            run.error = error
        finally:
            run.release()
        return run.report()


class _Run:
    """The state of one ``KillExecutor.run`` (kept apart so the executor stays small)."""

    def __init__(self, executor: KillExecutor, jobs: Sequence[KillJob]) -> None:
        self.x = executor
        self.client = executor.client
        self.ledger = executor.ledger
        self.mode = executor.mode
        self.until = executor._clock() + executor.deadline
        self.jobs: dict[str, KillJob] = {}
        for job in jobs:
            self.jobs.setdefault(job.job_id, job)
        self.owner = self.ledger.new_claim_owner() if self.ledger is not None else None
        self.kill_ids: dict[str, int] = {}
        self.mine: list[str] = []  # ids this kill sends, in plan order
        self.final: dict[str, tuple[JobOutcome, str | None]] = {}
        self.skipped: list[KillJob] = []
        self.held: dict[str, int] = {}  # job id -> kill_id another kill holds
        self.adopted = 0
        self.last_error: dict[str, str] = {}  # job id -> why it is not final yet
        self.sent: set[str] = set()
        #: answered in this step, not yet verified/recorded (counted in the progress at once)
        self.accepted: set[str] = set()
        self.refused: set[str] = set()
        self.described: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.retries = 0
        self.failing_since: datetime | None = None
        self.error_code: str | None = None
        self.error: BatchkitError | None = None

    # -- status ----------------------------------------------------------------------------------

    def publish(self, stage: Stage) -> None:
        killed = len(self.skipped) + len(self.accepted) + sum(
            1 for o, _ in self.final.values() if o.outcome in KILLED_OUTCOMES
        )
        failed = len(self.refused) + sum(1 for o, _ in self.final.values() if o.outcome not in KILLED_OUTCOMES)
        self.x._publish(
            total=len(self.jobs), killed=killed, failed=failed, held=len(self.held), calls=self.calls,
            retries=self.retries, failing_since=self.failing_since, last_error=self.error_code, stage=stage,
        )

    def left(self) -> float:
        return self.until - self.x._clock()

    # -- 1. claim ----------------------------------------------------------------------------------

    def claim(self, concurrent_after: int | None) -> None:
        self.publish("claiming")
        if self.ledger is None or self.owner is None:
            self.mine = list(self.jobs)
            return
        request = {"operation": self.mode.bulk_op, "request_id": str(uuid.uuid4()), "owner": self.owner}
        claim = self.ledger.claim_kills(
            self.x.run_name, list(self.jobs.values()), request, owner=self.owner,
            lease_s=self.x.deadline + LEASE_MARGIN, concurrent_after=concurrent_after,
        )
        self._absorb_claim(claim.mine, claim.done, claim.held, first=True)

    def _absorb_claim(
        self, mine: dict[str, int], done: dict[str, dict[str, Any]], held: dict[str, dict[str, Any]],
        *, first: bool,
    ) -> None:
        from batchkit.ledger import kill_job_of

        for job_id, row in done.items():
            job = self.jobs.setdefault(job_id, kill_job_of(row))
            if first and job_id not in self.held:
                self.skipped.append(job)
            else:
                self._adopt(job_id, row)
        for job_id, row in held.items():
            self.jobs.setdefault(job_id, kill_job_of(row))
            self.held[job_id] = int(row["kill_id"])
        for job_id, kill_id in mine.items():
            self.held.pop(job_id, None)
            self.kill_ids[job_id] = kill_id
            if job_id not in self.mine:
                self.mine.append(job_id)

    def _adopt(self, job_id: str, row: dict[str, Any]) -> None:
        status = row.get("verified_status") or row.get("status")
        outcome = JobOutcome(
            job_id, row["outcome"], status=row.get("status"), error_code=row.get("error_code"),
            message=row.get("message") or "",
        )
        self.final[job_id] = (outcome, status)
        self.held.pop(job_id, None)
        self.adopted += 1

    def describe_first(self) -> None:
        """For callers without a fresh snapshot: settle finished/unknown jobs without a call."""
        answer = self.client.describe_jobs(self.mine)
        missing = set(answer.missing)
        results: list[tuple[str, JobOutcome, str | None]] = []
        for job_id in self.mine:
            job = answer.jobs.get(job_id)
            status = None if job is None else str(job.get("status"))
            if job_id in missing:
                results.append((job_id, JobOutcome(job_id, "not_found", message="Batch has no such job "
                                "(unknown id, another region/account, or aged out after about a week)"), "not_found"))
            elif status in JOB_TERMINAL:
                results.append((job_id, JobOutcome(job_id, "already_done", status=status,
                                                   message=f"already {status}"), status))
            elif status is not None and self.mode.acts_on is not None and status not in self.mode.acts_on:
                results.append((job_id, JobOutcome(
                    job_id, "error", status=status, error_code="NotCancellable",
                    message=f"job {job_id} is {status}: CancelJob would quietly do nothing; use terminate_jobs",
                ), status))
        self.record(results)

    # -- 2.-4. send, verify, record -----------------------------------------------------------

    def send_all(self, verify: bool) -> None:
        step = 0
        while True:
            chunks = [
                _Chunk(group[0].reason, [job.job_id for job in group])
                for group in chunks_by_reason(self.jobs[j] for j in self.mine if j not in self.final)
            ]
            while chunks:
                if self.x.cancelled:
                    return
                if step > 0:
                    if self.left() <= 0:
                        break
                    wait = min(self.x._policy.backoff(step, self.x._rng), self.left())
                    self.publish("backing off")
                    self.x._sleep(max(0.0, wait))
                    if self.x.cancelled or self.left() <= 0:
                        break
                resend = step > 0
                step += 1
                self.step(chunks, verify=verify, resend=resend)
                chunks = [c for c in chunks if c.todo]
            if not self.follow():
                return

    def step(self, chunks: list[_Chunk], *, verify: bool, resend: bool) -> None:
        """One backoff step: ONE attempt per chunk, then the verification — one describe of
        every job Batch answered in the step (DescribeJobs takes 100 ids: at most one call
        per chunk of 50; after the whole step, so the first chunks' containers have had the
        others' calls to stop in) — then the ledger."""
        answered: list[tuple[_Chunk, KillAttempt]] = []
        try:
            for chunk in chunks:
                if self.x.cancelled or (resend and self.left() <= 0):
                    break
                attempt = self.send(chunk, resend=resend)
                if attempt is not None:
                    answered.append((chunk, attempt))
                    self.publish("sending")  # after the append: a callback that raises loses nothing
        finally:
            # Even when credentials die mid-step: what Batch accepted is recorded.
            seen = self.describe([j for _, a in answered for j in (*a.accepted, *a.refused)], verify)
            for chunk, attempt in answered:
                self.record(self.verified(attempt, chunk.reason, seen), again=attempt.again)
            self.publish("sending")

    def send(self, chunk: _Chunk, *, resend: bool) -> KillAttempt | None:
        ids = [j for j in chunk.todo if j not in self.final]
        chunk.todo = []
        if not ids:
            return None
        if self.ledger is not None:
            self.ledger.mark_sent(self.kill_ids[j] for j in ids if j in self.kill_ids)
        self.sent.update(ids)
        kill = self.client.cancel_once if self.mode.bulk_op == "CancelJobs" else self.client.terminate_once
        try:
            attempt: KillAttempt = kill(ids, chunk.reason)
        except CredentialsError as error:
            for job_id in ids:
                self.last_error[job_id] = f"{error.code}: credentials stopped the kill"
            raise
        self.calls += attempt.calls
        if resend:
            self.retries += 1
            self.client.note_retry(attempt.operation, self.error_code or "retry")
        if attempt.again:
            code, _ = next(iter(attempt.again.values()))
            if self.failing_since is None:
                self.failing_since = self.x._wall()
            self.error_code = code
            for job_id, (c, m) in attempt.again.items():
                self.last_error[job_id] = f"{c}: {m}" if m else c
        elif attempt.accepted or attempt.refused:
            self.failing_since, self.error_code = None, None
        chunk.todo = [j for j in ids if j in attempt.again]
        self.accepted.update(attempt.accepted)
        self.refused.update(attempt.refused)
        return attempt

    def describe(self, ids: list[str], verify: bool) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """(jobs found, ids Batch does not know) of the verification describe."""
        if not verify or not ids:
            return ({}, set())
        try:
            answer = self.client.describe_jobs(ids, attempts=VERIFY_ATTEMPTS)
        except CredentialsError:
            self.error_code = "credentials"  # the kills were accepted: recorded unverified
            return ({}, set())
        self.described.update(answer.jobs)
        return (answer.jobs, set(answer.missing))

    def verified(
        self, attempt: KillAttempt, reason: str, seen: tuple[dict[str, dict[str, Any]], set[str]]
    ) -> list[tuple[str, JobOutcome, str | None]]:
        """The final outcome of each job Batch answered in ``attempt``."""
        found, missing = seen
        results: list[tuple[str, JobOutcome, str | None]] = []
        for job_id in attempt.accepted:
            outcome, status = verified_outcome(self.mode, job_id, reason, found.get(job_id), job_id in missing)
            results.append((job_id, outcome, status))
        for job_id, (code, message) in attempt.refused.items():
            job = found.get(job_id)
            status = None if job is None else str(job.get("status"))
            if job_id in missing:
                # A refusal of a job Batch does not know (TerminateJob's ClientException).
                results.append((job_id, JobOutcome(job_id, "not_found", error_code=code, message=message), "not_found"))
            elif status in JOB_TERMINAL:
                results.append((job_id, JobOutcome(job_id, "already_done", status=status, error_code=code,
                                                   message=f"already {status}"), status))
            else:
                results.append((job_id, JobOutcome(job_id, "error", status=status, error_code=code,
                                                   message=message), status))
        return results

    def record(
        self, results: list[tuple[str, JobOutcome, str | None]], again: dict[str, tuple[str, str]] | None = None
    ) -> None:
        for job_id, outcome, status in results:
            self.final[job_id] = (outcome, status)
            self.last_error.pop(job_id, None)
            self.accepted.discard(job_id)
            self.refused.discard(job_id)
        if self.ledger is None:
            return
        rows: list[tuple[int, JobOutcome, str | None, bool]] = [
            (self.kill_ids[j], o, s, True) for j, o, s in results if j in self.kill_ids
        ]
        for job_id, (code, message) in (again or {}).items():
            if job_id in self.kill_ids:
                rows.append((self.kill_ids[job_id], JobOutcome(job_id, "error", error_code=code, message=message),
                             None, False))
        self.ledger.record_kill_results(rows)

    # -- following another kill's claims -----------------------------------------------------------

    def follow(self) -> bool:
        """Wait for jobs another kill holds: adopt their results, or take over a claim that
        died. True when some came back to this kill to send; False when done."""
        if self.ledger is None or self.owner is None:
            return False
        while self.held and not self.x.cancelled and self.left() > 0:
            rows = self.ledger.kill_rows(self.held.values())
            free: list[KillJob] = []
            for job_id, kill_id in list(self.held.items()):
                row = rows.get(kill_id)
                if row is None:
                    continue
                if row["finished_at"] is not None:
                    if row["outcome"] in KILLED_OUTCOMES or row["outcome"] == "error":
                        self._adopt(job_id, row)
                elif row["claim_owner"] is None or self.ledger.claim_is_dead(row):
                    free.append(self.jobs[job_id])
            if free:
                request = {"operation": self.mode.bulk_op, "request_id": str(uuid.uuid4()), "owner": self.owner}
                claim = self.ledger.claim_kills(
                    self.x.run_name, free, request, owner=self.owner, lease_s=self.left() + LEASE_MARGIN,
                )
                self._absorb_claim(claim.mine, claim.done, claim.held, first=False)
                if claim.mine:
                    return True
            self.publish("following")
            if self.held:
                self.x._sleep(min(self.x._follow_interval, max(0.0, self.left())))
        return False

    def release(self) -> None:
        if self.ledger is not None and self.owner is not None:
            try:
                self.ledger.release_claims(self.owner)
            except Exception:  # never hide the kill's own outcome behind a ledger hiccup
                log.exception("batchkit kill: could not release the claims of %s", self.owner)

    # -- the report ---------------------------------------------------------------------------------

    def report(self) -> KillReport:
        outcomes = [(self.jobs[j], o, s) for j, (o, s) in self.final.items()]
        skipped_ids = {job.job_id for job in self.skipped}
        pending: list[tuple[KillJob, str]] = []
        cancelled = self.x.cancelled
        for job_id, job in self.jobs.items():
            if job_id in self.final or job_id in skipped_ids:
                continue
            pending.append((job, self.why(job_id, cancelled)))
        self.publish("cancelled" if cancelled else "stopped" if pending else "done")
        return KillReport(
            outcomes=outcomes, skipped=list(self.skipped), pending=pending, complete=not pending,
            cancelled=cancelled, error=self.error, calls=self.calls, retries=self.retries,
            adopted=self.adopted, described=dict(self.described),
        )

    def why(self, job_id: str, cancelled: bool) -> str:
        if self.error is not None:
            return f"not finished: {self.error}"
        if job_id in self.held:
            return "being killed by another batchkit process (its result will be in the ledger)"
        error = self.last_error.get(job_id)
        if error is not None:
            return f"Batch kept failing until the kill's deadline: {error}"
        if cancelled:
            return "sent, no answer before the cancel" if job_id in self.sent else "cancelled before it was sent"
        return "not sent before the kill's deadline"


def kill_now(
    client: BatchApi,
    ids: Iterable[str],
    reason: str,
    *,
    mode: KillMode = TERMINATE,
    verify: bool = True,
    deadline: float = 300.0,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> list[JobOutcome]:
    """Kill ``ids`` without a ledger (``BatchClient.terminate_jobs``): one outcome per id.

    Jobs are described first; what is still not final at the deadline comes back as an
    ``error`` outcome naming the last error.
    """
    if isinstance(ids, str):
        raise TypeError("kill_now takes an iterable of job ids, not one string: wrap it in a list")
    wanted = list(dict.fromkeys(i.strip() for i in ids if isinstance(i, str) and i.strip()))
    from batchkit.client import _check_reason

    _check_reason(reason, mode.bulk_method)
    if not wanted:
        return []
    executor = KillExecutor(
        client, None, run_name=None, deadline=deadline, mode=mode,
        clock=clock or getattr(client, "clock", None), sleep=sleep or getattr(client, "sleep", None),
    )
    plan = [KillJob(job_id=i, verdict="manual", reason=reason) for i in wanted]
    report = executor.run(plan, describe_first=True, verify=verify)
    if report.error is not None:
        raise report.error
    by_id = {job.job_id: outcome for job, outcome, _ in report.outcomes}
    pending = {job.job_id: why for job, why in report.pending}
    out: list[JobOutcome] = []
    for job_id in wanted:
        if job_id in by_id:
            out.append(by_id[job_id])
        else:
            why = pending.get(job_id, "no answer")
            code = why.split(":", 2)[1].strip() if why.startswith("Batch kept failing") else None
            out.append(JobOutcome(job_id, "error", error_code=code, message=why))
    return out


__all__ = [
    "KillExecutor",
    "KillReport",
    "KillStatus",
    "chunks_by_reason",
    "kill_now",
    "select_redrives",
    "verified_outcome",
]
