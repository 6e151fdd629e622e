"""BatchClient under faults injected on the CLIENT side, over real HTTP to moto's Batch.

A botocore ``before-send`` hook on the boto3 client passed to ``BatchClient(client=...)``
answers instead of the server (500 AuthorizerConfigurationException, 429, empty and malformed
bodies) or raises connection errors, so the client is shown to survive without any
cooperation from the server. ``Stubber`` cannot do this: it answers before botocore's retry
loop (docs/ARCHITECTURE.md §4). The clock and sleep are fake: no test sleeps for real.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from batchkit.client import BatchClient
from batchkit.errors import ApiUnavailableError, AwsError, CredentialsError, NotFoundError
from batchkit.schema import SUBMISSION_TAG

QUEUE = "faults-queue"
JOBDEF = "faults-jobdef"
N_JOBS = 230  # three DescribeJobs chunks


class FakeClock:
    """Moves only when something sleeps on it; thread-safe (describe_jobs uses threads)."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def answer(
    url: str, status: int, body: dict[str, Any], error_type: str | None = None
) -> AWSResponse:
    headers = {"content-type": "application/json", "x-amzn-requestid": str(uuid.uuid4())}
    if error_type:
        # API Gateway's authorizer failure names its type in this header, body {"message": null}.
        headers["x-amzn-ErrorType"] = f"{error_type}:http://internal.amazon.com/coral/"
    return AWSResponse(url, status, headers, _Body(json.dumps(body).encode()))


@dataclass
class Rule:
    op: str | None
    kind: str
    rate: float = 1.0
    count: int | None = None
    until: float | None = None  # fire while the fake clock is before this


@dataclass
class ClientFaults:
    """A before-send hook: decides per request whether to answer/raise instead of the server."""

    clock: FakeClock | None = None
    seed: int = 1
    rules: list[Rule] = field(default_factory=list)
    fired: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    bodies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._http = URLLib3Session()

    def add(self, op: str | None, kind: str, **kw: Any) -> None:
        self.rules.append(Rule(op, kind, **kw))

    def install(self, client: Any) -> Any:
        client.meta.events.register("before-send.batch", self)
        return client

    def _decide(self, op: str) -> str | None:
        with self._lock:
            self.sent[op] += 1
            for rule in self.rules:
                if rule.op not in (None, op):
                    continue
                if rule.count is not None and rule.count <= 0:
                    continue
                if rule.until is not None and (self.clock is None or self.clock() >= rule.until):
                    continue
                if rule.rate < 1.0 and self._rng.random() >= rule.rate:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                self.fired[rule.kind] += 1
                return rule.kind
            return None

    def __call__(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        op = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.bodies.append((op, json.loads(request.body or b"{}")))
        kind = self._decide(op)
        url = request.url
        if kind is None:
            return None
        if kind == "authorizer-500":
            return answer(url, 500, {"message": None}, "AuthorizerConfigurationException")
        if kind == "server-500":
            return answer(url, 500, {"__type": "ServerException", "message": "internal error"})
        if kind == "throttle-429":
            return answer(
                url, 429, {"__type": "TooManyRequestsException", "message": "Too Many Requests"}
            )
        if kind == "drop":
            raise ConnectionClosedError(endpoint_url=url)
        if kind == "reset":
            raise ConnectionResetError(104, "Connection reset by peer")
        if kind == "timeout":
            raise ReadTimeoutError(endpoint_url=url)
        if kind == "empty-body":
            return answer(url, 200, {})
        if kind == "empty-list":
            return answer(url, 200, {"jobs": []})
        if kind == "loop-token":
            # A front end that hands back the same page token every time.
            key = {"ListJobs": "jobSummaryList", "DescribeJobQueues": "jobQueues"}[op]
            return answer(url, 200, {key: [], "nextToken": "again"})
        if kind == "applied-lost":
            self._http.send(request)  # the server applies it ... and the answer is lost
            raise ConnectionClosedError(endpoint_url=url)
        raise AssertionError(f"unknown client-side fault {kind}")


# --- moto server, shared by the module --------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's Batch runs jobs in Docker unless told not to ("batch_simple": jobs just succeed).
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=json.dumps({"batch": {"use_docker": False}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).read()
    try:
        yield url
    finally:
        server.stop()


@functools.cache
def _session() -> Any:
    return boto3.session.Session()  # one loader: parsing botocore's models per client is slow


def boto(url: str, service: str = "batch") -> Any:
    return _session().client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 3}, max_pool_connections=20
        ),
    )


@pytest.fixture(scope="module")
def seeded(moto_url: str) -> dict[str, dict[str, Any]]:
    """A queue with N_JOBS jobs; returns {jobId: describe dict} as moto holds them."""
    iam, batch = boto(moto_url, "iam"), boto(moto_url)
    role = iam.create_role(RoleName="faults-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    ce = batch.create_compute_environment(
        computeEnvironmentName="faults-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    batch.create_job_queue(
        jobQueueName=QUEUE,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
    )
    batch.register_job_definition(
        jobDefinitionName=JOBDEF,
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]},
    )
    with ThreadPoolExecutor(8) as pool:
        ids = list(
            pool.map(
                lambda i: batch.submit_job(
                    jobName=f"seed-{i}", jobQueue=QUEUE, jobDefinition=JOBDEF
                )["jobId"],
                range(N_JOBS),
            )
        )
    truth: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 100):
        for job in batch.describe_jobs(jobs=ids[i : i + 100])["jobs"]:
            truth[job["jobId"]] = job
    assert len(truth) == N_JOBS
    return truth


def make(url: str, faults: ClientFaults, clock: FakeClock, **kw: Any) -> BatchClient:
    kw.setdefault("rate", 1000.0)
    return BatchClient(
        faults.install(boto(url)), clock=clock, sleep=clock.sleep, rng=random.Random(3), **kw
    )


# --- describe_jobs survives -----------------------------------------------------------------


def test_describe_survives_mixed_client_side_faults(
    moto_url: str, seeded: dict[str, dict[str, Any]]
) -> None:
    clock = FakeClock()
    faults = ClientFaults(clock=clock)
    faults.add("DescribeJobs", "throttle-429", count=6)
    faults.add("DescribeJobs", "drop", count=2)
    faults.add("DescribeJobs", "reset", count=2)
    faults.add("DescribeJobs", "timeout", count=1)
    faults.add("DescribeJobs", "empty-body", count=2)
    faults.add("DescribeJobs", "authorizer-500", rate=0.3)
    ids = [*seeded, "no-such-job-1", "no-such-job-2"]
    with make(moto_url, faults, clock) as bc:
        result = bc.describe_jobs(ids)
        stats = bc.stats
    assert result.failed == []
    assert sorted(result.missing) == ["no-such-job-1", "no-such-job-2"]
    assert {jid: job["status"] for jid, job in result.jobs.items()} == {
        jid: job["status"] for jid, job in seeded.items()
    }
    assert faults.fired["authorizer-500"] > 0 and faults.fired["throttle-429"] == 6
    assert faults.fired["drop"] == faults.fired["reset"] == faults.fired["empty-body"] == 2
    assert (
        stats.errors_by_code["AuthorizerConfigurationException"] == faults.fired["authorizer-500"]
    )
    assert stats.errors_by_code["TooManyRequestsException"] == 6
    assert stats.errors_by_code["MalformedResponse"] == 2
    assert stats.errors_by_code["ConnectionResetError"] == 2
    assert stats.operations["DescribeJobs"].retries >= sum(
        faults.fired.values()
    ) - stats.errors_by_code.get("ConnectionResetError", 0)
    # every request went through the budget and the counters, faulted or not
    assert stats.operations["DescribeJobs"].calls == faults.sent["DescribeJobs"]
    assert stats.budget.acquired == sum(faults.sent.values())
    # "degraded" counts the retries of the last minute on the (fake) clock; the backoff of
    # chunks retried in parallel can push the early ones out of that window, so the flag
    # follows what is still inside it rather than the run's total.
    assert stats.retries_last_minute >= 1
    assert stats.degraded == (stats.retries_last_minute >= 5)
    assert clock.sleeps, "backoff went through the injected sleep"


def test_outage_longer_than_botocore_attempts_is_outlasted(
    moto_url: str, seeded: dict[str, dict[str, Any]]
) -> None:
    clock = FakeClock()
    faults = ClientFaults(clock=clock)
    # A 90-second outage on the fake clock: botocore's 3 attempts are long gone by its end.
    faults.add("DescribeJobs", "authorizer-500", until=clock.now + 90.0)
    with make(moto_url, faults, clock) as bc:
        result = bc.describe_jobs(list(seeded)[:100])
        stats = bc.stats
    assert len(result.jobs) == 100 and not result.failed and not result.missing
    assert clock.now >= 10_000.0 + 90.0
    assert faults.fired["authorizer-500"] > 3
    assert stats.operations["DescribeJobs"].retries == faults.fired["authorizer-500"]
    assert (
        stats.last_error is not None and stats.last_error.code == "AuthorizerConfigurationException"
    )
    assert stats.last_error.operation == "DescribeJobs"


def test_botocore_retries_are_counted_budgeted_and_use_the_injected_sleep(
    moto_url: str, seeded: dict[str, dict[str, Any]]
) -> None:
    clock = FakeClock()
    faults = ClientFaults(clock=clock)
    faults.add("DescribeJobs", "server-500", count=2)  # within botocore's 3 attempts
    with make(moto_url, faults, clock, rate=5.0) as bc:
        result = bc.describe_jobs(list(seeded)[:10])
        stats = bc.stats
    assert len(result.jobs) == 10
    assert stats.operations["DescribeJobs"].calls == 3
    assert stats.operations["DescribeJobs"].retries == 2
    assert stats.budget.acquired == 3
    assert len(clock.sleeps) >= 2  # botocore's two backoffs, slept on our clock
    assert sum(clock.sleeps) > 0


def test_deadline_puts_ids_in_failed_and_never_raises(
    moto_url: str, seeded: dict[str, dict[str, Any]]
) -> None:
    clock = FakeClock()
    faults = ClientFaults(clock=clock)
    faults.add("DescribeJobs", "authorizer-500")  # forever
    faults.add("ListJobs", "server-500")
    ids = list(seeded)[:150]
    with make(moto_url, faults, clock, deadline=60.0) as bc:
        result = bc.describe_jobs(ids)
        assert result.jobs == {} and result.missing == []
        assert result.failed == ids
        with pytest.raises(ApiUnavailableError) as info:
            bc.list_jobs(QUEUE)
        stats = bc.stats
    assert info.value.operation == "ListJobs" and info.value.code == "ServerException"
    assert f"'{QUEUE}'" in str(info.value) and "ServerException" in str(info.value)
    assert stats.degraded and stats.top_error_code in {
        "AuthorizerConfigurationException",
        "ServerException",
    }


def test_empty_answer_is_asked_again_before_ids_are_declared_missing(
    moto_url: str, seeded: dict[str, dict[str, Any]]
) -> None:
    clock = FakeClock()
    faults = ClientFaults(clock=clock)
    faults.add("DescribeJobs", "empty-list", count=1)
    ids = list(seeded)[:5]
    with make(moto_url, faults, clock) as bc:
        assert sorted(bc.describe_jobs(ids).jobs) == sorted(ids)
        # ids Batch truly does not know: one re-ask, then missing — not an error
        unknown = bc.describe_jobs(["gone-1", "gone-2"])
        stats = bc.stats
    assert unknown.missing == ["gone-1", "gone-2"] and unknown.failed == []
    assert faults.sent["DescribeJobs"] == 2 + 2
    # Only the re-ask that proved the empty answer wrong counts as a retry; the one
    # that confirmed the unknown ids are gone is normal and keeps the API "healthy".
    assert stats.operations["DescribeJobs"].retries == 1


def test_throttled_list_jobs_and_filter_semantics(
    moto_url: str, seeded: dict[str, dict[str, Any]]
) -> None:
    clock = FakeClock()
    faults = ClientFaults(clock=clock)
    faults.add("ListJobs", "throttle-429", count=4)
    with make(moto_url, faults, clock) as bc:
        every = bc.list_jobs(QUEUE)
        sent_plain = [b for op, b in faults.bodies if op == "ListJobs"]
        faults.bodies.clear()
        bc.list_jobs(QUEUE, statuses=["SUCCEEDED"], created_after=0.0, name_prefix="SEED-1")
        sent_filtered = [b for op, b in faults.bodies if op == "ListJobs"]
        faults.bodies.clear()
        named = bc.list_jobs(QUEUE, name_prefix="seed-2", statuses=["SUCCEEDED", "FAILED"])
        sent_named = [b for op, b in faults.bodies if op == "ListJobs"]
    # moto lists every status when jobStatus is given and ignores maxResults: de-duplicated here
    assert sorted(s["jobId"] for s in every) == sorted(seeded)
    # without a filter: one listing per status, 1000 a page
    assert sorted({b["jobStatus"] for b in sent_plain}) == sorted(
        ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
    )
    assert {b["maxResults"] for b in sent_plain} == {1000}
    # created_after wins the one server-side filter, 100 a page; status and name apply here
    assert all(
        b["filters"] == [{"name": "AFTER_CREATED_AT", "values": ["0"]}] for b in sent_filtered
    )
    assert {b["maxResults"] for b in sent_filtered} == {100} and "jobStatus" not in sent_filtered[0]
    assert all(b["filters"] == [{"name": "JOB_NAME", "values": ["seed-2*"]}] for b in sent_named)
    expected = {jid for jid, j in seeded.items() if j["jobName"].startswith("seed-2")}
    assert {s["jobId"] for s in named} == expected


@pytest.mark.parametrize("read", ["list_jobs", "describe_job_queues", "submit_lookup"])
def test_a_repeated_page_token_stops_the_listing_and_says_so(
    moto_url: str, seeded: dict[str, Any], read: str
) -> None:
    clock = FakeClock()
    faults = ClientFaults(clock=clock)
    op = "DescribeJobQueues" if read == "describe_job_queues" else "ListJobs"
    faults.add(op, "loop-token")
    with make(moto_url, faults, clock) as bc, pytest.raises(AwsError) as info:
        if read == "list_jobs":
            bc.list_jobs(QUEUE, statuses=["RUNNING"])
        elif read == "describe_job_queues":
            bc.describe_job_queues()
        else:
            # a timed-out SubmitJob is looked up by its tag before any re-send
            faults.add("SubmitJob", "timeout", count=1)
            bc.submit_job(job_name="submit-loop", job_queue=QUEUE, job_definition=JOBDEF)
    assert info.value.code == "RepeatedNextToken" and info.value.operation == op
    assert "same nextToken twice" in str(info.value)
    # one page, then the page that repeated its token: nothing asked after that
    assert faults.sent[op] == 2
    if read == "submit_lookup":  # the look-up never completed, so nothing was sent again
        assert faults.sent["SubmitJob"] == 1 and count_named(moto_url, "submit-loop") == 0


# --- submissions never duplicate ---------------------------------------------------------------


def count_named(url: str, name: str) -> int:
    batch = boto(url)
    found = batch.list_jobs(jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": [name]}])
    return len({s["jobId"] for s in found["jobSummaryList"] if s["jobName"] == name})


@pytest.mark.parametrize("kind", ["applied-lost", "timeout", "server-500"])
def test_submit_after_ambiguous_failure_never_duplicates(
    moto_url: str, seeded: dict[str, Any], kind: str
) -> None:
    clock = FakeClock()
    faults = ClientFaults(clock=clock)
    if kind == "applied-lost":
        faults.add("SubmitJob", "applied-lost", count=2)  # applied twice? no: looked up first
    else:
        faults.add("SubmitJob", kind, count=2)
    name = f"submit-{kind}"
    with make(moto_url, faults, clock) as bc:
        out = bc.submit_job(
            job_name=name, job_queue=QUEUE, job_definition=JOBDEF, tags={"team": "x"}
        )
        stats = bc.stats
    assert count_named(moto_url, name) == 1
    assert out["jobName"] == name and out["submissionId"]
    job = boto(moto_url).describe_jobs(jobs=[out["jobId"]])["jobs"][0]
    assert job["tags"] == {"team": "x", SUBMISSION_TAG: out["submissionId"]}
    if kind == "applied-lost":
        # the first send was applied: found by its tag, never sent again
        assert out == {**out, "attempts": 1, "deduplicated": True}
        assert faults.sent["SubmitJob"] == 1 and faults.fired["applied-lost"] == 1
    else:
        # not applied: looked for (nothing), then sent again; botocore never re-sent on its own
        assert out["attempts"] == 3 and out["deduplicated"] is False
        assert faults.sent["SubmitJob"] == 3
    assert stats.operations["SubmitJob"].calls == faults.sent["SubmitJob"]
    assert stats.operations["ListJobs"].calls >= 1  # the tag look-up happened


def test_submit_throttled_is_resent_without_lookup(moto_url: str, seeded: dict[str, Any]) -> None:
    clock = FakeClock()
    faults = ClientFaults(clock=clock)
    faults.add("SubmitJob", "throttle-429", count=3)
    with make(moto_url, faults, clock) as bc:
        out = bc.submit_job(
            job_name="submit-throttled",
            job_queue=QUEUE,
            job_definition=JOBDEF,
            submission_id="fixed-id-1",
        )
    assert out["attempts"] == 4 and out["submissionId"] == "fixed-id-1" and not out["deduplicated"]
    assert faults.sent["ListJobs"] == 0  # a 429 was rejected, nothing to look for
    assert count_named(moto_url, "submit-throttled") == 1


def test_submit_to_unknown_queue_says_which(moto_url: str, seeded: dict[str, Any]) -> None:
    clock = FakeClock()
    with make(moto_url, ClientFaults(), clock) as bc:
        with pytest.raises(NotFoundError) as info:
            bc.submit_job(job_name="x", job_queue="no-such-queue", job_definition=JOBDEF)
        assert "no-such-queue" in str(info.value) and info.value.code == "ClientException"
        with pytest.raises(NotFoundError) as info2:
            bc.check_queue("no-such-queue")
        assert "no-such-queue" in str(info2.value) and "describe-job-queues" in str(info2.value)
        assert bc.check_queue(QUEUE)["jobQueueName"] == QUEUE


# --- credentials --------------------------------------------------------------------------------


def test_no_credentials_is_a_clear_error(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    bare = boto3.session.Session().client("batch", region_name="us-east-1", endpoint_url=moto_url)
    clock = FakeClock()
    with BatchClient(bare, clock=clock, sleep=clock.sleep) as bc:
        with pytest.raises(CredentialsError) as info:
            bc.describe_jobs(["a"])
        assert "AWS_PROFILE" in str(info.value) and "endpoint_url" in str(info.value)
        assert clock.sleeps == []  # not retried
    # pointed at a local endpoint, no credentials are needed
    with BatchClient(endpoint_url=moto_url, clock=clock, sleep=clock.sleep) as bc:
        assert bc.check_queue(QUEUE)["jobQueueName"] == QUEUE


# --- the budget, stats and hooks ----------------------------------------------------------------


def test_one_budget_spans_every_call_and_thread(moto_url: str, seeded: dict[str, Any]) -> None:
    clock = FakeClock(start=0.0)
    faults = ClientFaults(clock=clock)
    faults.add("DescribeJobs", "throttle-429", count=2)  # botocore's re-sends pay too
    with make(moto_url, faults, clock, rate=10.0, max_workers=3) as bc:
        assert bc.stats.summary() == "healthy" and not bc.stats.degraded
        bc.describe_jobs(list(seeded))  # 3 chunks on 3 threads
        bc.list_jobs(QUEUE, statuses=["SUCCEEDED", "FAILED"])
        stats = bc.stats
    sends = sum(faults.sent.values())
    assert stats.budget.acquired == sends == stats.calls
    # 10 requests/s, burst 1: the n-th request cannot go before (n-1)/10 s
    assert clock.now >= (sends - 1) / 10.0 - 1e-9
    assert stats.operations["DescribeJobs"].retries == 2


def test_close_takes_the_hooks_off(moto_url: str, seeded: dict[str, Any]) -> None:
    clock = FakeClock()
    faults = ClientFaults(clock=clock)
    raw = faults.install(boto(moto_url))
    bc = BatchClient(raw, clock=clock, sleep=clock.sleep, rate=1000.0)
    bc.describe_jobs(list(seeded)[:1])
    bc.close()
    bc.close()  # idempotent
    acquired = bc.stats.budget.acquired
    faults.add("DescribeJobs", "server-500", count=1)
    # the raw client still works, retries on its own again, and no longer pays our budget
    assert raw.describe_jobs(jobs=list(seeded)[:1])["jobs"]
    assert bc.stats.budget.acquired == acquired
    with pytest.raises(RuntimeError, match="closed"):
        bc.describe_jobs(list(seeded)[:1])


def test_input_checks(moto_url: str) -> None:
    clock = FakeClock()
    with make(moto_url, ClientFaults(), clock) as bc:
        assert bc.describe_jobs([]).jobs == {}
        assert bc.terminate_jobs([], "r") == []
        with pytest.raises(TypeError):
            bc.describe_jobs("one-id-not-a-list")
        with pytest.raises(ValueError, match="unknown job status"):
            bc.list_jobs(QUEUE, statuses=["DONE"])
        with pytest.raises(ValueError, match="at most 1024"):
            bc.terminate_jobs(["a"], "x" * 1025)
        with pytest.raises(ValueError, match="time zone"):
            bc.list_jobs(QUEUE, created_after=datetime(2024, 1, 1))
