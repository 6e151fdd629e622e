"""Property tests: random, truncated and binary input to each reader only ever gives
NextflowReadError (naming the file and line), and random POSTs to the weblog receiver get a
4xx while it keeps serving."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pandas as pd
import pytest
from conftest import REAL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_weblog import post

from batchkit.errors import NextflowReadError
from batchkit.nextflow import WeblogReceiver
from batchkit.nextflow.log import build_log_info, parse_log_text
from batchkit.nextflow.trace import TRACE_FIELD_TYPES, parse_trace_bytes
from batchkit.schema import TASK_COLUMNS

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = sorted(TRACE_FIELD_TYPES)
TOKENS = [
    "-", "0", "1", "137", "2147483647", "COMPLETED", "FAILED", "ABORTED", "running", "ab/cdef12",
    "2024-01-02 03:04:05.678", "2024-02-30 03:04:05.678", "1700000000000", "99999999999999999999",
    "352ms", "1.2s", "1m 2s", "4h 41m 19s", "1d 2h 3m", "5 parsecs", "206.9 MB", "1 ZB", "12 XB",
    "47.6%", "%", "nan", "inf", "-1", "1e308", "ALIGN (s1)", "(", ")", "s3://b/w/2e/8b0123456789abcdef0123456789ab",
    "é", "\x00", " ", "",
]  # fmt: skip


def check_trace(data: bytes) -> None:
    try:
        frame = parse_trace_bytes(data, tz=UTC, path="fuzz-trace.txt")
    except NextflowReadError as exc:
        assert exc.path == "fuzz-trace.txt" and exc.line is not None and exc.line >= 1
        return
    assert tuple(frame.columns[: len(TASK_COLUMNS)]) == TASK_COLUMNS


@FUZZ
@given(st.binary(max_size=3000))
def test_trace_random_bytes(data: bytes) -> None:
    check_trace(data)


@st.composite
def trace_like(draw: st.DrawFn) -> bytes:
    fields = draw(st.lists(st.sampled_from([*FIELDS, "unknown_x"]), min_size=1, max_size=8, unique=True))
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        n = draw(st.sampled_from([len(fields), len(fields), len(fields), len(fields) - 1, len(fields) + 1]))
        rows.append("\t".join(draw(st.lists(st.sampled_from(TOKENS), min_size=max(n, 0), max_size=max(n, 0)))))
    end = draw(st.sampled_from(["\n", "", "\r\n"]))
    return ("\t".join(fields) + "\n" + "\n".join(rows) + end).encode("utf-8", errors="replace")


@FUZZ
@given(trace_like())
def test_trace_random_tables(data: bytes) -> None:
    check_trace(data)


def real_bytes(name: str) -> bytes:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path.read_bytes()


@FUZZ
@given(st.data())
def test_trace_truncated_real_file(data: st.DataObject) -> None:
    whole = real_bytes("openproblems-awsbatch-trace.txt")
    cut = data.draw(st.integers(0, len(whole)))
    check_trace(whole[:cut])
    # a trace cut anywhere after the header is a live trace: it always reads
    if cut > whole.index(b"\n"):
        frame = parse_trace_bytes(whole[:cut], tz=UTC, path="cut.txt")
        assert len(frame) <= 864


@FUZZ
@given(st.data())
def test_trace_real_file_with_a_corrupted_byte(data: st.DataObject) -> None:
    whole = bytearray(real_bytes("local-aborted-trace.txt"))
    at = data.draw(st.integers(0, len(whole) - 1))
    whole[at] = data.draw(st.integers(0, 255))
    check_trace(bytes(whole))


def check_log(text: str) -> None:
    try:
        launch = parse_log_text(text, path="fuzz.log")
        build_log_info(
            [launch], tz=UTC, year=None, reference_time=None, mtime=pd.Timestamp("2024-06-01", tz="UTC")
        )
    except NextflowReadError as exc:
        assert exc.path == "fuzz.log" and exc.line is not None


LOG_MESSAGES = [
    "N E X T F L O W  ~  version 24.04.4", "Launching `main.nf` [a_b] - revision: x", "Session UUID: u",
    "Run name: r", "Work-dir: s3://b/w [S3]", "[ab/cdef12] Submitted process > P (1)",
    "[ab/cdef12] Re-submitted process > P (1)", "[zz/cdef12] Cached process > P",
    "[AWS BATCH] Process `P (1)` submitted > job=j1; work-dir=s3://b/w/ab/cdef1234567890abcdef1234567890",
    "[AWS BATCH] submitted > job=; work-dir=", "Session aborted -- Cause: ", "Killing running tasks (999999999999999999999)",
    "[AWS BATCH] killing job=j1; response={}", "[AWS BATCH] cleanup = terminating job j2",
    "Task completed > TaskHandler[id: 1; name: P (1); status: COMPLETED; exit: -; error: -; workDir: /w/ab/cdef1234567890abcdef1234567890]",
    "Task completed > TaskHandler[id: 99999999999999999999999; name: ; status: X; exit: 2147483647; error: e; workDir: ]",
    "> Execution complete -- Goodbye", "Some jobs may not be terminated", "",
]  # fmt: skip
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@st.composite
def log_like(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.booleans()):
            stamp = f"{draw(st.sampled_from(MONTHS))}-{draw(st.integers(0, 39)):02d} {draw(st.integers(0, 29)):02d}:{draw(st.integers(0, 69)):02d}:00.000"
            lines.append(f"{stamp} [main] DEBUG nextflow.Session - {draw(st.sampled_from(LOG_MESSAGES))}")
        else:
            lines.append(draw(st.text(max_size=40)))
    return "\n".join(lines)


@FUZZ
@given(log_like())
def test_log_random_lines(text: str) -> None:
    check_log(text)


@FUZZ
@given(st.binary(max_size=2000))
def test_log_random_bytes(data: bytes) -> None:
    check_log(data.decode("utf-8", errors="replace"))


@FUZZ
@given(st.data())
def test_log_truncated_real_file(data: st.DataObject) -> None:
    text = real_bytes("slurm-sigint-abort.nextflow.log").decode()
    check_log(text[: data.draw(st.integers(0, len(text)))])


# --- weblog ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
TRACE_KEYS = ["task_id", "hash", "native_id", "name", "process", "tag", "status", "exit", "attempt",
              "submit", "start", "complete", "realtime", "cpus", "memory", "workdir", "queue"]  # fmt: skip
EVENTS = ["started", "completed", "error", "process_submitted", "process_started", "process_completed", "weird"]


@st.composite
def weblog_message(draw: st.DrawFn) -> bytes:
    message: dict[str, Any] = {
        "event": draw(st.sampled_from(EVENTS) | json_values),
        "runName": draw(st.none() | st.text(max_size=10) | st.integers()),
        "runId": draw(st.none() | st.text(max_size=10)),
        "utcTime": draw(st.none() | st.sampled_from(["2024-01-01T00:00:00Z", "x", ""]) | st.integers()),
    }
    if draw(st.booleans()):
        message["trace"] = draw(st.dictionaries(st.sampled_from(TRACE_KEYS), json_values, max_size=10) | json_values)
    if draw(st.booleans()):
        message["metadata"] = {"workflow": draw(st.dictionaries(st.sampled_from(["start", "complete", "success", "errorMessage", "workDir", "nextflow", "runName"]), json_values))}
    return json.dumps(message).encode()


def check_ingest(receiver: WeblogReceiver, body: bytes) -> None:
    try:
        receiver.ingest(body)
    except NextflowReadError as exc:
        assert str(exc)
    frame = receiver.tasks()
    assert tuple(frame.columns[: len(TASK_COLUMNS)]) == TASK_COLUMNS


@FUZZ
@given(st.binary(max_size=500) | weblog_message())
def test_weblog_ingest_random(body: bytes) -> None:
    check_ingest(WeblogReceiver(), body)


@pytest.fixture(scope="module")
def live() -> Iterator[WeblogReceiver]:
    receiver = WeblogReceiver(max_body=2000).start()
    try:
        yield receiver
    finally:
        receiver.stop()


VALID = json.dumps(
    {
        "runName": "r",
        "runId": "s",
        "event": "process_started",
        "utcTime": "2024-01-01T00:00:00Z",
        "trace": {"hash": "ab/cdef12", "status": "RUNNING"},
    }
).encode()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    body=st.binary(max_size=2500) | weblog_message(),
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]),
    content_type=st.sampled_from(["application/json", "text/plain", "x/\u00e9"]),
)
def test_random_posts_get_4xx_and_the_receiver_keeps_serving(
    live: WeblogReceiver, body: bytes, method: str, content_type: str
) -> None:
    status, _ = post(live.url, body, {"Content-Type": content_type.encode("latin-1", "replace").decode("latin-1")}, method=method)
    assert status == 200 or 400 <= status < 500
    assert post(live.url, VALID)[0] == 200


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(min_size=1, max_size=600))
def test_raw_garbage_on_the_socket_does_not_stop_the_receiver(live: WeblogReceiver, raw: bytes) -> None:
    match = re.match(r"http://([^:/]+):(\d+)/", live.url)
    assert match
    with socket.create_connection((match.group(1), int(match.group(2))), timeout=5) as sock:
        sock.sendall(raw + b"\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    if answer:
        code = int(answer.split(b" ", 2)[1])
        assert code == 200 or 400 <= code < 500
    assert post(live.url, VALID)[0] == 200
