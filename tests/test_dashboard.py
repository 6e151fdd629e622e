"""The dashboard: pure table/view functions on hand-built frames."""

from __future__ import annotations

import html

import pandas as pd
import pytest
from test_figures import make_frame

from batchkit.schema import VERDICTS, JobCol, RecCol
from batchkit.widgets import _table
from batchkit.widgets._table import TableQuery, render_table, select
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
    assert _table.page_label(page) == "rows 101–123 of 123 · page 3 of 3"
    beyond = select(frame, TableQuery(page=99, page_size=50))
    assert beyond.page == 2 and beyond.query.page == 2
    # A new filter starts at the first page again.
    assert TableQuery(page=4).with_(verdict="orphan").page == 0
    assert TableQuery(page=4).with_(page=5).page == 5
    empty = select(frame, TableQuery(search="nothing matches this"))
    assert (empty.total, empty.first, empty.n_pages) == (0, 0, 1)
    assert "No task matches" in render_table(empty)


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
    assert counts == {v: 4 for v in VERDICTS}
    labels = chip_labels(counts, 24)
    assert labels["all"] == "all 24" and labels["mismatches"] == "mismatches 20"
    assert labels["orphan"] == "orphan 4"
    label, n = kill_all_label(frame)
    # 4 orphans + 4 untracked; waste 0.5*(i%4) for i in 1,7,13,19 and 2,8,14,20.
    assert n == 8
    assert label == "Kill all orphans (8 jobs, 6.00 vCPU-h)"
    label, n = kill_all_label(frame, exclude={"job-00001"})
    assert n == 7 and label.startswith("Kill all orphans (7 jobs,")
