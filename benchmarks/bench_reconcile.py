"""Benchmark: reconcile 100,000 tasks against 100,000 jobs with mixed verdicts.

Run: .venv/bin/python benchmarks/bench_reconcile.py [--tasks N] [--repeat R]
Targets (issue 4): reconcile under 1 s and 500 MB peak on the project machine.
Reports, separately, jobs_frame (DescribeJobs dicts -> frame) and reconcile on that
frame, the best of R runs each, and the peak memory each step allocates (tracemalloc,
in a separate pass so tracing does not slow the timed runs) plus the process's max RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from batchkit.reconcile import jobs_frame, plan_kills, reconcile, summarize
from batchkit.schema import TASK_COLUMNS, TASK_DTYPES, TaskCol

T0 = pd.Timestamp("2026-01-24 12:00:00", tz="UTC")
WORK = "s3://bucket/work"
QUEUE = "arn:aws:batch:eu-west-1:123456789012:job-queue/nf-queue"
AWS = "/usr/local/bin/aws s3 cp --only-show-errors"


@dataclass
class Run:
    tasks: pd.DataFrame
    name: str | None = "bench_run"
    state: str = "aborted"
    work_dir: str | None = WORK
    launch_time: Any = T0
    end_time: Any = T0 + pd.Timedelta(hours=2)


def build(n: int, seed: int = 7) -> tuple[Run, list[dict[str, Any]]]:
    """n tasks and n jobs: ok, running, cached, orphan, stale, vanished, disagree, hash-matched, untracked."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(
        ["ok_done", "ok_run", "cached", "orphan", "stale", "vanished", "disagree", "by_hash", "untracked"],
        size=n,
        p=[0.50, 0.05, 0.05, 0.15, 0.05, 0.03, 0.02, 0.05, 0.10],
    )
    base_ms = T0.value // 1_000_000
    tasks: dict[str, list[Any]] = {c: [] for c in TASK_COLUMNS}
    jobs: list[dict[str, Any]] = []
    for i, kind in enumerate(kinds):
        h = hashlib.md5(str(i).encode()).hexdigest()  # like Nextflow's task hash: 32 hex
        wd = f"{WORK}/{h[:2]}/{h[2:]}"
        job_id = f"{i:08x}-0000-4000-8000-{i:012x}"
        # Every kind has a task (an "untracked" job sits beside an unrelated CACHED task),
        # so there are n tasks and n jobs.
        status = {"ok_done": "COMPLETED", "ok_run": "RUNNING", "cached": "CACHED", "orphan": "ABORTED",
                  "stale": "RUNNING", "vanished": "RUNNING", "disagree": "COMPLETED", "by_hash": "RUNNING",
                  "untracked": "CACHED"}[kind]
        tasks[TaskCol.TASK_ID].append(i)
        tasks[TaskCol.HASH].append(f"{h[:2]}/{h[2:8]}" if kind != "untracked" else "ff/ffffff")
        tasks[TaskCol.NATIVE_ID].append(None if kind in ("cached", "by_hash", "untracked") else job_id)
        tasks[TaskCol.NAME].append(f"PROC_{i % 50} (sample{i})")
        tasks[TaskCol.PROCESS].append(f"PROC_{i % 50}")
        tasks[TaskCol.STATUS].append(status)
        tasks[TaskCol.COMPLETE].append(T0 + pd.Timedelta(minutes=30) if status in ("COMPLETED", "ABORTED") else None)
        for col in (TaskCol.TAG, TaskCol.EXIT, TaskCol.ATTEMPT, TaskCol.SUBMIT, TaskCol.START,
                    TaskCol.REALTIME, TaskCol.CPUS, TaskCol.MEMORY, TaskCol.WORKDIR, TaskCol.SOURCE):
            tasks[col].append(None)
        if kind in ("cached", "vanished"):
            job_id = f"gone-{i}"  # fills the job count with an out-of-scope job
            wd = f"s3://other/work/{h[:2]}/{h[2:]}"
        batch = {"ok_done": "SUCCEEDED", "ok_run": "RUNNING", "orphan": "RUNNING", "stale": "SUCCEEDED",
                 "disagree": "FAILED", "by_hash": "RUNNING", "untracked": "RUNNING",
                 "cached": "SUCCEEDED", "vanished": "SUCCEEDED"}[kind]
        attempts = [] if batch == "RUNNING" else [{"startedAt": base_ms + 60_000, "stoppedAt": base_ms + 1_800_000}]
        if i % 20 == 0:  # a spot reclaim before the final try
            attempts.insert(0, {"startedAt": base_ms, "stoppedAt": base_ms + 30_000,
                                "statusReason": "Host EC2 (instance i-0abc) terminated."})
        job: dict[str, Any] = {
            "jobArn": f"arn:aws:batch:eu-west-1:123456789012:job/{job_id}",
            "jobName": f"PROC_{i % 50}_sample{i}",
            "jobId": job_id,
            "jobQueue": QUEUE,
            "status": batch,
            "createdAt": base_ms + 10_000,
            "startedAt": base_ms + 60_000,
            "attempts": attempts,
            "container": {
                "command": ["bash", "-o", "pipefail", "-c",
                            f'trap "{{ ret=$?; {AWS} .command.log {wd}/.command.log||true; exit $ret; }}" EXIT; '
                            f"{AWS} {wd}/.command.run - | bash 2>&1 | tee .command.log"],
                "resourceRequirements": [{"value": str(1 + i % 8), "type": "VCPU"}, {"value": "4096", "type": "MEMORY"}],
            },
        }
        if batch != "RUNNING":
            job["stoppedAt"] = base_ms + 1_800_000
        jobs.append(job)
    frame = pd.DataFrame(tasks, columns=list(TASK_COLUMNS))
    frame[TaskCol.COMPLETE] = pd.to_datetime(frame[TaskCol.COMPLETE], utc=True)
    return Run(frame.astype(TASK_DTYPES)), jobs


def best(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """Best wall time and best CPU time of ``repeat`` runs (the machine is shared: CPU
    time shows the work, wall time what a user waits), and the last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return min(walls), min(cpus), out


def peak_mb(fn: Any) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run, jobs = build(args.tasks)
    now = T0 + pd.Timedelta(hours=5)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    w_frame, c_frame, jf = best(lambda: jobs_frame(jobs), args.repeat)
    w_rec, c_rec, frame = best(lambda: reconcile(run, jf, now=now), args.repeat)
    w_all, c_all, _ = best(lambda: reconcile(run, jobs, now=now), 1)
    w_plan, c_plan, plan = best(lambda: plan_kills(frame), args.repeat)
    w_sum, c_sum, summary = best(lambda: summarize(frame), args.repeat)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    m_frame = peak_mb(lambda: jobs_frame(jobs))
    m_rec = peak_mb(lambda: reconcile(run, jf, now=now))
    print(f"tasks={len(run.tasks):,} jobs={len(jobs):,} rows={len(frame):,} load={os.getloadavg()[0]:.1f}")
    print(f"verdicts={summary['verdicts']} killable={summary['killable']:,} kills planned={len(plan):,}")
    print(f"waste={summary['waste_vcpu_hours']:,.1f} vCPU-h retries={summary['batch_retries']:,}")
    print(f"{'step':24s} {'wall s':>7s} {'cpu s':>7s} {'peak MB':>8s}")
    print(f"{'jobs_frame(dicts)':24s} {w_frame:7.3f} {c_frame:7.3f} {m_frame:8.1f}")
    print(f"{'reconcile(frame)':24s} {w_rec:7.3f} {c_rec:7.3f} {m_rec:8.1f}")
    print(f"{'reconcile(dicts) total':24s} {w_all:7.3f} {c_all:7.3f}")
    print(f"{'plan_kills':24s} {w_plan:7.3f} {c_plan:7.3f}")
    print(f"{'summarize':24s} {w_sum:7.3f} {c_sum:7.3f}")
    print(f"process max RSS {rss_after:,.0f} MB (before timing: {rss_before:,.0f} MB, holding the input dicts)")


if __name__ == "__main__":
    main()
