"""A local AWS Batch (LocalBatch) and a simulated Nextflow, so nothing needs an AWS account."""

from .localbatch import FaultPlan, LocalBatch, serve_main
from .nextflow import GroundTruth, Incident, Pipeline, SimulatedNextflow, replay_incident  # noqa: F401 (public re-exports; owner to add to __all__)

__all__ = ["FaultPlan", "LocalBatch", "serve_main"]
