"""A local AWS Batch (LocalBatch) and a simulated Nextflow, so nothing needs an AWS account.

The names are imported on first use: ``python -m batchkit.sim.nextflow`` (what the
launcher runs when no ``nextflow`` is installed) would otherwise find the module
already imported by this package and print runpy's "found in sys.modules" RuntimeWarning
as the first line of the run's console.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .localbatch import FaultPlan, LocalBatch, MotoBackdrop, serve_main
    from .nextflow import GroundTruth, Incident, Pipeline, SimulatedNextflow, replay_incident

_HOME = {
    "FaultPlan": ".localbatch",
    "LocalBatch": ".localbatch",
    "MotoBackdrop": ".localbatch",
    "serve_main": ".localbatch",
    "GroundTruth": ".nextflow",
    "Incident": ".nextflow",
    "Pipeline": ".nextflow",
    "SimulatedNextflow": ".nextflow",
    "replay_incident": ".nextflow",
}

__all__ = [
    "FaultPlan",
    "GroundTruth",
    "Incident",
    "LocalBatch",
    "MotoBackdrop",
    "Pipeline",
    "SimulatedNextflow",
    "replay_incident",
    "serve_main",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)
