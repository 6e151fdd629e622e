"""Contract test: the same BatchClient calls against moto's Batch and against LocalBatch.

moto is an implementation nobody here wrote, so agreement on the operations both implement
checks the client and the emulator against a third opinion. moto runs in server mode on
127.0.0.1 with its Docker-free "batch_simple" backend (jobs succeed at submit time).

Differences found (asserted in ``test_moto_differences`` so they stay true):
- moto has no TerminateJobs/CancelJobs: its router answers HTTP 404 with an HTML page
  (botocore code "404"); BatchClient detects that and falls back to TerminateJob/CancelJob.
- moto has no lifecycle: a job is SUCCEEDED as soon as SubmitJob returns, so a kill of a
  moto job is always "already_done".
- moto's ListJobs ignores maxResults and never pages (no nextToken); it ignores the
  AFTER_CREATED_AT filter ("Return True for unsupported filters"), and without jobStatus it
  lists every status where Batch lists RUNNING only. BatchClient applies status/time/name
  conditions client-side, so its answers agree anyway.
- moto's DescribeJobs with an empty id list returns every job (Batch: none); BatchClient
  never sends an empty list.
- Error wording: moto "Job queue nope does not exist", LocalBatch AWS's "JobQueue nope not
  found." (both ClientException); both answer 200 to TerminateJob/CancelJob of an unknown id.
- Shapes: moto's job detail and summary carry ``stoppedAt``; LocalBatch's detail carries
  ``platformCapabilities`` and ``propagateTags``; moto's job definition carries
  ``parameters`` and ``tags``, LocalBatch's ``containerOrchestrationType``.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from batchkit.client import UNKNOWN_OPERATION_CODES, BatchClient
from batchkit.errors import AwsError, NotFoundError
from batchkit.retry import error_code, http_status
from batchkit.schema import JOB_STATUSES, JOB_TERMINAL, SUBMISSION_TAG
from batchkit.sim.localbatch import LocalBatch

QUEUE = "contract-queue"
JOBDEF = "contract-jobdef"


@functools.cache
def _session() -> Any:
    return boto3.session.Session()  # parse botocore's models once


def _boto(url: str, service: str = "batch") -> Any:
    return _session().client(
        service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="k",
        aws_secret_access_key="s", config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )


@dataclass
class Backend:
    name: str
    url: str
    #: moves the backend's lifecycle on (LocalBatch's manual clock); a no-op for moto
    settle: Callable[[], None]

    def raw(self) -> Any:
        return _boto(self.url)

    def client(self) -> BatchClient:
        return BatchClient(self.raw(), rate=1000.0, deadline=30.0, rng=random.Random(5),
                           sleep=lambda s: None)


@pytest.fixture(scope="module")
def moto_backend() -> Iterator[Backend]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    config = urllib.request.Request(
        f"{url}/moto-api/config", data=json.dumps({"batch": {"use_docker": False}}).encode(), method="POST"
    )
    urllib.request.urlopen(config, timeout=10).read()
    # moto checks the service role exists in its IAM; an UNMANAGED CE needs no instances.
    role = _boto(url, "iam").create_role(RoleName="contract", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    batch = _boto(url)
    ce = batch.create_compute_environment(
        computeEnvironmentName=f"{QUEUE}-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    batch.create_job_queue(
        jobQueueName=QUEUE, state="ENABLED", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
    )
    batch.register_job_definition(
        jobDefinitionName=JOBDEF, type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]},
    )
    try:
        yield Backend("moto", url, lambda: None)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def localbatch_backend() -> Iterator[Backend]:
    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment(QUEUE, vcpus=64, job_definition=JOBDEF)
        yield Backend("localbatch", lb.endpoint_url, lambda: lb.advance(30))


@pytest.fixture(params=["moto", "localbatch"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue(f"{request.param}_backend")  # type: ignore[no-any-return]


LONG = {"command": ["bash", "-c", "sleep 100000"]}


def test_submit_describe_roundtrip(backend: Backend) -> None:
    with backend.client() as bc:
        out = bc.submit_job(job_name="contract-a", job_queue=QUEUE, job_definition=JOBDEF,
                            containerOverrides=LONG, tags={"team": "x"})
        backend.settle()
        result = bc.describe_jobs([out["jobId"], "00000000-0000-0000-0000-00000000beef"])
    assert out["attempts"] == 1 and out["deduplicated"] is False
    job = result.jobs[out["jobId"]]
    assert result.missing == ["00000000-0000-0000-0000-00000000beef"] and result.failed == []
    assert job["jobName"] == "contract-a" and job["status"] in JOB_STATUSES
    assert job["tags"] == {"team": "x", SUBMISSION_TAG: out["submissionId"]}
    assert job["jobQueue"].endswith(QUEUE)
    assert isinstance(job["createdAt"], int)


def test_list_jobs_filters_agree(backend: Backend) -> None:
    with backend.client() as bc:
        ids = [bc.submit_job(job_name=f"listed-{i}", job_queue=QUEUE, job_definition=JOBDEF,
                             containerOverrides=LONG)["jobId"] for i in range(3)]
        backend.settle()
        created = min(j["createdAt"] for j in bc.describe_jobs(ids).jobs.values())
        everything = {s["jobId"] for s in bc.list_jobs(QUEUE)}
        named = {s["jobId"] for s in bc.list_jobs(QUEUE, name_prefix="LISTED-")}
        recent = {s["jobId"] for s in bc.list_jobs(QUEUE, created_after=created / 1000 - 1)}
        future = bc.list_jobs(QUEUE, created_after=time.time() + 10 * 86400)
        with pytest.raises(NotFoundError) as info:
            bc.list_jobs("no-such-queue")
    assert set(ids) <= everything and named == set(ids) and set(ids) <= recent
    assert future == []
    assert "no-such-queue" in str(info.value)


def test_kills_are_idempotent(backend: Backend) -> None:
    with backend.client() as bc:
        jid = bc.submit_job(job_name="kill-me", job_queue=QUEUE, job_definition=JOBDEF,
                            containerOverrides=LONG)["jobId"]
        backend.settle()
        first = bc.terminate_jobs([jid, "00000000-0000-0000-0000-00000000dead"], "batchkit: contract")
        second = bc.terminate_jobs([jid], "batchkit: contract")
        cancelled = bc.cancel_jobs([jid], "batchkit: contract")
        final = bc.describe_jobs([jid]).jobs[jid]
    assert first[0].outcome in {"terminated", "already_done"} and first[0].status in JOB_TERMINAL
    assert first[1].outcome == "not_found"
    assert second[0].outcome == "already_done" and cancelled[0].outcome == "already_done"
    assert final["status"] in JOB_TERMINAL


def test_queues_environments_definitions(backend: Backend) -> None:
    with backend.client() as bc:
        assert bc.check_queue(QUEUE)["jobQueueName"] == QUEUE
        with pytest.raises(NotFoundError) as info:
            bc.check_queue("no-such-queue")
        assert "no-such-queue" in str(info.value)
        assert [q["jobQueueName"] for q in bc.describe_job_queues([QUEUE, "nope"])] == [QUEUE]
        assert QUEUE in {q["jobQueueName"] for q in bc.describe_job_queues()}
        ces = bc.describe_compute_environments([f"{QUEUE}-ce"])
        assert [c["computeEnvironmentName"] for c in ces] == [f"{QUEUE}-ce"]
        assert JOBDEF in {d["jobDefinitionName"] for d in bc.describe_job_definitions()}


def test_bad_input_is_a_clear_error(backend: Backend) -> None:
    with backend.client() as bc:
        with pytest.raises(NotFoundError) as info:
            bc.submit_job(job_name="x", job_queue="no-such-queue", job_definition=JOBDEF)
        assert "no-such-queue" in str(info.value) and info.value.code == "ClientException"
        with pytest.raises(AwsError) as info2:
            bc.submit_job(job_name="x", job_queue=QUEUE, job_definition="no-such-jobdef")
        assert "no-such-jobdef" in str(info2.value)
        assert bc.stats.retries == 0  # bad input is never retried


def test_moto_differences(moto_backend: Backend) -> None:
    raw = moto_backend.raw()
    ids = [raw.submit_job(jobName=f"diff-{i}", jobQueue=QUEUE, jobDefinition=JOBDEF)["jobId"] for i in range(3)]
    # no lifecycle: done at submit
    assert {j["status"] for j in raw.describe_jobs(jobs=ids)["jobs"]} == {"SUCCEEDED"}
    # no bulk kills: 404 from the router, which the client takes as "unknown operation"
    with pytest.raises(ClientError) as info:
        raw.terminate_jobs(jobs=ids[:1], reason="x")
    assert http_status(info.value) == 404 and error_code(info.value) in UNKNOWN_OPERATION_CODES
    # no paging, and filters/status defaults differ from Batch
    page = raw.list_jobs(jobQueue=QUEUE, jobStatus="SUCCEEDED", maxResults=1)
    assert len(page["jobSummaryList"]) >= 3 and "nextToken" not in page
    future = str(int((time.time() + 10 * 86400) * 1000))
    ignored = raw.list_jobs(jobQueue=QUEUE, filters=[{"name": "AFTER_CREATED_AT", "values": [future]}])
    assert len(ignored["jobSummaryList"]) >= 3
    assert {s["status"] for s in raw.list_jobs(jobQueue=QUEUE)["jobSummaryList"]} >= {"SUCCEEDED"}
    assert len(raw.describe_jobs(jobs=[])["jobs"]) >= 3

