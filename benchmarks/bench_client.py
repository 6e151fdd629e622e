"""Benchmark BatchClient on LocalBatch: a full refresh and a bulk kill under the default budget.

10,000 active jobs, 50 ms of injected latency on every call, the default rate budget of
20 requests/s (real time). Reports:
- DescribeJobs calls per full refresh (must equal ceil(N/100)) and its wall time;
- the time to kill 1,000 jobs with the kill executor (batchkit.kills, as the tracker and
  the CLI kill: no describe before, one verification DescribeJobs per chunk after) using
  TerminateJobs (50 ids a call) against one TerminateJob per job (the emulator answers 404
  to TerminateJobs, as a service without it would), with the calls each made.

Run: .venv/bin/python benchmarks/bench_client.py [--jobs 10000] [--kill 1000] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import math
import time

from batchkit.client import BatchClient
from batchkit.kills import KillExecutor
from batchkit.schema import KillJob
from batchkit.sim.localbatch import LocalBatch

QUEUE = "bench-queue"


def calls(lb: LocalBatch, op: str) -> int:
    return lb.calls.get(op, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--kill", type=int, default=1_000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every call")
    parser.add_argument("--rate", type=float, default=20.0, help="the client's rate budget, requests/s")
    args = parser.parse_args()

    # The emulator's clock is manual so the jobs stay active; the client runs on real time.
    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment(QUEUE, vcpus=256)
        ids = lb.submit_jobs(args.jobs, queue=QUEUE, name="bench", command=["bash", "-c", "sleep 1000000"])
        lb.advance(60)
        active = sum(1 for j in lb.jobs() if j["status"] in {"RUNNING", "RUNNABLE"})
        lb.faults.add(None, "latency", latency=args.latency)
        print(f"LocalBatch {lb.endpoint_url}: {args.jobs} jobs ({active} active), "
              f"{args.latency * 1000:.0f} ms latency per call, budget {args.rate:g} requests/s")

        with BatchClient(lb.client(), rate=args.rate) as bc:
            before = calls(lb, "DescribeJobs")
            t0 = time.perf_counter()
            result = bc.describe_jobs(ids)
            refresh = time.perf_counter() - t0
            n_describe = calls(lb, "DescribeJobs") - before
            expected = math.ceil(args.jobs / 100)
            assert len(result.jobs) == args.jobs and not result.missing and not result.failed
            print(f"full refresh: {n_describe} DescribeJobs calls (ceil(N/100) = {expected}: "
                  f"{'OK' if n_describe == expected else 'MISMATCH'}), wall {refresh:.2f} s")

            floor = (expected - 1) / args.rate
            print(f"  budget floor for {expected} calls at {args.rate:g}/s: {floor:.2f} s")

        # The same refresh with no budget to speak of: what the emulator itself can serve here.
        with BatchClient(lb.client(), rate=1e6) as unbounded:
            t0 = time.perf_counter()
            unbounded.describe_jobs(ids)
            print(f"  same refresh without a budget (emulator-bound): {time.perf_counter() - t0:.2f} s")

        with BatchClient(lb.client(), rate=args.rate) as bc:
            bulk_ids = ids[: args.kill]
            snapshot = dict(lb.calls)
            t0 = time.perf_counter()
            report = KillExecutor(bc, None, run_name=None, deadline=600).run(
                [KillJob(i, "orphan", "batchkit: benchmark (bulk)") for i in bulk_ids]
            )
            bulk = time.perf_counter() - t0
            bulk_calls = {op: n - snapshot.get(op, 0) for op, n in lb.calls.items() if n != snapshot.get(op, 0)}
            assert report.ok and all(o.outcome == "terminated" and s == "FAILED" for _, o, s in report.outcomes)
            print(f"kill {args.kill} with TerminateJobs: {bulk:.2f} s, calls {bulk_calls}")
            print(f"client stats: {bc.stats.summary()}; budget waited {bc.stats.budget.waited:.2f} s")

        lb.unsupported_operations = {"TerminateJobs"}
        with BatchClient(lb.client(), rate=args.rate) as bc:
            single_ids = ids[args.kill : 2 * args.kill]
            snapshot = dict(lb.calls)
            t0 = time.perf_counter()
            report = KillExecutor(bc, None, run_name=None, deadline=600).run(
                [KillJob(i, "orphan", "batchkit: benchmark (per job)") for i in single_ids]
            )
            single = time.perf_counter() - t0
            single_calls = {op: n - snapshot.get(op, 0) for op, n in lb.calls.items() if n != snapshot.get(op, 0)}
            assert report.ok and all(o.outcome == "terminated" and s == "FAILED" for _, o, s in report.outcomes)
            print(f"kill {args.kill} with TerminateJob per job: {single:.2f} s, calls {single_calls}")
        print(f"ratio per-job / bulk: {single / bulk:.1f}x")


if __name__ == "__main__":
    main()
