"""Slow work off the kernel's event loop, shared by the dashboard and the inspector panel.

In a notebook the kernel's asyncio loop also carries the widgets' messages: a blocking
AWS call run on it freezes every widget until it returns. ``run_off_loop`` hands such
work to the loop's default executor (a thread) and keeps its future in the widget's
``tasks`` set, so the widget's ``wait_idle`` can wait for it (``wait_all``) and its
``close`` can cancel it. Without a running loop (a script, a test) the work runs inline
and the call returns when it is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop (a kernel's), or None in plain synchronous code."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def run_off_loop(work: Callable[[], None], tasks: set[asyncio.Future[Any]]) -> None:
    """Run blocking ``work`` in the running loop's executor (returning at once), else inline.

    ``work`` reports its own result and errors (it assigns widget traits); its future
    stays in ``tasks`` until it is done.
    """
    loop = running_loop()
    if loop is None:
        work()
        return
    future = loop.run_in_executor(None, work)
    tasks.add(future)
    future.add_done_callback(tasks.discard)


async def wait_all(tasks: set[asyncio.Future[Any]]) -> None:
    """Wait until every future in ``tasks`` is done, including ones added meanwhile."""
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)
