"""The log reader on real launch dirs: the real fixtures, and our own text in the real formats.

Every fixture written here is our own text in the line formats real Nextflow logs
use (19.x to 25.x): banner, submit lines, ``Task completed`` and in-flight
``~> TaskHandler[...]`` lines, ``Error executing process``, kill lines, failed
launches. Real files are only read from ../shared/fixtures/real.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import real_fixture

from batchkit.errors import NextflowReadError
from batchkit.nextflow import NextflowRun, read_log
from batchkit.nextflow.log import KILLED_BY_NEXTFLOW, UNKNOWN_OUTCOME
from batchkit.schema import TaskCol

JOB_A = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
JOB_B = "1c2d3e4f-5061-4b7c-9d8e-0f1a2b3c4d5e"
JOB_C = "2d3e4f50-6172-4c8d-ae9f-1a2b3c4d5e6f"
WORK = "s3://lab-bucket/work"
WD_A = f"{WORK}/2e/8b0123456789abcdef0123456789ab"
WD_B = f"{WORK}/3f/9c0123456789abcdef0123456789ab"
WD_C = f"{WORK}/4a/ad0123456789abcdef0123456789ab"


def ln(stamp: str, msg: str, *, level: str = "DEBUG", logger: str = "nextflow.Session", thread: str = "main") -> str:
    return f"{stamp} [{thread}] {level:<5} {logger} - {msg}"


def head(version: str = "24.10.5", created: str = "04-03-2025", executor: str = "awsbatch") -> list[str]:
    lines = [
        ln("Jun-02 09:00:00.000", "$> nextflow run main.nf -with-trace", logger="nextflow.cli.Launcher"),
        ln("Jun-02 09:00:00.100", f"N E X T F L O W  ~  version {version}", logger="nextflow.cli.CmdRun"),
        ln("Jun-02 09:00:00.200", "Launching `main.nf` [brave_lovelace] DSL2 - revision: 0123456789", logger="nextflow.cli.CmdRun"),
        ln("Jun-02 09:00:00.300", "Session UUID: 6a7b8c9d-0000-4000-8000-000000000001"),
        ln("Jun-02 09:00:00.300", "Run name: brave_lovelace"),
        ln("Jun-02 09:00:00.400", "", logger="nextflow.cli.CmdRun"),
        f"  Version: {version} build 5935",
        f"  Created: {created} 17:55 UTC (17:55 BST)",
        "  System: Linux 6.1",
        ln("Jun-02 09:00:00.500", f"Work-dir: {WORK} [S3]"),
        ln("Jun-02 09:00:01.000", f"[warm up] executor > {executor}", logger="nextflow.executor.Executor"),
    ]
    if executor == "awsbatch":
        lines.append(
            ln("Jun-02 09:00:01.100", "[AWS BATCH] Executor options=AwsOptions(remoteBinDir:null, fetchInstanceType:false, "
               "region:us-west-2, jobRole:null, logsGroup:null, retryMode:standard, maxSpotAttempts:0)",
               logger="n.cloud.aws.batch.AwsBatchExecutor")
        )  # fmt: skip
    return lines


def aws_submit(stamp: str, name: str, job: str, wd: str, short: str) -> list[str]:
    return [
        ln(stamp, f"[AWS BATCH] Process `{name}` submitted > job={job}; work-dir={wd}",
           logger="n.c.aws.batch.AwsBatchTaskHandler", thread="AWSBatch-executor-1"),
        ln(stamp, f"[{short}] Submitted process > {name}", level="INFO", thread="AWSBatch-executor-1"),
    ]  # fmt: skip


def done(stamp: str, task_id: int, name: str, wd: str, *, exit_: str = "0", error: str = "-") -> str:
    return ln(
        stamp,
        f"Task completed > TaskHandler[id: {task_id}; name: {name}; status: COMPLETED; exit: {exit_}; "
        f"error: {error}; workDir: {wd}]",
        logger="n.processor.TaskPollingMonitor",
        thread="Task monitor",
    )


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the real fixtures, exactly as their README says ------------------------------------------


def test_real_awsbatch_sigint_24_10_5_log() -> None:
    info = read_log(real_fixture("awsbatch-sigint-24.10.5.nextflow.log"), tz="UTC")
    assert (info.version, info.run_name) == ("24.10.5", "infallible_knuth")
    assert info.session_id == "b0383903-a26e-427d-854c-3073b3d4be47"
    assert info.work_dir == "s3://nextflow-pipeline-data-nto15x4w/work"
    assert info.region == "eu-north-1" and info.executors == ["awsbatch"] and info.used_aws_batch
    assert info.abort_cause == "SIGINT" and not info.launch_failed
    assert info.abort_time == pd.Timestamp("2025-03-23 22:39:57.258", tz="UTC")
    assert info.killed_count == 1 and info.killed_job_ids == ["cc448dde-7aa2-40b2-843d-d0515c389309"]
    assert info.trace_file is not None and info.trace_file.endswith("/trace-new.txt")
    assert info.command == "nextflow run test.nf -with-trace trace-new.txt"
    # the year (2025) is nowhere in the log: the banner's build date bounds it, unproven alone
    assert info.year == 2025 and not info.year_proven
    assert len(info.tasks) == 1
    task = info.tasks.iloc[0]
    assert task[TaskCol.NATIVE_ID] == "cc448dde-7aa2-40b2-843d-d0515c389309"
    assert task[TaskCol.STATUS] == "ABORTED"  # killed by Nextflow: not COMPLETED, not SUBMITTED
    assert str(task[TaskCol.NF_REASON]).startswith(KILLED_BY_NEXTFLOW)
    assert task[TaskCol.TASK_ID] == 1 and task[TaskCol.NAME] == "HELLO"


def test_real_awsbatch_sigint_run_with_its_trace_is_aborted_by_nextflow_in_eu_north_1() -> None:
    run = NextflowRun.from_files(
        log=real_fixture("awsbatch-sigint-24.10.5.nextflow.log"),
        trace=real_fixture("awsbatch-sigint-24.10.5-trace.txt"),
        tz="UTC",
    )
    assert run.state == "aborted" and run.abort_cause == "SIGINT"
    assert run.region == "eu-north-1" and "AwsOptions" in run.region_source
    assert run.on_aws_batch is True
    assert run.year == 2025 and run.year_proven and run.year_note == ""  # the trace's dates prove it
    assert len(run.tasks) == 1
    task = run.tasks.iloc[0]
    assert (task[TaskCol.NATIVE_ID], task[TaskCol.STATUS]) == ("cc448dde-7aa2-40b2-843d-d0515c389309", "ABORTED")
    assert task[TaskCol.SOURCE] == "trace+log"


def test_real_sigint_launch_dir_with_a_header_only_trace_of_the_same_time(tmp_path: Path) -> None:
    """The launch dir as it was: trace-new.txt (named by the log) and an empty trace.txt, same mtime."""
    shutil.copyfile(real_fixture("awsbatch-sigint-24.10.5.nextflow.log"), tmp_path / ".nextflow.log")
    shutil.copyfile(real_fixture("awsbatch-sigint-24.10.5-trace.txt"), tmp_path / "trace-new.txt")
    header = real_fixture("awsbatch-sigint-24.10.5-trace.txt").read_text().splitlines()[0]
    (tmp_path / "trace.txt").write_text(header + "\n")
    stamp = pd.Timestamp("2025-03-23 22:39:58", tz="UTC").timestamp()
    for name in (".nextflow.log", "trace-new.txt", "trace.txt"):
        os.utime(tmp_path / name, (stamp, stamp))
    run = NextflowRun.from_dir(tmp_path, tz="UTC")
    assert [Path(p).name for p in run.trace_paths] == ["trace-new.txt"]
    assert run.state == "aborted" and run.region == "eu-north-1"
    assert len(run.tasks) == 1 and run.tasks.iloc[0][TaskCol.STATUS] == "ABORTED"
    assert run.tasks.iloc[0][TaskCol.NATIVE_ID] == "cc448dde-7aa2-40b2-843d-d0515c389309"


def test_real_failed_launch_19_01_0_is_not_alive() -> None:
    run = NextflowRun.from_files(log=real_fixture("failed-launch-19.01.0.nextflow.log"), tz="UTC")
    assert run.state != "alive"
    assert run.abort_cause == "Not a valid project name: import_rds.nf"
    assert run.log is not None and run.log.launch_failed
    assert run.name is None and run.session_id is None and run.tasks.empty
    assert run.abort_time == run.log.abort_time and run.abort_time is not None


def test_real_raw_33_field_trace() -> None:
    from batchkit.nextflow import read_trace

    frame = read_trace(real_fixture("local-raw-allfields-trace.txt"), tz="UTC")
    assert len(frame) == 8 and (frame[TaskCol.STATUS] == "COMPLETED").all()
    row = frame.set_index(TaskCol.HASH).loc["79/ccf1bb"]
    assert row[TaskCol.SUBMIT] == pd.Timestamp("2018-04-04 18:28:42.522", tz="UTC")
    assert row[TaskCol.PROCESS] == "make_file" and row[TaskCol.TAG] == "Sample5"


def test_real_slurm_log_tasks_killed_year_from_its_epoch_times_and_not_aws() -> None:
    info = read_log(real_fixture("slurm-sigint-abort.nextflow.log"), tz="America/Los_Angeles")
    # "~> TaskHandler[… started: 1579898976775 …]" carries the year: proven without a trace
    assert info.year == 2020 and info.year_proven and info.year_source == "log epoch times"
    assert info.executors == ["local", "slurm"] and not info.used_aws_batch and info.region is None
    statuses = info.tasks.set_index(TaskCol.HASH)[TaskCol.STATUS].to_dict()
    assert statuses == {
        "16/b7af3d": "COMPLETED", "92/94d0c1": "COMPLETED",
        "97/10a71c": "ABORTED", "d9/281125": "ABORTED", "3a/0d5791": "ABORTED",
    }  # fmt: skip
    run = NextflowRun.from_files(log=real_fixture("slurm-sigint-abort.nextflow.log"), tz="America/Los_Angeles")
    assert run.on_aws_batch is False


# --- 1. failed launches and script errors ----------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "cause"),
    [
        (
            [ln("Jan-05 10:00:00.000", "$> nextflow run main.nf -with-trace", logger="nextflow.cli.Launcher"),
             ln("Jan-05 10:00:00.400", "Operation aborted", logger="nextflow.cli.Launcher"),
             "java.nio.file.FileAlreadyExistsException: /home/u/run/trace.txt",
             "\tat nextflow.trace.TraceFileObserver.onFlowCreate(TraceFileObserver.groovy:180)"],
            "/home/u/run/trace.txt",
        ),
        (
            [ln("Jan-05 10:00:00.000", "$> nextflow run main.nf", logger="nextflow.cli.Launcher"),
             ln("Jan-05 10:00:02.000", "@unknown", level="ERROR", logger="nextflow.cli.Launcher"),
             "nextflow.exception.WorkflowScriptErrorException: This path is not available",
             "\tat nextflow.Nextflow.error(Nextflow.groovy:100)"],
            "This path is not available",
        ),
        (
            [ln("Jan-05 10:00:00.000", "$> nextflow run main.nf", logger="nextflow.cli.Launcher"),
             ln("Jan-05 10:00:01.000", "No such property: reads for class: Script_1a2b3c", level="ERROR",
                logger="nextflow.cli.Launcher")],
            "No such property: reads for class: Script_1a2b3c",
        ),
        (
            [ln("Jan-05 10:00:00.000", "$> nextflow run main.nf", logger="nextflow.cli.Launcher"),
             ln("Jan-05 10:00:01.000", "> Error: input samplesheet not found", level="ERROR", logger="nextflow.Nextflow")],
            "input samplesheet not found",
        ),
    ],
)  # fmt: skip
def test_failed_launches_are_not_alive(tmp_path: Path, lines: list[str], cause: str) -> None:
    run = NextflowRun.from_files(log=write(tmp_path / ".nextflow.log", lines), tz="UTC", year=2024)
    assert run.state == "aborted" and run.abort_cause == cause
    assert run.log is not None and run.log.launch_failed
    assert run.abort_time == pd.Timestamp(f"2024-01-05 {lines[1][7:19]}", tz="UTC")


# --- 2. Error executing process after a completed task ----------------------------------------


def test_error_executing_process_fails_a_task_that_completed_with_exit_0(tmp_path: Path) -> None:
    lines = [
        *head(),
        *aws_submit("Jun-02 09:01:00.000", "ALIGN (s1)", JOB_A, WD_A, "2e/8b0123"),
        done("Jun-02 09:05:00.000", 1, "ALIGN (s1)", WD_A),
        ln("Jun-02 09:05:00.200", "Error executing process > 'ALIGN (s1)'", level="ERROR",
           logger="nextflow.processor.TaskProcessor", thread="TaskFinalizer-1"),
        "",
        "Caused by:",
        "  Missing output file(s) `s1.bam` expected by process `ALIGN (s1)`",
        "",
        "Command executed:",
        "  bwa mem ref.fa s1.fq > s1.sam",
        ln("Jun-02 09:05:01.000", "Session aborted -- Cause: Missing output file(s) `s1.bam` expected by process `ALIGN (s1)`"),
    ]  # fmt: skip
    info = read_log(write(tmp_path / ".nextflow.log", lines), tz="UTC", year=2025)
    task = info.tasks.set_index(TaskCol.HASH).loc["2e/8b0123"]
    assert task[TaskCol.STATUS] == "FAILED" and task[TaskCol.EXIT] == 0
    assert task[TaskCol.NF_REASON] == "Missing output file(s) `s1.bam` expected by process `ALIGN (s1)`"


def test_note_lines_fail_the_attempt_with_their_reason(tmp_path: Path) -> None:
    lines = [
        *head(),
        *aws_submit("Jun-02 09:01:00.000", "ALIGN (s1)", JOB_A, WD_A, "2e/8b0123"),
        ln("Jun-02 09:05:00.200", "[2e/8b0123] NOTE: Process `ALIGN (s1)` terminated with an error exit status (137) "
           "-- Execution is retried (1)", level="INFO", logger="nextflow.processor.TaskProcessor"),
    ]  # fmt: skip
    task = read_log(write(tmp_path / ".nextflow.log", lines), tz="UTC", year=2025).tasks.iloc[0]
    assert task[TaskCol.STATUS] == "FAILED"
    assert task[TaskCol.NF_REASON] == "Process `ALIGN (s1)` terminated with an error exit status (137)"


# --- 3. COMPLETED; exit: - is an unknown outcome -------------------------------------------


def test_completed_with_exit_dash_is_an_unknown_outcome_never_done(tmp_path: Path) -> None:
    lines = [
        *head(),
        *aws_submit("Jun-02 09:01:00.000", "ALIGN (s1)", JOB_A, WD_A, "2e/8b0123"),
        ln("Jun-02 09:04:59.000", "[AWS BATCH] Cannot read exit status for task: `ALIGN (s1)` | NoSuchKey",
           logger="n.c.aws.batch.AwsBatchTaskHandler", thread="Task monitor"),
        done("Jun-02 09:05:00.000", 1, "ALIGN (s1)", WD_A, exit_="-"),
    ]  # fmt: skip
    task = read_log(write(tmp_path / ".nextflow.log", lines), tz="UTC", year=2025).tasks.iloc[0]
    assert task[TaskCol.STATUS] != "COMPLETED"
    assert task[TaskCol.STATUS] == "FAILED" and pd.isna(task[TaskCol.EXIT])
    assert task[TaskCol.NF_REASON] == UNKNOWN_OUTCOME and "outcome unknown" in UNKNOWN_OUTCOME


def test_handling_unexpected_condition_gives_the_reason_and_keeps_the_job_s_task_alive(tmp_path: Path) -> None:
    """#5516: a status check that threw; the task left the running queue without a kill."""
    lines = [
        *head(version="24.04.4"),
        *aws_submit("Jun-02 09:01:00.000", "ALIGN (s1)", JOB_A, WD_A, "2e/8b0123"),
        ln("Jun-02 09:30:00.000", "Handling unexpected condition for", logger="nextflow.processor.TaskProcessor",
           thread="Task monitor"),
        f"  task: name=ALIGN (s1); work-dir={WD_A}",
        "  error [com.amazonaws.services.batch.model.AWSBatchException]: Internal failure (Service: AWSBatch; "
        "Status Code: 500; Error Code: AuthorizerConfigurationException)",
        ln("Jun-02 09:30:00.100", "Error executing process > 'ALIGN (s1)'", level="ERROR",
           logger="nextflow.processor.TaskProcessor", thread="Task monitor"),
        "", "Caused by:", "  Internal failure (Service: AWSBatch; Status Code: 500)", "",
        ln("Jun-02 09:30:00.200", "Session aborted -- Cause: Internal failure"),
        ln("Jun-02 09:30:00.300", "Killing running tasks (0)", level="WARN", logger="n.processor.TaskPollingMonitor"),
    ]  # fmt: skip
    task = read_log(write(tmp_path / ".nextflow.log", lines), tz="UTC", year=2025).tasks.iloc[0]
    assert task[TaskCol.STATUS] == "SUBMITTED"  # not ABORTED: Nextflow never killed its job
    assert "AuthorizerConfigurationException" in str(task[TaskCol.NF_REASON])


# --- 4. tasks Nextflow killed --------------------------------------------------------------


def test_tasks_in_flight_at_the_kill_are_aborted_later_submissions_are_not(tmp_path: Path) -> None:
    lines = [
        *head(),
        *aws_submit("Jun-02 09:01:00.000", "ALIGN (s1)", JOB_A, WD_A, "2e/8b0123"),
        *aws_submit("Jun-02 09:01:01.000", "ALIGN (s2)", JOB_B, WD_B, "3f/9c0123"),
        done("Jun-02 09:05:00.000", 1, "ALIGN (s1)", WD_A),
        ln("Jun-02 09:06:00.000", "Session aborted -- Cause: SIGTERM", thread="SIGTERM handler"),
        ln("Jun-02 09:06:00.100", "Killing running tasks (1)", level="WARN", logger="n.processor.TaskPollingMonitor"),
        # nextflow-io/nextflow#7445: a submission after the kill sweep stays in flight
        *aws_submit("Jun-02 09:06:00.200", "ALIGN (s3)", JOB_C, WD_C, "4a/ad0123"),
        ln("Jun-02 09:06:00.300", f"[AWS BATCH] killing job={JOB_B}; response={{}}",
           logger="n.c.aws.batch.AwsBatchTaskHandler", thread="AWSBatch-reaper-1"),
        ln("Jun-02 09:06:01.000", "> Execution complete -- Goodbye", logger="nextflow.script.ScriptRunner"),
    ]  # fmt: skip
    info = read_log(write(tmp_path / ".nextflow.log", lines), tz="UTC", year=2025)
    status = info.tasks.set_index(TaskCol.HASH)[TaskCol.STATUS].to_dict()
    assert status == {"2e/8b0123": "COMPLETED", "3f/9c0123": "ABORTED", "4a/ad0123": "SUBMITTED"}
    assert info.killed_job_ids == [JOB_B]


def test_a_kill_line_alone_aborts_its_job_s_task(tmp_path: Path) -> None:
    lines = [
        *head(version="25.04.2"),
        *aws_submit("Jun-02 09:01:00.000", "ALIGN (s1)", JOB_A, WD_A, "2e/8b0123"),
        ln("Jun-02 09:06:00.300", f"[AWS BATCH] cleanup = killing job {JOB_A}",
           logger="n.c.aws.batch.AwsBatchExecutor", thread="AWSBatch-reaper-1"),
    ]  # fmt: skip
    task = read_log(write(tmp_path / ".nextflow.log", lines), tz="UTC", year=2025).tasks.iloc[0]
    assert task[TaskCol.STATUS] == "ABORTED" and str(task[TaskCol.NF_REASON]).startswith(KILLED_BY_NEXTFLOW)


# --- 5. in-flight dumps ----------------------------------------------------------------------


def test_in_flight_dumps_are_read_and_the_newest_wins(tmp_path: Path) -> None:
    wd_grid = "/scratch/u/work/5b/be0123456789abcdef0123456789ab"
    lines = [
        *head(executor="slurm", created="20-12-2019"),
        ln("Jun-02 09:05:00.000", "!! executor slurm > tasks to be completed: 2 -- submitted tasks are shown below",
           logger="n.processor.TaskPollingMonitor", thread="Task monitor"),
        f"~> TaskHandler[jobId: 4466; id: 7; name: CALL (a); status: SUBMITTED; exit: -; error: -; workDir: {wd_grid} started: -; exited: -; ]",
        f"~> TaskHandler[id: 8; name: CALL (b); status: SUBMITTED; exit: -; error: -; workDir: {WD_B}]",
        ln("Jun-02 09:10:00.000", "!! executor slurm > tasks to be completed: 2 -- submitted tasks are shown below",
           logger="n.processor.TaskPollingMonitor", thread="Task monitor"),
        f"~> TaskHandler[jobId: 4466; id: 7; name: CALL (a); status: RUNNING; exit: -; error: -; workDir: {wd_grid} started: 1591088700000; exited: -; ]",
        f"~> TaskHandler[id: 8; name: CALL (b); status: SUBMITTED; exit: -; error: -; workDir: {WD_B}]",
    ]  # fmt: skip
    info = read_log(write(tmp_path / ".nextflow.log", lines), tz="UTC")
    tasks = info.tasks.set_index(TaskCol.HASH)
    assert tasks.loc["5b/be0123", TaskCol.STATUS] == "RUNNING"
    assert tasks.loc["5b/be0123", TaskCol.NATIVE_ID] == "4466" and tasks.loc["5b/be0123", TaskCol.TASK_ID] == 7
    assert tasks.loc["5b/be0123", TaskCol.NAME] == "CALL (a)"
    assert tasks.loc["3f/9c0123", TaskCol.STATUS] == "SUBMITTED" and tasks.loc["3f/9c0123", TaskCol.TASK_ID] == 8
    # started: 1591088700000 = 2020-06-02 09:05 UTC proves the year
    assert info.year == 2020 and info.year_proven


# --- 6. the year --------------------------------------------------------------------------------


def test_year_from_build_date_and_file_time(tmp_path: Path) -> None:
    path = write(tmp_path / ".nextflow.log", head(created="04-03-2025"))
    # build date 2025-03-04 <= Jun-02; file written 2025-06-03: only 2025 fits both -> proven
    stamp = pd.Timestamp("2025-06-03 08:00", tz="UTC").timestamp()
    os.utime(path, (stamp, stamp))
    info = read_log(path, tz="UTC")
    assert (info.year, info.year_proven, info.year_source) == (2025, True, "build date and file time agree")
    # a fresh copy (file time now): the lower bound still reads 2025, flagged unproven
    os.utime(path, None)
    copy = read_log(path, tz="UTC")
    assert copy.year == 2025 and not copy.year_proven and copy.year_source == "build date (lower bound)"
    assert copy.launch_time == info.launch_time


def test_year_from_a_trace_timestamp_name_is_proven(tmp_path: Path) -> None:
    named = ln("Jun-02 09:00:00.600", "Workflow started -- trace file: /home/u/run/trace-20240602-090000.txt",
               logger="nextflow.trace.TraceFileObserver")  # fmt: skip
    write(tmp_path / ".nextflow.log", [*head(created="04-03-2023"), named])
    (tmp_path / "trace-20240602-090000.txt").write_text("task_id\thash\tnative_id\tname\tstatus\texit\n")
    run = NextflowRun.from_dir(tmp_path, tz="UTC")
    assert run.year == 2024 and run.year_proven
    assert run.launch_time == pd.Timestamp("2024-06-02 09:00:00", tz="UTC")


def test_unproven_year_is_said(tmp_path: Path) -> None:
    lines = [ln("Jun-02 09:00:00.000", "$> nextflow run main.nf", logger="nextflow.cli.Launcher")]
    run = NextflowRun.from_files(log=write(tmp_path / ".nextflow.log", lines), tz="UTC")
    assert not run.year_proven and run.year_source == "file time"
    assert "is a guess" in run.year_note and str(run.year) in run.year_note


# --- 7. console output ----------------------------------------------------------------------


def test_console_output_saved_as_a_log_is_refused_with_where_the_log_is(tmp_path: Path) -> None:
    console = [
        " N E X T F L O W   ~  version 24.10.5",
        "",
        "Launching `main.nf` [brave_lovelace] DSL2 - revision: 0123456789",
        "",
        "executor >  awsbatch (5)",
        "[2e/8b0123] process > ALIGN (s1) [100%] 5 of 5 ✔",
        "[3f/9c0123] CALL (s2)            | 0 of 1",
    ]
    with pytest.raises(NextflowReadError, match="console output of run 'brave_lovelace'") as err:
        read_log(write(tmp_path / "run.out", console), tz="UTC")
    assert ".nextflow.log" in str(err.value) and "run.out" in str(err.value)


# --- 8. executors ----------------------------------------------------------------------------


def test_executor_recorded_aws_and_not_aws(tmp_path: Path) -> None:
    aws = NextflowRun.from_files(log=write(tmp_path / "a" / ".nextflow.log", head()), tz="UTC", year=2025)
    assert aws.executors == ["awsbatch"] and aws.on_aws_batch is True
    slurm = NextflowRun.from_files(
        log=write(tmp_path / "s" / ".nextflow.log", head(executor="slurm")), tz="UTC", year=2025
    )
    assert slurm.executors == ["slurm"] and slurm.on_aws_batch is False and slurm.region is None


# --- region and queues from the log and the config ------------------------------------------


def test_region_from_the_log_queues_from_the_config(tmp_path: Path) -> None:
    write(tmp_path / ".nextflow.log", head())
    (tmp_path / "nextflow.config").write_text(
        "aws.region = 'eu-west-1'\n"
        "process {\n  executor = 'awsbatch'\n  queue = 'spot-q'\n"
        "  withName: 'BIG' { queue = 'ondemand-q' }\n}\n"
    )
    run = NextflowRun.from_dir(tmp_path, tz="UTC", year=2025)
    assert run.region == "us-west-2" and "AwsOptions" in run.region_source  # what the run used
    assert run.queues == ["spot-q", "ondemand-q"]
    assert run.queue_sources["ondemand-q"].startswith(str(tmp_path / "nextflow.config"))


def test_region_from_the_config_when_the_log_has_none(tmp_path: Path) -> None:
    write(tmp_path / ".nextflow.log", head(executor="awsbatch")[:-1])  # no AwsOptions line
    (tmp_path / "nextflow.config").write_text("aws { region = 'ap-southeast-2' }\nprocess.queue = 'q1'\n")
    run = NextflowRun.from_dir(tmp_path, tz="UTC", year=2025)
    assert run.region == "ap-southeast-2" and "aws.region" in run.region_source
    assert run.queues == ["q1"]


# --- bounded work: what is not a regular file, or not a log, is refused -----------------------


def test_fifo_and_devices_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    with pytest.raises(NextflowReadError, match="not a regular file"):
        read_log(fifo, tz="UTC")
    with pytest.raises(NextflowReadError, match="not a regular file"):
        read_log("/dev/zero", tz="UTC")


def test_a_sparse_file_without_log_lines_is_refused_quickly(tmp_path: Path) -> None:
    sparse = tmp_path / ".nextflow.log"
    with sparse.open("wb") as fh:
        fh.truncate(64 << 20)  # 64 MiB of zeros, no newline (the 2 GB case is in the benchmark)
    with pytest.raises(NextflowReadError, match="not a Nextflow log"):
        read_log(sparse, tz="UTC")


def test_an_overlong_line_is_cut_not_held(tmp_path: Path) -> None:
    lines = [*head(), ln("Jun-02 09:00:02.000", "x" * (3 << 20)), *aws_submit("Jun-02 09:01:00.000", "A (1)", JOB_A, WD_A, "2e/8b0123")]
    info = read_log(write(tmp_path / ".nextflow.log", lines), tz="UTC", year=2025)
    assert list(info.tasks[TaskCol.NATIVE_ID]) == [JOB_A]


# --- a fresh copy reads as the original -------------------------------------------------------


def test_a_fresh_copy_of_a_launch_dir_gives_the_same_run_view(tmp_path: Path) -> None:
    original = tmp_path / "orig"
    lines = [
        *head(created="04-03-2025"),
        *aws_submit("Jun-02 09:01:00.000", "ALIGN (s1)", JOB_A, WD_A, "2e/8b0123"),
        done("Jun-02 09:05:00.000", 1, "ALIGN (s1)", WD_A),
        ln("Jun-02 09:06:01.000", "> Execution complete -- Goodbye", logger="nextflow.script.ScriptRunner"),
    ]
    write(original / ".nextflow.log", lines)
    (original / "nextflow.config").write_text("process.queue = 'spot-q'\n")
    (original / "trace-20250602-090000.txt").write_text(
        "task_id\thash\tnative_id\tname\tstatus\texit\tsubmit\tcomplete\n"
        f"1\t2e/8b0123\t{JOB_A}\tALIGN (s1)\tCOMPLETED\t0\t2025-06-02 09:01:00.000\t2025-06-02 09:05:00.000\n"
    )
    stamp = pd.Timestamp("2025-06-02 09:06:02", tz="UTC").timestamp()
    for p in original.iterdir():
        os.utime(p, (stamp, stamp))
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, copy_function=shutil.copyfile)  # file times = now
    a = NextflowRun.from_dir(original, tz="UTC")
    b = NextflowRun.from_dir(copy, tz="UTC")
    assert (a.state, a.name, a.launch_time, a.end_time, a.region, a.queues, a.year) == (
        b.state, b.name, b.launch_time, b.end_time, b.region, b.queues, b.year
    )
    # the copy's file times (now) neither make the run look active nor stretch its lifetime
    assert a.last_activity == b.last_activity == pd.Timestamp("2025-06-02 09:06:01", tz="UTC")
    pd.testing.assert_frame_equal(a.tasks, b.tasks)
    assert a.year_proven and b.year_proven  # the trace's dates prove the year in both


# --- the doctor on our non-AWS fixtures ---------------------------------------------------------


def _non_aws_logs() -> dict[str, list[str]]:
    wd = "/scratch/u/work/5b/be0123456789abcdef0123456789ab"
    return {
        "slurm": [
            *head(version="23.04.1", executor="slurm", created="15-05-2023"),
            ln("Jun-02 09:01:00.000", f"[SLURM] submitted process CALL (a) > jobId: 4466; workDir: {wd}",
               logger="nextflow.executor.GridTaskHandler", thread="Task submitter"),
            ln("Jun-02 09:06:00.000", "Session aborted -- Cause: SIGINT", thread="SIGINT handler"),
            ln("Jun-02 09:06:00.100", "Killing running tasks (1)", level="WARN", logger="n.processor.TaskPollingMonitor"),
        ],
        "local": [*head(version="22.10.6", executor="local", created="01-01-2023")],
        "google-batch": [
            *head(version="23.10.0", executor="google-batch", created="15-10-2023"),
            ln("Jun-02 09:01:00.000", "[GOOGLE BATCH] submitted > job=nf-5bbe0123-1696525429132; "
               "uid=nf-5bbe0123-169652-d5f8d0b9-e2b2-4b780; work-dir=gs://lab/work/5b/be0123456789abcdef0123456789ab",
               logger="n.c.g.batch.GoogleBatchTaskHandler", thread="Task submitter"),
        ],
        "failed-launch": [
            ln("Jan-05 10:00:00.000", "$> nextflow run main.nf", logger="nextflow.cli.Launcher"),
            ln("Jan-05 10:00:00.100", "N E X T F L O W  ~  version 23.10.0", logger="nextflow.cli.CmdRun"),
            ln("Jan-05 10:00:01.000", "No such property: reads for class: Script_1a2b3c", level="ERROR",
               logger="nextflow.cli.Launcher"),
        ],
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["slurm", "local", "google-batch", "failed-launch"])
def test_no_aws_batch_rule_fires_on_a_run_that_did_not_use_aws_batch(tmp_path: Path, kind: str) -> None:
    from batchkit.doctor import doctor, is_aws_batch_rule

    write(tmp_path / ".nextflow.log", _non_aws_logs()[kind])
    found = doctor(tmp_path, env={"HOME": str(tmp_path / "home")})
    assert [f.rule for f in found if is_aws_batch_rule(f)] == []
    expected = "nf-executor-unknown" if kind == "failed-launch" else "nf-not-aws-batch"
    assert expected in {f.rule for f in found}


# --- 25.x/26.x wordings ------------------------------------------------------------------------


def test_25_10_local_run_with_cached_tasks_and_a_relative_trace_file(tmp_path: Path) -> None:
    wd = "/home/u/run/work"
    lines = [
        ln("Dec-07 20:30:46.769", "$> nextflow run main.nf -profile local -resume", logger="nextflow.cli.Launcher"),
        ln("Dec-07 20:30:46.916", "N E X T F L O W  ~  version 25.10.2", logger="nextflow.cli.CmdRun"),
        ln("Dec-07 20:30:47.373", "Launching `https://github.com/nf-core/demo` [pedantic_newton] DSL2 - revision: 5a0ea231de [1.0.0]",
           logger="nextflow.cli.CmdRun"),
        ln("Dec-07 20:30:47.449", "Session UUID: 39696fcd-0000-4000-8000-60fddf8ae549"),
        ln("Dec-07 20:30:47.501", "", logger="nextflow.cli.CmdRun"),
        "  Version: 25.10.2 build 10555",
        "  Created: 28-11-2025 19:24 UTC (19:24 BST)",
        ln("Dec-07 20:30:47.585", "Observer factory (v2): LinObserverFactory"),
        ln("Dec-07 20:30:47.737", "Workflow started -- trace file: results/pipeline_info/execution_trace_2025-12-07_20-30-45.txt",
           logger="nextflow.trace.TraceFileObserver"),
        ln("Dec-07 20:30:49.097", "[warm up] executor > local", logger="nextflow.executor.Executor"),
        ln("Dec-07 20:30:49.300", "[fa/07e74a] Cached process > INDEX (hg38)", level="INFO",
           logger="nextflow.processor.TaskProcessor", thread="Actor Thread 28"),
        ln("Dec-07 20:30:49.489", "[4c/e078ca] Submitted process > EXTRACT (s1)", level="INFO", thread="Task submitter"),
        ln("Dec-07 20:30:52.026", "Task completed > TaskHandler[id: 2; name: EXTRACT (s1); status: COMPLETED; exit: 0; "
           f"error: -; workDir: {wd}/4c/e078cadcc32648f84ab46ddf2c0ea6]", logger="n.processor.TaskPollingMonitor",
           thread="Task monitor"),
        ln("Dec-07 20:30:56.542", "Workflow completed > WorkflowStats[succeededCount=1; failedCount=0; ignoredCount=0; "
           "cachedCount=1; pendingCount=0; submittedCount=0; runningCount=0; retriesCount=0; abortedCount=0; ]",
           logger="n.trace.WorkflowStatsObserver"),
        ln("Dec-07 20:30:56.634", "> Execution complete -- Goodbye", logger="nextflow.script.ScriptRunner"),
    ]  # fmt: skip
    path = write(tmp_path / ".nextflow.log", lines)
    stamp = pd.Timestamp("2025-12-07 20:31", tz="UTC").timestamp()
    os.utime(path, (stamp, stamp))
    run = NextflowRun.from_files(log=path, tz="UTC")
    assert (run.name, run.version, run.state) == ("pedantic_newton", "25.10.2", "completed")
    assert run.executors == ["local"] and run.on_aws_batch is False
    assert run.year == 2025 and run.year_proven  # build date and file time agree
    assert run.log is not None and run.log.trace_file == "results/pipeline_info/execution_trace_2025-12-07_20-30-45.txt"
    status = run.tasks.set_index(TaskCol.HASH)[TaskCol.STATUS].to_dict()
    assert status == {"fa/07e74a": "CACHED", "4c/e078ca": "COMPLETED"}


def test_queues_of_the_trace_and_the_config_together(tmp_path: Path) -> None:
    write(tmp_path / ".nextflow.log", [*head(), *aws_submit("Jun-02 09:01:00.000", "ALIGN (s1)", JOB_A, WD_A, "2e/8b0123")])
    (tmp_path / "trace-20250602-090000.txt").write_text(
        "task_id\thash\tnative_id\tname\tstatus\texit\tsubmit\tqueue\n"
        f"1\t2e/8b0123\t{JOB_A}\tALIGN (s1)\tCOMPLETED\t0\t2025-06-02 09:01:00.000\tspot-q\n"
    )
    (tmp_path / "nextflow.config").write_text("process { queue = 'spot-q'\n withName: 'CALL' { queue = 'big-q' } }\n")
    run = NextflowRun.from_dir(tmp_path, tz="UTC")
    assert run.queues == ["spot-q", "big-q"]  # CALL has not finished: only the config names its queue
    assert run.queue_sources == {"spot-q": "trace (queue column)", "big-q": run.queue_sources["big-q"]}
    assert run.queue_sources["big-q"].startswith(str(tmp_path / "nextflow.config"))


def test_other_runs_are_read_by_the_one_reader_with_bounded_memory(tmp_path: Path) -> None:
    """Other launches' logs are streamed (21.x 'Flow starting' trace line too); a sparse history is cut."""
    other = [
        ln("Jun-01 08:00:00.000", "$> nextflow run main.nf", logger="nextflow.cli.Launcher"),
        ln("Jun-01 08:00:00.100", "Session uuid: 11111111-0000-4000-8000-000000000001"),
        ln("Jun-01 08:00:00.200", "Run name: old_turing"),
        *aws_submit("Jun-01 08:01:00.000", "ALIGN (s9)", JOB_C, WD_C, "4a/ad0123"),
    ]
    write(tmp_path / ".nextflow.log.1", other)
    write(tmp_path / ".nextflow.log", [*head(), *aws_submit("Jun-02 09:01:00.000", "ALIGN (s1)", JOB_A, WD_A, "2e/8b0123")])
    history = tmp_path / ".nextflow" / "history"
    history.parent.mkdir()
    with history.open("wb") as fh:
        fh.write(b"2025-06-01 08:00:00\t1m\told_turing\tOK\tabc\t11111111-0000-4000-8000-000000000001\tnextflow run\n")
        fh.truncate(64 << 20)  # then 64 MiB of zeros
    run = NextflowRun.from_dir(tmp_path, tz="UTC", year=2025)
    olds = [o for o in run.other_runs if o.name == "old_turing"]
    assert olds and olds[0].job_ids == frozenset({JOB_C}) and olds[0].hashes == frozenset({"4a/ad0123"})
    assert list(run.tasks[TaskCol.NATIVE_ID]) == [JOB_A]


def test_named_traces_knows_the_21_x_wording() -> None:
    from batchkit.nextflow.run import named_traces

    text = "\n".join([
        ln("Jul-13 15:12:40.926", "$> nextflow run main.nf -with-trace t1.txt", logger="nextflow.cli.Launcher"),
        ln("Jul-13 15:13:03.681", "Flow starting -- trace file: /x/results/pipeline_info/execution_trace_2022-07-13_15-12-57.txt",
           logger="nextflow.trace.TraceFileObserver"),
    ])  # fmt: skip
    assert named_traces(text) == ["t1.txt", "/x/results/pipeline_info/execution_trace_2022-07-13_15-12-57.txt"]
