"""batchkit: what Nextflow believes beside what AWS Batch holds, in a notebook.

Public names are imported lazily (PEP 562) so ``import batchkit`` does no work and
pulls in neither boto3 nor ipywidgets until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "BatchClient": "batchkit.client",
    "NextflowRun": "batchkit.nextflow",
    "reconcile": "batchkit.reconcile",
    "plan_kills": "batchkit.reconcile",
    "summarize": "batchkit.reconcile",
    "Snapshot": "batchkit.tracker",
    "KillReport": "batchkit.tracker",
    "Watchdog": "batchkit.launcher",
    "NextflowLaunch": "batchkit.launcher",
    "LocalBatch": "batchkit.sim",
    "replay_incident": "batchkit.sim",
    "Tracker": "batchkit.tracker",
    "Ledger": "batchkit.ledger",
    "Dashboard": "batchkit.widgets",
    "SubmitForm": "batchkit.widgets",
    "launch_nextflow": "batchkit.launcher",
    "doctor": "batchkit.doctor",
    "KillJob": "batchkit.schema",
    "JobOutcome": "batchkit.schema",
    "BatchkitError": "batchkit.errors",
    "inspect": "batchkit.inspect",
    "Inspection": "batchkit.inspection",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'batchkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
