"""The inspector's pure core with hand-built data: attempts, the work-dir witness, rendering."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from batchkit.inspection import (
    Attempt,
    FileTail,
    Inspection,
    LogLine,
    LogTail,
    WorkdirEvidence,
    attempts_of,
    evidence_from_files,
    explain_with_workdir,
    parse_exitcode,
    render_html,
    render_text,
    workdir_targets,
)
from batchkit.nextflow import NextflowRun
from batchkit.reconcile import plan_kills, reconcile
from batchkit.schema import TASK_COLUMNS, TASK_DTYPES, JobCol, RecCol, TaskCol

XSS = "<script>alert(1)</script>"
T0 = 1_764_489_600_000  # 2025-11-30 08:00 UTC in epoch ms


def test_attempts_of_lists_finished_tries_then_the_running_one() -> None:
    job = {
        "jobId": "j1",
        "status": "RUNNING",
        "startedAt": T0 + 600_000,
        "attempts": [
            {
                "container": {"exitCode": None, "containerInstanceArn": "arn:ci/1", "taskArn": "arn:task/1",
                              "logStreamName": "nf/default/aaa"},
                "startedAt": T0,
                "stoppedAt": T0 + 300_000,
                "statusReason": "Host EC2 (instance i-0abc) terminated.",
            }
        ],
        "container": {"containerInstanceArn": "arn:ci/2", "logStreamName": "nf/default/bbb", "exitCode": 7},
    }
    first, now = attempts_of(job)
    assert (first.index, first.running, first.exit_code) == (1, False, None)
    assert first.reason == "Host EC2 (instance i-0abc) terminated."
    assert first.job_reason is None  # the job has not ended: no job reason on an old try
    assert now.running and now.log_stream == "nf/default/bbb" and now.container_instance == "arn:ci/2"
    # container.exitCode of a running retry is the previous try's: not shown as this try's.
    assert now.exit_code is None
    assert now.started_at == datetime.fromtimestamp((T0 + 600_000) / 1000, tz=UTC)


def test_a_terminated_jobs_last_attempt_carries_the_kill_reason() -> None:
    job = {
        "jobId": "j1",
        "status": "FAILED",
        "statusReason": "batchkit: orphan of run 'wise_hypatia'",
        "attempts": [{"container": {"exitCode": 143}, "startedAt": T0, "stoppedAt": T0 + 1,
                      "statusReason": "Essential container in task exited"}],
    }
    (only,) = attempts_of(job)
    assert only.job_reason == "batchkit: orphan of run 'wise_hypatia'"
    assert only.reason.startswith("batchkit: orphan of run 'wise_hypatia' — Essential container")


def test_attempts_of_survives_garbage() -> None:
    assert attempts_of({"status": "SUCCEEDED", "attempts": "nope"}) == []
    assert attempts_of({"status": "RUNNING", "attempts": [1, None], "container": None})[0].running


@pytest.mark.parametrize(
    ("text", "code"),
    [("0", 0), ("1\n", 1), (" 137 ", 137), ("-1", -1), ("", None), ("x", None), ("1 2", None)],
)
def test_parse_exitcode(text: str, code: int | None) -> None:
    assert parse_exitcode(text) == code


def test_evidence_from_files() -> None:
    at = datetime(2026, 1, 2, 12, 4, tzinfo=UTC)
    ev = evidence_from_files("s3://b/w/ab/cd", [FileTail(".exitcode", "u", exists=True, size=1, text="0", modified=at)])
    assert ev.summary() == "work dir says exit 0 at 12:04 UTC"
    began = evidence_from_files("s3://b/w", [FileTail(".exitcode", "u"), FileTail(".command.begin", "u", exists=True)])
    assert began.began and not began.exited
    denied = evidence_from_files("s3://b/w", [FileTail(".exitcode", "u", error="S3 refused s3:GetObject")])
    assert denied.error and "s3:GetObject" in denied.summary()
    garbled = evidence_from_files("s3://b/w", [FileTail(".exitcode", "u", exists=True, text="oops")])
    assert garbled.garbled and garbled.exit_code is None


# --- the witness on a real reconcile frame built from hand-made tasks and jobs -------------

WD = "s3://bkt/work"


def _run(rows: list[dict[str, object]], *, state: str = "aborted") -> NextflowRun:
    tasks = pd.DataFrame({c: [r.get(c) for r in rows] for c in TASK_COLUMNS}).astype(TASK_DTYPES)
    t = pd.Timestamp("2026-01-02 10:00", tz="UTC")
    return NextflowRun(name="wise_hypatia", session_id="s", version="24.02.0-edge", work_dir=WD,
                       launch_time=t, end_time=t + pd.Timedelta(hours=1), state=state, abort_cause="boom",
                       abort_time=t + pd.Timedelta(hours=1), last_activity=t + pd.Timedelta(hours=1),
                       tasks=tasks)


def _job(jid: str, status: str, wd: str, **extra: object) -> dict[str, object]:
    job: dict[str, object] = {
        "jobId": jid, "jobName": "x", "jobQueue": "q", "status": status,
        "createdAt": int(pd.Timestamp("2026-01-02 10:01", tz="UTC").timestamp() * 1000),
        # Nextflow's launcher (AwsBatchTaskHandler): only a command of that shape proves the task dir
        "container": {"command": ["bash", "-o", "pipefail", "-c",
                                  f"aws s3 cp --only-show-errors {wd}/.command.run - | bash 2>&1 | tee .command.log"],
                      "vcpus": 1},
    }
    if status in ("RUNNING", "SUCCEEDED", "FAILED"):
        job["startedAt"] = job["createdAt"]
    job.update(extra)
    return job


def _world() -> tuple[NextflowRun, list[dict[str, object]]]:
    rows: list[dict[str, object]] = []
    jobs: list[dict[str, object]] = []
    specs = [
        # name, nf status, exit, job status (None: Batch has no such job)
        ("VANISHED", "RUNNING", None, None),
        ("STALE", "RUNNING", None, "SUCCEEDED"),
        ("DISAGREE", "COMPLETED", 0, "FAILED"),
        ("UNKNOWN_EXIT", "COMPLETED", None, "SUCCEEDED"),
        ("ORPHAN", "RUNNING", None, "RUNNING"),
        ("OK", "COMPLETED", 0, "SUCCEEDED"),
    ]
    for i, (name, status, exit_code, job_status) in enumerate(specs, start=1):
        wd = f"{WD}/{i:02x}/{i:030x}"
        rows.append({TaskCol.TASK_ID: i, TaskCol.HASH: f"{i:02x}/{i:06x}", TaskCol.NATIVE_ID: f"job-{i}",
                     TaskCol.NAME: name, TaskCol.PROCESS: name, TaskCol.STATUS: status, TaskCol.EXIT: exit_code,
                     TaskCol.WORKDIR: wd, TaskCol.SUBMIT: pd.Timestamp("2026-01-02 10:01", tz="UTC")})
        if job_status is not None:
            jobs.append(_job(f"job-{i}", job_status, wd))
    return _run(rows), jobs


def _frame() -> tuple[pd.DataFrame, NextflowRun]:
    run, jobs = _world()
    frame = reconcile(run, jobs, now=pd.Timestamp("2026-01-02 12:00", tz="UTC"))
    return frame, run


def test_workdir_targets_are_the_rows_the_work_dir_can_explain() -> None:
    frame, run = _frame()
    verdicts = dict(zip(frame[TaskCol.NAME], frame[RecCol.VERDICT], strict=True))
    assert verdicts == {"VANISHED": "vanished", "STALE": "stale", "DISAGREE": "disagree", "UNKNOWN_EXIT": "ok",
                        "ORPHAN": "orphan", "OK": "ok"}
    targets = workdir_targets(frame, run.tasks)
    by_name = dict(zip(frame[TaskCol.NAME], frame[TaskCol.WORKDIR], strict=True))
    assert targets == [by_name[n] for n in ("VANISHED", "STALE", "DISAGREE", "UNKNOWN_EXIT")]
    # Without the tasks (no exit column) only the verdicts count; the limit bounds the S3 calls.
    assert len(workdir_targets(frame)) == 3
    assert workdir_targets(frame, run.tasks, limit=2) == targets[:2]
    assert workdir_targets(frame, run.tasks, limit=0) == []


def test_vanished_and_unknown_exit_rows_get_the_work_dirs_word() -> None:
    frame, _ = _frame()
    wd = dict(zip(frame[TaskCol.NAME], frame[TaskCol.WORKDIR], strict=True))
    at = datetime(2026, 1, 2, 12, 4, tzinfo=UTC)
    evidence = {
        wd["VANISHED"]: WorkdirEvidence(wd["VANISHED"], exit_code=0, exit_at=at, began=True),
        wd["UNKNOWN_EXIT"]: WorkdirEvidence(wd["UNKNOWN_EXIT"], exit_code=1, exit_at=at, began=True),
    }
    out = explain_with_workdir(frame, evidence)
    reason = dict(zip(out[TaskCol.NAME], out[RecCol.REASON], strict=True))
    assert "work dir says exit 0 at 12:04 UTC — the task succeeded before Batch forgot the job" in reason["VANISHED"]
    assert reason["VANISHED"].startswith("job id job-1 not found in Batch")
    assert "work dir says exit 1 at 12:04 UTC" in reason["UNKNOWN_EXIT"]
    # Applying the same evidence again (the next refresh) does not repeat it.
    again = explain_with_workdir(out, evidence)
    assert again[RecCol.REASON].tolist() == out[RecCol.REASON].tolist()
    # The input frame is not modified.
    assert "work dir" not in " ".join(frame[RecCol.REASON].tolist())


ADVERSARIAL = [
    WorkdirEvidence("x", exit_code=0),
    WorkdirEvidence("x", exit_code=1),
    WorkdirEvidence("x", began=True),
    WorkdirEvidence("x"),
    WorkdirEvidence("x", garbled=True),
    WorkdirEvidence("x", error="S3 refused s3:GetObject"),
]


@pytest.mark.parametrize("ev", ADVERSARIAL, ids=lambda e: e.summary()[:30])
def test_no_work_dir_evidence_ever_changes_a_kill_plan(ev: WorkdirEvidence) -> None:
    frame, _ = _frame()
    # Evidence for every row, including the orphan and rows that are ok.
    evidence = {str(w): WorkdirEvidence(str(w), **{k: getattr(ev, k) for k in ("exit_code", "began", "garbled", "error")})
                for w in frame[TaskCol.WORKDIR].dropna()}
    out = explain_with_workdir(frame, evidence)
    for force in (False, True):
        assert plan_kills(out, force=force) == plan_kills(frame, force=force)
    untouched = [c for c in frame.columns if c != RecCol.REASON]
    pd.testing.assert_frame_equal(out[untouched], frame[untouched])
    assert plan_kills(out) == plan_kills(frame) and [k.job_id for k in plan_kills(out)] == ["job-5"]


def test_evidence_for_an_unrelated_work_dir_changes_nothing() -> None:
    frame, _ = _frame()
    out = explain_with_workdir(frame, {"s3://other/work/aa/bb": WorkdirEvidence("s3://other/work/aa/bb", exit_code=0)})
    pd.testing.assert_frame_equal(out, frame)
    assert JobCol.JOB_ID in out


# --- rendering -------------------------------------------------------------------------------


def _hostile() -> Inspection:
    at = datetime(2026, 1, 2, 12, 4, tzinfo=UTC)
    return Inspection(
        query=XSS,
        task={TaskCol.NAME: f"ALIGN ({XSS})", TaskCol.STATUS: "RUNNING", TaskCol.EXIT: pd.NA},
        nextflow_lines=(f"[ab/cdef12] Submitted process > ALIGN ({XSS})",),
        job_id="j1",
        job_status="RUNNING",
        job_reason=XSS,
        attempts=(Attempt(1, True, None, XSS, None, None, XSS, None, at, None, XSS),),
        log=LogTail("/aws/batch/job", XSS, (LogLine(at, XSS),), "b/1", XSS),
        workdir=f"s3://b/w/{XSS}",
        files={".command.err": FileTail(".command.err", "u", exists=True, size=100, text=XSS, truncated=True),
               ".exitcode": FileTail(".exitcode", "u", error=XSS)},
        evidence=WorkdirEvidence("s3://b/w", error=XSS),
        problems=(XSS,),
    )


@pytest.mark.parametrize("standalone", [False, True])
def test_html_escapes_every_piece_of_text(standalone: bool) -> None:
    page = render_html(_hostile(), standalone=standalone)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("&lt;script&gt;") >= 10


def test_text_and_json_render_everything() -> None:
    insp = _hostile()
    text = render_text(insp)
    assert "attempt 1: running" in text and XSS in text
    data = json.loads(insp.to_json())
    assert data["log"]["lines"][0]["message"] == XSS
    assert data["attempts"][0]["started_at"] == "2026-01-02T12:04:00+00:00"
    assert data["task"]["exit"] is None
    assert data["files"][".command.err"]["truncated"] is True


@pytest.mark.parametrize("block", [7, 64, 4 << 20])
def test_nextflow_lines_are_found_across_block_boundaries(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    import batchkit.inspect as insp_mod

    monkeypatch.setattr(insp_mod, "_BLOCK", block)
    lines = [f"Nov-30 07:00:{i:02d}.000 [main] DEBUG x - line {i}" for i in range(40)]
    lines[3] += " [ab/cdef12] Submitted process > ALIGN (1)"
    lines[17] += " job=j-123; work-dir=s3://b/w/ab/cdef12"
    lines[39] += " job=j-123 twice j-123"
    old, new = tmp_path / ".nextflow.log.1", tmp_path / ".nextflow.log"
    old.write_text("older [ab/cdef12] line\r\n" + "x" * 100 + "\n")
    new.write_text("\n".join(lines))  # no newline at the end
    found = insp_mod.read_nextflow_lines([str(old), str(new)], ["[ab/cdef12]", "j-123"])
    assert found == ("older [ab/cdef12] line", lines[3], lines[17], lines[39])
    assert insp_mod.read_nextflow_lines([str(new)], ["j-123"], limit=1) == (lines[39],)
    assert insp_mod.read_nextflow_lines([str(tmp_path / "missing")], ["x"]) == ()
    assert insp_mod.read_nextflow_lines([str(new)], []) == ()
