"""The .nextflow.log reader: a real SLURM log, and AWS Batch logs in each Nextflow wording."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import real_fixture

from batchkit.errors import NextflowReadError
from batchkit.nextflow import read_log
from batchkit.schema import TASK_COLUMNS, TaskCol

SESSION = "5f0a7c1e-3b1d-4c2a-9e7f-0123456789ab"
WORK = "s3://bucket/work"
JOB_A = "70af3d53-8070-45a6-96f4-fd37580b9d00"
JOB_B = "81bf4e64-9181-46b7-87a5-0e48691cae11"
JOB_C = "92c05f75-a292-47c8-98b6-1f597a2dbf22"


def line(ts: str, thread: str, level: str, logger: str, msg: str) -> str:
    return f"{ts} [{thread}] {level:<5} {logger} - {msg}"


def aws_log(*, session: str = SESSION, run: str = "tender_curie", tail: list[str] | None = None) -> str:
    """A 24.x-style AWS Batch log: launch, submits, a retry, a cache hit, then ``tail``."""
    lines = [
        line("Mar-03 10:00:00.001", "main", "DEBUG", "nextflow.cli.Launcher", "$> nextflow run main.nf -with-trace"),
        line("Mar-03 10:00:00.500", "main", "INFO", "nextflow.cli.CmdRun", "N E X T F L O W  ~  version 24.04.4"),
        line("Mar-03 10:00:00.600", "main", "INFO", "nextflow.cli.CmdRun", f"Launching `main.nf` [{run}] DSL2 - revision: 4c1a2b3d4e"),
        line("Mar-03 10:00:01.000", "main", "DEBUG", "nextflow.Session", f"Session UUID: {session}"),
        line("Mar-03 10:00:01.000", "main", "DEBUG", "nextflow.Session", f"Run name: {run}"),
        line("Mar-03 10:00:01.100", "main", "DEBUG", "nextflow.Session", f"Work-dir: {WORK} [S3]"),
        line("Mar-03 10:00:05.000", "Task submitter", "DEBUG", "n.c.aws.batch.AwsBatchTaskHandler",
             f"[AWS BATCH] Process `ALIGN (s1)` submitted > job={JOB_A}; work-dir={WORK}/2e/8b0123456789abcdef0123456789ab"),
        line("Mar-03 10:00:05.001", "Task submitter", "INFO", "nextflow.Session", "[2e/8b0123] Submitted process > ALIGN (s1)"),
        line("Mar-03 10:00:06.000", "Task submitter", "DEBUG", "n.c.aws.batch.AwsBatchTaskHandler",
             f"[AWS BATCH] Process `ALIGN (s2)` submitted > job={JOB_B}; work-dir={WORK}/3f/9c0123456789abcdef0123456789ab"),
        line("Mar-03 10:00:06.001", "Task submitter", "INFO", "nextflow.Session", "[3f/9c0123] Submitted process > ALIGN (s2)"),
        line("Mar-03 10:00:06.500", "Actor Thread 3", "INFO", "nextflow.processor.TaskProcessor", "[aa/bb0011] Cached process > INDEX (ref)"),
        line("Mar-03 10:30:00.000", "Task monitor", "DEBUG", "n.processor.TaskPollingMonitor",
             f"Task completed > TaskHandler[jobId: {JOB_A}; id: 1; name: ALIGN (s1); status: COMPLETED; exit: 1; error: -; workDir: {WORK}/2e/8b0123456789abcdef0123456789ab]"),
        line("Mar-03 10:30:01.000", "Task submitter", "DEBUG", "n.c.aws.batch.AwsBatchTaskHandler",
             f"[AWS BATCH] Process `ALIGN (s1)` submitted > job={JOB_C}; work-dir={WORK}/4a/ad0123456789abcdef0123456789ab"),
        line("Mar-03 10:30:01.001", "Task submitter", "INFO", "nextflow.Session", "[4a/ad0123] Re-submitted process > ALIGN (s1)"),
    ]  # fmt: skip
    return "\n".join(lines + (tail or [])) + "\n"


def abort_tail(kill_lines: list[str]) -> list[str]:
    return [
        line("Mar-03 11:00:00.000", "AWSBatch-executor-3", "ERROR", "nextflow.processor.TaskProcessor",
             "Error executing process > 'ALIGN (s2)'"),
        "com.amazonaws.services.batch.model.AWSBatchException: Internal failure (Service: AWSBatch; Status Code: 500; Error Code: AuthorizerConfigurationException)",
        "\tat com.amazonaws.http.AmazonHttpClient.handleErrorResponse(AmazonHttpClient.java:1879)",
        line("Mar-03 11:00:00.100", "Task monitor", "DEBUG", "nextflow.Session",
             "Session aborted -- Cause: Internal failure (Service: AWSBatch; Status Code: 500; Error Code: AuthorizerConfigurationException)"),
        line("Mar-03 11:00:00.300", "main", "WARN", "n.processor.TaskPollingMonitor", "Killing running tasks (2)"),
        *kill_lines,
    ]  # fmt: skip


# --- the real log -----------------------------------------------------------------------


def test_slurm_sigint_abort_log_reads_exactly() -> None:
    info = read_log(real_fixture("slurm-sigint-abort.nextflow.log"), tz="America/Los_Angeles", year=2020)
    assert info.version == "19.12.0-edge"
    assert info.run_name == "wise_hypatia"
    assert info.session_id == "c7e3c860-e222-413c-bc51-aec6a364d6e3"
    assert info.work_dir == "/home/sravisha/projects/NextFlow/work"
    assert len(info.tasks) == 5
    assert tuple(info.tasks.columns) == (*TASK_COLUMNS, TaskCol.NF_REASON)
    assert set(info.tasks[TaskCol.HASH]) == {"16/b7af3d", "92/94d0c1", "97/10a71c", "d9/281125", "3a/0d5791"}
    assert info.abort_cause == "SIGINT"
    assert info.abort_time == pd.Timestamp("2020-01-24 15:37:28.932", tz="America/Los_Angeles")
    assert info.abort_time is not None and str(info.abort_time.tz) == "UTC"
    assert info.killed_count == 3
    assert info.completed  # "Execution complete -- Goodbye" follows the abort
    assert info.launch_time == pd.Timestamp("2020-01-24 12:49:23.194", tz="America/Los_Angeles")
    # the SLURM submit lines carry the job id; the DEBUG "Task completed" lines the end
    by_hash = info.tasks.set_index(TaskCol.HASH)
    assert by_hash.loc["92/94d0c1", TaskCol.NATIVE_ID] == "44662446"
    assert by_hash.loc["92/94d0c1", TaskCol.STATUS] == "COMPLETED"
    # "Killing pending tasks (3)": the three in flight then were killed by Nextflow
    assert by_hash.loc["3a/0d5791", TaskCol.STATUS] == "ABORTED"
    assert by_hash.loc["3a/0d5791", TaskCol.NF_REASON].startswith("killed by Nextflow")
    assert (info.tasks[TaskCol.SOURCE] == "log").all()


def test_year_from_a_reference_date() -> None:
    info = read_log(
        real_fixture("slurm-sigint-abort.nextflow.log"),
        tz="America/Los_Angeles",
        reference_time=pd.Timestamp("2020-01-24 21:00", tz="UTC"),
    )
    assert info.year == 2020 and info.year_source == "reference"


# --- AWS Batch logs -----------------------------------------------------------------------


def test_aws_submit_lines_give_job_ids_work_dirs_retries_and_cache(tmp_path: Path) -> None:
    path = tmp_path / ".nextflow.log"
    path.write_text(aws_log())
    info = read_log(path, tz="UTC", year=2025)
    assert (info.version, info.run_name, info.session_id) == ("24.04.4", "tender_curie", SESSION)
    assert info.work_dir == WORK
    tasks = info.tasks.set_index(TaskCol.HASH)
    assert tasks.loc["3f/9c0123", TaskCol.NATIVE_ID] == JOB_B
    assert tasks.loc["3f/9c0123", TaskCol.WORKDIR] == f"{WORK}/3f/9c0123456789abcdef0123456789ab"
    assert tasks.loc["3f/9c0123", TaskCol.STATUS] == "SUBMITTED"
    assert tasks.loc["3f/9c0123", TaskCol.SUBMIT] == pd.Timestamp("2025-03-03 10:00:06", tz="UTC")
    assert tasks.loc["2e/8b0123", TaskCol.STATUS] == "FAILED"  # exit 1 in "Task completed"
    assert tasks.loc["2e/8b0123", TaskCol.TASK_ID] == 1
    assert tasks.loc["4a/ad0123", TaskCol.ATTEMPT] == 2  # "Re-submitted process"
    assert tasks.loc["4a/ad0123", TaskCol.NATIVE_ID] == JOB_C
    assert tasks.loc["aa/bb0011", TaskCol.STATUS] == "CACHED"
    assert (tasks.loc["3f/9c0123", TaskCol.PROCESS], tasks.loc["3f/9c0123", TaskCol.TAG]) == ("ALIGN", "s2")
    assert info.abort_cause is None and not info.completed and info.end_time is None
    assert info.last_line_time == pd.Timestamp("2025-03-03 10:30:01.001", tz="UTC")


def test_pre_22_aws_submit_line_without_process_name(tmp_path: Path) -> None:
    path = tmp_path / ".nextflow.log"
    path.write_text(
        line("Mar-03 10:00:05.000", "Task submitter", "DEBUG", "n.c.aws.batch.AwsBatchTaskHandler",
             f"[AWS BATCH] submitted > job={JOB_A}; work-dir={WORK}/2e/8b0123456789abcdef0123456789ab") + "\n"
    )  # fmt: skip
    info = read_log(path, tz="UTC", year=2019)
    assert info.tasks[TaskCol.NATIVE_ID].tolist() == [JOB_A]
    assert info.tasks[TaskCol.HASH].tolist() == ["2e/8b0123"]


def test_abort_with_pre_25_kill_wording_and_reaper_give_up(tmp_path: Path) -> None:
    tail = abort_tail(
        [
            line("Mar-03 11:00:01.000", "AWSBatch-reaper-1", "DEBUG", "n.c.aws.batch.AwsBatchTaskHandler",
                 f"[AWS BATCH] killing job={JOB_B}; response={{}}"),
            line("Mar-03 11:00:02.000", "main", "INFO", "nextflow.util.ThreadPoolHelper",
                 "[AWS BATCH] Waiting jobs reaper to complete (1 jobs to be terminated)"),
            line("Mar-03 12:00:02.000", "main", "WARN", "nextflow.util.ThreadPoolManager",
                 "[AWS BATCH] Exiting before jobs reaper thread pool complete -- Some jobs may not be terminated"),
        ]
    )  # fmt: skip
    path = tmp_path / ".nextflow.log"
    path.write_text(aws_log(tail=tail))
    info = read_log(path, tz="UTC", year=2025)
    assert info.abort_cause is not None and "AuthorizerConfigurationException" in info.abort_cause
    assert info.abort_time == pd.Timestamp("2025-03-03 11:00:00.100", tz="UTC")
    assert info.killed_count == 2
    assert info.killed_job_ids == [JOB_B]
    assert info.reaper_pending == 1 and info.reaper_gave_up
    assert not info.completed


def test_25_04_kill_wording(tmp_path: Path) -> None:
    tail = abort_tail(
        [
            line("Mar-03 11:00:01.000", "Task monitor", "DEBUG", "n.c.aws.batch.AwsBatchTaskHandler",
                 f"[AWS BATCH] cleanup = terminating job {JOB_B}"),
            line("Mar-03 11:00:01.000", "Task monitor", "DEBUG", "n.c.aws.batch.AwsBatchTaskHandler",
                 f"[AWS BATCH] cleanup = terminating job {JOB_C}"),
            line("Mar-03 11:00:01.500", "AWSBatch-reaper-1", "DEBUG", "n.c.aws.batch.AwsBatchTaskHandler",
                 f"[AWS BATCH] cleanup = killing job {JOB_B}"),
            line("Mar-03 11:00:03.000", "main", "DEBUG", "nextflow.script.ScriptRunner", "> Execution complete -- Goodbye"),
        ]
    )  # fmt: skip
    path = tmp_path / ".nextflow.log"
    path.write_text(aws_log(tail=tail))
    info = read_log(path, tz="UTC", year=2025)
    assert info.kill_requested_job_ids == [JOB_B, JOB_C]
    assert info.killed_job_ids == [JOB_B]  # JOB_C's TerminateJob was never answered
    assert info.completed and info.end_time == pd.Timestamp("2025-03-03 11:00:03", tz="UTC")
    assert not info.reaper_gave_up


def test_rotated_logs_same_session_are_merged_oldest_first(tmp_path: Path) -> None:
    old = tmp_path / ".nextflow.log.1"
    old.write_text(aws_log(run="first_try", tail=abort_tail([])))
    new = tmp_path / ".nextflow.log"
    resumed = [
        line("Mar-03 12:00:00.000", "main", "INFO", "nextflow.cli.CmdRun", "N E X T F L O W  ~  version 24.04.4"),
        line("Mar-03 12:00:00.100", "main", "INFO", "nextflow.cli.CmdRun", "Launching `main.nf` [second_try] DSL2 - revision: 4c1a2b3d4e"),
        line("Mar-03 12:00:00.200", "main", "DEBUG", "nextflow.Session", f"Session UUID: {SESSION}"),
        line("Mar-03 12:00:05.000", "Actor Thread 1", "INFO", "nextflow.processor.TaskProcessor", "[2e/8b0123] Cached process > ALIGN (s1)"),
    ]  # fmt: skip
    new.write_text("\n".join(resumed) + "\n")
    info = read_log([new, old], tz="UTC", year=2025)  # any order in: read oldest first
    assert info.paths == [str(old), str(new)]
    assert info.run_name == "second_try"
    assert info.abort_cause is None  # the abort belongs to the earlier launch
    tasks = info.tasks.set_index(TaskCol.HASH)
    assert tasks.loc["2e/8b0123", TaskCol.STATUS] == "CACHED"  # the later launch wins
    assert tasks.loc["3f/9c0123", TaskCol.NATIVE_ID] == JOB_B  # only the earlier launch knew it


def test_rotated_log_of_another_session_is_ignored(tmp_path: Path) -> None:
    old = tmp_path / ".nextflow.log.1"
    old.write_text(aws_log(session="00000000-0000-0000-0000-000000000000", run="other"))
    new = tmp_path / ".nextflow.log"
    new.write_text(aws_log().replace("Mar-03", "Mar-04"))
    info = read_log([old, new], tz="UTC", year=2025)
    assert info.ignored_paths == [str(old)]
    assert info.paths == [str(new)]


# --- years ------------------------------------------------------------------------------


def test_december_to_january_rollover(tmp_path: Path) -> None:
    path = tmp_path / ".nextflow.log"
    path.write_text(
        line("Dec-31 23:59:59.000", "main", "INFO", "nextflow.cli.CmdRun", "N E X T F L O W  ~  version 24.10.0")
        + "\n"
        + line("Jan-01 00:00:01.000", "main", "DEBUG", "nextflow.script.ScriptRunner", "> Execution complete -- Goodbye")
        + "\n"
    )  # fmt: skip
    given = read_log(path, tz="UTC", year=2024)
    assert given.launch_time == pd.Timestamp("2024-12-31 23:59:59", tz="UTC")
    assert given.end_time == pd.Timestamp("2025-01-01 00:00:01", tz="UTC")
    # without a year: from the file's modification time (the last line was written before it)
    mtime = pd.Timestamp("2025-01-01 00:00:05", tz="UTC").timestamp()
    os.utime(path, (mtime, mtime))
    guessed = read_log(path, tz="UTC")
    assert guessed.year == 2024 and guessed.year_source == "file time" and not guessed.year_proven
    assert guessed.end_time == pd.Timestamp("2025-01-01 00:00:01", tz="UTC")


def test_feb_29_outside_a_leap_year_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / ".nextflow.log"
    path.write_text("junk\n" + line("Feb-29 10:00:00.000", "main", "INFO", "x", "hello") + "\n")
    with pytest.raises(NextflowReadError, match="Feb-29") as info:
        read_log(path, tz="UTC", year=2023)
    assert info.value.line == 2
    assert read_log(path, tz="UTC", year=2024).launch_time == pd.Timestamp("2024-02-29 10:00", tz="UTC")


def test_not_a_log(tmp_path: Path) -> None:
    path = tmp_path / ".nextflow.log"
    path.write_text("task_id\thash\n1\tab/cdef12\n")
    with pytest.raises(NextflowReadError, match="not a Nextflow log") as info:
        read_log(path)
    assert info.value.path == str(path)
    with pytest.raises(NextflowReadError, match="no such log file"):
        read_log(tmp_path / "missing.log")
