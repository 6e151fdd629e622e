"""How a simulated Nextflow reads the time and steers the emulator's jobs.

Nextflow itself only needs a clock and a way to wait. The simulation also needs to
tell the emulator how long each job runs and with which exit code, and (for the
``spot-retries`` behaviour) to reclaim a job's spot host. Three ways, one protocol:

- :class:`LocalControl` — a :class:`~batchkit.sim.localbatch.LocalBatch` in this
  process: its clock, ``advance`` on a manual clock (a run takes milliseconds),
  ``set_job_behavior`` and ``interrupt`` directly;
- :class:`AdminControl` — a LocalBatch in another process, through its ``/_admin``
  endpoint (``batchkit sim serve``); used by ``python -m batchkit.sim.nextflow``;
- :class:`WallControl` — wall-clock time and nothing to steer: the job's duration
  and exit code then travel in the command itself as a trailing bash comment
  (``# batchkit-sim: sleep 30; exit 1``), which LocalBatch reads (``sleep N`` /
  ``exit N`` anywhere in the command) and a real shell ignores.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol


class Control(Protocol):
    """Clock, wait, and job steering used by :class:`~batchkit.sim.nextflow.SimulatedNextflow`."""

    #: True when job behaviour is set out of band (so the command needs no marker).
    steers_jobs: bool

    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    def set_behavior(self, job_id: str, duration: float, exit_code: int, output: list[str] | None = None) -> None: ...
    def interrupt(self, job_id: str) -> bool: ...


class LocalControl:
    """A LocalBatch in this process (``batch``: anything with LocalBatch's methods)."""

    steers_jobs = True

    def __init__(self, batch: Any, *, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.batch = batch
        manual = bool(getattr(batch.clock, "manual", False))
        speed = float(getattr(batch.clock, "speed", 1.0))
        self._clock = clock or batch.clock.now
        if sleep is not None:
            self._sleep = sleep
        elif manual:
            self._sleep = batch.advance
        else:
            # Emulator seconds run `speed` times faster than wall-clock seconds.
            self._sleep = lambda s: time.sleep(max(0.0, s) / speed)

    def now(self) -> float:
        return float(self._clock())

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)

    def set_behavior(self, job_id: str, duration: float, exit_code: int, output: list[str] | None = None) -> None:
        self.batch.set_job_behavior(job_id, duration=duration, exit_code=exit_code, output=output)

    def interrupt(self, job_id: str) -> bool:
        try:
            self.batch.interrupt(job_id)
        except (ValueError, KeyError):
            return False  # not STARTING/RUNNING any more: nothing to reclaim
        return True


class AdminControl:
    """A LocalBatch in another process, through ``<endpoint>/_admin/...``."""

    steers_jobs = True

    def __init__(self, endpoint_url: str, *, timeout: float = 10.0) -> None:
        self.endpoint = endpoint_url.rstrip("/")
        self.timeout = timeout
        info = self._call("GET", "clock")
        self.manual = bool(info["manual"])
        self.speed = float(info["speed"])
        # A served emulator with wall-clock timestamps (`batchkit sim serve`) runs its clock at
        # wall speed and only its durations `speed` times shorter.
        self._rate = 1.0 if info.get("wall") else self.speed
        self._emu0 = float(info["now"])
        self._mono0 = time.monotonic()

    @classmethod
    def probe(cls, endpoint_url: str) -> AdminControl | None:
        """An AdminControl when ``endpoint_url`` is a LocalBatch, else None."""
        try:
            return cls(endpoint_url, timeout=3.0)
        except (OSError, ValueError, KeyError, urllib.error.URLError):
            return None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.endpoint}/_admin/{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            answer = json.loads(resp.read() or b"{}")
        if not isinstance(answer, dict):
            raise ValueError(f"{self.endpoint}/_admin/{path} answered {answer!r}, not a JSON object")
        return answer

    def now(self) -> float:
        if self.manual:
            return float(self._call("GET", "clock")["now"])
        return self._emu0 + (time.monotonic() - self._mono0) * self._rate

    def sleep(self, seconds: float) -> None:
        if self.manual:
            self._call("POST", "clock/advance", {"seconds": seconds})
        else:
            time.sleep(max(0.0, seconds) / self.speed)

    def set_behavior(self, job_id: str, duration: float, exit_code: int, output: list[str] | None = None) -> None:
        body: dict[str, Any] = {"duration": duration, "exit_code": exit_code}
        if output is not None:
            body["output"] = output
        self._call("POST", f"jobs/{job_id}/behavior", body)

    def interrupt(self, job_id: str) -> bool:
        try:
            self._call("POST", f"jobs/{job_id}/interrupt", {})
        except urllib.error.HTTPError:
            return False
        return True


class WallControl:
    """Wall-clock time (or the given clock/sleep); job behaviour goes in the command."""

    steers_jobs = False

    def __init__(self, *, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self._clock = clock or time.time
        self._sleep = sleep or time.sleep

    def now(self) -> float:
        return float(self._clock())

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)

    def set_behavior(self, job_id: str, duration: float, exit_code: int, output: list[str] | None = None) -> None:
        return None  # carried by the command's "# batchkit-sim: sleep N; exit K" comment

    def interrupt(self, job_id: str) -> bool:
        return False  # nothing to steer: spot reclaims come from the emulator's own rate
