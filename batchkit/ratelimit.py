"""One shared request budget: a thread-safe token bucket with an injected clock and sleep.

Why: AWS Batch allows about 50 requests/s per account (SubmitJob's published quota; assume
the same for the rest; docs/ARCHITECTURE.md §4), and Nextflow itself spends that same budget polling
DescribeJobs. batchkit must never starve it, so every request it sends — including botocore's
own silent retries — takes a token from one bucket (default 20/s).

The bucket hands out reservations: a caller takes its token at once (the balance may go
negative) and then sleeps until its turn, outside the lock. Concurrent callers are therefore
served in arrival order at exactly ``rate`` per second, and no thread sleeps while holding the
lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BudgetStats:
    """What the bucket has handed out so far (pure data)."""

    rate: float
    burst: float
    acquired: int
    #: seconds callers were told to wait, summed over all callers
    waited: float
    #: callers that had to wait at all
    throttled: int


class RateBudget:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    ``burst`` defaults to one token (strict spacing: never more than ``rate`` requests in any
    window of ``1/rate`` seconds), which is the polite choice when sharing an account quota.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate budget must be > 0 requests/s, got {rate!r}")
        burst = 1.0 if burst is None else burst
        if not burst >= 1:
            raise ValueError(f"rate budget burst must be >= 1 token, got {burst!r}")
        self._rate = float(rate)
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self._burst
        self._last = clock()
        self._acquired = 0
        self._waited = 0.0
        self._throttled = 0

    @property
    def rate(self) -> float:
        return self._rate

    def _refill(self, now: float) -> None:
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._last = now

    def reserve(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` now and return how long the caller must wait before using them."""
        if tokens <= 0:
            return 0.0
        with self._lock:
            self._refill(self._clock())
            self._tokens -= tokens
            self._acquired += 1
            if self._tokens >= 0 or math.isinf(self._rate):
                return 0.0
            wait = -self._tokens / self._rate
            self._waited += wait
            self._throttled += 1
            return wait

    def acquire(self, tokens: float = 1.0) -> float:
        """Block (through the injected sleep) until ``tokens`` are ours; return the wait."""
        wait = self.reserve(tokens)
        if wait > 0:
            self._sleep(wait)
        return wait

    def try_acquire(self, tokens: float = 1.0) -> bool:
        """Take ``tokens`` only if they are available right now."""
        with self._lock:
            self._refill(self._clock())
            if self._tokens < tokens:
                return False
            self._tokens -= tokens
            self._acquired += 1
            return True

    def stats(self) -> BudgetStats:
        with self._lock:
            return BudgetStats(
                rate=self._rate,
                burst=self._burst,
                acquired=self._acquired,
                waited=self._waited,
                throttled=self._throttled,
            )
