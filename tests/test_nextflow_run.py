"""NextflowRun: merging trace, log and weblog; the run's state; finding files in a launch dir."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import real_fixture

from batchkit.errors import NextflowReadError
from batchkit.nextflow import NextflowRun, WeblogReceiver, merge_tasks
from batchkit.nextflow._formats import conform_tasks
from batchkit.schema import TASK_COLUMNS, TaskCol

SESSION = "5f0a7c1e-3b1d-4c2a-9e7f-0123456789ab"
WORK = "s3://bucket/work"
JOB_A = "70af3d53-8070-45a6-96f4-fd37580b9d00"
JOB_B = "81bf4e64-9181-46b7-87a5-0e48691cae11"
JOB_C = "92c05f75-a292-47c8-98b6-1f597a2dbf22"
WD_A = f"{WORK}/2e/8b0123456789abcdef0123456789ab"
WD_B = f"{WORK}/3f/9c0123456789abcdef0123456789ab"
WD_C = f"{WORK}/4a/ad0123456789abcdef0123456789ab"


def logline(ts: str, msg: str, thread: str = "main", level: str = "DEBUG", logger: str = "nextflow.Session") -> str:
    return f"{ts} [{thread}] {level:<5} {logger} - {msg}"


def write_log(path: Path, *, tail: list[str]) -> Path:
    lines = [
        logline("Mar-03 10:00:00.500", "N E X T F L O W  ~  version 24.02.0-edge", level="INFO", logger="nextflow.cli.CmdRun"),
        logline("Mar-03 10:00:00.600", "Launching `main.nf` [tender_curie] DSL2 - revision: 4c1a2b3d4e", level="INFO", logger="nextflow.cli.CmdRun"),
        logline("Mar-03 10:00:01.000", f"Session UUID: {SESSION}"),
        logline("Mar-03 10:00:01.100", f"Work-dir: {WORK} [S3]"),
    ]  # fmt: skip
    for ts, name, short, job, wd in (
        ("Mar-03 10:00:05.000", "ALIGN (s1)", "2e/8b0123", JOB_A, WD_A),
        ("Mar-03 10:00:06.000", "ALIGN (s2)", "3f/9c0123", JOB_B, WD_B),
        ("Mar-03 10:00:07.000", "ALIGN (s3)", "4a/ad0123", JOB_C, WD_C),
    ):
        lines.append(logline(ts, f"[AWS BATCH] Process `{name}` submitted > job={job}; work-dir={wd}", "Task submitter", logger="n.c.aws.batch.AwsBatchTaskHandler"))
        lines.append(logline(ts, f"[{short}] Submitted process > {name}", "Task submitter", "INFO"))
    path.write_text("\n".join(lines + tail) + "\n")
    return path


ABORT = [
    logline("Mar-03 11:00:00.100", "Session aborted -- Cause: Internal failure (Service: AWSBatch; Status Code: 500; Error Code: AuthorizerConfigurationException)"),
    logline("Mar-03 11:00:00.300", "Killing running tasks (1)", level="WARN", logger="n.processor.TaskPollingMonitor"),
]  # fmt: skip
GOODBYE = [logline("Mar-03 11:30:00.000", "> Execution complete -- Goodbye", logger="nextflow.script.ScriptRunner")]


def write_trace(path: Path, rows: list[str]) -> Path:
    header = "task_id\thash\tnative_id\tname\tstatus\texit\tsubmit\trealtime\tqueue\tworkdir"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


ROW_A = f"1\t2e/8b0123\t{JOB_A}\tALIGN (s1)\tCOMPLETED\t0\t2025-03-03 10:00:05.000\t5m\tspot-q\t{WD_A}"


def test_incident_launch_dir_trace_plus_log(tmp_path: Path) -> None:
    """24.02 incident: the trace has only the finished task; the log alone knows the others' jobs."""
    write_trace(tmp_path / "trace-20250303-10000000.txt", [ROW_A])
    write_log(tmp_path / ".nextflow.log", tail=ABORT)
    run = NextflowRun.from_dir(tmp_path, tz="UTC", year=2025)
    for member in ("name", "state", "work_dir", "launch_time", "end_time", "tasks"):  # schema.RunLike
        assert hasattr(run, member)
    assert (run.name, run.session_id, run.version) == ("tender_curie", SESSION, "24.02.0-edge")
    assert run.work_dir == WORK and run.launch_dir == str(tmp_path)
    assert run.state == "aborted"
    assert run.abort_cause is not None and "AuthorizerConfigurationException" in run.abort_cause
    assert run.end_time == run.abort_time == pd.Timestamp("2025-03-03 11:00:00.100", tz="UTC")
    assert run.sources == ["trace", "log"] and run.queues == ["spot-q"]
    tasks = run.tasks.set_index(TaskCol.HASH)
    assert tuple(run.tasks.columns[: len(TASK_COLUMNS)]) == TASK_COLUMNS
    assert tasks.loc["2e/8b0123", TaskCol.STATUS] == "COMPLETED"
    assert tasks.loc["2e/8b0123", TaskCol.SOURCE] == "trace+log"
    assert tasks.loc["2e/8b0123", TaskCol.REALTIME] == pd.Timedelta(minutes=5)
    # in flight when the run died: the job id survives only in the log, and "Killing
    # running tasks (1)" says Nextflow killed it (the trace would have written ABORTED)
    assert tasks.loc["3f/9c0123", TaskCol.NATIVE_ID] == JOB_B
    assert tasks.loc["3f/9c0123", TaskCol.STATUS] == "ABORTED"
    assert tasks.loc["3f/9c0123", TaskCol.SOURCE] == "log"
    assert tasks.loc["4a/ad0123", TaskCol.WORKDIR] == WD_C
    assert run.last_activity is not None
    assert run.silent_for(run.last_activity + pd.Timedelta(minutes=3)) == pd.Timedelta(minutes=3)


def test_completed_and_alive_states(tmp_path: Path) -> None:
    write_log(tmp_path / ".nextflow.log", tail=GOODBYE)
    done = NextflowRun.from_files(log=tmp_path / ".nextflow.log", tz="UTC", year=2025)
    assert done.state == "completed" and done.end_time == pd.Timestamp("2025-03-03 11:30", tz="UTC")
    assert done.abort_cause is None
    write_log(tmp_path / ".nextflow.log", tail=[])  # a crash looks like this too: no end marker
    alive = NextflowRun.from_files(log=tmp_path / ".nextflow.log", tz="UTC", year=2025)
    assert alive.state == "alive" and alive.end_time is None
    assert alive.last_activity == pd.Timestamp("2025-03-03 10:00:07", tz="UTC")
    assert alive.silent_for(pd.Timestamp("2025-03-03 10:10:07", tz="UTC")) == pd.Timedelta(minutes=10)


def test_real_slurm_log_is_an_aborted_run() -> None:
    run = NextflowRun.from_files(
        log=real_fixture("slurm-sigint-abort.nextflow.log"), tz="America/Los_Angeles", year=2020
    )
    assert (run.name, run.state, run.abort_cause) == ("wise_hypatia", "aborted", "SIGINT")
    assert run.abort_time == pd.Timestamp("2020-01-24 15:37:28.932", tz="America/Los_Angeles")
    assert len(run.tasks) == 5


def test_trace_alone_with_aborted_rows_is_an_aborted_run() -> None:
    run = NextflowRun.from_files(trace=real_fixture("local-aborted-trace.txt"), tz="UTC")
    assert run.state == "aborted" and run.sources == ["trace"]
    assert run.launch_time == pd.Timestamp("2019-08-09 13:51:02.384", tz="UTC")


def test_year_comes_from_the_trace_when_not_given(tmp_path: Path) -> None:
    write_trace(tmp_path / "trace.txt", [ROW_A.replace("2025-03-03", "2021-03-03")])
    write_log(tmp_path / ".nextflow.log", tail=[])
    run = NextflowRun.from_dir(tmp_path, tz="UTC")
    assert run.log is not None and run.log.year == 2021 and run.log.year_source == "reference"
    assert run.launch_time is not None and run.launch_time.year == 2021


@pytest.mark.parametrize("raw", [False, True], ids=["human", "raw"])
def test_dash_dates_of_an_aborted_row_do_not_move_the_launch_to_1970(tmp_path: Path, raw: bool) -> None:
    row = ROW_A.replace("2025-03-03 10:00:05.000", "1741000005000") if raw else ROW_A
    aborted = f"2\t3f/9c0123\t{JOB_B}\tALIGN (s2)\tABORTED\t-\t-\t-\tspot-q\t{WD_B}"
    write_trace(tmp_path / "trace.txt", [row, aborted])
    write_log(tmp_path / ".nextflow.log", tail=ABORT)
    run = NextflowRun.from_dir(tmp_path, tz="UTC")
    assert run.log is not None and run.log.year == 2025
    assert run.launch_time == pd.Timestamp("2025-03-03 10:00:00.500", tz="UTC")


def test_weblog_is_ahead_of_the_trace_but_not_of_its_terminal_rows(tmp_path: Path) -> None:
    trace = write_trace(
        tmp_path / "trace.txt",
        [ROW_A, f"2\t3f/9c0123\t{JOB_B}\tALIGN (s2)\tSUBMITTED\t-\t2025-03-03 10:00:06.000\t-\tspot-q\t{WD_B}"],
    )
    rec = WeblogReceiver()

    def event(name: str, status: str, short: str, job: str, **extra: object) -> bytes:
        trace_rec = {"hash": short, "native_id": job, "status": status, "name": "ALIGN", **extra}
        return json.dumps({"runName": "tender_curie", "runId": SESSION, "event": name, "utcTime": "2025-03-03T10:20:00Z", "trace": trace_rec}).encode()

    rec.ingest(event("process_started", "RUNNING", "2e/8b0123", JOB_A))  # late: the trace says COMPLETED
    rec.ingest(event("process_completed", "FAILED", "3f/9c0123", JOB_B, exit=137))
    run = NextflowRun.from_files(trace=trace, weblog=rec, tz="UTC")
    tasks = run.tasks.set_index(TaskCol.HASH)
    assert tasks.loc["2e/8b0123", TaskCol.STATUS] == "COMPLETED"
    assert tasks.loc["3f/9c0123", TaskCol.STATUS] == "FAILED"
    assert tasks.loc["3f/9c0123", TaskCol.EXIT] == 137
    assert tasks.loc["3f/9c0123", TaskCol.SOURCE] == "trace+weblog"
    assert run.name == "tender_curie" and run.state == "alive"
    assert run.last_activity is not None and run.last_activity >= pd.Timestamp("2025-03-03T10:20:00Z")


def test_weblog_only_run() -> None:
    rec = WeblogReceiver()
    rec.ingest(json.dumps({"runName": "r", "runId": "s", "event": "completed", "utcTime": "2025-01-01T00:00:00Z"}).encode())
    run = NextflowRun.from_files(weblog=rec)
    assert run.state == "completed" and run.tasks.empty and run.sources == ["weblog"]
    assert run.end_time == pd.Timestamp("2025-01-01", tz="UTC")


def test_merge_keys_by_job_id_when_a_source_lacks_the_hash() -> None:
    log = conform_tasks(pd.DataFrame({TaskCol.HASH: ["ab/cdef01"], TaskCol.NATIVE_ID: ["job-1"], TaskCol.STATUS: ["SUBMITTED"], TaskCol.SOURCE: ["log"]}))
    trace = conform_tasks(pd.DataFrame({TaskCol.TASK_ID: [9], TaskCol.NATIVE_ID: ["job-1"], TaskCol.STATUS: ["ABORTED"], TaskCol.SOURCE: ["trace"]}))
    merged = merge_tasks(trace, log, None)
    assert len(merged) == 1
    row = merged.iloc[0]
    assert (row[TaskCol.HASH], row[TaskCol.TASK_ID], row[TaskCol.STATUS], row[TaskCol.SOURCE]) == (
        "ab/cdef01", 9, "ABORTED", "trace+log",
    )  # fmt: skip


def test_merge_precedence_live_trace_row_loses_to_weblog_beats_log() -> None:
    def frame(status: str, source: str) -> pd.DataFrame:
        return conform_tasks(pd.DataFrame({TaskCol.HASH: ["ab/cdef01"], TaskCol.STATUS: [status], TaskCol.SOURCE: [source]}))

    assert merge_tasks(frame("SUBMITTED", "trace"), frame("SUBMITTED", "log"), frame("RUNNING", "weblog"))[TaskCol.STATUS].tolist() == ["RUNNING"]
    assert merge_tasks(frame("RUNNING", "trace"), frame("COMPLETED", "log"), None)[TaskCol.STATUS].tolist() == ["RUNNING"]
    assert merge_tasks(None, None, None).columns.tolist() == list(TASK_COLUMNS)


def test_from_dir_finds_nf_core_pipeline_info_and_skips_unrelated_traces(tmp_path: Path) -> None:
    old = write_trace(tmp_path / "results/pipeline_info/execution_trace_2025-01-01.txt", ["1\tff/000001\tjob-x\tOTHER\tCOMPLETED\t0\t-\t-\t-\t-"])
    first = write_trace(tmp_path / "results/pipeline_info/execution_trace_2025-03-03_10-00.txt", [ROW_A.replace("COMPLETED", "ABORTED")])
    second = write_trace(
        tmp_path / "results/pipeline_info/execution_trace_2025-03-03_12-00.txt",
        [ROW_A.replace("COMPLETED", "CACHED"), "2\t5b/000002\tjob-y\tALIGN (s9)\tCOMPLETED\t0\t-\t-\t-\t-"],
    )
    for age, path in ((300, old), (200, first), (100, second)):
        stamp = pd.Timestamp.now().timestamp() - age
        os.utime(path, (stamp, stamp))
    run = NextflowRun.from_dir(tmp_path, tz="UTC")
    assert run.trace_paths == [str(first), str(second)]  # `old` shares no task with this run
    assert set(run.tasks[TaskCol.HASH]) == {"2e/8b0123", "5b/000002"}
    assert run.tasks.set_index(TaskCol.HASH).loc["2e/8b0123", TaskCol.STATUS] == "CACHED"


def test_from_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(NextflowReadError, match="no Nextflow trace or log found") as info:
        NextflowRun.from_dir(tmp_path)
    assert info.value.path == str(tmp_path)
    with pytest.raises(NextflowReadError, match="not a directory"):
        NextflowRun.from_dir(tmp_path / "missing")
    with pytest.raises(NextflowReadError, match="nothing to read"):
        NextflowRun.from_files()


def test_reload_reads_new_rows(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "trace.txt", [ROW_A])
    run = NextflowRun.from_dir(tmp_path, tz="UTC")
    assert len(run.tasks) == 1
    with trace.open("a") as fh:
        fh.write(f"2\t3f/9c0123\t{JOB_B}\tALIGN (s2)\tFAILED\t1\t2025-03-03 10:00:06.000\t1m\tspot-q\t{WD_B}\n")
    again = run.reload()
    assert again is not run and len(again.tasks) == 2 and len(run.tasks) == 1


def test_simulated_incident_reads_back_as_the_ground_truth() -> None:
    """The simulated 24.02 incident (batchkit.sim), read from trace+log, log only, and weblog only."""
    from batchkit.sim.nextflow import replay_incident

    receiver = WeblogReceiver().start()
    try:
        with replay_incident(n_tasks=12, keep_running=False, weblog_url=receiver.url) as incident:
            truth = incident.truth
            runs = {
                "trace+log": NextflowRun.from_dir(incident.launch_dir, tz="UTC"),
                "log": NextflowRun.from_files(log=truth.log_file, tz="UTC"),
                "weblog": NextflowRun.from_files(weblog=receiver),
            }
    finally:
        receiver.stop()
    for label, run in runs.items():
        assert (run.name, run.session_id, run.state) == (truth.run_name, truth.session_id, truth.run_state), label
        tasks = run.tasks.set_index(TaskCol.HASH)
        assert set(tasks.index) == {t["hash"] for t in truth.tasks}, label
        for task in truth.tasks:
            if task["job_id"]:
                assert tasks.loc[task["hash"], TaskCol.NATIVE_ID] == task["job_id"], label
    trace_log = runs["trace+log"].tasks.set_index(TaskCol.HASH)[TaskCol.STATUS]
    assert trace_log.to_dict() == {t["hash"]: t["status"] for t in truth.tasks}
    assert runs["trace+log"].abort_cause == truth.abort_cause
    # the abandoned jobs are exactly the tasks Nextflow still lists as alive in an aborted run
    alive = {t["job_id"] for t in truth.tasks if trace_log[t["hash"]] in ("SUBMITTED", "RUNNING")}
    assert truth.abandoned_job_ids <= alive
