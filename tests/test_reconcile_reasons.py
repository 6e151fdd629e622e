"""The exact reason line of every verdict case (docs/ARCHITECTURE.md §6), pinned.

Reasons are what a person reads before a kill, in the dashboard, the CLI and the
ledger; their wording is behaviour. One hand-built run per run state, every case in it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from test_reconcile import NOW, QUEUE, T0, Run, job, minutes, task, tasks

from batchkit.reconcile import reconcile
from batchkit.schema import JobCol, RecCol, TaskCol

OTHER_QUEUE = "arn:aws:batch:eu-west-1:123456789012:job-queue/other-queue"


def reasons(run: Run, jobs: list[dict[str, Any]]) -> dict[tuple[int | None, str | None], tuple[str, str]]:
    frame = reconcile(run, jobs, now=NOW, queues=[QUEUE])
    return {
        (None if pd.isna(r[TaskCol.TASK_ID]) else int(r[TaskCol.TASK_ID]),
         None if pd.isna(r[JobCol.JOB_ID]) else r[JobCol.JOB_ID]): (r[RecCol.VERDICT], r[RecCol.REASON])
        for _, r in frame.iterrows()
    }


def world() -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One task or job per reason case beside those test_every_verdict_with_its_reason pins."""
    rows = tasks(
        task(1, "RUNNING", None, "c1/000001"),  # claims the newer of two jobs in its task dir
        task(2, "COMPLETED", "orphan-no-complete", "c2/000002"),
        task(3, "FAILED", "disagree-quiet", "c3/000003", complete=T0 + minutes(30)),
        task(4, "RUNNING", "elsewhere", "c4/000004"),
        task(5, "RUNNING", "retried-elsewhere", "c5/000005"),
        task(6, "RUNNING", "gone", "c6/000006"),
        task(7, "RUNNING", "a-day-long", "c7/000007"),
        task(8, "ABORTED", "just-now", "c8/000008", complete=T0 + minutes(170)),
        task(9, "SUBMITTED", None, "c9/000009"),
        task(10, "CACHED", None, "ca/000010"),
    )
    jobs = [
        job("dup-new", "RUNNING", short_hash="c1/000001", created=T0 + minutes(2), started=T0 + minutes(3)),
        # A duplicate from an unanswered SubmitJob retry: its task dir is one this run submitted.
        job("dup-old", "RUNNING", short_hash="c1/000001", created=T0 + minutes(1), started=T0 + minutes(2)),
        job("orphan-no-complete", "RUNNABLE", created=T0 + minutes(100)),  # never started: since createdAt
        job("disagree-quiet", "SUCCEEDED", started=T0, stopped=T0 + minutes(29)),
        job("elsewhere", "RUNNING", queue=OTHER_QUEUE, started=T0 + minutes(5)),
        job("retried-elsewhere", "RUNNING", queue=OTHER_QUEUE, started=T0 + minutes(20),
            attempts=[(T0 + minutes(2), T0 + minutes(15))]),
        job("a-day-long", "RUNNING", started=NOW - pd.Timedelta(days=1, hours=2, minutes=5)),
        job("just-now", "RUNNING", started=NOW - pd.Timedelta(seconds=42)),
        job("done-dup", "SUCCEEDED", short_hash="c9/000009", created=T0 + minutes(1),
            started=T0 + minutes(2), stopped=T0 + minutes(4)),
        job("done-dup-2", "SUCCEEDED", short_hash="c9/000009", created=T0 + minutes(2),
            started=T0 + minutes(3), stopped=T0 + minutes(5)),
    ]
    return rows, jobs


NOT_PROVEN = " — not proven this run's job (see proof): not killable"
DUP_OLD = "no Nextflow record of job dup-old (work dir …/c1/000001000000000000000000000000: a task dir this run submitted); Batch RUNNING"
DONE_DUP = "no Nextflow record of job done-dup (work dir …/c9/000009000000000000000000000000: a task dir this run submitted); Batch SUCCEEDED"


#: The line of every row of world() while its run is alive.
LIVE = {
    (1, "dup-new"): ("ok", "Nextflow RUNNING, Batch RUNNING"),
    (2, "orphan-no-complete"): ("orphan", "Nextflow marked the task COMPLETED but Batch still RUNNABLE for 1h 20m"),
    (3, "disagree-quiet"): ("disagree", "Nextflow says FAILED, Batch says SUCCEEDED"),
    (4, "elsewhere"): ("ok", "Nextflow RUNNING, Batch RUNNING" + NOT_PROVEN),
    (5, "retried-elsewhere"): ("ok", "Nextflow RUNNING, Batch RUNNING; Batch retried 1×" + NOT_PROVEN),
    (6, None): ("vanished", "job id gone not found in Batch (aged out, wrong region/account, or nextflow-io/nextflow#7301)"),
    (7, "a-day-long"): ("ok", "Nextflow RUNNING, Batch RUNNING"),
    (8, "just-now"): ("orphan", "Nextflow marked the task ABORTED at 14:50 UTC but Batch still RUNNING for 42s"),
    (9, "done-dup-2"): ("stale", "Batch says SUCCEEDED, Nextflow still thinks SUBMITTED"),
    (10, None): ("ok", "cached by Nextflow: no Batch job needed"),
    (None, "dup-old"): ("untracked", DUP_OLD + " for 2h 58m — the run is alive: it may have just been submitted (kill only with force)"),
    (None, "done-dup"): ("untracked", DONE_DUP),
}


def test_every_reason_of_a_live_run() -> None:
    rows, jobs = world()
    assert reasons(Run(rows), jobs) == LIVE


def test_every_reason_of_a_completed_run() -> None:
    rows, jobs = world()
    run = Run(rows, state="completed", end_time=T0 + minutes(150))
    ended = "Nextflow completed at 14:30 UTC but Batch still RUNNING for {}, task still RUNNING in its records"
    assert reasons(run, jobs) == {
        **LIVE,
        (1, "dup-new"): ("orphan", ended.format("2h 57m")),
        (4, "elsewhere"): ("orphan", ended.format("2h 55m") + NOT_PROVEN),
        (5, "retried-elsewhere"): ("orphan", ended.format("2h 40m") + "; Batch retried 1×" + NOT_PROVEN),
        (7, "a-day-long"): ("orphan", ended.format("1d 2h")),
        # The run has ended: a proven unclaimed job is killable, no "alive" caveat.
        (None, "dup-old"): ("untracked", DUP_OLD + " for 2h 58m"),
    }


def test_an_aborted_run_without_an_end_time_quotes_its_cause() -> None:
    run = Run(tasks(task(1, "RUNNING", "j1", "d1/000001"), task(2, "SUBMITTED", None, "d2/000002")), state="aborted")
    run.abort_cause = "SIGTERM"  # type: ignore[attr-defined]  # optional extra the reason quotes
    jobs = [job("j1", "STARTING", created=T0 + minutes(1))]
    assert reasons(run, jobs) == {
        (1, "j1"): ("orphan", "Nextflow aborted (SIGTERM) but Batch still STARTING for 2h 59m, task still RUNNING in its records"),
        (2, None): ("ok", "run ended with the task SUBMITTED and no Batch job recorded or found in scope"),
    }
