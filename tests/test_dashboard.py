"""The dashboard: pure table and view functions on hand-built frames, then the widget itself
over the real parts (a replayed incident on LocalBatch, real boto3 over HTTP, the Tracker):
buttons are clicked and trait values and the emulator's end state asserted."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import real_fixture
from test_figures import make_frame

from batchkit import table_model
from batchkit.client import BatchClient
from batchkit.errors import AwsError
from batchkit.nextflow import NextflowRun
from batchkit.schema import VERDICTS, JobCol, RecCol
from batchkit.sim import LocalBatch, replay_incident
from batchkit.table_model import (
    KILLED,
    KillRecord,
    TableQuery,
    action_html,
    keep_in_view,
    killed_reason,
    overlay_kills,
    page_label,
    render_table,
    select,
)
from batchkit.widgets import Dashboard
from batchkit.widgets.dashboard import (
    api_health,
    chip_labels,
    format_age,
    header_html,
    kill_all_label,
    verdict_counts,
)

# --- the table: filter, search, sort, page, escape ------------------------------------------


def test_filter_by_verdict_and_mismatches() -> None:
    frame = make_frame(60)
    assert select(frame, TableQuery(verdict="orphan", page_size=100)).total == 10
    page = select(frame, TableQuery(verdict="mismatches", page_size=100))
    assert page.total == 50
    assert set(page.rows[RecCol.VERDICT]) == set(VERDICTS) - {"ok"}
    assert select(frame, TableQuery(page_size=100)).total == 60


def test_search_matches_task_name_or_job_id_case_insensitively() -> None:
    frame = make_frame(60)
    page = select(frame, TableQuery(search="SAMPLE_00007"))
    assert list(page.rows[JobCol.JOB_ID]) == ["job-00007"]
    # Untracked rows have no task name: their job id still finds them.
    page = select(frame, TableQuery(search="job-00002"))
    assert page.total == 1 and page.rows[RecCol.VERDICT].iat[0] == "untracked"
    # A search is a literal string, never a regex.
    assert select(frame, TableQuery(search="sample_0000.")).total == 0


def test_default_sort_puts_orphans_first_and_is_stable() -> None:
    frame = make_frame(60)
    page = select(frame, TableQuery(page_size=60))
    verdicts = list(page.rows[RecCol.VERDICT])
    order = ["orphan", "untracked", "disagree", "stale", "vanished", "ok"]
    assert verdicts == sorted(verdicts, key=order.index)
    # Within a verdict, task name order; the same input gives the same page.
    assert list(page.rows.index) == list(select(frame, TableQuery(page_size=60)).rows.index)


def test_sort_by_waste_biggest_first_and_reverse() -> None:
    frame = make_frame(60)
    page = select(frame, TableQuery(sort="waste", page_size=60))
    waste = list(page.rows[RecCol.WASTE_VCPU_H].astype(float))
    assert waste == sorted(waste, reverse=True)
    page = select(frame, TableQuery(sort="waste", ascending=False, page_size=60))
    assert list(page.rows[RecCol.WASTE_VCPU_H].astype(float)) == sorted(waste)


def test_paging_clamps_and_reports_position() -> None:
    frame = make_frame(123)
    page = select(frame, TableQuery(page=2, page_size=50))
    assert (page.first, page.last, page.n_pages, len(page.rows)) == (101, 123, 3, 23)
    assert table_model.page_label(page) == "rows 101–123 of 123 · page 3 of 3"
    beyond = select(frame, TableQuery(page=99, page_size=50))
    assert beyond.page == 2 and beyond.query.page == 2
    # A new filter starts at the first page again.
    assert TableQuery(page=4).with_(verdict="orphan").page == 0
    assert TableQuery(page=4).with_(page=5).page == 5
    empty = select(frame, TableQuery(search="nothing matches this"))
    assert (empty.total, empty.first, empty.n_pages) == (0, 0, 1)
    assert "No task matches" in render_table(empty)


def test_order_cache_gives_the_same_pages_and_keys_on_the_query() -> None:
    frame = make_frame(300)
    cache = table_model.OrderCache()
    for query in (TableQuery(page=2), TableQuery(verdict="orphan", page=1, page_size=7),
                  TableQuery(sort="task", ascending=False, page=3), TableQuery(search="sample_001")):
        cached = select(frame, query, cache)
        assert cache.get(query) is not None
        again = select(frame, query, cache)
        plain = select(frame, query)
        assert list(cached.rows.index) == list(again.rows.index) == list(plain.rows.index)
    # A page of the same view reuses the order; another filter does not share it.
    assert cache.get(TableQuery(page=5)) is cache.get(TableQuery(page=0))
    assert cache.get(TableQuery(verdict="ok")) is None


def test_killable_ids_are_those_on_the_page() -> None:
    frame = make_frame(60)
    page = select(frame, TableQuery(verdict="orphan", page_size=4))
    assert page.killable_ids == tuple(page.rows[JobCol.JOB_ID])
    assert len(page.killable_ids) == 4


def test_rows_carry_verdict_classes_and_marks() -> None:
    frame = make_frame(12)
    page = select(frame, TableQuery(page_size=12))
    out = render_table(page, {"job-00001": "killed", "job-00007": "pending"})
    assert out.count('<tr class="bk-row bk-orphan') == 2
    assert '<tr class="bk-row bk-orphan bk-mark-killed bk-killed" data-job-id="job-00001"' in out
    assert 'bk-mark-pending" data-job-id="job-00007"' in out
    assert "RUNNING (2 attempts)" in out  # row 1 had a spot retry
    assert "no record" in out  # untracked rows: Nextflow never heard of the job
    assert "no such job" in out  # vanished rows


def test_everything_is_escaped() -> None:
    evil = '<script>alert("x")</script>&'
    frame = make_frame(6, names=[evil] * 6)
    frame[RecCol.REASON] = pd.array(['reason "<b>quoted</b>"'] * 6, dtype="string")
    frame[JobCol.JOB_ID] = pd.array([f'j"{i}<' for i in range(6)], dtype="string")
    out = render_table(select(frame, TableQuery()))
    assert "<script>" not in out and "<b>quoted" not in out and 'j"0<' not in out
    assert html.escape(evil) in out
    assert "&lt;b&gt;quoted&lt;/b&gt;" in out
    frame[RecCol.VERDICT] = pd.array(["orphan"] * 6, dtype="string")
    frame[RecCol.KILLABLE] = pd.array([True] * 6, dtype="boolean")
    out = render_table(select(frame, TableQuery()), actions=True)
    assert 'data-kill="j&quot;0&lt;"' in out and 'j"0<' not in out


def test_each_row_carries_its_own_action() -> None:
    frame = make_frame(12)
    page = select(frame, TableQuery(page_size=12))
    out = render_table(page, {"job-00001": "killed", "job-00007": "pending"}, actions=True, busy={"job-00013"})
    rows = re.findall(r"<tr class=.*?</tr>", out)
    assert len(rows) == 12 and all('<td class="bk-act">' in r for r in rows)
    for row in rows:
        job = re.search(r'data-job-id="([^"]*)"', row).group(1)  # type: ignore[union-attr]
        if job in page.killable_ids and job not in {"job-00001", "job-00007"}:
            assert f'data-kill="{job}"' in row  # the button names its own row's job
        else:
            assert "data-kill=" not in row
    assert ">killed</span>" in out and ">killing…</span>" in out
    assert action_html("j1", None, killable=True, busy=True).endswith("disabled>Kill</button>")
    assert 'data-kill="j1"' in action_html("j1", "failed", killable=False)  # a failed kill can be retried
    assert action_html("j1", None, killable=False) == ""


def test_killed_rows_read_killed_everywhere() -> None:
    frame = make_frame(12)
    orphans = frame.loc[frame[RecCol.VERDICT] == "orphan", JobCol.JOB_ID].tolist()
    at = pd.Timestamp("2024-01-24 12:49:27", tz="UTC")
    kills = {orphans[0]: KillRecord("orphan", at, "FAILED"), orphans[1]: KillRecord("orphan")}
    view = overlay_kills(frame, kills)
    assert frame[RecCol.VERDICT].tolist().count("orphan") == len(orphans)  # the input is untouched
    killed = view[view[RecCol.VERDICT] == KILLED]
    assert sorted(killed[JobCol.JOB_ID]) == sorted(orphans[:2])
    assert not killed[RecCol.KILLABLE].any()
    row = killed.set_index(JobCol.JOB_ID).loc[orphans[0]]
    assert row[RecCol.REASON].startswith("killed by batchkit at 12:49:27 UTC (was orphan); Batch ")
    assert verdict_counts({}, view)[KILLED] == 2
    assert verdict_counts({}, view)["orphan"] == len(orphans) - 2
    assert chip_labels(verdict_counts({}, view), len(view))[KILLED] == "killed 2"
    page = select(view, TableQuery(verdict=KILLED))
    assert page.total == 2 and page.killable_ids == ()
    out = render_table(page, actions=True)
    assert out.count('class="bk-row bk-killed bk-killed"') == 2 and "data-kill" not in out
    assert killed_reason(KillRecord("untracked", at), "FAILED") == (
        "killed by batchkit at 12:49:27 UTC (was untracked); Batch confirmed FAILED"
    )
    assert killed_reason(KillRecord("orphan"), "RUNNING").endswith("Batch still says RUNNING (stopping)")
    # Killed rows keep their place in the default order: they sort with the orphans.
    assert select(view, TableQuery()).rows[RecCol.VERDICT].iloc[: len(orphans)].isin(["orphan", KILLED]).all()


def test_rows_killed_in_a_filtered_view_stay_in_it_until_the_filter_changes() -> None:
    frame = make_frame(60)
    orphans = frame.loc[frame[RecCol.VERDICT] == "orphan", JobCol.JOB_ID].tolist()
    ok_row = frame.loc[frame[RecCol.VERDICT] == "ok", JobCol.JOB_ID].iat[0]
    query = TableQuery(verdict="orphan", page_size=100)
    # Kept: the rows of the plan this view shows now; not a row the filter hides (ok_row).
    kept = keep_in_view(frame, query, [*orphans[:3], ok_row])
    assert kept.keep == frozenset(orphans[:3])
    view = overlay_kills(frame, {j: KillRecord("orphan") for j in orphans[:3]})
    # Without keeping them, the killed rows leave the user's view at once.
    assert select(view, query).total == len(orphans) - 3
    page = select(view, kept)
    assert page.query.verdict == "orphan" and page.total == len(orphans)
    assert list(page.rows[JobCol.JOB_ID]) == list(select(frame, query).rows[JobCol.JOB_ID])  # same places
    assert (page.rows.set_index(JobCol.JOB_ID).loc[orphans[:3], RecCol.VERDICT] == KILLED).all()
    assert page.kept == 3 and page_label(page).endswith(" · 3 kept in view until the filter changes")
    assert page_label(select(frame, kept)) == f"rows 1–{len(orphans)} of {len(orphans)} · page 1 of 1"
    # Sorting and paging keep them; another filter or search lets them go; the same filter does not.
    assert kept.with_(sort="task").keep == kept.with_(page=1).keep == kept.with_(verdict="orphan").keep == kept.keep
    assert kept.with_(verdict="mismatches").keep == kept.with_(search="x").keep == frozenset()
    assert select(view, kept.with_(verdict="all").with_(verdict="orphan")).total == len(orphans) - 3
    # Nothing new to keep: the very same query.
    assert keep_in_view(frame, kept, orphans[:2]) is kept
    assert keep_in_view(frame.iloc[0:0], query, orphans) is query


@pytest.mark.parametrize("was", ["orphan", "untracked"])
def test_a_killed_row_keeps_its_place_whatever_it_was_killed_as(was: str) -> None:
    """The next click on the same spot must hit the same job: a killed untracked row does
    not jump up to the orphans, in the whole table or in its own filtered view."""
    frame = make_frame(60)
    victim = select(frame, TableQuery(verdict=was, page_size=100)).rows[JobCol.JOB_ID].iat[4]
    view = overlay_kills(frame, {victim: KillRecord(was)})
    assert view.set_index(JobCol.JOB_ID).loc[victim, RecCol.VERDICT] == KILLED
    for query in (TableQuery(page_size=100), TableQuery(verdict=was, page_size=100)):
        before = list(select(frame, query).rows[JobCol.JOB_ID])
        after = list(select(view, keep_in_view(frame, query, [victim])).rows[JobCol.JOB_ID])
        assert after == before and after.index(victim) == before.index(victim)


def test_select_on_a_100k_row_frame_returns_one_page() -> None:
    big = pd.concat([make_frame(1000)] * 100, ignore_index=True)
    page = select(big, TableQuery(verdict="mismatches", search="sample_0099", sort="waste"))
    # sample_00990..00999 in each copy, minus the two "ok" rows (990, 996)
    assert page.total == 800
    assert len(page.rows) == 50
    assert render_table(page).count("<tr class=") == 50


# --- header, chips and labels ----------------------------------------------------------------


class _Stats:
    def __init__(self, degraded: bool, text: str) -> None:
        self.degraded = degraded
        self._text = text

    def summary(self) -> str:
        return self._text


def test_header_shows_state_cause_health_and_age_escaped() -> None:
    health = api_health(
        _Stats(True, "degraded: 37 retries in the last minute — AuthorizerConfigurationException"),
        degraded=False,
        error=None,
    )
    assert health[0] == "bk-health-degraded"
    out = header_html(
        run_name="<evil_run>", run_state="aborted", abort_cause="Internal <error> (500)",
        health=health, age=42.0,
    )
    assert "&lt;evil_run&gt;" in out and "<evil_run>" not in out
    assert "bk-badge-aborted" in out and "Internal &lt;error&gt; (500)" in out
    assert "37 retries in the last minute" in out and "42 s ago" in out
    failing = api_health(None, degraded=True, error="DescribeJobs kept failing")
    assert failing == ("bk-health-failing", "last refresh failed: DescribeJobs kept failing")
    assert api_health(None, degraded=False, error=None) == ("bk-health-ok", "healthy")
    assert "asking AWS Batch" in header_html(
        run_name="r", run_state="alive", abort_cause=None, health=failing, age=None, loading=True
    )


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "never"), (0.5, "just now"), (42, "42 s ago"), (600, "10 min ago"), (7200, "2.0 h ago")]
)
def test_format_age(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


def test_chips_and_kill_all_label_count_what_is_killable() -> None:
    frame = make_frame(24)
    counts = verdict_counts({"verdicts": {"ok": 4, "orphan": 4}}, frame)
    assert counts == {**{v: 4 for v in VERDICTS}, KILLED: 0}
    labels = chip_labels(counts, 24)
    assert labels["all"] == "all 24" and labels["mismatches"] == "mismatches 20"
    assert labels["orphan"] == "orphan 4"
    label, n = kill_all_label(frame)
    # 4 orphans + 4 untracked; waste 0.5*(i%4) for i in 1,7,13,19 and 2,8,14,20.
    assert n == 8
    assert label == "Kill all orphans (8 jobs)"  # the waste line is the one waste figure
    label, n = kill_all_label(frame, exclude={"job-00001"})
    assert n == 7 and label == "Kill all orphans (7 jobs)"


# --- the widget over the real parts: simulated incident, LocalBatch over HTTP, Tracker --------


@pytest.fixture
def incident(tmp_path: Path) -> Iterator[Any]:
    with replay_incident(launch_dir=tmp_path / "launch", n_tasks=24, seed=3) as inc:
        yield inc


def make_dashboard(incident: Any, **kwargs: Any) -> Dashboard:
    client = BatchClient(endpoint_url=incident.endpoint_url, region=incident.batch.region)
    kwargs.setdefault("autostart", False)
    return Dashboard(incident.launch_dir, client=client, queues=[incident.truth.queue], **kwargs)


def row_classes(dash: Dashboard) -> list[str]:
    return re.findall(r'<tr class="([^"]+)"', dash.table.value)


def test_dashboard_shows_the_incident(incident: Any) -> None:
    dash = make_dashboard(incident)
    try:
        assert "asking AWS Batch" in dash.header.value  # displayed before any answer
        # First paint: Nextflow's side at once, Batch's column still "asking…", nothing killable.
        assert len(row_classes(dash)) == len(dash.run.tasks)
        assert "asking…" in dash.table.value and "bk-orphan" not in dash.table.value
        assert "data-kill=" not in dash.table.value
        assert dash.kill_all_button.disabled
        dash.refresh()
        abandoned = incident.truth.abandoned_job_ids
        assert abandoned
        assert "bk-badge-aborted" in dash.header.value
        assert html.escape(incident.truth.run_name) in dash.header.value
        assert "healthy" in dash.header.value
        assert dash.chips["orphan"].description == f"orphan {len(abandoned)}"
        assert dash.chips["all"].description == f"all {len(dash.frame)}"
        # Mismatches first: the orphan rows lead the table, coloured.
        classes = row_classes(dash)
        assert sum("bk-orphan" in c for c in classes) == len(abandoned)
        assert all("bk-orphan" in c for c in classes[: len(abandoned)])
        assert dash.kill_all_button.description == f"Kill all orphans ({len(abandoned)} jobs)"
        assert not dash.kill_all_button.disabled
        kill_buttons = re.findall(r'<tr class="bk-row bk-(\w+)[^"]*" data-job-id="([^"]+)".*?data-kill="([^"]+)"', dash.table.value)
        assert len(kill_buttons) == len(abandoned)
        assert all(verdict == "orphan" and row == button for verdict, row, button in kill_buttons)
        assert "vCPU-h" in dash.waste.value
        # Filter, search and page through the controls.
        dash.chips["ok"].click()
        assert dash.filter.value == "ok" and "bk-chip-active" in dash.chips["ok"]._dom_classes
        assert all("bk-ok" in c for c in row_classes(dash))
        dash.filter.value = "all"
        some_job = sorted(abandoned)[0]
        dash.search.value = some_job
        assert len(row_classes(dash)) == 1 and some_job in dash.table.value
        dash.search.value = ""
        dash.show(verdict="all")
        small = make_dashboard(incident, page_size=5, tracker=dash.tracker)
        assert "page 1 of" in small.page_info.value and small.prev_button.disabled
        small.next_button.click()
        assert "page 2 of" in small.page_info.value and not small.prev_button.disabled
        small.close()
        assert not dash.tracker.closed  # a shared tracker outlives the dashboard that borrowed it
    finally:
        dash.close()
    assert dash.tracker.closed


def test_kill_all_asks_first_then_kills_and_shows_verified_outcomes(incident: Any) -> None:
    dash = make_dashboard(incident)
    try:
        dash.refresh()
        abandoned = sorted(incident.truth.abandoned_job_ids)
        dash.kill_all_button.click()
        assert dash.confirm_panel.layout.display == "flex"
        assert dash.kill_all_button.disabled
        assert f"Terminate {len(abandoned)} job(s)" in dash.confirm_text.value
        assert "vCPU-h" not in dash.confirm_text.value + dash.kill_all_button.description  # the waste line's alone
        # Cancel: nothing happens to Batch.
        dash.cancel_button.click()
        assert dash.confirm_panel.layout.display == "none"
        assert all(incident.batch.describe_job(j)["status"] in {"RUNNING", "RUNNABLE", "STARTING"} for j in abandoned)
        assert not dash.kill_all_button.disabled

        dash.kill_all_button.click()
        dash.confirm_button.click()  # returns at once: the kill runs in the background
        dash.confirm_button.click()  # a double click: the confirmed plan was used up
        assert dash.wait_kill(60) is not None
        for job_id in abandoned:
            job = incident.batch.describe_job(job_id)
            assert job["status"] == "FAILED"
            assert job["statusReason"] == f"batchkit: orphan of run '{incident.truth.run_name}'"
            assert dash.marks[job_id] == "killed"
        assert f"{len(abandoned)} of {len(abandoned)} job(s) killed" in dash.kill_status.value
        assert dash.kill_status.value.count("Batch now: <b>FAILED</b>") == len(abandoned)
        assert dash.confirm_panel.layout.display == "none"
        # The refresh after the kill: no orphan left; badge, chips, filter and reason agree.
        assert dash.chips["orphan"].description == "orphan 0"
        assert dash.chips["killed"].description == f"killed {len(abandoned)}"
        assert dash.chips["mismatches"].description == "mismatches 0"
        assert dash.kill_all_button.description == "Kill all orphans (0 jobs)"
        assert dash.kill_all_button.disabled
        assert sum("bk-killed" in c for c in row_classes(dash)) == len(abandoned)
        assert "data-kill=" not in dash.table.value
        reasons = re.findall(r'<td class="bk-why"><span class="bk-verdict bk-verdict-killed">killed</span>([^<]*)</td>', dash.table.value)
        assert len(reasons) == len(abandoned)
        assert all(re.fullmatch(r"killed by batchkit at \d\d:\d\d:\d\d UTC \(was orphan\); Batch confirmed FAILED", r)
                   for r in reasons), reasons
        dash.chips["killed"].click()
        assert len(row_classes(dash)) == len(abandoned)
        assert all("bk-killed" in c for c in row_classes(dash))
        # Pressing the button again finds nothing to do; the ledger recorded each job once.
        terminations = dict(incident.batch.calls)
        dash.kill_all_button.click()
        assert dash.confirm_panel.layout.display == "none"
        assert incident.batch.calls == terminations
        assert sorted(dash.tracker.ledger.killed_job_ids()) == abandoned
    finally:
        dash.close()


def test_row_kill_button_kills_that_job_only_and_ignores_a_double_click(incident: Any) -> None:
    dash = make_dashboard(incident)
    try:
        dash.refresh()
        slot = 2  # the default view (every row, mismatches first)
        job_id = dash.page.rows[JobCol.JOB_ID].iat[slot]
        assert dash.page.rows[RecCol.VERDICT].iat[slot] == "orphan"
        assert f'data-kill="{job_id}"' in dash.table.value
        dash.table.click_kill(job_id)  # what the row's button sends; the kill runs in the background
        dash.table.click_kill(job_id)  # double click while it runs: ignored
        dash.wait_kill(60)
        before = dict(incident.batch.calls)
        dash.table.click_kill(job_id)  # and after: already killed, the button is a label now
        assert incident.batch.calls == before
        assert incident.batch.describe_job(job_id)["status"] == "FAILED"
        others = sorted(set(incident.truth.abandoned_job_ids) - {job_id})
        assert all(incident.batch.describe_job(j)["status"] != "FAILED" for j in others)
        assert dash.marks == {job_id: "killed"}
        # The killed row stays where it was clicked (killed sorts with the orphans)...
        assert dash.page.rows[JobCol.JOB_ID].iat[slot] == job_id
        assert "bk-killed" in row_classes(dash)[slot]
        assert f'data-kill="{job_id}"' not in dash.table.value
        # ...and reads killed in the badge, the chips and the reason.
        assert dash.chips["orphan"].description == f"orphan {len(others)}"
        assert dash.chips["killed"].description == "killed 1"
        assert 'data-verdict="killed"' in dash.table.value
        dash.chips["orphan"].click()
        assert job_id not in dash.table.value
        dash.show(verdict="all", search=job_id)
        assert "bk-killed" in row_classes(dash)[0]
        assert "killed by batchkit at " in dash.table.value
        # A row click is announced to listeners (the hook for detail panels).
        seen: list[str] = []
        unsubscribe = dash.on_row_selected(seen.append)
        dash.table._message(dash.table, {"select": job_id}, [])
        unsubscribe()
        dash.table._message(dash.table, {"select": job_id}, [])
        assert seen == [job_id]
    finally:
        dash.close()


def test_a_kill_in_a_filtered_view_keeps_the_users_filter_and_shows_the_killed_rows(incident: Any) -> None:
    """What a user sees after killing from the orphan (or mismatches) view: the same
    filter, the rows just killed still in it, reading "killed", not an emptied table."""
    dash = make_dashboard(incident)
    try:
        dash.refresh()
        dash.chips["orphan"].click()
        n = len(dash.page.rows)
        slot = 1
        job_id = dash.page.rows[JobCol.JOB_ID].iat[slot]
        dash.table.click_kill(job_id)
        dash.wait_kill(60)
        assert incident.batch.describe_job(job_id)["status"] == "FAILED"
        assert dash.filter.value == dash.query.verdict == "orphan"
        assert "bk-chip-active" in dash.chips["orphan"]._dom_classes
        assert dash.chips["orphan"].description == f"orphan {n - 1}"
        assert len(row_classes(dash)) == n
        assert dash.page.rows[JobCol.JOB_ID].iat[slot] == job_id and "bk-killed" in row_classes(dash)[slot]
        assert "killed by batchkit at " in dash.table.value
        assert "1 kept in view until the filter changes" in dash.page_info.value
        dash.refresh()  # and after the next poll
        assert dash.page.rows[JobCol.JOB_ID].iat[slot] == job_id and "bk-killed" in row_classes(dash)[slot]

        dash.chips["mismatches"].click()  # another filter: the killed row is no mismatch now
        assert job_id not in dash.table.value and "kept" not in dash.page_info.value
        left = set(dash.page.rows[JobCol.JOB_ID]) & set(incident.truth.abandoned_job_ids)
        assert left
        dash.kill_all_button.click()
        dash.confirm_button.click()
        dash.wait_kill(60)
        assert dash.filter.value == "mismatches"
        assert "No task matches" not in dash.table.value
        shown = dict(re.findall(r'data-job-id="([^"]+)" data-verdict="([^"]+)"', dash.table.value))
        assert {j for j, v in shown.items() if v == "killed"} == left
        dash.chips["orphan"].click()
        assert "No task matches this filter" in dash.table.value
    finally:
        dash.close()


def test_api_outage_keeps_the_last_good_view_and_says_so(incident: Any) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:  # the client's backoff, without sleeping
        now[0] += seconds

    client = BatchClient(
        endpoint_url=incident.endpoint_url, region=incident.batch.region,
        clock=lambda: now[0], sleep=sleep, deadline=60.0,
    )
    dash = Dashboard(incident.launch_dir, client=client, queues=[incident.truth.queue], autostart=False)
    try:
        dash.refresh()
        rows_before = dash.table.value
        incident.batch.faults.add("DescribeJobs", "authorizer-500", rate=1.0)
        incident.batch.faults.add("ListJobs", "authorizer-500", rate=1.0)
        dash.refresh()
        assert "bk-health-failing" in dash.header.value
        assert "last refresh failed" in dash.header.value
        assert "AuthorizerConfigurationException" in dash.header.value
        assert dash.table.value == rows_before  # the last good answer stays up
    finally:
        dash.close()


def test_on_a_running_loop_it_returns_at_once_refreshes_and_kills_in_the_background(incident: Any) -> None:
    async def scenario() -> None:
        dash = make_dashboard(incident, autostart=True, interval=0.05)
        try:
            assert dash.tracker.snapshot is None  # the constructor did not wait for AWS
            await dash.ready()
            dash.pause()
            assert dash.tracker.paused and "(paused)" in dash.header.value
            dash.resume()
            assert not dash.tracker.paused
            dash.interval = 30
            assert dash.tracker.interval == 30
            dash.kill_all_button.click()
            dash.confirm_button.click()
            assert dash.kill_all_button.disabled  # busy while the kill runs on the loop
            await dash.wait_idle()
            report_ids = sorted(j for j, m in dash.marks.items() if m == "killed")
            assert report_ids == sorted(incident.truth.abandoned_job_ids)
        finally:
            dash.close()
        assert dash.tracker.closed

    asyncio.run(scenario())


def test_panels_draw_figures_run_the_doctor_and_export_a_post_mortem(
    incident: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    dash = make_dashboard(incident)
    try:
        dash.refresh()
        assert dash.summary_out.outputs == () and dash.timeline_out.outputs == ()  # drawn when opened
        dash.figures.selected_index = 0
        assert "application/vnd.plotly.v1+json" in dash.summary_out.outputs[0]["data"]
        # One waste figure: the summary's bars add up to the waste line's number.
        summary = dash.summary_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]
        bars = next(t for t in summary["data"] if t.get("name") == "waste")
        shown = re.search(r"Waste so far: <b>([\d,.]+) vCPU-h", dash.waste.value)
        assert shown and f"{sum(bars['y']):,.2f}" == shown.group(1)
        dash.figures.selected_index = 1
        timeline = dash.timeline_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]
        names = {trace.get("name") for trace in timeline["data"]}
        assert "orphan" in names
        dash.refresh()  # nothing changed: the open figure is not re-sent
        assert dash.timeline_out.outputs[0]["data"]["application/vnd.plotly.v1+json"] == timeline
        dash.figures.selected_index = 2
        assert "bk-advice-item" in dash.advice.value
        assert "5516" in dash.advice.value  # the doctor recognises the 24.02 abort
        # The log names no queue; the dashboard was given one, and the checks use it.
        assert not dash.run.queues
        assert "aws-no-queue" not in dash.advice.value and "queue is not known" not in dash.advice.value
        dash.export_button.click()
        saved = tmp_path / f"batchkit-{incident.truth.run_name}-postmortem.html"
        assert saved.exists() and "saved" in dash.export_status.value
        assert 'class="bk-row bk-orphan"' in saved.read_text(encoding="utf-8")
    finally:
        dash.close()


@pytest.mark.slow
def test_kill_all_under_an_outage_runs_in_the_background_and_cancel_leaves_a_ledger_to_finish(
    tmp_path: Path,
) -> None:
    """#11 in the dashboard: TerminateJobs and TerminateJob answer 500 without end. The
    kill-all click returns within 1 s; the progress line says how many wait and why; the
    table pages and filters while the kill runs; the header counts the kill's failures;
    Cancel leaves every intent pending, and the next kill finishes all of them, once each."""
    import time

    async def scenario(inc: Any) -> None:
        lb = inc.batch
        rules = [lb.faults.add(op, "authorizer-500") for op in ("TerminateJobs", "TerminateJob")]
        dash = make_dashboard(inc, page_size=20)
        dash.tracker.kill_deadline = 120.0
        try:
            await dash.ready()
            orphans = sorted(inc.truth.abandoned_job_ids)
            assert len(orphans) >= 60
            dash.kill_all_button.click()
            t0 = time.monotonic()
            dash.confirm_button.click()
            assert time.monotonic() - t0 < 1.0  # the click answers at once
            assert dash.stop_kill_button.layout.display is None and not dash.stop_kill_button.disabled

            for _ in range(300):  # the progress line: waiting, failing since, retries, why
                await asyncio.sleep(0.05)
                if "retries" in dash.kill_status.value:
                    break
            line = dash.kill_status.value
            assert f"0 killed, {len(orphans)} waiting: Batch API failing since" in line, line
            assert "AuthorizerConfigurationException" in line
            # the table answers while the kill runs: paging and filtering
            first_page = dash.table.value
            t0 = time.monotonic()
            dash.next_button.click()
            assert dash.page is not None and dash.page.page == 1 and dash.table.value != first_page
            dash.show(verdict="orphan")
            assert dash.page.rows[RecCol.VERDICT].astype(str).eq("orphan").all()
            assert time.monotonic() - t0 < 1.0
            for _ in range(200):  # the header's health counts the kill's failures
                if "bk-health-degraded" in dash.header.value:
                    break
                await asyncio.sleep(0.05)
            assert "bk-health-degraded" in dash.header.value and "AuthorizerConfigurationException" in dash.header.value

            t0 = time.monotonic()
            dash.stop_kill_button.click()
            await dash.wait_idle()
            assert time.monotonic() - t0 < 5.0
            report = dash.wait_kill(1)
            assert report.cancelled and not report.complete and len(report.pending) == len(orphans)
            assert "pending in the ledger" in dash.kill_status.value
            ledger = dash.tracker.ledger
            assert sorted(k.job_id for k in ledger.pending_kills(dash.tracker.run_name)) == orphans
            assert all(k["claim_owner"] is None and k["sent_at"] for k in ledger.kills())
            assert dash.stop_kill_button.layout.display == "none"

            for rule in rules:
                lb.faults.remove(rule)
            await dash.refresh_async()
            dash.kill_all_button.click()
            dash.confirm_button.click()
            await dash.wait_idle()
            report = dash.wait_kill(1)
            assert report.ok and report.killed == len(orphans)
            assert f"{len(orphans)} of {len(orphans)} job(s) killed" in dash.kill_status.value
            rows = ledger.kills()
            assert sorted(r["job_id"] for r in rows) == orphans  # one audit row each
            assert all(r["outcome"] == "terminated" for r in rows)
        finally:
            dash.close()

    with replay_incident(launch_dir=tmp_path / "launch", n_tasks=100, seed=3) as inc:
        asyncio.run(scenario(inc))


# --- a real launch dir with zero flags: region, queues, the year, runs not on AWS Batch -------


def _no_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BATCH"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_header_says_where_region_and_queues_came_from_and_that_the_year_is_a_guess() -> None:
    out = header_html(
        run_name="r", run_state="aborted", abort_cause=None, health=("bk-health-ok", "healthy"), age=3.0,
        region=("eu-north-1", "log (/x/.nextflow.log: AwsOptions region)"),
        queues={"spot-<q>": "/x/nextflow.config:2 (process queue)"},
        year_note="the year 2025 of the log's times is a guess (file time)",
    )
    assert 'bk-region">eu-north-1</b>' in out and "AwsOptions region" in out
    assert "spot-&lt;q&gt;" in out and "nextflow.config:2 (process queue)" in out
    assert 'bk-year-note' in out and "2025 of the log&#x27;s times is a guess" in out
    plain = header_html(run_name="r", run_state="alive", abort_cause=None, health=("bk-health-ok", "ok"), age=1.0,
                        queues={})  # fmt: skip
    assert "bk-year-note" not in plain and "none known" in plain
    away = header_html(run_name="r", run_state="aborted", abort_cause=None, health=("bk-muted", ""), age=None,
                       not_batch="executor: slurm; from log")  # fmt: skip
    assert "not used by this run" in away and "executor: slurm" in away and "Batch API" not in away


def test_dashboard_takes_region_and_queues_from_the_run_and_says_the_year_is_unproven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_aws(tmp_path, monkeypatch)
    launch = tmp_path / "launch"
    launch.mkdir()
    # A fresh copy (file time now): the log's year rests on the build date alone, unproven.
    shutil.copyfile(real_fixture("awsbatch-sigint-24.10.5.nextflow.log"), launch / ".nextflow.log")
    (launch / "nextflow.config").write_text("process { executor = 'awsbatch'\n queue = 'nf-queue' }\n")
    dash = Dashboard(launch, autostart=False)  # no client, no region anywhere but the run's files
    try:
        assert dash.tracker.client.region == "eu-north-1"  # the log's AwsOptions line
        head = dash.header.value
        assert 'bk-region">eu-north-1</b>' in head and "AwsOptions region" in head
        assert "<b>nf-queue</b>" in head and html.escape(str(launch / "nextflow.config")) in head
        assert not dash.run.year_proven
        assert "bk-year-note" in head and "is a guess" in head
    finally:
        dash.close()
    # A run that names no region, and no AWS configuration: one line saying where batchkit looked.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / ".nextflow.log").write_text(
        (launch / ".nextflow.log").read_text(encoding="utf-8").replace("region:eu-north-1", "region:null")
        .replace("--region eu-north-1", ""),
        encoding="utf-8",
    )
    with pytest.raises(AwsError, match=r"log \(AwsOptions line\) and nextflow.config \(aws.region\) name none"):
        Dashboard(bare, autostart=False)
    # A queue given to the dashboard is shown as given, over the run's; the timeline and
    # the post-mortem, which show the log's times, say their year is a guess too.
    monkeypatch.chdir(tmp_path)
    with LocalBatch(manual_clock=True) as lb:
        client = BatchClient(endpoint_url=lb.endpoint_url, region=lb.region)
        given = Dashboard(launch, autostart=False, queues=["other-q"], client=client)
        try:
            assert "<b>other-q</b>" in given.header.value and "given to the Dashboard" in given.header.value
            assert "nf-queue" not in given.header.value
            assert f'bk-region">{lb.region}</b>' in given.header.value and "the client given" in given.header.value
            given.refresh()
            assert "healthy" in given.header.value and "is a guess" in given.header.value
            given.figures.selected_index = 1
            outputs = given.timeline_out.outputs
            assert "application/vnd.plotly.v1+json" in outputs[0]["data"]
            assert "is a guess" in outputs[-1]["data"]["text/html"]
            given.export_button.click()
            saved = tmp_path / f"batchkit-{given.run.name}-postmortem.html"
            assert "<td>Times</td>" in saved.read_text(encoding="utf-8") and "is a guess" in saved.read_text(encoding="utf-8")
        finally:
            given.close()
            client.close()


@pytest.mark.parametrize(
    ("source", "executor"),
    [({"log": "slurm-sigint-abort.nextflow.log"}, "slurm"), ({"trace": "local-aborted-trace.txt"}, "not AWS Batch")],
)
def test_a_run_that_did_not_use_aws_batch_shows_nextflow_alone_and_asks_aws_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: dict[str, str], executor: str
) -> None:
    _no_aws(tmp_path, monkeypatch)
    run = NextflowRun.from_files(**{k: real_fixture(v) for k, v in source.items()})  # type: ignore[arg-type]
    assert run.on_aws_batch is False
    monkeypatch.chdir(tmp_path)
    with LocalBatch(manual_clock=True) as lb:
        client = BatchClient(endpoint_url=lb.endpoint_url, region=lb.region)
        dash = Dashboard(run, client=client)  # autostart: it must still not poll
        try:
            head = dash.header.value
            assert "not used by this run" in head and executor in head and "asking AWS Batch" not in head
            assert len(row_classes(dash)) == len(run.tasks) > 0
            assert dash.table.value.count("not a Batch job") == len(run.tasks)
            assert "data-kill=" not in dash.table.value and "asking…" not in dash.table.value
            assert dash.kill_all_button.disabled
            # Everything a user can press: none of it reaches AWS.
            dash.refresh()
            dash.refresh_button.click()
            assert dash.kill_orphans() is None
            dash.kill_all_button.click()
            dash._row_kill_requested(str(run.tasks["native_id"].dropna().iloc[0]))
            asyncio.run(dash.refresh_async())
            for panel in (0, 1, 2):
                dash.figures.selected_index = panel
            assert "bk-advice-item" in dash.advice.value  # the offline checks, no client
            if "log" in source:
                assert "nf-not-aws-batch" in dash.advice.value
            assert len(row_classes(dash)) == len(run.tasks) and not dash.marks
            dash.export_button.click()
            assert "did not use AWS Batch" in dash.export_status.value
        finally:
            dash.close()
            client.close()
        assert lb.calls == {}  # not one request reached the emulator
    # No client given, no AWS configuration at all: nothing is made that would need one.
    bare = Dashboard(run)
    try:
        assert bare.tracker.client is None and bare.tracker.ledger is None
        assert "not used by this run" in bare.header.value
    finally:
        bare.close()
