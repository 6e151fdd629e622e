"""Notebook 02 served by Voila, in a real chromium: a click on a table row opens the inspector.

No AWS credentials: the notebook falls back to its example (the replayed incident on
LocalBatch, CloudWatch Logs and S3 from moto on loopback). The browser clicks an orphan
row (not its kill button); the Inspector panel below the table opens on that job and shows
its running attempt, the tail of its CloudWatch log and its work dir without .exitcode.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGE_READY_MS,
    SERVER_START_S,
    chromium_or_skip,
    free_port,
    wait_http,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "02-investigate-a-run.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def voila02(tmp_path: Path) -> Iterator[str]:
    chromium_or_skip()
    port = free_port()
    env = dict(os.environ)
    env.update(
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/batchkit-test/credentials",
        AWS_CONFIG_FILE="/nonexistent/batchkit-test/config",
        AWS_EC2_METADATA_DISABLED="true",
    )
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "BATCHKIT_LAUNCH_DIR"):
        env.pop(key, None)
    log = (tmp_path / "voila.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
         "--show_tracebacks=True", str(NOTEBOOK)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url, proc, SERVER_START_S)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_clicking_a_row_opens_the_inspector_on_it(voila02: str, artifacts_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1600})
            page.goto(voila02, timeout=PAGE_READY_MS)
            try:
                page.wait_for_selector("tr.bk-row.bk-orphan", timeout=PAGE_READY_MS)
                # The notebook's own inspector cell has run: the panel exists below the table.
                page.wait_for_selector(".bk-inspector", state="attached", timeout=PAGE_READY_MS)
            except Exception:
                page.screenshot(path=str(artifacts_dir / "inspector-not-ready.png"), full_page=True)
                log = (tmp_path / "voila.log").read_text(errors="replace")[-4000:]
                raise AssertionError(f"the dashboard or its inspector did not appear; voila log tail:\n{log}") from None
            rows = page.locator("tr.bk-row.bk-orphan")
            row = rows.nth(rows.count() - 1)  # another row than the one the notebook opened
            job_id = row.get_attribute("data-job-id") or ""
            assert job_id
            row.locator("td").first.click()
            panel = page.locator(f'.bk-inspector .bk-insp[data-query="{job_id}"]')
            expect(panel).to_be_visible(timeout=60_000)
            expect(panel).to_contain_text(f"Batch job {job_id} — RUNNING")
            expect(panel.locator("tr.bk-attempt")).to_contain_text("running")
            expect(panel.locator("pre.bk-logtail")).to_contain_text("records processed")
            expect(panel).to_contain_text(".exitcode absent")
            expect(panel).to_contain_text("work dir says started")
            # A row click is not a kill.
            expect(row).not_to_have_class("bk-killed")
            page.screenshot(path=str(artifacts_dir / "inspector-open.png"), full_page=True)
        finally:
            browser.close()
