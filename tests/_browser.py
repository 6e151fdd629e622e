"""What the browser tests share: a real chromium driven by Playwright, and a notebook
server (Voila, or `make demo`'s JupyterLab) on loopback with no AWS credentials.

Used by test_browser.py and test_inspect_browser.py. A missing chromium fails the test in
CI (env CI=true; .ci/run installs it) and skips it elsewhere; a missing Playwright fails
the test everywhere (its import is inside :func:`chromium`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Voila starts a kernel and runs the replay before the first widget appears; the
#: machine is shared, so these are generous upper bounds, not expectations.
SERVER_START_S = 120
PAGE_READY_MS = 180_000
KILL_DONE_MS = 90_000
#: The name of the server's output file in the test's tmp_path.
VOILA_LOG = "voila.log"


def chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: apt-get install -y chromium fonts-dejavu-core (.ci/run does)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"voila exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "api", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (GET / would start a kernel: only the browser asks for that)
        except OSError:
            time.sleep(0.25)  # a server coming up: nothing to inject a clock into
    raise AssertionError(f"voila did not answer at {url} within {seconds} s")


def no_aws_env(drop: Sequence[str] = (), **settings: str) -> dict[str, str]:
    """This process's environment without AWS credentials (so a notebook falls back to its
    LocalBatch example), without the variables in ``drop``, with ``settings`` added."""
    env = dict(os.environ)
    env.update(
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/batchkit-test/credentials",
        AWS_CONFIG_FILE="/nonexistent/batchkit-test/config",
        AWS_EC2_METADATA_DISABLED="true",
    )
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", *drop):
        env.pop(key, None)
    env.update(settings)
    return env


def stop_group(proc: subprocess.Popen[Any], sig: signal.Signals, wait_s: float) -> None:
    """Send ``sig`` to the server's process group (its kernels go with it), SIGKILL after ``wait_s``."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def voila_server(notebook: Path, tmp_path: Path, env: Mapping[str, str]) -> Iterator[str]:
    """Voila serving ``notebook`` on 127.0.0.1, its output in ``tmp_path/voila.log``; yields its URL."""
    port = free_port()
    log = (tmp_path / VOILA_LOG).open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
            "--show_tracebacks=True", str(notebook),
        ],
        cwd=tmp_path,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its kernel goes with it on teardown
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url, proc, SERVER_START_S)
        yield url
    finally:
        stop_group(proc, signal.SIGTERM, 20)
        log.close()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium (Playwright's Browser), closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_or_explain(page: Any, waits: Sequence[tuple[str, str]], *, shot: Path, tmp_path: Path, what: str) -> None:
    """Wait for each ``(selector, state)`` in turn (Playwright's ``wait_for_selector``); else a
    screenshot at ``shot`` and an AssertionError saying ``what``, with the Voila log's tail."""
    try:
        for selector, state in waits:
            page.wait_for_selector(selector, state=state, timeout=PAGE_READY_MS)
    except Exception:
        page.screenshot(path=str(shot), full_page=True)
        log = (tmp_path / VOILA_LOG).read_text(errors="replace")[-4000:]
        raise AssertionError(f"{what}; voila log tail:\n{log}") from None


def assert_killed_by_batchkit(endpoint: str, job_ids: Sequence[str]) -> None:
    """The emulator's own word, over the real Batch API: every job FAILED with batchkit's reason."""
    batch = boto3.client(
        "batch", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )
    jobs = batch.describe_jobs(jobs=list(job_ids))["jobs"]
    assert sorted(j["jobId"] for j in jobs) == sorted(job_ids)
    for job in jobs:
        assert job["status"] == "FAILED", job
        assert job["statusReason"].startswith("batchkit: orphan of run '"), job["statusReason"]
