"""``BatchClient``: the only code in batchkit that talks to AWS Batch.

Tracking, kills, submissions and the doctor all go through it. It keeps working while the
API fails, because that is exactly when Nextflow gave up and orphaned its jobs
(nextflow-io/nextflow#4709, #5516: bursts of HTTP 500 ``AuthorizerConfigurationException``
on DescribeJobs aborted runs whose jobs then kept running).

One retry layer. botocore's own retries are off (one HTTP attempt per SDK call, its hook
only counts what was sent and how it failed); every read and idempotent write is retried
here by one policy (``batchkit.retry``: exponential backoff with full jitter, decided by
error codes and exception types, never by message text) until the call's deadline — or the
whole command's, set with ``give_up_after``, whichever comes first. Kills are the one
exception: ``terminate_once``/``cancel_once`` make ONE attempt and classify the answer, and
the kill executor (``batchkit.kills``) decides when to send again, under one deadline for
the whole kill. SubmitJob is never re-sent blindly (it has no idempotency token).

Every HTTP request, botocore's own retries included, first takes a token from one shared
``RateBudget`` (default 20 requests/s), so batchkit never starves Nextflow of the account's
~50 TPS. ``stats`` is a snapshot of calls, retries and errors for the dashboard; reading it
never touches the network.

Note: the boto3 client passed in is modified: its retry handler is replaced (one attempt,
counted) and a rate-budget hook is added; ``close()`` takes
our hooks off again and gives it back a plain standard-mode retry handler.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    ParamValidationError,
    SSOError,
    TokenRetrievalError,
)
from botocore.retries import standard as botocore_standard

from batchkit._aws_session import boto3_session, client_region, emulator_credentials
from batchkit._time import epoch_ms
from batchkit.errors import (
    ACCESS_DENIED_CODES,
    EXPIRED_CREDENTIAL_CODES,
    AccessDeniedError,
    ApiUnavailableError,
    AwsError,
    CredentialsError,
    NotFoundError,
    access_denied,
    expired_credentials,
)
from batchkit.ratelimit import BudgetStats, RateBudget
from batchkit.retry import (
    DeadlineExceededError,
    MalformedAnswerError,
    OperationKind,
    Retrying,
    error_code,
    error_message,
    http_status,
    is_ambiguous,
    is_code_retryable,
    is_retryable,
    policy_for,
)
from batchkit.schema import (
    JOB_CANCELLABLE,
    JOB_STATUSES,
    SUBMISSION_TAG,
    DescribeResult,
    JobOutcome,
    OutcomeKind,
)

T = TypeVar("T")
U = TypeVar("U")

#: DescribeJobs takes at most 100 ids a call (DescribeJobs API reference).
DESCRIBE_CHUNK: Final = 100
#: TerminateJobs / CancelJobs take at most 50 ids a call (botocore >= 1.44 model).
BULK_KILL_CHUNK: Final = 50
#: ListJobs page sizes: up to 1000 without a filter, 100 with one (ListJobs API reference).
LIST_PAGE_NO_FILTER: Final = 1000
LIST_PAGE_FILTER: Final = 100
#: Batch's limit on a TerminateJob/CancelJob reason.
MAX_REASON: Final = 1024
#: botocore's attempts per SDK call: one. Retrying is this module's policy alone: retries
#: nested in retries multiply, so a kill outlived its deadline many times over (issue #11).
BOTOCORE_ATTEMPTS: Final = 1
#: Seconds between an ambiguous SubmitJob failure and the look for its tag.
SUBMIT_LOOKUP_DELAY: Final = 5.0
#: Seconds over which "retries in the last minute" is counted.
STATS_WINDOW: Final = 60.0

#: Error codes meaning "this service does not know that operation" (an older region, an
#: emulator, moto): fall back from the bulk call to the per-job one.
UNKNOWN_OPERATION_CODES: Final[frozenset[str]] = frozenset(
    {"UnknownOperationException", "UnknownOperation", "InvalidAction", "404", "NotFound",
     "NotFoundException", "HTTP404"}
)



# --- stats: pure data --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LastError:
    """The most recent error any call saw."""

    operation: str
    code: str
    message: str
    #: when it happened, on the client's clock
    at: float
    #: seconds between then and the snapshot
    age: float


@dataclass(frozen=True, slots=True)
class OperationStats:
    """Counts for one AWS operation: HTTP attempts, re-sends (botocore's and ours), failures."""

    calls: int = 0
    retries: int = 0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of how the Batch API has been answering; pure data, no network."""

    operations: Mapping[str, OperationStats]
    errors_by_code: Mapping[str, int]
    last_error: LastError | None
    degraded: bool
    retries_last_minute: int
    errors_last_minute: int
    #: the most frequent error code in the last minute (else over the client's lifetime)
    top_error_code: str | None
    #: calls backing off right now
    retrying_now: int
    budget: BudgetStats

    @property
    def calls(self) -> int:
        return sum(o.calls for o in self.operations.values())

    @property
    def retries(self) -> int:
        return sum(o.retries for o in self.operations.values())

    @property
    def errors(self) -> int:
        return sum(o.errors for o in self.operations.values())

    def summary(self) -> str:
        """One line for the dashboard."""
        if not self.degraded:
            return "healthy"
        code = f" — {self.top_error_code}" if self.top_error_code else ""
        if self.retries_last_minute:
            noun = "retry" if self.retries_last_minute == 1 else "retries"
            return f"degraded: {self.retries_last_minute} {noun} in the last minute{code}"
        return f"degraded: {self.retrying_now} call(s) retrying now{code}"


class _StatsRecorder:
    """Thread-safe counters behind ``BatchClient.stats``."""

    def __init__(self, clock: Callable[[], float], degraded_after: int) -> None:
        self._clock = clock
        self._degraded_after = degraded_after
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._retries: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._codes: Counter[str] = Counter()
        self._recent_retries: deque[tuple[float, str]] = deque()
        self._recent_errors: deque[tuple[float, str]] = deque()
        self._last: tuple[str, str, str, float] | None = None
        self._retrying_now = 0

    def call(self, op: str) -> None:
        with self._lock:
            self._calls[op] += 1

    def error(self, op: str, code: str, message: str) -> None:
        now = self._clock()
        with self._lock:
            self._errors[op] += 1
            self._codes[code] += 1
            self._recent_errors.append((now, code))
            self._last = (op, code, message, now)

    def retry(self, op: str, code: str) -> None:
        now = self._clock()
        with self._lock:
            self._retries[op] += 1
            self._recent_retries.append((now, code))

    @contextmanager
    def retrying(self) -> Iterator[None]:
        with self._lock:
            self._retrying_now += 1
        try:
            yield
        finally:
            with self._lock:
                self._retrying_now -= 1

    def snapshot(self, budget: BudgetStats) -> ClientStats:
        now = self._clock()
        with self._lock:
            for recent in (self._recent_retries, self._recent_errors):
                while recent and recent[0][0] < now - STATS_WINDOW:
                    recent.popleft()
            ops = sorted(set(self._calls) | set(self._retries) | set(self._errors))
            operations = {
                op: OperationStats(self._calls[op], self._retries[op], self._errors[op])
                for op in ops
            }
            recent_codes = Counter(code for _, code in self._recent_errors)
            recent_codes.update(code for _, code in self._recent_retries)
            top = (recent_codes or self._codes).most_common(1)
            last = None
            if self._last is not None:
                op, code, message, at = self._last
                last = LastError(op, code, message, at, max(0.0, now - at))
            retries_recent = len(self._recent_retries)
            return ClientStats(
                operations=operations,
                errors_by_code=dict(self._codes),
                last_error=last,
                degraded=retries_recent >= self._degraded_after or self._retrying_now > 0,
                retries_last_minute=retries_recent,
                errors_last_minute=len(self._recent_errors),
                top_error_code=top[0][0] if top else None,
                retrying_now=self._retrying_now,
                budget=budget,
            )


# --- small pure helpers ----------------------------------------------------------------------


def _unique(ids: Iterable[str], what: str) -> list[str]:
    """Ids in first-seen order, without repeats or blanks."""
    if isinstance(ids, str):
        raise TypeError(f"{what} takes an iterable of job ids, not one string: wrap it in a list")
    out: dict[str, None] = {}
    for raw in ids:
        if not isinstance(raw, str):
            raise TypeError(f"{what}: job id {raw!r} is not a string")
        jid = raw.strip()
        if jid:
            out.setdefault(jid, None)
    return list(out)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _answer_error(response: Any, caught: BaseException | None) -> tuple[str, str] | None:
    """(code, message) of a failed HTTP attempt as the ``needs-retry`` event sees it."""
    if caught is not None:
        return (error_code(caught), error_message(caught))
    if not isinstance(response, tuple) or len(response) != 2:
        return None
    http, parsed = response
    status = getattr(http, "status_code", 200)
    if isinstance(status, int) and status < 300:
        return None
    err = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
    code = str(err.get("Code") or f"HTTP{status}")
    return (code, " ".join(str(err.get("Message") or "").split()))


def _validate_describe(answer: Any, chunk: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The jobs of a DescribeJobs answer that were asked for, or MalformedAnswerError.

    A missing ``jobs`` key or wrong types is a broken answer (retried); unknown ids simply
    absent from a well-formed answer are legitimate (DescribeJobs API reference, nextflow-io/nextflow#7301).
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("jobs"), list):
        raise MalformedAnswerError(
            f"DescribeJobs answered without a 'jobs' list for {len(chunk)} ids (starting {chunk[0]})"
        )
    wanted = set(chunk)
    found: dict[str, dict[str, Any]] = {}
    for job in answer["jobs"]:
        if (
            not isinstance(job, dict)
            or not isinstance(job.get("jobId"), str)
            or not isinstance(job.get("status"), str)
        ):
            raise MalformedAnswerError(f"DescribeJobs answered a job without jobId/status: {job!r:.200}")
        if job["jobId"] in wanted:
            found[job["jobId"]] = job
    return found


def _list_of(answer: Any, key: str, op: str) -> list[Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get(key), list):
        raise MalformedAnswerError(f"{op} answered without a '{key}' list")
    return list(answer[key])


@dataclass(frozen=True, slots=True)
class KillMode:
    """A bulk kill call, its per-job fallback, and what success means."""

    bulk_op: str
    bulk_method: str
    single_op: str
    single_method: str
    done: OutcomeKind
    #: states in which the call does something; others are reported, not sent
    acts_on: frozenset[str] | None


TERMINATE: Final = KillMode("TerminateJobs", "terminate_jobs", "TerminateJob", "terminate_job", "terminated", None)
CANCEL: Final = KillMode("CancelJobs", "cancel_jobs", "CancelJob", "cancel_job", "cancelled", JOB_CANCELLABLE)


@dataclass(frozen=True, slots=True)
class KillAttempt:
    """What ONE attempt of a kill call answered, per id; nothing here was retried.

    ``accepted``: Batch took the request (TerminateJobs counts unknown ids as successful,
    AWS API reference; the verification describe tells). ``refused``: an answer that will be
    the same next time (bad input, a missing permission): final. ``again``: not processed
    this time (throttling, 5xx, a dropped connection, a per-job error inside the HTTP 200
    that the SDK does not retry): worth sending again, which is the caller's decision.
    """

    operation: str
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    again: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: HTTP calls this attempt made (1 for a bulk call, one per id for the fallback)
    calls: int = 0


@runtime_checkable
class BatchApi(Protocol):
    """What the tracker and the kill executor need from a Batch client.

    ``BatchClient`` implements it; so does the tests' in-memory double, and a test checks
    both against this Protocol's signatures so the two cannot drift apart.
    """

    @property
    def stats(self) -> ClientStats | None: ...

    def describe_jobs(self, ids: Iterable[str], *, attempts: int | None = None) -> DescribeResult: ...

    def list_jobs(
        self,
        queue: str,
        *,
        statuses: Iterable[str] | None = None,
        created_after: datetime | float | None = None,
        name_prefix: str | None = None,
        confirm_empty: bool = True,
    ) -> list[dict[str, Any]]: ...

    def terminate_once(self, ids: Sequence[str], reason: str) -> KillAttempt: ...

    def cancel_once(self, ids: Sequence[str], reason: str) -> KillAttempt: ...

    def note_retry(self, operation: str, code: str) -> None: ...


# --- the client ------------------------------------------------------------------------------


class BatchClient:
    """A retrying, rate-limited AWS Batch client (see the module docstring)."""

    def __init__(
        self,
        client: Any | None = None,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        rate: float = 20.0,
        deadline: float = 300.0,
        max_workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        botocore_attempts: int = BOTOCORE_ATTEMPTS,
        empty_rechecks: int = 1,
        degraded_after: int = 5,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        if botocore_attempts < 1:
            raise ValueError(f"botocore_attempts must be >= 1, got {botocore_attempts}")
        self._client: Any = client if client is not None else _make_boto3_client(
            region=region, profile=profile, endpoint_url=endpoint_url, max_workers=max_workers, deadline=deadline
        )
        self.region: str = str(self._client.meta.region_name)
        #: the named profile, for the renewal hint when credentials expire
        self.profile: str | None = profile or os.environ.get("AWS_PROFILE") or None
        self.deadline = float(deadline)
        #: the whole command's deadline on ``clock`` (``give_up_after``); None: per call only
        self._give_up_at: float | None = None
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._max_workers = max_workers
        self._empty_rechecks = max(0, empty_rechecks)
        self._budget = RateBudget(rate, clock=clock, sleep=sleep)
        self._stats = _StatsRecorder(clock, degraded_after)
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._bulk_supported: dict[str, bool] = {}
        self._bulk_denied: set[str] = set()
        self._closed = False
        self._install_hooks(botocore_attempts)

    # -- botocore hooks ------------------------------------------------------------------

    @property
    def _event_prefix(self) -> str:
        return str(self._client.meta.service_model.service_id.hyphenize())

    def _install_hooks(self, attempts: int) -> None:
        events = self._client.meta.events
        prefix = self._event_prefix
        unique = f"retry-config-{prefix}"
        # Replace whatever retry handler the client came with (legacy mode by default) by
        # botocore's standard one, then wrap it so its sleep is ours and SubmitJob is never
        # re-sent blindly. register_retry_handler registers under `unique`; take it off again.
        events.unregister(f"needs-retry.{prefix}", unique_id=unique)
        self._sdk_retry = botocore_standard.register_retry_handler(self._client, max_attempts=attempts)
        events.unregister(f"needs-retry.{prefix}", unique_id=unique)
        events.register(f"needs-retry.{prefix}", self._on_needs_retry, unique_id=unique)
        # First, so a test's fault hook (or any hook that answers) cannot skip the budget.
        events.register_first(
            f"before-send.{prefix}", self._on_before_send, unique_id=f"batchkit-budget-{id(self)}"
        )

    def _on_before_send(self, **kwargs: Any) -> None:
        # Every HTTP request pays, including botocore's own re-sends.
        self._budget.acquire()
        return None

    def _on_needs_retry(self, **kwargs: Any) -> Any:
        """After every HTTP attempt: count it, and let botocore's policy decide on a re-send."""
        operation = kwargs.get("operation")
        op = str(getattr(operation, "name", "?"))
        self._stats.call(op)
        failure = _answer_error(kwargs.get("response"), kwargs.get("caught_exception"))
        if failure is None:
            return False
        code, message = failure
        self._stats.error(op, code, message)
        if op == "SubmitJob":
            # SubmitJob has no idempotency token (docs/ARCHITECTURE.md §4): a blind re-send after a lost
            # answer creates a duplicate job. submit_job() looks for its tag first instead.
            return False
        delay = self._sdk_retry.needs_retry(**kwargs)
        if delay is None or delay is False:
            return False
        self._stats.retry(op, code)
        with self._stats.retrying():
            self._sleep(float(delay))
        return 0  # we slept already; botocore's own time.sleep(0) is a no-op

    # -- plumbing ------------------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._closed:
                raise RuntimeError("this BatchClient is closed: create a new one")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._max_workers, thread_name_prefix="batchkit-aws"
                )
            return self._executor

    def _concurrent_map(self, fn: Callable[[T], U], items: Sequence[T]) -> list[U]:
        """``fn`` over ``items``, concurrently when there is more than one (within the budget)."""
        if len(items) <= 1 or self._max_workers == 1:
            return [fn(item) for item in items]
        return list(self._pool().map(fn, items))

    def _backoff_sleep(self, seconds: float) -> None:
        with self._stats.retrying():
            self._sleep(seconds)

    def give_up_after(self, seconds: float) -> None:
        """Bound every later call by one deadline ``seconds`` from now (a whole command's).

        Each call still stops at its own ``deadline``; past this one, calls fail at once
        without touching the network, so `reconcile --deadline 10` returns in about 10 s
        however many DescribeJobs chunks a large run needs.
        """
        self._give_up_at = self._clock() + max(0.0, float(seconds))

    def remaining(self) -> float | None:
        """Seconds left before the ``give_up_after`` deadline (None when there is none)."""
        if self._give_up_at is None:
            return None
        return max(0.0, self._give_up_at - self._clock())

    def _retrying(self, op: str, kind: OperationKind, attempts: int | None = None) -> Retrying:
        def on_retry(_n: int, error: BaseException, _wait: float) -> None:
            self._stats.retry(op, error_code(error))

        deadline = self.deadline
        left = self.remaining()
        if left is not None:
            deadline = min(deadline, left)
        policy = policy_for(kind, deadline)
        if attempts is not None:
            policy = replace(policy, max_attempts=attempts)
        return Retrying(
            policy,
            clock=self._clock,
            sleep=self._backoff_sleep,
            rng=self._rng,
            on_retry=on_retry,
        )

    def _raw(self, op: str, kind: OperationKind, fn: Callable[[], T], attempts: int | None = None) -> T:
        """Run one logical call under the one retry policy; errors other than credentials raw."""
        if self._closed:
            raise RuntimeError("this BatchClient is closed: create a new one")
        left = self.remaining()
        if left is not None and left <= 0:
            raise DeadlineExceededError(
                TimeoutError(f"the command's deadline passed before {op} was sent"), 0, 0.0
            )
        try:
            return self._retrying(op, kind, attempts).call(lambda: self._checked(op, fn))
        except NoCredentialsError as error:
            raise _credentials_error(op) from error

    def _checked(self, op: str, fn: Callable[[], T]) -> T:
        """``fn()``, with dead credentials turned into the one renewal message (no retry)."""
        try:
            return fn()
        except (SSOError, TokenRetrievalError, CredentialRetrievalError) as error:
            # botocore's own words for an expired SSO login ("run aws sso login").
            raise expired_credentials(op, type(error).__name__, error_message(error), self.profile) from error
        except ClientError as error:
            if error_code(error) in EXPIRED_CREDENTIAL_CODES:
                raise expired_credentials(op, error_code(error), error_message(error), self.profile) from error
            raise

    def _call(self, op: str, kind: OperationKind, fn: Callable[[], T], what: str) -> T:
        """Like ``_raw`` but every failure becomes a batchkit error naming ``what``."""
        try:
            return self._raw(op, kind, fn)
        except DeadlineExceededError as error:
            raise self._unavailable(op, what, error) from error
        except (ClientError, ParamValidationError) as error:
            raise _refused(op, what, error) from error

    def _unavailable(self, op: str, what: str, error: DeadlineExceededError) -> ApiUnavailableError:
        code = error_code(error.last_error)
        return ApiUnavailableError(
            f"AWS Batch {op} {what} kept failing for {error.elapsed:.0f} s "
            f"({error.attempts} attempts); last error {code}: {error_message(error.last_error)}. "
            "The Batch API is degraded: try again later, or pass a longer deadline.",
            operation=op,
            code=code,
        )

    def _malformed(self, op: str, error: MalformedAnswerError) -> MalformedAnswerError:
        self._stats.error(op, error.code, str(error))
        return error

    # -- reads ---------------------------------------------------------------------------

    def describe_jobs(self, ids: Iterable[str], *, attempts: int | None = None) -> DescribeResult:
        """Describe any number of jobs: chunks of 100, concurrently, within the budget.

        Never raises for an API failure: ids whose chunk kept failing until the deadline are
        in ``failed``; ids Batch did not return are in ``missing`` (unknown, aged out after
        about a week, or another region/account — nextflow-io/nextflow#7301). ``attempts``
        caps the tries per chunk (the kill's verification makes one). Dead credentials
        raise ``ExpiredCredentialsError``: no later chunk could do better.
        """
        wanted = _unique(ids, "describe_jobs")
        result = DescribeResult()
        chunks = _chunks(wanted, DESCRIBE_CHUNK)
        answers = self._concurrent_map(lambda c: self._describe_chunk(c, attempts), chunks)
        for chunk, (found, failed) in zip(chunks, answers, strict=True):
            for jid in chunk:
                if jid in found:
                    result.jobs[jid] = found[jid]
                elif failed:
                    result.failed.append(jid)
                else:
                    result.missing.append(jid)
        return result

    def _describe_once(self, chunk: Sequence[str], attempts: int | None = None) -> dict[str, dict[str, Any]]:
        def ask() -> dict[str, dict[str, Any]]:
            answer = self._client.describe_jobs(jobs=list(chunk))
            try:
                return _validate_describe(answer, chunk)
            except MalformedAnswerError as error:
                raise self._malformed("DescribeJobs", error) from None

        return self._raw("DescribeJobs", "read", ask, attempts)

    def _describe_chunk(
        self, chunk: Sequence[str], attempts: int | None = None
    ) -> tuple[dict[str, dict[str, Any]], bool]:
        """(jobs found, whether the chunk failed for good)."""
        try:
            found = self._describe_once(chunk, attempts)
            rechecks = 0
            # A well-formed answer with none of a chunk's jobs is legitimate (all aged out)
            # but is also what a broken front end returns; ask again before believing it.
            while not found and rechecks < self._empty_rechecks:
                rechecks += 1
                self._backoff_sleep(policy_for("read").backoff(rechecks, self._rng))
                found = self._describe_once(chunk, attempts)
                if found:
                    # Only an empty answer proven wrong is a fault: an empty queue or aged-out
                    # jobs are normal and must not make a healthy API read "degraded".
                    self._stats.retry("DescribeJobs", "EmptyAnswer")
            return (found, False)
        except (DeadlineExceededError, ClientError, ParamValidationError):
            # Counted in stats already; the caller sees these ids in `failed`.
            return ({}, True)

    def list_jobs(
        self,
        queue: str,
        *,
        statuses: Iterable[str] | None = None,
        created_after: datetime | float | None = None,
        name_prefix: str | None = None,
        confirm_empty: bool = True,
    ) -> list[dict[str, Any]]:
        """Every job summary on ``queue`` in ``statuses`` (default: all seven), de-duplicated.

        An empty last page is asked again before it is believed, unless ``confirm_empty``
        is False (a quick first look that a full poll will check anyway).

        ListJobs takes one filter at a time and a filter makes it ignore ``jobStatus`` and
        return every status (docs/ARCHITECTURE.md §4); without a filter it lists one status per call and
        defaults to RUNNING only — the trap behind users' one-status-at-a-time kill loops.
        So: with ``created_after`` the AFTER_CREATED_AT filter goes to the server and the
        status/name conditions are applied here; with only ``name_prefix`` the JOB_NAME
        filter ("prefix*", case-insensitive) goes to the server; with neither, one paginated
        listing per status. Raises ApiUnavailableError when a page keeps failing.
        """
        wanted = _statuses(statuses)
        after = epoch_ms(created_after, name="created_after") if created_after is not None else None
        prefix = name_prefix.lower() if name_prefix else None
        listings: list[dict[str, Any]]
        if after is not None:
            listings = [{"filters": [{"name": "AFTER_CREATED_AT", "values": [str(after)]}],
                         "maxResults": LIST_PAGE_FILTER}]
        elif name_prefix:
            listings = [{"filters": [{"name": "JOB_NAME", "values": [f"{name_prefix}*"]}],
                         "maxResults": LIST_PAGE_FILTER}]
        else:
            listings = [{"jobStatus": s, "maxResults": LIST_PAGE_NO_FILTER} for s in wanted]
        seen: dict[str, dict[str, Any]] = {}
        for params in listings:
            for summary in self._list_pages(queue, params, confirm_empty=confirm_empty):
                jid = summary.get("jobId")
                if not isinstance(jid, str) or jid in seen:
                    continue
                # Filters ignore jobStatus, and some implementations ignore filters (moto
                # ignores AFTER_CREATED_AT): apply every condition here as well.
                if summary.get("status") not in wanted:
                    continue
                if prefix is not None and not str(summary.get("jobName", "")).lower().startswith(prefix):
                    continue
                created = summary.get("createdAt")
                if after is not None and isinstance(created, int | float) and created < after:
                    continue
                seen[jid] = summary
        return list(seen.values())

    def _read_page(
        self, op: str, method: str, key: str, request: dict[str, Any]
    ) -> tuple[list[Any], str | None]:
        """One page of a paginated read: its ``key`` list and the next token (None at the end)."""
        answer = getattr(self._client, method)(**request)
        try:
            items = _list_of(answer, key, op)
        except MalformedAnswerError as error:
            raise self._malformed(op, error) from None
        nxt = answer.get("nextToken")
        return (items, nxt if isinstance(nxt, str) and nxt else None)

    @staticmethod
    def _follow_tokens(
        op: str, what: str, page: Callable[[str | None], tuple[list[Any], str | None]]
    ) -> Iterator[dict[str, Any]]:
        """Every dict item of every page ``page(token)`` returns, following ``nextToken``.

        The one rule for every paginated read here: a token the listing already returned
        means the server is going round in a loop, so stop and say so (AwsError
        ``RepeatedNextToken``) — never loop forever, and never pass a partial listing off
        as complete (a truncated ListJobs would hide orphans).
        """
        token: str | None = None
        seen: set[str] = set()
        while True:
            items, token = page(token)
            yield from (x for x in items if isinstance(x, dict))
            if token is None:
                return
            if token in seen:
                where = f"{op} {what}" if what else op
                raise AwsError(
                    f"{where} returned the same nextToken twice; stopping so the listing "
                    "does not loop forever. Try again; if it persists, report it to AWS support.",
                    operation=op,
                    code="RepeatedNextToken",
                )
            seen.add(token)

    def _list_pages(
        self, queue: str, params: dict[str, Any], *, confirm_empty: bool = True
    ) -> Iterator[dict[str, Any]]:
        what = f"on job queue '{queue}'"

        def page(token: str | None) -> tuple[list[Any], str | None]:
            request = {"jobQueue": queue, **params}
            if token is not None:
                request["nextToken"] = token

            def read() -> tuple[list[Any], str | None]:
                return self._read_page("ListJobs", "list_jobs", "jobSummaryList", request)

            items, nxt = self._call("ListJobs", "read", read, what)
            rechecks = 0
            # An empty last page is what an empty queue answers, and also what a broken front
            # end answers (Nextflow needed a null-answer guard for this, 24.10.2): a
            # silently truncated listing would hide orphans, so ask again before believing it.
            while confirm_empty and not items and nxt is None and rechecks < self._empty_rechecks:
                rechecks += 1
                self._backoff_sleep(policy_for("read").backoff(rechecks, self._rng))
                items, nxt = self._call("ListJobs", "read", read, what)
                if items or nxt is not None:  # the empty page was wrong: that is a fault
                    self._stats.retry("ListJobs", "EmptyAnswer")
            return items, nxt

        return self._follow_tokens("ListJobs", what, page)

    def _paginate(
        self, op: str, method: str, key: str, params: dict[str, Any], what: str
    ) -> list[dict[str, Any]]:
        def page(token: str | None) -> tuple[list[Any], str | None]:
            request = dict(params)
            if token is not None:
                request["nextToken"] = token
            return self._call(op, "read", lambda: self._read_page(op, method, key, request), what)

        return list(self._follow_tokens(op, what, page))

    def describe_job_queues(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Job queues by name or ARN (all of them when ``names`` is None); unknown names are absent."""
        if names is None:
            return self._paginate("DescribeJobQueues", "describe_job_queues", "jobQueues", {}, "")
        wanted = _unique(names, "describe_job_queues")
        out: list[dict[str, Any]] = []
        for chunk in _chunks(wanted, 100):
            out += self._paginate(
                "DescribeJobQueues", "describe_job_queues", "jobQueues",
                {"jobQueues": list(chunk)}, f"for {', '.join(chunk)}",
            )
        return out

    def describe_compute_environments(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Compute environments by name or ARN (all when ``names`` is None)."""
        op, method, key = "DescribeComputeEnvironments", "describe_compute_environments", "computeEnvironments"
        if names is None:
            return self._paginate(op, method, key, {}, "")
        wanted = _unique(names, "describe_compute_environments")
        out: list[dict[str, Any]] = []
        for chunk in _chunks(wanted, 100):
            out += self._paginate(op, method, key, {"computeEnvironments": list(chunk)},
                                  f"for {', '.join(chunk)}")
        return out

    def describe_job_definitions(self, *, status: str = "ACTIVE") -> list[dict[str, Any]]:
        """Every job definition revision with ``status`` (ACTIVE or INACTIVE)."""
        return self._paginate(
            "DescribeJobDefinitions", "describe_job_definitions", "jobDefinitions",
            {"status": status}, f"with status {status}",
        )

    def check_queue(self, queue: str) -> dict[str, Any]:
        """The job queue ``queue`` (name or ARN); NotFoundError when Batch has no such queue."""
        found = self.describe_job_queues([queue])
        for q in found:
            if queue in (q.get("jobQueueName"), q.get("jobQueueArn")):
                return q
        if found:
            return found[0]
        raise NotFoundError(
            f"Job queue '{queue}' does not exist in region {self.region}: check the name with "
            f"`aws batch describe-job-queues --region {self.region}`, or pass the right "
            "region/profile to BatchClient.",
            operation="DescribeJobQueues",
            code="NotFound",
        )

    # -- kills ---------------------------------------------------------------------------

    def terminate_once(self, ids: Sequence[str], reason: str) -> KillAttempt:
        """ONE attempt to terminate up to 50 jobs; no retry (``batchkit.kills`` re-drives).

        TerminateJobs where the service has it (TerminateJob semantics: STARTING/RUNNING ->
        FAILED, earlier states cancelled; idempotent), else TerminateJob per id. Dead
        credentials raise ``ExpiredCredentialsError``/``CredentialsError`` at once.
        """
        return self._kill_once(TERMINATE, ids, reason)

    def cancel_once(self, ids: Sequence[str], reason: str) -> KillAttempt:
        """ONE attempt to cancel up to 50 jobs (CancelJobs, else CancelJob per id)."""
        return self._kill_once(CANCEL, ids, reason)

    def note_retry(self, operation: str, code: str) -> None:
        """Count a re-send a caller decided on (the kill executor's), for ``stats``."""
        self._stats.retry(operation, code)

    def terminate_jobs(self, ids: Iterable[str], reason: str, *, verify: bool = True) -> list[JobOutcome]:
        """Terminate jobs now, without a ledger; one outcome per id, in the order given.

        A convenience over ``batchkit.kills.kill_now`` (the one kill executor): jobs are
        described first (an unknown job is ``not_found``, a finished one ``already_done``),
        sent in bulk with per-job re-drives until ``deadline``, and, with ``verify``,
        described once more so each outcome carries Batch's status.
        """
        from batchkit.kills import kill_now

        return kill_now(self, ids, reason, mode=TERMINATE, verify=verify, deadline=self._kill_deadline())

    def cancel_jobs(self, ids: Iterable[str], reason: str, *, verify: bool = True) -> list[JobOutcome]:
        """Cancel jobs that have not started (SUBMITTED/PENDING/RUNNABLE); one outcome per id.

        CancelJob quietly does nothing to a STARTING/RUNNING job (AWS API reference), so
        those are not sent and come back as errors telling the caller to use ``terminate_jobs``.
        """
        from batchkit.kills import kill_now

        return kill_now(self, ids, reason, mode=CANCEL, verify=verify, deadline=self._kill_deadline())

    def _kill_deadline(self) -> float:
        left = self.remaining()
        return self.deadline if left is None else min(self.deadline, left)

    @property
    def clock(self) -> Callable[[], float]:
        """The client's clock (seconds): the kill executor measures its deadline on it."""
        return self._clock

    @property
    def sleep(self) -> Callable[[float], None]:
        """The client's sleep (injected in tests): backoff waits go through it."""
        return self._backoff_sleep

    def _bulk_available(self, mode: KillMode) -> bool:
        known = self._bulk_supported.get(mode.bulk_op)
        if known is not None:
            return known
        # The model check: TerminateJobs/CancelJobs arrived in botocore 1.44; an older SDK has
        # no such method. Whether the service answers it is learnt from the first call.
        in_model = mode.bulk_op in self._client.meta.service_model.operation_names
        if not in_model:
            self._bulk_supported[mode.bulk_op] = False
        return in_model

    def _kill_once(self, mode: KillMode, ids: Sequence[str], reason: str) -> KillAttempt:
        wanted = _unique(ids, mode.bulk_method)
        _check_reason(reason, mode.bulk_method)
        if len(wanted) > BULK_KILL_CHUNK:
            raise ValueError(f"{mode.bulk_method}: at most {BULK_KILL_CHUNK} ids an attempt, got {len(wanted)}")
        if self._closed:
            raise RuntimeError("this BatchClient is closed: create a new one")
        if not wanted:
            return KillAttempt(mode.bulk_op)
        if self._bulk_available(mode):
            attempt = self._kill_bulk(mode, wanted, reason)
            if attempt is not None:
                return attempt
        return self._kill_each(mode, wanted, reason)

    def _kill_bulk(self, mode: KillMode, ids: list[str], reason: str) -> KillAttempt | None:
        """One bulk call; None when the service lacks it (or the role may not use it)."""
        op = mode.bulk_op
        try:
            answer = self._checked(op, lambda: getattr(self._client, mode.bulk_method)(jobs=ids, reason=reason))
            successful = _list_of(answer, "successful", op)
            errors = _list_of(answer, "errors", op)
        except NoCredentialsError as error:
            raise _credentials_error(op) from error
        except MalformedAnswerError as error:
            self._malformed(op, error)
            return KillAttempt(op, again=dict.fromkeys(ids, (error.code, str(error))), calls=1)
        except (ClientError, ParamValidationError) as error:
            code = error_code(error)
            if code in UNKNOWN_OPERATION_CODES or http_status(error) == 404:
                # The service (or emulator) does not have the bulk call: per job from now on.
                self._bulk_supported[op] = False
                return None
            if code in ACCESS_DENIED_CODES:
                # A role written before TerminateJobs existed may allow batch:TerminateJob
                # only: try per job; if that is refused too, the message names both.
                self._bulk_supported[op] = False
                self._bulk_denied.add(op)
                return None
            return self._classified(op, ids, error, calls=1)
        except Exception as error:
            if not is_retryable(error):
                raise
            return KillAttempt(op, again=dict.fromkeys(ids, (error_code(error), error_message(error))), calls=1)
        self._bulk_supported.setdefault(op, True)
        wanted = set(ids)
        accepted = [str(j) for j in successful if j in wanted]
        refused: dict[str, tuple[str, str]] = {}
        again: dict[str, tuple[str, str]] = {}
        for err in errors:
            if not isinstance(err, dict) or err.get("job") not in wanted:
                continue
            jid, code = str(err["job"]), str(err.get("code") or "Unknown")
            message = " ".join(str(err.get("message") or "").split()) or f"{op} failed for {jid}"
            # HTTP 200 with per-job errors that the SDK does not retry (AWS API reference).
            self._stats.error(op, code, message)
            if is_code_retryable(code):
                again[jid] = (code, message)
            else:
                refused[jid] = (code, message)
        # An id in neither list: the answer is incomplete; it goes again.
        for jid in ids:
            if jid not in refused and jid not in again and jid not in accepted:
                again[jid] = ("IncompleteAnswer", f"{op} answered neither success nor error for {jid}")
        return KillAttempt(op, accepted=accepted, refused=refused, again=again, calls=1)

    def _kill_each(self, mode: KillMode, ids: list[str], reason: str) -> KillAttempt:
        op = mode.single_op

        def one(jid: str) -> tuple[str, tuple[str, str] | None, bool]:
            """(id, None when accepted else (code, message), whether to send again)."""
            try:
                self._checked(op, lambda: getattr(self._client, mode.single_method)(jobId=jid, reason=reason))
            except NoCredentialsError as error:
                raise _credentials_error(op) from error
            except (ClientError, ParamValidationError) as error:
                sub = self._classified(op, [jid], error, calls=1)
                if jid in sub.again:
                    return (jid, sub.again[jid], True)
                return (jid, sub.refused[jid], False)
            except Exception as error:
                if not is_retryable(error):
                    raise
                return (jid, (error_code(error), error_message(error)), True)
            return (jid, None, False)

        attempt = KillAttempt(op, calls=len(ids))
        for jid, failure, retry in self._concurrent_map(one, ids):
            if failure is None:
                attempt.accepted.append(jid)
            elif retry:
                attempt.again[jid] = failure
            else:
                attempt.refused[jid] = failure
        return attempt

    def _classified(self, op: str, ids: list[str], error: BaseException, *, calls: int) -> KillAttempt:
        """A failed kill call by the error's code and type: worth re-sending, or refused."""
        code, message = error_code(error), error_message(error)
        if isinstance(error, ParamValidationError):
            return KillAttempt(op, refused=dict.fromkeys(ids, ("ParamValidation", message)), calls=calls)
        if is_retryable(error):
            return KillAttempt(op, again=dict.fromkeys(ids, (code, message)), calls=calls)
        if code in ACCESS_DENIED_CODES:
            actions = tuple(sorted({op, *(o for o in self._bulk_denied)}))
            message = str(access_denied(op, code, message, actions))
        return KillAttempt(op, refused=dict.fromkeys(ids, (code, message)), calls=calls)

    # -- submissions ---------------------------------------------------------------------

    def submit_job(
        self,
        *,
        job_name: str,
        job_queue: str,
        job_definition: str,
        submission_id: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Submit one job, never twice.

        SubmitJob has no idempotency token (docs/ARCHITECTURE.md §4), so every submission carries the tag
        ``schema.SUBMISSION_TAG`` = a unique id, and after an ambiguous failure (timeout,
        reset, dropped connection, 5xx: the request may have been applied) we look for a job
        with that tag before sending again. ``kwargs`` are SubmitJob's other parameters in
        boto3 spelling (``containerOverrides=...``, ``tags=...``).
        Returns {"jobId", "jobName", "jobArn", "submissionId", "attempts", "deduplicated"}.
        """
        sid = submission_id or str(uuid.uuid4())
        tags = dict(kwargs.pop("tags", None) or {})
        tags[SUBMISSION_TAG] = sid
        params = {"jobName": job_name, "jobQueue": job_queue, "jobDefinition": job_definition,
                  "tags": tags, **kwargs}
        what = f"of job '{job_name}' to queue '{job_queue}' (submission {sid})"
        attempts = 0
        ambiguous = False
        failed_at = 0.0

        def attempt() -> dict[str, Any]:
            nonlocal attempts, ambiguous, failed_at
            if ambiguous:
                # ListJobs may lag SubmitJob by a moment: give an applied submission time to
                # show up before concluding it was not applied and sending it again.
                settle = SUBMIT_LOOKUP_DELAY - (self._clock() - failed_at)
                if settle > 0:
                    self._backoff_sleep(settle)
                job = self._find_submission(job_queue, job_name, sid)
                if job is not None:
                    return _submitted(job, job_name, sid, attempts, deduplicated=True)
            attempts += 1
            try:
                answer = self._client.submit_job(**params)
            except Exception as error:
                if is_ambiguous(error):
                    ambiguous, failed_at = True, self._clock()
                raise
            if not isinstance(answer, dict) or not isinstance(answer.get("jobId"), str):
                ambiguous, failed_at = True, self._clock()  # something was answered: it may exist
                raise self._malformed("SubmitJob", MalformedAnswerError("SubmitJob answered without a jobId"))
            return _submitted(answer, job_name, sid, attempts, deduplicated=False)

        try:
            return self._raw("SubmitJob", "submit", attempt)
        except DeadlineExceededError as error:
            unavailable = self._unavailable("SubmitJob", what, error)
            hint = (
                f" It may have been applied: look for tag {SUBMISSION_TAG}={sid} on queue "
                f"'{job_queue}' before submitting again, or retry with submission_id='{sid}'."
                if ambiguous else ""
            )
            raise ApiUnavailableError(str(unavailable) + hint, operation="SubmitJob",
                                      code=unavailable.code) from error
        except (ClientError, ParamValidationError) as error:
            raise _refused("SubmitJob", what, error) from error

    def _find_submission(self, queue: str, name: str, sid: str) -> dict[str, Any] | None:
        """The job on ``queue`` named ``name`` carrying our submission tag, if any.

        One pass, no retries of its own: a failure propagates to submit_job's policy, which
        backs off and looks again — it never re-submits without a completed look.
        """
        def page(token: str | None) -> tuple[list[Any], str | None]:
            request: dict[str, Any] = {
                "jobQueue": queue,
                # JOB_NAME without a trailing * is an exact (case-insensitive) match.
                "filters": [{"name": "JOB_NAME", "values": [name]}],
                "maxResults": LIST_PAGE_FILTER,
            }
            if token is not None:
                request["nextToken"] = token
            return self._read_page("ListJobs", "list_jobs", "jobSummaryList", request)

        what = f"on job queue '{queue}' for job '{name}'"
        candidates = [s for s in self._follow_tokens("ListJobs", what, page) if s.get("jobName") == name]
        # Newest first: the submission we look for is recent.
        candidates.sort(key=lambda s: s.get("createdAt") or 0, reverse=True)
        ids = _unique((str(s["jobId"]) for s in candidates if isinstance(s.get("jobId"), str)), "lookup")
        for chunk in _chunks(ids, DESCRIBE_CHUNK):
            answer = self._client.describe_jobs(jobs=list(chunk))
            try:
                jobs = _validate_describe(answer, chunk)
            except MalformedAnswerError as error:
                raise self._malformed("DescribeJobs", error) from None
            for jid in chunk:
                job = jobs.get(jid)
                if job is not None and (job.get("tags") or {}).get(SUBMISSION_TAG) == sid:
                    return job
        return None

    # -- state ---------------------------------------------------------------------------

    @property
    def stats(self) -> ClientStats:
        """Calls, retries and errors so far, and whether the API is degraded; no network."""
        return self._stats.snapshot(self._budget.stats())

    def close(self) -> None:
        """Stop the worker threads and take our hooks off the boto3 client. Idempotent."""
        with self._executor_lock:
            if self._closed:
                return
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        events = self._client.meta.events
        prefix = self._event_prefix
        unique = f"retry-config-{prefix}"
        events.unregister(f"before-send.{prefix}", unique_id=f"batchkit-budget-{id(self)}")
        events.unregister(f"needs-retry.{prefix}", unique_id=unique)
        botocore_standard.register_retry_handler(self._client)

    def __enter__(self) -> BatchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BatchClient region={self.region} {self.stats.summary()}>"


# --- module helpers ----------------------------------------------------------------------------


def _statuses(statuses: Iterable[str] | None) -> tuple[str, ...]:
    if statuses is None:
        return JOB_STATUSES
    if isinstance(statuses, str):
        statuses = [statuses]
    wanted = tuple(dict.fromkeys(s.upper() for s in statuses))
    unknown = [s for s in wanted if s not in JOB_STATUSES]
    if unknown:
        raise ValueError(f"unknown job status {', '.join(unknown)}: use some of {', '.join(JOB_STATUSES)}")
    return wanted


def _check_reason(reason: str, what: str) -> None:
    if not reason or not reason.strip():
        raise ValueError(f"{what}: a reason is required (Batch shows it on the job)")
    if len(reason) > MAX_REASON:
        raise ValueError(f"{what}: the reason is {len(reason)} characters; Batch accepts at most {MAX_REASON}")


def _credentials_error(op: str) -> CredentialsError:
    return CredentialsError(
        "No AWS credentials found: set AWS_PROFILE or run `aws configure`, or pass "
        "endpoint_url for the local emulator",
        operation=op,
        code="NoCredentials",
    )


def _refused(op: str, what: str, error: Exception) -> AwsError:
    """A non-retryable answer (bad input) as a batchkit error naming the job/queue."""
    if isinstance(error, ParamValidationError):
        return AwsError(f"AWS Batch {op} {what}: invalid parameters: {error_message(error)}",
                        operation=op, code="ParamValidation")
    code = error_code(error)
    message = error_message(error)
    text = f"AWS Batch refused {op} {what}: {code}: {message}"
    lowered = message.lower()
    if "does not exist" in lowered or "not found" in lowered:
        return NotFoundError(text + " — check the name, the region and the profile.", operation=op, code=code)
    if code in ACCESS_DENIED_CODES:
        return AccessDeniedError(f"{text} — add batch:{op} to the role's (or user's) IAM policy.",
                                 operation=op, code=code)
    return AwsError(text, operation=op, code=code)


def _submitted(
    job: dict[str, Any], name: str, sid: str, attempts: int, *, deduplicated: bool
) -> dict[str, Any]:
    """``submit_job``'s answer, from SubmitJob's (or, ``deduplicated``, from the ListJobs
    summary of the job an earlier, ambiguous attempt had already submitted)."""
    return {"jobId": job["jobId"], "jobName": job.get("jobName", name), "jobArn": job.get("jobArn"),
            "submissionId": sid, "attempts": attempts, "deduplicated": deduplicated}


def _make_boto3_client(
    *, region: str | None, profile: str | None, endpoint_url: str | None, max_workers: int, deadline: float
) -> Any:
    from botocore.config import Config

    session = boto3_session(profile, region)
    resolved = client_region(region, session, endpoint_url)
    # The local emulator ignores signatures; don't make a user without an AWS account (Binder)
    # configure fake credentials, and don't let botocore probe the instance metadata service.
    extra = emulator_credentials(endpoint_url, profile)
    config = Config(
        retries={"mode": "standard", "total_max_attempts": BOTOCORE_ATTEMPTS},
        # The deadline is checked between attempts; an attempt in flight ends at the latest
        # at its socket timeout, so no timeout may outlast the deadline: against an endpoint
        # that accepts and never answers, `--deadline 3` would otherwise wait botocore's 60 s.
        # Never under a second: a slow but healthy answer is not a failure.
        connect_timeout=max(1.0, min(5.0, deadline)),
        read_timeout=max(1.0, min(60.0, deadline)),
        max_pool_connections=max(10, 2 * max_workers),
        user_agent_extra="batchkit",
    )
    return session.client("batch", region_name=resolved, endpoint_url=endpoint_url, config=config, **extra)
