"""What Nextflow believes: trace, log and weblog readers, and one merged run view (docs/ARCHITECTURE.md §3).

- :func:`read_trace` — trace files (``-with-trace``) into a task frame;
- :func:`read_log` — ``.nextflow.log`` (and rotations) into a :class:`LogInfo`;
- :class:`WeblogReceiver` — an HTTP receiver for ``-with-weblog`` / nf-weblog POSTs;
- :class:`NextflowRun` — all of them merged: every task, and the run's state.

All task frames use ``schema.TASK_COLUMNS`` / ``schema.TASK_DTYPES``.
"""

from __future__ import annotations

from batchkit.nextflow.log import LogInfo, read_log
from batchkit.nextflow.run import NextflowRun, merge_tasks, run_state
from batchkit.nextflow.trace import read_trace
from batchkit.nextflow.weblog import WeblogAuthError, WeblogReceiver, WeblogTooLargeError

__all__ = [
    "LogInfo",
    "NextflowRun",
    "WeblogAuthError",
    "WeblogReceiver",
    "WeblogTooLargeError",
    "merge_tasks",
    "read_log",
    "read_trace",
    "run_state",
]
