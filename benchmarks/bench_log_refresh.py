"""Benchmark: one refresh of a run whose ``.nextflow.log`` is large and growing.

A launch dir holds a ~279 MB ``.nextflow.log`` of an AWS Batch run still going. In a
fresh process: ``NextflowRun.from_dir`` reads it, then 1 MB more is appended and
``run.reload()`` — what ``Tracker.refresh`` does before asking Batch — reads it again.
Two shapes of log:

- ``tasks`` (default): the synthetic log of ``bench_readers_memory.py`` (without its
  Goodbye line): ~1,300 tasks a MB, each submitted and completed, DAG noise between;
- ``dumps``: 2,000 tasks submitted, then Nextflow's in-flight dumps (``!! executor
  awsbatch > tasks to be completed``, one ``~> TaskHandler[…]`` line per running task),
  the bulk of a long run's log.
``--append-mb 0`` measures a refresh with nothing appended: a dead run's static launch
dir, refreshed while the dashboard follows Batch's side (the reload reuses its view).
Reported: CPU seconds (user + system) and wall time of the first read and of the
refresh, the process's peak RSS and the tasks read.

    .venv/bin/python benchmarks/bench_log_refresh.py [--shape tasks|dumps] [--log-mb 279] [--append-mb 1] [--json]

The package measured is this checkout's, or the one ``PYTHONPATH`` names (to measure a
baseline: ``PYTHONPATH=/path/to/old/checkout``); the line names it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_readers_memory import BANNER, task_workdir, write_blocks, write_log

HERE = Path(__file__).resolve().parent
DUMP_TASKS = 2000


def write_dump_log(path: Path, target_bytes: int, *, first: int = 1, ended: bool = False) -> int:
    """A long run's log: ``DUMP_TASKS`` tasks submitted, then in-flight dumps to about
    ``target_bytes``; returns the number of the last dump (``first``, ``ended``: as for
    ``write_blocks``)."""
    submits = "".join(
        f"Mar-01 08:00:01.000 [AWSBatch-executor-1] DEBUG n.c.aws.batch.AwsBatchTaskHandler - [AWS BATCH] "
        f"Process `ALIGN (s{i})` submitted > job=job-{i}; work-dir={task_workdir(i)[1]}\n"
        f"Mar-01 08:00:01.000 [AWSBatch-executor-1] INFO  nextflow.Session - "
        f"[{task_workdir(i)[0][:2]}/{task_workdir(i)[0][2:8]}] Submitted process > ALIGN (s{i})\n"
        for i in range(1, DUMP_TASKS + 1)
    )
    return write_blocks(path, target_bytes, _dump_block, banner=BANNER + submits, first=first, ended=ended)


def _dump_block(n: int) -> str:
    """The ``n``-th in-flight dump: every task still running."""
    stamp = f"Mar-01 {9 + n // 3600 % 14:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000"
    lines = [
        f"{stamp} [Task monitor] DEBUG n.processor.TaskPollingMonitor - !! executor awsbatch > "
        f"tasks to be completed: {DUMP_TASKS} -- submitted tasks are shown below\n"
    ]
    lines.extend(
        f"~> TaskHandler[jobId: job-{i}; id: {i}; name: ALIGN (s{i}); status: RUNNING; exit: -; "
        f"error: -; workDir: {task_workdir(i)[1]} started: 1709283600000; exited: -; ]\n"
        for i in range(1, DUMP_TASKS + 1)
    )
    return "".join(lines)


def measure(launch_dir: Path, append_bytes: int, last: int, shape: str) -> dict[str, object]:
    """First read and one refresh after ``append_bytes`` more (0: none), in a fresh process."""
    code = f"""
import json, os, resource, sys, time
from pathlib import Path
if not os.environ.get("PYTHONPATH"):  # PYTHONPATH names the package to measure (a baseline)
    sys.path.insert(0, {str(HERE.parent)!r})
sys.path.insert(0, {str(HERE)!r})
import batchkit
from batchkit.nextflow import NextflowRun
from bench_readers_memory import write_log
from bench_log_refresh import write_dump_log

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

folder = {str(launch_dir)!r}
c, t = cpu(), time.perf_counter()
run = NextflowRun.from_dir(folder, tz="UTC", year=2025)
first = (cpu() - c, time.perf_counter() - t, len(run.tasks))
write = write_dump_log if {shape!r} == "dumps" else write_log
if {append_bytes}:  # 0: nothing appended (a dead run's dir, refreshed for Batch's side)
    write(Path(folder, ".nextflow.log"), {append_bytes}, first={last + 1}, ended=False)
c, t = cpu(), time.perf_counter()
run = run.reload()
again = (cpu() - c, time.perf_counter() - t, len(run.tasks))
print(json.dumps({{"first_cpu_s": round(first[0], 2), "first_wall_s": round(first[1], 2),
                  "refresh_cpu_s": round(again[0], 2), "refresh_wall_s": round(again[1], 2),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "tasks": [first[2], again[2]], "package": os.path.dirname(batchkit.__file__)}}))
"""
    # cwd: the launch dir, so that the checkout the script is run from is not first on sys.path
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=launch_dir
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", choices=("tasks", "dumps"), default="tasks")
    parser.add_argument("--log-mb", type=float, default=279.0)
    parser.add_argument("--append-mb", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log = folder / ".nextflow.log"
        write = write_dump_log if args.shape == "dumps" else write_log
        last = write(log, int(args.log_mb * 2**20), ended=False)
        result = {"shape": args.shape, "log_mb": round(log.stat().st_size / 2**20, 1), "append_mb": args.append_mb}
        result.update(measure(folder, int(args.append_mb * 2**20), last, args.shape))
    print(json.dumps(result) if args.json else "  ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
