"""LocalBatch: real boto3 over real HTTP against the emulator, on a manual clock.

Nothing here sleeps for emulator time: the clock is stepped with ``advance``.
Fault tests use a client with botocore retries off -- ``retries={"total_max_attempts": 1}``;
note that ``{"max_attempts": 1}`` still allows one retry -- so each injected fault is seen
exactly as the wire carried it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.exceptions
import pytest
from botocore.config import Config

from batchkit.sim import FaultPlan, LocalBatch
from batchkit.sim import _emu_responses as responses_module

T0 = 1_767_000_000.0  # a fixed emulator epoch, so timestamps are exact
NF_COMMAND = [
    "bash",
    "-o",
    "pipefail",
    "-c",
    'trap "{ ret=$?; aws s3 cp --only-show-errors .command.log s3://bkt/work/ab/cdef0123456789abcdef0123456789/.command.log||true; exit $ret; }" EXIT; '
    "aws s3 cp --only-show-errors s3://bkt/work/ab/cdef0123456789abcdef0123456789/.command.run - | bash 2>&1 | tee .command.log",
]


@pytest.fixture
def lb() -> Iterator[LocalBatch]:
    with LocalBatch(manual_clock=True, start_time=T0, seed=7) as emu:
        emu.create_environment("q", vcpus=4)
        yield emu


@pytest.fixture
def batch(lb: LocalBatch) -> Any:
    """A raw client: botocore retries off, so every fault reaches the test."""
    return lb.client(retries={"total_max_attempts": 1})


def submit(batch: Any, name: str = "job", command: list[str] | None = None, **kw: Any) -> str:
    overrides = kw.pop("containerOverrides", {})
    if command is not None:
        overrides["command"] = command
    r = batch.submit_job(jobName=name, jobQueue="q", jobDefinition="nf-demo", containerOverrides=overrides, **kw)
    return str(r["jobId"])


def describe(batch: Any, job_id: str) -> dict[str, Any]:
    jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
    assert len(jobs) == 1, jobs
    return dict(jobs[0])


def status(batch: Any, job_id: str) -> str:
    return str(describe(batch, job_id)["status"])


def sleep_cmd(seconds: int, exit_code: int = 0) -> list[str]:
    return ["bash", "-c", f"echo hi; sleep {seconds}; exit {exit_code}"]


def client_error(excinfo: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[int, str, str]:
    r = excinfo.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def admin(lb: LocalBatch, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(lb.endpoint_url + path, data=data, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


# --- lifecycle ----------------------------------------------------------------------


def test_lifecycle_walks_every_state_on_the_clock(lb: LocalBatch, batch: Any) -> None:
    job_id = submit(batch, "walk", sleep_cmd(30))
    seen = [status(batch, job_id)]
    for _ in range(4):
        lb.advance(1)
        seen.append(status(batch, job_id))
    assert seen == ["SUBMITTED", "PENDING", "RUNNABLE", "RUNNING", "RUNNING"] or seen == [
        "SUBMITTED",
        "PENDING",
        "STARTING",
        "RUNNING",
        "RUNNING",
    ]
    lb.advance(29)
    job = describe(batch, job_id)
    assert job["status"] == "SUCCEEDED"
    assert job["jobArn"] == f"arn:aws:batch:us-east-1:123456789012:job/{job_id}"
    assert job["createdAt"] == int(T0 * 1000)
    assert job["stoppedAt"] - job["startedAt"] == 30_000
    assert job["container"]["exitCode"] == 0
    assert len(job["attempts"]) == 1 and job["attempts"][0]["container"]["exitCode"] == 0


def test_starting_state_is_visible_between_runnable_and_running(lb: LocalBatch, batch: Any) -> None:
    job_id = submit(batch, "s", sleep_cmd(30))
    lb.advance(2.5)  # RUNNABLE at 2 s, capacity free: STARTING at once, RUNNING at 3 s
    assert status(batch, job_id) == "STARTING"
    lb.advance(0.5)
    assert status(batch, job_id) == "RUNNING"


def test_jobs_wait_in_runnable_while_the_compute_environment_is_full(lb: LocalBatch, batch: Any) -> None:
    ids = [submit(batch, f"cap{i}", sleep_cmd(100), containerOverrides={"vcpus": 2}) for i in range(3)]
    lb.advance(10)
    assert [status(batch, i) for i in ids] == ["RUNNING", "RUNNING", "RUNNABLE"]  # 4 vCPUs
    lb.advance(100)
    states = [status(batch, i) for i in ids]
    assert states[:2] == ["SUCCEEDED", "SUCCEEDED"] and states[2] in ("STARTING", "RUNNING")
    lb.advance(110)
    assert status(batch, ids[2]) == "SUCCEEDED"


def test_a_job_bigger_than_the_compute_environment_stays_runnable_without_blocking_others(
    lb: LocalBatch, batch: Any
) -> None:
    big = submit(batch, "big", sleep_cmd(5), containerOverrides={"vcpus": 64})
    small = submit(batch, "small", sleep_cmd(5))
    lb.advance(20)
    assert status(batch, big) == "RUNNABLE"
    assert status(batch, small) == "SUCCEEDED"


def test_sleep_sets_the_duration_and_exit_sets_the_exit_code(lb: LocalBatch, batch: Any) -> None:
    ok = submit(batch, "ok", ["bash", "-c", "sleep 2m"])
    bad = submit(batch, "bad", sleep_cmd(10, exit_code=3))
    lb.advance(3 + 10)
    failed = describe(batch, bad)
    assert failed["status"] == "FAILED"
    assert failed["container"]["exitCode"] == 3
    assert failed["statusReason"] == "Essential container in task exited"
    assert status(batch, ok) == "RUNNING"
    lb.advance(120)
    assert status(batch, ok) == "SUCCEEDED"


def test_nextflow_command_without_sleep_runs_the_default_duration(lb: LocalBatch, batch: Any) -> None:
    job_id = submit(batch, "nf_task", NF_COMMAND)
    lb.advance(3 + 59)
    assert status(batch, job_id) == "RUNNING"  # `exit $ret` in the trap is no exit code
    lb.advance(1)
    assert status(batch, job_id) == "SUCCEEDED"


def test_set_job_behavior_changes_a_running_job(lb: LocalBatch, batch: Any) -> None:
    job_id = submit(batch, "b", sleep_cmd(1000))
    lb.advance(5)
    lb.set_job_behavior(job_id, duration=10, exit_code=137)  # RUNNING since 3 s: ends at 13 s
    lb.advance(7)
    assert status(batch, job_id) == "RUNNING"
    lb.advance(1)
    job = describe(batch, job_id)
    assert job["status"] == "FAILED" and job["container"]["exitCode"] == 137
    with pytest.raises(KeyError, match="does not exist"):
        lb.set_job_behavior("no-such-job", duration=1)


def test_shortening_a_running_job_below_its_age_ends_it_now_not_in_the_past(lb: LocalBatch, batch: Any) -> None:
    job_id = submit(batch, "long", sleep_cmd(1000))
    lb.advance(100)  # RUNNING since 3 s
    lb.set_job_behavior(job_id, duration=1)
    lb.advance(0)
    job = describe(batch, job_id)
    assert job["status"] == "SUCCEEDED" and job["stoppedAt"] == int((T0 + 100) * 1000)


# --- spot, retries, timeouts -----------------------------------------------------------

SPOT_RETRY = {
    "attempts": 3,
    "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onReason": "*", "action": "EXIT"},
    ],
}


def test_spot_interruption_retries_with_a_new_attempt_of_the_same_job(lb: LocalBatch, batch: Any) -> None:
    job_id = submit(batch, "spot", sleep_cmd(50), retryStrategy=SPOT_RETRY)
    lb.advance(10)
    lb.interrupt(job_id)
    job = describe(batch, job_id)
    assert job["status"] == "RUNNABLE" or job["status"] == "STARTING"
    assert len(job["attempts"]) == 1
    first = job["attempts"][0]
    assert first["statusReason"].startswith("Host EC2 (instance i-0") and first["statusReason"].endswith(") terminated.")
    assert "exitCode" not in first["container"]
    assert first["stoppedAt"] == int((T0 + 10) * 1000)
    lb.advance(60)
    job = describe(batch, job_id)
    assert job["status"] == "SUCCEEDED"
    assert len(job["attempts"]) == 2 and job["attempts"][1]["container"]["exitCode"] == 0


def test_spot_interruption_without_retry_fails_with_the_host_reason(lb: LocalBatch, batch: Any) -> None:
    job_id = submit(batch, "spot1", sleep_cmd(50))
    lb.advance(10)
    lb.interrupt(job_id)
    job = describe(batch, job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith("Host EC2 (instance i-")
    with pytest.raises(ValueError, match="FAILED"):
        lb.interrupt(job_id)


def test_nextflow_spot_strategy_does_not_retry_an_ordinary_failure(lb: LocalBatch, batch: Any) -> None:
    # `onReason: "*"` matches the absent container reason of a plain non-zero exit.
    job_id = submit(batch, "plainfail", sleep_cmd(5, 1), retryStrategy=SPOT_RETRY)
    lb.advance(30)
    job = describe(batch, job_id)
    assert job["status"] == "FAILED" and len(job["attempts"]) == 1


def test_evaluate_on_exit_exit_action_stops_retries(lb: LocalBatch, batch: Any) -> None:
    strategy = {"attempts": 3, "evaluateOnExit": [{"onExitCode": "4*", "action": "EXIT"}]}
    stop = submit(batch, "stop", sleep_cmd(5, 42), retryStrategy=strategy)
    again = submit(batch, "again", sleep_cmd(5, 1), retryStrategy=strategy)  # no match: retried
    lb.advance(100)
    assert len(describe(batch, stop)["attempts"]) == 1
    final = describe(batch, again)
    assert final["status"] == "FAILED" and len(final["attempts"]) == 3


def test_spot_interruption_rate_reclaims_attempts(lb: LocalBatch, batch: Any) -> None:
    lb.spot_interruption_rate = 1.0
    job_id = submit(batch, "always", sleep_cmd(100), retryStrategy={"attempts": 2})
    lb.advance(300)
    job = describe(batch, job_id)
    assert job["status"] == "FAILED"
    assert [a["statusReason"].startswith("Host EC2") for a in job["attempts"]] == [True, True]


def test_attempt_duration_timeout_fails_the_job_without_retry(lb: LocalBatch, batch: Any) -> None:
    job_id = submit(batch, "slow", sleep_cmd(600), timeout={"attemptDurationSeconds": 60}, retryStrategy={"attempts": 3})
    lb.advance(3 + 59)
    assert status(batch, job_id) == "RUNNING"
    lb.advance(1)
    job = describe(batch, job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(job["attempts"]) == 1


# --- terminate and cancel -----------------------------------------------------------------


def _job_in(lb: LocalBatch, batch: Any, state: str) -> str:
    """A job that is in ``state`` right now (the CE holds 4 vCPUs)."""
    if state == "RUNNABLE":
        submit(batch, "filler", sleep_cmd(10_000), containerOverrides={"vcpus": 4})
        lb.advance(5)
        job_id = submit(batch, "waiting", sleep_cmd(10))
        lb.advance(5)
    else:
        job_id = submit(batch, state.lower(), sleep_cmd(10_000))
        lb.advance({"SUBMITTED": 0, "PENDING": 1, "STARTING": 2, "RUNNING": 10}[state])
    assert status(batch, job_id) == state
    return job_id


@pytest.mark.parametrize("state", ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"])
def test_terminate_job_fails_every_active_state_with_the_reason(lb: LocalBatch, batch: Any, state: str) -> None:
    job_id = _job_in(lb, batch, state)
    batch.terminate_job(jobId=job_id, reason="batchkit: orphan of run 'wise_hypatia'")
    job = describe(batch, job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "batchkit: orphan of run 'wise_hypatia'"
    if state in ("STARTING", "RUNNING"):
        assert job.get("isTerminated") is True and job["attempts"][-1]["container"]["exitCode"] == 143
    else:
        assert job.get("isCancelled") is True and job["attempts"] == []
    lb.advance(20_000)
    assert status(batch, job_id) == "FAILED"  # nothing restarts it


@pytest.mark.parametrize("state", ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"])
def test_cancel_job_only_touches_jobs_before_starting(lb: LocalBatch, batch: Any, state: str) -> None:
    job_id = _job_in(lb, batch, state)
    batch.cancel_job(jobId=job_id, reason="cancel")
    if state in ("STARTING", "RUNNING"):
        assert status(batch, job_id) in ("STARTING", "RUNNING")  # quietly nothing (docs/ARCHITECTURE.md §4)
    else:
        job = describe(batch, job_id)
        assert (job["status"], job["statusReason"]) == ("FAILED", "cancel")


def test_terminate_delay_keeps_a_terminated_job_running_for_a_while(lb: LocalBatch, batch: Any) -> None:
    lb.terminate_delay = 5
    running = submit(batch, "r", sleep_cmd(1000), retryStrategy={"attempts": 3})
    waiting = submit(batch, "w", sleep_cmd(1000), containerOverrides={"vcpus": 4})
    lb.advance(10)
    assert (status(batch, running), status(batch, waiting)) == ("RUNNING", "RUNNABLE")
    batch.terminate_jobs(jobs=[running, waiting], reason="kill")
    assert (status(batch, running), status(batch, waiting)) == ("RUNNING", "FAILED")  # not started: at once
    batch.terminate_job(jobId=running, reason="second click")  # already terminating: harmless
    batch.cancel_job(jobId=running, reason="cancel does nothing")
    lb.advance(4.9)
    assert status(batch, running) == "RUNNING"
    lb.advance(0.1)
    job = describe(batch, running)
    assert (job["status"], job["statusReason"], len(job["attempts"])) == ("FAILED", "kill", 1)


def test_a_job_ending_on_its_own_while_terminating_is_not_retried(lb: LocalBatch, batch: Any) -> None:
    lb.terminate_delay = 30
    job_id = submit(batch, "e", sleep_cmd(10, 1), retryStrategy={"attempts": 3})
    lb.advance(5)
    batch.terminate_job(jobId=job_id, reason="kill")
    lb.advance(10)
    job = describe(batch, job_id)
    assert (job["status"], job["statusReason"], len(job["attempts"])) == ("FAILED", "kill", 1)


def test_terminating_finished_or_unknown_jobs_is_a_success(lb: LocalBatch, batch: Any) -> None:
    done = submit(batch, "done", sleep_cmd(1))
    lb.advance(10)
    assert status(batch, done) == "SUCCEEDED"
    batch.terminate_job(jobId=done, reason="late")
    batch.terminate_job(jobId="00000000-0000-0000-0000-000000000000", reason="unknown")
    job = describe(batch, done)
    assert job["status"] == "SUCCEEDED" and job["statusReason"] != "late"


def test_bulk_terminate_and_cancel_answer_per_job(lb: LocalBatch, batch: Any) -> None:
    ids = [submit(batch, f"bulk{i}", sleep_cmd(1000)) for i in range(6)]
    lb.advance(10)  # 4 RUNNING, 2 RUNNABLE
    cancelled = batch.cancel_jobs(jobs=ids, reason="c")
    assert cancelled["errors"] == [] and sorted(cancelled["successful"]) == sorted(ids)
    assert sorted(status(batch, i) for i in ids) == ["FAILED"] * 2 + ["RUNNING"] * 4
    unknown = ["11111111-1111-1111-1111-111111111111", "nope"]
    answer = batch.terminate_jobs(jobs=ids + unknown, reason="t")
    assert answer["errors"] == [] and sorted(answer["successful"]) == sorted(ids + unknown)
    assert {status(batch, i) for i in ids} == {"FAILED"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.terminate_jobs(jobs=[f"x{i}" for i in range(51)], reason="t")
    assert client_error(e)[:2] == (400, "ClientException")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.terminate_job(jobId=ids[0], reason="r" * 1025)
    assert "1024" in client_error(e)[2]


# --- array jobs -------------------------------------------------------------------------


def test_array_children_are_describable_and_drive_the_parent(lb: LocalBatch, batch: Any) -> None:
    parent = submit(batch, "arr", sleep_cmd(10), arrayProperties={"size": 3})
    lb.advance(2)
    children = batch.describe_jobs(jobs=[f"{parent}:{i}" for i in range(3)])["jobs"]
    assert [c["arrayProperties"]["index"] for c in children] == [0, 1, 2]
    assert describe(batch, parent)["status"] == "PENDING"
    listed = batch.list_jobs(arrayJobId=parent, jobStatus="STARTING")["jobSummaryList"]
    assert len(listed) == 3
    lb.advance(5)
    summary = describe(batch, parent)["arrayProperties"]
    assert summary["size"] == 3 and summary["statusSummary"]["RUNNING"] == 3
    lb.set_job_behavior(f"{parent}:1", exit_code=1)
    lb.advance(20)
    assert status(batch, f"{parent}:0") == "SUCCEEDED"
    assert status(batch, f"{parent}:1") == "FAILED"
    assert status(batch, parent) == "FAILED"


def test_terminating_an_array_parent_terminates_its_children(lb: LocalBatch, batch: Any) -> None:
    parent = submit(batch, "arr", sleep_cmd(100), arrayProperties={"size": 5})
    lb.advance(10)
    batch.terminate_job(jobId=parent, reason="stop all")
    jobs = batch.describe_jobs(jobs=[parent] + [f"{parent}:{i}" for i in range(5)])["jobs"]
    assert {(j["status"], j["statusReason"]) for j in jobs} == {("FAILED", "stop all")}


# --- ListJobs / DescribeJobs ---------------------------------------------------------------


def _seed_jobs(lb: LocalBatch, n: int, status_of: Any) -> list[str]:
    jobs = [
        {
            "jobId": f"seed-{i:05d}",
            "jobName": f"{'NFCORE' if i % 2 else 'other'}_task_{i}",
            "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/big",
            "status": status_of(i),
            "createdAt": int(T0 * 1000) - (n - i) * 1000,
            "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/nf-ubuntu:3",
            "container": {"command": ["bash", "-c", "sleep 100000"], "vcpus": 1},
        }
        for i in range(n)
    ]
    lb.load_state({"jobs": jobs})
    return [j["jobId"] for j in jobs]


def test_list_jobs_paginates_one_status_at_a_time(lb: LocalBatch, batch: Any) -> None:
    _seed_jobs(lb, 2500, lambda i: "RUNNING" if i % 5 else "SUCCEEDED")
    page = batch.list_jobs(jobQueue="big")  # default status: RUNNING
    assert len(page["jobSummaryList"]) == 1000 and "nextToken" in page
    assert {s["status"] for s in page["jobSummaryList"]} == {"RUNNING"}
    assert "container" not in page["jobSummaryList"][0] or "command" not in page["jobSummaryList"][0]["container"]
    ids: list[str] = []
    token = None
    while True:
        kw = {"nextToken": token} if token else {}
        page = batch.list_jobs(jobQueue="big", jobStatus="RUNNING", maxResults=700, **kw)
        ids += [s["jobId"] for s in page["jobSummaryList"]]
        token = page.get("nextToken")
        if not token:
            break
    assert len(ids) == len(set(ids)) == 2000
    paginated = [
        s["jobId"]
        for p in batch.get_paginator("list_jobs").paginate(jobQueue="big", jobStatus="SUCCEEDED")
        for s in p["jobSummaryList"]
    ]
    assert len(paginated) == 500
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.list_jobs(jobQueue="big", jobStatus="SUCCEEDED", nextToken="garbage")
    assert client_error(e)[1] == "ClientException"


def test_list_jobs_filters_ignore_status_and_cap_pages_at_100(lb: LocalBatch, batch: Any) -> None:
    _seed_jobs(lb, 300, lambda i: ["RUNNING", "SUCCEEDED", "FAILED"][i % 3])
    by_name = batch.list_jobs(
        jobQueue="big", jobStatus="RUNNING", maxResults=1000, filters=[{"name": "JOB_NAME", "values": ["nfcore_*"]}]
    )
    assert len(by_name["jobSummaryList"]) == 100 and "nextToken" in by_name
    assert {s["status"] for s in by_name["jobSummaryList"]} == {"RUNNING", "SUCCEEDED", "FAILED"}
    names = [
        s["jobName"]
        for p in batch.get_paginator("list_jobs").paginate(
            jobQueue="big", filters=[{"name": "JOB_NAME", "values": ["NFCore_*"]}]
        )
        for s in p["jobSummaryList"]
    ]
    assert len(names) == 150 and all(n.startswith("NFCORE_") for n in names)
    exact = batch.list_jobs(jobQueue="big", filters=[{"name": "JOB_NAME", "values": ["nfcore_task_7"]}])
    assert [s["jobName"] for s in exact["jobSummaryList"]] == ["NFCORE_task_7"]
    cutoff = str(int(T0 * 1000) - 10 * 1000)
    after = batch.list_jobs(jobQueue="big", filters=[{"name": "AFTER_CREATED_AT", "values": [cutoff]}])
    assert len(after["jobSummaryList"]) == 9
    before = batch.list_jobs(jobQueue="big", filters=[{"name": "BEFORE_CREATED_AT", "values": [cutoff]}])
    assert len(before["jobSummaryList"]) == 100
    by_def = batch.list_jobs(jobQueue="big", filters=[{"name": "JOB_DEFINITION", "values": ["nf-ubuntu"]}])
    assert len(by_def["jobSummaryList"]) == 100
    none = batch.list_jobs(jobQueue="big", filters=[{"name": "JOB_DEFINITION", "values": ["other"]}])
    assert none["jobSummaryList"] == []


def test_describe_jobs_limits_and_unknown_ids(lb: LocalBatch, batch: Any) -> None:
    ids = _seed_jobs(lb, 150, lambda i: "RUNNING")
    found = batch.describe_jobs(jobs=[*ids[:99], "no-such-job"])["jobs"]
    assert len(found) == 99  # unknown ids silently absent
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.describe_jobs(jobs=ids[:101])
    assert client_error(e)[:2] == (400, "ClientException")


def test_forgotten_and_aged_out_jobs_vanish(lb: LocalBatch, batch: Any) -> None:
    gone = submit(batch, "gone", sleep_cmd(1000))
    old = submit(batch, "old", sleep_cmd(10))
    lb.advance(5)
    lb.forget(gone)
    assert batch.describe_jobs(jobs=[gone])["jobs"] == []
    assert gone not in {s["jobId"] for s in batch.list_jobs(jobQueue="q")["jobSummaryList"]}
    batch.terminate_job(jobId=gone, reason="unknown now: still a success")
    lb.retention = 7 * 86400
    lb.advance(20)
    assert status(batch, old) == "SUCCEEDED"
    lb.advance(7 * 86400 + 1)
    assert batch.describe_jobs(jobs=[old])["jobs"] == [] and lb.jobs() == []


def test_tags_are_kept_and_listed(lb: LocalBatch, batch: Any) -> None:
    job_id = submit(batch, "tagged", tags={"batchkit:submission-id": "abc"})
    arn = describe(batch, job_id)["jobArn"]
    assert describe(batch, job_id)["tags"] == {"batchkit:submission-id": "abc"}
    batch.tag_resource(resourceArn=arn, tags={"run": "wise_hypatia"})
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"batchkit:submission-id": "abc", "run": "wise_hypatia"}
    queue_arn = batch.describe_job_queues(jobQueues=["q"])["jobQueues"][0]["jobQueueArn"]
    batch.tag_resource(resourceArn=queue_arn, tags={"team": "x"})
    assert batch.list_tags_for_resource(resourceArn=queue_arn)["tags"] == {"team": "x"}


def test_queue_ce_and_job_definition_calls(lb: LocalBatch, batch: Any) -> None:
    batch.create_compute_environment(
        computeEnvironmentName="spot-ce",
        type="MANAGED",
        computeResources={"type": "SPOT", "maxvCpus": 8, "subnets": ["s"], "instanceRole": "r"},
    )
    batch.create_job_queue(jobQueueName="spot-q", priority=5, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "spot-ce"}])
    r1 = batch.register_job_definition(jobDefinitionName="nf-x", type="container", containerProperties={"image": "u", "vcpus": 2, "memory": 512})
    r2 = batch.register_job_definition(jobDefinitionName="nf-x", type="container", containerProperties={"image": "u2", "vcpus": 2, "memory": 512})
    assert (r1["revision"], r2["revision"]) == (1, 2)
    ces = batch.describe_compute_environments(computeEnvironments=["spot-ce"])["computeEnvironments"]
    assert ces[0]["computeResources"]["maxvCpus"] == 8 and ces[0]["status"] == "VALID"
    queues = batch.describe_job_queues()["jobQueues"]
    assert {q["jobQueueName"] for q in queues} == {"q", "spot-q"}
    defs = batch.describe_job_definitions(jobDefinitionName="nf-x")["jobDefinitions"]
    assert [d["revision"] for d in defs] == [1, 2]
    job = batch.submit_job(jobName="x", jobQueue="spot-q", jobDefinition="nf-x")
    d = describe(batch, job["jobId"])
    assert d["jobDefinition"].endswith("job-definition/nf-x:2") and d["container"]["image"] == "u2"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.create_job_queue(jobQueueName="spot-q", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "spot-ce"}])
    assert client_error(e)[1] == "ClientException"


# --- bad input ------------------------------------------------------------------------------


def test_unknown_queue_and_job_definition_are_client_errors(batch: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.submit_job(jobName="a", jobQueue="nope", jobDefinition="nf-demo")
    # AWS's wording, as quoted in base2genomics/batchit#13 and aws-samples/aws-genomics-workflows#84.
    assert client_error(e) == (400, "ClientException", "JobQueue nope not found.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.submit_job(jobName="a", jobQueue="q", jobDefinition="nope:9")
    assert client_error(e) == (
        400, "ClientException", "JobDefinition name nope:9 does not exist or is not in ACTIVE status."
    )
    arn = "arn:aws:batch:us-east-1:123456789012:job-definition/nope:1"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.submit_job(jobName="a", jobQueue="q", jobDefinition=arn)
    assert client_error(e) == (400, "ClientException", f"JobDefinition {arn} not found.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.submit_job(jobName="bad name!", jobQueue="q", jobDefinition="nf-demo")
    assert "Job name should match valid pattern" in client_error(e)[2]  # fluidattacks/makes#697
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.list_jobs(jobQueue="nope")
    assert client_error(e)[2] == "JobQueue nope not found."


def test_wrong_types_and_missing_members_are_client_errors(lb: LocalBatch) -> None:
    loose = lb.client(retries={"total_max_attempts": 1}, parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        loose.submit_job(jobName="a", jobQueue="q")
    assert client_error(e) == (400, "ClientException", "Missing required parameter jobDefinition")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        loose.list_jobs(jobQueue="q", jobStatus="DONE")
    assert "enum" in client_error(e)[2]
    for path, body, where in [
        ("/v1/describejobs", {"jobs": "not-a-list"}, "jobs"),
        ("/v1/describejobs", {"jobs": [1]}, "jobs[0]"),
        ("/v1/submitjob", {"jobName": "a", "jobQueue": "q", "jobDefinition": "nf-demo", "timeout": {"attemptDurationSeconds": "60"}}, "timeout.attemptDurationSeconds"),
        ("/v1/listjobs", {"jobQueue": "q", "maxResults": True}, "maxResults"),
    ]:
        req = urllib.request.Request(lb.endpoint_url + path, data=json.dumps(body).encode(), method="POST")
        with pytest.raises(urllib.error.HTTPError) as http:
            urllib.request.urlopen(req, timeout=10)
        answer = json.loads(http.value.read())
        http.value.close()
        assert (http.value.code, answer["__type"]) == (400, "ClientException")
        assert f"parameter {where}" in answer["message"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_json_is_a_client_exception_not_a_traceback(lb: LocalBatch, body: bytes) -> None:
    req = urllib.request.Request(lb.endpoint_url + "/v1/describejobs", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 400
    answer = json.loads(e.value.read())
    e.value.close()
    assert answer["__type"] == "ClientException" and "Traceback" not in answer["message"]


def test_a_handler_crash_is_a_logged_server_exception(
    lb: LocalBatch, batch: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(engine: Any, params: Any) -> Any:
        raise RuntimeError("kaput")

    monkeypatch.setitem(responses_module.HANDLERS, "DescribeJobs", boom)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.describe_jobs(jobs=["x"])
    assert client_error(e)[:2] == (500, "ServerException")
    assert "kaput" in caplog.text


def test_unsupported_operations_answer_unknown_operation(lb: LocalBatch, batch: Any) -> None:
    lb.unsupported_operations.add("TerminateJobs")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.terminate_jobs(jobs=["a"], reason="r")
    assert client_error(e)[:2] == (404, "UnknownOperationException")


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "http", "code"),
    [
        ("authorizer-500", 500, "AuthorizerConfigurationException"),
        ("server-500", 500, "ServerException"),
        ("throttle-429", 429, "TooManyRequestsException"),
    ],
)
def test_error_faults_reach_the_client_as_aws_sends_them(
    lb: LocalBatch, batch: Any, kind: str, http: int, code: str
) -> None:
    job_id = submit(batch, "f")
    lb.faults.add("DescribeJobs", kind, count=2)
    for _ in range(2):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            batch.describe_jobs(jobs=[job_id])
        assert client_error(e)[:2] == (http, code)
    assert status(batch, job_id) == "SUBMITTED"  # the burst is over
    batch.list_jobs(jobQueue="q")  # other operations were never affected
    assert lb.faults.counts == {("DescribeJobs", kind): 2}


def test_botocore_retries_ride_out_a_short_burst(lb: LocalBatch) -> None:
    retrying = lb.client(retries={"max_attempts": 4, "mode": "standard"})
    lb.faults.add("ListJobs", "authorizer-500", count=2)
    page = retrying.list_jobs(jobQueue="q")
    assert page["ResponseMetadata"]["RetryAttempts"] == 2


def test_drop_closes_the_connection_without_an_answer(lb: LocalBatch, batch: Any) -> None:
    lb.faults.add("DescribeJobs", "drop", count=1)
    with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)):
        batch.describe_jobs(jobs=["x"])
    assert batch.describe_jobs(jobs=["x"])["jobs"] == []
    lb.faults.add("DescribeJobs", "reset", count=1)
    with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)) as e:
        batch.describe_jobs(jobs=["x"])
    causes = []
    cause: BaseException | None = e.value
    while cause is not None:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    assert any(isinstance(c, ConnectionResetError) or "reset" in str(c).lower() for c in causes), causes
    lb.faults.add("SubmitJob", "drop", count=1)
    with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)):
        submit(batch, "never")
    assert lb.jobs() == []  # a dropped request was never applied


def test_every_emulated_operation_routes_by_botocore_model() -> None:
    from batchkit.sim._emu_model import service_model

    model = service_model()
    for op in responses_module.HANDLERS:
        http = model.model.operation_model(op).http
        path = http["requestUri"].replace("{resourceArn}", "arn%3Aaws%3Abatch%3Aus-east-1%3A1%3Ajob%2Fx")
        assert model.route(http["method"], path)[0] == op  # type: ignore[index]
    assert model.route("POST", "/v1/nothing") is None


def test_empty_answers_alternate_between_no_member_and_an_empty_list(lb: LocalBatch, batch: Any) -> None:
    job_id = submit(batch, "e")
    lb.faults.add("DescribeJobs", "empty", count=2)
    first = batch.describe_jobs(jobs=[job_id])
    second = batch.describe_jobs(jobs=[job_id])
    assert "jobs" not in first and second["jobs"] == []
    assert len(batch.describe_jobs(jobs=[job_id])["jobs"]) == 1


def test_applied_lost_applies_the_submit_but_the_caller_sees_a_failure(lb: LocalBatch, batch: Any) -> None:
    lb.faults.add("SubmitJob", "applied-lost", count=1)
    with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)):
        submit(batch, "ambiguous", tags={"batchkit:submission-id": "s-1"})
    lb.faults.add("SubmitJob", "applied-500", count=1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        submit(batch, "ambiguous2")
    assert client_error(e)[:2] == (500, "ServerException")
    names = sorted(j["jobName"] for j in lb.jobs())
    assert names == ["ambiguous", "ambiguous2"]
    assert lb.jobs()[0]["tags"] == {"batchkit:submission-id": "s-1"}


def test_job_errors_are_reported_per_job_in_a_200_answer(lb: LocalBatch, batch: Any) -> None:
    ids = [submit(batch, f"je{i}", sleep_cmd(1000)) for i in range(40)]
    lb.advance(10)
    rule = lb.faults.add("TerminateJobs", "job-errors", rate=0.5)
    answer = batch.terminate_jobs(jobs=ids, reason="kill")
    failed = {e["job"] for e in answer["errors"]}
    assert 0 < len(failed) < 40 and set(answer["successful"]) == set(ids) - failed
    assert {e["code"] for e in answer["errors"]} <= {"ThrottlingException", "ServerException"}
    assert {status(batch, i) for i in failed} <= {"RUNNING", "RUNNABLE"}  # not applied
    assert {status(batch, i) for i in answer["successful"]} == {"FAILED"}
    lb.faults.remove(rule)
    again = batch.terminate_jobs(jobs=sorted(failed), reason="kill")
    assert again["errors"] == [] and {status(batch, i) for i in failed} == {"FAILED"}


def test_latency_is_real_time_and_rate_uses_the_seeded_rng(lb: LocalBatch, batch: Any) -> None:
    lb.faults.add("ListJobs", "latency", latency=0.2, count=1)
    t = time.monotonic()
    batch.list_jobs(jobQueue="q")
    assert time.monotonic() - t >= 0.2
    rule = lb.faults.add("DescribeJobs", "server-500", rate=0.5)
    failures = 0
    for _ in range(40):
        try:
            batch.describe_jobs(jobs=["x"])
        except botocore.exceptions.ClientError:
            failures += 1
    assert 5 < failures < 35 and lb.faults.counts[("DescribeJobs", "server-500")] == failures
    lb.faults.remove(rule)
    batch.describe_jobs(jobs=["x"])


def test_outage_window_follows_the_emulator_clock(lb: LocalBatch, batch: Any) -> None:
    lb.faults.add(None, "authorizer-500", window=(T0 + 10, T0 + 100))
    batch.describe_jobs(jobs=["x"])
    lb.advance(10)
    for call in (lambda: batch.describe_jobs(jobs=["x"]), lambda: batch.list_jobs(jobQueue="q")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert client_error(e)[1] == "AuthorizerConfigurationException"
    lb.advance(90)
    batch.describe_jobs(jobs=["x"])


def test_fault_plan_rejects_nonsense() -> None:
    plan = FaultPlan()
    with pytest.raises(ValueError, match="unknown fault kind"):
        plan.add("DescribeJobs", "explode")
    with pytest.raises(ValueError, match="between 0 and 1"):
        plan.add("DescribeJobs", "server-500", rate=2)
    with pytest.raises(ValueError, match="end after"):
        plan.add(None, "server-500", window=(10, 5))
    with pytest.raises(ValueError, match="unknown operation 'DescribeJob'"):
        plan.add("DescribeJob", "server-500")
    rule = plan.add(None, "server-500")
    plan.remove(rule)
    plan.remove(rule)  # harmless twice
    assert plan.decide("DescribeJobs").kind is None


# --- state, admin, threads, standalone ----------------------------------------------------------


def test_dump_and_load_state_round_trip(lb: LocalBatch, batch: Any) -> None:
    ids = [submit(batch, f"r{i}", sleep_cmd(20 * (i + 1)), retryStrategy={"attempts": 2}) for i in range(6)]
    arr = submit(batch, "arr", sleep_cmd(30), arrayProperties={"size": 2})
    lb.advance(25)
    lb.interrupt(ids[1])
    state = lb.dump_state()
    json.dumps(state)  # JSON-serialisable
    with LocalBatch(manual_clock=True, start_time=T0, seed=7) as twin:
        twin.load_state(state)
        assert twin.clock.now() == lb.clock.now()
        assert _comparable(twin.jobs()) == _comparable(lb.jobs())
        for _ in range(4):
            lb.advance(30)
            twin.advance(30)
            assert _comparable(twin.jobs()) == _comparable(lb.jobs())
        twin_batch = twin.client(retries={"total_max_attempts": 1})
        assert twin_batch.describe_jobs(jobs=[f"{arr}:1"])["jobs"][0]["status"] == "SUCCEEDED"
        assert twin_batch.list_jobs(jobQueue="q", jobStatus="SUCCEEDED")["jobSummaryList"]


def test_loading_over_existing_jobs_replaces_them(lb: LocalBatch, batch: Any) -> None:
    filler = submit(batch, "filler", sleep_cmd(100), containerOverrides={"vcpus": 4})
    lb.advance(5)
    waiting = submit(batch, "waiting", sleep_cmd(10))
    lb.advance(5)
    lb.load_state(lb.dump_state())  # same ids: every job is replaced by its loaded copy
    assert len(lb.jobs()) == 2
    assert (status(batch, filler), status(batch, waiting)) == ("RUNNING", "RUNNABLE")
    lb.advance(50)
    assert status(batch, waiting) == "RUNNABLE"  # capacity is still held by the filler
    lb.advance(45)  # t = 105: the filler ended at 103, the waiting job runs since 104
    assert (status(batch, filler), status(batch, waiting)) == ("SUCCEEDED", "RUNNING")


def _comparable(jobs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((j["jobId"], j["status"], j.get("statusReason"), len(j["attempts"]), j.get("stoppedAt")) for j in jobs)


def test_load_describe_jobs_json_keeps_running_jobs_running(lb: LocalBatch, batch: Any) -> None:
    saved = {
        "jobs": [
            {
                "jobId": "70af3d53-7a4b-4c1e-9a1b-6d1e1f0c2a11",
                "jobName": "nf-FASTQC_sample1",
                "jobQueue": "arn:aws:batch:eu-west-1:111122223333:job-queue/prod-queue",
                "status": "RUNNING",
                "createdAt": int((T0 - 7200) * 1000),
                "startedAt": int((T0 - 7000) * 1000),
                "jobDefinition": "arn:aws:batch:eu-west-1:111122223333:job-definition/nf-ubuntu:1",
                "container": {"command": NF_COMMAND, "vcpus": 2},
                "attempts": [],
            },
            {
                "jobId": "81bf4e64-7a4b-4c1e-9a1b-6d1e1f0c2a22",
                "jobName": "nf-MULTIQC",
                "jobQueue": "prod-queue",
                "status": "SUCCEEDED",
                "createdAt": int((T0 - 7200) * 1000),
                "jobDefinition": "nf-ubuntu:1",
            },
        ]
    }
    lb.load_state(saved)
    running = describe(batch, "70af3d53-7a4b-4c1e-9a1b-6d1e1f0c2a11")
    assert running["status"] == "RUNNING" and running["startedAt"] == int((T0 - 7000) * 1000)
    assert running["container"]["command"] == NF_COMMAND
    listed = batch.list_jobs(jobQueue="prod-queue")["jobSummaryList"]
    assert [s["jobId"] for s in listed] == ["70af3d53-7a4b-4c1e-9a1b-6d1e1f0c2a11"]
    assert status(batch, "81bf4e64-7a4b-4c1e-9a1b-6d1e1f0c2a22") == "SUCCEEDED"
    lb.advance(3599)
    assert status(batch, "70af3d53-7a4b-4c1e-9a1b-6d1e1f0c2a11") == "RUNNING"  # an hour from load
    lb.advance(1)
    assert status(batch, "70af3d53-7a4b-4c1e-9a1b-6d1e1f0c2a11") == "SUCCEEDED"
    lb.load_state({"jobs": [{"jobId": "short", "jobQueue": "q", "status": "RUNNING"}]}, duration=5)
    lb.advance(5)
    assert status(batch, "short") == "SUCCEEDED"
    with pytest.raises(ValueError, match="jobId"):
        lb.load_state({"jobs": [{"status": "RUNNING"}]})


def test_answers_carry_only_members_of_botocores_model(
    lb: LocalBatch, batch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    lb.load_state({"jobs": [{"jobId": "odd", "jobQueue": "q", "status": "SUCCEEDED", "notABatchMember": 1,
                             "container": {"exitCode": 0, "alsoNot": "x"}}]})
    job = describe(batch, "odd")
    assert "notABatchMember" not in job and "alsoNot" not in job["container"]
    assert job["container"]["exitCode"] == 0
    assert "notABatchMember" in caplog.text


def test_admin_endpoint_drives_faults_clock_and_state(lb: LocalBatch, batch: Any) -> None:
    assert admin(lb, "GET", "/_admin/health")["ok"] is True
    rule = admin(lb, "POST", "/_admin/faults", {"operation": "DescribeJobs", "kind": "throttle-429", "count": 1})["id"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.describe_jobs(jobs=["x"])
    assert client_error(e)[1] == "TooManyRequestsException"
    faults = admin(lb, "GET", "/_admin/faults")
    assert faults["counts"] == [{"operation": "DescribeJobs", "kind": "throttle-429", "count": 1}]
    assert [r["id"] for r in faults["rules"]] == [rule]
    admin(lb, "DELETE", f"/_admin/faults/{rule}")
    assert admin(lb, "GET", "/_admin/faults")["rules"] == []
    job_id = submit(batch, "adm", sleep_cmd(10))
    assert admin(lb, "POST", "/_admin/clock/advance", {"seconds": 5})["now"] == T0 + 5
    admin(lb, "POST", f"/_admin/jobs/{job_id}/interrupt")
    assert status(batch, job_id) == "FAILED"
    state = admin(lb, "GET", "/_admin/state")
    assert [j["jobId"] for j in state["jobs"]] == [job_id]
    admin(lb, "POST", "/_admin/retention", {"seconds": 0})
    admin(lb, "POST", "/_admin/clock/advance", {"seconds": 1})
    assert admin(lb, "GET", "/_admin/state")["jobs"] == []  # aged out
    admin(lb, "POST", "/_admin/retention", {"seconds": None})
    seeded = admin(lb, "POST", "/_admin/jobs", {"count": 3, "queue": "q", "name": "seed"})["jobIds"]
    assert [describe(batch, i)["jobName"] for i in seeded] == ["seed-0", "seed-1", "seed-2"]
    admin(lb, "POST", "/_admin/unsupported", {"operations": ["CancelJobs"]})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        batch.cancel_jobs(jobs=seeded, reason="r")
    assert client_error(e)[:2] == (404, "UnknownOperationException")
    with pytest.raises(urllib.error.HTTPError) as err:
        admin(lb, "POST", "/_admin/faults", {"kind": "nonsense"})
    assert err.value.code == 400 and "unknown fault kind" in json.loads(err.value.read())["error"]
    err.value.close()
    with pytest.raises(urllib.error.HTTPError) as err:
        admin(lb, "GET", "/_admin/nothing")
    assert err.value.code == 404
    err.value.close()


def test_submit_jobs_seeds_many_jobs_in_process(lb: LocalBatch, batch: Any) -> None:
    ids = lb.submit_jobs(2000, queue="q", name="seed", command=sleep_cmd(50), tags={"run": "r1"})
    assert len(set(ids)) == 2000
    lb.advance(10)
    assert len(lb.jobs("RUNNING")) == 4 and len(lb.jobs("RUNNABLE")) == 1996
    assert describe(batch, ids[0])["tags"] == {"run": "r1"}
    with pytest.raises(ValueError, match="JobQueue nope not found"):
        lb.submit_jobs(1, queue="nope")


def test_concurrent_submissions_all_land(lb: LocalBatch) -> None:
    clients = [lb.client(retries={"total_max_attempts": 1}) for _ in range(4)]

    def work(k: int) -> list[str]:
        return [submit(clients[k], f"c{k}_{i}") for i in range(25)]

    with ThreadPoolExecutor(4) as pool:
        ids = [i for chunk in pool.map(work, range(4)) for i in chunk]
    assert len(set(ids)) == 100 == len(lb.jobs())


def test_stop_closes_idle_connections(lb: LocalBatch, batch: Any) -> None:
    batch.describe_jobs(jobs=["x"])  # leaves a keep-alive connection in the pool
    lb.stop()
    with pytest.raises((botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError)):
        batch.describe_jobs(jobs=["x"])


def test_real_clock_runs_sped_up() -> None:
    with LocalBatch(speed=1000.0) as fast:
        fast.create_environment("q")
        batch = fast.client(retries={"total_max_attempts": 1})
        job_id = submit(batch, "quick", sleep_cmd(60))
        deadline = time.monotonic() + 10
        while status(batch, job_id) != "SUCCEEDED" and time.monotonic() < deadline:
            time.sleep(0.02)  # real time: this test is about the real clock
        assert status(batch, job_id) == "SUCCEEDED"
        with pytest.raises(ValueError, match="manual clock"):
            fast.advance(1)


def test_serve_main_runs_standalone_for_any_sdk(tmp_path: Any) -> None:
    state = tmp_path / "saved.json"
    state.write_text(json.dumps({"jobs": [{"jobId": "j-1", "jobQueue": "demo-queue", "status": "RUNNING", "jobName": "x",
                                           "container": {"command": ["sleep", "100000"]}}]}))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from batchkit.sim import serve_main; sys.exit(serve_main(sys.argv[1:]))",
         "--port", "0", "--speed", "60", "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A profile this machine lacks must not break the emulator (it needs no credentials).
        env={**os.environ, "AWS_PROFILE": "no-such-profile"},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("Ctrl-C" in line for line in lines) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # real time: waiting for another process to start
        banner = "".join(lines)
        assert "listening on http://127.0.0.1:" in banner, (banner, proc.poll())
        url = banner.split("listening on ", 1)[1].split()[0]
        assert "AWS_ENDPOINT_URL_BATCH" in banner and "aws_access_key_id" in banner
        import boto3

        batch = boto3.client(
            "batch", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(retries={"total_max_attempts": 1}),
        )
        assert [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]] == ["demo-queue"]
        assert batch.describe_jobs(jobs=["j-1"])["jobs"][0]["status"] == "RUNNING"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err


def test_serve_main_reports_a_bad_state_file(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from batchkit.sim import serve_main

    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    assert serve_main(["--state", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    assert serve_main(["--state", str(tmp_path / "missing.json")]) == 2
