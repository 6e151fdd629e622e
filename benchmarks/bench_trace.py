"""Benchmark: parse a 100,000-task trace file (target: under 1 s and 200 MB).

Writes a synthetic trace in Nextflow's human format — the 14 default fields plus
start, complete, cpus, memory, queue and workdir — then times ``read_trace`` and
measures the peak memory Python allocated while parsing (tracemalloc), plus the
process's peak RSS. CPU time is reported beside wall time because the machine is
shared: wall time includes waiting for a core.

    .venv/bin/python benchmarks/bench_trace.py [--rows 100000] [--repeat 3] [--raw]
"""

from __future__ import annotations

import argparse
import random
import resource
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--raw", action="store_true", help="write trace.raw=true values")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.txt"
        write_trace(path, args.rows, raw=args.raw)
        size_mb = path.stat().st_size / 1e6
        read_trace(path, tz="UTC")  # warm-up: imports and regex compilation
        times, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            frame = read_trace(path, tz="Europe/Paris")
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        tracemalloc.start()
        read_trace(path, tz="Europe/Paris")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"rows={len(frame)} file={size_mb:.1f} MB raw={args.raw} "
            f"wall best={min(times):.3f}s median={sorted(times)[len(times) // 2]:.3f}s "
            f"cpu best={min(cpu):.3f}s "
            f"tracemalloc_peak={peak / 1e6:.0f} MB process_peak_rss={rss_mb:.0f} MB"
        )


if __name__ == "__main__":
    main()
