"""BatchClient against LocalBatch over real HTTP, with faults injected in the emulator.

The client's clock is the emulator's manual clock and its sleep advances that clock
(``sleep=lb.advance``): a 90-second outage ends because the client's own backoff moves
emulator time past it, and no test sleeps for real. Rates are set high (1000 requests/s of
emulator time) so the budget does not stretch emulator time needlessly; the budget itself is
tested with a fake clock in test_retry.py and measured in benchmarks/bench_client.py.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from batchkit.client import BatchClient
from batchkit.schema import JOB_ACTIVE, SUBMISSION_TAG
from batchkit.sim.localbatch import LocalBatch

QUEUE = "demo-queue"
LONG = ["bash", "-c", "sleep 1000000"]  # never ends within a test
SHORT = ["bash", "-c", "sleep 5"]


@pytest.fixture
def lb() -> Iterator[LocalBatch]:
    with LocalBatch(manual_clock=True, seed=7) as emulator:
        emulator.create_environment(QUEUE, vcpus=256)
        yield emulator


WORKERS = 4


def client_for(lb: LocalBatch, **kw: Any) -> BatchClient:
    kw.setdefault("rate", 1000.0)
    # The workers' waits ADD UP on the emulator's one manual clock (4 threads backing off
    # 20 s each move it 80 s, where real concurrent sleeps would take 20 s), so each call's
    # deadline clock runs up to WORKERS times fast: scale the default 300 s deadline to match.
    kw.setdefault("deadline", 300.0 * WORKERS)
    return BatchClient(
        lb.client(retries={"mode": "standard", "total_max_attempts": 3}),
        clock=lb.clock.now,
        sleep=lb.advance,
        max_workers=WORKERS,
        rng=random.Random(11),
        **kw,
    )


def states(lb: LocalBatch) -> dict[str, str]:
    return {j["jobId"]: j["status"] for j in lb.jobs()}


def settle(lb: LocalBatch, short: int, long: int) -> tuple[list[str], list[str]]:
    """`short` jobs that end (SUCCEEDED) and `long` ones that stay RUNNING/RUNNABLE."""
    done = lb.submit_jobs(short, queue=QUEUE, name="short", command=SHORT)
    live = lb.submit_jobs(long, queue=QUEUE, name="long", command=LONG)
    for _ in range(20):  # short ones go in waves of 256 vCPUs; then long ones fill the CE
        lb.advance(30)
    return done, live


def test_describe_5000_jobs_under_emulator_faults(lb: LocalBatch) -> None:
    done, live = settle(lb, short=300, long=4700)
    truth = states(lb)
    assert Counter(truth.values()) == {"SUCCEEDED": 300, "RUNNING": 256, "RUNNABLE": 4444}
    now = lb.clock.now()
    lb.faults.add(None, "authorizer-500", window=(now, now + 90))  # a 90 s outage, from now
    lb.faults.add("DescribeJobs", "throttle-429", count=15)
    lb.faults.add("DescribeJobs", "drop", count=3)
    lb.faults.add("DescribeJobs", "reset", count=2)
    lb.faults.add("DescribeJobs", "empty", count=4)
    lb.faults.add("DescribeJobs", "authorizer-500", rate=0.3)
    ids = [*done, *live, "00000000-dead-beef-0000-000000000000"]
    random.Random(1).shuffle(ids)
    # Two "empty" answers of the four are {"jobs": []}; with two re-asks no chunk can be
    # fooled into "missing" by them even if both land on it.
    with client_for(lb, empty_rechecks=2) as bc:
        result = bc.describe_jobs(ids)
        stats = bc.stats
    assert result.failed == []
    assert result.missing == ["00000000-dead-beef-0000-000000000000"]
    assert {jid: j["status"] for jid, j in result.jobs.items()} == truth == states(lb)
    assert lb.clock.now() >= now + 90  # the outage ended because our backoff moved the clock
    fired = Counter({k: n for (op, k), n in lb.faults.counts.items()})
    assert fired["authorizer-500"] > 10 and fired["throttle-429"] == 15 and fired["empty"] == 4
    assert stats.errors_by_code["AuthorizerConfigurationException"] == fired["authorizer-500"]
    assert stats.operations["DescribeJobs"].calls == lb.calls["DescribeJobs"]
    assert stats.degraded and "AuthorizerConfigurationException" in stats.summary()


def test_terminate_1000_active_jobs_under_faults(lb: LocalBatch) -> None:
    done, live = settle(lb, short=5, long=1000)
    reason = "batchkit: orphan of run 'wise_hypatia'"
    lb.faults.add("TerminateJobs", "throttle-429", count=5)
    lb.faults.add("TerminateJobs", "drop", count=2)
    lb.faults.add("TerminateJobs", "applied-lost", count=2)  # applied; re-sending is harmless
    lb.faults.add("TerminateJobs", "job-errors", rate=0.3)  # 200 with per-job errors
    lb.faults.add(None, "authorizer-500", rate=0.3)
    now = lb.clock.now()
    lb.faults.add("TerminateJobs", "server-500", window=(now + 1, now + 91))
    ids = [*live, done[0], "11111111-0000-0000-0000-000000000000"]
    with client_for(lb) as bc:
        outcomes = bc.terminate_jobs(ids, reason)
        stats = bc.stats
    assert [o.job_id for o in outcomes] == ids
    by_id = {o.job_id: o for o in outcomes}
    assert all(by_id[j].outcome == "terminated" for j in live)
    # one verification describe per chunk (a few quick tries): under 30% 500s on every call
    # a chunk may stay unverified (status None, terminate's answer kept) — never wrong
    assert {by_id[j].status for j in live} <= {"FAILED", None}
    assert sum(by_id[j].status is None for j in live) <= 3 * 50
    assert by_id[done[0]].outcome == "already_done" and by_id[done[0]].status == "SUCCEEDED"
    assert by_id["11111111-0000-0000-0000-000000000000"].outcome == "not_found"
    jobs = {j["jobId"]: j for j in lb.jobs()}
    assert all(jobs[j]["status"] == "FAILED" and jobs[j]["statusReason"] == reason for j in live)
    assert lb.calls.get("TerminateJob", 0) == 0  # bulk all the way
    # per-job errors were re-driven, and counted
    assert lb.faults.counts[("TerminateJobs", "job-errors")] > 0
    assert stats.operations["TerminateJobs"].errors > 0 and stats.operations["TerminateJobs"].retries > 0


def test_terminate_falls_back_to_terminate_job_when_bulk_is_unknown(lb: LocalBatch) -> None:
    _, live = settle(lb, short=0, long=120)
    lb.unsupported_operations = {"TerminateJobs"}
    lb.faults.add("TerminateJob", "throttle-429", rate=0.2)
    with client_for(lb) as bc:
        outcomes = bc.terminate_jobs(live, "batchkit: test")
        again = bc.terminate_jobs(live[:3], "batchkit: double click")
        stats = bc.stats
    assert {o.outcome for o in outcomes} == {"terminated"} and {o.status for o in outcomes} == {"FAILED"}
    assert {o.outcome for o in again} == {"already_done"}  # idempotent
    assert lb.calls["TerminateJobs"] == 1  # learnt once, then per job
    assert lb.calls["TerminateJob"] >= 120
    assert stats.operations["TerminateJob"].calls == lb.calls["TerminateJob"]
    assert all(j["status"] == "FAILED" for j in lb.jobs() if j["jobId"] in set(live))


def test_cancel_only_acts_on_jobs_that_have_not_started(lb: LocalBatch) -> None:
    _, live = settle(lb, short=0, long=300)  # 256 RUNNING, 44 RUNNABLE
    truth = states(lb)
    lb.faults.add("CancelJobs", "job-errors", rate=0.3)
    with client_for(lb) as bc:
        outcomes = {o.job_id: o for o in bc.cancel_jobs(live, "batchkit: cancel")}
    running = [j for j in live if truth[j] == "RUNNING"]
    waiting = [j for j in live if truth[j] == "RUNNABLE"]
    assert len(running) == 256 and len(waiting) == 44
    # CancelJob quietly does nothing to a RUNNING job: not sent, reported as an error
    assert all(outcomes[j].outcome == "error" and outcomes[j].error_code == "NotCancellable" for j in running)
    assert all(outcomes[j].outcome == "cancelled" and outcomes[j].status == "FAILED" for j in waiting)
    after = states(lb)
    assert all(after[j] == "RUNNING" for j in running)


@pytest.mark.parametrize("kind", ["applied-lost", "applied-500", "drop", "reset"])
def test_submit_leaves_exactly_one_job_per_request(lb: LocalBatch, kind: str) -> None:
    lb.faults.add("SubmitJob", kind, rate=0.5)
    lb.faults.add("ListJobs", "authorizer-500", rate=0.3)  # the look-up itself fails at times
    lb.faults.add("DescribeJobs", "throttle-429", rate=0.3)
    with client_for(lb) as bc:
        results = [
            bc.submit_job(job_name=f"task-{i}", job_queue=QUEUE, job_definition="nf-demo",
                          containerOverrides={"command": LONG}, tags={"run": "r1"})
            for i in range(25)
        ]
        stats = bc.stats
    names = Counter(j["jobName"] for j in lb.jobs())
    assert names == {f"task-{i}": 1 for i in range(25)}
    fired = lb.faults.counts.get(("SubmitJob", kind), 0)
    assert fired > 0
    applied = kind.startswith("applied")
    assert sum(r["deduplicated"] for r in results) == (fired if applied else 0)
    jobs = {j["jobId"]: j for j in lb.jobs()}
    for r in results:
        assert jobs[r["jobId"]]["tags"] == {"run": "r1", SUBMISSION_TAG: r["submissionId"]}
    assert stats.operations["SubmitJob"].calls == lb.calls["SubmitJob"]


def test_list_jobs_paginates_with_real_filter_semantics(lb: LocalBatch) -> None:
    settle(lb, short=1200, long=1500)
    t_mid = lb.clock.now()
    lb.advance(10)
    later = lb.submit_jobs(150, queue=QUEUE, name="late", command=LONG)
    lb.advance(1)
    lb.faults.add("ListJobs", "throttle-429", count=5)
    lb.faults.add("ListJobs", "empty-list", count=1)  # a final page that lies
    lb.faults.add("ListJobs", "authorizer-500", rate=0.2)
    truth = states(lb)
    with client_for(lb) as bc:
        everything = bc.list_jobs(QUEUE)
        active = bc.list_jobs(QUEUE, statuses=sorted(JOB_ACTIVE))
        recent = bc.list_jobs(QUEUE, created_after=t_mid + 5)
        recent_running = bc.list_jobs(QUEUE, created_after=t_mid + 5, statuses=["RUNNABLE"], name_prefix="LATE-1")
        by_name = bc.list_jobs(QUEUE, name_prefix="short-11", statuses=["SUCCEEDED"])
    assert sorted(s["jobId"] for s in everything) == sorted(truth)
    assert len({s["jobId"] for s in everything}) == len(everything)
    assert sorted(s["jobId"] for s in active) == sorted(j for j, s in truth.items() if s in JOB_ACTIVE)
    assert sorted(s["jobId"] for s in recent) == sorted(later)
    assert {s["jobName"] for s in recent_running} == {f"late-{i}" for i in range(150) if str(i).startswith("1")}
    assert {s["jobName"] for s in by_name} == {f"short-{i}" for i in range(1200) if str(i).startswith("11")}


def test_describe_queues_environments_definitions(lb: LocalBatch) -> None:
    lb.faults.add(None, "server-500", count=3)
    with client_for(lb) as bc:
        assert [q["jobQueueName"] for q in bc.describe_job_queues()] == [QUEUE]
        assert bc.describe_job_queues(["nope"]) == []
        assert bc.check_queue(QUEUE)["state"] == "ENABLED"
        assert [c["computeEnvironmentName"] for c in bc.describe_compute_environments([f"{QUEUE}-ce"])] == [
            f"{QUEUE}-ce"
        ]
        assert "nf-demo" in {d["jobDefinitionName"] for d in bc.describe_job_definitions()}
        assert bc.stats.errors_by_code["ServerException"] == 3


def test_empty_listings_of_a_quiet_queue_do_not_read_as_degraded() -> None:
    """Polling an empty queue is normal: the re-asked empty pages must not count as retries."""
    from batchkit.client import BatchClient
    from batchkit.sim import LocalBatch

    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment("quiet", vcpus=4)
        client = BatchClient(client=lb.client(), sleep=lb.advance, rate=1000.0)
        for _ in range(8):
            assert client.list_jobs("quiet") == []
            assert client.describe_jobs(["no-such-job"]).missing == ["no-such-job"]
        assert not client.stats.degraded, client.stats.summary()
        assert client.stats.summary() == "healthy"
        # ...while an empty answer proven wrong still counts.
        lb.submit_jobs(3, queue="quiet")
        lb.faults.add("ListJobs", "empty", count=1)
        assert len(client.list_jobs("quiet", statuses=["SUBMITTED", "PENDING", "RUNNABLE"])) == 3
        assert client.stats.operations["ListJobs"].retries >= 1
        client.close()
