"""batchkit's notebook widgets (ipywidgets 8)."""

from batchkit.widgets.dashboard import Dashboard
from batchkit.widgets.submit_form import SubmitForm

__all__ = ["Dashboard", "SubmitForm"]
