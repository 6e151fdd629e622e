"""A local AWS Batch (LocalBatch) and a simulated Nextflow, so nothing needs an AWS account."""

from .localbatch import FaultPlan, LocalBatch, serve_main

__all__ = ["FaultPlan", "LocalBatch", "serve_main"]
