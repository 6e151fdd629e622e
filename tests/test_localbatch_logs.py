"""Job output in CloudWatch Logs: LocalBatch writes each attempt's lines, moto serves them.

Real boto3 "logs" clients read what the emulator wrote over real HTTP; moto (a maintained
CloudWatch Logs emulator) is the logs service, so nothing here checks our own reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from batchkit.sim import LocalBatch, MotoBackdrop

pytest.importorskip("moto.server", reason="CloudWatch Logs need moto's server: pip install 'batchkit[emulator]'")

TASK_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def lb() -> Iterator[LocalBatch]:
    # The clock starts at wall time: CloudWatch Logs refuses events older than 14 days.
    with LocalBatch(manual_clock=True, backdrop=True) as emu:
        emu.create_environment("q", vcpus=4)
        yield emu


def lines(logs: Any, stream: str) -> list[str]:
    events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True)["events"]
    return [e["message"] for e in events]


def test_a_running_jobs_log_stream_holds_its_lines(lb: LocalBatch) -> None:
    batch = lb.client()
    job_id = batch.submit_job(
        jobName="hello", jobQueue="q", jobDefinition="nf-demo",
        containerOverrides={"command": ["bash", "-c", "echo hello; echo 'from LocalBatch'; sleep 600"]},
    )["jobId"]
    lb.advance(2.5)
    starting = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert starting["status"] == "STARTING"
    # A task ARN from STARTING on, a log stream only once RUNNING (ContainerDetail docs).
    assert "logStreamName" not in starting["container"]
    task_arn = starting["container"]["taskArn"]
    cluster, task_id = task_arn.split(":task/", 1)[1].split("/")
    assert cluster.startswith("q-ce_Batch_") and TASK_ID.match(task_id)
    assert starting["container"]["containerInstanceArn"].startswith("arn:aws:ecs:us-east-1:123456789012:container-instance/q-ce_Batch_")
    lb.advance(1)
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["status"] == "RUNNING"
    stream = job["container"]["logStreamName"]
    assert stream == f"nf-demo/default/{task_id}"
    assert lines(lb.logs_client(), stream) == ["hello", "from LocalBatch"]
    # The same stream from another client of the same service, as a third party would read it.
    assert lb.backdrop is not None
    assert lines(lb.backdrop.client("logs"), stream) == ["hello", "from LocalBatch"]


def test_output_hook_writes_lines_of_a_running_job_and_of_later_attempts(lb: LocalBatch) -> None:
    batch = lb.client()
    job_id = batch.submit_job(
        jobName="retried", jobQueue="q", jobDefinition="nf-demo", retryStrategy={"attempts": 2},
        containerOverrides={"command": ["bash", "-c", "sleep 100; exit 3"]},
    )["jobId"]
    lb.advance(3.5)
    first = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert first["status"] == "RUNNING"
    lb.set_job_behavior(job_id, output=["Executor: awsbatch", "task done"])
    assert lines(lb.logs_client(), first["container"]["logStreamName"]) == ["Executor: awsbatch", "task done"]
    lb.advance(100)  # the first try exits 3; the retry starts at once (the CE has room)
    retry = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert retry["attempts"][0]["container"]["exitCode"] == 3
    # STARTING again: the top-level container is the new attempt's, with no exit code yet.
    assert retry["status"] == "STARTING" and "exitCode" not in retry["container"]
    assert retry["container"]["taskArn"] != first["container"]["taskArn"]
    lb.advance(1)
    second = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert second["status"] == "RUNNING"
    assert second["container"]["logStreamName"] != first["container"]["logStreamName"]
    assert lines(lb.logs_client(), second["container"]["logStreamName"]) == ["Executor: awsbatch", "task done"]


def test_an_outside_logs_endpoint_receives_the_output() -> None:
    with MotoBackdrop() as aws, LocalBatch(manual_clock=True, logs_endpoint=aws.endpoint_url) as emu:
        emu.create_environment("q")
        batch = emu.client()
        job_id = batch.submit_job(jobName="a", jobQueue="q", jobDefinition="nf-demo",
                                  containerOverrides={"command": ["bash", "-c", "echo one; sleep 9"]})["jobId"]
        emu.advance(3.5)
        stream = batch.describe_jobs(jobs=[job_id])["jobs"][0]["container"]["logStreamName"]
        assert lines(aws.client("logs"), stream) == ["one"]


def test_without_a_logs_endpoint_nothing_is_kept_and_logs_client_says_why() -> None:
    with LocalBatch(manual_clock=True) as emu:
        emu.create_environment("q")
        with pytest.raises(RuntimeError, match="backdrop=True"):
            emu.logs_client()
        assert emu._engine.log_outbox is None
