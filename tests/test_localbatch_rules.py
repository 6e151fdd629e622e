"""LocalBatch against the AWS Batch API reference: numbers, lists, dependencies, queues, listing.

Real boto3 over real HTTP on a manual clock. Each test names the part of the API
reference (botocore's ``batch`` service model documentation) it checks.
"""

from __future__ import annotations

import time
from typing import Any

import botocore.exceptions
import pytest

from batchkit.sim import LocalBatch
from tests._worlds import EMU_T0, one_queue_lb

__all__ = ["one_queue_lb"]  # the ``lb`` fixture: a one-queue emulator on a manual clock


@pytest.fixture
def batch(lb: LocalBatch) -> Any:
    # parameter_validation off: the emulator, not botocore, must refuse what AWS refuses.
    return lb.client(retries={"total_max_attempts": 1}, parameter_validation=False)


def refused(call: Any, **kw: Any) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    r = e.value.response
    assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]) == (400, "ClientException"), r
    return str(r["Error"]["Message"])


def submit(batch: Any, name: str = "job", command: str = "sleep 100", **kw: Any) -> str:
    overrides = kw.pop("containerOverrides", {})
    overrides.setdefault("command", ["bash", "-c", command])
    return str(batch.submit_job(jobName=name, jobQueue=kw.pop("jobQueue", "q"), jobDefinition="nf-demo",
                                containerOverrides=overrides, **kw)["jobId"])  # fmt: skip


def describe(batch: Any, *ids: str) -> list[dict[str, Any]]:
    return list(batch.describe_jobs(jobs=list(ids))["jobs"])


def ce_params(name: str, **resources: Any) -> dict[str, Any]:
    return {"computeEnvironmentName": name, "type": "MANAGED",
            "computeResources": {"type": "EC2", "maxvCpus": 4, **resources}}  # fmt: skip


# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize("resources", [
    {"maxvCpus": -1000}, {"minvCpus": -1}, {"minvCpus": 8, "maxvCpus": 4}, {"desiredvCpus": 9},
    {"maxvCpus": 2**31},  # a Smithy integer is 32-bit
])  # fmt: skip
def test_compute_environment_vcpus_follow_compute_resource_rules(batch: Any, resources: dict[str, Any]) -> None:
    refused(batch.create_compute_environment, **ce_params("bad", **resources))
    assert "bad" not in [c["computeEnvironmentName"] for c in batch.describe_compute_environments()["computeEnvironments"]]


@pytest.mark.parametrize("overrides", [
    {"vcpus": 0}, {"vcpus": -3}, {"resourceRequirements": [{"type": "VCPU", "value": "0.5"}]},
    {"resourceRequirements": [{"type": "VCPU", "value": "nan"}]},
    {"resourceRequirements": [{"type": "VCPU", "value": "inf"}]},
    {"memory": 2}, {"memory": 2**63}, {"resourceRequirements": [{"type": "MEMORY", "value": str(2**63)}]},
    {"resourceRequirements": [{"type": "MEMORY", "value": "1.5"}]},
])  # fmt: skip
def test_job_vcpus_and_memory_have_awss_minimums_and_are_finite(batch: Any, overrides: dict[str, Any]) -> None:
    # "For EC2 resources, you must specify at least one vCPU"; "at least 4 MiB of memory".
    refused(batch.submit_job, jobName="x", jobQueue="q", jobDefinition="nf-demo", containerOverrides=overrides)


def test_an_oversized_job_never_overcommits_the_compute_environment(lb: LocalBatch, batch: Any) -> None:
    ids = [submit(batch, f"j{i}", containerOverrides={"vcpus": 4}) for i in range(5)]
    lb.advance(10)
    assert sorted(j["status"] for j in describe(batch, *ids)).count("RUNNING") == 1


def test_list_lengths_follow_the_api_reference(batch: Any) -> None:
    first = submit(batch, "dep")
    # "A job can depend upon a maximum of 20 jobs."
    msg = refused(batch.submit_job, jobName="x", jobQueue="q", jobDefinition="nf-demo",
                  dependsOn=[{"jobId": first}] * 21)  # fmt: skip
    assert "20" in msg
    many = [{"jobId": first}] * 100_000
    refused(batch.submit_job, jobName="x", jobQueue="q", jobDefinition="nf-demo", dependsOn=many)
    # 50 tags at most (TagrisTagsMap max 50), keys 1-128 characters, values up to 256.
    refused(batch.submit_job, jobName="x", jobQueue="q", jobDefinition="nf-demo", tags={f"k{i}": "v" for i in range(51)})
    refused(batch.submit_job, jobName="x", jobQueue="q", jobDefinition="nf-demo", tags={"k" * 129: "v"})
    refused(batch.submit_job, jobName="x", jobQueue="q", jobDefinition="nf-demo", tags={"k": "v" * 257})
    # "You can associate up to three compute environments with a job queue."
    for i in range(4):
        batch.create_compute_environment(**ce_params(f"ce{i}"))
    refused(batch.create_job_queue, jobQueueName="wide", priority=1,
            computeEnvironmentOrder=[{"order": i, "computeEnvironment": f"ce{i}"} for i in range(4)])  # fmt: skip


def test_tag_keys_with_the_aws_prefix_are_reserved(batch: Any) -> None:
    assert "aws:" in refused(batch.submit_job, jobName="x", jobQueue="q", jobDefinition="nf-demo",
                             tags={"aws:cloudformation:stack-name": "s"})  # fmt: skip
    job_id = submit(batch)
    arn = describe(batch, job_id)[0]["jobArn"]
    refused(batch.tag_resource, resourceArn=arn, tags={"AWS:x": "y"})
    batch.tag_resource(resourceArn=arn, tags={"team": "x"})
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "x"}


@pytest.mark.parametrize("max_results", [0, -1])
def test_max_results_minimum_is_one(batch: Any, max_results: int) -> None:
    # "The minimum value is 1."
    refused(batch.list_jobs, jobQueue="q", maxResults=max_results)
    refused(batch.describe_job_queues, maxResults=max_results)


def test_max_results_above_the_cap_is_capped_and_describe_calls_take_1_to_100(lb: LocalBatch, batch: Any) -> None:
    lb.submit_jobs(1005, queue="q", command=["bash", "-c", "sleep 1000"], vcpus=None)
    page = batch.list_jobs(jobQueue="q", jobStatus="SUBMITTED", maxResults=1_000_000_000)
    assert len(page["jobSummaryList"]) == 1000 and "nextToken" in page
    page = batch.list_jobs(jobQueue="q", filters=[{"name": "JOB_NAME", "values": ["job*"]}], maxResults=5000)
    assert len(page["jobSummaryList"]) == 100
    refused(batch.list_jobs, jobQueue="q", maxResults=1e9)  # not an integer
    refused(batch.list_jobs, jobQueue="q", maxResults=2**31)  # not a 32-bit integer
    refused(batch.describe_job_queues, maxResults=101)  # "This value can be between 1 and 100."


def test_a_nan_terminate_delay_or_speed_is_refused_in_process(lb: LocalBatch) -> None:
    with pytest.raises(ValueError, match="finite"):
        LocalBatch(speed=float("nan"))
    with pytest.raises(ValueError, match="finite"):
        lb.advance(float("nan"))
    assert lb.terminate_delay == 0


# --- dependsOn ------------------------------------------------------------------------------


def test_a_job_waits_in_pending_for_its_dependency_then_runs(lb: LocalBatch, batch: Any) -> None:
    first = submit(batch, "first", "sleep 30")
    second = submit(batch, "second", "sleep 30", dependsOn=[{"jobId": first}])
    lb.advance(10)
    assert [j["status"] for j in describe(batch, first, second)] == ["RUNNING", "PENDING"]
    assert describe(batch, second)[0]["dependsOn"] == [{"jobId": first}]
    lb.advance(30)  # first ends at 33 s
    assert [j["status"] for j in describe(batch, first, second)] == ["SUCCEEDED", "RUNNING"]
    lb.advance(40)
    assert describe(batch, second)[0]["status"] == "SUCCEEDED"


def test_a_failed_dependency_fails_the_job_with_awss_reason(lb: LocalBatch, batch: Any) -> None:
    first = submit(batch, "first", "sleep 30; exit 2")
    second = submit(batch, "second", dependsOn=[{"jobId": first}])
    third = submit(batch, "third", dependsOn=[{"jobId": second}])
    lb.advance(60)
    jobs = describe(batch, first, second, third)
    assert [j["status"] for j in jobs] == ["FAILED", "FAILED", "FAILED"]
    assert [j.get("statusReason") for j in jobs[1:]] == ["Dependent Job failed"] * 2
    assert all("startedAt" not in j and j["attempts"] == [] for j in jobs[1:])
    # A job submitted after its dependency already failed fails too.
    late = submit(batch, "late", dependsOn=[{"jobId": first}])
    lb.advance(5)
    assert describe(batch, late)[0]["statusReason"] == "Dependent Job failed"


def test_cancelling_a_dependency_fails_the_waiting_job(lb: LocalBatch, batch: Any) -> None:
    first = submit(batch, "first", containerOverrides={"vcpus": 4})
    blocked = submit(batch, "blocked", containerOverrides={"vcpus": 4})  # RUNNABLE behind first
    waiting = submit(batch, "waiting", dependsOn=[{"jobId": blocked}])
    lb.advance(5)
    batch.cancel_job(jobId=blocked, reason="not needed")
    lb.advance(5)
    assert [j["status"] for j in describe(batch, blocked, waiting)] == ["FAILED", "FAILED"]
    assert describe(batch, first)[0]["status"] == "RUNNING"


def test_unknown_dependencies_are_refused(batch: Any) -> None:
    assert "does not exist" in refused(batch.submit_job, jobName="x", jobQueue="q", jobDefinition="nf-demo",
                                       dependsOn=[{"jobId": "no-such-job"}])  # fmt: skip


def test_array_dependencies_n_to_n_and_sequential(lb: LocalBatch, batch: Any) -> None:
    lb.create_environment("big", vcpus=64)
    first = submit(batch, "a", "sleep 30", jobQueue="big", arrayProperties={"size": 3})
    lb.set_job_behavior(f"{first}:1", duration=90)
    n2n = submit(batch, "b", "sleep 30", jobQueue="big", arrayProperties={"size": 3},
                 dependsOn=[{"jobId": first, "type": "N_TO_N"}])  # fmt: skip
    seq = submit(batch, "c", "sleep 30", jobQueue="big", arrayProperties={"size": 3}, dependsOn=[{"type": "SEQUENTIAL"}])
    lb.advance(40)
    status = {j["jobId"]: j["status"] for j in describe(batch, *(f"{x}:{i}" for x in (n2n, seq) for i in range(3)))}
    # N_TO_N: child i waits for child i of the other array only.
    assert [status[f"{n2n}:{i}"] for i in range(3)] == ["RUNNING", "PENDING", "RUNNING"]
    # SEQUENTIAL: each child waits for the one before it.
    assert [status[f"{seq}:{i}"] for i in range(3)] == ["SUCCEEDED", "RUNNING", "PENDING"]
    refused(batch.submit_job, jobName="x", jobQueue="big", jobDefinition="nf-demo", arrayProperties={"size": 2},
            dependsOn=[{"jobId": first, "type": "N_TO_N"}])  # fmt: skip


# --- queues and compute environments ---------------------------------------------------------


def test_a_queue_places_jobs_on_its_compute_environments_in_order(lb: LocalBatch, batch: Any) -> None:
    batch.create_compute_environment(**ce_params("small", maxvCpus=2))
    batch.create_compute_environment(**ce_params("spill", maxvCpus=4))
    batch.create_job_queue(jobQueueName="two", priority=1, computeEnvironmentOrder=[
        {"order": 2, "computeEnvironment": "spill"}, {"order": 1, "computeEnvironment": "small"}])  # fmt: skip
    ids = [submit(batch, f"j{i}", jobQueue="two") for i in range(7)]
    lb.advance(5)
    jobs = describe(batch, *ids)
    assert [j["status"] for j in jobs].count("RUNNING") == 6  # 2 on "small", then 4 on "spill"
    clusters = [j["container"]["taskArn"].split(":task/")[1].split("_Batch_")[0] for j in jobs if j["status"] == "RUNNING"]
    assert clusters == ["small"] * 2 + ["spill"] * 4
    order = batch.describe_job_queues(jobQueues=["two"])["jobQueues"][0]["computeEnvironmentOrder"]
    assert [o["order"] for o in order] == [1, 2] and order[0]["computeEnvironment"].endswith("/small")


def test_update_job_queue_disables_and_enables_and_reorders(lb: LocalBatch, batch: Any) -> None:
    running = submit(batch, "running")
    lb.advance(5)
    batch.update_job_queue(jobQueue="q", state="DISABLED")
    assert batch.describe_job_queues(jobQueues=["q"])["jobQueues"][0]["state"] == "DISABLED"
    assert "DISABLED" in refused(batch.submit_job, jobName="x", jobQueue="q", jobDefinition="nf-demo")
    # "jobs already in the queue can finish"
    lb.advance(100)
    assert describe(batch, running)[0]["status"] == "SUCCEEDED"
    batch.update_job_queue(jobQueue="q", state="ENABLED")
    big = submit(batch, "big", containerOverrides={"vcpus": 8})
    lb.advance(5)
    assert describe(batch, big)[0]["status"] == "RUNNABLE"  # 8 vCPUs: more than q-ce's 4
    batch.create_compute_environment(**ce_params("wide", maxvCpus=16))
    batch.update_job_queue(jobQueue="q", computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "wide"}])
    lb.advance(5)
    assert describe(batch, big)[0]["status"] == "RUNNING"
    assert "not found" in refused(batch.update_job_queue, jobQueue="nope", state="ENABLED")


def test_a_higher_priority_queue_gets_a_shared_compute_environment_first(lb: LocalBatch, batch: Any) -> None:
    batch.create_job_queue(jobQueueName="urgent", priority=10,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "q-ce"}])  # fmt: skip
    hog = submit(batch, "hog", "sleep 10", containerOverrides={"vcpus": 4})
    lb.advance(3)
    low = submit(batch, "low", containerOverrides={"vcpus": 4})
    high = submit(batch, "high", jobQueue="urgent", containerOverrides={"vcpus": 4})
    lb.advance(5)  # both RUNNABLE while the hog runs
    lb.advance(10)  # the hog ends: the higher-priority queue is evaluated first
    assert [j["status"] for j in describe(batch, hog, low, high)] == ["SUCCEEDED", "RUNNABLE", "RUNNING"]


# --- listing ----------------------------------------------------------------------------------


def test_filtered_list_jobs_returns_the_newest_first_across_pages(lb: LocalBatch, batch: Any) -> None:
    ids = []
    for i in range(7):
        ids.append(submit(batch, f"batch-{i}"))
        lb.advance(1)
    seen: list[str] = []
    kw: dict[str, Any] = {"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["batch-*"]}], "maxResults": 3}
    while True:
        page = batch.list_jobs(**kw)
        seen += [s["jobId"] for s in page["jobSummaryList"]]
        if "nextToken" not in page:
            break
        kw["nextToken"] = page["nextToken"]
        submit(batch, "batch-late")  # a job submitted while paging does not shift the pages
    assert seen == ids[::-1]


def test_created_at_filters_agree_with_the_created_at_shown(lb: LocalBatch, batch: Any) -> None:
    lb.advance(0.0004)  # off the millisecond grid: createdAt is shown rounded
    job_id = submit(batch, "edge")
    created = describe(batch, job_id)[0]["createdAt"]

    def listed(name: str, value: int) -> bool:
        page = batch.list_jobs(jobQueue="q", filters=[{"name": name, "values": [str(value)]}])
        return job_id in [s["jobId"] for s in page["jobSummaryList"]]

    # The job's own createdAt excludes it from both sides, every time; one ms either way includes it.
    assert not listed("AFTER_CREATED_AT", created) and not listed("BEFORE_CREATED_AT", created)
    assert listed("AFTER_CREATED_AT", created - 1) and listed("BEFORE_CREATED_AT", created + 1)
    assert created == round(created)


def test_job_summaries_carry_is_cancelled_and_is_terminated(lb: LocalBatch, batch: Any) -> None:
    cancelled = submit(batch, "c")
    batch.cancel_job(jobId=cancelled, reason="no")
    terminated = submit(batch, "t")
    lb.advance(5)
    batch.terminate_job(jobId=terminated, reason="stop")
    done = submit(batch, "d", "sleep 1")
    lb.advance(10)
    summaries = {s["jobName"]: s for s in batch.list_jobs(jobQueue="q", jobStatus="FAILED")["jobSummaryList"]}
    assert (summaries["c"]["isCancelled"], summaries["c"]["isTerminated"]) == (True, False)
    assert (summaries["t"]["isCancelled"], summaries["t"]["isTerminated"]) == (False, True)
    ok = batch.list_jobs(jobQueue="q", jobStatus="SUCCEEDED")["jobSummaryList"]
    assert [(s["jobId"], s["isCancelled"], s["isTerminated"]) for s in ok] == [(done, False, False)]


def test_job_ids_differ_across_emulator_restarts() -> None:
    ids = []
    for _ in range(2):
        with LocalBatch(manual_clock=True, start_time=EMU_T0, seed=7) as emu:
            emu.create_environment("q")
            ids.append(submit(emu.client(), "same"))
    assert ids[0] != ids[1]


# --- a sped-up clock for outside clients ------------------------------------------------------


def test_a_sped_up_serve_keeps_timestamps_on_the_wall_clock() -> None:
    with LocalBatch(speed=100.0, wall_timestamps=True) as fast:
        fast.create_environment("q")
        batch = fast.client()
        before = time.time()
        job_id = submit(batch, "quick", "sleep 100")  # 100 s of work: 1 s of wall time at x100
        deadline = time.monotonic() + 20
        while describe(batch, job_id)[0]["status"] != "SUCCEEDED" and time.monotonic() < deadline:
            time.sleep(0.05)  # real time: this test is about the real clock
        job = describe(batch, job_id)[0]
        after = time.time()
    assert job["status"] == "SUCCEEDED"
    assert before * 1000 - 5 <= job["createdAt"] <= job["stoppedAt"] <= after * 1000 + 5
    assert 900 <= job["stoppedAt"] - job["startedAt"] <= 1100  # 100 s of work, shown as 1 s


def test_update_compute_environment_disables_placement_and_changes_capacity(lb: LocalBatch, batch: Any) -> None:
    running = submit(batch, "running")
    lb.advance(5)
    batch.update_compute_environment(computeEnvironment="q-ce", state="DISABLED")
    waiting = submit(batch, "waiting")
    lb.advance(5)
    # "Jobs in a STARTING or RUNNING state continue to progress normally"; nothing new is placed.
    assert [j["status"] for j in describe(batch, running, waiting)] == ["RUNNING", "RUNNABLE"]
    batch.update_compute_environment(computeEnvironment="q-ce", state="ENABLED", computeResources={"maxvCpus": 16})
    big = submit(batch, "big", containerOverrides={"vcpus": 8})
    lb.advance(5)
    assert [j["status"] for j in describe(batch, waiting, big)] == ["RUNNING", "RUNNING"]
    env = batch.describe_compute_environments(computeEnvironments=["q-ce"])["computeEnvironments"][0]
    assert (env["state"], env["computeResources"]["maxvCpus"]) == ("ENABLED", 16)
    refused(batch.update_compute_environment, computeEnvironment="q-ce", computeResources={"maxvCpus": -1})
    assert "not found" in refused(batch.update_compute_environment, computeEnvironment="nope", state="ENABLED")


def test_deregistered_job_definition_revisions_are_inactive(lb: LocalBatch, batch: Any) -> None:
    batch.register_job_definition(jobDefinitionName="nf-demo", type="container",
                                  containerProperties={"image": "x", "vcpus": 1, "memory": 64})  # fmt: skip
    batch.deregister_job_definition(jobDefinition="nf-demo:2")
    revisions = batch.describe_job_definitions(jobDefinitionName="nf-demo")["jobDefinitions"]
    assert [(d["revision"], d["status"]) for d in revisions] == [(1, "ACTIVE"), (2, "INACTIVE")]
    job = describe(batch, submit(batch, "by-name"))[0]
    assert job["jobDefinition"].endswith(":1")  # the latest ACTIVE revision
    batch.deregister_job_definition(jobDefinition="nf-demo:1")
    assert "ACTIVE status" in refused(batch.submit_job, jobName="x", jobQueue="q", jobDefinition="nf-demo")


def test_cancelling_a_job_waiting_for_dependencies_takes_effect_when_they_complete(lb: LocalBatch, batch: Any) -> None:
    # CancelJob: "A PENDING job is cancelled after all dependency jobs are completed."
    first = submit(batch, "first", "sleep 30")
    second = submit(batch, "second", dependsOn=[{"jobId": first}])
    lb.advance(10)
    batch.cancel_job(jobId=second, reason="not needed")
    lb.advance(10)
    assert [j["status"] for j in describe(batch, first, second)] == ["RUNNING", "PENDING"]
    lb.advance(20)  # first ends at 33 s
    first_job, second_job = describe(batch, first, second)
    assert first_job["status"] == "SUCCEEDED"
    assert (second_job["status"], second_job["statusReason"], second_job["isCancelled"]) == ("FAILED", "not needed", True)
    assert second_job["attempts"] == []


def test_a_simulated_nextflow_driving_a_wall_clock_serve_keeps_the_wall_clock() -> None:
    """`batchkit sim run` against `batchkit sim serve --speed N` reads the emulator's clock
    through /_admin/clock: its own timestamps must stay on the wall clock too."""
    from batchkit.sim._nf_control import AdminControl

    with LocalBatch(speed=50.0, wall_timestamps=True) as fast:
        control = AdminControl(fast.endpoint_url)
        time.sleep(0.3)  # real time: 15 s of work at x50, but the clocks stay on the wall
        assert abs(control.now() - time.time()) < 0.5
        assert abs(control.now() - fast.clock.now()) < 0.5
