"""The inspector panel, driven by clicking its buttons, on the replayed incident."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batchkit.aws_readers import AwsReaders
from batchkit.client import BatchClient
from batchkit.inspect import Inspector
from batchkit.inspection import Inspection
from batchkit.nextflow import NextflowRun
from batchkit.reconcile import reconcile
from batchkit.schema import JobCol, RecCol
from batchkit.sim.nextflow import Incident, replay_incident
from batchkit.widgets.inspector import HINT, InspectorPanel, row_key

XSS = "<script>alert(1)</script>"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Incident, Inspector]]:
    with replay_incident(launch_dir=tmp_path / "launch", n_tasks=20, seed=4) as inc:
        batch = BatchClient(endpoint_url=inc.endpoint_urls["batch"])
        readers = AwsReaders.create(endpoint_urls=inc.endpoint_urls)
        run = NextflowRun.from_dir(inc.launch_dir)
        try:
            yield inc, Inspector(run, batch, readers, lines=2)
        finally:
            readers.close()
            batch.close()


def _orphan(inc: Incident) -> str:
    return sorted(inc.truth.abandoned_job_ids)[0]


def test_panel_shows_the_row_escapes_everything_and_pages_the_log_backwards(
    world: tuple[Incident, Inspector], tmp_path: Path
) -> None:
    inc, inspector = world
    jid = _orphan(inc)
    # The running container prints a hostile line: it must show as text.
    inc.batch.set_job_behavior(jid, output=[XSS, "last line"])
    panel = InspectorPanel(inspector.inspect, inspector.load_earlier)
    assert panel.target is None and panel.body.value == HINT
    panel.show(jid)
    assert panel.target == jid
    body = panel.body.value
    assert "<script" not in body.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "running" in body and ".command.begin" in body
    assert panel.inspection is not None and panel.inspection.log is not None
    assert [ln.message for ln in panel.inspection.log.lines] == [XSS, "last line"]
    assert not panel.earlier_button.disabled
    panel.earlier_button.click()
    assert panel.inspection.log is not None and len(panel.inspection.log.lines) > 2
    assert panel.inspection.log.lines[-1].message == "last line"
    # The HTML export is escaped too.
    page = panel.export(tmp_path / "one.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    panel.close_button.click()
    assert panel.target is None and panel.body.value == HINT and panel.inspection is None


def test_panel_follows_its_row_across_refreshes(world: tuple[Incident, Inspector]) -> None:
    inc, inspector = world
    jid = _orphan(inc)
    asked: list[str] = []

    def counting(target: str) -> Inspection:
        asked.append(target)
        return inspector.inspect(target)

    def frame() -> pd.DataFrame:
        run = inspector.run
        assert run is not None and inspector.batch is not None
        ids = [str(i) for i in run.tasks["native_id"].dropna()]
        return reconcile(run, list(inspector.batch.describe_jobs(ids).jobs.values()))

    before = frame()
    panel = InspectorPanel(counting)
    panel.show(jid, before)
    assert row_key(before, jid) == ("RUNNING", "orphan")
    # A refresh where nothing about this row changed (rows re-sorted): no new fetch.
    panel.follow(before.iloc[::-1])
    assert asked == [jid]
    # The job is killed: its row changes, the panel fetches again and shows the reason.
    assert inspector.batch is not None
    inspector.batch.terminate_jobs([jid], "batchkit: orphan of run 'x'")
    after = frame()
    panel.follow(after)
    assert asked == [jid, jid]
    assert panel.inspection is not None and panel.inspection.attempts[-1].job_reason == "batchkit: orphan of run 'x'"
    assert "batchkit: orphan of run &#x27;x&#x27;" in panel.body.value
    assert after.loc[after[JobCol.JOB_ID] == jid, RecCol.BATCH_STATUS].iloc[0] == "FAILED"


def test_panel_fetches_off_the_event_loop(world: tuple[Incident, Inspector]) -> None:
    inc, inspector = world
    jid = _orphan(inc)

    async def main() -> Any:
        panel = InspectorPanel(inspector.inspect)
        panel.show(jid)
        assert "loading" in panel.status.value  # the cell returned before the answer came
        await panel.wait_idle()
        return panel

    panel = asyncio.run(main())
    assert panel.inspection is not None and panel.inspection.job_id == jid
    assert "loading" not in panel.status.value


def test_a_failing_inspect_is_shown_not_raised() -> None:
    def broken(target: str) -> Inspection:
        raise RuntimeError(f"no route to {XSS}")

    panel = InspectorPanel(broken)
    panel.show("job-1")
    assert "no route to &lt;script&gt;" in panel.status.value
    assert panel.inspection is None


def test_a_row_click_on_the_dashboard_opens_the_inspector_below_the_table(world: tuple[Incident, Inspector]) -> None:
    from batchkit.widgets import Dashboard

    inc, _ = world
    jid = _orphan(inc)
    inc.batch.set_job_behavior(jid, output=[XSS])
    client = BatchClient(endpoint_url=inc.endpoint_url, region=inc.batch.region)
    dash = Dashboard(inc.launch_dir, client=client, queues=[inc.truth.queue], autostart=False)
    try:
        dash.refresh()
        # Dashboard.inspect attaches the panel on first use and opens it on the job.
        panel = dash.inspect(jid, endpoint_urls=inc.endpoint_urls)
        assert panel is dash.inspect(jid) and panel.target == jid
        assert dash.figures.children[-1] is panel and dash.figures.get_title(len(dash.figures.children) - 1) == "Inspector"
        # What a click on the row sends from the browser.
        dash.table._message(dash.table, {"select": jid}, [])
        assert dash.figures.selected_index == len(dash.figures.children) - 1
        assert panel.target == jid and panel.inspection is not None
        assert panel.inspection.running_attempt is not None
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in panel.body.value and "<script" not in panel.body.value
        # The tracker now has the work-dir witness; a refresh keeps the panel on its job.
        assert dash.tracker.witness is not None
        dash.refresh()
        assert panel.target == jid
    finally:
        dash.close()
        client.close()


def test_the_panel_shows_each_attempts_own_log(world: tuple[Incident, Inspector]) -> None:
    inc, inspector = world
    jid = _orphan(inc)
    inc.batch.set_job_behavior(jid, output=["first try"])
    inc.batch.interrupt(jid)  # a spot reclaim; Batch retries the job under the same id
    job = inc.batch.describe_job(jid)
    assert job is not None
    if job["status"] != "RUNNING":
        inc.batch.advance(120)
    inc.batch.set_job_behavior(jid, output=["second try"])
    panel = InspectorPanel(inspector.inspect)
    panel.show(jid)
    assert panel.attempt.layout.display is None  # two tries: the choice is offered
    assert [v for _, v in panel.attempt.options] == [0, 1, 2]
    assert panel.inspection is not None and panel.inspection.log is not None
    assert panel.inspection.log.lines[-1].message == "second try"
    panel.attempt.value = 1
    assert panel.inspection.log is not None and panel.inspection.log.lines[-1].message == "first try"
    assert panel.attempt.value == 1
    panel.attempt.value = 0
    assert panel.inspection.log is not None and panel.inspection.log.lines[-1].message == "second try"
