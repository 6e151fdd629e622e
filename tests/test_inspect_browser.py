"""Notebook 02 served by Voila, in a real chromium: a click on a table row opens the inspector.

No AWS credentials: the notebook falls back to its example (the replayed incident on
LocalBatch, CloudWatch Logs and S3 from moto on loopback). The browser clicks an orphan
row (not its kill button); the Inspector panel below the table opens on that job and shows
its running attempt, the tail of its CloudWatch log and its work dir without .exitcode.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import (
    PAGE_READY_MS,
    chromium,
    chromium_or_skip,
    no_aws_env,
    voila_server,
    wait_or_explain,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "02-investigate-a-run.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def voila02(tmp_path: Path) -> Iterator[str]:
    chromium_or_skip()
    with voila_server(NOTEBOOK, tmp_path, no_aws_env(drop=("BATCHKIT_LAUNCH_DIR",))) as url:
        yield url


def test_clicking_a_row_opens_the_inspector_on_it(voila02: str, artifacts_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 1600})
        page.goto(voila02, timeout=PAGE_READY_MS)
        # The notebook's own inspector cell has run: the panel exists below the table.
        wait_or_explain(page, [("tr.bk-row.bk-orphan", "visible"), (".bk-inspector", "attached")],
                        shot=artifacts_dir / "inspector-not-ready.png", tmp_path=tmp_path,
                        what="the dashboard or its inspector did not appear")
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
