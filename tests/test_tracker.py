"""The Tracker: what it polls, how it degrades, its events, kills, resume, background loop.

Pure helpers are tested on hand-built frames. The polling/kill logic is tested with a
small in-memory Batch (``FakeBatch``) where a test needs to see *which* ids were asked
for, or to fail one call in a precise way; everything else runs against the real
LocalBatch over HTTP with the real BatchClient, NextflowRun and Ledger.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batchkit.client import BatchApi, KillAttempt
from batchkit.errors import ApiUnavailableError, InputError
from batchkit.kills import chunks_by_reason
from batchkit.ledger import Ledger
from batchkit.schema import (
    TASK_COLUMNS,
    TASK_DTYPES,
    DescribeResult,
    JobCol,
    KillJob,
    RecCol,
    TaskCol,
)
from batchkit.tracker import (
    JobStateChanged,
    KillFinished,
    KillProgress,
    KillStarted,
    Refreshed,
    RefreshFailed,
    Snapshot,
    Tracker,
    VerdictChanged,
    diff_frames,
    run_key,
)

T0 = datetime(2026, 1, 24, 12, 0, tzinfo=UTC)
WORK = "s3://bucket/work"


# --- fakes that honour the real signatures ---------------------------------------------------


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _hash(i: int) -> str:
    return f"{i:02x}/{i:030x}"


def job_dict(
    job_id: str,
    *,
    status: str = "RUNNING",
    workdir: str | None = None,
    queue: str = "q",
    created: datetime = T0 + timedelta(minutes=1),
    attempts: int = 0,
) -> dict[str, Any]:
    command = ["bash", "-o", "pipefail", "-c", "true"]
    if workdir is not None:
        command = [
            "bash",
            "-o",
            "pipefail",
            "-c",
            f'trap "{{ ret=$?; exit $ret; }}" EXIT; aws s3 cp --only-show-errors {workdir}/.command.run - | bash 2>&1 | tee .command.log',
        ]
    job: dict[str, Any] = {
        "jobId": job_id,
        "jobName": f"nf-{job_id}",
        "jobQueue": queue,
        "status": status,
        "createdAt": _ms(created),
        "jobDefinition": "nf-def",
        "container": {"command": command, "vcpus": 2, "memory": 1024},
        "attempts": [
            {"container": {"exitCode": 143}, "statusReason": "Host EC2 (instance i-1) terminated."}
        ]
        * attempts,
    }
    if status in {"RUNNING", "SUCCEEDED", "FAILED"}:
        job["startedAt"] = _ms(created + timedelta(minutes=1))
    if status in {"SUCCEEDED", "FAILED"}:
        job["stoppedAt"] = _ms(created + timedelta(minutes=5))
    return job


class FakeBatch:
    """In-memory Batch implementing ``client.BatchApi`` (checked against the Protocol's
    signatures in test_fake_batch_implements_the_client_protocol); records every call."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail_describe: int = 0  # the next N describe calls mark everything failed
        self.raise_list: BaseException | None = None
        self.on_terminate: Any = None
        self.retries: list[tuple[str, str]] = []

    @property
    def stats(self) -> Any:
        return None

    def add(self, job: dict[str, Any]) -> None:
        self.jobs[job["jobId"]] = job

    def describe_jobs(self, ids: Any, *, attempts: int | None = None) -> DescribeResult:
        ids = list(ids)
        self.calls.append(("describe", list(ids)))
        if self.fail_describe:
            self.fail_describe -= 1
            return DescribeResult(failed=list(ids))
        found = {i: dict(self.jobs[i]) for i in ids if i in self.jobs}
        return DescribeResult(jobs=found, missing=[i for i in ids if i not in self.jobs])

    def list_jobs(
        self,
        queue: str,
        *,
        statuses: Any = None,
        created_after: Any = None,
        name_prefix: str | None = None,
        confirm_empty: bool = True,
    ) -> list[dict[str, Any]]:
        self.calls.append(("list", (queue, created_after)))
        if self.raise_list is not None:
            raise self.raise_list
        out = []
        for job in self.jobs.values():
            if job["jobQueue"] != queue:
                continue
            if created_after is not None and job["createdAt"] <= _ms(created_after):
                continue
            out.append({k: job[k] for k in ("jobId", "jobName", "status", "createdAt")})
        return out

    def terminate_once(self, ids: Any, reason: str) -> KillAttempt:
        """TerminateJobs: every id accepted (unknown ids too, as AWS documents)."""
        ids = list(ids)
        self.calls.append(("terminate", (list(ids), reason)))
        if self.on_terminate is not None:
            self.on_terminate(ids)
        for job_id in ids:
            job = self.jobs.get(job_id)
            if job is not None and job["status"] not in {"SUCCEEDED", "FAILED"}:
                job["status"] = "FAILED"
                job["statusReason"] = reason
        return KillAttempt("TerminateJobs", accepted=list(ids), calls=1)

    def cancel_once(self, ids: Any, reason: str) -> KillAttempt:
        raise AssertionError("the tracker never cancels")

    def note_retry(self, operation: str, code: str) -> None:
        self.retries.append((operation, code))

    def described(self) -> list[str]:
        return [i for op, ids in self.calls if op == "describe" for i in ids]


def tasks_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame({c: [r.get(c) for r in rows] for c in TASK_COLUMNS})
    return frame.astype(TASK_DTYPES)


@dataclass
class FakeRun:
    """Satisfies what Tracker and reconcile read from a NextflowRun."""

    tasks: pd.DataFrame
    name: str | None = "wise_hypatia"
    state: str = "aborted"
    work_dir: str | None = WORK
    launch_time: Any = field(default_factory=lambda: pd.Timestamp(T0))
    end_time: Any = field(default_factory=lambda: pd.Timestamp(T0 + timedelta(minutes=10)))
    queues: list[str] = field(default_factory=lambda: ["q"])
    launch_dir: Path | None = None
    last_activity: Any = None
    abort_cause: str | None = None
    reloads: int = 0

    def reload(self) -> FakeRun:
        self.reloads += 1
        return self


def task(i: int, status: str, job_id: str | None) -> dict[str, Any]:
    return {
        TaskCol.TASK_ID: i,
        TaskCol.HASH: _hash(i)[:9],
        TaskCol.NATIVE_ID: job_id,
        TaskCol.NAME: f"ALIGN ({i})",
        TaskCol.PROCESS: "ALIGN",
        TaskCol.TAG: str(i),
        TaskCol.STATUS: status,
        TaskCol.SUBMIT: pd.Timestamp(T0 + timedelta(minutes=1)),
        TaskCol.WORKDIR: f"{WORK}/{_hash(i)}",
        TaskCol.CPUS: 2.0,
        TaskCol.SOURCE: "trace+log",
    }


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeRun, FakeBatch, Clock, Ledger]]:
    """An aborted run: task 1 completed (job done), 2 aborted but job still RUNNING
    (orphan), 3 submitted and its job succeeded (stale); plus job x4 nobody recorded
    running task 2's launcher (untracked: a SubmitJob retry whose answer was lost — the
    run submitted that task dir's hash, which proves it the run's) and a stranger's job
    with another work dir."""
    batch = FakeBatch()
    batch.add(job_dict("j1", status="SUCCEEDED", workdir=f"{WORK}/{_hash(1)}"))
    batch.add(job_dict("j2", status="RUNNING", workdir=f"{WORK}/{_hash(2)}", attempts=1))
    batch.add(job_dict("j3", status="SUCCEEDED", workdir=f"{WORK}/{_hash(3)}"))
    batch.add(job_dict("x4", status="RUNNING", workdir=f"{WORK}/{_hash(2)}"))
    batch.add(job_dict("other", status="RUNNING", workdir=f"s3://elsewhere/work/{_hash(9)}"))
    run = FakeRun(
        tasks_frame(
            [task(1, "COMPLETED", "j1"), task(2, "ABORTED", "j2"), task(3, "SUBMITTED", "j3")]
        ),
        launch_dir=tmp_path,
    )
    yield run, batch, Clock(), Ledger(tmp_path / "ledger.sqlite")


def make(world: tuple[FakeRun, FakeBatch, Clock, Ledger], **kw: Any) -> Tracker:
    run, batch, clock, ledger = world
    return Tracker(run, batch, ledger=ledger, clock=clock, interval=0.01, **kw)  # type: ignore[arg-type]


def verdicts(frame: pd.DataFrame) -> dict[str, str]:
    rows = frame[frame[JobCol.JOB_ID].notna()]
    return dict(zip(rows[JobCol.JOB_ID].astype(str), rows[RecCol.VERDICT].astype(str), strict=True))


# --- pure helpers ------------------------------------------------------------------------------


def _rec_frame(rows: list[tuple[str | None, str, str | None, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            JobCol.JOB_ID: pd.array([r[0] for r in rows], dtype="string"),
            TaskCol.NAME: pd.array([r[1] for r in rows], dtype="string"),
            TaskCol.TASK_ID: pd.array([1 + i for i in range(len(rows))], dtype="Int64"),
            RecCol.BATCH_STATUS: pd.array([r[2] for r in rows], dtype="string"),
            RecCol.VERDICT: pd.array([r[3] for r in rows], dtype="string"),
        }
    )


def test_diff_frames_names_state_and_verdict_changes() -> None:
    old = _rec_frame([("a", "A (1)", "RUNNING", "ok"), ("b", "B (2)", "RUNNING", "orphan")])
    new = _rec_frame(
        [
            ("a", "A (1)", "RUNNING", "ok"),
            ("b", "B (2)", "FAILED", "ok"),
            ("c", "C (3)", "RUNNABLE", "untracked"),
        ]
    )
    assert diff_frames(old, new) == [
        JobStateChanged("b", "RUNNING", "FAILED"),
        VerdictChanged("b", "B (2)", "orphan", "ok"),
        JobStateChanged("c", None, "RUNNABLE"),
        VerdictChanged("c", "C (3)", None, "untracked"),
    ]


def test_diff_frames_first_frame_announces_everything_and_cached_tasks_by_name() -> None:
    new = _rec_frame([(None, "A (1)", None, "ok"), ("b", "B (2)", "RUNNING", "orphan")])
    assert diff_frames(None, new) == [
        VerdictChanged(None, "A (1)", None, "ok"),
        JobStateChanged("b", None, "RUNNING"),
        VerdictChanged("b", "B (2)", None, "orphan"),
    ]
    assert diff_frames(new, new) == []


def test_chunks_group_by_reason_then_cut() -> None:
    jobs = [KillJob(f"j{i}", "orphan", "r1" if i % 2 else "r2") for i in range(7)]
    chunks = chunks_by_reason(jobs, 2)
    assert [[e.job_id for e in c] for c in chunks] == [
        ["j0", "j2"],
        ["j4", "j6"],
        ["j1", "j3"],
        ["j5"],
    ]
    assert all(len({e.reason for e in c}) == 1 for c in chunks)


def _signature(obj: Any, name: str) -> Any:
    import inspect

    member = inspect.getattr_static(obj, name)
    if isinstance(member, property):
        return "property"
    return [(p.name, p.kind, p.default) for p in inspect.signature(member).parameters.values()]


def test_fake_batch_implements_the_client_protocol() -> None:
    """The tracker's double and the real client expose the same BatchApi members with the
    same parameters (names, kinds, defaults): they cannot drift apart again."""
    from batchkit.client import BatchClient

    members = [m for m in vars(BatchApi) if not m.startswith("_")]
    assert set(members) >= {"describe_jobs", "list_jobs", "terminate_once", "note_retry", "stats"}
    for name in members:
        expected = _signature(BatchApi, name)
        assert _signature(BatchClient, name) == expected, name
        assert _signature(FakeBatch, name) == expected, name
    assert isinstance(FakeBatch(), BatchApi)


# --- polling ---------------------------------------------------------------------------------


def test_refresh_reconciles_recorded_and_discovered_jobs(world: Any) -> None:
    tracker = make(world)
    snap = tracker.refresh()
    assert verdicts(snap.frame) == {"j1": "ok", "j2": "orphan", "j3": "stale", "x4": "untracked"}
    assert not snap.degraded and snap.error is None
    assert snap.taken_at == T0 and snap.age == 0.0
    assert snap.run_state == "aborted"
    retries = snap.frame.set_index(JobCol.JOB_ID)[RecCol.BATCH_RETRIES]
    assert int(retries["j2"]) == 1
    # the discovered job is remembered in the ledger for a restarted tracker
    run, _, clock, ledger = world
    assert set(ledger.known_jobs(run.name)) == {"x4"}
    # and the snapshot is in its history, once per change of verdicts (not per poll)
    _taken, summary, frame = ledger.last_snapshot(run.name)
    assert summary["verdicts"]["orphan"] == 1 and len(frame) == len(snap.frame)
    clock.advance(60)
    tracker.refresh()
    assert len(ledger.snapshot_history(run.name)) == 1


def test_refresh_polls_only_what_can_still_change(world: Any) -> None:
    _, batch, clock, _ = world
    tracker = make(world)
    tracker.refresh()
    assert sorted(batch.described()) == ["j1", "j2", "j3", "other", "x4"]
    batch.calls.clear()
    clock.advance(60)
    tracker.refresh()
    # j1, j3 are terminal (cached); "other" was proven foreign and is never asked again
    assert sorted(batch.described()) == ["j2", "x4"]
    lists = [args for op, args in batch.calls if op == "list"]
    assert lists and all(
        after is not None and after > T0 - timedelta(minutes=10) for _, after in lists
    )


def test_new_untracked_job_found_on_a_later_poll(world: Any) -> None:
    _, batch, clock, _ = world
    tracker = make(world)
    tracker.refresh()
    clock.advance(300)
    batch.add(job_dict("x5", workdir=f"{WORK}/{_hash(5)}", created=clock.now))
    snap = tracker.refresh()
    assert verdicts(snap.frame)["x5"] == "untracked"


def test_api_failure_keeps_last_good_snapshot_marked_degraded(world: Any) -> None:
    _, batch, clock, _ = world
    tracker = make(world)
    events: list[Any] = []
    tracker.subscribe(events.append)
    good = tracker.refresh()
    clock.advance(90)
    batch.raise_list = ApiUnavailableError(
        "ListJobs kept failing (HTTP 500) for 300 s", operation="ListJobs"
    )
    snap = tracker.refresh()
    assert snap.degraded and "ListJobs kept failing" in (snap.error or "")
    assert snap.age == 90.0
    assert snap.frame is good.frame and snap.taken_at == good.taken_at
    assert tracker.snapshot is snap
    assert isinstance(events[-1], RefreshFailed) and events[-1].age == 90.0
    # recovery clears the flag
    batch.raise_list = None
    clock.advance(10)
    snap = tracker.refresh()
    assert not snap.degraded and snap.error is None and snap.age == 0.0


def test_describe_failure_of_an_unseen_job_is_not_called_vanished(world: Any) -> None:
    _, batch, _, _ = world
    tracker = make(world)
    batch.fail_describe = 2  # the recorded jobs, then the discovered candidates
    snap = tracker.refresh()
    assert snap.degraded and not snap.has_result and snap.frame.empty
    assert tracker.snapshot is snap
    snap = tracker.refresh()
    assert not snap.degraded and "vanished" not in set(snap.frame[RecCol.VERDICT])


def test_describe_failure_of_a_cached_job_shows_its_last_state(world: Any) -> None:
    _, batch, _, _ = world
    tracker = make(world)
    tracker.refresh()
    batch.fail_describe = 1
    snap = tracker.refresh()
    assert snap.degraded and "last known state" in (snap.error or "")
    assert verdicts(snap.frame)["j2"] == "orphan"


def test_missing_job_is_vanished(world: Any) -> None:
    _, batch, _, _ = world
    del batch.jobs["j2"]
    snap = make(world).refresh()
    by_task = snap.frame.set_index(TaskCol.NAME)
    assert by_task.loc["ALIGN (2)", RecCol.VERDICT] == "vanished"
    assert not snap.degraded


def test_events_and_a_failing_subscriber_does_not_break_the_tracker(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, batch, _, _ = world
    tracker = make(world)
    seen: list[Any] = []

    def broken(event: Any) -> None:
        raise RuntimeError("widget exploded")

    tracker.subscribe(broken)
    unsubscribe = tracker.subscribe(seen.append)
    tracker.refresh()
    assert JobStateChanged("j2", None, "RUNNING") in seen
    assert isinstance(seen[-1], Refreshed)
    assert "widget exploded" in caplog.text
    seen.clear()
    batch.jobs["j2"]["status"] = "FAILED"
    tracker.refresh()
    assert JobStateChanged("j2", "RUNNING", "FAILED") in seen
    assert any(isinstance(e, VerdictChanged) and e.job_id == "j2" for e in seen)
    unsubscribe()
    seen.clear()
    tracker.refresh()
    assert seen == []


def test_reload_run_each_poll(world: Any) -> None:
    run = world[0]
    tracker = make(world)
    tracker.refresh()
    tracker.refresh()
    assert run.reloads == 2
    make(world, reload_run=False).refresh()
    assert run.reloads == 2


# --- kills -----------------------------------------------------------------------------------


def test_plan_and_kill_write_intent_before_and_result_after(world: Any) -> None:
    run, batch, _, ledger = world
    tracker = make(world)
    tracker.refresh()
    plan = tracker.plan()
    assert sorted(j.job_id for j in plan) == ["j2", "x4"]

    seen_intents: list[set[str]] = []
    batch.on_terminate = lambda ids: seen_intents.append(
        {k.job_id for k in ledger.pending_kills(run.name)}
    )
    events: list[Any] = []
    tracker.subscribe(events.append)
    progress: list[tuple[int, int]] = []
    report = tracker.kill(plan, progress=lambda d, t: progress.append((d, t)))

    assert all(
        set(batch_ids) <= intents
        for intents, (op, (batch_ids, _)) in zip(
            seen_intents, [c for c in batch.calls if c[0] == "terminate"], strict=True
        )
    )
    assert report.ok and report.complete
    assert {(k.job_id, o.outcome, s) for k, o, s in report.outcomes} == {
        ("j2", "terminated", "FAILED"),
        ("x4", "terminated", "FAILED"),
    }
    assert progress[-1] == (2, 2)
    assert ledger.pending_kills(run.name) == []
    assert set(ledger.killed_job_ids()) == {"j2", "x4"}
    kinds = [type(e) for e in events]
    assert kinds[0] is KillStarted and kinds[-1] is KillFinished
    assert KillProgress in kinds
    # the snapshot is redrawn from what the kill verified, without another poll
    assert tracker.snapshot is not None
    assert set(
        tracker.snapshot.frame.set_index(JobCol.JOB_ID)[RecCol.BATCH_STATUS][["j2", "x4"]]
    ) == {"FAILED"}


def test_double_kill_is_harmless_and_audited_once(world: Any) -> None:
    _run, batch, _, ledger = world
    tracker = make(world)
    tracker.refresh()
    plan = tracker.plan()
    tracker.kill(plan)
    batch.calls.clear()
    again = tracker.kill(plan)
    assert again.ok and again.outcomes == [] and {k.job_id for k in again.skipped} == {"j2", "x4"}
    assert not [c for c in batch.calls if c[0] == "terminate"]
    assert sorted(k["job_id"] for k in ledger.kills()) == ["j2", "x4"]


def test_interrupted_kill_is_redriven_under_its_original_entry(world: Any) -> None:
    run, batch, _, ledger = world
    tracker = make(world)
    tracker.refresh()
    plan = tracker.plan()

    def die(ids: list[str]) -> None:
        raise KeyboardInterrupt  # the kernel dies inside the call, after the intents

    batch.on_terminate = die
    with pytest.raises(KeyboardInterrupt):
        tracker.kill(plan)
    # every job of the plan was claimed (its intent written) before anything was sent;
    # the first chunk (the orphan) is marked sent, the untracked one never was
    assert {k.job_id for k in ledger.pending_kills(run.name)} == {"j2", "x4"}
    rows = {k["job_id"]: k for k in ledger.kills()}
    assert rows["j2"]["sent_at"] is not None and rows["x4"]["sent_at"] is None
    assert {r["claim_owner"] for r in rows.values()} == {None}  # released on the way out

    batch.on_terminate = None
    fresh = make(world)  # a new kernel, the same ledger
    report = fresh.kill([])  # nothing new planned: the pending ones alone are re-driven
    assert sorted((k.job_id, o.outcome) for k, o, _ in report.outcomes) == [
        ("j2", "terminated"), ("x4", "terminated")
    ]
    assert ledger.pending_kills(run.name) == []
    fresh.refresh()
    assert fresh.plan() == []
    assert sorted(k["job_id"] for k in ledger.kills()) == ["j2", "x4"]  # each audited once


def test_kill_needs_a_ledger(world: Any) -> None:
    run, batch, clock, _ = world
    run.launch_dir = None
    tracker = Tracker(run, batch, clock=clock)  # type: ignore[arg-type]
    assert tracker.ledger is None
    tracker.refresh()
    with pytest.raises(InputError, match="ledger"):
        tracker.kill(tracker.plan())


def test_close_stops_a_kill_between_chunks(world: Any) -> None:
    _run, batch, _, ledger = world
    for i in range(120):
        # more unanswered SubmitJob retries of task 2: its launcher, hence provably the run's
        batch.add(job_dict(f"y{i}", workdir=f"{WORK}/{_hash(2)}"))
    tracker = make(world)
    tracker.refresh()
    plan = tracker.plan(verdicts=["untracked"])
    assert len(plan) == 121

    def stop_after_first(done: int, total: int) -> None:
        tracker.close()

    report = tracker.kill(plan, progress=stop_after_first)
    assert not report.complete and not report.ok
    assert len(report.outcomes) == 50
    fresh = make(world)
    fresh.refresh()
    rest = fresh.kill(fresh.plan())
    assert rest.ok and len(rest.outcomes) == 72  # 71 untracked left + the orphan j2
    assert len(ledger.kills()) == 122
    assert len({k["job_id"] for k in ledger.kills()}) == 122


# --- the background loop ----------------------------------------------------------------------


def test_start_in_a_running_loop_returns_at_once_and_close_stops_it(world: Any) -> None:
    async def scenario() -> None:
        tracker = make(world)
        got = asyncio.Event()
        tracker.subscribe(lambda e: got.set() if isinstance(e, Refreshed) else None)
        task = tracker.start()
        assert isinstance(task, asyncio.Task) and not task.done()
        assert tracker.start() is task  # idempotent
        await asyncio.wait_for(got.wait(), 10)
        tracker.close()
        tracker.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert tracker.snapshot is not None

    asyncio.run(scenario())


def test_start_without_a_loop_is_a_daemon_thread(world: Any) -> None:
    tracker = make(world)
    refreshed = threading.Event()
    tracker.subscribe(lambda e: refreshed.set() if isinstance(e, Refreshed) else None)
    thread = tracker.start()
    assert isinstance(thread, threading.Thread) and thread.daemon
    assert refreshed.wait(10)
    tracker.close()
    assert not thread.is_alive()
    with pytest.raises(InputError):
        tracker.start()


def test_pause_stops_polling_and_resume_restarts(world: Any) -> None:
    _, batch, _, _ = world
    tracker = make(world)
    tracker.pause()
    assert tracker.paused
    thread = tracker.start()
    assert isinstance(thread, threading.Thread)
    threading.Event().wait(0.1)
    assert batch.calls == []
    refreshed = threading.Event()
    tracker.subscribe(lambda e: refreshed.set() if isinstance(e, Refreshed) else None)
    tracker.resume()
    assert refreshed.wait(10)
    tracker.close()


def test_run_blocking_until(world: Any) -> None:
    _, _batch, _, _ = world
    tracker = make(world)
    polls: list[int] = []

    def until(snap: Any) -> bool:
        polls.append(1)
        return len(polls) == 3

    snap = tracker.run_blocking(until=until)
    assert snap is tracker.snapshot and len(polls) == 3


def test_refresh_async_and_kill_async_deliver_events_on_the_loop(world: Any) -> None:
    async def scenario() -> None:
        tracker = make(world)
        loop_thread = threading.get_ident()
        threads: set[int] = set()
        tracker.subscribe(lambda e: threads.add(threading.get_ident()))
        await tracker.refresh_async()
        progress: list[tuple[int, int]] = []
        report = await tracker.kill_async(tracker.plan(), lambda d, t: progress.append((d, t)))
        await asyncio.sleep(0)  # let call_soon_threadsafe callbacks run
        assert report.ok and progress[-1] == (2, 2)
        assert threads == {loop_thread}

    asyncio.run(scenario())


# --- real parts: BatchClient over HTTP against LocalBatch -----------------------------------


class NoSleep:
    """The BatchClient's clock and sleep: rate budget and backoff never sleep for real."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def nf_command(workdir: str) -> list[str]:
    # Nextflow's container command; the trailing comment (`sleep 6h`) tells the emulator
    # how long the job runs (bash ignores it).
    return [
        "bash",
        "-o",
        "pipefail",
        "-c",
        f'trap "{{ ret=$?; exit $ret; }}" EXIT; aws s3 cp --only-show-errors {workdir}/.command.run - '
        "| bash 2>&1 | tee .command.log # sleep 6h",
    ]


class DyingClient:
    """A real BatchClient whose process 'dies' (KeyboardInterrupt) inside the N-th terminate
    call, before Batch answers: what a kernel restart looks like to the ledger."""

    def __init__(self, inner: Any, die_on_call: int) -> None:
        self.inner = inner
        self.left = die_on_call

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def terminate_once(self, ids: Any, reason: str) -> Any:
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt
        return self.inner.terminate_once(ids, reason)


@pytest.mark.slow
def test_kill_500_orphans_across_two_kernel_restarts(tmp_path: Path) -> None:
    """Kernel 1 dies after ~250 kills (its progress callback raises); kernel 2 dies inside
    a TerminateJobs call (claims written, no results); kernel 3 finishes. Every job ends
    killed, and each appears exactly once in the ledger's audit."""
    from batchkit.client import BatchClient
    from batchkit.sim import LocalBatch

    n = 500
    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment("q", vcpus=4096)
        raw = lb.client()
        launched = pd.Timestamp(lb.clock.now(), unit="s", tz="UTC")
        ids = []
        for i in range(n):
            answer = raw.submit_job(
                jobName=f"ALIGN_{i}",
                jobQueue="q",
                jobDefinition="nf-demo",
                containerOverrides={"command": nf_command(f"{WORK}/{_hash(i)}")},
            )
            ids.append(answer["jobId"])
        lb.advance(120)
        assert sum(1 for j in lb.jobs() if j["status"] == "RUNNING") == n

        rows = [task(i, "ABORTED", ids[i]) for i in range(n)]
        run = FakeRun(
            tasks_frame(rows), launch_time=launched, end_time=launched, launch_dir=tmp_path
        )
        ledger_path = tmp_path / "ledger.sqlite"
        timing = NoSleep()

        def new_tracker(client: Any) -> Tracker:
            return Tracker(run, client, queues=["q"], ledger=Ledger(ledger_path), reload_run=False)  # type: ignore[arg-type]

        client = BatchClient(endpoint_url=lb.endpoint_url, clock=timing.clock, sleep=timing.sleep)
        first = new_tracker(client)
        snap = first.refresh()
        assert snap.summary["verdicts"]["orphan"] == n
        plan = first.plan()
        assert len(plan) == n

        def kernel_dies(done: int, total: int) -> None:
            if done >= 250:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            first.kill(plan, progress=kernel_dies)
        ledger = Ledger(ledger_path)
        # the whole plan was claimed up front; what was answered before the death is final
        assert len(ledger.kills()) == n and len(ledger.killed_job_ids()) == 250
        assert len(ledger.pending_kills(run.name)) == 250

        second = new_tracker(DyingClient(client, die_on_call=2))
        second.refresh()
        with pytest.raises(KeyboardInterrupt):
            second.kill(second.plan())
        pending = {k.job_id for k in ledger.pending_kills(run.name)}
        assert len(pending) == 200  # chunk 1 answered; chunk 2 died in the call; 3 more unsent
        sent = [k for k in ledger.kills() if k["job_id"] in pending and k["sent_at"] is not None]
        assert len(sent) == 50  # the chunk whose call died is marked sent

        third = new_tracker(client)
        events: list[Any] = []
        third.subscribe(events.append)
        third.refresh()
        report = third.kill(third.plan())
        assert report.ok and report.complete
        assert isinstance(events[-1], KillFinished) and events[-1].report is report

        statuses = {j["jobId"]: j["status"] for j in lb.jobs()}
        assert all(statuses[i] == "FAILED" for i in ids)
        audit = [k["job_id"] for k in ledger.kills()]
        assert sorted(audit) == sorted(ids)  # every job once, none twice
        assert ledger.pending_kills(run.name) == []
        assert set(ledger.killed_job_ids()) >= set(ids)
        # a double click afterwards sends nothing and writes nothing
        again = third.kill(plan)
        assert again.outcomes == [] and len(again.skipped) == n
        assert len(ledger.kills()) == n
        client.close()


def test_restarted_tracker_resumes_discovery_from_the_ledger(world: Any) -> None:
    run, batch, clock, ledger = world
    make(world).refresh()
    mark = ledger.last_poll(run.name)
    assert mark is not None
    batch.calls.clear()
    clock.advance(600)
    again = make(world)  # a new kernel: nothing in memory, the same ledger
    snap = again.refresh()
    lists = [args[1] for op, args in batch.calls if op == "list"]
    assert lists == [mark.to_pydatetime() - timedelta(minutes=5)]
    # x4 is no longer in the listing window's news, but the ledger remembered it
    assert verdicts(snap.frame)["x4"] == "untracked"
    assert "x4" in batch.described()


def test_two_concurrent_kills_send_each_job_once(world: Any) -> None:
    _, batch, _, ledger = world
    tracker = make(world)
    tracker.refresh()
    plan = tracker.plan()
    reports: list[Any] = []
    threads = [
        threading.Thread(target=lambda: reports.append(tracker.kill(plan))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    sent = [i for op, (ids, _) in (c for c in batch.calls if c[0] == "terminate") for i in ids]
    assert sorted(sent) == ["j2", "x4"]
    # the second kill saw the first's claims (or results) and reports the same truth
    assert [(r.killed, r.total) for r in reports] == [(2, 2), (2, 2)]
    assert [r.summary().split(" (")[0] for r in reports] == ["2 of 2 job(s) killed"] * 2
    assert sorted(k["job_id"] for k in ledger.kills()) == ["j2", "x4"]
    assert [k["finished_at"] is not None for k in ledger.kills()] == [True, True]


def test_background_loop_survives_a_failing_poll(world: Any) -> None:
    _, batch, _, _ = world
    tracker = make(world)
    failures: list[RefreshFailed] = []
    refreshed = threading.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, RefreshFailed):
            failures.append(event)
        elif isinstance(event, Refreshed):
            refreshed.set()

    tracker.subscribe(on_event)
    batch.raise_list = RuntimeError("a bug, not AWS")  # not a BatchkitError: escapes _poll
    thread = tracker.start()
    deadline = threading.Event()
    for _ in range(200):
        if failures:
            break
        deadline.wait(0.05)
    assert failures and "a bug, not AWS" in failures[0].error
    batch.raise_list = None
    assert refreshed.wait(10)  # the loop kept going and recovered
    tracker.close()
    assert isinstance(thread, threading.Thread) and not thread.is_alive()


def test_a_large_run_gets_a_first_look_from_list_jobs_before_the_details(tmp_path: Path) -> None:
    """1,200 recorded jobs: the first Refreshed comes from ListJobs (1,000 a page) alone,
    with the running orphans placed and the finished jobs pending; the full poll follows."""
    from batchkit.client import BatchClient
    from batchkit.sim import LocalBatch
    from batchkit.tracker import FIRST_LOOK_MIN_JOBS

    n = FIRST_LOOK_MIN_JOBS + 200
    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment("q", vcpus=4 * n)
        launched = pd.Timestamp(lb.clock.now(), unit="s", tz="UTC")
        ids = lb.submit_jobs(n, queue="q", name="ALIGN", command=nf_command(f"{WORK}/00/x"), vcpus=2)
        done = set(ids[: n // 2])
        for job_id in ids:
            lb.set_job_behavior(job_id, duration=60.0 if job_id in done else 6 * 3600.0)
        lb.advance(600)
        rows = [task(i, "COMPLETED" if j in done else "RUNNING", j) for i, j in enumerate(ids)]
        run = FakeRun(tasks_frame(rows), launch_time=launched, end_time=launched, launch_dir=tmp_path)
        timing = NoSleep()
        client = BatchClient(endpoint_url=lb.endpoint_url, clock=timing.clock, sleep=timing.sleep)
        tracker = Tracker(run, client, queues=["q"], ledger=False, reload_run=False)  # type: ignore[arg-type]
        seen: list[tuple[Snapshot, dict[str, int]]] = []

        def on_event(event: Any) -> None:
            if isinstance(event, Refreshed):
                seen.append((event.snapshot, dict(lb.calls)))

        tracker.subscribe(on_event)
        final = tracker.refresh()
        first, calls_then = seen[0]
        assert first.provisional and not final.provisional
        # 5 active statuses, one page each (no re-ask of empty pages in a first look)
        assert "DescribeJobs" not in calls_then and calls_then.get("ListJobs", 0) == 5
        assert first.summary["verdicts"]["orphan"] == n - len(done)
        assert int(first.frame["verdict"].eq("pending").sum()) == len(done)
        assert not first.frame.loc[first.frame["verdict"].eq("pending"), "killable"].any()
        assert final.summary["verdicts"]["orphan"] == n - len(done)
        assert "pending" not in set(final.frame["verdict"])
        assert seen[-1][0] is final
        client.close()


# --- kills that fail part way, unnamed runs, refusals, verification ---------------------------


class FlakyTerminate:
    """FakeBatch whose terminate_once answers per a script: each call a dict of job id ->
    error code (a per-job error inside the HTTP 200: retryable codes come back in
    ``again``, others are refusals), or an error code for the whole call (HTTP 500: every
    id again). After the script, ``then`` answers every call (None: Batch is healthy)."""

    def __init__(
        self, inner: FakeBatch, rounds: list[dict[str, str] | str], then: dict[str, str] | str | None = None
    ) -> None:
        self.inner = inner
        self.rounds = list(rounds)
        self.then = then
        self.sent: list[list[str]] = []  # ids of every terminate call, in order

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def terminate_once(self, ids: Any, reason: str) -> KillAttempt:
        from batchkit.retry import is_code_retryable

        ids = list(ids)
        self.sent.append(ids)
        script = self.rounds.pop(0) if self.rounds else (self.then or {})
        if isinstance(script, str):
            return KillAttempt("TerminateJobs", again=dict.fromkeys(ids, (script, "HTTP 500")), calls=1)
        ok = [i for i in ids if i not in script]
        attempt = self.inner.terminate_once(ok, reason) if ok else KillAttempt("TerminateJobs")
        for i in ids:
            if i in script:
                target = attempt.again if is_code_retryable(script[i]) else attempt.refused
                target[i] = (script[i], f"{script[i]} for {i}")
        return attempt


class FakeTime:
    """The kill executor's clock and sleep: a 300 s outage takes no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_an_aws_failure_mid_kill_keeps_the_jobs_already_killed(world: Any) -> None:
    run, batch, clock, ledger = world
    for i in range(2):
        # more unanswered SubmitJob retries of task 2: its launcher, hence provably the run's
        batch.add(job_dict(f"y{i}", workdir=f"{WORK}/{_hash(2)}"))
    # call 1: x4, y0 killed, y1 throttled; then Batch answers 500 until the deadline
    flaky = FlakyTerminate(batch, [{"y1": "ThrottlingException"}], then="InternalServerError")
    timing = FakeTime()
    tracker = Tracker(run, flaky, ledger=ledger, clock=clock, kill_deadline=20,  # type: ignore[arg-type]
                      kill_clock=timing.clock, kill_sleep=timing.sleep)
    events: list[Any] = []
    tracker.subscribe(events.append)
    tracker.refresh()
    plan = tracker.plan(verdicts=["untracked"])
    assert sorted(j.job_id for j in plan) == ["x4", "y0", "y1"]

    report = tracker.kill(plan)

    assert not report.complete and not report.ok
    assert {(k.job_id, o.outcome) for k, o, _ in report.outcomes} == {("x4", "terminated"), ("y0", "terminated")}
    [(job, why)] = report.pending
    assert job.job_id == "y1" and "InternalServerError" in why and "deadline" in why
    assert report.failed == []  # nothing was refused: y1 is pending, not failed
    # one call per backoff step for the one chunk left, within the 20 s deadline
    assert flaky.sent[0] == ["x4", "y0", "y1"] and all(ids == ["y1"] for ids in flaky.sent[1:])
    assert len(flaky.sent) == report.calls and report.retries == len(flaky.sent) - 1
    assert timing.now <= 20 + 1e-9
    assert "3 job(s)" in report.summary() and "1 pending" in report.summary()
    assert isinstance(events[-1], KillFinished) and events[-1].report is report
    assert ledger.killed_job_ids() == {"x4", "y0"}
    assert [k.job_id for k in ledger.pending_kills(tracker.run_name)] == ["y1"]
    [row] = [k for k in ledger.kills() if k["job_id"] == "y1"]
    assert row["finished_at"] is None and "InternalServerError" in row["last_error"]
    assert row["claim_owner"] is None  # released: the next kill takes it at once

    # Batch is back: the next kill finishes y1 under the same audit row.
    fresh = make(world)
    fresh.refresh()
    again = fresh.kill(fresh.plan(verdicts=["untracked"]))
    assert again.ok and [k.job_id for k, _, _ in again.outcomes] == ["y1"]
    assert sorted(k["job_id"] for k in ledger.kills()) == ["x4", "y0", "y1"]
    assert ledger.pending_kills() == []


def test_a_kill_interrupted_by_the_kernel_still_reports_finished(world: Any) -> None:
    _run, batch, _, _ledger = world
    tracker = make(world)
    tracker.refresh()
    events: list[Any] = []
    tracker.subscribe(events.append)

    def die(ids: list[str]) -> None:
        raise KeyboardInterrupt

    batch.on_terminate = die
    with pytest.raises(KeyboardInterrupt):
        tracker.kill(tracker.plan())
    assert isinstance(events[-1], KillFinished) and not events[-1].report.complete


def test_run_key_tells_unnamed_runs_apart(tmp_path: Path) -> None:
    frame = tasks_frame([])
    assert run_key(FakeRun(frame, name="wise_hypatia")) == "wise_hypatia"
    session = FakeRun(frame, name=None)
    session.session_id = "6f1c-aa"  # type: ignore[attr-defined]
    assert run_key(session) == "unnamed session 6f1c-aa"
    assert run_key(FakeRun(frame, name=None, work_dir="s3://b/work")) == (
        "unnamed s3://b/work @ 2026-01-24T12:00Z"
    )
    no_time = FakeRun(frame, name=None, launch_time=None, launch_dir=tmp_path)
    assert run_key(no_time) == f"unnamed {tmp_path}"
    assert run_key(FakeRun(frame, name=None, work_dir=None, launch_time=None)) == "unnamed"


def test_two_unnamed_runs_on_one_ledger_keep_their_own_state(world: Any) -> None:
    """Two trace-only runs (no log, so no run name) launched from the same dir: each
    keeps its own discovered jobs, discovery mark and kills, and its kill reason
    names it readably."""
    run, batch, clock, ledger = world
    run.name = None
    later = FakeRun(
        tasks_frame([]), name=None, launch_dir=run.launch_dir,
        launch_time=pd.Timestamp(T0 + timedelta(hours=3)),
    )
    first = make(world)
    second = Tracker(later, batch, ledger=ledger, clock=clock)  # type: ignore[arg-type]
    assert first.run_name == f"unnamed {WORK} @ 2026-01-24T12:00Z"
    assert second.run_name != first.run_name

    first.refresh()
    assert ledger.known_jobs(first.run_name) == {"x4"}
    assert ledger.known_jobs(second.run_name) == set()
    assert ledger.last_poll(second.run_name) is None
    plan = first.plan()
    assert {j.reason for j in plan} == {
        f"batchkit: orphan of run 'unnamed {WORK} @ 2026-01-24T12:00Z'",
        f"batchkit: untracked of run 'unnamed {WORK} @ 2026-01-24T12:00Z'",
    }

    def die(ids: list[str]) -> None:
        raise KeyboardInterrupt

    batch.on_terminate = die
    with pytest.raises(KeyboardInterrupt):
        first.kill(plan)
    assert ledger.pending_kills(second.run_name) == []  # the other run's kill is not ours
    assert sorted(k.job_id for k in ledger.pending_kills(first.run_name)) == ["j2", "x4"]


def test_a_refused_kill_is_final_and_never_resent(world: Any) -> None:
    run, batch, clock, ledger = world
    refusing = FlakyTerminate(batch, [{"j2": "AccessDeniedException"}])
    tracker = Tracker(run, refusing, ledger=ledger, clock=clock, interval=0.01)  # type: ignore[arg-type]
    tracker.refresh()
    report = tracker.kill(tracker.plan(verdicts=["orphan"]))
    [(job, outcome, _)] = report.failed
    assert (job.job_id, outcome.error_code) == ("j2", "AccessDeniedException")
    assert refusing.sent == [["j2"]]  # no second round for a refusal
    assert ledger.pending_kills() == []
    [row] = ledger.kills()
    assert row["finished_at"] is not None and row["outcome"] == "error"
    assert "j2" not in ledger.killed_job_ids()

    batch.calls.clear()
    restarted = make(world)
    assert restarted.resume_kills().outcomes == []
    restarted.start()  # re-drives pending kills first: there are none
    restarted.close()
    later = make(world)
    later.refresh()
    later.kill(later.plan(job_ids=["x4"]))
    sent = [i for op, (ids, _) in (c for c in batch.calls if c[0] == "terminate") for i in ids]
    assert sent == ["x4"]


def test_a_throttled_kill_stays_pending_and_only_its_own_plan_redrives_it(world: Any) -> None:
    run, batch, clock, ledger = world
    throttled = {"j2": "ThrottlingException"}
    flaky = FlakyTerminate(batch, [], then=throttled)
    timing = FakeTime()
    tracker = Tracker(run, flaky, ledger=ledger, clock=clock, kill_deadline=30,  # type: ignore[arg-type]
                      kill_clock=timing.clock, kill_sleep=timing.sleep)
    tracker.refresh()
    report = tracker.kill(tracker.plan(verdicts=["orphan"]))
    [(job, why)] = report.pending
    assert job.job_id == "j2" and "ThrottlingException" in why
    # re-sent once per backoff step until the kill's deadline, never more
    assert len(flaky.sent) >= 3 and all(ids == ["j2"] for ids in flaky.sent)
    assert len(timing.sleeps) <= len(flaky.sent) <= len(timing.sleeps) + 1  # one send per step
    assert sum(timing.sleeps) <= 30 + 1e-9  # and none after the deadline
    assert [k.job_id for k in ledger.pending_kills()] == ["j2"]

    # `kill --job x4`: j2 still runs and was not picked, so it is not sent.
    assert tracker.pending_for(tracker.plan(job_ids=["x4"])) == []
    assert [k.job_id for k in tracker.pending_for(tracker.plan())] == ["j2"]
    flaky.sent.clear()
    other = tracker.kill(tracker.plan(job_ids=["x4"]))
    assert [k.job_id for k, _, _ in other.outcomes] == ["x4"]
    assert flaky.sent == [["x4"]]
    assert [k.job_id for k in ledger.pending_kills()] == ["j2"]

    # resume_kills is the explicit way to finish every pending kill of the run.
    flaky.then = None  # Batch stops throttling
    resumed = tracker.resume_kills()
    assert [(k.job_id, o.outcome) for k, o, _ in resumed.outcomes] == [("j2", "terminated")]
    assert ledger.pending_kills() == [] and len(ledger.kills()) == 2


def test_kill_keeps_terminates_status_when_the_verification_describe_fails(world: Any) -> None:
    _run, batch, _, ledger = world
    tracker = make(world)
    tracker.refresh()
    plan = tracker.plan()
    assert len({job.reason for job in plan}) == 2  # two chunks, verified by one describe
    batch.calls.clear()
    batch.fail_describe = 1  # the verification describe fails
    report = tracker.kill(plan)
    assert report.ok  # Batch accepted both: the kill stands, verified or not
    assert {o.outcome for _, o, _ in report.outcomes} == {"terminated"}
    assert {s for _, _, s in report.outcomes} == {None}
    assert {k["verified_status"] for k in ledger.kills()} == {None}
    # each killed job described once after its kill, and no describe before it
    assert [op for op, _ in batch.calls] == ["terminate", "terminate", "describe"]
    assert sorted(batch.described()) == ["j2", "x4"]
    batch.calls.clear()
    again = make(world)
    again.refresh()
    assert again.plan() == [] and ledger.pending_kills() == []  # final: nothing is re-sent


def test_kill_verifies_by_describing_after_every_chunk_was_sent(tmp_path: Path) -> None:
    """Real Batch keeps a terminated RUNNING job RUNNING until its container stops
    (LocalBatch's terminate_delay). Jobs of the first chunk stop while the second chunk is
    sent: the report and the ledger show FAILED for them, RUNNING for the late ones."""
    from batchkit.client import BatchClient
    from batchkit.sim import LocalBatch

    n = 60
    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment("q", vcpus=1024)
        lb.terminate_delay = 30
        raw = lb.client()
        launched = pd.Timestamp(lb.clock.now(), unit="s", tz="UTC")
        ids = [
            raw.submit_job(
                jobName=f"ALIGN_{i}", jobQueue="q", jobDefinition="nf-demo",
                containerOverrides={"command": nf_command(f"{WORK}/{_hash(i)}")},
            )["jobId"]
            for i in range(n)
        ]
        lb.advance(120)
        run = FakeRun(
            tasks_frame([task(i, "ABORTED", ids[i]) for i in range(n)]),
            launch_time=launched, end_time=launched, launch_dir=tmp_path,
        )
        timing = NoSleep()
        client = BatchClient(endpoint_url=lb.endpoint_url, clock=timing.clock, sleep=timing.sleep)
        ledger = Ledger(tmp_path / "ledger.sqlite")
        tracker = Tracker(run, client, queues=["q"], ledger=ledger, reload_run=False)  # type: ignore[arg-type]
        tracker.refresh()
        plan = tracker.plan()
        assert len(plan) == n

        def time_passes(done: int, total: int) -> None:
            if done < total:
                lb.advance(31)  # the first chunk's containers stop meanwhile

        report = tracker.kill(plan, progress=time_passes)
        assert report.ok and report.complete
        status = {k.job_id: s for k, _, s in report.outcomes}
        first, late = ids[:50], ids[50:]
        assert {status[i] for i in first} == {"FAILED"}
        assert {status[i] for i in late} == {"RUNNING"}
        verified = {k["job_id"]: k["verified_status"] for k in ledger.kills()}
        assert verified == status
        client.close()
