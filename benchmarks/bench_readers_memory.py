"""Benchmark: peak memory of the readers on large and hostile files (issue: bounded work).

Each case runs in its own process and reports that process's peak RSS
(``ru_maxrss``), wall time, CPU seconds (user + system: steadier than wall time on a
shared machine) and the outcome (rows read, or the one-line refusal):

- ``trace-1m``: a 1,000,000-row trace in Nextflow's human format (~280 MB);
- ``log-279mb``: a ~279 MB ``.nextflow.log`` of an AWS Batch run (submit lines,
  ``Task completed`` lines, in-flight dumps, DAG noise);
- ``sparse-trace``: a 2 GB sparse trace (a header, then zeros without a line end);
- ``sparse-log``: a 2 GB sparse file read as a log.

    .venv/bin/python benchmarks/bench_readers_memory.py [--cases trace-1m,log-279mb,...] [--json]

The package measured is this checkout's, or the one ``PYTHONPATH`` names (to measure a
baseline: ``PYTHONPATH=/path/to/old/checkout``); each line names it.

The files are written to a temporary directory (sparse files take no disk).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

HERE = Path(__file__).resolve().parent
CASES = ("trace-1m", "log-279mb", "sparse-trace", "sparse-log")


WORK: Final = "s3://bench-bucket/work"
BANNER: Final = (
    "Mar-01 08:00:00.000 [main] DEBUG nextflow.cli.Launcher - $> nextflow run main.nf -with-trace\n"
    "Mar-01 08:00:00.100 [main] DEBUG nextflow.cli.CmdRun - N E X T F L O W  ~  version 24.10.5\n"
    "Mar-01 08:00:00.200 [main] DEBUG nextflow.Session - Session UUID: 00000000-0000-4000-8000-000000000000\n"
    "Mar-01 08:00:00.300 [main] DEBUG nextflow.Session - Run name: bench_run\n"
    "Mar-01 08:00:01.000 [main] DEBUG nextflow.executor.Executor - [warm up] executor > awsbatch\n"
)
GOODBYE: Final = "Mar-01 23:59:59.000 [main] DEBUG nextflow.script.ScriptRunner - > Execution complete -- Goodbye\n"


def task_workdir(i: int) -> tuple[str, str]:
    """Task ``i``'s hash (32 hex digits) and work dir."""
    h = hashlib.md5(str(i).encode()).hexdigest()
    return h, f"{WORK}/{h[:2]}/{h[2:]}"


def write_blocks(
    path: Path, target_bytes: int, block: Callable[[int], str], *, banner: str, first: int = 1, ended: bool = True
) -> int:
    """``banner`` then ``block(first)``, ``block(first + 1)``, … until about ``target_bytes``
    (the banner not counted); returns the last block's number. ``first`` more than 1
    appends to ``path`` without the banner (a run going on); ``ended``: Goodbye last."""
    with path.open("a" if first > 1 else "w") as out:
        if first == 1:
            out.write(banner)
        i, size = first - 1, 0
        while size < target_bytes:
            i += 1
            text = block(i)
            out.write(text)
            size += len(text)
        if ended:
            out.write(GOODBYE)
    return i


def _task_block(i: int) -> str:
    """Task ``i`` submitted and completed, then DAG noise."""
    h, wd = task_workdir(i)
    minute, second = (i // 60) % 60, i % 60
    stamp = f"Mar-01 {8 + i // 3600 % 16:02d}:{minute:02d}:{second:02d}.{i % 1000:03d}"
    job = f"{i:08x}-0000-4000-8000-{i:012x}"
    return (
        f"{stamp} [AWSBatch-executor-1] DEBUG n.c.aws.batch.AwsBatchTaskHandler - [AWS BATCH] Process "
        f"`ALIGN (s{i})` submitted > job={job}; work-dir={wd}\n"
        f"{stamp} [AWSBatch-executor-1] INFO  nextflow.Session - [{h[:2]}/{h[2:8]}] Submitted process > ALIGN (s{i})\n"
        f"{stamp} [Task monitor] DEBUG n.processor.TaskPollingMonitor - Task completed > TaskHandler[id: {i}; "
        f"name: ALIGN (s{i}); status: COMPLETED; exit: 0; error: -; workDir: {wd}]\n"
        f"{stamp} [Task monitor] DEBUG n.processor.TaskPollingMonitor - No more task to compute -- The following nodes are still active:\n"
        "[process] MERGE\n  status=ACTIVE\n  port 0: (queue) OPEN  ; channel: aligned\n\n"
    )


def write_log(path: Path, target_bytes: int, *, first: int = 1, ended: bool = True) -> int:
    """A synthetic AWS Batch run's log of about ``target_bytes``; returns the last task number
    (``first``, ``ended``: as for :func:`write_blocks`)."""
    return write_blocks(path, target_bytes, _task_block, banner=BANNER, first=first, ended=ended)


def measure(case: str, path: Path) -> dict[str, object]:
    """Run one reader on ``path`` in a fresh process; its peak RSS, time and outcome."""
    code = f"""
import json, resource, sys, time
import os
if not os.environ.get("PYTHONPATH"):  # PYTHONPATH names the package to measure (a baseline)
    sys.path.insert(0, {str(HERE.parent)!r})
import batchkit
from batchkit.errors import BatchkitError
from batchkit.nextflow import read_log, read_trace
t = time.perf_counter()
cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # CPU seconds so far (imports)
try:
    if {case!r}.endswith("log") or {case!r}.startswith("log"):
        info = read_log({str(path)!r}, tz="UTC", year=2025)
        outcome = f"read: {{len(info.tasks)}} tasks"
    else:
        frame = read_trace({str(path)!r}, tz="UTC")
        outcome = f"read: {{len(frame)}} rows"
except BatchkitError as exc:
    outcome = f"refused: {{exc}}"
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"wall_s": round(time.perf_counter() - t, 2),
                  "cpu_s": round(usage.ru_utime + usage.ru_stime - cpu, 2),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "outcome": outcome[:160], "package": os.path.dirname(batchkit.__file__)}}))
"""
    # cwd: the file's folder, so that the checkout the script is run from is not first on sys.path
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=path.parent
    )
    if done.returncode != 0:
        return {"case": case, "error": done.stderr.strip().splitlines()[-1:]}
    return {"case": case, "file_mb": round(path.stat().st_size / 2**20, 1), **json.loads(done.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from bench_trace import write_trace

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for case in args.cases.split(","):
            path = folder / f"{case}.txt"
            if case == "trace-1m":
                write_trace(path, 1_000_000, raw=False)
            elif case == "log-279mb":
                path = folder / ".nextflow.log"
                write_log(path, 279 * 2**20)
            elif case in ("sparse-trace", "sparse-log"):
                with path.open("wb") as fh:
                    if case == "sparse-trace":
                        fh.write(b"task_id\thash\tnative_id\tname\tstatus\n")
                    fh.truncate(2 * 2**30)
            else:
                raise SystemExit(f"unknown case {case!r}: pick from {', '.join(CASES)}")
            results.append(measure(case, path))
            path.unlink()
    for r in results:
        print(json.dumps(r) if args.json else "  ".join(f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
