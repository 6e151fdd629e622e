"""The dashboard's table as one widget: rows and their kill buttons drawn together.

An anywidget (https://anywidget.dev) with one synced trait, ``value`` (the page's
HTML from ``_table.render_table(..., actions=True)``). Each row's Kill button sits in
the row's own cell and carries its job id; a click sends ``{"kill": job_id}`` to the
kernel, which calls the dashboard's row-kill entry point; a click elsewhere on a row
sends ``{"select": job_id}`` (panels such as an inspector listen to it). Nothing is lined up by
pixel height, so zoom, fonts and themes cannot put a button beside the wrong row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import anywidget
import traitlets

#: The front end: draw the HTML, turn a click on a row's button into a message. The
#: button is disabled at once (a double click sends one message); the kernel's next
#: redraw shows what became of the kill.
_ESM: Final = """
function render({ model, el }) {
  el.classList.add("bk-table-view");
  const draw = () => { el.innerHTML = model.get("value"); };
  draw();
  model.on("change:value", draw);
  el.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-kill]");
    if (!button || button.disabled || !el.contains(button)) return;
    button.disabled = true;
    button.textContent = "killing…";
    model.send({ kill: button.dataset.kill });
  });
  el.addEventListener("click", (event) => {
    if (event.target.closest("button")) return;
    const row = event.target.closest("tr[data-job-id]");
    if (row && row.dataset.jobId && el.contains(row)) model.send({ select: row.dataset.jobId });
  });
}
export default { render };
"""


class TableView(anywidget.AnyWidget):  # type: ignore[misc]  # anywidget is untyped
    """The table's HTML, with each row's kill action wired back to ``on_kill(job_id)``."""

    _esm = _ESM
    value = traitlets.Unicode("").tag(sync=True)

    def __init__(self, on_kill: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_kill = on_kill
        self._on_select: Callable[[str], None] | None = None
        self.on_msg(self._message)

    def on_select(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(job_id)`` when a row (not its button) is clicked."""
        self._on_select = callback

    def _message(self, _widget: Any, content: Any, _buffers: Sequence[Any]) -> None:
        if not isinstance(content, dict):
            return
        job_id = content.get("kill")
        if isinstance(job_id, str) and job_id:
            self._on_kill(job_id)
            return
        selected = content.get("select")
        if isinstance(selected, str) and selected and self._on_select is not None:
            self._on_select(selected)

    def click_kill(self, job_id: str) -> None:
        """What a click on the row's Kill button sends (for scripts and tests)."""
        self._message(self, {"kill": job_id}, [])


__all__ = ["TableView"]
