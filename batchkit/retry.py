"""Retry policy for calls to AWS Batch: what is worth retrying, how long to wait, when to stop.

Pure: no I/O, no boto3 client. The clock, the sleep and the random source are injected, so a
test runs a whole outage without sleeping (``Retrying(policy, sleep=waits.append, ...)`` and
then assert ``waits``), the way jd/tenacity does it.

Why our own policy: botocore's retries (legacy: 5 attempts, standard: 3) do retry the HTTP 500
``AuthorizerConfigurationException``, but real outages outlast those few attempts, and that is
what aborted Nextflow runs and orphaned their jobs (nextflow-io/nextflow#4709, #5516). So this
is THE retry layer: ``BatchClient`` turns botocore's off (one attempt per SDK call) and runs
reads and writes under ``Retrying`` until a deadline; the kill executor (``batchkit.kills``)
uses the same policy objects (``IDEMPOTENT_WRITE``'s backoff) for its one re-send per chunk
per step. Retries nested inside retries multiply each layer's attempts, so a kill outlived its
deadline many times over (batchkit issue #11).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.parsers import ResponseParserError

T = TypeVar("T")

#: What kind of call a policy is for: reads are always safe to repeat; an idempotent write
#: (TerminateJob, CancelJob) is safe to repeat; a submit is NOT (SubmitJob has no idempotency
#: token, see the SubmitJob API reference), so the caller looks for its submission tag before repeating it.
OperationKind = Literal["read", "idempotent_write", "submit"]

#: Error codes AWS uses for throttling. Batch answers HTTP 429 ``TooManyRequestsException``;
#: the others appear in bulk answers' per-job ``errors`` and in other AWS front ends.
THROTTLE_CODES: Final[frozenset[str]] = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "LimitExceededException",
    }
)

#: Error codes that mean "the service failed", whatever the HTTP status says. The 500
#: ``AuthorizerConfigurationException`` is the one that killed Nextflow runs (#4709);
#: ``ServerException`` is what Batch returns for its own 500s and in bulk per-job errors.
SERVER_CODES: Final[frozenset[str]] = frozenset(
    {
        "AuthorizerConfigurationException",
        "ServerException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "BadGateway",
        "GatewayTimeout",
    }
)


class RetryableAnswerError(Exception):
    """An HTTP-successful answer that must be asked again (malformed body, per-job errors)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class MalformedAnswerError(RetryableAnswerError):
    """An answer missing its expected keys or with the wrong types.

    Nextflow's NullPointerException on a null DescribeJobs answer (fixed in 24.10.2) came from
    trusting such a body; we retry it like a 5xx instead.
    """

    def __init__(self, message: str) -> None:
        super().__init__("MalformedResponse", message)


class DeadlineExceededError(Exception):
    """The policy's deadline passed (or its attempts ran out) while the call kept failing."""

    def __init__(self, last_error: BaseException, attempts: int, elapsed: float) -> None:
        self.last_error = last_error
        self.attempts = attempts
        self.elapsed = elapsed
        super().__init__(
            f"gave up after {attempts} attempts in {elapsed:.1f} s; last error "
            f"{error_code(last_error)}: {error_message(last_error)}"
        )


def _client_error_parts(error: BaseException) -> tuple[str, int | None, str]:
    """(code, HTTP status, message) of a botocore ClientError-like exception."""
    response: Any = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ("", None, "")
    err = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    code = str(err.get("Code") or "") if isinstance(err, dict) else ""
    message = str(err.get("Message") or "") if isinstance(err, dict) else ""
    status = meta.get("HTTPStatusCode") if isinstance(meta, dict) else None
    return (code, status if isinstance(status, int) else None, message)


def error_code(error: BaseException) -> str:
    """The AWS error code of ``error`` (e.g. ``TooManyRequestsException``), else its class name."""
    if isinstance(error, RetryableAnswerError):
        return error.code
    code, status, _ = _client_error_parts(error)
    if code:
        return code
    if status is not None:
        return f"HTTP{status}"
    return type(error).__name__


def error_message(error: BaseException) -> str:
    """A one-line message for ``error``: AWS's message when it has one."""
    _, _, message = _client_error_parts(error)
    text = message or str(error) or type(error).__name__
    return " ".join(text.split())


def http_status(error: BaseException) -> int | None:
    """The HTTP status of an AWS error answer, if there was one."""
    return _client_error_parts(error)[1]


def is_throttle(error: BaseException) -> bool:
    """Throttled: the service rejected the request, nothing was applied."""
    code, status, _ = _client_error_parts(error)
    if isinstance(error, RetryableAnswerError):
        code = error.code
    return code in THROTTLE_CODES or status == 429


def is_code_retryable(code: str) -> bool:
    """Worth re-sending, judged by the AWS error code alone.

    Per-job ``errors`` in a TerminateJobs/CancelJobs answer carry only a code, inside an
    HTTP 200 the SDK does not retry (TerminateJobs API reference; docs/ARCHITECTURE.md §4).
    """
    return code in THROTTLE_CODES or code in SERVER_CODES


def is_retryable(error: BaseException) -> bool:
    """Worth asking again: throttling, 5xx, connection failures, malformed answers.

    Not retryable: ``ClientException`` and other 4xx (bad input: asking again gives the same
    answer), missing credentials, parameter validation, anything we do not recognise.
    """
    if isinstance(error, RetryableAnswerError):
        return True
    if isinstance(error, ClientError):
        code, status, _ = _client_error_parts(error)
        if is_code_retryable(code):
            return True
        return status is not None and (status == 429 or 500 <= status <= 599)
    # Connection refused/reset/closed, read and connect timeouts; botocore wraps urllib3's.
    if isinstance(error, BotoConnectionError | HTTPClientError | IncompleteReadError):
        return True
    # A body botocore could not parse (truncated, HTML from a proxy): the answer was garbled.
    if isinstance(error, ResponseParserError):
        return True
    # Raw socket errors, should one escape botocore's wrapping (or come from a hook).
    return isinstance(error, ConnectionResetError | ConnectionAbortedError | TimeoutError)


def is_ambiguous(error: BaseException) -> bool:
    """The request may have been applied although we got no answer (matters for SubmitJob).

    Unambiguous failures: throttling (429 means rejected), 4xx, and connection errors raised
    before a byte was sent (refused, connect timeout). Everything else retryable — read
    timeouts, resets, dropped connections, 5xx, garbled bodies — may hide an applied request.
    """
    if not is_retryable(error) or is_throttle(error):
        return False
    return not isinstance(error, EndpointConnectionError | ConnectTimeoutError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry one kind of call: backoff shape and a deadline.

    ``backoff(n)`` is full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
    uniform in [0, min(cap, base * 2**(n-1))] before retry n, so many clients recovering from
    the same outage do not hammer the API in lockstep.
    """

    kind: OperationKind
    base: float = 0.5
    cap: float = 20.0
    deadline: float = 300.0
    #: None: stop on the deadline only.
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap <= 0 or self.deadline < 0:
            raise ValueError(f"retry policy {self.kind}: base, cap must be > 0 and deadline >= 0")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"retry policy {self.kind}: max_attempts must be >= 1")

    def ceiling(self, retry: int) -> float:
        """The upper bound of the wait before retry number ``retry`` (1-based)."""
        exponent = min(max(retry - 1, 0), 62)  # beyond 2**62 the cap wins anyway
        return min(self.cap, self.base * (2.0**exponent))

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full-jitter wait before retry number ``retry`` (1-based)."""
        return rng.uniform(0.0, self.ceiling(retry))

    def with_deadline(self, deadline: float) -> RetryPolicy:
        return replace(self, deadline=deadline)


READ: Final = RetryPolicy("read", base=0.5, cap=20.0)
IDEMPOTENT_WRITE: Final = RetryPolicy("idempotent_write", base=0.5, cap=20.0)
#: Submissions wait a little longer before looking for their tag: ListJobs may lag SubmitJob.
SUBMIT: Final = RetryPolicy("submit", base=1.0, cap=20.0)

POLICIES: Final[dict[str, RetryPolicy]] = {p.kind: p for p in (READ, IDEMPOTENT_WRITE, SUBMIT)}


def policy_for(kind: OperationKind, deadline: float | None = None) -> RetryPolicy:
    """The default policy for ``kind``, with ``deadline`` when given."""
    policy = POLICIES[kind]
    return policy if deadline is None else policy.with_deadline(deadline)


#: on_retry(retry number, the error that caused it, the wait about to be slept)
RetryCallback = Callable[[int, BaseException, float], None]


class Retrying:
    """Run a callable until it succeeds, fails for good, or the policy's deadline passes.

    Non-retryable errors propagate unchanged at once. Past the deadline (or ``max_attempts``)
    :class:`DeadlineExceededError` is raised carrying the last error. A wait never runs past the
    deadline: the last attempt happens at the deadline, not after it.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        retryable: Callable[[BaseException], bool] = is_retryable,
        on_retry: RetryCallback | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._retryable = retryable
        self._on_retry = on_retry

    def call(self, fn: Callable[[], T]) -> T:
        start = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as error:
                if not self._retryable(error):
                    raise
                elapsed = self._clock() - start
                remaining = self.policy.deadline - elapsed
                out_of_attempts = (
                    self.policy.max_attempts is not None and attempt >= self.policy.max_attempts
                )
                if remaining <= 0 or out_of_attempts:
                    raise DeadlineExceededError(error, attempt, elapsed) from error
                wait = min(self.policy.backoff(attempt, self._rng), remaining)
                if self._on_retry is not None:
                    self._on_retry(attempt, error, wait)
                if wait > 0:
                    self._sleep(wait)
