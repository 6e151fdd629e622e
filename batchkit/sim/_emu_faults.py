"""Injected faults: which call fails, how, and when.

The failures batchkit must survive are the ones that broke real runs: bursts of
HTTP 500 ``AuthorizerConfigurationException`` on DescribeJobs
(nextflow-io/nextflow#4709, #5516), throttling (429 ``TooManyRequestsException``),
dropped connections, empty DescribeJobs answers (the null response behind
Nextflow's NPE, fixed in 24.10.2) and requests that were applied although the
caller never saw the answer (SubmitJob has no idempotency token, docs/ARCHITECTURE.md §4).

Pure decision logic, thread-safe; the HTTP layer carries the decision out.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

#: Every kind ``FaultPlan.add`` accepts.
FAULT_KINDS: Final[tuple[str, ...]] = (
    "authorizer-500",  # HTTP 500 {"__type": "AuthorizerConfigurationException"}
    "server-500",  # HTTP 500 ServerException
    "throttle-429",  # HTTP 429 TooManyRequestsException
    "latency",  # add `latency` seconds of real time, then answer normally
    "drop",  # close the connection without answering; nothing is applied
    "reset",  # abort the connection with a TCP RST (ConnectionResetError); nothing is applied
    "empty",  # 200 with an empty answer; alternates {} and {"jobs": []}
    "empty-body",  # 200 with {}
    "empty-list",  # 200 with {"jobs": []} (DescribeJobs) / {"jobSummaryList": []} (ListJobs)
    "applied-lost",  # the request is applied, then the connection is dropped
    "applied-500",  # the request is applied, then HTTP 500 ServerException is answered
    "job-errors",  # TerminateJobs/CancelJobs: 200, but each id fails with probability `rate`
    "expired-token",  # HTTP 403 ExpiredTokenException: the caller's session token died
    "access-denied",  # HTTP 403 AccessDeniedException: the caller's role lacks the action
)
#: Per-job error codes a bulk call reports in its ``errors`` list (docs/ARCHITECTURE.md §4).
JOB_ERROR_CODES: Final[tuple[str, ...]] = ("ThrottlingException", "ServerException")

#: (HTTP status, __type, message) of the error kinds.
ERROR_ANSWERS: Final[dict[str, tuple[int, str, str]]] = {
    "authorizer-500": (
        500,
        "AuthorizerConfigurationException",
        "An error occurred while processing the request (authorizer configuration)",
    ),
    "server-500": (500, "ServerException", "An internal server error occurred"),
    "throttle-429": (429, "TooManyRequestsException", "Too Many Requests"),
    "applied-500": (500, "ServerException", "An internal server error occurred"),
    # What AWS answers a request signed with an expired STS/SSO session token (AWS
    # "Common Errors" API reference: ExpiredTokenException, HTTP 403).
    "expired-token": (403, "ExpiredTokenException", "The security token included in the request is expired"),
    "access-denied": (403, "AccessDeniedException", "User is not authorized to perform this action"),
}
#: Kinds answered with ERROR_ANSWERS before the request is applied.
REFUSING_KINDS: Final[tuple[str, ...]] = (
    "authorizer-500", "server-500", "throttle-429", "expired-token", "access-denied",
)


@dataclass(slots=True)
class FaultRule:
    id: str
    operation: str | None
    kind: str
    rate: float = 1.0
    count: int | None = None  # remaining firings of a burst; None = unlimited
    window: tuple[float, float] | None = None  # [start, end) on the emulator clock
    latency: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["window"] = list(self.window) if self.window is not None else None
        return d


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one call: an optional added latency, then at most one fault kind."""

    latency: float = 0.0
    kind: str | None = None
    firing: int = 0  # how many times this rule fired so far (used to alternate "empty")
    job_error_rate: float = 0.0  # "job-errors": probability per job id


class FaultPlan:
    """The faults to inject, per operation; thread-safe.

    ``rate`` is the probability per matching call (a seeded RNG, so runs repeat),
    ``count`` makes a burst of the next N matching calls, ``window`` an outage
    between two instants of the emulator's clock (epoch seconds, end excluded).
    """

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)
        self._clock = clock
        self._fired: dict[str, int] = {}
        #: how many faults fired, per (operation, kind)
        self.counts: dict[tuple[str, str], int] = {}

    def add(
        self,
        operation: str | None,
        kind: str,
        *,
        rate: float = 1.0,
        count: int | None = None,
        window: tuple[float, float] | None = None,
        latency: float = 0.0,
    ) -> str:
        """Add a rule and return its id (for ``remove``)."""
        if operation is not None and not _is_operation(operation):
            raise ValueError(
                f"unknown operation {operation!r}: use a Batch operation name as botocore spells it "
                "(e.g. DescribeJobs, ListJobs, SubmitJob, TerminateJobs), or None for every call"
            )
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: use one of {', '.join(FAULT_KINDS)}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate {rate!r} must be between 0 and 1")
        if count is not None and count < 0:
            raise ValueError(f"fault count {count!r} must be >= 0")
        if kind == "latency" and latency <= 0:
            raise ValueError("a 'latency' fault needs latency > 0 (seconds of real time)")
        if latency < 0:
            raise ValueError(f"latency {latency!r} must be >= 0")
        win: tuple[float, float] | None = None
        if window is not None:
            start, end = (float(window[0]), float(window[1]))
            if end <= start:
                raise ValueError(f"fault window {window!r} must end after it starts")
            win = (start, end)
        with self._lock:
            rule_id = f"fault-{next(self._ids)}"
            self._rules.append(FaultRule(rule_id, operation, kind, rate, count, win, latency))
        return rule_id

    def remove(self, rule_id: str) -> None:
        """Remove one rule; an unknown id is ignored (removing twice is harmless)."""
        with self._lock:
            self._rules = [r for r in self._rules if r.id != rule_id]

    def clear(self) -> None:
        """Remove every rule (the fired counts stay)."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_dict() for r in self._rules]

    def counts_list(self) -> list[dict[str, Any]]:
        """``counts`` as JSON-friendly rows."""
        with self._lock:
            return [{"operation": op, "kind": k, "count": n} for (op, k), n in sorted(self.counts.items())]

    def decide(self, operation: str) -> FaultDecision:
        """Roll the dice for one call of ``operation``; record what fired."""
        with self._lock:
            if not self._rules:
                return FaultDecision()
            now = self._clock() if self._clock is not None else None
            latency = 0.0
            for rule in list(self._rules):
                if rule.operation is not None and rule.operation != operation:
                    continue
                if rule.window is not None and now is not None and not (
                    rule.window[0] <= now < rule.window[1]
                ):
                    continue
                if rule.count is not None and rule.count <= 0:
                    continue
                # For "job-errors" the rate is per job id, rolled by job_error(); the call always matches.
                if rule.kind != "job-errors" and rule.rate < 1.0 and self._rng.random() >= rule.rate:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                key = (operation, rule.kind)
                self.counts[key] = self.counts.get(key, 0) + 1
                fired = self._fired.get(rule.id, 0) + 1
                self._fired[rule.id] = fired
                if rule.kind == "latency":
                    latency += rule.latency
                    continue
                return FaultDecision(
                    latency=latency + rule.latency,
                    kind=rule.kind,
                    firing=fired,
                    job_error_rate=rule.rate if rule.kind == "job-errors" else 0.0,
                )
            return FaultDecision(latency=latency)

    def job_error(self, rate: float) -> str | None:
        """Roll for one job id of a bulk call: an error code, or None (processed)."""
        with self._lock:
            if self._rng.random() >= rate:
                return None
            return JOB_ERROR_CODES[self._rng.randrange(len(JOB_ERROR_CODES))]


def _is_operation(name: str) -> bool:
    # A typo ("DescribeJob") would make a rule that never fires; check against the model.
    from ._emu_model import service_model

    return service_model().operation_exists(name)
