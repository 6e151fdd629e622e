"""A receiver for Nextflow's weblog POSTs, keeping a live task table (docs/ARCHITECTURE.md §3).

Nextflow (``-with-weblog URL``; since 25.04 the ``nf-weblog`` plugin with
``weblog.url`` and ``weblog.basicToken``) POSTs one JSON message per event:
``{runName, runId, event, utcTime}`` plus ``metadata`` (``started``,
``completed``) or ``trace`` (``process_submitted``, ``process_started``,
``process_completed``, and ``error`` when a task caused the failure). ``trace``
is the TraceRecord store with raw values: epoch milliseconds, bytes,
``exit = 2147483647`` while unknown, ``start = 0`` before the task started.

:meth:`WeblogReceiver.ingest` is the pure part (bytes in, state updated or a
:class:`~batchkit.errors.NextflowReadError` out); the HTTP layer around it is a
small asyncio server on loopback that maps those errors to 4xx and keeps
serving.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hmac
import json
import logging
import secrets
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from batchkit._net import is_loopback_host
from batchkit._time import to_utc
from batchkit.errors import NextflowReadError
from batchkit.nextflow import _formats as fmt
from batchkit.schema import TASK_TERMINAL, TaskCol

log = logging.getLogger(__name__)

#: Event names as WebLogObserver sends them; the older spellings appear in its docs.
_TASK_EVENTS: Final[dict[str, str]] = {
    "process_submitted": "SUBMITTED",
    "process_submit": "SUBMITTED",
    "process_started": "RUNNING",
    "process_start": "RUNNING",
    "process_completed": "COMPLETED",
    "process_complete": "COMPLETED",
}
_RUN_EVENTS: Final = frozenset({"started", "completed", "error"})
_STATUS_RANK: Final[dict[str, int]] = {"NEW": 0, "SUBMITTED": 1, "RUNNING": 2}
_MAX_HEADER_BYTES: Final = 64 * 1024
_IDLE_TIMEOUT_S: Final = 60.0
_MAX_DRAIN_BYTES: Final = 64 * 1024 * 1024
_REASONS: Final[dict[int, str]] = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
    413: "Payload Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
}  # fmt: skip


class WeblogAuthError(NextflowReadError):
    """The POST's Basic token is missing or wrong (HTTP 401)."""


class WeblogTooLargeError(NextflowReadError):
    """The POST body is larger than ``max_body`` (HTTP 413)."""


@functools.lru_cache(maxsize=1)
def _allow_nested_loops() -> None:
    """Let a notebook cell block on the kernel's own loop (nest_asyncio), once.

    Applied only when :meth:`WeblogReceiver.wait_for` is called on the thread
    whose loop serves the receiver — never at import, never twice.
    """
    import nest_asyncio

    nest_asyncio.apply()


@dataclass(frozen=True)
class _Request:
    method: str
    target: str  # the request line's path (and query), e.g. "/<secret>/"
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WeblogReceiver:
    """Receive Nextflow weblog POSTs on ``url`` and keep what they say.

    Every POST is authenticated (issue #15: a forged event must not put a job into a
    run's records): it carries ``token`` as its Basic ``Authorization`` (``USER:PASSWORD``,
    nf-weblog's ``weblog.basicToken`` since Nextflow 25.04; generated when not given), or
    it is sent to ``url``, whose path is a random secret — Nextflow before 25.04 cannot
    send a token (its WebLogObserver posts to the URL as given, with no Authorization
    header: nextflow-io/nextflow, modules/nextflow/src/main/groovy/nextflow/trace/
    WebLogObserver.groovy and util/SimpleHttpClient.groovy). Other POSTs get 401 and are
    counted in ``refused_posts``. ``base_url`` is the bare address (Basic token needed).
    ``allow_remote=True`` requires an explicit token (a remote Nextflow must be given it).

    The receiver follows one session: the first ``runId`` it hears (or ``session_id``);
    events of any other session are ignored and counted in ``foreign_events``.
    ``ingest`` is the pure part for bodies this process already trusts (replays,
    tests); the HTTP server calls ``receive``, which authenticates first.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        max_body: int = 1_000_000,
        allow_remote: bool = False,
        max_events: int = 10_000,
        session_id: str | None = None,
    ) -> None:
        if not allow_remote and not _is_loopback(host):
            raise ValueError(
                f"refusing to listen on {host!r}: weblog POSTs carry pipeline details; "
                "pass allow_remote=True (and a token) to listen beyond this machine"
            )
        if allow_remote and not token:
            # Beyond loopback anyone could POST events: without a token they could put
            # jobs into a run's records.
            raise ValueError("allow_remote=True needs a token: pass token='USER:PASSWORD'")
        self.host = host
        self.port = port
        #: the Basic ``USER:PASSWORD`` POSTs may carry (generated: 192 random bits)
        self.token = token or f"batchkit:{secrets.token_urlsafe(24)}"
        #: the secret path POSTs may be sent to instead (``url``)
        self.path_secret = secrets.token_urlsafe(24)
        self.max_body = max_body
        #: where Nextflow is told to POST: ``base_url`` + the secret path
        self.url = ""
        self.base_url = ""
        #: POSTs refused for want of the token or the secret path (401)
        self.refused_posts = 0
        self.events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self.run_name: str | None = None
        self.run_id: str | None = session_id
        self.run_state = "alive"
        self.error_message: str | None = None
        self.last_event_time: pd.Timestamp | None = None
        self.launch_time: pd.Timestamp | None = None
        self.end_time: pd.Timestamp | None = None
        self.abort_time: pd.Timestamp | None = None
        self.work_dir: str | None = None
        self.version: str | None = None
        #: POSTs ignored because their runId is not this run's session.
        self.foreign_events = 0
        #: events taken in, this run's or not: a run view built at another count is stale.
        self.received = 0
        self._tasks: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        # Holds the serving task: the event loop keeps only weak references to tasks, so an
        # unreferenced one can be garbage-collected mid-run (asyncio.create_task docs).
        self._serving: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return (  # the base URL only: the secret path is a credential
            f"WeblogReceiver(url={self.base_url or '(not started)'!r}, run={self.run_name!r}, "
            f"state={self.run_state!r}, tasks={len(self._tasks)}, events={len(self.events)})"
        )

    # --- the pure part --------------------------------------------------------------

    def receive(self, body: bytes, headers: Mapping[str, str], target: str = "/") -> None:
        """Authenticate one POST (its headers and request path ``target``), then ingest it.

        Raises WeblogAuthError (counted in ``refused_posts``) unless the POST carries the
        Basic token or was sent to the secret path; then as ``ingest``.
        """
        if not self._to_secret_path(target):
            try:
                self._check_token(headers)
            except WeblogAuthError:
                with self._lock:
                    self.refused_posts += 1
                raise
        self.ingest(body)

    def _to_secret_path(self, target: str) -> bool:
        path = target.split("?", 1)[0].rstrip("/").encode("utf-8", "replace")
        return hmac.compare_digest(path, f"/{self.path_secret}".encode())

    def ingest(self, body: bytes) -> None:
        """Apply one weblog POST body; raise NextflowReadError naming what is wrong.

        No authentication here: the caller trusts ``body`` (``receive`` checks POSTs).
        """
        if len(body) > self.max_body:
            raise WeblogTooLargeError(
                f"weblog POST of {len(body)} bytes is larger than max_body={self.max_body}"
            )
        message = _decode_json(body)
        event = message.get("event")
        if not isinstance(event, str) or not event:
            raise NextflowReadError("weblog POST has no 'event' string (expected e.g. 'process_started')")
        run_name = _opt_str(message, "runName")
        run_id = _opt_str(message, "runId")
        when = _parse_utc_time(message.get("utcTime"))
        trace = message.get("trace")
        if trace is not None and not isinstance(trace, dict):
            raise NextflowReadError(f"weblog '{event}' POST has a 'trace' that is not an object")
        metadata = message.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise NextflowReadError(f"weblog '{event}' POST has a 'metadata' that is not an object")
        row = None
        if event in _TASK_EVENTS:
            if trace is None:
                raise NextflowReadError(f"weblog '{event}' POST has no 'trace' object")
            row = _task_row(trace, _TASK_EVENTS[event], event)
        elif event == "error" and trace is not None:
            row = _task_row(trace, None, event)
        with self._changed:
            self._apply(event, run_name, run_id, when, row, metadata)
            self._changed.notify_all()

    def _check_token(self, headers: Mapping[str, str]) -> None:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if auth is None:
            raise WeblogAuthError(
                "weblog POST without an Authorization header and not to the receiver's URL: "
                "post to its url, or set weblog.basicToken"
            )
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() != "basic":
            raise WeblogAuthError("weblog POST with a non-Basic Authorization header")
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise WeblogAuthError("weblog POST with a malformed Basic token") from None
        if not hmac.compare_digest(decoded, self.token.encode("utf-8")):
            raise WeblogAuthError("weblog POST with a wrong Basic token")

    def _apply(
        self,
        event: str,
        run_name: str | None,
        run_id: str | None,
        when: pd.Timestamp | None,
        row: dict[str, Any] | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        now = when or pd.Timestamp.now(tz="UTC")
        self.received += 1
        if self.run_id is not None and run_id != self.run_id:
            # Not this run's session (a forged POST, or another run given the same URL):
            # ignored — a kill must never rest on it — and counted, so it shows.
            self.foreign_events += 1
            log.warning("weblog POST of session %r ignored: this receiver follows session %r", run_id, self.run_id)
            return
        if self.run_id is None:
            self.run_name = run_name or self.run_name
            self.run_id = run_id or self.run_id
        elif event == "started":
            self.run_name = run_name or self.run_name
        self.last_event_time = now if self.last_event_time is None else max(self.last_event_time, now)
        workflow = metadata.get("workflow") if metadata else None
        if isinstance(workflow, dict):
            self._apply_workflow(workflow)
        if event == "started" and self.launch_time is None:
            self.launch_time = now
        elif event == "error":
            self.run_state = "aborted"
            self.abort_time = self.abort_time or now
            if row is not None and self.error_message is None:
                self.error_message = f"task {row.get(TaskCol.NAME) or row.get(TaskCol.HASH)} failed"
        elif event == "completed":
            success = workflow.get("success") if isinstance(workflow, dict) else None
            if self.run_state != "aborted" and success is not False:
                self.run_state = "completed"
            else:
                self.run_state = "aborted"
                self.abort_time = self.abort_time or now
            self.end_time = self.end_time or now
        if row is not None:
            row["_run_id"] = run_id
            self._update_task(row)
        self.events.append(
            {
                "event": event,
                "time": now,
                "run_name": run_name,
                "run_id": run_id,
                "hash": row.get(TaskCol.HASH) if row else None,
                "name": row.get(TaskCol.NAME) if row else None,
                "native_id": row.get(TaskCol.NATIVE_ID) if row else None,
                "status": row.get(TaskCol.STATUS) if row else None,
            }
        )

    def _apply_workflow(self, workflow: dict[str, Any]) -> None:
        if isinstance(workflow.get("runName"), str):
            self.run_name = workflow["runName"]
        if isinstance(workflow.get("sessionId"), str):
            self.run_id = self.run_id or workflow["sessionId"]
        if isinstance(workflow.get("workDir"), str):
            self.work_dir = workflow["workDir"].rstrip("/")
        nextflow = workflow.get("nextflow")
        if isinstance(nextflow, dict) and isinstance(nextflow.get("version"), str):
            self.version = nextflow["version"]
        start = _lenient_time(workflow.get("start"))
        if start is not None:
            self.launch_time = start
        complete = _lenient_time(workflow.get("complete"))
        if complete is not None:
            self.end_time = complete
        if isinstance(workflow.get("errorMessage"), str) and workflow["errorMessage"]:
            self.error_message = workflow["errorMessage"]

    def _update_task(self, row: dict[str, Any]) -> None:
        key = _row_key(row)
        old = self._tasks.get(key)
        if old is None:
            self._tasks[key] = row
            return
        # POSTs may arrive out of order: never move a task back from terminal/running.
        if _rank(row.get(TaskCol.STATUS)) < _rank(old.get(TaskCol.STATUS)):
            row = {**row, TaskCol.STATUS: old.get(TaskCol.STATUS)}
        merged = {**old, **{k: v for k, v in row.items() if v is not None}}
        self._tasks[key] = merged

    # --- reading the state ----------------------------------------------------------

    def tasks(self) -> pd.DataFrame:
        """The live task table (TASK_COLUMNS, source "weblog") of the current run."""
        with self._lock:
            rows = [
                {k: v for k, v in r.items() if k != "_run_id"}
                for r in self._tasks.values()
                if self.run_id is None or r.get("_run_id") in (None, self.run_id)
            ]
        if not rows:
            return fmt.empty_tasks()
        frame = pd.DataFrame(rows)
        frame[TaskCol.SOURCE] = "weblog"
        for col in (TaskCol.SUBMIT, TaskCol.START, TaskCol.COMPLETE):
            if col in frame:
                frame[col] = pd.to_datetime(frame[col], utc=True)
        if TaskCol.REALTIME in frame:
            frame[TaskCol.REALTIME] = pd.to_timedelta(frame[TaskCol.REALTIME], unit="ms")
        return fmt.conform_tasks(frame)

    def wait_for(self, predicate: Callable[[WeblogReceiver], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds or ``timeout`` seconds pass; True if it held.

        In a notebook the server runs on the kernel's own loop, so waiting there
        must keep that loop turning: nest_asyncio is applied (once) for that.
        """
        loop = self._loop
        if loop is not None and _running_loop() is loop:
            _allow_nested_loops()
            return bool(loop.run_until_complete(self._wait_async(predicate, timeout)))
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout=timeout)

    async def _wait_async(self, predicate: Callable[[WeblogReceiver], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    # --- serving --------------------------------------------------------------------

    def start(self) -> WeblogReceiver:
        """Start listening; returns at once with ``url`` set.

        With an event loop running in this thread (a notebook cell), the server
        is scheduled on that loop; otherwise it runs in a background thread with
        its own loop.
        """
        if self._sock is not None:
            return self
        sock = self._bind()
        loop = _running_loop()
        if loop is not None:
            self._loop = loop
            self._stop = asyncio.Event()
            self._serving = loop.create_task(self._serve_socket(sock))
            return self
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            ready.set()
            try:
                loop.run_until_complete(self._serve_socket(sock))
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"weblog-receiver:{self.port}", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    async def serve(self) -> None:
        """Serve on the running loop until :meth:`stop` is called (for asyncio programs)."""
        if self._sock is not None:
            raise RuntimeError("this WeblogReceiver is already serving; call stop() first")
        sock = self._bind()
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self._serve_socket(sock)

    def stop(self) -> None:
        """Stop listening and drop open connections; safe to call twice."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
            self._thread = None

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family)
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        shown = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.base_url = f"http://{shown}:{self.port}/"
        # Nextflow's WebLogObserver.checkUrl accepts [-a-zA-Z0-9+&@#/%?=~_|!:,.;] in a URL,
        # so a token_urlsafe path (letters, digits, - and _) passes as it is.
        self.url = f"{self.base_url}{self.path_secret}/"
        return sock

    async def _serve_socket(self, sock: socket.socket) -> None:
        assert self._stop is not None
        server = await asyncio.start_server(self._handle, sock=sock, limit=_MAX_HEADER_BYTES)
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()
            self._sock = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while True:
                try:
                    request = await asyncio.wait_for(_read_request(reader, self.max_body), _IDLE_TIMEOUT_S)
                except _HttpError as exc:
                    await _respond(writer, exc.status, str(exc), keep_alive=False)
                    return
                if request is None:
                    return
                status, text = self._dispatch(request)
                keep_alive = request.keep_alive and (status < 400 or status in (400, 401))
                await _respond(writer, status, text, keep_alive=keep_alive)
                if not keep_alive:
                    return
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        except asyncio.CancelledError:
            return
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _dispatch(self, request: _Request) -> tuple[int, str]:
        if request.method != "POST":
            return 405, "the weblog receiver only accepts POST"
        try:
            self.receive(request.body, request.headers, request.target)
        except WeblogAuthError as exc:
            return 401, str(exc)
        except WeblogTooLargeError as exc:
            return 413, str(exc)
        except NextflowReadError as exc:
            log.warning("weblog POST refused: %s", exc)
            return 400, str(exc)
        except Exception:  # a bug must not stop the server Nextflow is posting to
            log.exception("weblog POST could not be applied")
            return 500, "internal error while applying the weblog POST"
        return 200, "ok"


# --- HTTP/1.1, the little Nextflow's SimpleHttpClient needs ------------------------------


async def _read_request(reader: asyncio.StreamReader, max_body: int) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None  # the client closed a kept-alive connection
        raise _HttpError(400, "incomplete HTTP request") from None
    except asyncio.LimitOverrunError:
        raise _HttpError(431, "HTTP request headers too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _HttpError(400, "malformed HTTP request line")
    method, target, version = parts[0].upper(), parts[1], parts[2]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise _HttpError(400, "malformed HTTP header line")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader, max_body)
    else:
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit():
            raise _HttpError(400, "bad Content-Length header")
        length = int(length_text)
        if length > max_body:
            if length <= _MAX_DRAIN_BYTES:
                # read the body away first: answering before the client has sent it all
                # makes most clients see a broken pipe instead of the 413
                await _discard(reader, length)
            raise _HttpError(413, f"weblog POST of {length} bytes is larger than max_body={max_body}")
        body = await reader.readexactly(length)
    return _Request(method, target, headers, body, keep_alive)


async def _discard(reader: asyncio.StreamReader, length: int) -> None:
    while length > 0:
        chunk = await reader.read(min(length, 1 << 16))
        if not chunk:
            return
        length -= len(chunk)


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _HttpError(400, "bad chunk size in a chunked body") from None
        if size == 0:
            await reader.readuntil(b"\r\n")  # end of (empty) trailers
            return b"".join(chunks)
        total += size
        if total > max_body:
            raise _HttpError(413, f"weblog POST is larger than max_body={max_body}")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _respond(writer: asyncio.StreamWriter, status: int, text: str, *, keep_alive: bool) -> None:
    body = (text + "\n").encode("utf-8")
    headers = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: " + ("keep-alive" if keep_alive else "close"),
    ]
    if status == 401:
        headers.append('WWW-Authenticate: Basic realm="batchkit weblog"')
    if status == 405:
        headers.append("Allow: POST")
    writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


# --- payload helpers ------------------------------------------------------------------


def _decode_json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise NextflowReadError("weblog POST with an empty body (expected a JSON object)")
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NextflowReadError(f"weblog POST body is not JSON: {exc}") from None
    except RecursionError:
        raise NextflowReadError("weblog POST body is JSON nested too deeply") from None
    if not isinstance(message, dict):
        raise NextflowReadError("weblog POST body is JSON but not an object")
    return message


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise NextflowReadError(f"weblog field '{key}' should be a string, got {type(value).__name__}")
    return value


def _parse_utc_time(value: Any) -> pd.Timestamp | None:
    """``utcTime`` is ``yyyy-MM-dd'T'HH:mm:ss'Z'`` (Const.ISO_8601_DATETIME_FORMAT, UTC)."""
    if value is None:
        return None
    stamp = _lenient_time(value)
    if stamp is None:
        raise NextflowReadError(f"weblog utcTime {str(value)[:40]!r} is not a date like 2024-05-01T12:00:00Z")
    return stamp


def _lenient_time(value: Any) -> pd.Timestamp | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if stamp is pd.NaT:
        return None
    return to_utc(stamp)


def _task_row(trace: Mapping[str, Any], event_status: str | None, event: str) -> dict[str, Any]:
    status = trace.get("status")
    if status is not None and not isinstance(status, str):
        raise NextflowReadError(f"weblog '{event}' trace.status should be a string")
    status = status or event_status
    row: dict[str, Any] = {
        TaskCol.TASK_ID: _int_field(trace, "task_id", event),
        TaskCol.HASH: _str_field(trace, "hash", event),
        TaskCol.NATIVE_ID: _str_field(trace, "native_id", event, numbers=True),
        TaskCol.NAME: _str_field(trace, "name", event),
        TaskCol.PROCESS: _str_field(trace, "process", event),
        TaskCol.TAG: _str_field(trace, "tag", event, numbers=True),
        TaskCol.STATUS: status,
        TaskCol.EXIT: _int_field(trace, "exit", event, unknown=fmt.UNKNOWN_EXIT),
        TaskCol.ATTEMPT: _int_field(trace, "attempt", event),
        TaskCol.SUBMIT: _time_field(trace, "submit", event),
        TaskCol.START: _time_field(trace, "start", event),
        TaskCol.COMPLETE: _time_field(trace, "complete", event),
        TaskCol.REALTIME: _int_field(trace, "realtime", event),
        TaskCol.CPUS: _float_field(trace, "cpus", event),
        TaskCol.MEMORY: _int_field(trace, "memory", event),
        TaskCol.WORKDIR: _str_field(trace, "workdir", event),
        "queue": _str_field(trace, "queue", event),
    }
    if row[TaskCol.HASH] is None and row[TaskCol.WORKDIR]:
        row[TaskCol.HASH] = fmt.hash_of_workdir(row[TaskCol.WORKDIR])
    if row[TaskCol.NAME] and not row[TaskCol.PROCESS]:
        process, tag = fmt.split_name(pd.Series([row[TaskCol.NAME]], dtype="string"))
        row[TaskCol.PROCESS] = process.iloc[0]
        row[TaskCol.TAG] = row[TaskCol.TAG] or (None if pd.isna(tag.iloc[0]) else tag.iloc[0])
    if not any(row[k] is not None for k in (TaskCol.HASH, TaskCol.TASK_ID, TaskCol.NATIVE_ID)):
        raise NextflowReadError(f"weblog '{event}' trace has no hash, task_id or native_id")
    return row


def _str_field(trace: Mapping[str, Any], key: str, event: str, *, numbers: bool = False) -> str | None:
    value = trace.get(key)
    if value is None or value == "":
        return None
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a local executor's PID
    if not isinstance(value, str):
        raise NextflowReadError(f"weblog '{event}' trace.{key} should be a string, got {type(value).__name__}")
    return value


def _int_field(trace: Mapping[str, Any], key: str, event: str, *, unknown: int | None = None) -> int | None:
    value = trace.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 19:
        value = int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise NextflowReadError(f"weblog '{event}' trace.{key} should be an integer, got {str(value)[:40]!r}")
    if not -(2**63) < value < 2**63:
        raise NextflowReadError(f"weblog '{event}' trace.{key} is out of range: {value}")
    return None if unknown is not None and value == unknown else value


def _float_field(trace: Mapping[str, Any], key: str, event: str) -> float | None:
    value = trace.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise NextflowReadError(f"weblog '{event}' trace.{key} should be a number, got {str(value)[:40]!r}")
    return float(value)


def _time_field(trace: Mapping[str, Any], key: str, event: str) -> pd.Timestamp | None:
    value = _int_field(trace, key, event)
    return fmt.epoch_ms_to_utc(value) if value is not None else None


def _row_key(row: Mapping[str, Any]) -> str:
    if row.get(TaskCol.HASH):
        return str(row[TaskCol.HASH])
    if row.get(TaskCol.TASK_ID) is not None:
        return f"task_id:{row[TaskCol.TASK_ID]}"
    return f"native_id:{row[TaskCol.NATIVE_ID]}"


def _rank(status: Any) -> int:
    """Order of a task's life: NEW < SUBMITTED < RUNNING < any terminal status."""
    if status in TASK_TERMINAL:
        return 3
    return _STATUS_RANK.get(status, 0)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_is_loopback = is_loopback_host
