"""Benchmark the inspector's tails: a 50 MB ``.command.log`` in S3 and a 100,000-event log stream.

moto's server runs in a separate process (``python -m moto.server``) so the figures are the
client's alone: wall time of one ``S3Reader.tail`` (one ranged GET of the last 256 KB) and
one ``LogsReader.tail`` (the last 200 events, ``startFromHead=false``), and the extra memory
of this process while doing it — the Python heap's peak (tracemalloc) and the growth of the
resident set (``ru_maxrss``). Target: each under 1 s and under 50 MB.

Then one whole ``batchkit.inspect()`` of an orphan of the replayed incident (``--tasks``
tasks; LocalBatch and its moto backdrop in this process, so only its wall time and heap
peak count): DescribeJobs, the log tail, the work-dir listing and tails, the
``.nextflow.log`` lines — every step of the inspector over real HTTP.

Run: .venv/bin/python benchmarks/bench_inspect.py [--mb 50] [--events 100000] [--repeat 5] [--tasks 200]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchkit.aws_readers import AwsReaders, make_service_client
from batchkit.ratelimit import RateBudget

BUCKET = "bench-bucket"
KEY = "work/ab/cdef0123456789abcdef0123456789/.command.log"
GROUP = "/aws/batch/job"
STREAM = "nf-demo/default/0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto's server did not start")


def rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the peak resident set of this process so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(label: str, fn: Callable[[], Any], repeat: int, *, judged: bool = True) -> None:
    """First call, then ``repeat`` calls: best/median/worst wall time, heap peak, RSS growth;
    ``judged``: against the tails' target (1 s, 50 MB)."""
    rss_cold = rss_mb()
    t0 = time.perf_counter()
    fn()  # the first call also loads botocore's parsers and opens the connection
    first = time.perf_counter() - t0
    print(f"{label}: first call {first * 1000:.0f} ms, peak RSS growth {rss_mb() - rss_cold:.1f} MB")
    times = []
    peak_heap = 0
    rss0 = rss_mb()
    for _ in range(repeat):
        tracemalloc.start()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        peak_heap = max(peak_heap, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    rss_growth = rss_mb() - rss0
    best, median, worst = min(times), statistics.median(times), max(times)
    ok = worst < 1.0 and peak_heap < 50 * 2**20 and rss_growth < 50
    verdict = (" -> OK" if ok else " -> OVER TARGET") if judged else ""
    print(f"{label}: wall best {best * 1000:.0f} ms, median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms; "
          f"heap peak {peak_heap / 2**20:.2f} MB; RSS growth {rss_growth:.1f} MB{verdict}")
    print(f"  {result}")


def seed(url: str, mb: int, events: int) -> None:
    s3 = make_service_client("s3", endpoint_url=url)
    logs = make_service_client("logs", endpoint_url=url)
    s3.create_bucket(Bucket=BUCKET)
    line = b"2026-01-02 12:00:00 processed 1,048,576 records of sample_01 into chunk 0042\n"
    body = line * (mb * 2**20 // len(line) + 1)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=body[: mb * 2**20])
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    now = int(time.time() * 1000) - events
    for start in range(0, events, 10_000):
        n = min(10_000, events - start)
        logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=[
            {"timestamp": now + start + i, "message": f"event {start + i}: aligned read batch"} for i in range(n)
        ])


def measure_inspect(tasks: int, repeat: int) -> None:
    """One whole inspect() of an orphan of the replayed incident, over real HTTP."""
    from batchkit.client import BatchClient
    from batchkit.inspect import inspect
    from batchkit.nextflow import NextflowRun
    from batchkit.sim.nextflow import replay_incident

    with tempfile.TemporaryDirectory() as tmp, \
            replay_incident(launch_dir=Path(tmp) / "launch", n_tasks=tasks, seed=1) as inc:
        run = NextflowRun.from_dir(inc.launch_dir)
        target = sorted(inc.truth.abandoned_job_ids)[0]
        with BatchClient(endpoint_url=inc.endpoint_urls["batch"]) as batch, \
                AwsReaders.create(endpoint_urls=inc.endpoint_urls, budget=RateBudget(1000.0)) as readers:

            def one() -> str:
                insp = inspect(target, run=run, batch=batch, readers=readers)
                assert insp.job_status == "RUNNING" and insp.log is not None and insp.files, insp.problems
                return f"{len(insp.attempts)} attempt(s), {len(insp.log.lines)} log lines, {len(insp.files)} files, " \
                       f"{len(insp.nextflow_lines)} .nextflow.log lines"

            measure(f"whole inspect() of an orphan of a {tasks}-task run", one, repeat, judged=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50, help="size of the .command.log object")
    parser.add_argument("--events", type=int, default=100_000, help="events in the log stream")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=200, help="tasks of the replayed run for the whole inspect()")
    parser.add_argument("--seed", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(args.seed, args.mb, args.events)
        return
    proc, url = start_moto()
    try:
        # Seeded from a child process, so this one never holds the 50 MB body: its peak
        # resident set (ru_maxrss) then measures the tails alone.
        subprocess.run([sys.executable, __file__, "--seed", url, "--mb", str(args.mb), "--events", str(args.events)],
                       check=True)
        print(f"moto (pid {proc.pid}) at {url}: s3://{BUCKET}/{KEY} is {args.mb} MB; "
              f"{GROUP} {STREAM} holds {args.events} events")
        readers = AwsReaders.create(endpoint_urls={"logs": url, "s3": url}, budget=RateBudget(1000.0))

        def file_tail() -> str:
            t = readers.s3.tail(f"s3://{BUCKET}/{KEY}")
            assert t.exists and t.truncated and t.size == args.mb * 2**20, t.error
            return f"{len(t.text.encode())} bytes of {t.size}, last line {t.text.splitlines()[-1][:40]!r}"

        def log_tail() -> str:
            t = readers.logs.tail(STREAM)
            assert t.error is None and len(t.lines) == 200, t.error
            return f"{len(t.lines)} events, last {t.lines[-1].message!r}"

        measure(f"S3 tail of a {args.mb} MB .command.log (last 256 KB)", file_tail, args.repeat)
        measure(f"CloudWatch tail of {args.events} events (last 200)", log_tail, args.repeat)
        readers.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    measure_inspect(args.tasks, args.repeat)
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}")


if __name__ == "__main__":
    main()
