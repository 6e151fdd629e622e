"""The weblog receiver: real captured payloads over real HTTP, auth, limits, and both loop modes."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import ROOT, real_fixture

from batchkit.errors import NextflowReadError
from batchkit.nextflow import WeblogAuthError, WeblogReceiver, WeblogTooLargeError
from batchkit.schema import TASK_COLUMNS, TaskCol

NATIVE_ID = "c1610fe4-2428-4da8-a868-1f3b53733169"


def md_payloads() -> dict[str, dict[str, Any]]:
    """The JSON bodies in weblog-awsbatch-events.md, by their section heading."""
    text = real_fixture("weblog-awsbatch-events.md").read_text()
    found: dict[str, dict[str, Any]] = {}
    for heading, block in re.findall(r"####\s+([^\n]+)\n+```json\n(.*?)```", text, re.S):
        found[heading.strip()] = json.loads(block)
    return found


def envelope(event: str, utc: str, payload: dict[str, Any], key: str) -> bytes:
    """What Nextflow 19.07's WebLogObserver POSTs around the captured payloads."""
    body = {
        "runName": "serene_babbage",
        "runId": "1e01c1a6-06d5-45b8-8134-31e4271c3c22",
        "event": event,
        "utcTime": utc,
        key: payload,
    }
    return json.dumps(body).encode()


def real_sequence() -> list[bytes]:
    p = md_payloads()
    return [
        envelope("started", "2019-10-02T16:23:29Z", p["Workflow Started"], "metadata"),
        envelope("process_submitted", "2019-10-02T16:23:31Z", p["Process submitted"], "trace"),
        envelope("process_started", "2019-10-02T16:26:10Z", p["Process Started"], "trace"),
        envelope("process_completed", "2019-10-02T16:28:50Z", p["Process Completed"], "trace"),
        envelope("completed", "2019-10-02T16:29:40Z", p["Workflow completed"], "metadata"),
    ]


def post(url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> tuple[int, str]:
    """POST to ``url`` as Nextflow's SimpleHttpClient does: to the URL's own path."""
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match
    conn = http.client.HTTPConnection(match.group(1), int(match.group(2)), timeout=10)
    try:
        conn.request(method, match.group(3), body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


@pytest.fixture
def receiver() -> Iterator[WeblogReceiver]:
    rec = WeblogReceiver().start()
    try:
        yield rec
    finally:
        rec.stop()


# --- the real captured payloads over HTTP --------------------------------------------------


@pytest.mark.parametrize("token", [None, "nextflow:s3cret"])
def test_real_payloads_give_native_id_and_status_path(token: str | None) -> None:
    rec = WeblogReceiver(token=token).start()
    try:
        assert rec.url.startswith("http://127.0.0.1:")
        statuses = []
        for body in real_sequence():
            status, text = post(rec.url, body, basic(token) if token else None)
            assert status == 200, text
            frame = rec.tasks()
            if len(frame):
                statuses.append(frame[TaskCol.STATUS].iloc[0])
        frame = rec.tasks()
    finally:
        rec.stop()
    assert statuses == ["SUBMITTED", "RUNNING", "COMPLETED", "COMPLETED"]
    assert tuple(frame.columns[: len(TASK_COLUMNS)]) == TASK_COLUMNS
    row = frame.iloc[0]
    assert row[TaskCol.NATIVE_ID] == NATIVE_ID
    assert row[TaskCol.HASH] == "8f/650b3e"
    assert row[TaskCol.NAME] == "fastqc (1)" and row[TaskCol.PROCESS] == "fastqc"
    assert row[TaskCol.EXIT] == 0 and row[TaskCol.ATTEMPT] == 1
    assert row[TaskCol.SUBMIT] == pd.Timestamp(1570033411536, unit="ms", tz="UTC")
    assert row[TaskCol.START] == pd.Timestamp(1570033570702, unit="ms", tz="UTC")
    assert row[TaskCol.REALTIME] == pd.Timedelta(milliseconds=160048)
    assert row[TaskCol.WORKDIR].endswith("/8f/650b3e6f07b2c7165961c5b265f58f")
    assert row[TaskCol.SOURCE] == "weblog"
    assert row["queue"] == "default-queue"
    assert (rec.run_name, rec.run_state) == ("serene_babbage", "completed")
    assert rec.version == "19.07.0" and rec.work_dir == "s3://uwlm-personal/nkrumm/nextflow-work-dir"
    assert rec.launch_time == pd.Timestamp("2019-10-02T16:23:29Z")
    assert rec.last_event_time == pd.Timestamp("2019-10-02T16:29:40Z")
    assert [e["event"] for e in rec.events] == [
        "started", "process_submitted", "process_started", "process_completed", "completed",
    ]  # fmt: skip


def test_unknown_exit_while_running_is_missing() -> None:
    rec = WeblogReceiver()
    rec.ingest(real_sequence()[2])
    assert pd.isna(rec.tasks()[TaskCol.EXIT].iloc[0])  # 2147483647 = not known yet


# --- auth, limits, bad requests: 4xx and keep serving --------------------------------------


def test_token_is_checked(tmp_path: Path) -> None:
    rec = WeblogReceiver(token="user:pw").start()
    try:
        body = real_sequence()[1]
        assert rec.url.startswith(rec.base_url) and rec.url != rec.base_url
        assert post(rec.base_url, body)[0] == 401
        assert post(rec.base_url, body, basic("user:wrong"))[0] == 401
        assert post(rec.base_url, body, {"Authorization": "Bearer abc"})[0] == 401
        assert post(rec.base_url, body, {"Authorization": "Basic !!!"})[0] == 401
        assert post(rec.base_url + "weblog", body)[0] == 401  # another path is no secret
        assert post(rec.url[:-2] + "/", body)[0] == 401  # nor a prefix of it
        assert rec.tasks().empty and rec.refused_posts == 6
        assert post(rec.base_url, body, basic("user:pw"))[0] == 200
        assert post(rec.url, real_sequence()[2])[0] == 200  # the secret path needs no header
        assert post(rec.url.rstrip("/"), real_sequence()[3])[0] == 200
        assert rec.tasks()[TaskCol.STATUS].tolist() == ["COMPLETED"] and rec.refused_posts == 6
    finally:
        rec.stop()


def test_a_receiver_is_authenticated_by_default() -> None:
    """WeblogReceiver() makes its own token and secret path: nobody else on this machine
    can post events into a run's records (issue #15), not even to a default receiver."""
    one, two = WeblogReceiver().start(), WeblogReceiver()
    try:
        assert one.token and two.token and one.token != two.token
        assert one.path_secret != two.path_secret and len(one.path_secret) >= 32
        body = real_sequence()[1]
        assert post(one.base_url, body)[0] == 401 and one.refused_posts == 1
        assert post(one.base_url, body, basic(two.token))[0] == 401
        assert post(one.base_url, body, basic(one.token))[0] == 200
        assert one.path_secret not in repr(one) and one.token not in repr(one)
        # Nextflow's WebLogObserver.checkUrl (nextflow-io/nextflow, trace/WebLogObserver.groovy)
        # must take the URL as it is, secret path included
        check_url = r"^(https|http)://[-a-zA-Z0-9+&@#/%?=~_|!:,.;]*[-a-zA-Z0-9+&@#/%=~_|]"
        assert re.match(check_url, one.url) and re.match(check_url, one.url).group(0) == one.url  # type: ignore[union-attr]
    finally:
        one.stop()


def test_bad_requests_get_4xx_and_the_server_keeps_serving(receiver: WeblogReceiver) -> None:
    assert post(receiver.url, b"not json")[0] == 400
    assert post(receiver.url, b"[1, 2]")[0] == 400
    assert post(receiver.url, b'{"runName": "x"}')[0] == 400  # no event
    assert post(receiver.url, b'{"event": "process_started"}')[0] == 400  # no trace
    assert post(receiver.url, b'{"event": "process_started", "trace": {"task_id": "one"}}')[0] == 400
    assert post(receiver.url, b"", method="GET")[0] == 405
    assert post(receiver.url, b"x" * 1_000_001)[0] == 413
    status, text = post(receiver.url, b'{"event": "started", "utcTime": "soon"}')
    assert status == 400 and "utcTime" in text
    assert post(receiver.url, real_sequence()[1])[0] == 200
    assert len(receiver.tasks()) == 1


def test_keep_alive_connection_survives_a_bad_post(receiver: WeblogReceiver) -> None:
    match = re.match(r"http://([^:/]+):(\d+)/", receiver.url)
    assert match
    conn = http.client.HTTPConnection(match.group(1), int(match.group(2)), timeout=10)
    try:
        for body, expected in ((b"{", 400), (real_sequence()[1], 200), (real_sequence()[2], 200)):
            conn.request("POST", re.sub(r"^http://[^/]+", "", receiver.url), body=body)
            response = conn.getresponse()
            response.read()
            assert response.status == expected
    finally:
        conn.close()
    assert receiver.tasks()[TaskCol.STATUS].tolist() == ["RUNNING"]


def test_ingest_errors_are_typed() -> None:
    rec = WeblogReceiver(token="a:b", max_body=100)
    with pytest.raises(WeblogAuthError):
        rec.receive(b"{}", {})
    with pytest.raises(WeblogAuthError):
        rec.receive(b"{}", basic("a:c"), "/not-the-secret/")
    assert rec.refused_posts == 2
    with pytest.raises(WeblogTooLargeError):
        rec.receive(b" " * 101, basic("a:b"))
    with pytest.raises(NextflowReadError, match="not JSON"):
        rec.receive(b"\xff\xfe", {}, f"/{rec.path_secret}/")
    with pytest.raises(NextflowReadError, match="not JSON"):
        rec.ingest(b"\xff\xfe")  # the pure part: a body this process already trusts


def test_non_loopback_host_is_refused_unless_asked() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        WeblogReceiver(host="0.0.0.0")
    with pytest.raises(ValueError, match="token"):
        WeblogReceiver(host="0.0.0.0", allow_remote=True)  # anyone could POST events
    WeblogReceiver(host="0.0.0.0", allow_remote=True, token="u:p")  # not started: nothing listens
    WeblogReceiver(host="localhost")


# --- nf-weblog plugin (25.04+) payloads, errors and ordering ---------------------------------


def plugin_post(event: str, utc: str, **extra: Any) -> bytes:
    return json.dumps(
        {"runName": "happy_turing", "runId": "9d5c0a5e-1111-2222-3333-444455556666", "event": event, "utcTime": utc, **extra}
    ).encode()


def plugin_trace(status: str, **fields: Any) -> dict[str, Any]:
    base = {
        "task_id": 3, "hash": "5c/4e0a1b", "native_id": "0f1e2d3c-0000-1111-2222-333344445555:2",
        "name": "QUANT (s3)", "process": "QUANT", "tag": "s3", "status": status, "exit": 2147483647,
        "attempt": 1, "submit": 1745910000000, "start": 0, "workdir": "s3://b/w/5c/4e0a1b000000000000000000000000",
        "cpus": 2, "memory": 4294967296, "queue": "spot",
    }  # fmt: skip
    return {**base, **fields}


def test_plugin_payloads_error_event_aborts_the_run() -> None:
    rec = WeblogReceiver(token="nf:tok")
    auth = basic("nf:tok")
    rec.receive(plugin_post("started", "2025-04-29T07:00:00Z", metadata={"workflow": {"runName": "happy_turing", "start": "2025-04-29T07:00:00Z"}}), auth)
    rec.receive(plugin_post("process_submitted", "2025-04-29T07:00:01Z", trace=plugin_trace("SUBMITTED")), auth)
    rec.receive(plugin_post("process_started", "2025-04-29T07:01:00Z", trace=plugin_trace("RUNNING", start=1745910060000)), auth)
    rec.receive(plugin_post("error", "2025-04-29T07:05:00Z"), auth)  # an abort sends error without a trace
    assert rec.run_state == "aborted"
    assert rec.abort_time == pd.Timestamp("2025-04-29T07:05:00Z")
    row = rec.tasks().iloc[0]
    assert row[TaskCol.NATIVE_ID] == "0f1e2d3c-0000-1111-2222-333344445555:2"
    assert row[TaskCol.STATUS] == "RUNNING"  # Nextflow's last word; not rewritten by the abort
    assert row[TaskCol.MEMORY] == 4 * 1024**3 and row[TaskCol.CPUS] == 2.0
    # the completed event that follows an abort carries the error message
    rec.receive(
        plugin_post("completed", "2025-04-29T07:05:02Z", metadata={"workflow": {"success": False, "errorMessage": "boom"}}),
        auth,
    )  # fmt: skip
    assert rec.run_state == "aborted" and rec.error_message == "boom"


def test_out_of_order_posts_never_move_a_task_back() -> None:
    rec = WeblogReceiver()
    rec.ingest(plugin_post("process_completed", "2025-04-29T07:03:00Z", trace=plugin_trace("COMPLETED", exit=0)))
    rec.ingest(plugin_post("process_started", "2025-04-29T07:01:00Z", trace=plugin_trace("RUNNING")))
    row = rec.tasks().iloc[0]
    assert row[TaskCol.STATUS] == "COMPLETED" and row[TaskCol.EXIT] == 0


def test_another_session_cannot_take_the_receiver_over() -> None:
    """A receiver follows one session: a 'started' of another runId (a forged POST, or
    another run given the same URL) is ignored and counted, never adopted (issue #15)."""
    rec = WeblogReceiver()
    rec.ingest(plugin_post("error", "2025-04-29T07:05:00Z"))
    assert rec.run_state == "aborted"
    first = rec.run_id
    body = json.loads(plugin_post("started", "2025-04-29T08:00:00Z"))
    body["runId"] = "another-session"
    rec.ingest(json.dumps(body).encode())
    assert rec.run_state == "aborted" and rec.run_id == first and rec.foreign_events == 1
    bound = WeblogReceiver(session_id="the-run")
    bound.ingest(plugin_post("error", "2025-04-29T07:05:00Z"))
    assert bound.run_state == "alive" and bound.foreign_events == 1


# --- loop modes ------------------------------------------------------------------------------


def test_wait_for_in_thread_mode(receiver: WeblogReceiver) -> None:
    assert not receiver.wait_for(lambda r: r.run_state == "completed", timeout=0.05)
    bodies = real_sequence()  # here, not in the thread: it skips when ../shared is absent
    sender = threading.Thread(target=lambda: [post(receiver.url, b) for b in bodies])
    sender.start()
    assert receiver.wait_for(lambda r: r.run_state == "completed", timeout=10)
    sender.join()


def test_serve_in_an_asyncio_program() -> None:
    async def main() -> list[int]:
        rec = WeblogReceiver()
        server = asyncio.create_task(rec.serve())
        while not rec.url:
            await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        codes = [(await loop.run_in_executor(None, post, rec.url, body))[0] for body in real_sequence()]
        rec.stop()
        await asyncio.wait_for(server, 5)
        return codes

    assert asyncio.run(main()) == [200] * 5


NOTEBOOK_SCRIPT = """
import asyncio, sys, threading, http.client, json
sys.path.insert(0, {tests!r})
from test_weblog import post, real_sequence
from batchkit.nextflow import WeblogReceiver

async def cell() -> None:
    rec = WeblogReceiver()
    returned = rec.start()  # like a notebook cell: a loop is running in this thread
    assert returned is rec and rec.url, "start() must return at once with the url"
    assert "nest_asyncio" not in sys.modules, "nest_asyncio must not be applied before it is needed"
    bodies = real_sequence()
    threading.Thread(target=lambda: [post(rec.url, b) for b in bodies], daemon=True).start()
    # a blocking wait inside the loop thread, as a notebook cell would do
    assert rec.wait_for(lambda r: r.run_state == "completed", timeout=20)
    assert "nest_asyncio" in sys.modules
    assert rec.tasks()["native_id"].tolist() == [{native!r}]
    rec.stop()
    print("OK")

asyncio.run(cell())
"""


def test_start_inside_a_running_loop_like_a_notebook() -> None:
    real_fixture("weblog-awsbatch-events.md")
    script = NOTEBOOK_SCRIPT.format(tests=str(ROOT / "tests"), native=NATIVE_ID)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "OK"
