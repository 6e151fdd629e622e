"""Benchmark the kill path (batchkit.kills) on LocalBatch: call counts, an outage, two killers.

Three measurements, each on a replayed #5516 incident (LocalBatch over HTTP, real boto3):

- ``calls``: `batchkit kill --yes` of ~1,000 orphans on a healthy API: the Batch calls
  of the whole command (refresh + kill), so each killed job is seen described once after
  its kill (one DescribeJobs per chunk of 50);
- ``outage``: TerminateJobs and TerminateJob answer 500 without end; `kill --yes
  --deadline 20` on 120 orphans: wall time, exit status, Terminate calls (at most one per
  chunk per backoff step), then the kill after the fault is lifted;
- ``race``: two `kill --yes` processes (and two Dashboards on one ledger) start together
  on ~500 orphans while every TerminateJobs stalls 1-2 s at random; ``--tries`` times.
  Every job must end with exactly one final audit row, and both killers must report the
  same counts.

Run: .venv/bin/python benchmarks/bench_kill.py [calls|outage|race|all] [--tries 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from batchkit.ledger import Ledger
from batchkit.sim.nextflow import Incident, replay_incident

ROOT = Path(__file__).resolve().parent.parent
ACTIVE = {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"}
SUMMARY = re.compile(r"^(\d+) of (\d+) job\(s\) killed.*$", re.MULTILINE)


def orphans(inc: Incident) -> set[str]:
    return inc.truth.abandoned_job_ids & {j["jobId"] for j in inc.batch.jobs() if j["status"] in ACTIVE}


def cli(inc: Incident, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "batchkit", "kill", str(inc.launch_dir), "--endpoint-url", inc.endpoint_url,
         "--queue", inc.truth.queue, "--yes", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {op: n - before.get(op, 0) for op, n in sorted(after.items()) if n != before.get(op, 0)}


def bench_calls(n_tasks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, replay_incident(launch_dir=Path(tmp) / "l", n_tasks=n_tasks) as inc:
        targets = orphans(inc)
        before = dict(inc.batch.calls)
        t0 = time.perf_counter()
        done = cli(inc)
        out, _ = done.communicate(timeout=600)
        took = time.perf_counter() - t0
        calls = delta(dict(inc.batch.calls), before)
        killed = len(targets - orphans(inc))
        return {"orphans": len(targets), "killed": killed, "exit": done.returncode, "seconds": round(took, 2),
                "calls": calls, "summary": SUMMARY.findall(out)}


def bench_outage(n_tasks: int, deadline: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, replay_incident(launch_dir=Path(tmp) / "l", n_tasks=n_tasks) as inc:
        targets = orphans(inc)
        lb = inc.batch
        rules = [lb.faults.add(op, "authorizer-500") for op in ("TerminateJobs", "TerminateJob")]
        before = dict(lb.calls)
        t0 = time.perf_counter()
        proc = cli(inc, "--deadline", str(deadline))
        out, err = proc.communicate(timeout=600)
        took = time.perf_counter() - t0
        calls = delta(dict(lb.calls), before)
        pending_lines = sum(" pending " in line for line in out.splitlines())
        for rule in rules:
            lb.faults.remove(rule)
        before = dict(lb.calls)
        again = cli(inc)
        out2, _ = again.communicate(timeout=600)
        audit = [k["job_id"] for k in Ledger.for_launch_dir(inc.launch_dir).kills()]
        return {
            "orphans": len(targets), "deadline": deadline, "seconds": round(took, 2), "exit": proc.returncode,
            "terminate_calls": calls.get("TerminateJobs", 0) + calls.get("TerminateJob", 0),
            "pending_listed": pending_lines, "last_progress": err.strip().splitlines()[-1][:200] if err else "",
            "next_kill_exit": again.returncode, "next_kill_summary": SUMMARY.findall(out2),
            "next_kill_calls": delta(dict(lb.calls), before),
            "audit_rows": len(audit), "audit_unique": len(set(audit)), "left_active": len(targets & orphans(inc)),
        }


def _stalls(inc: Incident) -> None:
    # 1 s always, plus 0.5 s twice at even odds: 1, 1.5 or 2 s per TerminateJobs call.
    inc.batch.faults.add("TerminateJobs", "latency", latency=1.0)
    inc.batch.faults.add("TerminateJobs", "latency", latency=0.5, rate=0.5)
    inc.batch.faults.add("TerminateJobs", "latency", latency=0.5, rate=0.5)


def _audit_ok(inc: Incident, targets: set[str]) -> tuple[bool, str]:
    rows = Ledger.for_launch_dir(inc.launch_dir).kills()
    final: dict[str, int] = {}
    for row in rows:
        if row["finished_at"] is not None:
            final[row["job_id"]] = final.get(row["job_id"], 0) + 1
    doubles = sum(1 for n in final.values() if n > 1)
    ok = set(final) == targets and doubles == 0 and len(rows) == len(targets)
    return ok, f"{len(rows)} rows, {len(final)} jobs final, {doubles} with two final rows"


def race_processes(n_tasks: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, replay_incident(
        launch_dir=Path(tmp) / "l", n_tasks=n_tasks, seed=seed
    ) as inc:
        targets = orphans(inc)
        _stalls(inc)
        t0 = time.perf_counter()
        procs = [cli(inc), cli(inc)]
        outs = [p.communicate(timeout=900) for p in procs]
        took = time.perf_counter() - t0
        summaries = [SUMMARY.findall(out) for out, _ in outs]
        ok, audit = _audit_ok(inc, targets)
        same = summaries[0] == summaries[1] and len(summaries[0]) == 1
        return {"orphans": len(targets), "seconds": round(took, 1), "exits": [p.returncode for p in procs],
                "summaries": summaries, "same_counts": same, "audit_ok": ok, "audit": audit,
                "left_active": len(targets & orphans(inc))}


def race_dashboards(n_tasks: int, seed: int) -> dict[str, Any]:
    from batchkit.client import BatchClient
    from batchkit.widgets.dashboard import Dashboard

    async def both(inc: Incident) -> list[Any]:
        dashes = [
            Dashboard(inc.launch_dir, client=BatchClient(endpoint_url=inc.endpoint_url),
                      queues=[inc.truth.queue], autostart=False)
            for _ in range(2)
        ]
        try:
            for dash in dashes:
                await dash.ready()
            for dash in dashes:
                dash.kill_all_button.click()
            for dash in dashes:
                dash.confirm_button.click()
            for dash in dashes:
                await dash.wait_idle()
            return [dash.wait_kill(1) for dash in dashes]
        finally:
            for dash in dashes:
                dash.close()

    with tempfile.TemporaryDirectory() as tmp, replay_incident(
        launch_dir=Path(tmp) / "l", n_tasks=n_tasks, seed=seed
    ) as inc:
        targets = orphans(inc)
        _stalls(inc)
        t0 = time.perf_counter()
        reports = asyncio.run(both(inc))
        took = time.perf_counter() - t0
        counts = [(r.killed, r.total, len(r.pending)) for r in reports]
        ok, audit = _audit_ok(inc, targets)
        return {"orphans": len(targets), "seconds": round(took, 1), "counts": counts,
                "same_counts": counts[0] == counts[1], "audit_ok": ok, "audit": audit,
                "left_active": len(targets & orphans(inc))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all", choices=("calls", "outage", "race", "all"))
    parser.add_argument("--tries", type=int, default=10, help="race: tries of each kind (default 10)")
    parser.add_argument("--first", type=int, default=0, help="race: number of the first try (its seed)")
    parser.add_argument("--calls-tasks", type=int, default=1334, help="tasks of the `calls` run (~1,000 orphans)")
    parser.add_argument("--race-tasks", type=int, default=667, help="tasks of the `race` run (~500 orphans)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.what in ("calls", "all"):
        results["calls"] = r = bench_calls(args.calls_tasks)
        print(f"calls: kill of {r['orphans']} orphans: exit {r['exit']}, {r['killed']} killed in "
              f"{r['seconds']} s; Batch calls of the whole command {r['calls']}", flush=True)
    if args.what in ("outage", "all"):
        results["outage"] = r = bench_outage(160, 20.0)
        print(f"outage: {r['orphans']} orphans, Terminate* answering 500, --deadline 20: returned in "
              f"{r['seconds']} s, exit {r['exit']}, {r['terminate_calls']} Terminate calls, "
              f"{r['pending_listed']} pending listed; next kill exit {r['next_kill_exit']} "
              f"{r['next_kill_summary']}, audit {r['audit_rows']} rows / {r['audit_unique']} jobs, "
              f"{r['left_active']} left active", flush=True)
    if args.what in ("race", "all"):
        rows = []
        for i in range(args.first, args.first + args.tries):
            p = race_processes(args.race_tasks, seed=i)
            d = race_dashboards(args.race_tasks, seed=100 + i)
            rows.append({"processes": p, "dashboards": d})
            print(f"race {i + 1}/{args.first + args.tries}: processes {p['orphans']} orphans {p['seconds']} s exits "
                  f"{p['exits']} {p['summaries']} same={p['same_counts']} audit_ok={p['audit_ok']} ({p['audit']}); "
                  f"dashboards {d['seconds']} s {d['counts']} same={d['same_counts']} audit_ok={d['audit_ok']} "
                  f"({d['audit']})", flush=True)
        good = sum(r["processes"]["audit_ok"] and r["processes"]["same_counts"]
                   and r["dashboards"]["audit_ok"] and r["dashboards"]["same_counts"] for r in rows)
        print(f"race: {good} of {args.tries} tries with one final row per job and the same counts in both")
        results["race"] = rows
    if args.json:
        print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
