"""The inspector panel: one task's or job's story, below the dashboard's table.

A thin ipywidgets view. It never talks to AWS itself: it is handed an ``inspect(target)``
function (``batchkit.inspect.Inspector.inspect``) and runs it off the kernel's event loop,
then shows the escaped HTML of the result (``batchkit.inspection.render_html``). It is
keyed by the job id or task name it was opened on, not by a table position, so it keeps
showing the same task while the table refreshes and re-sorts; :meth:`follow` re-asks only
when that task's row changed (its Batch status or verdict).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import ipywidgets as widgets
import pandas as pd

from batchkit.inspection import Inspection, render_html
from batchkit.schema import JobCol, RecCol, TaskCol
from batchkit.widgets._background import run_off_loop, wait_all

log = logging.getLogger(__name__)

__all__ = ["InspectorPanel", "attach_inspector"]

HINT: Final = '<div class="bk-muted">Click a row of the table to see its task: Nextflow\'s lines, every Batch attempt, its log and its work dir.</div>'



def row_key(frame: pd.DataFrame, target: str) -> tuple[str, str] | None:
    """(Batch status, verdict) of the row ``target`` names in a reconcile frame, if any."""
    if frame.empty or JobCol.JOB_ID not in frame:
        return None
    hit = frame[(frame[JobCol.JOB_ID] == target).fillna(False) | (frame[TaskCol.NATIVE_ID] == target).fillna(False)
                | (frame[TaskCol.NAME] == target).fillna(False)]
    if hit.empty:
        return None
    row = hit.iloc[0]
    return (str(row[RecCol.BATCH_STATUS]), str(row[RecCol.VERDICT]))


class InspectorPanel(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """Shows :class:`~batchkit.inspection.Inspection` results; opened with :meth:`show`."""

    def __init__(
        self,
        inspect: Callable[..., Inspection],
        load_earlier: Callable[[Inspection], Inspection] | None = None,
        **kwargs: Any,
    ) -> None:
        W = widgets
        self._inspect = inspect
        self._load_earlier = load_earlier
        self._lock = threading.Lock()
        self._generation = 0
        self._key: tuple[str, str] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        #: the job id or task name shown (None: closed)
        self.target: str | None = None
        #: the last result shown
        self.inspection: Inspection | None = None
        self.title = W.HTML()
        self.body = W.HTML()
        self.body.add_class("bk-inspector-body")
        self.earlier_button = W.Button(description="Load earlier log lines", icon="arrow-up",
                                       layout=W.Layout(width="auto"), disabled=True)
        self.reload_button = W.Button(description="Reload", icon="refresh", layout=W.Layout(width="auto"))
        self.export_button = W.Button(description="Export HTML", icon="download", layout=W.Layout(width="auto"))
        self.close_button = W.Button(description="Close", icon="times", layout=W.Layout(width="auto"))
        self.status = W.HTML()
        # Each Batch try keeps its own log stream: the dropdown picks whose log is shown.
        self.attempt = W.Dropdown(options=[("latest attempt's log", 0)], value=0,
                                  layout=W.Layout(width="auto", display="none"))
        self.attempt.observe(self._attempt_chosen, names="value")
        self._syncing = False
        self.earlier_button.on_click(lambda _b: self.load_earlier())
        self.reload_button.on_click(lambda _b: self.reload())
        self.export_button.on_click(lambda _b: self._export_clicked())
        self.close_button.on_click(lambda _b: self.close_panel())
        bar = W.HBox([self.attempt, self.earlier_button, self.reload_button, self.export_button, self.close_button, self.status],
                     layout=W.Layout(align_items="center"))
        super().__init__(children=[self.title, bar, self.body], **kwargs)
        self.add_class("bk-inspector")
        self.close_panel()

    # --- public --------------------------------------------------------------------------

    def show(self, target: str, frame: pd.DataFrame | None = None) -> None:
        """Open the panel on ``target`` (a job id or a task name) and fetch its story."""
        self.target = str(target)
        self._key = row_key(frame, self.target) if frame is not None else None
        for button in (self.reload_button, self.export_button, self.close_button):
            button.layout.display = None
        self._set_attempts(0, 0)
        self.title.value = f"<h3>Inspector — {html.escape(self.target)}</h3>"
        self._fetch(lambda: self._inspect(self.target or ""))

    def reload(self) -> None:
        if self.target is not None:
            self.show(self.target)

    def follow(self, frame: pd.DataFrame) -> None:
        """After a refresh: fetch again only if the shown task's row changed."""
        if self.target is None:
            return
        key = row_key(frame, self.target)
        if key is not None and key != self._key:
            self._key = key
            self._fetch(lambda: self._inspect(self.target or ""))

    def show_attempt(self, attempt: int | None) -> None:
        """Show the log of try number ``attempt`` (1-based; None: the latest)."""
        if self.target is None:
            return
        target = self.target
        self._fetch(lambda: self._inspect(target, attempt=attempt) if attempt else self._inspect(target))

    def _attempt_chosen(self, change: Any) -> None:
        if not self._syncing:
            self.show_attempt(int(change["new"]) or None)

    def _set_attempts(self, n: int, chosen: int) -> None:
        options = [("latest attempt's log", 0)] + [(f"attempt {i}'s log", i) for i in range(1, n + 1)]
        self._syncing = True
        try:
            self.attempt.options = options
            self.attempt.value = chosen if chosen <= n else 0
        finally:
            self._syncing = False
        self.attempt.layout.display = None if n > 1 else "none"

    def load_earlier(self) -> None:
        """Put the log lines before the shown tail in front of it (GetLogEvents backwards)."""
        current = self.inspection
        if current is None or self._load_earlier is None or current.log is None or current.log.earlier_token is None:
            return
        loader = self._load_earlier
        self._fetch(lambda: loader(current))

    def close_panel(self) -> None:
        """Show nothing (the hint), and drop any answer still on its way."""
        self.target = None
        self.inspection = None
        self._generation += 1
        self.title.value = ""
        self.status.value = ""
        self.body.value = HINT
        self.earlier_button.disabled = True
        for button in (self.reload_button, self.export_button, self.close_button):
            button.layout.display = "none"

    async def wait_idle(self) -> None:
        """Wait until the fetches started so far have finished (tests, notebooks)."""
        await wait_all(self._tasks)

    # --- internals -----------------------------------------------------------------------

    def _fetch(self, work: Callable[[], Inspection]) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
        self.status.value = '<span class="bk-muted">loading…</span>'
        self.earlier_button.disabled = True

        def run() -> None:
            try:
                result = work()
            except Exception as exc:  # the panel says why; the dashboard stays up
                log.exception("batchkit inspector: %s failed", self.target)
                if generation == self._generation:
                    self.status.value = f'<span class="bk-health-failing">{html.escape(str(exc))}</span>'
                return
            if generation != self._generation:
                return  # the user opened another row meanwhile
            self._show_result(result)

        # inspect() asks Batch, CloudWatch Logs and S3: keep the kernel's loop free.
        run_off_loop(run, self._tasks)

    def _show_result(self, insp: Inspection) -> None:
        self.inspection = insp
        name = insp.task.get(TaskCol.NAME) if insp.task is not None else None
        label = f"{name} — {insp.job_id}" if isinstance(name, str) and insp.job_id else (name or insp.query)
        self.title.value = f"<h3>Inspector — {html.escape(str(label))}</h3>"
        shown = next((a.index for a in insp.attempts if insp.log is not None and a.log_stream == insp.log.stream), 0)
        latest = next((a.index for a in reversed(insp.attempts) if a.log_stream), 0)
        self._set_attempts(len(insp.attempts), 0 if shown == latest else shown)
        self.body.value = render_html(insp)
        can_page = insp.log is not None and insp.log.earlier_token is not None and self._load_earlier is not None
        self.earlier_button.disabled = not can_page
        shown = len(insp.log.lines) if insp.log is not None else 0
        self.status.value = f'<span class="bk-muted">{shown} log lines</span>' if insp.log is not None else ""

    def export(self, path: str | Path) -> Path:
        """Write the shown inspection as a standalone HTML page (everything escaped)."""
        if self.inspection is None:
            raise ValueError("nothing to export: open the inspector on a row first")
        out = Path(path)
        out.write_text(render_html(self.inspection, standalone=True), encoding="utf-8")
        return out

    def _export_clicked(self) -> None:
        if self.inspection is None:
            return
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", self.inspection.query)[:80] or "task"
        try:
            path = self.export(Path.cwd() / f"batchkit-inspect-{name}.html")
        except OSError as exc:
            self.status.value = f'<span class="bk-health-failing">export failed: {html.escape(str(exc))}</span>'
            return
        self.status.value = f'<span class="bk-muted">saved {html.escape(str(path))}</span>'


def attach_inspector(
    dashboard: Any,
    *,
    readers: Any = None,
    endpoint_urls: Any = None,
    witness: bool = True,
    lines: int | None = None,
) -> InspectorPanel:
    """Put an inspector panel below ``dashboard``'s table; a row click opens it on that job.

    ``readers`` (``AwsReaders``) default to the dashboard's Batch client's region and
    ``endpoint_urls`` (e.g. ``incident.endpoint_urls``). With ``witness`` the dashboard's
    tracker also reads the work dirs of stale/vanished/disagree rows into their reasons
    (``WorkdirWitness``: a bounded number of S3 calls per refresh, never a verdict).
    The panel follows its row across refreshes.
    """
    from batchkit.aws_readers import AwsReaders
    from batchkit.inspect import WorkdirWitness, inspect, load_earlier
    from batchkit.inspection import DEFAULT_LINES
    from batchkit.tracker import Refreshed

    tracker = dashboard.tracker
    if readers is None:
        readers = AwsReaders.create(region=getattr(tracker.client, "region", None), endpoint_urls=endpoint_urls)
    n = DEFAULT_LINES if lines is None else lines

    def fetch(target: str, attempt: int | None = None) -> Inspection:
        # The tracker re-reads the run's files each poll: inspect the run as it is now.
        return inspect(target, run=tracker.run, batch=tracker.client, readers=readers, lines=n, attempt=attempt)

    panel = InspectorPanel(fetch, lambda insp: load_earlier(insp, readers, lines=n))
    panel.readers = readers
    dashboard.add_panel("Inspector", panel)
    index = len(dashboard.figures.children) - 1

    def selected(job_id: str) -> None:
        dashboard.figures.selected_index = index
        panel.show(job_id, dashboard.frame)

    panel.unsubscribe_row = dashboard.on_row_selected(selected)

    def refreshed(event: Any) -> None:
        if isinstance(event, Refreshed):
            panel.follow(event.snapshot.frame)

    panel.unsubscribe_tracker = tracker.subscribe(refreshed)
    if witness and getattr(tracker, "witness", None) is None:
        tracker.witness = WorkdirWitness(readers.s3)
    return panel
