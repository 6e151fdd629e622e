"""A local AWS Batch (LocalBatch) and a simulated Nextflow, so nothing needs an AWS account."""

from .localbatch import FaultPlan, LocalBatch, MotoBackdrop, serve_main
from .nextflow import GroundTruth, Incident, Pipeline, SimulatedNextflow, replay_incident

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
