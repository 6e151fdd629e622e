"""The emulator's HTTP transport: requests in, AWS-style JSON answers out, on loopback.

Only framing lives here: reading a request within bounds, writing an ``Answer``, and
answering every malformed request the way an AWS endpoint does, with a JSON body
``{"__type": ..., "message": ...}`` and the right status, never http.server's HTML
pages or a traceback. What a request means is the emulator's business
(``LocalBatch.answer``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import struct
import sys
import threading
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Literal, Protocol

from ._emu_model import client_error

log = logging.getLogger("batchkit.sim")

#: The largest body an API call may carry. Batch requests are small (a SubmitJob with
#: "the maximum size ... is 30 KiB" of container overrides); 10 MiB leaves room and keeps
#: a hostile Content-Length from holding memory.
MAX_API_BODY: Final = 10 * 2**20
#: The admin API loads whole states (``POST /_admin/state``): larger, still bounded.
MAX_ADMIN_BODY: Final = 512 * 2**20

_DIGITS = re.compile(r"^[0-9]{1,19}$")

#: ``__type`` of the protocol errors: Batch's own ClientException for a client's mistake.
_PROTOCOL_ERROR_TYPES: Final = {
    404: "UnknownOperationException",
    405: "UnknownOperationException",
    500: "ServerException",
    501: "UnknownOperationException",
    505: "ClientException",  # the client's HTTP version, not a server fault
}


@dataclass(slots=True)
class Answer:
    """What to send back: a JSON ``body`` with ``status``, or (``drop``) no answer at all."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: Literal["close", "reset"] | None = None  # "close": FIN without an answer; "reset": TCP RST

    @classmethod
    def error(cls, status: int, code: str, message: str) -> Answer:
        return cls(status, {"__type": code, "message": message}, {"x-amzn-ErrorType": code})


class Emulator(Protocol):
    def answer(self, method: str, path: str, headers: Any, raw: bytes) -> Answer: ...

    def now(self) -> float: ...


class BodyError(Exception):
    """A request whose body cannot be read: answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def body_length(headers: Any, limit: int) -> int:
    """The body's length from Content-Length, refusing what would desynchronise the stream.

    An invalid or negative Content-Length is not read as 0 (the body would then be parsed
    as a second request); a chunked body is refused (no AWS SDK chunks a JSON request).
    """
    if headers.get("Transfer-Encoding") is not None:
        raise BodyError(411, "Transfer-Encoding is not supported here: send the body with a Content-Length")
    values = headers.get_all("Content-Length") or []
    if not values:
        return 0
    if len({v.strip() for v in values}) != 1:
        raise BodyError(400, f"Conflicting Content-Length headers: {', '.join(values)}")
    value = values[0].strip()
    if not _DIGITS.match(value):
        raise BodyError(400, f"Invalid Content-Length {value[:40]!r}: it must be a whole number of bytes")
    n = int(value)
    if n > limit:
        raise BodyError(413, f"Request body of {n} bytes is larger than the {limit} bytes accepted")
    return n


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object: ClientException for anything else (never a 500)."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise client_error("Malformed JSON in the request body: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise client_error(f"Malformed JSON in the request body: {e}") from None
    if not isinstance(body, dict):
        raise client_error("The request body must be a JSON object")
    return body


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN/Infinity, which JSON (RFC 8259) and AWS do not allow.
    raise ValueError(f"{name} is not a JSON number")


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # many concurrent clients open connections at once
    emulator: Emulator

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-answer is normal (a timeout, Ctrl-C): no traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("LocalBatch: client %s went away: %s", client_address, exc)
            return
        log.exception("LocalBatch: error serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoint
    # Headers and body leave in two writes; with Nagle on, the body waits for the
    # client's delayed ACK and every call costs ~40 ms.
    disable_nagle_algorithm = True
    server: EmulatorServer
    timeout = 120  # a client that stalls mid-request is dropped, not waited for forever

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError) as e:
            # The client went away (or stalled past `timeout`): nothing to answer, no traceback.
            log.debug("LocalBatch: connection from %s ended: %s", self.client_address, e)
            self.close_connection = True

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            # "GET /path" alone is an HTTP/0.9 request, answered with a bare body and no status:
            # no AWS client speaks it, so it is refused like any other malformed request line.
            self.send_error(400, "HTTP/0.9 requests are not supported: send METHOD PATH HTTP/1.1")
            return False
        return True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _handle(self, method: str) -> None:
        admin = self.path.startswith("/_admin/")
        try:
            n = body_length(self.headers, MAX_ADMIN_BODY if admin else MAX_API_BODY)
        except BodyError as e:
            self.close_connection = True  # the stream's framing cannot be trusted any more
            self.write(Answer.error(e.status, _error_type(e.status), e.message))
            return
        raw = self.rfile.read(n) if n else b""
        if len(raw) < n:
            self.close_connection = True  # the client closed before sending its body
            return
        self.write(self.server.emulator.answer(method, self.path, self.headers, raw))

    def write(self, answer: Answer) -> None:
        if answer.drop is not None:
            self.drop(reset=answer.drop == "reset")
            return
        data = json.dumps(answer.body if answer.body is not None else {}).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in answer.headers.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's protocol errors (400, 414, 431, 501, 505) as AWS-style JSON, not HTML."""
        self.close_connection = True
        # http.server assumes HTTP/0.9 until the request line parses, and answers 0.9 with a
        # bare body (no status line, no headers); no AWS client speaks 0.9.
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        text = message or phrase
        if code == 501 and getattr(self, "command", None):
            text = f"Method {self.command} is not supported: AWS Batch takes GET, POST, PUT and DELETE"
        self.log_error("code %d, message %s", code, text)
        self.write(Answer.error(code, _error_type(code), f"{phrase}: {text}" if text != phrase else phrase))

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The emulator's time, so a client can see how far a sped-up clock runs ahead.
        return formatdate(self.server.emulator.now() if timestamp is None else timestamp, usegmt=True)

    def drop(self, *, reset: bool = False) -> None:
        """Close the connection without a byte of answer (``reset``: with a TCP RST)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            if reset:
                # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("LocalBatch %s " + format, self.address_string(), *args)


def _error_type(status: int) -> str:
    return _PROTOCOL_ERROR_TYPES.get(status, "ClientException" if status < 500 else "ServerException")
