"""The pure core, tested with hand-built runs and DescribeJobs dicts (no I/O, no mocks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchkit.reconcile import (
    REC_COLUMNS,
    extract_workdir,
    in_scope,
    jobs_frame,
    plan_kills,
    reconcile,
    summarize,
)
from batchkit.schema import (
    JOB_COLUMNS,
    SUBMISSION_TAG,
    TASK_COLUMNS,
    TASK_DTYPES,
    JobCol,
    KillJob,
    RecCol,
    TaskCol,
)

T0 = pd.Timestamp("2026-01-24 12:00:00", tz="UTC")
WORK = "s3://bucket/work"
QUEUE = "arn:aws:batch:eu-west-1:123456789012:job-queue/nf-queue"


def ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def minutes(n: float) -> pd.Timedelta:
    return pd.Timedelta(minutes=n)


def hexdir(prefix: str) -> str:
    """A task work dir "ab/cdef…" (2 + 30 hex) whose short hash is ``prefix``."""
    head, tail = prefix.split("/")
    return f"{head}/{tail}{'0' * (30 - len(tail))}"


def nf_command(workdir: str, launcher: str = "aws") -> list[str]:
    """The container command Nextflow's AwsBatchTaskHandler submits."""
    if launcher == "fusion":
        return ["/usr/bin/fusion", "bash", workdir.replace("s3://", "/fusion/s3/") + "/.command.run"]
    if launcher == "s5cmd":
        cli = "s5cmd"
        body = (
            f'trap "{{ ret=$?; {cli} cp .command.log {workdir}/.command.log||true; exit $ret; }}" EXIT; '
            f"{cli} cat {workdir}/.command.run | bash 2>&1 | tee .command.log"
        )
    else:
        aws = "/usr/local/bin/aws s3 cp --only-show-errors"
        body = (
            f'trap "{{ ret=$?; {aws} .command.log {workdir}/.command.log||true; exit $ret; }}" EXIT; '
            f"{aws} {workdir}/.command.run - | bash 2>&1 | tee .command.log"
        )
    return ["bash", "-o", "pipefail", "-c", body]


def job(
    job_id: str,
    status: str,
    *,
    short_hash: str | None = None,
    workdir: str | None = None,
    work: str = WORK,
    name: str = "FASTQC_sample1",
    queue: str = QUEUE,
    created: pd.Timestamp | None = None,
    started: pd.Timestamp | None = None,
    stopped: pd.Timestamp | None = None,
    attempts: list[tuple[pd.Timestamp, pd.Timestamp]] | None = None,
    vcpus: float = 2,
    reason: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A DescribeJobs job dict as AWS returns it.

    A job some ``task()`` recorded runs that task's launcher (its work dir), as every job
    Nextflow submits does, unless ``short_hash``/``workdir`` say otherwise.
    """
    if workdir is None and short_hash is None:
        short_hash = _RECORDED_HASH.get(job_id)
    if workdir is None and short_hash is not None:
        workdir = f"{work}/{hexdir(short_hash)}"
    out: dict[str, Any] = {
        "jobArn": f"arn:aws:batch:eu-west-1:123456789012:job/{job_id}",
        "jobName": name,
        "jobId": job_id,
        "jobQueue": queue,
        "status": status,
        "createdAt": ms(created if created is not None else T0 + minutes(1)),
        "jobDefinition": "arn:aws:batch:eu-west-1:123456789012:job-definition/nf-ubuntu:1",
        "attempts": [
            {"container": {"exitCode": 143}, "startedAt": ms(a), "stoppedAt": ms(b),
             "statusReason": "Host EC2 (instance i-0abc) terminated."}
            for a, b in (attempts or [])
        ],
        "container": {
            "image": "ubuntu",
            "command": nf_command(workdir) if workdir else ["true"],
            "resourceRequirements": [
                {"value": str(vcpus), "type": "VCPU"},
                {"value": "2048", "type": "MEMORY"},
            ],
        },
        "tags": tags or {},
    }
    if started is not None:
        out["startedAt"] = ms(started)
    if stopped is not None:
        out["stoppedAt"] = ms(stopped)
    if reason is not None:
        out["statusReason"] = reason
    return out


def tasks(*rows: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(TASK_COLUMNS))
    return frame.astype(TASK_DTYPES)


#: job id -> the short hash of the task() that recorded it (see job()).
_RECORDED_HASH: dict[str, str] = {}


def task(
    task_id: int,
    status: str,
    native_id: str | None = None,
    short_hash: str | None = None,
    *,
    name: str | None = None,
    complete: pd.Timestamp | None = None,
    workdir: str | None = None,
    submit: pd.Timestamp | None = None,
) -> dict[str, Any]:
    if native_id is not None and short_hash is not None and status != "CACHED":
        _RECORDED_HASH[native_id] = short_hash
    return {
        TaskCol.TASK_ID: task_id,
        TaskCol.HASH: short_hash,
        TaskCol.NATIVE_ID: native_id,
        TaskCol.NAME: name or f"FASTQC (sample{task_id})",
        TaskCol.PROCESS: "FASTQC",
        TaskCol.STATUS: status,
        TaskCol.COMPLETE: complete,
        TaskCol.WORKDIR: workdir,
        TaskCol.SUBMIT: submit,
    }


@dataclass
class Run:
    """A hand-built run satisfying schema.RunLike."""

    tasks: pd.DataFrame = field(default_factory=tasks)
    name: str | None = "wise_hypatia"
    state: str = "alive"
    work_dir: str | None = WORK
    launch_time: Any = T0
    end_time: Any = None


def row_of(frame: pd.DataFrame, **where: Any) -> pd.Series:
    mask = np.ones(len(frame), dtype=bool)
    for col, value in where.items():
        mask &= (frame[col] == value).fillna(False).to_numpy(bool)
    assert mask.sum() == 1, f"{mask.sum()} rows match {where}:\n{frame}"
    return frame[mask].iloc[0]


NOW = T0 + pd.Timedelta(hours=3)


# --- extract_workdir / jobs_frame --------------------------------------------------


def test_extract_workdir_understands_every_nextflow_launcher() -> None:
    wd = f"{WORK}/{hexdir('ab/cdef12')}"
    commands = pd.Series(
        [
            " ".join(nf_command(wd, "aws")),
            " ".join(nf_command(wd, "s5cmd")),
            " ".join(nf_command(wd, "fusion")),
            "echo s3://bucket/work/ab/cdef/.command.log",
            None,
        ],
        dtype="string",
    )
    got = extract_workdir(commands)
    assert got.iloc[:3].tolist() == [wd, wd, wd]  # Fusion's /fusion/s3/<bucket> -> s3://<bucket>
    assert got.iloc[3:].isna().all()


def test_jobs_frame_reads_describe_answers_and_list_summaries() -> None:
    described = job(
        "j1",
        "RUNNING",
        short_hash="ab/cdef12",
        started=T0 + minutes(40),
        attempts=[(T0 + minutes(5), T0 + minutes(30))],
        vcpus=4,
        tags={SUBMISSION_TAG: "sub-1"},
    )
    legacy = {"jobId": "j2", "status": "SUCCEEDED", "container": {"vcpus": 8, "memory": 1000, "exitCode": 0,
                                                                  "command": ["echo", "hi"]},
              "attempts": [{"startedAt": ms(T0), "stoppedAt": ms(T0 + minutes(1))}]}
    summary = {"jobArn": "arn:…/j3", "jobId": "j3", "jobName": "x", "status": "FAILED",
               "createdAt": ms(T0), "startedAt": ms(T0), "stoppedAt": ms(T0 + minutes(2)),
               "container": {"exitCode": 1}}
    frame = jobs_frame([described, legacy, summary])
    assert tuple(frame.columns[: len(JOB_COLUMNS)]) == JOB_COLUMNS
    one, two, three = (frame.iloc[i] for i in range(3))
    assert one[JobCol.VCPUS] == 4.0 and one[JobCol.MEMORY_MIB] == 2048.0
    assert one[JobCol.ATTEMPTS] == 2  # one finished try listed + the one running now
    assert one[JobCol.STARTED_AT] == T0 + minutes(40)
    assert str(frame[JobCol.CREATED_AT].dtype) == "datetime64[ns, UTC]"
    assert one[JobCol.WORK_DIR] == f"{WORK}/{hexdir('ab/cdef12')}"
    assert one[JobCol.SUBMISSION_ID] == "sub-1"
    assert one[JobCol.COMMAND].startswith("bash -o pipefail -c trap")
    assert two[JobCol.VCPUS] == 8.0 and two[JobCol.MEMORY_MIB] == 1000.0
    assert two[JobCol.ATTEMPTS] == 1 and two[JobCol.EXIT_CODE] == 0
    assert pd.isna(two[JobCol.WORK_DIR])
    # A ListJobs summary: no queue, command, vcpus or attempts[].
    for col in (JobCol.JOB_QUEUE, JobCol.COMMAND, JobCol.VCPUS, JobCol.ATTEMPTS, JobCol.SUBMISSION_ID):
        assert pd.isna(three[col]), col
    assert three[JobCol.EXIT_CODE] == 1


def test_jobs_frame_of_nothing_has_the_columns() -> None:
    frame = jobs_frame([])
    assert tuple(frame.columns[: len(JOB_COLUMNS)]) == JOB_COLUMNS and frame.empty


# --- scope -------------------------------------------------------------------------


def test_scope_rules_and_their_boundaries() -> None:
    run = Run(
        tasks(
            task(1, "RUNNING", "recorded-1", "aa/000001"),
            task(2, "RUNNING", "recorded-old", "aa/000002"),
            *(task(10 + i, "RUNNING", None, f"bb/00000{i}") for i in (2, 3, 5, 6, 7)),
        )
    )
    jobs = jobs_frame(
        [
            job("recorded-1", "RUNNING", short_hash="aa/000001"),
            # recorded, but created a day before the run: the record is wrong, not proof
            job("recorded-old", "RUNNING", short_hash="aa/000002", created=T0 - pd.Timedelta(days=1)),
            job("mine", "RUNNING", short_hash="bb/000002"),
            job("other-run-same-name", "RUNNING", work="s3://bucket/other", short_hash="bb/000003"),
            job("work2", "RUNNING", work="s3://bucket/work2", short_hash="bb/000004"),
            job("before-launch", "RUNNING", short_hash="bb/000005", created=T0 - minutes(6)),
            job("within-skew", "RUNNING", short_hash="bb/000006", created=T0 - minutes(4)),
            job("other-queue", "RUNNING", short_hash="bb/000007", queue="other-queue"),
            job("unrecorded-hash", "RUNNING", short_hash="bb/000008"),
            job("no-command", "RUNNING"),
        ]
    )
    by_id = dict(zip(jobs[JobCol.JOB_ID], in_scope(run, jobs, queues=["nf-queue"]), strict=True))
    assert by_id == {
        "recorded-1": "native_id",
        "recorded-old": "",
        "mine": "hash",
        "other-run-same-name": "",  # same job name, another work dir: names prove nothing
        "work2": "",  # s3://bucket/work2 is not under s3://bucket/work/
        "before-launch": "neighbourhood",
        "within-skew": "hash",
        "other-queue": "neighbourhood",
        "unrecorded-hash": "neighbourhood",  # under the work dir, nothing more: not proof
        "no-command": "",
    }
    # Queues unknown: those of the run's verified recorded jobs stand in for them.
    assert in_scope(run, jobs).tolist() == list(by_id.values())
    # ... and with no verified recorded job, no queue can be checked: no hash proof.
    unanchored = Run(run.tasks[run.tasks[TaskCol.NATIVE_ID].isna()].reset_index(drop=True))
    assert "hash" not in set(in_scope(unanchored, jobs))
    assert in_scope(unanchored, jobs, queues=["nf-queue"]).tolist()[2] == "hash"
    # No launch time (no lifetime) or no work dir: nothing can be proven.
    assert set(in_scope(Run(run.tasks, launch_time=None), jobs)) == {"neighbourhood", ""}
    assert set(in_scope(Run(run.tasks, work_dir=None), jobs)) == {""}


def test_scope_keeps_the_callers_index() -> None:
    jobs = jobs_frame([job("a", "RUNNING", short_hash="aa/000001")]).set_axis([42])
    assert in_scope(Run(), jobs).to_dict() == {42: "neighbourhood"}
    run = Run(tasks(task(1, "RUNNING", None, "aa/000001")))
    assert in_scope(run, jobs, queues=[QUEUE]).to_dict() == {42: "hash"}


# --- verdicts ----------------------------------------------------------------------


def test_every_verdict_with_its_reason() -> None:
    run = Run(
        tasks(
            task(1, "RUNNING", "run-ok", "a1/000001"),
            task(2, "COMPLETED", "done-ok", "a2/000002", complete=T0 + minutes(20)),
            task(3, "CACHED", None, "a3/000003"),
            task(4, "ABORTED", "orphan-1", "a4/000004", complete=T0 + minutes(60)),
            task(5, "RUNNING", "stale-1", "a5/000005"),
            task(6, "RUNNING", "70af3d53-aaaa-bbbb-cccc-000000000000", "a6/000006"),
            task(7, "COMPLETED", "disagree-1", "a7/000007", complete=T0 + minutes(30)),
            task(8, "SUBMITTED", None, "a8/000008"),
            task(9, "COMPLETED", "12345", "a9/000009"),
        )
    )
    jobs = [
        job("run-ok", "RUNNING", short_hash="a1/000001", started=T0 + minutes(2)),
        job("done-ok", "SUCCEEDED", short_hash="a2/000002", started=T0, stopped=T0 + minutes(19)),
        job("orphan-1", "RUNNING", short_hash="a4/000004", started=T0 + minutes(57)),
        job("stale-1", "SUCCEEDED", short_hash="a5/000005", started=T0, stopped=T0 + minutes(9)),
        job("disagree-1", "FAILED", short_hash="a7/000007", reason="Essential container in task exited"),
        job("untracked-1", "RUNNING", short_hash="b1/000011", started=T0 + minutes(60), created=T0 + minutes(59)),
        job("untracked-2", "SUCCEEDED", short_hash="b2/000012", started=T0, stopped=T0 + minutes(5)),
    ]
    frame = reconcile(run, jobs, now=NOW)
    assert tuple(frame.columns) == REC_COLUMNS
    got = {
        (None if pd.isna(r[TaskCol.TASK_ID]) else int(r[TaskCol.TASK_ID]),
         None if pd.isna(r[JobCol.JOB_ID]) else r[JobCol.JOB_ID]): (r[RecCol.VERDICT], r[RecCol.REASON])
        for _, r in frame.iterrows()
    }
    assert got == {
        (1, "run-ok"): ("ok", "Nextflow RUNNING, Batch RUNNING"),
        (2, "done-ok"): ("ok", "Nextflow COMPLETED, Batch SUCCEEDED"),
        (3, None): ("ok", "cached by Nextflow: no Batch job needed"),
        (4, "orphan-1"): ("orphan", "Nextflow marked the task ABORTED at 13:00 UTC but Batch still RUNNING for 2h 3m"),
        (5, "stale-1"): ("stale", "Batch says SUCCEEDED, Nextflow still thinks RUNNING"),
        (6, None): ("vanished", "job id 70af3d53… not found in Batch (aged out, wrong region/account, or nextflow-io/nextflow#7301)"),
        (7, "disagree-1"): ("disagree", "Nextflow says COMPLETED, Batch says FAILED (Essential container in task exited)"),
        (8, None): ("ok", "Nextflow SUBMITTED, no Batch job id yet (not yet submitted)"),
        (9, None): ("ok", "Nextflow COMPLETED; native_id 12345 is a local process, not a Batch job"),
        (None, "untracked-1"): ("untracked", "no Nextflow record of job untracke… (work dir …/b1/000011000000000000000000000000: under the run's work dir only, not proof); Batch RUNNING for 2h 0m — unclaimed: kill only by naming the job"),
        (None, "untracked-2"): ("untracked", "no Nextflow record of job untracke… (work dir …/b2/000012000000000000000000000000: under the run's work dir only, not proof); Batch SUCCEEDED"),
    }
    # The run is alive: its unclaimed running job may be one Nextflow just submitted.
    killable = set(frame.loc[frame[RecCol.KILLABLE], JobCol.JOB_ID])
    assert killable == {"orphan-1"}
    ended = reconcile(Run(run.tasks, state="aborted", end_time=T0 + minutes(70)), jobs, now=NOW)
    # Neither its id nor its hash was recorded: a neighbour, killed only when named.
    assert "untracked-1" not in set(ended.loc[ended[RecCol.KILLABLE], JobCol.JOB_ID])
    assert {k.job_id for k in plan_kills(ended)} == {"orphan-1", "run-ok"}
    assert [k.job_id for k in plan_kills(ended, job_ids=["untracked-1"])] == ["untracked-1"]
    # Rows keep the tasks' order, then untracked jobs by creation time.
    assert frame[TaskCol.TASK_ID].iloc[:9].tolist() == list(range(1, 10))
    assert frame[JobCol.JOB_ID].iloc[9:].tolist() == ["untracked-2", "untracked-1"]
    assert frame[RecCol.NF_ALIVE].tolist() == [True, False, False, False, True, True, False, True, False, False, False]
    assert row_of(frame, job_id="run-ok")[RecCol.IN_SCOPE_BY] == "native_id"
    assert row_of(frame, job_id="untracked-1")[RecCol.IN_SCOPE_BY] == "neighbourhood"
    assert row_of(frame, job_id="run-ok")[RecCol.PROOF].startswith("recorded by the run's records; on queue nf-queue; created 12:01 UTC")
    assert row_of(frame, task_id=6)[RecCol.IN_SCOPE_BY] == ""


def test_a_run_that_ended_orphans_its_in_flight_jobs() -> None:
    run = Run(
        tasks(
            task(1, "RUNNING", "j-running", "a1/000001"),
            task(2, "SUBMITTED", "j-runnable", "a2/000002"),
            task(3, "RUNNING", None, "a3/000003"),
            task(4, "RUNNING", "j-done", "a4/000004"),
        ),
        state="aborted",
        end_time=T0 + pd.Timedelta(hours=1, minutes=37),
    )
    run.abort_cause = "SIGINT"  # type: ignore[attr-defined]  # optional extra the reason quotes
    jobs = [
        job("j-running", "RUNNING", short_hash="a1/000001", started=T0 + minutes(57)),
        job("j-runnable", "RUNNABLE", short_hash="a2/000002", created=T0 + minutes(90)),
        job("j-done", "SUCCEEDED", short_hash="a4/000004", started=T0, stopped=T0 + minutes(30)),
    ]
    frame = reconcile(run, jobs, now=NOW)
    one = row_of(frame, job_id="j-running")
    assert one[RecCol.VERDICT] == "orphan" and one[RecCol.KILLABLE] and not one[RecCol.NF_ALIVE]
    assert one[RecCol.REASON] == (
        "Nextflow aborted at 13:37 UTC (SIGINT) but Batch still RUNNING for 2h 3m, task still RUNNING in its records"
    )
    runnable = row_of(frame, job_id="j-runnable")
    assert runnable[RecCol.VERDICT] == "orphan"
    assert runnable[RecCol.REASON].startswith("Nextflow aborted at 13:37 UTC (SIGINT) but Batch still RUNNABLE for 1h 30m")
    assert runnable[RecCol.WASTE_VCPU_H] == 0.0  # waiting in the queue burns no vCPU
    no_id = row_of(frame, task_id=3)
    assert no_id[RecCol.VERDICT] == "ok"
    assert no_id[RecCol.REASON] == "run ended with the task RUNNING and no Batch job recorded or found in scope"
    assert row_of(frame, job_id="j-done")[RecCol.VERDICT] == "stale"


def test_naive_run_times_are_taken_as_utc() -> None:
    naive = Run(tasks(task(1, "RUNNING", "j", "a1/000001")), state="aborted",
                launch_time=T0.tz_localize(None), end_time=(T0 + minutes(60)).tz_localize(None))
    aware = Run(naive.tasks, state="aborted", end_time=T0 + minutes(60))
    jobs = [job("j", "RUNNING", started=T0), job("u", "RUNNING", short_hash="b1/000001", started=T0)]
    pd.testing.assert_frame_equal(
        reconcile(naive, jobs, now=NOW.tz_localize(None)), reconcile(aware, jobs, now=NOW)
    )


def test_aborted_vs_failed_is_ok_and_failed_vs_succeeded_disagrees() -> None:
    run = Run(tasks(task(1, "ABORTED", "j1", "a1/000001"), task(2, "FAILED", "j2", "a2/000002")))
    frame = reconcile(run, [job("j1", "FAILED"), job("j2", "SUCCEEDED")], now=NOW)
    assert frame[RecCol.VERDICT].tolist() == ["ok", "disagree"]


def test_aborted_task_without_any_fields_is_ok() -> None:
    # Real traces (local-aborted-trace.txt) have ABORTED rows whose other fields are all "-".
    run = Run(tasks(task(1, "ABORTED", None, None)), state="aborted", end_time=T0 + minutes(5))
    frame = reconcile(run, [], now=NOW)
    assert frame[RecCol.VERDICT].tolist() == ["ok"]
    assert frame[RecCol.REASON].tolist() == ["Nextflow ABORTED, no Batch job recorded"]


def test_array_children_match_by_id_and_the_parent_gets_no_row() -> None:
    parent = "a1b2c3d4-0000-0000-0000-000000000000"
    run = Run(tasks(task(1, "RUNNING", f"{parent}:0", "a1/000001"), task(2, "COMPLETED", f"{parent}:1", "a2/000002")))
    jobs = [
        job(parent, "RUNNING"),  # the array launcher picks the task dir by index: no single dir
        job(f"{parent}:0", "RUNNING", started=T0),
        job(f"{parent}:1", "RUNNING", started=T0),
    ]
    frame = reconcile(run, jobs, now=NOW)
    assert frame[JobCol.JOB_ID].tolist() == [f"{parent}:0", f"{parent}:1"]
    assert frame[RecCol.VERDICT].tolist() == ["ok", "orphan"]
    scope = in_scope(run, jobs_frame(jobs))
    assert scope.tolist() == ["native_id"] * 3


def test_hash_prefix_and_workdir_matching() -> None:
    run = Run(
        tasks(
            task(1, "RUNNING", None, "ab/cdef12"),  # matched by hash prefix
            task(2, "RUNNING", None, "cd/000002", workdir=f"{WORK}/{hexdir('cd/000002')}/"),  # full work dir
            task(3, "COMPLETED", None, "ef/000003"),  # same hash, another work dir (a -resume elsewhere)
            task(4, "RUNNING", None, "aa/000004"),  # two jobs share its work dir
        )
    )
    jobs = [
        job("by-hash", "RUNNING", short_hash="ab/cdef12"),
        job("by-dir", "RUNNING", short_hash="cd/000002"),
        job("elsewhere", "RUNNING", short_hash="ef/000003", work="s3://bucket/old-work"),
        job("dup-old", "RUNNING", short_hash="aa/000004", created=T0 + minutes(1)),
        job("dup-new", "RUNNING", short_hash="aa/000004", created=T0 + minutes(2)),
    ]
    frame = reconcile(run, jobs, now=NOW, queues=[QUEUE])
    pairs = list(zip(frame[TaskCol.TASK_ID].astype("object"), frame[JobCol.JOB_ID].astype("object"), strict=True))
    assert pairs == [(1, "by-hash"), (2, "by-dir"), (3, pd.NA), (4, "dup-new"), (pd.NA, "dup-old")]
    assert row_of(frame, job_id="dup-old")[RecCol.VERDICT] == "untracked"
    assert row_of(frame, task_id=3)[RecCol.VERDICT] == "ok"
    assert "elsewhere" not in set(frame[JobCol.JOB_ID].dropna())


def test_a_job_from_before_the_run_is_not_matched_by_hash() -> None:
    run = Run(tasks(task(1, "SUBMITTED", None, "ab/cdef12")))
    frame = reconcile(
        run, [job("old", "RUNNING", short_hash="ab/cdef12", created=T0 - pd.Timedelta(hours=2))], now=NOW, queues=[QUEUE]
    )
    assert pd.isna(frame[JobCol.JOB_ID].iloc[0]) and frame[RecCol.VERDICT].tolist() == ["ok", "untracked"]
    assert frame[RecCol.IN_SCOPE_BY].tolist() == ["", "neighbourhood"] and not frame[RecCol.KILLABLE].any()


def test_name_collision_with_another_run_is_never_in_scope() -> None:
    run = Run(tasks(task(1, "ABORTED", "mine", "a1/000001", name="FASTQC (sample1)")), state="aborted", end_time=T0)
    jobs = [
        job("mine", "RUNNING", short_hash="a1/000001", name="FASTQC_sample1"),
        job("theirs", "RUNNING", short_hash="a1/000001", name="FASTQC_sample1", work="s3://bucket/work-b"),
        job("theirs-2", "RUNNING", short_hash="b1/000001", name="FASTQC_sample1", work="s3://bucket/work2"),
    ]
    frame = reconcile(run, jobs, now=NOW)
    assert frame[JobCol.JOB_ID].tolist() == ["mine"]
    assert [k.job_id for k in plan_kills(frame, force=True)] == ["mine"]


def test_batch_retries_count_tries_beyond_the_first() -> None:
    run = Run(
        tasks(
            task(1, "RUNNING", "running-retry", "a1/000001"),
            task(2, "COMPLETED", "done-twice", "a2/000002", complete=T0 + minutes(90)),
            task(3, "RUNNING", "waiting-retry", "a3/000003"),
            task(4, "RUNNING", "first-try", "a4/000004"),
            task(5, "RUNNING", "summary", "a5/000005"),
        )
    )
    jobs = [
        job("running-retry", "RUNNING", started=T0 + minutes(40), attempts=[(T0, T0 + minutes(30))]),
        job("done-twice", "SUCCEEDED", started=T0, stopped=T0 + minutes(90),
            attempts=[(T0, T0 + minutes(30)), (T0 + minutes(40), T0 + minutes(90))]),
        job("waiting-retry", "RUNNABLE", attempts=[(T0, T0 + minutes(30))]),
        job("first-try", "RUNNING", started=T0),
        {"jobId": "summary", "status": "RUNNING", "createdAt": ms(T0), "startedAt": ms(T0)},
    ]
    frame = reconcile(run, jobs, now=NOW)
    assert frame[RecCol.BATCH_RETRIES].tolist() == [1, 1, 1, 0, pd.NA]
    assert frame[JobCol.ATTEMPTS].tolist() == [2, 2, 1, 1, pd.NA]
    assert row_of(frame, job_id="running-retry")[RecCol.REASON] == "Nextflow RUNNING, Batch RUNNING; Batch retried 1×"


def test_waste_arithmetic_on_hand_picked_numbers() -> None:
    end = T0 + pd.Timedelta(hours=1)  # Nextflow aborted at 13:00
    run = Run(
        tasks(
            task(1, "ABORTED", "orphan-4cpu", "a1/000001", complete=end),
            task(2, "RUNNING", "orphan-retried", "a2/000002"),
            task(3, "COMPLETED", "ok-retried", "a3/000003", complete=T0 + minutes(90)),
        ),
        state="aborted",
        end_time=end,
    )
    jobs = [
        # Started 12:10, still running at now=15:00: 2 h after the abort x 4 vCPU = 8 vCPU-h.
        job("orphan-4cpu", "RUNNING", started=T0 + minutes(10), vcpus=4),
        # Try 1 12:00-12:30 (reclaimed, before the abort: first try, no waste); try 2 running
        # since 12:40: 20 min before the abort (an extra try) + 120 min after = 140 min x 2 vCPU.
        job("orphan-retried", "RUNNING", started=T0 + minutes(40), attempts=[(T0, T0 + minutes(30))], vcpus=2),
        # ok row: only the extra try counts, 12:40-13:30 = 50 min x 1 vCPU.
        job("ok-retried", "SUCCEEDED", started=T0, stopped=T0 + minutes(90), vcpus=1,
            attempts=[(T0, T0 + minutes(30)), (T0 + minutes(40), T0 + minutes(90))]),
        # untracked (a second job in task 3's dir, e.g. a SubmitJob retry), finished:
        # 12:05-12:35 = 30 min x 8 vCPU = 4 vCPU-h (all of it).
        job("untracked", "SUCCEEDED", short_hash="a3/000003", started=T0 + minutes(5), stopped=T0 + minutes(35), vcpus=8),
    ]
    frame = reconcile(run, jobs, now=NOW, price_per_vcpu_hour=0.25)
    waste = dict(zip(frame[JobCol.JOB_ID], frame[RecCol.WASTE_VCPU_H], strict=True))
    assert waste == pytest.approx(
        {"orphan-4cpu": 8.0, "orphan-retried": 140 / 60 * 2, "ok-retried": 50 / 60, "untracked": 4.0}
    )
    cost = dict(zip(frame[JobCol.JOB_ID], frame[RecCol.WASTE_COST], strict=True))
    assert cost == pytest.approx({k: v * 0.25 for k, v in waste.items()})
    summary = summarize(frame)
    assert summary["waste_vcpu_hours"] == pytest.approx(8.0 + 140 / 30 + 50 / 60 + 4.0)
    assert summary["waste_cost"] == pytest.approx(summary["waste_vcpu_hours"] * 0.25)


def test_waste_stays_in_the_post_mortem_after_the_kill() -> None:
    """Killed orphans turn "stale" (Nextflow: RUNNING, Batch: FAILED); what they burnt stays."""
    end = T0 + pd.Timedelta(hours=1)
    run = Run(
        tasks(
            task(1, "ABORTED", "was-orphan-4cpu", "a1/000001", complete=end),
            task(2, "RUNNING", "was-orphan-2cpu", "a2/000002"),
            task(3, "COMPLETED", "ok", "a3/000003", complete=T0 + minutes(30)),
        ),
        state="aborted",
        end_time=end,
    )
    killed_at = T0 + pd.Timedelta(hours=3)
    jobs = [
        # 12:10-15:00, killed by batchkit at 15:00: 2 h after the abort x 4 vCPU.
        job("was-orphan-4cpu", "FAILED", started=T0 + minutes(10), stopped=killed_at, vcpus=4,
            attempts=[(T0 + minutes(10), killed_at)], reason="batchkit: orphan of run 'r'"),
        # 12:20-14:00, finished on its own after the abort: 1 h after x 2 vCPU.
        job("was-orphan-2cpu", "SUCCEEDED", started=T0 + minutes(20), stopped=T0 + minutes(120), vcpus=2,
            attempts=[(T0 + minutes(20), T0 + minutes(120))]),
        # finished before Nextflow recorded it: no waste.
        job("ok", "SUCCEEDED", started=T0, stopped=T0 + minutes(29), vcpus=8, attempts=[(T0, T0 + minutes(29))]),
    ]
    frame = reconcile(run, jobs, now=NOW)
    verdicts = dict(zip(frame[JobCol.JOB_ID], frame[RecCol.VERDICT], strict=True))
    assert verdicts == {"was-orphan-4cpu": "ok", "was-orphan-2cpu": "stale", "ok": "ok"}
    waste = dict(zip(frame[JobCol.JOB_ID], frame[RecCol.WASTE_VCPU_H], strict=True))
    assert waste == pytest.approx({"was-orphan-4cpu": 8.0, "was-orphan-2cpu": 2.0, "ok": 0.0})
    assert not frame[RecCol.KILLABLE].any()


def test_orphan_after_a_completed_task_counts_from_completion() -> None:
    run = Run(tasks(task(1, "COMPLETED", "j", "a1/000001", complete=T0 + minutes(30))))
    frame = reconcile(run, [job("j", "RUNNING", started=T0, vcpus=2)], now=T0 + minutes(90))
    assert frame[RecCol.WASTE_VCPU_H].tolist() == [pytest.approx(2.0)]


def test_empty_run_and_no_jobs() -> None:
    frame = reconcile(Run(), [], now=NOW)
    assert frame.empty and tuple(frame.columns) == REC_COLUMNS
    assert plan_kills(frame) == []
    assert summarize(frame)["rows"] == 0


def test_jobs_may_come_as_a_frame() -> None:
    run = Run(tasks(task(1, "ABORTED", "j", "a1/000001")), state="aborted", end_time=T0)
    jobs = [job("j", "RUNNING", started=T0)]
    from_dicts = reconcile(run, jobs, now=NOW)
    from_frame = reconcile(run, jobs_frame(jobs), now=NOW)
    pd.testing.assert_frame_equal(from_dicts, from_frame)


def test_a_frame_without_the_extra_columns_still_prices_waste() -> None:
    run = Run(tasks(task(1, "ABORTED", "orphan", "a1/000001", complete=T0 + minutes(60))), state="aborted",
              end_time=T0 + minutes(60))
    jobs = [
        job("orphan", "RUNNING", started=T0, vcpus=2),
        job("untracked", "SUCCEEDED", short_hash="a1/000001", started=T0, stopped=T0 + minutes(30), vcpus=4),
    ]
    full = reconcile(run, jobs, now=NOW)
    bare = reconcile(run, jobs_frame(jobs)[list(JOB_COLUMNS)], now=NOW)
    pd.testing.assert_frame_equal(full, bare)
    assert bare[RecCol.WASTE_VCPU_H].tolist() == [pytest.approx(4.0), pytest.approx(2.0)]


def test_a_cached_tasks_native_id_belongs_to_an_earlier_run() -> None:
    # The trace repeats the original job id on CACHED rows; that job is not this run's.
    run = Run(tasks(task(1, "CACHED", "earlier-job", "a1/000001")))
    jobs = [job("earlier-job", "SUCCEEDED", short_hash="a1/000001", created=T0 - pd.Timedelta(days=1))]
    frame = reconcile(run, jobs, now=NOW)
    assert pd.isna(frame[JobCol.JOB_ID].iloc[0]) and frame[RecCol.VERDICT].tolist() == ["ok", "untracked"]
    assert in_scope(run, jobs_frame(jobs)).tolist() == ["neighbourhood"]


# --- plan_kills --------------------------------------------------------------------


def incident(state: str = "alive") -> pd.DataFrame:
    run = Run(
        tasks(
            task(1, "ABORTED", "orphan-1", "a1/000001"),
            task(2, "RUNNING", "alive-1", "a2/000002"),
            task(3, "COMPLETED", "done-1", "a3/000003"),
            task(4, "ABORTED", "orphan-1", "a1/000001"),  # the same job twice (trace + log)
        ),
        name="wise_hypatia",
        state=state,
        end_time=None if state == "alive" else T0 + minutes(5),
    )
    jobs = [
        job("orphan-1", "RUNNING", started=T0),
        job("alive-1", "RUNNING", started=T0),
        job("done-1", "SUCCEEDED", started=T0, stopped=T0 + minutes(1)),
        job("untracked-run", "RUNNING", short_hash="b1/000001", started=T0),
        job("untracked-done", "FAILED", short_hash="b2/000001"),
        job("same-name-other-run", "RUNNING", name="FASTQC_sample1", work="s3://elsewhere/work", short_hash="c1/000001"),
    ]
    return reconcile(run, jobs, now=NOW)


def test_plan_kills_takes_only_killable_rows() -> None:
    # A live run: only the orphan; its unclaimed running job may have just been submitted.
    assert [(k.job_id, k.verdict, k.reason) for k in plan_kills(incident())] == [
        ("orphan-1", "orphan", "batchkit: orphan of run 'wise_hypatia'"),
    ]
    plan = plan_kills(incident("aborted"))
    assert [(k.job_id, k.verdict, k.reason) for k in plan] == [
        ("orphan-1", "orphan", "batchkit: orphan of run 'wise_hypatia'"),
        ("alive-1", "orphan", "batchkit: orphan of run 'wise_hypatia'"),
    ]  # untracked-run: neither its id nor its hash was recorded — a neighbour, not the run's
    assert plan[0].task_name == "FASTQC (sample1)"
    assert plan[0].proof.startswith("recorded by the run's records; on queue nf-queue;")
    assert all(isinstance(k, KillJob) for k in plan)


def test_plan_kills_force_adds_tracked_alive_jobs_only() -> None:
    frame = incident()
    plan = plan_kills(frame, force=True, run_name="other_name")
    assert [(k.job_id, k.reason) for k in plan] == [
        ("orphan-1", "batchkit: orphan of run 'other_name'"),
        ("alive-1", "batchkit: forced kill of run 'other_name'"),
    ]


def test_plan_kills_never_takes_a_job_outside_the_proven_scope() -> None:
    frame = incident()
    # Even a hand-edited frame that calls an unscoped row killable is refused.
    frame.loc[frame[JobCol.JOB_ID] == "alive-1", RecCol.IN_SCOPE_BY] = ""
    frame.loc[frame[JobCol.JOB_ID] == "alive-1", RecCol.KILLABLE] = True
    assert "alive-1" not in {k.job_id for k in plan_kills(frame, force=True)}
    frame.loc[frame[JobCol.JOB_ID] == "alive-1", RecCol.IN_SCOPE_BY] = "job name"
    assert "alive-1" not in {k.job_id for k in plan_kills(frame, force=True)}


def test_plan_kills_narrows_and_truncates() -> None:
    frame = incident()
    # A neighbour (under the work dir, nothing more) goes only when the user names it.
    assert [(k.job_id, k.reason) for k in plan_kills(frame, job_ids={"untracked-run"})] == [
        ("untracked-run", "batchkit: named kill of run 'wise_hypatia'")
    ]
    assert [k.job_id for k in plan_kills(frame, verdicts={"orphan"})] == ["orphan-1"]
    assert plan_kills(frame, job_ids={"done-1", "same-name-other-run"}, force=True) == []
    long = plan_kills(frame, run_name="x" * 2000)
    assert all(len(k.reason) == 1024 for k in long)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["SUBMITTED", "RUNNING", "COMPLETED", "FAILED", "ABORTED", "CACHED"]),
            st.sampled_from(["SUBMITTED", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", None]),
            st.sampled_from([WORK, "s3://bucket/work2", "s3://other/work"]),
            st.integers(-30, 30),
        ),
        max_size=25,
    ),
    st.sampled_from(["alive", "completed", "aborted"]),
    st.booleans(),
)
def test_no_plan_ever_holds_an_unproven_or_finished_job(
    rows: list[tuple[str, str | None, str, int]], state: str, force: bool
) -> None:
    task_rows, job_dicts = [], []
    for i, (nf, batch, work, created) in enumerate(rows):
        h = f"{i:02x}/{i:06x}"
        recorded = i % 3 == 0
        task_rows.append(task(i, nf, f"id-{i}" if recorded else None, h))
        if batch is not None:
            job_dicts.append(job(f"id-{i}", batch, short_hash=h, work=work, created=T0 + minutes(created),
                                 started=T0 + minutes(40)))
    run = Run(tasks(*task_rows), state=state, end_time=None if state == "alive" else T0 + minutes(50))
    frame = reconcile(run, job_dicts, now=NOW)
    plan = plan_kills(frame, force=force)
    rows_by_job = frame.set_index(JobCol.JOB_ID, drop=False)
    assert len({k.job_id for k in plan}) == len(plan)
    for kill in plan:
        row = rows_by_job.loc[kill.job_id]
        assert row[RecCol.IN_SCOPE_BY] in {"native_id", "hash"}
        assert row[RecCol.BATCH_STATUS] in {"SUBMITTED", "RUNNABLE", "STARTING", "RUNNING"}
        assert row[RecCol.KILLABLE] or (force and (row[RecCol.NF_ALIVE] or row[RecCol.VERDICT] == "untracked"))
    # No job outside the run's work dir (created any time) is ever in the frame unless recorded.
    foreign = frame[frame[JobCol.WORK_DIR].str.startswith(WORK + "/").eq(False).fillna(False)]
    assert set(foreign[RecCol.IN_SCOPE_BY]) <= {"native_id", ""}
    assert (frame[RecCol.WASTE_VCPU_H].fillna(0) >= 0).all()
    assert frame[RecCol.KILLABLE].sum() <= frame[RecCol.VERDICT].isin(["orphan", "untracked"]).sum()


def test_summarize_counts_every_verdict() -> None:
    summary = summarize(incident())
    assert summary["verdicts"] == {"ok": 2, "orphan": 2, "untracked": 2, "stale": 0, "vanished": 0, "disagree": 0}
    assert summary["killable"] == 2 and summary["mismatches"] == 4  # live run: untracked-run needs force
    assert summary["run_name"] == "wise_hypatia" and summary["rows"] == 6
    import json

    json.dumps(summary)  # plain types only: the ledger stores it as JSON


def test_a_launch_time_read_in_the_wrong_zone_does_not_widen_the_scope() -> None:
    """The log's times carry no zone: read in Tokyo a UTC log's times are 9 h early.
    Batch's createdAt of the run's own recorded jobs anchors the run's lifetime instead."""
    tokyo = -pd.Timedelta(hours=9)
    run = Run(
        tasks(
            task(1, "RUNNING", "mine", "a1/000001", submit=T0 + minutes(1) + tokyo),
            task(2, "RUNNING", None, "b1/000001"),
            task(3, "RUNNING", None, "b2/000001"),
        ),
        launch_time=T0 + tokyo,
    )
    jobs = [
        job("mine", "RUNNING", short_hash="a1/000001", created=T0 + minutes(1), started=T0 + minutes(2)),
        # a job 2 h before this run (in truth), though its hash is one this run submitted
        job("earlier", "RUNNING", short_hash="b1/000001", created=T0 - pd.Timedelta(hours=2)),
        # an unclaimed job of this run, created after its first recorded one
        job("later", "RUNNING", short_hash="b2/000001", created=T0 + minutes(30)),
    ]
    rules = dict(zip([j["jobId"] for j in jobs], in_scope(run, jobs_frame(jobs)), strict=True))
    assert rules == {"mine": "native_id", "earlier": "neighbourhood", "later": "hash"}
    # Read in a zone 9 h late instead, the run's own jobs still anchor it (no missed orphan).
    late = Run(
        tasks(task(1, "RUNNING", "mine", "a1/000001", submit=T0 + minutes(1) - tokyo), task(3, "RUNNING", None, "b2/000001")),
        launch_time=T0 - tokyo,
    )
    assert in_scope(late, jobs_frame(jobs)).tolist() == ["native_id", "neighbourhood", "hash"]
