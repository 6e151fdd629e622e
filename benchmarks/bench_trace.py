"""Benchmark: parse a 100,000-task trace file (target: under 1 s and 200 MB).

Writes a synthetic trace in Nextflow's human format — the 14 default fields plus
start, complete, cpus, memory, queue and workdir — then times ``read_trace`` and
measures the peak memory Python allocated while parsing (tracemalloc), plus the
process's peak RSS. CPU time is reported beside wall time because the machine is
shared: wall time includes waiting for a core.

    .venv/bin/python benchmarks/bench_trace.py [--rows 100000] [--repeat 3] [--raw]

On a shared machine absolute times drift by tens of percent between runs, so
compare against a baseline measured in the same run: export the old reader, e.g.
``git archive <rev> batchkit | tar -x -C /tmp/base``, and pass
``--baseline /tmp/base``. Baseline and current code then alternate, each in its
own process on the same file, and the CPU ratio is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

from batchkit.nextflow import read_trace

FIELDS = [
    "task_id", "hash", "native_id", "name", "status", "exit", "submit", "duration",
    "realtime", "%cpu", "peak_rss", "peak_vmem", "rchar", "wchar",
    "start", "complete", "cpus", "memory", "queue", "workdir",
]  # fmt: skip
PROCESSES = ["FASTQC", "TRIMGALORE", "STAR_ALIGN", "SALMON_QUANT", "MULTIQC"]


def _duration(ms: int) -> str:
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{round(ms / 100) / 10:g}s"
    secs, mins, hours = ms // 1000 % 60, ms // 60_000 % 60, ms // 3_600_000
    parts = [f"{hours}h" if hours else "", f"{mins}m" if mins else "", f"{secs}s" if secs else ""]
    return " ".join(p for p in parts if p)


def _memory(n: int) -> str:
    units = ["B", "KB", "MB", "GB", "TB"]
    value, i = float(n), 0
    while value >= 1024 and i < len(units) - 1:
        value, i = value / 1024, i + 1
    return f"{n} B" if i == 0 else f"{value:.1f}".rstrip("0").rstrip(".") + f" {units[i]}"


def write_trace(path: Path, rows: int, *, raw: bool, seed: int = 7) -> None:
    rnd = random.Random(seed)
    start = datetime(2025, 3, 1, 8, 0, 0)
    with path.open("w") as fh:
        fh.write("\t".join(FIELDS) + "\n")
        for i in range(1, rows + 1):
            h = f"{rnd.getrandbits(128):032x}"
            proc = PROCESSES[i % len(PROCESSES)]
            submit = start + timedelta(milliseconds=i * 37)
            run_ms = rnd.randint(200, 3_000_000)
            begin = submit + timedelta(seconds=rnd.randint(1, 300))
            end = begin + timedelta(milliseconds=run_ms)
            failed = rnd.random() < 0.01
            rss = rnd.randint(10_000_000, 8_000_000_000)

            def date(d: datetime) -> str:
                return str(int(d.timestamp() * 1000)) if raw else d.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

            def dur(ms: int) -> str:
                return str(ms) if raw else _duration(ms)

            def mem(n: int) -> str:
                return str(n) if raw else _memory(n)

            values = [
                str(i), f"{h[:2]}/{h[2:8]}", f"{rnd.getrandbits(128):032x}", f"{proc} (sample_{i})",
                "FAILED" if failed else "COMPLETED", "137" if failed else "0", date(submit),
                dur(run_ms + 5000), dur(run_ms), f"{rnd.uniform(1, 400):.1f}" + ("" if raw else "%"),
                mem(rss), mem(rss * 3), mem(rnd.randint(1000, 10**10)), mem(rnd.randint(1000, 10**10)),
                date(begin), date(end), "4", mem(8 * 1024**3), "spot-queue",
                f"s3://bucket/work/{h[:2]}/{h[2:]}",
            ]  # fmt: skip
            fh.write("\t".join(values) + "\n")


def measure(path: Path, repeat: int) -> dict[str, float]:
    """Time ``read_trace`` on ``path`` (best of ``repeat``) and its peak memory."""
    read_trace(path, tz="UTC")  # warm-up: imports and regex compilation
    times, cpu = [], []
    rows = 0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        rows = len(read_trace(path, tz="Europe/Paris"))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    tracemalloc.start()
    read_trace(path, tz="Europe/Paris")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "rows": rows,
        "wall_best": min(times),
        "wall_median": sorted(times)[len(times) // 2],
        "cpu_best": min(cpu),
        "tracemalloc_peak_mb": peak / 1e6,
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def describe(m: dict[str, float]) -> str:
    return (
        f"rows={m['rows']:.0f} wall best={m['wall_best']:.3f}s median={m['wall_median']:.3f}s "
        f"cpu best={m['cpu_best']:.3f}s tracemalloc_peak={m['tracemalloc_peak_mb']:.0f} MB "
        f"process_peak_rss={m['process_peak_rss_mb']:.0f} MB"
    )


def measure_in_child(path: Path, source: str | None) -> dict[str, float]:
    """One measurement in a fresh process; ``source`` puts another batchkit tree first."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
    out = subprocess.run(
        [sys.executable, __file__, "--trace", str(path), "--repeat", "1", "--json"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def compare(path: Path, baseline: str, rounds: int) -> None:
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):  # alternate, so both see the same machine load
        for label, source in (("baseline", baseline), ("current", None)):
            m = measure_in_child(path, source)
            if label not in best or m["cpu_best"] < best[label]["cpu_best"]:
                best[label] = m
    for label in ("baseline", "current"):
        print(f"{label:8s} {describe(best[label])}")
    print(f"cpu ratio current/baseline = {best['current']['cpu_best'] / best['baseline']['cpu_best']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--raw", action="store_true", help="write trace.raw=true values")
    parser.add_argument("--trace", type=Path, help="time this trace file instead of writing one")
    parser.add_argument("--baseline", help="a source tree holding the batchkit to compare against")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args()
    if args.baseline and not (Path(args.baseline) / "batchkit" / "nextflow" / "trace.py").exists():
        parser.error(f"--baseline {args.baseline}: no batchkit/nextflow/trace.py in it (see the docstring)")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.trace
        if path is None:
            path = Path(tmp) / "trace.txt"
            write_trace(path, args.rows, raw=args.raw)
        size = f"file={path.stat().st_size / 1e6:.1f} MB raw={args.raw}"
        if args.baseline:
            print(size)
            compare(path, args.baseline, args.repeat)
            return
        m = measure(path, args.repeat)
        print(json.dumps(m) if args.json else f"{size} {describe(m)}")


if __name__ == "__main__":
    main()
