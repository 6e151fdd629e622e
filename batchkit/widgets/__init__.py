"""batchkit's notebook widgets (ipywidgets 8)."""

from batchkit.widgets.dashboard import Dashboard

__all__ = ["Dashboard"]
