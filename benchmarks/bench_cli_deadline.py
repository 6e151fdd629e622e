"""Benchmark how well ``--deadline`` bounds a whole CLI process, imports and exit included.

``batchkit reconcile --trace T --endpoint-url <loopback port> --deadline D`` on a trace of
``--tasks`` running tasks (one recorded Batch job each, so ``tasks / 100`` DescribeJobs
chunks), as a real subprocess
(``python -m batchkit``): the wall time from spawning it to its exit, and what it spends
past D. The port is ``closed`` (every attempt refused at once, retried until the
deadline) or, with ``--endpoint silent``, listening and never answering (each attempt
waits for its socket timeout). Then ``reconcile --help``: its wall time and the import time it reports under
``python -X importtime``.

The package measured is the one this interpreter imports, so the same file measures a
baseline: ``PYTHONPATH=/path/to/baseline python benchmarks/bench_cli_deadline.py``.

Run: .venv/bin/python benchmarks/bench_cli_deadline.py [--tasks 10000] [--deadline 10] [--runs 3]
     [--endpoint closed|silent] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import batchkit

PACKAGE_ROOT = Path(batchkit.__file__).resolve().parent.parent


def write_trace(path: Path, tasks: int) -> None:
    rows = (f"{i}\t{i % 256:02x}/{i:06x}\tjob-{i:07d}\tA ({i})\tRUNNING\n" for i in range(1, tasks + 1))
    path.write_text("task_id\thash\tnative_id\tname\tstatus\n" + "".join(rows))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*argv: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    # `python -m` puts the working dir first on sys.path: run from a neutral one, so a
    # checkout there cannot stand in for the package measured.
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    began = time.monotonic()
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=600,
                          cwd=tempfile.gettempdir())  # fmt: skip
    return time.monotonic() - began, done


def import_ms(stderr: str) -> float:
    """The total of ``-X importtime``'s top-level rows (cumulative microseconds), in ms:
    ``import time: <self> | <cumulative> | <name>``, a nested import's name indented."""
    total = 0
    for line in stderr.splitlines():
        fields = line.split("|")
        if line.startswith("import time:") and len(fields) == 3 and not fields[2].startswith("  "):
            cumulative = fields[1].strip()
            total += int(cumulative) if cumulative.isdigit() else 0
    return total / 1000.0


def bench(tasks: int, deadline: float, runs: int, endpoint: str) -> dict[str, Any]:
    walls: list[float] = []
    codes: set[int] = set()
    lines: set[int] = set()
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes connections; nobody ever answers
        trace = Path(tmp) / "trace.txt"
        write_trace(trace, tasks)
        for _ in range(runs):
            port = silent.getsockname()[1] if endpoint == "silent" else closed_port()
            url = f"http://127.0.0.1:{port}"
            wall, done = run("-m", "batchkit", "reconcile", "--trace", str(trace), "--endpoint-url", url,
                             "--deadline", f"{deadline:g}")  # fmt: skip
            walls.append(wall)
            codes.add(done.returncode)
            lines.add(len(done.stderr.splitlines()))
    helps = [run("-X", "importtime", "-m", "batchkit", "reconcile", "--help") for _ in range(runs)]
    return {
        "package": str(PACKAGE_ROOT),
        "tasks": tasks,
        "endpoint": endpoint,
        "deadline_s": deadline,
        "wall_median_s": round(statistics.median(walls), 2),
        "wall_max_s": round(max(walls), 2),
        "past_deadline_max_s": round(max(walls) - deadline, 2),
        "exit_statuses": sorted(codes),
        "stderr_lines": sorted(lines),
        "help_wall_median_s": round(statistics.median(w for w, _ in helps), 3),
        "help_imports_median_ms": round(statistics.median(import_ms(d.stderr) for _, d in helps), 1),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--deadline", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--endpoint", choices=("closed", "silent"), default="closed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = bench(args.tasks, args.deadline, args.runs, args.endpoint)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{result['package']}: reconcile --deadline {args.deadline:g} on {args.tasks} tasks, {args.endpoint} port, "
          f"{args.runs} runs: wall median {result['wall_median_s']} s, max {result['wall_max_s']} s "
          f"({result['past_deadline_max_s']:+} s past the deadline); exit {result['exit_statuses']}, "
          f"stderr lines {result['stderr_lines']}")  # fmt: skip
    print(f"reconcile --help: wall {result['help_wall_median_s']} s, imports {result['help_imports_median_ms']} ms "
          f"(load average {result['load_average']})")  # fmt: skip


if __name__ == "__main__":
    main()
