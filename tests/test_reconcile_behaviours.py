"""Every simulated Nextflow behaviour reconciles, through Tracker.refresh, to its ground truth.

Real parts end to end: SimulatedNextflow drives the LocalBatch emulator over HTTP and
writes a real launch dir (trace + .nextflow.log); NextflowRun reads it back; the real
BatchClient polls the emulator through boto3; the Tracker reconciles. The same must
hold when 30% of the API calls answer HTTP 500 (the AuthorizerConfigurationException
bursts of nextflow-io/nextflow#4709): the client's retries absorb them, and the tracker
never turns an unanswered job into a false verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batchkit.client import BatchClient
from batchkit.nextflow import NextflowRun
from batchkit.schema import JOB_ACTIVE, JobCol, RecCol
from batchkit.sim import LocalBatch
from batchkit.sim.nextflow import Pipeline, SimulatedNextflow
from batchkit.tracker import Tracker

QUEUE = "demo-queue"
WORK = "s3://bucket/work"
BEHAVIOURS = ["healthy", "24.02", "24.12", "crash", "post-abort-submit", "spot-retries"]
#: Long ALIGN tasks so jobs are still running when Nextflow gives up (as in #5516).
DURATIONS = {"FASTQC": 90.0, "ALIGN": 4 * 3600.0, "MERGE": 600.0}
#: The behaviours that only show when DescribeJobs answers 500s for a while.
NEEDS_BURST = {"24.02", "24.12"}


class NoSleep:
    """The BatchClient's clock and sleep: retries back off on this clock, never for real."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Scenario:
    batch: LocalBatch
    launch_dir: Path
    truth: Any


@pytest.fixture(scope="module", params=BEHAVIOURS)
def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    """One simulated run per behaviour, shared by the clean and the faulted test."""
    behavior = request.param
    launch_dir = tmp_path_factory.mktemp(f"run-{behavior}") / "launch"
    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment(queue=QUEUE, vcpus=256)
        truth = simulate(lb, launch_dir, behavior)
        yield Scenario(lb, launch_dir, truth)


def simulate(lb: LocalBatch, launch_dir: Path, behavior: str, **kw: Any) -> Any:
    """Run one simulated Nextflow to its end on ``lb``; the burst (if any) is removed after."""
    burst = None
    if behavior in NEEDS_BURST:
        t0 = lb.clock.now()
        burst = lb.faults.add("DescribeJobs", "authorizer-500", window=(t0 + 300.0, t0 + 1200.0))
    sim = SimulatedNextflow(
        lb.client(retries={"total_max_attempts": 1}),
        launch_dir=launch_dir,
        work_dir=kw.pop("work_dir", WORK),
        queue=QUEUE,
        pipeline=Pipeline(n_tasks=kw.pop("n_tasks", 12), durations=DURATIONS, seed=0),
        behavior=behavior,
        batch=lb,
        poll_interval=60.0,
        **kw,
    )
    truth = sim.run()
    if burst is not None:
        lb.faults.remove(burst)
    return truth


def client_for(lb: LocalBatch, timing: NoSleep) -> BatchClient:
    return BatchClient(endpoint_url=lb.endpoint_url, clock=timing.clock, sleep=timing.sleep)


def job_verdicts(frame: pd.DataFrame, verdict: str) -> set[str]:
    rows = frame[(frame[RecCol.VERDICT] == verdict) & frame[JobCol.JOB_ID].notna()]
    return set(rows[JobCol.JOB_ID].astype(str))


def active(frame: pd.DataFrame, verdict: str) -> set[str]:
    rows = frame[
        (frame[RecCol.VERDICT] == verdict) & frame[RecCol.BATCH_STATUS].isin(sorted(JOB_ACTIVE))
    ]
    return set(rows[JobCol.JOB_ID].astype(str))


@pytest.mark.parametrize("fault_rate", [0.0, 0.3], ids=["clean", "30pct-500s"])
def test_behaviour_reconciles_to_ground_truth(scenario: Scenario, fault_rate: float) -> None:
    batch, truth = scenario.batch, scenario.truth
    behavior = truth.behavior
    rules = []
    if fault_rate:
        # 30% of every call answers 500; the first DescribeJobs surely does, so the test
        # cannot pass without the client's retries doing their job.
        rules.append(batch.faults.add("DescribeJobs", "authorizer-500", count=1))
        rules.append(batch.faults.add(None, "authorizer-500", rate=fault_rate))
    try:
        timing = NoSleep()
        client = client_for(batch, timing)
        run = NextflowRun.from_dir(scenario.launch_dir)
        tracker = Tracker(run, client, queues=[QUEUE], ledger=False, reload_run=False)
        snap = tracker.refresh()
        stats = client.stats
    finally:
        for rule in rules:
            batch.faults.remove(rule)
    assert not snap.degraded, snap.error
    frame = snap.frame

    running = {j["jobId"] for j in batch.jobs() if j["status"] in JOB_ACTIVE}
    abandoned = set(truth.abandoned_job_ids) & running  # the ones still burning money
    untracked = set(truth.untracked_job_ids)
    if behavior == "crash":
        # After a kill -9 the log just stops: nothing on disk says the run is over, so its
        # in-flight jobs are still Nextflow's ("alive"), never an orphan by proof; they are
        # exactly what a forced kill would take.
        assert job_verdicts(frame, "orphan") == set()
        forced = {k.job_id for k in tracker.plan(force=True)}
        assert forced == abandoned | (untracked & running), behavior
    else:
        # Submissions after the abort are in the log (nextflow-io/nextflow#7445), so their
        # tasks are the run's, still SUBMITTED in an aborted run: orphans, proven by record.
        logged = untracked if behavior == "post-abort-submit" else set()
        assert job_verdicts(frame, "orphan") == abandoned | (logged & running), behavior
        untracked = untracked - logged
    assert job_verdicts(frame, "untracked") == untracked, behavior
    killable = set(
        frame.loc[frame[RecCol.KILLABLE].fillna(False).astype(bool), JobCol.JOB_ID].astype(str)
    )
    expected = untracked & running if behavior == "crash" else abandoned | (set(truth.untracked_job_ids) & running)
    assert killable == expected, behavior
    retried = set(frame.loc[frame[RecCol.BATCH_RETRIES].fillna(0) > 0, JobCol.JOB_ID].astype(str))
    assert retried == set(truth.spot_retried_job_ids), behavior
    # and counted: every try Batch made beyond the first, from the emulator's own record
    ours = truth.job_ids | set(truth.untracked_job_ids)
    extra = sum(
        max(len(j.get("attempts") or []) + (j["status"] in {"STARTING", "RUNNING"}) - 1, 0)
        for j in batch.jobs()
        if j["jobId"] in ours
    )
    assert snap.summary["batch_retries"] == extra, behavior
    if behavior == "spot-retries":
        assert extra > 0
    if behavior == "healthy":
        assert set(frame[RecCol.VERDICT]) == {"ok"}
    if behavior in {"24.02", "post-abort-submit"}:
        assert abandoned or truth.untracked_job_ids, "the behaviour must leave something behind"
    if fault_rate:
        assert stats.retries > 0, "the injected 500s never reached the client"
    client.close()
