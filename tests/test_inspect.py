"""The task inspector on the replayed incident: real boto3 over real HTTP.

LocalBatch serves Batch; moto on loopback serves CloudWatch Logs and S3, where the
simulated Nextflow left each task's work-dir files. Faults (AccessDenied, a 500) are
injected at botocore's ``before-send`` on the readers' own clients, so they travel the
same retry and budget path as real answers would.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from botocore.awsrequest import AWSResponse

import batchkit
from batchkit.aws_readers import AwsReaders
from batchkit.client import BatchClient
from batchkit.inspect import inspect, load_earlier, witness
from batchkit.nextflow import NextflowRun
from batchkit.ratelimit import RateBudget
from batchkit.reconcile import plan_kills, reconcile
from batchkit.schema import JobCol, RecCol, TaskCol
from batchkit.sim._nf_workdir import WorkdirWriter
from batchkit.sim.nextflow import Incident, replay_incident


@pytest.fixture
def incident(tmp_path: Any) -> Iterator[Incident]:
    with replay_incident(launch_dir=tmp_path / "launch", n_tasks=20, seed=1) as inc:
        yield inc


class Sleeps:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.waits.append(s)
        self.now += s


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def parts(incident: Incident, sleeps: Sleeps) -> Iterator[tuple[BatchClient, AwsReaders]]:
    batch = BatchClient(endpoint_url=incident.endpoint_urls["batch"])
    # The retry policy sleeps on `sleeps`; the budget has its own clock, so waits are backoffs only.
    budget = RateBudget(1000.0)
    readers = AwsReaders.create(endpoint_urls=incident.endpoint_urls, clock=sleeps.clock, sleep=sleeps.sleep,
                                budget=budget)
    try:
        yield batch, readers
    finally:
        readers.close()
        batch.close()


def _orphan(incident: Incident) -> str:
    return sorted(incident.truth.abandoned_job_ids)[0]


def _task_of(incident: Incident, job_id: str) -> dict[str, Any]:
    return next(t for t in incident.truth.tasks if t["job_id"] == job_id)


def _frame(incident: Incident, batch: BatchClient) -> tuple[pd.DataFrame, NextflowRun]:
    run = NextflowRun.from_dir(incident.launch_dir)
    ids = [str(i) for i in run.tasks[TaskCol.NATIVE_ID].dropna()]
    found = batch.describe_jobs(ids)
    return reconcile(run, list(found.jobs.values())), run


def test_endpoint_urls_name_batch_logs_and_s3(incident: Incident) -> None:
    assert set(incident.endpoint_urls) == {"batch", "logs", "s3"}
    assert incident.endpoint_urls["batch"] == incident.endpoint_url
    assert all(u.startswith("http://127.0.0.1:") for u in incident.endpoint_urls.values())


def test_orphan_shows_its_running_attempt_log_tail_and_work_dir_without_exitcode(
    incident: Incident, parts: tuple[BatchClient, AwsReaders]
) -> None:
    batch, readers = parts
    jid = _orphan(incident)
    insp = batchkit.inspect(jid, run=incident.launch_dir, batch=batch, readers=readers)
    assert insp.job_status == "RUNNING" and insp.job_id == jid
    running = insp.running_attempt
    assert running is not None and running.log_stream
    assert insp.task is not None and insp.task[TaskCol.STATUS] == "RUNNING"
    # Nextflow's own lines about it: the submit line naming the job.
    assert any(f"job={jid}" in line for line in insp.nextflow_lines)
    # The tail of the running attempt's CloudWatch log.
    assert insp.log is not None and insp.log.error is None, insp.log
    assert insp.log.stream == running.log_stream and insp.log.lines
    # The work dir: staged and started, no .exitcode (the job is still running).
    assert insp.workdir == _task_of(incident, jid)["workdir"]
    assert not insp.files[".exitcode"].exists and insp.files[".exitcode"].error is None
    assert insp.files[".command.begin"].exists
    assert "align.sh" in insp.files[".command.sh"].text
    assert insp.evidence is not None and insp.evidence.began and not insp.evidence.exited
    assert insp.problems == ()


def test_after_the_kill_the_attempts_reason_is_batchkits(
    incident: Incident, parts: tuple[BatchClient, AwsReaders]
) -> None:
    batch, readers = parts
    frame, run = _frame(incident, batch)
    jid = _orphan(incident)
    (kill,) = plan_kills(frame, job_ids=[jid])
    assert kill.reason == f"batchkit: orphan of run '{run.name}'"
    (outcome,) = batch.terminate_jobs([kill.job_id], kill.reason)
    assert outcome.ok
    insp = inspect(jid, run=run, batch=batch, readers=readers)
    assert insp.job_status == "FAILED" and insp.running_attempt is None
    last = insp.attempts[-1]
    assert last.job_reason == kill.reason and last.reason.startswith("batchkit: orphan of run")
    assert last.exit_code == 143  # SIGTERM


def test_vanished_job_with_exitcode_0_reconciles_with_the_work_dirs_evidence(
    incident: Incident, parts: tuple[BatchClient, AwsReaders]
) -> None:
    batch, readers = parts
    jid = _orphan(incident)
    task = _task_of(incident, jid)
    # The orphan ran to its end: its wrapper wrote .exitcode 0 ... then Batch forgot the job.
    s3 = readers.s3.client
    WorkdirWriter(s3, incident.truth.work_dir).finished(task["workdir"], name=task["name"], exit_code=0)
    incident.batch.forget(jid)
    frame, run = _frame(incident, batch)
    before = readers.s3.requests
    out = witness(frame, readers.s3, tasks=run.tasks)
    row = out[out[JobCol.JOB_ID].isna() & (out[TaskCol.NATIVE_ID] == jid)].iloc[0]
    assert row[RecCol.VERDICT] == "vanished"
    assert "work dir says exit 0" in row[RecCol.REASON]
    assert "succeeded before Batch forgot the job" in row[RecCol.REASON]
    # Bounded: two GETs per looked-at work dir at most.
    targets = int((frame[RecCol.VERDICT].isin({"stale", "vanished", "disagree"})).sum())
    assert 0 < readers.s3.requests - before <= 2 * targets
    assert plan_kills(out) == plan_kills(frame)
    assert jid not in {k.job_id for k in plan_kills(out, force=True)}


def test_unknown_exit_task_reconciles_with_the_exitcode_it_left(
    incident: Incident, parts: tuple[BatchClient, AwsReaders]
) -> None:
    batch, readers = parts
    run = NextflowRun.from_dir(incident.launch_dir)
    done = run.tasks[(run.tasks[TaskCol.STATUS] == "COMPLETED")].iloc[0]
    # Nextflow logged `status: COMPLETED; exit: -` ("Cannot read exitstatus"): no exit in its view,
    # while the wrapper had written 1.
    tasks = run.tasks.copy()
    tasks.loc[tasks[TaskCol.TASK_ID] == done[TaskCol.TASK_ID], TaskCol.EXIT] = pd.NA
    run = dataclasses.replace(run, tasks=tasks)
    WorkdirWriter(readers.s3.client, incident.truth.work_dir).finished(
        str(done[TaskCol.WORKDIR]), name=str(done[TaskCol.NAME]), exit_code=1)
    ids = [str(i) for i in tasks[TaskCol.NATIVE_ID].dropna()]
    frame = reconcile(run, list(batch.describe_jobs(ids).jobs.values()))
    out = witness(frame, readers.s3, tasks=run.tasks)
    row = out[out[TaskCol.TASK_ID] == done[TaskCol.TASK_ID]].iloc[0]
    assert "work dir says exit 1" in row[RecCol.REASON]
    assert row[RecCol.VERDICT] == frame[frame[TaskCol.TASK_ID] == done[TaskCol.TASK_ID]].iloc[0][RecCol.VERDICT]
    assert plan_kills(out) == plan_kills(frame)


def test_work_dir_evidence_for_every_row_never_adds_a_kill(
    incident: Incident, parts: tuple[BatchClient, AwsReaders]
) -> None:
    """Adversary: every task's work dir claims success (or failure); the kill plan stays put."""
    batch, readers = parts
    frame, run = _frame(incident, batch)
    writer = WorkdirWriter(readers.s3.client, incident.truth.work_dir)
    for i, (wd, name) in enumerate(zip(run.tasks[TaskCol.WORKDIR], run.tasks[TaskCol.NAME], strict=True)):
        writer.finished(str(wd), name=str(name), exit_code=i % 2)
    every = [str(w) for w in frame[TaskCol.WORKDIR].dropna()]
    out = frame
    from batchkit.inspection import explain_with_workdir

    out = explain_with_workdir(frame, readers.s3.evidence_for(every, limit=len(every)))
    for force in (False, True):
        assert plan_kills(out, force=force) == plan_kills(frame, force=force)
    for col in (RecCol.VERDICT, RecCol.KILLABLE, RecCol.IN_SCOPE_BY, RecCol.NF_ALIVE):
        assert out[col].tolist() == frame[col].tolist()


# --- faults: refused permissions are named, the rest still shows -----------------------------


def _answer(request: Any, status: int, body: bytes, ctype: str) -> AWSResponse:
    class _Body:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    headers = {"content-type": ctype, "x-amzn-requestid": str(uuid.uuid4())}
    return AWSResponse(request.url, status, headers, _Body())


S3_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
             b"<Message>Access Denied</Message><RequestId>1</RequestId></Error>")
LOGS_DENIED = json.dumps({"__type": "AccessDeniedException",
                          "message": "User is not authorized to perform: logs:GetLogEvents"}).encode()


def _refuse(readers: AwsReaders, *ops: str) -> list[str]:
    seen: list[str] = []

    def hook(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        op = event_name.rsplit(".", 1)[-1]
        if op not in ops:
            return None
        seen.append(op)
        if op == "GetLogEvents":
            return _answer(request, 400, LOGS_DENIED, "application/x-amz-json-1.1")
        return _answer(request, 403, S3_DENIED, "application/xml")

    readers.logs.client.meta.events.register("before-send.cloudwatch-logs", hook)
    readers.s3.client.meta.events.register("before-send.s3", hook)
    return seen


def test_refused_logs_and_s3_permissions_are_named_and_the_rest_still_shows(
    incident: Incident, parts: tuple[BatchClient, AwsReaders], sleeps: Sleeps
) -> None:
    batch, readers = parts
    seen = _refuse(readers, "GetLogEvents", "GetObject", "ListObjectsV2")
    jid = _orphan(incident)
    insp = inspect(jid, run=incident.launch_dir, batch=batch, readers=readers)
    assert {"GetObject", "ListObjectsV2"} <= set(seen)
    # Batch's side and Nextflow's side are all there.
    assert insp.running_attempt is not None and insp.task is not None and insp.nextflow_lines
    assert any("add s3:ListBucket" in p for p in insp.problems)
    for f in insp.files.values():
        assert f.error is not None and "add s3:GetObject" in f.error, f
    assert insp.evidence is not None and insp.evidence.error is not None
    assert "s3:GetObject" in insp.evidence.summary()
    if insp.log is not None:  # the running attempt's stream (LocalBatch names it once RUNNING)
        assert insp.log.error is not None and "add logs:GetLogEvents" in insp.log.error
        assert "GetLogEvents" in seen
    # A refusal is final: asked once, never retried.
    assert sleeps.waits == []
    assert "add s3:GetObject" in insp.to_text() and "add s3:GetObject" in insp.to_html()


def test_refused_get_log_events_names_the_action(incident: Incident, parts: tuple[BatchClient, AwsReaders]) -> None:
    _, readers = parts
    _refuse(readers, "GetLogEvents")
    tail = readers.logs.tail("nf-demo/default/anything")
    assert tail.lines == () and tail.error is not None
    assert "refused logs:GetLogEvents" in tail.error and "add logs:GetLogEvents" in tail.error


def test_a_failing_s3_read_is_retried_through_the_read_policy(
    incident: Incident, parts: tuple[BatchClient, AwsReaders], sleeps: Sleeps
) -> None:
    _, readers = parts
    task = incident.truth.tasks[0]
    failures = [2]

    def hook(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        if event_name.endswith("GetObject") and failures[0] > 0:
            failures[0] -= 1
            return _answer(request, 500, b"<Error><Code>InternalError</Code><Message>x</Message></Error>",
                           "application/xml")
        return None

    readers.s3.client.meta.events.register("before-send.s3", hook)
    tail = readers.s3.tail(f"{task['workdir']}/.command.sh")
    assert tail.exists and tail.error is None and ".sh" in tail.text
    assert len(sleeps.waits) == 2  # the outer read policy's backoffs, on the injected sleep
    # Every HTTP request, the failed ones too, paid a token of the one shared budget.
    assert readers.s3.budget is readers.logs.budget
    assert readers.s3.budget.stats().acquired == readers.s3.requests + readers.logs.requests


def test_the_readers_whole_command_deadline_spans_their_calls(
    incident: Incident, parts: tuple[BatchClient, AwsReaders], sleeps: Sleeps
) -> None:
    """give_up_after (what `inspect --deadline` sets): one deadline for every later read, on
    the readers' clock. A GetObject answering 500 forever is retried until it, not for the
    per-call 30 s; after it, a read fails at once without a request."""
    _, readers = parts
    wd = incident.truth.tasks[0]["workdir"]

    def hook(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        return _answer(request, 500, b"<Error><Code>InternalError</Code><Message>x</Message></Error>",
                       "application/xml")

    readers.s3.client.meta.events.register("before-send.s3", hook)
    readers.give_up_after(5.0)
    first = readers.s3.tail(f"{wd}/.command.sh")
    assert first.error is not None and "kept failing" in first.error and "InternalError" in first.error
    assert 0 < sleeps.now <= 5.0 < readers.s3.deadline
    sent = readers.s3.requests
    sleeps.now = 5.0
    later = readers.s3.tail(f"{wd}/.command.err")
    assert later.error is not None and "not sent, the command's deadline had passed" in later.error
    assert readers.s3.requests == sent
    logs = readers.logs.tail("nf-demo/default/none")
    assert logs.error is not None and "not sent" in logs.error and readers.logs.requests == 0


def test_the_readers_share_one_rate_budget(incident: Incident) -> None:
    clock = Sleeps()
    budget = RateBudget(2.0, clock=clock.clock, sleep=clock.sleep)
    with AwsReaders.create(endpoint_urls=incident.endpoint_urls, budget=budget) as readers:
        wd = incident.truth.tasks[0]["workdir"]
        for _ in range(3):
            readers.s3.tail(f"{wd}/.exitcode")
            readers.logs.tail("nf-demo/default/none")
    assert budget.stats().acquired == 6
    assert clock.waits == [0.5] * 5  # 2 requests/s, one token of burst: strictly spaced


def test_log_tail_pages_backwards(incident: Incident, parts: tuple[BatchClient, AwsReaders]) -> None:
    _, readers = parts
    logs = readers.logs.client
    logs.create_log_group(logGroupName="/test/inspect")
    logs.create_log_stream(logGroupName="/test/inspect", logStreamName="s")
    now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
    logs.put_log_events(logGroupName="/test/inspect", logStreamName="s",
                        logEvents=[{"timestamp": now + i, "message": f"line {i}"} for i in range(450)])
    tail = readers.logs.tail("s", group="/test/inspect", lines=200)
    assert [ln.message for ln in tail.lines] == [f"line {i}" for i in range(250, 450)]
    assert tail.earlier_token is not None
    from batchkit.inspection import Inspection

    insp = Inspection(query="q", log=tail)
    insp = load_earlier(insp, readers, lines=200)
    assert insp.log is not None and insp.log.lines[0].message == "line 50"
    insp = load_earlier(insp, readers, lines=200)
    assert insp.log is not None and [ln.message for ln in insp.log.lines] == [f"line {i}" for i in range(450)]
    assert insp.log.earlier_token is None
    assert load_earlier(insp, readers) is insp


def test_the_work_dir_is_read_in_tails_never_whole(incident: Incident, parts: tuple[BatchClient, AwsReaders]) -> None:
    _, readers = parts
    s3 = readers.s3.client
    big = b"".join(f"row {i}\n".encode() for i in range(100_000))
    s3.put_object(Bucket="batchkit-demo", Key="work/zz/big/.command.log", Body=big)
    tail = readers.s3.tail("s3://batchkit-demo/work/zz/big/.command.log", max_bytes=1024)
    assert tail.truncated and tail.size == len(big)
    assert len(tail.text.encode()) <= 1024 and tail.text.endswith("row 99999\n")
    assert tail.text.startswith("row ")  # the partial first line was dropped


def test_inspect_without_aws_shows_nextflows_view(incident: Incident) -> None:
    insp = inspect(incident.truth.tasks[0]["name"], run=incident.launch_dir)
    assert insp.task is not None and insp.attempts == () and insp.files == {}
    assert insp.nextflow_lines
    with pytest.raises(batchkit.BatchkitError):
        inspect("  ", run=incident.launch_dir)


def test_tracker_witness_is_bounded_per_refresh_and_remembers_exit_codes(
    incident: Incident, parts: tuple[BatchClient, AwsReaders]
) -> None:
    from batchkit.inspect import WorkdirWitness

    batch, readers = parts
    writer = WorkdirWriter(readers.s3.client, incident.truth.work_dir)
    for jid in sorted(incident.truth.abandoned_job_ids)[:3]:
        task = _task_of(incident, jid)
        writer.finished(task["workdir"], name=task["name"], exit_code=0)
        incident.batch.forget(jid)
    frame, run = _frame(incident, batch)
    assert int((frame[RecCol.VERDICT] == "vanished").sum()) == 3
    clock = Sleeps()
    wit = WorkdirWitness(readers.s3, per_refresh=2, recheck_after=60.0, clock=clock.clock)
    n0 = readers.s3.requests
    first = wit(frame, run.tasks)
    assert readers.s3.requests - n0 <= 4  # 2 work dirs, at most 2 GETs each
    assert first[RecCol.REASON].str.contains("work dir says exit 0").sum() == 2
    second = wit(frame, run.tasks)
    assert second[RecCol.REASON].str.contains("work dir says exit 0").sum() == 3
    n1 = readers.s3.requests
    wit(frame, run.tasks)
    clock.now += 3600
    wit(frame, run.tasks)
    assert readers.s3.requests == n1  # exit codes are final: never read again
    assert plan_kills(second) == plan_kills(frame)


def test_tracker_refresh_with_the_witness_explains_a_vanished_job(
    incident: Incident, parts: tuple[BatchClient, AwsReaders]
) -> None:
    from batchkit.inspect import WorkdirWitness
    from batchkit.tracker import Tracker

    batch, readers = parts
    jid = _orphan(incident)
    task = _task_of(incident, jid)
    WorkdirWriter(readers.s3.client, incident.truth.work_dir).finished(task["workdir"], name=task["name"], exit_code=0)
    incident.batch.forget(jid)
    run = NextflowRun.from_dir(incident.launch_dir)
    plain = Tracker(run, batch, ledger=False, reload_run=False)
    tracker = Tracker(run, batch, ledger=False, reload_run=False, witness=WorkdirWitness(readers.s3))
    try:
        without, with_ = plain.refresh().frame, tracker.refresh().frame
    finally:
        plain.close()
        tracker.close()
    row = with_[with_[TaskCol.NATIVE_ID] == jid].iloc[0]
    assert row[RecCol.VERDICT] == "vanished" and "work dir says exit 0" in row[RecCol.REASON]
    assert plan_kills(with_) == plan_kills(without)
    assert with_[RecCol.VERDICT].tolist() == without[RecCol.VERDICT].tolist()


def test_each_attempt_keeps_its_own_log_stream(incident: Incident, parts: tuple[BatchClient, AwsReaders]) -> None:
    batch, readers = parts
    jid = _orphan(incident)
    incident.batch.set_job_behavior(jid, output=["first try"])
    incident.batch.interrupt(jid)  # a spot reclaim: Batch ends this try
    job = incident.batch.describe_job(jid)
    assert job is not None
    if job["status"] != "RUNNING":  # retried (retryStrategy) or failed: give the next try time to start
        incident.batch.advance(120)
    incident.batch.set_job_behavior(jid, output=["second try"])
    latest = inspect(jid, batch=batch, readers=readers)
    first = inspect(jid, batch=batch, readers=readers, attempt=1)
    assert first.attempts[0].reason.startswith("Host EC2")
    assert first.log is not None and [ln.message for ln in first.log.lines][-1] == "first try"
    assert latest.log is not None and latest.log.stream != first.log.stream
    assert inspect(jid, batch=batch, readers=readers, attempt=9).problems[-1].endswith("has no attempt 9 (it has "
                                                                                       f"{len(latest.attempts)})")


def test_a_job_not_yet_running_says_why_it_has_no_log(incident: Incident, parts: tuple[BatchClient, AwsReaders]) -> None:
    batch, readers = parts
    (jid,) = incident.batch.submit_jobs(1, queue=incident.truth.queue, name="later", command=["sleep", "1"])
    insp = inspect(jid, batch=batch, readers=readers)
    assert insp.job_status in {"SUBMITTED", "PENDING", "RUNNABLE"} and insp.log is None
    assert any("no CloudWatch log yet" in p for p in insp.problems)


def test_a_store_that_ignores_range_is_not_read_whole(incident: Incident, parts: tuple[BatchClient, AwsReaders]) -> None:
    _, readers = parts
    s3 = readers.s3.client
    s3.put_object(Bucket="batchkit-demo", Key="work/zz/norange/.command.log", Body=b"x" * 5000)

    def drop_range(request: Any, **_: Any) -> None:
        request.headers.pop("Range", None)  # what a store without range support sees

    s3.meta.events.register("before-send.s3.GetObject", drop_range)
    tail = readers.s3.tail("s3://batchkit-demo/work/zz/norange/.command.log", max_bytes=100)
    assert tail.exists and tail.size == 5000 and tail.text == ""
    assert tail.error is not None and "ignored the Range header" in tail.error


def test_a_job_no_task_claims_is_inspected_through_the_work_dir_in_its_command(
    incident: Incident, parts: tuple[BatchClient, AwsReaders]
) -> None:
    from batchkit.sim._nf_format import launch_command

    batch, readers = parts
    wd = f"{incident.truth.work_dir}/ff/{'0' * 30}"
    WorkdirWriter(readers.s3.client, incident.truth.work_dir).staged(wd, name="LOST (1)", process="LOST", tag="1")
    (jid,) = incident.batch.submit_jobs(1, queue=incident.truth.queue, name="LOST_1", command=launch_command(wd))
    insp = inspect(jid, run=incident.launch_dir, batch=batch, readers=readers)
    assert insp.task is None and insp.job_id == jid and insp.workdir == wd
    assert "lost.sh 1" in insp.files[".command.sh"].text
    assert any("no task of run" in p for p in insp.problems)
