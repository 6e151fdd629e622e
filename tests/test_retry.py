"""Pure tests of the retry policy and the rate budget: injected clock and sleep, no network."""

from __future__ import annotations

import itertools
import random
import threading

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from batchkit.ratelimit import RateBudget
from batchkit.retry import (
    IDEMPOTENT_WRITE,
    READ,
    SUBMIT,
    DeadlineExceededError,
    MalformedAnswerError,
    Retrying,
    RetryPolicy,
    error_code,
    error_message,
    is_ambiguous,
    is_code_retryable,
    is_retryable,
    is_throttle,
    policy_for,
)


def client_error(code: str, status: int, message: str = "boom", op: str = "DescribeJobs") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        op,
    )


class FakeClock:
    """A clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


# --- classification -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retryable", "ambiguous", "throttle"),
    [
        (client_error("AuthorizerConfigurationException", 500), True, True, False),
        (client_error("ServerException", 500), True, True, False),
        (client_error("TooManyRequestsException", 429), True, False, True),
        (client_error("ThrottlingException", 400), True, False, True),
        (client_error("SomethingNew", 503), True, True, False),
        (client_error("SomethingNew", 429), True, False, True),
        (client_error("ClientException", 400), False, False, False),
        (client_error("AccessDeniedException", 403), False, False, False),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), True, True, False),
        (ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), True, True, False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True, False, False),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), True, False, False),
        (ConnectionResetError("reset by peer"), True, True, False),
        (ResponseParserError("garbled"), True, True, False),
        (MalformedAnswerError("no 'jobs' key"), True, True, False),
        (NoCredentialsError(), False, False, False),
        (ParamValidationError(report="jobs: wrong type"), False, False, False),
        (ValueError("a bug"), False, False, False),
    ],
)
def test_classification(error: Exception, retryable: bool, ambiguous: bool, throttle: bool) -> None:
    assert is_retryable(error) is retryable
    assert is_ambiguous(error) is ambiguous
    assert is_throttle(error) is throttle


def test_error_code_and_message() -> None:
    err = client_error("AuthorizerConfigurationException", 500, "  authorizer\n failed ")
    assert error_code(err) == "AuthorizerConfigurationException"
    assert error_message(err) == "authorizer failed"
    assert error_code(MalformedAnswerError("x")) == "MalformedResponse"
    assert error_code(ReadTimeoutError(endpoint_url="u")) == "ReadTimeoutError"
    no_code = ClientError({"ResponseMetadata": {"HTTPStatusCode": 502}}, "ListJobs")
    assert error_code(no_code) == "HTTP502"
    assert is_retryable(no_code)


def test_bulk_error_codes() -> None:
    assert is_code_retryable("ThrottlingException")
    assert is_code_retryable("ServerException")
    assert not is_code_retryable("ClientException")


# --- backoff --------------------------------------------------------------------------


def test_full_jitter_bounds_and_cap() -> None:
    policy = RetryPolicy("read", base=0.5, cap=8.0)
    assert [policy.ceiling(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert policy.ceiling(10_000) == 8.0  # no overflow
    rng = random.Random(7)
    for n in range(1, 12):
        waits = [policy.backoff(n, rng) for _ in range(200)]
        assert all(0.0 <= w <= policy.ceiling(n) for w in waits)
        # full jitter spreads over the whole interval, not just near the ceiling
        assert min(waits) < 0.2 * policy.ceiling(n) < 0.8 * policy.ceiling(n) < max(waits)


def test_policies_per_kind() -> None:
    assert policy_for("read") is READ
    assert policy_for("idempotent_write") is IDEMPOTENT_WRITE
    assert policy_for("submit", 30.0) == SUBMIT.with_deadline(30.0)
    with pytest.raises(ValueError):
        RetryPolicy("read", base=0)
    with pytest.raises(ValueError):
        RetryPolicy("read", max_attempts=0)


def test_retrying_asserts_intervals() -> None:
    clock = FakeClock()
    policy = RetryPolicy("read", base=1.0, cap=4.0, deadline=1000.0)
    expected_rng = random.Random(42)
    expected = [policy.backoff(n, expected_rng) for n in range(1, 6)]
    failures = iter([client_error("AuthorizerConfigurationException", 500)] * 5)
    seen: list[tuple[int, str, float]] = []

    def call() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "ok"

    retrying = Retrying(
        policy,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(42),
        on_retry=lambda n, e, w: seen.append((n, error_code(e), w)),
    )
    assert retrying.call(call) == "ok"
    assert clock.sleeps == pytest.approx(expected)
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5]
    assert {s[1] for s in seen} == {"AuthorizerConfigurationException"}
    assert [s[2] for s in seen] == pytest.approx(expected)


def test_retrying_stops_at_deadline_and_never_sleeps_past_it() -> None:
    clock = FakeClock(start=0.0)
    policy = RetryPolicy("read", base=10.0, cap=10.0, deadline=25.0)
    calls: list[float] = []

    def always_500() -> None:
        calls.append(clock())
        raise client_error("ServerException", 500)

    with pytest.raises(DeadlineExceededError) as info:
        Retrying(policy, clock=clock, sleep=clock.sleep, rng=random.Random(1)).call(always_500)
    assert clock.now == pytest.approx(25.0)  # the last wait was cut to the deadline
    assert calls[-1] == pytest.approx(25.0)  # ... and one last attempt happened at it
    assert info.value.attempts == len(calls)
    assert error_code(info.value.last_error) == "ServerException"
    assert "ServerException" in str(info.value)


def test_retrying_raises_non_retryable_at_once() -> None:
    clock = FakeClock()
    calls = 0

    def bad_input() -> None:
        nonlocal calls
        calls += 1
        raise client_error("ClientException", 400, "job queue foo does not exist")

    with pytest.raises(ClientError):
        Retrying(READ, clock=clock, sleep=clock.sleep).call(bad_input)
    assert calls == 1
    assert clock.sleeps == []


def test_retrying_max_attempts() -> None:
    clock = FakeClock()
    policy = RetryPolicy("submit", deadline=1e9, max_attempts=3)
    calls = 0

    def fail() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionResetError("reset")

    with pytest.raises(DeadlineExceededError) as info:
        Retrying(policy, clock=clock, sleep=clock.sleep).call(fail)
    assert calls == 3 == info.value.attempts
    assert len(clock.sleeps) == 2


# --- rate budget ----------------------------------------------------------------------


def test_rate_budget_spaces_requests() -> None:
    clock = FakeClock(start=0.0)
    budget = RateBudget(20.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(100):
        budget.acquire()
        stamps.append(clock())
    # first token is free, then exactly one every 1/20 s
    assert stamps[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert gaps == pytest.approx([0.05] * 99)
    assert stamps[-1] == pytest.approx(99 / 20)
    stats = budget.stats()
    assert stats.acquired == 100 and stats.throttled == 99
    assert stats.waited == pytest.approx(99 * 0.05)


def test_rate_budget_refills_and_caps_burst() -> None:
    clock = FakeClock(start=0.0)
    budget = RateBudget(10.0, burst=5, clock=clock, sleep=clock.sleep)
    assert all(budget.try_acquire() for _ in range(5))
    assert not budget.try_acquire()
    clock.now += 100.0  # a long idle period saves up at most `burst` tokens
    assert sum(budget.try_acquire() for _ in range(20)) == 5
    assert budget.reserve() == pytest.approx(0.1)
    assert budget.reserve() == pytest.approx(0.2)  # reservations queue up in order


def test_rate_budget_threads_share_one_budget() -> None:
    clock = FakeClock(start=0.0)
    budget = RateBudget(50.0, clock=clock, sleep=lambda s: None)  # the clock stands still
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            w = budget.reserve()
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 200 reservations at a standstill: each waits one slot more than the one before
    assert sorted(waits) == pytest.approx([i / 50 for i in range(200)])


def test_rate_budget_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateBudget(0)
    with pytest.raises(ValueError):
        RateBudget(10, burst=0.5)
