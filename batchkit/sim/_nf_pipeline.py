"""The synthetic pipeline a simulated Nextflow runs — pure, no I/O.

Shape: a scatter process runs once per sample (``FASTQC (sample_01)``), a fan-out
process runs several chunks per sample, each after its sample's scatter task
(``ALIGN (sample_01:2)``), and a gather process runs once after every chunk
(``MERGE``). Everything random (durations, failures, task hashes, resource usage)
comes from one seeded generator, so a seed gives the same run every time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Literal

ErrorStrategy = Literal["ignore", "terminate"]


def _default_durations() -> dict[str, float]:
    return {"FASTQC": 60.0, "ALIGN": 600.0, "MERGE": 120.0}


def _default_cpus() -> dict[str, int]:
    return {"FASTQC": 1, "ALIGN": 4, "MERGE": 2}


def _default_memory() -> dict[str, int]:
    return {"FASTQC": 2048, "ALIGN": 8192, "MERGE": 4096}


@dataclass(frozen=True)
class Pipeline:
    """A scatter -> fan-out -> gather pipeline of about ``n_tasks`` tasks.

    ``durations`` are seconds per process (each task gets +/- ``jitter`` of it),
    ``memory`` is MiB per process, ``failure_rate`` the chance a task exits 1, and
    ``fail_tasks`` names tasks that always exit 1. ``error_strategy`` is the
    processes' errorStrategy: ``ignore`` (a failed task is recorded FAILED and the run
    goes on without its dependents) or ``terminate`` (Nextflow's default: the first
    failure aborts the run).
    """

    processes: tuple[str, str, str] = ("FASTQC", "ALIGN", "MERGE")
    n_tasks: int = 12
    durations: Mapping[str, float] = field(default_factory=_default_durations)
    jitter: float = 0.2
    failure_rate: float = 0.0
    cpus: Mapping[str, int] = field(default_factory=_default_cpus)
    memory: Mapping[str, int] = field(default_factory=_default_memory)
    error_strategy: ErrorStrategy = "ignore"
    fail_tasks: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.processes) != 3 or len(set(self.processes)) != 3:
            raise ValueError(
                f"Pipeline.processes must name 3 distinct processes (scatter, fan-out, gather), got {self.processes!r}"
            )
        if self.n_tasks < 3:
            raise ValueError(f"Pipeline.n_tasks must be at least 3 (one task per process), got {self.n_tasks}")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"Pipeline.failure_rate must be within 0..1, got {self.failure_rate}")
        if self.jitter < 0 or self.jitter >= 1:
            raise ValueError(f"Pipeline.jitter must be within 0..1 (exclusive), got {self.jitter}")

    def duration_of(self, process: str) -> float:
        return float(self.durations.get(process, 60.0))

    def cpus_of(self, process: str) -> int:
        return int(self.cpus.get(process, 1))

    def memory_of(self, process: str) -> int:
        return int(self.memory.get(process, 2048))


@dataclass(frozen=True, slots=True)
class TaskTemplate:
    """A task the pipeline will create when its inputs are ready."""

    key: str  # unique within the pipeline, e.g. "ALIGN:sample_01:2"
    process: str
    tag: str | None
    depends_on: tuple[str, ...]  # keys; a gather task depends on every fan-out task
    gather: bool
    duration: int  # seconds the job runs
    exit_code: int
    cpus: int
    memory_mib: int
    hash32: str  # 32 hex digits
    # resource usage Nextflow reads from .command.trace
    pct_cpu: float
    peak_rss: int
    peak_vmem: int
    rchar: int
    wchar: int

    @property
    def name(self) -> str:
        """``PROCESS (tag)``, or the bare process name when untagged."""
        return f"{self.process} ({self.tag})" if self.tag else self.process


def task_hash(seed: int, key: str) -> str:
    """A task's 32-hex hash: stable per (seed, task) like Nextflow's hash of a task's inputs.

    Derived with MD5 rather than the run's RNG so it can never repeat the emulator's
    (also seeded) job ids, which would make a work dir look like a job id.
    """
    return hashlib.md5(f"batchkit-sim/{seed}/{key}".encode(), usedforsecurity=False).hexdigest()


def plan(pipeline: Pipeline) -> list[TaskTemplate]:
    """Every task the pipeline can create, in creation order (scatter, fan-out, gather)."""
    rng = Random(pipeline.seed)
    scatter, fanout, gather = pipeline.processes
    n_samples = max(1, (pipeline.n_tasks - 1) // 4)
    n_chunks = max(1, pipeline.n_tasks - 1 - n_samples)
    samples = [f"sample_{i + 1:02d}" for i in range(n_samples)]

    specs: list[tuple[str, str, str | None, tuple[str, ...], bool]] = []
    for s in samples:
        specs.append((f"{scatter}:{s}", scatter, s, (), False))
    per_sample: dict[str, int] = {}
    for c in range(n_chunks):
        s = samples[c % n_samples]
        per_sample[s] = per_sample.get(s, 0) + 1
        specs.append((f"{fanout}:{s}:{per_sample[s]}", fanout, f"{s}:{per_sample[s]}", (f"{scatter}:{s}",), False))
    fan_keys = tuple(k for k, p, *_ in specs if p == fanout)
    specs.append((f"{gather}", gather, None, fan_keys, True))

    out: list[TaskTemplate] = []
    for key, process, tag, deps, is_gather in specs:
        base = pipeline.duration_of(process)
        duration = max(1, round(base * (1 + pipeline.jitter * rng.uniform(-1.0, 1.0))))
        name = f"{process} ({tag})" if tag else process
        fails = name in pipeline.fail_tasks or rng.random() < pipeline.failure_rate
        cpus = pipeline.cpus_of(process)
        mem = pipeline.memory_of(process)
        out.append(
            TaskTemplate(
                key=key,
                process=process,
                tag=tag,
                depends_on=deps,
                gather=is_gather,
                duration=duration,
                exit_code=1 if fails else 0,
                cpus=cpus,
                memory_mib=mem,
                hash32=task_hash(pipeline.seed, key),
                pct_cpu=round(rng.uniform(35.0, 98.0) * cpus, 1),
                peak_rss=rng.randint(50, 900) * 1024 * 1024 + rng.randint(0, 1023) * 1024,
                peak_vmem=rng.randint(600, 3000) * 1024 * 1024 + rng.randint(0, 1023) * 1024,
                rchar=rng.randint(1, 800) * 1024 * 1024 + rng.randint(0, 1023) * 1024,
                wchar=rng.randint(1, 400) * 1024 + rng.randint(0, 1023),
            )
        )
    return out
