"""Benchmark LocalBatch itself: seeding, DescribeJobs and filtered ListJobs over real HTTP.

N active jobs on a manual clock (so they stay as they are), real boto3 over loopback.
Reports:
- seconds (wall and CPU) to seed N jobs in-process (``submit_jobs``) and to run them to RUNNING;
- DescribeJobs of 100 ids: median and 95th percentile wall time over ``--calls`` calls;
- a filtered ListJobs (JOB_NAME prefix, newest first) read page by page (100 a page): pages,
  jobs and wall time, and the same for an unfiltered RUNNING listing (1,000 a page).

Run: .venv/bin/python benchmarks/bench_localbatch.py [--jobs 10000] [--calls 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from batchkit.sim.localbatch import LocalBatch

QUEUE = "bench-queue"


def list_all(batch: Any, **kw: Any) -> tuple[int, int, float]:
    t0 = time.perf_counter()
    pages = jobs = 0
    while True:
        page = batch.list_jobs(jobQueue=QUEUE, **kw)
        pages += 1
        jobs += len(page["jobSummaryList"])
        if "nextToken" not in page:
            return pages, jobs, time.perf_counter() - t0
        kw["nextToken"] = page["nextToken"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    out: dict[str, Any] = {"jobs": args.jobs}
    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment(QUEUE, vcpus=args.jobs)
        # CPU time as well as wall time: on a shared machine the wall time mostly measures the neighbours.
        t0, c0 = time.perf_counter(), time.process_time()
        ids = lb.submit_jobs(args.jobs, queue=QUEUE, name="bench", command=["bash", "-c", "sleep 1000000"])
        out["seed_s"] = round(time.perf_counter() - t0, 3)
        out["seed_cpu_s"] = round(time.process_time() - c0, 3)
        t0, c0 = time.perf_counter(), time.process_time()
        lb.advance(5)  # every job SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING
        out["lifecycle_s"] = round(time.perf_counter() - t0, 3)
        out["lifecycle_cpu_s"] = round(time.process_time() - c0, 3)
        batch = lb.client()
        batch.describe_jobs(jobs=ids[:100])  # warm the connection
        times = []
        for i in range(args.calls):
            chunk = ids[(i * 100) % len(ids):][:100]
            t0 = time.perf_counter()
            batch.describe_jobs(jobs=chunk)
            times.append(time.perf_counter() - t0)
        times.sort()
        out["describe100_median_ms"] = round(statistics.median(times) * 1000, 2)
        out["describe100_p95_ms"] = round(times[int(len(times) * 0.95) - 1] * 1000, 2)
        pages, jobs, secs = list_all(batch, filters=[{"name": "JOB_NAME", "values": ["bench-*"]}], maxResults=100)
        out["filtered_list"] = {"pages": pages, "jobs": jobs, "s": round(secs, 3)}
        pages, jobs, secs = list_all(batch, jobStatus="RUNNING", maxResults=1000)
        out["running_list"] = {"pages": pages, "jobs": jobs, "s": round(secs, 3)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
