"""Kill safety (issue #15): the ledger's other runs are known and excluded.

Run A aborts on LocalBatch (queue q, work dir s3://b/work) leaving orphans. Then, on the
same queue and under the same work dir, two jobs are created whose commands are
Nextflow's launcher for task dirs A submitted — so A's own evidence (the hash) would
claim them — and the only thing telling them apart is the launch dir's ledger:

* one was submitted from batchkit's submit form (the ledger's ``submissions``);
* one is claimed by run B's kill (an open kill row under ``run_b`` in the ledger).

Without the ledger both would be in A's kill plan (the test shows it); with it, they
are labelled with their run and ``kill --yes`` of A takes A's orphans only.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from batchkit.client import BatchClient
from batchkit.ledger import SUBMISSIONS_RUN, Ledger
from batchkit.reconcile import extract_workdir, jobs_frame
from batchkit.schema import JobCol, KillJob
from batchkit.sim import LocalBatch
from batchkit.tracker import Tracker
from batchkit.widgets.submit_form import FORM_RUN, SubmitForm
from tests._worlds import QUEUE, World, foreign_job, kill_with_cli, launcher, lb, run_a, world_of_a

__all__ = ["lb"]  # the LocalBatch fixture of the kill worlds (tests/_worlds.py)


def task_dirs_of(world: World, job_ids: set[str]) -> list[str]:
    """The task work dirs the launchers of ``job_ids`` name (A's own task dirs)."""
    jobs = jobs_frame([j for j in world.lb.jobs() if j["jobId"] in job_ids])
    return sorted(set(extract_workdir(jobs[JobCol.COMMAND]).dropna()))


def submit_from_the_form(world: World, ledger: Path, task_dir: str) -> str:
    """A user re-runs one of A's task dirs from the submit form (its ledger records it)."""
    client = BatchClient(client=world.lb.client(), rate=1000.0, sleep=world.lb.advance)
    form = SubmitForm(client, ledger=ledger, autostart=False)
    try:
        command = [*launcher(task_dir)[:-1], launcher(task_dir)[-1] + " # sleep 3d"]
        values = {"job_name": "rerun-align", "job_queue": QUEUE, "job_definition": "nf-demo",
                  "command": shlex.join(command), "vcpus": "2", "memory": "4096"}  # fmt: skip
        for name, value in values.items():
            form.inputs[name].value = value
        answer = form.submit()
        assert answer is not None, form.status.value
        return str(answer["jobId"])
    finally:
        form.close()


def tracker_plan(world: World, ledger: Path | bool) -> tuple[set[str], dict[str, str]]:
    tracker = Tracker(
        world.run_a(), world.client(), queues=[QUEUE], ledger=ledger if ledger else False, reload_run=False
    )
    try:
        frame = tracker.refresh().frame
        return {k.job_id for k in tracker.plan()}, dict(frame.attrs.get("other_runs", {}))
    finally:
        tracker.close()


def test_jobs_the_ledger_records_under_other_runs_are_never_killed_as_a_s(
    lb: LocalBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_dir = tmp_path / "launch"
    truth_a = run_a(lb, a_dir)
    world = world_of_a(lb, a_dir, truth_a)
    assert len(world.a_orphans) >= 2
    dirs = task_dirs_of(world, world.a_orphans)
    ledger_path = a_dir / ".batchkit" / "ledger.sqlite"  # the launch dir's, as the CLI opens it

    form_job = submit_from_the_form(world, ledger_path, dirs[0])
    b_job = foreign_job(lb, queue=QUEUE, workdir=dirs[1])  # run B's job (B's evidence: the ledger)
    with Ledger(ledger_path) as ledger:
        kill = KillJob(job_id=b_job, verdict="orphan", reason="batchkit: orphan of run 'run_b'")
        ledger.record_kill_intent("run_b", kill, {"jobId": b_job})  # B's kill, claimed, not final
    others = {form_job, b_job}
    assert others <= world.active()

    # Without the ledger, A's evidence alone claims both (hash-proven duplicates of A's
    # task dirs, on A's queue, within A's lifetime): the ledger is the only difference.
    blind, _ = tracker_plan(world, ledger=False)
    assert blind == world.a_orphans | others

    plan, labelled = tracker_plan(world, ledger=ledger_path)
    assert plan == world.a_orphans
    assert labelled[form_job] == f"run '{SUBMISSIONS_RUN}', the ledger's submissions"
    assert labelled[b_job] == "run 'run_b', the ledger's kills"

    killed = kill_with_cli(world, capsys)  # `batchkit kill <launch dir> --yes`, the same ledger
    assert killed == world.a_orphans  # 0 missed
    assert not killed & others and others <= world.active()  # 0 foreign
    with Ledger(ledger_path) as ledger:
        assert {r["job_id"] for r in ledger.kills("run_b")} == {b_job}  # B's claim untouched
        assert not {r["job_id"] for r in ledger.kills(FORM_RUN)} & killed


def test_the_ledger_lists_other_runs_jobs_but_not_the_runs_own(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        for run, job in (("run_a", "j-a"), ("unnamed session s-1", "j-a2"), ("run_b", "j-b"), (None, "j-none")):
            ledger.record_kill_intent(run, KillJob(job_id=job, verdict="orphan", reason="r"), {})
        ledger.record_submission_intent("sid-1", {"jobName": "x"})
        ledger.record_submission_result("sid-1", "j-form", "submitted")
        ledger.record_submission_intent("sid-2", {"jobName": "y"})  # pending: no job id yet
        assert ledger.other_runs_jobs({"run_a", "unnamed session s-1"}) == {
            "run_b": {"j-b"}, SUBMISSIONS_RUN: {"j-form"}
        }
        # the submit form's own kills are its run's, and its submissions too
        assert ledger.other_runs_jobs({FORM_RUN}) == {
            "run_a": {"j-a"}, "unnamed session s-1": {"j-a2"}, "run_b": {"j-b"}
        }
    assert SUBMISSIONS_RUN == FORM_RUN
