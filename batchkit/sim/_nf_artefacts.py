"""The three places a simulated Nextflow writes what it believes (docs/ARCHITECTURE.md §3).

- :class:`LogWriter` — ``.nextflow.log`` (rotated to ``.nextflow.log.1`` ... on launch,
  as Nextflow keeps up to 9 old logs);
- :class:`TraceWriter` — the trace file: a header, one row per task as it completes,
  the tasks still in flight at the end (``TraceFileObserver``);
- :class:`Weblog` — JSON POSTs to ``-with-weblog URL`` (``WebLogObserver``), in order,
  on one thread; a receiver that is down only costs a log line, as in Nextflow.

Each writer flushes every line at once, so a reader tailing the files sees them live
and a hard crash loses nothing already written.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ._nf_format import log_line, render_trace_row, utc_iso

#: Nextflow keeps ``.nextflow.log`` plus this many rotated copies.
_LOG_ROTATIONS = 9


class _LineFile:
    """A text file written a line at a time, each line flushed at once (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = path.open("w", encoding="utf-8")
        #: lines written so far
        self.lines = 0

    def _append(self, line: str) -> None:
        if self._fh is None:
            return
        self._fh.write(line + "\n")
        self._fh.flush()
        self.lines += 1

    def close(self, mtime: float | None = None) -> None:
        """Close; ``mtime`` stamps the file with the run's (emulated) time of the last write."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            _stamp(self.path, mtime)


class LogWriter(_LineFile):
    """Appends logback-formatted lines to ``<launch_dir>/.nextflow.log``."""

    def __init__(self, path: Path, *, tz: str = "UTC") -> None:
        rotate(path)
        super().__init__(path)
        self.tz = tz

    def write(self, epoch: float, thread: str, level: str, logger: str, message: str) -> None:
        self._append(log_line(epoch, thread, level, logger, message, self.tz))


def _stamp(path: Path, mtime: float | None) -> None:
    # Log lines carry no year: readers infer it from the file's modification time, which
    # must then be the run's clock, not the wall clock of a sped-up or stepped emulator.
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def rotate(path: Path) -> None:
    """``.nextflow.log`` -> ``.nextflow.log.1`` -> ... -> ``.nextflow.log.9`` (the oldest goes)."""
    if not path.exists():
        return
    oldest = path.with_name(f"{path.name}.{_LOG_ROTATIONS}")
    if oldest.exists():
        oldest.unlink()
    for i in range(_LOG_ROTATIONS - 1, 0, -1):
        src = path.with_name(f"{path.name}.{i}")
        if src.exists():
            src.rename(path.with_name(f"{path.name}.{i + 1}"))
    path.rename(path.with_name(f"{path.name}.1"))


class TraceWriter(_LineFile):
    """A Nextflow trace file: header now, a row per completed task, in-flight rows at the end."""

    def __init__(self, path: Path, fields: Sequence[str], *, raw: bool = False, tz: str = "UTC") -> None:
        # TraceFileObserver rolls an existing trace file instead of overwriting it.
        rotate(path)
        super().__init__(path)
        self.fields = tuple(fields)
        self.raw = raw
        self.tz = tz
        self._append("\t".join(self.fields))

    @property
    def rows(self) -> int:
        """Task rows written so far (the header is not one)."""
        return self.lines - 1

    def write(self, record: Mapping[str, object]) -> None:
        self._append(render_trace_row(record, self.fields, raw=self.raw, tz=self.tz))


class Weblog:
    """Sends WebLogObserver's messages: ``{runName, runId, event, utcTime, trace|metadata}``."""

    def __init__(
        self, url: str | None, *, run_name: str, run_id: str, timeout: float = 5.0, token: str | None = None
    ) -> None:
        self.url = url
        #: ``USER:PASSWORD`` sent as HTTP Basic auth, as nf-weblog does with ``weblog.basicToken``
        self.token = token
        self.run_name = run_name
        self.run_id = run_id
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None

    def message(self, event: str, epoch: float, *, trace: Mapping[str, Any] | None = None,
                metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON body of one event (``trace`` for task events, ``metadata`` for the run)."""
        body: dict[str, Any] = {
            "runName": self.run_name,
            "runId": self.run_id,
            "event": event,
            "utcTime": utc_iso(epoch),
        }
        if trace is not None:
            body["trace"] = dict(trace)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return body

    def send(self, event: str, epoch: float, *, trace: Mapping[str, Any] | None = None,
             metadata: Mapping[str, Any] | None = None) -> str | None:
        """POST one event; returns None on success or the error text (Nextflow logs and goes on)."""
        if not self.url:
            return None
        data = json.dumps(self.message(event, epoch, trace=trace, metadata=metadata)).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = "Basic " + base64.b64encode(self.token.encode()).decode()
        req = urllib.request.Request(self.url, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as e:
            status = int(e.code)
        except (urllib.error.URLError, OSError) as e:
            self.failed += 1
            self.last_error = f"Failed to send message to {self.url} -- cause: {e}"
            return self.last_error
        if 200 <= status < 300:
            self.sent += 1
            return None
        self.failed += 1
        self.last_error = (
            f"Unexpected HTTP response.\nFailed to send message to {self.url} -- received \n"
            f"- status code : {status}"
        )
        return self.last_error
