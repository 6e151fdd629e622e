"""The worlds the kill-safety and LocalBatch tests build, written once.

* Kill worlds (tests/test_kill_safety.py, test_kill_adversary.py, test_kill_safety_ledger.py,
  test_tracker_follow.py): LocalBatch over HTTP on a manual clock, run A (the simulated
  Nextflow) aborts on queue ``q`` with work dir ``s3://b/work`` leaving orphans, and run B
  or another user adds jobs that look like A's; the kill paths (``batchkit kill``, the
  Tracker's plan) are driven the way a user drives them.
* Live launches (the watchdog tests): ``launch_nextflow`` runs of the simulated Nextflow
  on a sped-up LocalBatch.
* The one-queue emulator (tests/test_localbatch_http.py, test_localbatch_rules.py):
  a manual clock at a fixed epoch, so timestamps are exact.

The adversary worlds are those of docs/ARCHITECTURE.md §8.1 rule 6.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from batchkit import cli
from batchkit.client import BatchClient
from batchkit.nextflow import NextflowRun
from batchkit.schema import JOB_ACTIVE, TaskCol
from batchkit.sim import LocalBatch
from batchkit.sim.nextflow import Pipeline, SimulatedNextflow
from batchkit.tracker import Tracker

# --- kill worlds: run A aborts on queue q, work dir s3://b/work -------------------------------

WORK = "s3://b/work"
QUEUE = "q"
#: ALIGN runs for days, so A's orphans still burn when B starts a day later.
DURATIONS = {"FASTQC": 90.0, "ALIGN": 3 * 86400.0, "MERGE": 600.0}
AWS = "/usr/local/bin/aws s3 cp --only-show-errors"


def launcher(wd: str) -> list[str]:
    """Nextflow's AwsBatchTaskHandler command for task dir ``wd``."""
    return ["bash", "-o", "pipefail", "-c",
            f'trap "{{ ret=$?; {AWS} .command.log {wd}/.command.log||true; exit $ret; }}" EXIT; '
            f"{AWS} {wd}/.command.run - | bash 2>&1 | tee .command.log"]  # fmt: skip


@dataclass
class World:
    lb: LocalBatch
    a_dir: Path
    a_selection: list[str]  # CLI arguments naming run A
    a_orphans: set[str]
    foreign: set[str] = field(default_factory=set)

    def active(self) -> set[str]:
        return {j["jobId"] for j in self.lb.jobs() if j["status"] in JOB_ACTIVE}

    def client(self) -> BatchClient:
        return BatchClient(endpoint_url=self.lb.endpoint_url, deadline=30)

    def run_a(self) -> NextflowRun:
        args = self.a_selection
        if args[0] == "--log":
            return NextflowRun.from_files(log=args[1], trace=args[3])
        return NextflowRun.from_dir(args[0])


@pytest.fixture
def lb() -> Iterator[LocalBatch]:
    """Queue q for runs A and B, queue q2 for other users' jobs."""
    with LocalBatch(manual_clock=True) as batch:
        batch.create_environment(queue=QUEUE, vcpus=4096)
        batch.create_environment(queue="q2", vcpus=1024)
        yield batch


def run_a(lb: LocalBatch, launch_dir: Path) -> Any:
    """Run A: aborts on a DescribeJobs outage (24.02), leaving its ALIGN jobs running."""
    t0 = lb.clock.now()
    burst = lb.faults.add("DescribeJobs", "authorizer-500", window=(t0 + 300.0, t0 + 1200.0))
    truth = SimulatedNextflow(
        lb.client(retries={"total_max_attempts": 1}), launch_dir=launch_dir, work_dir=WORK, queue=QUEUE,
        pipeline=Pipeline(n_tasks=12, durations=DURATIONS, seed=0), behavior="24.02", batch=lb,
        poll_interval=60.0, seed=11, run_name="run_a",
    ).run()
    lb.faults.remove(burst)
    assert truth.run_state == "aborted"
    return truth


def run_b(lb: LocalBatch, launch_dir: Path, *, resume: bool, queue: str = QUEUE, work_dir: str = WORK) -> Any:
    """Run B on the same queue and work dir, killed -9 with its jobs in flight (it looks alive).
    ``resume``: B keeps A's session id (as ``-resume`` does); its tasks get new hashes
    (Nextflow bumps a hash whose task dir already exists)."""
    return SimulatedNextflow(
        lb.client(retries={"total_max_attempts": 1}), launch_dir=launch_dir, work_dir=work_dir, queue=queue,
        pipeline=Pipeline(n_tasks=12, durations=DURATIONS, seed=5), behavior="crash", batch=lb,
        poll_interval=60.0, seed=11 if resume else 12, run_name="run_b", crash_after=0.3,
    ).run()


def world_of_a(lb: LocalBatch, a_dir: Path, truth_a: Any, foreign: set[str] | None = None) -> World:
    """A's world as it stands now: A named by its launch dir, its orphans the jobs it
    abandoned that are still active, ``foreign`` the jobs a kill of A must leave running."""
    world = World(lb, a_dir, [str(a_dir)], set(), set(foreign or ()))
    world.a_orphans = truth_a.abandoned_job_ids & world.active()
    return world


def a_then_b(lb: LocalBatch, tmp_path: Path, delay: float, resume: bool, same_dir: bool) -> World:
    a_dir = tmp_path / "launch"
    truth_a = run_a(lb, a_dir)
    lb.advance(delay)
    truth_b = run_b(lb, a_dir if same_dir else tmp_path / "launch-b", resume=resume)
    world = World(lb, a_dir, [str(a_dir)], set())
    if same_dir:
        # B's log is now .nextflow.log; A's was rotated to .nextflow.log.1 (RollOnStartupPolicy).
        world.a_selection = ["--log", str(a_dir / ".nextflow.log.1"), "--trace", str(truth_a.trace_file)]
    active = world.active()
    world.a_orphans = truth_a.abandoned_job_ids & active
    world.foreign = (truth_b.job_ids | truth_b.abandoned_job_ids) & active
    assert world.foreign, "B must have jobs in flight"
    return world


def foreign_job(lb: LocalBatch, *, queue: str, workdir: str, created_offset: float = 0.0) -> str:
    """A job someone else submitted (a real submission, on LocalBatch's clock)."""
    if created_offset:
        lb.advance(created_offset)
    return str(
        lb.client().submit_job(
            jobName="ALIGN_sample_01", jobQueue=queue, jobDefinition="nf-demo",
            # the trailing comment (bash ignores it) tells the emulator it runs for days
            containerOverrides={"command": [*launcher(workdir)[:-1], launcher(workdir)[-1] + " # sleep 3d"]},
        )["jobId"]
    )


def append_trace_row(trace: Path, row: dict[str, str]) -> None:
    """A row added to a trace file by hand (columns the row leaves out are ``-``)."""
    header = trace.read_text().splitlines()[0].split("\t")
    with trace.open("a") as fh:
        fh.write("\t".join(row.get(c, "-") for c in header) + "\n")


# --- the kill paths, driven as a user drives them -------------------------------------------


def kill_with_cli(world: World, capsys: pytest.CaptureFixture[str]) -> set[str]:
    """``batchkit kill`` then ``--yes``; the jobs it terminated (A's orphans are re-read
    first: the emulator's clock may have let some finish)."""
    before = world.active()
    world.a_orphans &= before
    argv = ["kill", *world.a_selection, "--endpoint-url", world.lb.endpoint_url, "--queue", QUEUE]
    assert cli.main(argv) == cli.EXIT_OK  # the dry run
    dry, _ = capsys.readouterr()
    assert cli.main([*argv, "--yes"]) == cli.EXIT_OK
    out, _ = capsys.readouterr()
    killed = before - world.active()
    assert killed == {line.split()[0] for line in out.splitlines() if "  terminated" in line}
    # The dry run named each job it would take with the proof that holds for it.
    assert all(j in dry for j in killed) and (not killed or "proof: recorded by" in dry), dry
    return killed


def tracker_plan(world: World, run: Any | None = None) -> set[str]:
    tracker = Tracker(run or world.run_a(), world.client(), queues=[QUEUE], ledger=False, reload_run=False)
    try:
        tracker.refresh()
        return {k.job_id for k in tracker.plan()}
    finally:
        tracker.close()


# --- live launches: launch_nextflow on a sped-up LocalBatch ---------------------------------

#: Small enough to finish in seconds at 20x, long enough to be killed in flight.
SIM_ARGS = ["-n-tasks", "8", "-poll-interval", "5"]


@contextmanager
def live_launches() -> Iterator[tuple[LocalBatch, Callable[..., Any]]]:
    """LocalBatch at 20x speed with queue ``demo-queue``, and ``launch(folder, *sim_args)``
    starting the simulated Nextflow in ``folder`` with ``launch_nextflow`` (SIM_ARGS, then
    ``sim_args``). On the way out each launch still running is killed -9, then closed."""
    from batchkit.launcher import launch_nextflow

    launches: list[Any] = []
    with LocalBatch(speed=20.0) as batch:
        batch.create_environment("demo-queue", vcpus=512)
        client = BatchClient(client=batch.client(), rate=200.0)

        def launch(folder: Path, *sim_args: str) -> Any:
            launches.append(launch_nextflow("main.nf", folder, client=client, queue="demo-queue",
                                            endpoint_url=batch.endpoint_url, simulated=True,
                                            sim_args=[*SIM_ARGS, *sim_args]))
            return launches[-1]

        try:
            yield batch, launch
        finally:
            for started in launches:
                if started.returncode is None:
                    started.kill_process()
                started.close()


def recorded(launch: Any) -> set[str]:
    """The job ids a launch's weblog receiver has recorded so far."""
    tasks = launch.weblog.tasks()
    return set(tasks[TaskCol.NATIVE_ID].dropna()) if len(tasks) else set()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# --- the one-queue emulator: a manual clock at a fixed epoch -------------------------------

EMU_T0 = 1_767_000_000.0


@contextmanager
def one_queue_emulator() -> Iterator[LocalBatch]:
    """LocalBatch on a manual clock starting at EMU_T0, with queue ``q`` of 4 vCPUs."""
    with LocalBatch(manual_clock=True, start_time=EMU_T0) as emu:
        emu.create_environment("q", vcpus=4)
        yield emu


@pytest.fixture(name="lb")
def one_queue_lb() -> Iterator[LocalBatch]:
    """The ``lb`` fixture of the LocalBatch API tests: a fresh one-queue emulator."""
    with one_queue_emulator() as emu:
        yield emu
