"""The Tracker's refresh reads only what was appended to ``.nextflow.log``; a relaunch that
rotates the log between two refreshes is read from scratch (the kill path's adversary).

Worlds from tests/test_kill_safety.py on LocalBatch over HTTP: run A aborts leaving
orphans; the tracker follows A's launch dir; then run B is launched in the same dir (its
log becomes ``.nextflow.log``, A's is rotated to ``.nextflow.log.1``) and is killed -9
with its jobs in flight. The next refresh must give exactly the run a fresh full read
gives, and its kill plan none of B's live jobs; a refresh while A's dir is unchanged
reuses the run view (ReloadMemo), the one after the relaunch must not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from batchkit.nextflow import NextflowRun
from batchkit.nextflow.run import ReloadMemo
from batchkit.sim import LocalBatch
from batchkit.tracker import Tracker
from tests._worlds import QUEUE, World, lb, run_a, run_b
from tests.test_log_follow import assert_same_run

__all__ = ["lb"]  # the LocalBatch fixture of those worlds


def _plan(tracker: Tracker) -> set[str]:
    tracker.refresh()
    return {k.job_id for k in tracker.plan()}


@pytest.mark.parametrize("resume", [False, True], ids=["fresh", "resume"])
@pytest.mark.parametrize("by_name", [True, False], ids=["follows-run_a", "follows-the-newest"])
def test_a_relaunch_rotating_the_log_between_two_refreshes_reads_the_new_log_whole(
    lb: LocalBatch, tmp_path: Path, resume: bool, by_name: bool
) -> None:
    a_dir = tmp_path / "launch"
    truth_a = run_a(lb, a_dir)
    world = World(lb, a_dir, [str(a_dir)], set())
    name = "run_a" if by_name else None
    memo = ReloadMemo()
    tracker = Tracker(
        NextflowRun.from_dir(a_dir, run_name=name, memo=memo), world.client(), queues=[QUEUE], ledger=False
    )
    try:
        assert _plan(tracker) == truth_a.abandoned_job_ids & world.active()
        assert tracker.run.name == "run_a"
        view, builds = tracker.run, memo.builds
        assert _plan(tracker) == truth_a.abandoned_job_ids & world.active()
        assert tracker.run is view and memo.builds == builds  # the dead run's dir: reused
        lb.advance(3600.0)
        inode = (a_dir / ".nextflow.log").stat().st_ino
        truth_b = run_b(lb, a_dir, resume=resume)
        assert (a_dir / ".nextflow.log.1").stat().st_ino == inode  # rotated, as logback does
        plan = _plan(tracker)
        assert memo.builds == builds + 1 and tracker.run is not view  # the rotation: built again
        fresh = NextflowRun.from_dir(a_dir, run_name=name)
        assert_same_run(tracker.run, fresh)
        active = world.active()
        b_live = (truth_b.job_ids | truth_b.abandoned_job_ids) & active
        assert b_live, "B must have jobs in flight"
        assert not plan & b_live
        with Tracker(fresh, world.client(), queues=[QUEUE], ledger=False, reload_run=False) as again:
            assert plan == _plan(again)
        if by_name:
            assert tracker.run.name == "run_a" and plan == truth_a.abandoned_job_ids & active
        else:
            assert tracker.run.name == "run_b"
    finally:
        tracker.close()
