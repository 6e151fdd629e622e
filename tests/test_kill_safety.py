"""Kill safety (issue #15): a kill takes only jobs proven to be the run's, never another's.

Each world is built on LocalBatch over HTTP (real boto3, the simulated Nextflow): run A
aborts with orphans on queue q and work dir s3://b/work; then an adversary or an ordinary
user adds jobs that look like A's. Every kill path — ``batchkit kill --yes``, the
Tracker, the Dashboard's kill-all and an armed Watchdog (both plan through
``Tracker.plan()``) — must take exactly A's active orphans: 0 foreign jobs, 0 missed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.nextflow import NextflowRun, WeblogReceiver
from batchkit.nextflow.run import named_traces
from batchkit.reconcile import (
    OtherRun,
    extract_workdir,
    jobs_frame,
    normal_dir,
    plan_kills,
    reconcile,
)
from batchkit.schema import JOB_ACTIVE, TASK_COLUMNS, TASK_DTYPES, JobCol, RecCol, TaskCol
from batchkit.sim import LocalBatch
from batchkit.sim.nextflow import Pipeline, SimulatedNextflow
from batchkit.tracker import Tracker
from tests._worlds import (
    AWS,
    QUEUE,
    WORK,
    World,
    a_then_b,
    append_trace_row,
    foreign_job,
    kill_with_cli,
    launcher,
    lb,
    live_launches,
    recorded,
    run_a,
    tracker_plan,
    wait_for,
    world_of_a,
)
from tests.conftest import real_fixture

__all__ = ["lb"]  # the LocalBatch fixture of the kill worlds (tests/_worlds.py)

# --- the launcher parser: look-alikes prove nothing --------------------------------------

TASK_DIR = f"{WORK}/ab/cdef12{'0' * 24}"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (" ".join(launcher(TASK_DIR)), TASK_DIR),
        # `..` climbs out of the work dir: the task dir is under work2, not work
        (" ".join(launcher(f"{WORK}/../work2/ab/cdef12{'0' * 24}")), f"s3://b/work2/ab/cdef12{'0' * 24}"),
        (f"/usr/bin/fusion bash /fusion/s3/b/work/../work2/ab/cdef12{'0' * 24}/.command.run",
         f"s3://b/work2/ab/cdef12{'0' * 24}"),
        # duplicate slashes and the scheme's case are normalised before any comparison
        (" ".join(launcher(f"S3://b//work/ab/cdef12{'0' * 24}")), TASK_DIR),
        # the run's .command.run mentioned as data before the real launcher (another dir)
        ("bash -o pipefail -c echo " + TASK_DIR + "/.command.run; "
         + " ".join(launcher("s3://evil/work/ab/cdef12" + "0" * 24))[len("bash -o pipefail -c "):], None),
        # a trap that uploads to another task dir than the one it runs
        (" ".join(launcher(TASK_DIR)).replace(f"{TASK_DIR}/.command.log", "s3://b/work/zz/x/.command.log"), None),
        # a second command after the launcher
        (" ".join(launcher(TASK_DIR)) + "; curl evil", None),
        (f"bash -o pipefail -c cat {TASK_DIR}/.command.run | bash 2>&1 | tee .command.log", None),
        (f"{TASK_DIR}/.command.run", None),
        ("bash -o pipefail -c " + f"{AWS} $(echo {TASK_DIR})/.command.run - | bash 2>&1 | tee .command.log", None),
    ],
)
def test_only_nextflows_whole_launcher_names_a_task_dir(command: str, expected: str | None) -> None:
    got = extract_workdir(pd.Series([command], dtype="string")).iloc[0]
    assert (None if pd.isna(got) else got) == expected


def test_work_dirs_compare_normalised() -> None:
    # the scheme's case is normalised, the bucket's is not: legacy S3 buckets may hold
    # capitals, so s3://B and s3://b can be two buckets (tests/test_kill_adversary.py)
    assert normal_dir("S3://b/work/") == "s3://b/work"
    assert normal_dir("s3://B/work/") == "s3://B/work"
    assert normal_dir("s3://b/work/./x//y/../z") == "s3://b/work/x/z"
    assert normal_dir("s3://b/../x") is None  # climbs out of the bucket: no work dir at all
    assert normal_dir("/fusion/s3/b/work") == "s3://b/work"


# --- worlds on LocalBatch (built by tests/_worlds.py) ---------------------------------------


def dashboard_kill_all_plan(world: World, run: Any | None = None) -> set[str]:
    from batchkit.widgets.dashboard import KILL_ALL_VERDICTS, Dashboard

    run = run or world.run_a()
    tracker = Tracker(run, world.client(), queues=[QUEUE], ledger=False, reload_run=False)
    dash = Dashboard(run, tracker=tracker, autostart=False)
    try:
        tracker.refresh()
        dash._kill_all_clicked(None)  # the plan the confirm button would kill, exactly
        assert KILL_ALL_VERDICTS
        return {k.job_id for k in dash._pending_plan}
    finally:
        dash.close()


@pytest.mark.parametrize("delay", [300.0, 3600.0, 86400.0], ids=["5min", "1h", "1day"])
@pytest.mark.parametrize("resume", [False, True], ids=["fresh", "resume"])
def test_world1_a_relaunch_on_the_same_queue_and_work_dir(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], delay: float, resume: bool
) -> None:
    world = a_then_b(lb, tmp_path, delay, resume, same_dir=resume)
    assert tracker_plan(world) == world.a_orphans
    assert dashboard_kill_all_plan(world) == world.a_orphans
    killed = kill_with_cli(world, capsys)
    assert killed == world.a_orphans  # 0 missed
    assert not killed & world.foreign  # 0 foreign
    assert world.foreign <= world.active()


def test_world1_b_in_the_same_launch_dir_is_known_and_labelled(lb: LocalBatch, tmp_path: Path) -> None:
    world = a_then_b(lb, tmp_path, 3600.0, resume=False, same_dir=True)
    run = world.run_a()
    assert run.name == "run_a" and [o.name for o in run.other_runs] == ["run_b"]
    tracker = Tracker(run, world.client(), queues=[QUEUE], ledger=False, reload_run=False)
    try:
        frame = tracker.refresh().frame
    finally:
        tracker.close()
    labelled = frame.attrs["other_runs"]
    assert world.foreign <= set(labelled) and all("run 'run_b'" in v for v in labelled.values())
    assert not set(frame[JobCol.JOB_ID].dropna()) & world.foreign  # excluded from A's rows


def test_world2_a_foreign_trace_in_the_launch_dir_never_replaces_the_runs_own(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = a_then_b(lb, tmp_path, 600.0, resume=False, same_dir=False)
    # Another run C (another session, another queue and work dir) — its trace lands in
    # A's launch dir, newer than A's own.
    truth_c = SimulatedNextflow(
        lb.client(retries={"total_max_attempts": 1}), launch_dir=tmp_path / "launch-c", work_dir="s3://b/other",
        queue="q2", pipeline=Pipeline(n_tasks=6, durations={"FASTQC": 90.0, "ALIGN": 7200.0, "MERGE": 60.0}, seed=9),
        behavior="crash", batch=lb, poll_interval=60.0, seed=13, crash_after=0.5,
    ).run()
    world.a_orphans &= world.active()
    assert world.a_orphans
    (world.a_dir / "pipeline_info").mkdir()
    shutil.copy(truth_c.trace_file, world.a_dir / "pipeline_info" / "execution_trace_2099-01-01.txt")
    (world.a_dir / "trace.txt").write_text("task_id\thash\tnative_id\tname\tstatus\n")  # header only
    foreign = world.foreign | (truth_c.abandoned_job_ids & world.active())
    run = world.run_a()
    assert run.trace_paths == [str(Path(w).resolve()) for w in [run.trace_paths[0]]]
    assert Path(run.trace_paths[0]).name.startswith("trace-")  # the one the log names
    assert tracker_plan(world) == world.a_orphans
    assert dashboard_kill_all_plan(world) == world.a_orphans
    killed = kill_with_cli(world, capsys)
    assert killed == world.a_orphans and not killed & foreign


def test_world2_the_real_log_names_its_trace_over_a_header_only_one(tmp_path: Path) -> None:
    log = real_fixture("awsbatch-sigint-24.10.5.nextflow.log")
    trace = real_fixture("awsbatch-sigint-24.10.5-trace.txt")
    assert "trace-new.txt" in named_traces(log.read_text())
    shutil.copy(log, tmp_path / ".nextflow.log")
    shutil.copy(trace, tmp_path / "trace-new.txt")
    (tmp_path / "trace.txt").write_text("task_id\thash\tnative_id\tname\tstatus\texit\n")  # newer, empty
    run = NextflowRun.from_dir(tmp_path, year=2025)
    assert [Path(p).name for p in run.trace_paths] == ["trace-new.txt"]
    assert run.tasks[TaskCol.NATIVE_ID].tolist() == ["cc448dde-7aa2-40b2-843d-d0515c389309"]


def test_world3_a_forged_weblog_post_kills_nothing(lb: LocalBatch, tmp_path: Path) -> None:
    world = a_then_b(lb, tmp_path, 300.0, resume=False, same_dir=False)
    stranger = foreign_job(lb, queue="q2", workdir=f"s3://b/else/ab/{'1' * 30}")
    receiver = WeblogReceiver(token="nf:secret")
    session = world.run_a().session_id
    auth = {"Authorization": "Basic " + __import__("base64").b64encode(b"nf:secret").decode()}

    def post(run_id: str | None, native_id: str, h: str) -> None:
        body = {"runName": "run_a", "runId": run_id, "event": "process_submitted", "utcTime": "2026-01-01T00:00:00Z",
                "trace": {"task_id": 99, "hash": h, "native_id": native_id, "name": "ALIGN (x)", "status": "SUBMITTED"}}
        receiver.receive(json.dumps(body).encode(), auth)

    receiver.receive(json.dumps({"runName": "run_a", "runId": session, "event": "started",
                                "utcTime": "2026-01-01T00:00:00Z"}).encode(), auth)
    post("forged-session", stranger, "ab/111111")  # another session: ignored and counted
    assert receiver.foreign_events == 1
    post(session, stranger, "ab/111111")  # even with the right session: the job disagrees
    run = NextflowRun.from_dir(world.a_dir, weblog=receiver)
    assert stranger in set(run.tasks[TaskCol.NATIVE_ID].dropna())
    plan = tracker_plan(world, run)
    assert plan == world.a_orphans and stranger not in plan
    assert dashboard_kill_all_plan(world, run) == world.a_orphans
    force = Tracker(run, world.client(), queues=[QUEUE, "q2"], ledger=False, reload_run=False)
    try:
        frame = force.refresh().frame
        assert stranger not in {k.job_id for k in force.plan(force=True)}
        row = frame[frame[JobCol.JOB_ID] == stranger].iloc[0]
        assert "not proof" in row[RecCol.PROOF] and not row[RecCol.KILLABLE]
    finally:
        force.close()


def test_world4_a_hand_edited_trace_row_kills_nothing(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = a_then_b(lb, tmp_path, 300.0, resume=False, same_dir=False)
    stranger = foreign_job(lb, queue="q2", workdir=f"s3://b/else/cd/{'2' * 30}")
    in_work = foreign_job(lb, queue=QUEUE, workdir=f"{WORK}/cd/{'3' * 30}", created_offset=7200.0)
    trace = next(world.a_dir.glob("trace-*.txt"))
    for job_id, h in ((stranger, "cd/222222"), (in_work, "cd/333333")):
        append_trace_row(trace, {"task_id": "98", "hash": h, "native_id": job_id, "name": "ALIGN (forged)",
                                 "status": "ABORTED"})
    foreign = world.foreign | {stranger, in_work}
    world.a_orphans &= world.active()
    assert tracker_plan(world) == world.a_orphans
    assert dashboard_kill_all_plan(world) == world.a_orphans
    killed = kill_with_cli(world, capsys)
    assert killed == world.a_orphans and not killed & foreign


def test_world5_look_alike_paths_kill_nothing(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_dir = tmp_path / "launch"
    # Submitted 3 minutes before A's launch (inside the clock-skew window), in A's work dir.
    early = foreign_job(lb, queue=QUEUE, workdir=f"{WORK}/ef/{'4' * 30}")
    lb.advance(180.0)
    truth_a = run_a(lb, a_dir)
    h = sorted(t["hash"] for t in truth_a.tasks)[0]  # a hash A really submitted
    tail = h.replace("/", "/") + "0" * 24
    lookalikes = {
        early,
        foreign_job(lb, queue=QUEUE, workdir=f"{WORK}/../work2/{tail}"),
        foreign_job(lb, queue=QUEUE, workdir=f"s3://b/work2/{tail}"),
    }
    fusion = lb.client().submit_job(
        jobName="x", jobQueue=QUEUE, jobDefinition="nf-demo",
        containerOverrides={"command": ["/usr/bin/fusion", "bash", f"/fusion/s3/b/work/../work2/{tail}/.command.run"]},
    )["jobId"]
    data_first = lb.client().submit_job(
        jobName="x", jobQueue=QUEUE, jobDefinition="nf-demo",
        containerOverrides={"command": ["bash", "-o", "pipefail", "-c",
                                        f"echo {WORK}/{tail}/.command.run; {AWS} s3://b/work2/{tail}/.command.run - "
                                        "| bash 2>&1 | tee .command.log"]},
    )["jobId"]
    lookalikes |= {str(fusion), str(data_first)}
    world = world_of_a(lb, a_dir, truth_a, lookalikes)
    assert world.a_orphans and lookalikes <= world.active()
    assert tracker_plan(world) == world.a_orphans
    assert dashboard_kill_all_plan(world) == world.a_orphans
    killed = kill_with_cli(world, capsys)
    assert killed == world.a_orphans and not killed & lookalikes


# --- the property: random worlds of 2-4 runs ------------------------------------------------

T0 = pd.Timestamp("2026-03-01 08:00", tz="UTC")


@dataclass
class SimRun:
    """A hand-built run (RunLike) with what its own files recorded."""

    name: str
    tasks: pd.DataFrame
    state: str
    work_dir: str
    launch_time: pd.Timestamp
    end_time: pd.Timestamp | None
    last_activity: pd.Timestamp
    queues: list[str]
    other_runs: list[OtherRun] = field(default_factory=list)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_worlds_plan_only_true_orphans_and_every_proven_one(data: st.DataObject) -> None:
    n_runs = data.draw(st.integers(2, 4))
    queues = data.draw(st.lists(st.sampled_from(["q", "q2"]), min_size=n_runs, max_size=n_runs))
    works = data.draw(st.lists(st.sampled_from([WORK, "s3://b/work2"]), min_size=n_runs, max_size=n_runs))
    jobs: list[dict[str, Any]] = []
    owner: dict[str, int] = {}
    runs: list[SimRun] = []
    for r in range(n_runs):
        start = T0 + pd.Timedelta(minutes=data.draw(st.integers(0, 600)))
        length = pd.Timedelta(minutes=data.draw(st.integers(5, 300)))
        state = data.draw(st.sampled_from(["aborted", "completed", "alive"]))
        end = start + length
        rows = []
        for t in range(data.draw(st.integers(1, 6))):
            h32 = f"{r:02x}{t:06x}{'0' * 24}"  # hashes include the session: never shared between runs
            short = f"{h32[:2]}/{h32[2:8]}"
            job_id = f"run{r}-job{t}"
            created = start + pd.Timedelta(seconds=data.draw(st.integers(1, int(length.total_seconds()))))
            status = data.draw(st.sampled_from(["RUNNING", "RUNNABLE", "SUCCEEDED", "FAILED"]))
            recorded = data.draw(st.sampled_from(["id", "hash", "none"]))
            nf = data.draw(st.sampled_from(["SUBMITTED", "RUNNING", "COMPLETED", "ABORTED"]))
            jobs.append({
                "jobId": job_id, "jobName": f"ALIGN_{t}", "jobQueue": queues[r], "status": status,
                "createdAt": int(created.value // 1_000_000),
                "container": {"command": launcher(f"{works[r]}/{h32[:2]}/{h32[2:]}")},
            })  # fmt: skip
            owner[job_id] = r
            if recorded != "none":
                rows.append({TaskCol.TASK_ID: t, TaskCol.HASH: short, TaskCol.STATUS: nf, TaskCol.NAME: f"ALIGN ({t})",
                             TaskCol.NATIVE_ID: job_id if recorded == "id" else None, TaskCol.SOURCE: "trace"})
        frame = pd.DataFrame({c: [row.get(c) for row in rows] for c in TASK_COLUMNS}).astype(TASK_DTYPES)
        runs.append(SimRun(f"run{r}", frame, state, works[r], start, None if state == "alive" else end, end,
                           [queues[r]]))
    # Runs of one launch dir know each other (.nextflow/history, the rotated logs).
    if data.draw(st.booleans()):
        for run in runs:
            run.other_runs = [
                OtherRun(name=o.name, job_ids=frozenset(o.tasks[TaskCol.NATIVE_ID].dropna()),
                         hashes=frozenset(o.tasks[TaskCol.HASH].dropna()), source=".nextflow.log.1")
                for o in runs if o is not run
            ]
        # The adversary: a forged record in run 0 naming another run's job — with the
        # job's own task hash, or another — in a world where the runs know each other.
        if n_runs > 1 and data.draw(st.booleans()):
            victim = data.draw(st.sampled_from([j["jobId"] for j in jobs if owner[j["jobId"]] != 0]))
            t = int(victim.rpartition("job")[2])
            forged = pd.DataFrame({c: [None] for c in TASK_COLUMNS}).astype(TASK_DTYPES)
            forged[TaskCol.NATIVE_ID] = victim
            forged[TaskCol.STATUS] = "ABORTED"
            forged[TaskCol.HASH] = data.draw(st.sampled_from([None, "00/000000", f"{owner[victim]:02x}/{t:06x}"]))
            runs[0].tasks = pd.concat([runs[0].tasks, forged], ignore_index=True)
    now = T0 + pd.Timedelta(days=1)
    frame_jobs = jobs_frame(jobs)
    for r, run in enumerate(runs):
        frame = reconcile(run, frame_jobs, now=now)
        force = data.draw(st.booleans())
        plan = {k.job_id for k in plan_kills(frame, force=force)}
        mine = {j for j, o in owner.items() if o == r}
        assert plan <= mine, (r, plan - mine)  # never another run's job
        # ⊆ its true orphans: its own active jobs nobody will collect (the run ended, or
        # its task is done); force may add its own jobs Nextflow still tracks.
        done = {f"run{r}-job{int(t)}" for t, st_ in zip(run.tasks[TaskCol.TASK_ID], run.tasks[TaskCol.STATUS], strict=True)
                if not pd.isna(t) and st_ in ("COMPLETED", "ABORTED")}
        active_mine = {j["jobId"] for j in jobs if owner[j["jobId"]] == r and j["status"] in JOB_ACTIVE}
        true_orphans = active_mine if run.state != "alive" else active_mine & done
        if not force:
            assert plan <= true_orphans, (r, plan - true_orphans)
        # ⊇ the true orphans it has proof for: recorded by id or hash, active, and the
        # run ended (or the task says it is done).
        ended = run.state != "alive"
        expected = set()
        for _, row in run.tasks.iterrows():
            if pd.isna(row[TaskCol.TASK_ID]) or not str(row[TaskCol.HASH]).startswith(f"{r:02x}/"):
                continue  # the forged row (no task id) proves nothing
            job = f"run{r}-job{int(row[TaskCol.TASK_ID])}"
            status = next(j["status"] for j in jobs if j["jobId"] == job)
            if status in JOB_ACTIVE and (ended or row[TaskCol.STATUS] in ("COMPLETED", "ABORTED")):
                expected.add(job)
        assert expected <= plan, (r, expected - plan)


# --- the weblog wiring: a token nobody else has, kept private ---------------------------------


@pytest.mark.parametrize(
    "token",
    ["u:p'; System.exit(3); '", "u:pass word12", "u:${System.exit(3)}x", "u:ab\ncd12345678", "nocolon12345", "u:short"],
)
def test_a_weblog_token_cannot_inject_groovy(token: str) -> None:
    from batchkit.errors import InputError
    from batchkit.launcher import weblog_config

    with pytest.raises(InputError, match="weblog token"):
        weblog_config("http://127.0.0.1:5/", token)
    with pytest.raises(InputError, match="weblog URL"):
        weblog_config("http://127.0.0.1:5/'; System.exit(3); '", "nf:s3cret-token")


def test_the_weblog_config_is_private_and_the_token_random(tmp_path: Path) -> None:
    import stat

    from batchkit.launcher import new_weblog_token, weblog_config, write_private

    token = new_weblog_token()
    assert token != new_weblog_token() and len(token.partition(":")[2]) >= 32
    path = tmp_path / "weblog.config"
    path.write_text("old")
    path.chmod(0o644)  # an existing, wider file is narrowed too
    write_private(path, weblog_config("http://127.0.0.1:5/", token))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"basicToken = '{token}'" in path.read_text()


def test_the_receiver_needs_a_token_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="token"):
        WeblogReceiver(host="0.0.0.0", allow_remote=True)


@pytest.mark.slow
def test_an_armed_watchdog_kills_only_its_runs_jobs_beside_a_relaunch(tmp_path: Path) -> None:
    """The victim is killed -9; the user relaunches the same pipeline on the same queue and
    work dir (run B, alive). The armed watchdog kills the victim's jobs and none of B's.
    Both runs talk to their receivers with the random token launch_nextflow made."""
    with live_launches() as (batch, launch):
        victim = launch(tmp_path / "victim")
        assert victim.weblog.token and victim.weblog.token.startswith("batchkit:")
        # The same pipeline again, same queue and work dir: another session, so other
        # task hashes (the simulator's -seed stands in for the session id in the hash).
        relaunch = launch(tmp_path / "relaunch", "-seed", "7")
        wait_for(lambda: len(recorded(victim)) >= 2 and len(recorded(relaunch)) >= 2, "both runs' submissions")
        victim.kill_process()
        theirs = recorded(relaunch)
        mine = recorded(victim)
        watchdog = victim.watch(silent_after=3600, interval=3600)
        watchdog.arm()
        watchdog.check()  # its own loop may have checked (and killed) first: either way
        wait_for(lambda: bool(watchdog.kills), "the armed watchdog's kill")
        assert all(report.ok for report in watchdog.kills)
        killed = {job.job_id for report in watchdog.kills for job, _, _ in report.outcomes}
        assert killed and killed <= mine  # only the victim's jobs
        assert watchdog.alerts[-1].armed
        theirs = recorded(relaunch)  # everything the relaunch submitted so far
        after = {j["jobId"]: j for j in batch.jobs()}
        assert theirs and not any((after[j].get("statusReason") or "").startswith("batchkit") for j in theirs)
        assert relaunch.returncode is None  # still running, untouched


def test_without_a_named_trace_only_the_sessions_traces_count_and_the_configs_wins(tmp_path: Path) -> None:
    """The log names no trace: a trace counts only if it shares a hash this session
    submitted, and among those the one ``trace.file`` in nextflow.config names."""
    import os

    (tmp_path / ".nextflow.log").write_text(
        "Jan-24 12:49:23.194 [main] DEBUG nextflow.cli.Launcher - $> nextflow run main.nf\n"
        "Jan-24 12:49:23.300 [main] DEBUG nextflow.Session - Session UUID: 11111111-2222-4333-8444-555555555555\n"
        "Jan-24 12:49:23.301 [main] DEBUG nextflow.Session - Run name: run_a\n"
        "Jan-24 12:49:30.000 [Task submitter] INFO  nextflow.Session - [ab/cdef12] Submitted process > A (1)\n"
    )
    header = "task_id\thash\tnative_id\tname\tstatus\n"
    files = {
        "mine-old.txt": header + "1\tab/cdef12\tjob-1\tA (1)\tRUNNING\n",
        "mine-new.txt": header + "1\tab/cdef12\tjob-1\tA (1)\tCOMPLETED\n",
        "trace-foreign.txt": header + "1\tff/000001\tjob-x\tB (1)\tRUNNING\n",  # another session's
        "trace.txt": header,  # header only, newest
    }
    for i, (name, text) in enumerate(files.items()):
        (tmp_path / name).write_text(text)
        os.utime(tmp_path / name, (1_700_000_000 + i, 1_700_000_000 + i))
    # Only trace-*.txt, trace.txt and pipeline_info/execution_trace* are looked for: rename.
    for name in ("mine-old.txt", "mine-new.txt"):
        (tmp_path / name).rename(tmp_path / f"trace-{name}")
    run = NextflowRun.from_dir(tmp_path, year=2026)
    assert [Path(p).name for p in run.trace_paths] == ["trace-mine-old.txt", "trace-mine-new.txt"]
    (tmp_path / "nextflow.config").write_text("trace {\n    enabled = true\n    file = 'trace-mine-old.txt'\n}\n")
    run = NextflowRun.from_dir(tmp_path, year=2026)
    assert [Path(p).name for p in run.trace_paths] == ["trace-mine-old.txt"]
    assert "job-x" not in set(run.tasks[TaskCol.NATIVE_ID].dropna())


def test_a_weblog_claim_the_log_contradicts_is_no_proof() -> None:
    """The weblog (right session, right token) names job X for task ab/cdef12; the log's
    submit line names job Y for that task. X is contradicted: never proof, even when X
    runs the task's launcher on the run's queue within its lifetime."""
    from batchkit.nextflow.run import record_evidence

    def frame(rows: list[dict[str, Any]], source: str) -> pd.DataFrame:
        out = pd.DataFrame({c: [r.get(c) for r in rows] for c in TASK_COLUMNS}).astype(TASK_DTYPES)
        out[TaskCol.SOURCE] = source
        return out

    wd = f"{WORK}/ab/cdef12{'0' * 24}"
    log = frame([{TaskCol.HASH: "ab/cdef12", TaskCol.NATIVE_ID: "job-y", TaskCol.STATUS: "SUBMITTED"}], "log")
    weblog = frame([{TaskCol.HASH: "ab/cdef12", TaskCol.NATIVE_ID: "job-x", TaskCol.STATUS: "SUBMITTED"},
                    {TaskCol.HASH: "cd/000001", TaskCol.NATIVE_ID: "job-z", TaskCol.STATUS: "SUBMITTED"}], "weblog")
    recorded, contradicted = record_evidence({"trace": None, "log": log, "weblog": weblog})
    assert recorded == {"job-y": "log", "job-x": "weblog", "job-z": "weblog"}
    assert contradicted == {"job-x"}  # job-z: the files say nothing against it

    @dataclass
    class Run:
        tasks: pd.DataFrame
        recorded_by: dict[str, str]
        contradicted_ids: frozenset[str]
        name: str = "run_a"
        state: str = "aborted"
        work_dir: str = WORK
        launch_time: pd.Timestamp = T0
        end_time: pd.Timestamp = T0 + pd.Timedelta(hours=1)
        queues: tuple[str, ...] = (QUEUE,)

    tasks = frame([{TaskCol.HASH: "ab/cdef12", TaskCol.NATIVE_ID: "job-x", TaskCol.STATUS: "SUBMITTED"}], "weblog+log")
    job = {"jobId": "job-x", "jobQueue": QUEUE, "status": "RUNNING", "createdAt": int((T0 + pd.Timedelta(minutes=5)).value // 10**6),
           "container": {"command": launcher(wd)}}  # fmt: skip
    out = reconcile(Run(tasks, recorded, contradicted), [job], now=T0 + pd.Timedelta(hours=3))
    row = out.iloc[0]
    assert row[RecCol.VERDICT] == "orphan" and not row[RecCol.KILLABLE]
    assert "the trace or log name another job for this task" in row[RecCol.PROOF]
    assert plan_kills(out, force=True) == []


def test_a_run_known_only_from_the_history_labels_the_jobs_created_during_it(tmp_path: Path) -> None:
    (tmp_path / ".nextflow.log").write_text(
        "Jan-24 12:49:23.194 [main] DEBUG nextflow.cli.Launcher - $> nextflow run main.nf\n"
        "Jan-24 12:49:23.300 [main] DEBUG nextflow.Session - Session UUID: 11111111-2222-4333-8444-555555555555\n"
        "Jan-24 12:49:23.301 [main] DEBUG nextflow.Session - Run name: run_a\n"
        f"Jan-24 12:49:23.302 [main] DEBUG nextflow.Session - Work-dir: {WORK} [null]\n"
        "Jan-24 12:49:30.000 [Task submitter] INFO  nextflow.Session - [ab/cdef12] Submitted process > A (1)\n"
    )
    (tmp_path / ".nextflow").mkdir()
    (tmp_path / ".nextflow" / "history").write_text(
        "2026-01-24 12:49:23\t-\trun_a\tERR\t6184cc468c\t11111111-2222-4333-8444-555555555555\tnextflow run main.nf\n"
        "2026-01-24 14:00:00\t1h 2m\trun_b\tOK\t6184cc468c\t99999999-2222-4333-8444-555555555555\tnextflow run main.nf\n"
    )
    run = NextflowRun.from_dir(tmp_path, year=2026, tz="UTC")
    (other,) = run.other_runs
    assert other.name == "run_b" and other.launch_time == pd.Timestamp("2026-01-24 14:00", tz="UTC")
    assert other.end_time == pd.Timestamp("2026-01-24 15:02", tz="UTC")

    def job(job_id: str, created: str, h: str) -> dict[str, Any]:
        return {"jobId": job_id, "jobQueue": QUEUE, "status": "RUNNING",
                "createdAt": int(pd.Timestamp(created, tz="UTC").value // 10**6),
                "container": {"command": launcher(f"{WORK}/{h}")}}  # fmt: skip

    jobs = [job("b-1", "2026-01-24 14:30", f"cd/{'1' * 30}"), job("later", "2026-01-25 09:00", f"ef/{'2' * 30}")]
    frame = reconcile(run, jobs, now=pd.Timestamp("2026-01-25 10:00", tz="UTC"), queues=[QUEUE])
    assert frame.attrs["other_runs"] == {"b-1": "run 'run_b', .nextflow/history (created during it)"}
    assert "b-1" not in set(frame[JobCol.JOB_ID].dropna())  # excluded from run_a's rows
    later = frame[frame[JobCol.JOB_ID] == "later"].iloc[0]  # nobody's known: the neighbourhood
    assert later[RecCol.IN_SCOPE_BY] == "neighbourhood" and not later[RecCol.KILLABLE]
    assert plan_kills(frame, force=True) == []
