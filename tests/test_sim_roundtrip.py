"""Round trip: for every simulated behaviour, what the readers rebuild from the artefacts
(trace+log, log only, weblog only, the launch dir) agrees with the simulator's ground truth.

Each behaviour runs once (module fixture) against LocalBatch on a manual clock, with a
real WeblogReceiver taking the POSTs over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from batchkit.nextflow import NextflowRun, WeblogReceiver
from batchkit.schema import TaskCol
from batchkit.sim.localbatch import LocalBatch
from batchkit.sim.nextflow import BEHAVIORS, GroundTruth, Pipeline, SimulatedNextflow

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
ALIVE = {"SUBMITTED", "RUNNING"}
SOURCES = ("trace+log", "log", "weblog", "dir")


@pytest.fixture(scope="module", params=BEHAVIORS)
def simulated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GroundTruth, WeblogReceiver]]:
    behavior: str = request.param
    launch_dir = tmp_path_factory.mktemp(behavior.replace(".", "_"))
    receiver = WeblogReceiver().start()
    try:
        with LocalBatch(manual_clock=True, start_time=T0, seed=3) as lb:
            lb.create_environment("demo-queue", vcpus=512)
            if behavior in ("24.02", "24.12"):
                lb.faults.add("DescribeJobs", "authorizer-500", window=(T0 + 200, T0 + 1200))
            align = {"24.02": 7200.0, "24.12": 7200.0, "post-abort-submit": 7200.0, "crash": 600.0}
            durations = {"FASTQC": 60.0, "ALIGN": align.get(behavior, 240.0), "MERGE": 60.0}
            pipeline = Pipeline(
                n_tasks=13, durations=durations, seed=2,
                fail_tasks=("ALIGN (sample_01:2)",) if behavior == "healthy" else (),
            )  # fmt: skip
            truth = SimulatedNextflow(
                lb.client(retries={"total_max_attempts": 1}),
                launch_dir=launch_dir,
                behavior=behavior,
                pipeline=pipeline,
                batch=lb,
                poll_interval=30.0,
                weblog_url=receiver.url,
            ).run()
        # every POST was answered before run() went on, so the receiver has them all
        yield truth, receiver
    finally:
        receiver.stop()


_RUNS: dict[tuple[str, str], NextflowRun] = {}


def _read(source: str, truth: GroundTruth, receiver: WeblogReceiver) -> NextflowRun:
    """Read once per (behaviour, source); the artefacts do not change after the run."""
    key = (truth.behavior, source)
    if key not in _RUNS:
        _RUNS[key] = _read_now(source, truth, receiver)
    return _RUNS[key]


def _read_now(source: str, truth: GroundTruth, receiver: WeblogReceiver) -> NextflowRun:
    if source == "trace+log":
        return NextflowRun.from_files(trace=truth.trace_file, log=truth.log_file, tz="UTC")
    if source == "log":
        return NextflowRun.from_files(log=truth.log_file, tz="UTC")
    if source == "weblog":
        return NextflowRun.from_files(weblog=receiver, tz="UTC")
    return NextflowRun.from_dir(truth.launch_dir, tz="UTC")


def _expected_status(task: dict[str, Any], source: str) -> set[str]:
    """What each source can know about a task's status."""
    nf = task["nf_status"]
    if source == "weblog":
        return {nf}  # every status change is POSTed
    # The log records submissions and "Task completed" lines, never a start: a task still
    # alive (or killed at the end) reads as SUBMITTED; a kill line names its job id.
    from_log = {nf} if nf in ("COMPLETED", "FAILED") else ALIVE | ({"ABORTED"} if task["killed"] else set())
    if source == "log" or task["trace_status"] is None:
        return from_log
    return {task["trace_status"]}


@pytest.mark.parametrize("source", SOURCES)
def test_every_task_agrees_with_the_ground_truth(
    simulated: tuple[GroundTruth, WeblogReceiver], source: str
) -> None:
    truth, receiver = simulated
    run = _read(source, truth, receiver)
    tasks = run.tasks
    # Submissions after the abort reach the log (nextflow-io/nextflow#7445), not the
    # trace or Nextflow's task table: the log readers see those tasks too.
    late = truth.untracked_job_ids if truth.behavior == "post-abort-submit" else set()
    late_hashes = set(tasks.loc[tasks[TaskCol.NATIVE_ID].isin(list(late)).fillna(False), TaskCol.HASH])
    if late and source in ("trace+log", "log", "dir"):
        assert late <= set(tasks[TaskCol.NATIVE_ID].dropna()), truth.behavior
    assert set(tasks[TaskCol.HASH]) - late_hashes == {t["hash"] for t in truth.tasks}, truth.behavior
    by_hash = {r[TaskCol.HASH]: r for r in tasks.to_dict("records")}
    for t in truth.tasks:
        row = by_hash[t["hash"]]
        where = f"{truth.behavior}/{source}: task {t['name']}"
        assert row[TaskCol.NATIVE_ID] == t["job_id"], where
        assert row[TaskCol.NAME] == t["name"], where
        assert row[TaskCol.PROCESS] == t["process"], where
        if not pd.isna(row[TaskCol.TASK_ID]):
            assert row[TaskCol.TASK_ID] == t["task_id"], where
        if not pd.isna(row[TaskCol.WORKDIR]):
            assert row[TaskCol.WORKDIR] == t["workdir"], where
        assert row[TaskCol.STATUS] in _expected_status(t, source), f"{where}: {row[TaskCol.STATUS]}"
        if t["status"] in ("COMPLETED", "FAILED") and not pd.isna(row[TaskCol.EXIT]):
            assert row[TaskCol.EXIT] == t["exit"], where
    # jobs Nextflow never recorded stay unknown to every reader
    assert not set(tasks[TaskCol.NATIVE_ID].dropna()) & (truth.untracked_job_ids - late)


@pytest.mark.parametrize("source", SOURCES)
def test_the_runs_end_state_agrees_with_the_ground_truth(
    simulated: tuple[GroundTruth, WeblogReceiver], source: str
) -> None:
    truth, receiver = simulated
    run = _read(source, truth, receiver)
    where = f"{truth.behavior}/{source}"
    assert run.state == truth.run_state, where
    assert run.name == truth.run_name, where
    assert run.session_id == truth.session_id, where
    assert run.work_dir == truth.work_dir, where
    assert run.version == truth.version, where
    if truth.run_state == "aborted":
        assert run.abort_cause == truth.abort_cause, where
        assert truth.end_time is not None and run.abort_time is not None
        assert abs(run.abort_time - pd.Timestamp(truth.end_time, unit="s", tz="UTC")) < pd.Timedelta("1s"), where
    else:
        assert run.abort_cause is None, where
    if truth.run_state == "completed":
        assert run.end_time is not None and truth.end_time is not None
        assert abs(run.end_time - pd.Timestamp(truth.end_time, unit="s", tz="UTC")) < pd.Timedelta("1s"), where
    if truth.run_state == "alive":
        assert run.end_time is None, where
    assert run.launch_time is not None
    assert abs(run.launch_time - pd.Timestamp(T0, unit="s", tz="UTC")) < pd.Timedelta("1s"), where


def test_the_log_names_the_jobs_nextflow_killed(simulated: tuple[GroundTruth, WeblogReceiver]) -> None:
    truth, _ = simulated
    run = NextflowRun.from_files(log=truth.log_file, tz="UTC")
    assert run.log is not None
    assert set(run.log.killed_job_ids) == truth.killed_by_nf, truth.behavior
    in_queue = [t for t in truth.tasks if t["status"] == "ABORTED"]
    assert run.log.killed_count == (len(in_queue) or None), truth.behavior


def test_the_abandoned_jobs_are_visible_as_alive_tasks_of_a_finished_run(
    simulated: tuple[GroundTruth, WeblogReceiver],
) -> None:
    """The mismatch batchkit exists to find: Nextflow still lists them alive, yet it has stopped."""
    truth, receiver = simulated
    run = NextflowRun.from_files(trace=truth.trace_file, log=truth.log_file, weblog=receiver, tz="UTC")
    alive = set(run.tasks.loc[run.tasks[TaskCol.STATUS].isin(list(ALIVE)), TaskCol.NATIVE_ID].dropna())
    assert truth.abandoned_job_ids <= alive, truth.behavior
    if truth.run_state == "completed":
        assert not alive and not truth.abandoned_job_ids
