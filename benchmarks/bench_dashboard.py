"""Benchmark: first paint and refresh time of the dashboard for a 10,000-task run.

Run: .venv/bin/python benchmarks/bench_dashboard.py [--tasks 10000] [--repeat 5]
Targets (issue 5, on the project machine): first paint under 3 s, refresh under 500 ms.

What it builds: a LocalBatch (manual clock) holding N jobs of an aborted Nextflow 24.02
run — most still RUNNING (orphans), some SUCCEEDED, some FAILED — and the run's
launch dir (a ``.nextflow.log`` and a trace file in Nextflow's formats, one row per
task, the native id being the job id). A generated notebook shows the Dashboard over
it; Voila serves it; Debian's chromium (Playwright) loads it.

What it measures (wall clock, all on this machine):
- first paint: from the ``Dashboard(...)`` call in the kernel to the first table row
  drawn in the browser; also from navigation start. Voila only sends the page once
  the notebook has run, so this includes Voila's page and JavaScript load.
- refresh, end to end: a click on "refresh now" until the header shows the new
  snapshot's time. This includes the tracker asking Batch about every job still
  active (N/100 DescribeJobs calls through the client's rate budget, which leaves
  room for Nextflow) and reconciling.
- refresh, the dashboard's part: from the tracker announcing the new snapshot to the
  last widget update drawn in the browser (kernel render + websocket + DOM), i.e.
  what the widget adds to a poll (an upper bound: it includes Playwright's polling).
- first paint also split into the first Batch poll (tracker and client) and the
  dashboard's paint after the data; before that poll answers, the table already
  shows Nextflow's side ("asking AWS Batch…"), see ``first_paint_nextflow_side_s``.
- page flip and filter: a click on "next" / a verdict chip until the rows change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nbformat

from batchkit.sim import LocalBatch
from batchkit.sim._nf_artefacts import LogWriter, TraceWriter
from batchkit.sim._nf_format import TRACE_DEFAULT_FIELDS, launch_command, short_hash

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
QUEUE = "bench-queue"
WORK = "s3://batchkit-bench/work"
RUN_NAME = "bench_hypatia"
CAUSE = (
    "Internal server error (Service: AWSBatch; Status Code: 500; Error Code: "
    "AuthorizerConfigurationException)"
)


def build_run(lb: LocalBatch, launch_dir: Path, n: int) -> None:
    """N jobs on LocalBatch and the launch dir of the aborted run that submitted them."""
    lb.create_environment(QUEUE, vcpus=4 * n, job_definition="nf-demo")
    t0 = lb.clock.now()
    # Each job runs its own task's work dir (<workDir>/ab/<30 hex>, the task hash): the
    # launcher's work dir is what proves a recorded job is the task's.
    hashes = [hashlib.md5(str(i).encode()).hexdigest() for i in range(n)]
    ids = [
        lb.submit_jobs(1, queue=QUEUE, name="ALIGN", command=launch_command(f"{WORK}/{h[:2]}/{h[2:]}"), vcpus=2)[0]
        for h in hashes
    ]
    kinds = []
    for i, job_id in enumerate(ids):
        kind = "done" if i % 10 < 4 else "failed" if i % 10 == 4 else "orphan"
        kinds.append(kind)
        duration = {"done": 600.0, "failed": 300.0, "orphan": 4 * 3600.0}[kind]
        lb.set_job_behavior(job_id, duration=duration, exit_code=1 if kind == "failed" else 0)
    lb.advance(1800)  # the short jobs have finished; the rest run on after the abort
    now = lb.clock.now()
    log = LogWriter(launch_dir / ".nextflow.log")
    log.write(t0, "main", "INFO", "nextflow.cli.CmdRun", "N E X T F L O W  ~  version 24.02.0-edge")
    log.write(t0, "main", "INFO", "nextflow.cli.CmdRun", f"Launching `main.nf` [{RUN_NAME}] DSL2 - revision: 0123456789")
    log.write(t0, "main", "DEBUG", "nextflow.Session", "Session UUID: 2b1d7c52-2f6a-4a38-9d5f-7f1b2c3d4e5f")
    log.write(t0, "main", "DEBUG", "nextflow.Session", f"Run name: {RUN_NAME}")
    log.write(t0, "main", "DEBUG", "nextflow.Session", f"Work-dir: {WORK} [null]")
    trace_path = launch_dir / "trace-bench.txt"
    # The run's trace is the one its log names (as Nextflow's TraceFileObserver does).
    log.write(t0, "main", "DEBUG", "nextflow.trace.TraceFileObserver",
              f"Workflow started -- trace file: {trace_path}")
    trace = TraceWriter(trace_path, TRACE_DEFAULT_FIELDS)
    for i, (job_id, kind) in enumerate(zip(ids, kinds, strict=True)):
        h = hashes[i]
        trace.write({
            "task_id": i + 1, "hash": short_hash(h), "native_id": job_id,
            "name": f"ALIGN (sample_{i:05d})",
            "status": {"done": "COMPLETED", "failed": "FAILED", "orphan": "RUNNING"}[kind],
            "exit": {"done": 0, "failed": 1, "orphan": None}[kind],
            "submit": int(t0 * 1000), "duration": None if kind == "orphan" else 600_000,
            "realtime": None if kind == "orphan" else 590_000,
        })
    trace.close()
    log.write(now, "Task monitor", "DEBUG", "nextflow.Session", f"Session aborted -- Cause: {CAUSE}")
    log.write(now, "main", "DEBUG", "nextflow.script.ScriptRunner", "> Execution complete -- Goodbye")
    log.close()


NOTEBOOK_CELLS = [
    """import json, time
import ipywidgets as W
from IPython.display import display
from batchkit import BatchClient, Dashboard, NextflowRun
from batchkit.tracker import Refreshed, Tracker
cfg = json.load(open("bench.json"))
run = NextflowRun.from_dir(cfg["launch_dir"])
client = BatchClient(endpoint_url=cfg["endpoint"], region="us-east-1")
from datetime import UTC, datetime
# The emulator's clock is manual (stopped half an hour after launch): judge from its now,
# moving on in real time so each refresh has its own time stamp.
_t0 = time.time()
emulator_now = lambda: datetime.fromtimestamp(cfg["now"] + time.time() - _t0, tz=UTC)
tracker = Tracker(run, client, queues=[cfg["queue"]], interval=3600, reload_run=False, clock=emulator_now)
probe = W.HTML(layout=W.Layout(display="none"))
probe.add_class("bk-bench-probe")
stamps = {"before": 0.0, "after": 0.0}
def _before(event):
    if isinstance(event, Refreshed):
        stamps["before"] = time.time()
_unsubscribe = tracker.subscribe(_before)""",
    """T_CREATED = time.time()
dash = Dashboard(run, client=client, tracker=tracker, interval=3600)
def _after(event):
    if isinstance(event, Refreshed):
        stamps["after"] = time.time()
        probe.value = json.dumps(stamps)
tracker.subscribe(_after)
tracker.start()
print(f"T_CREATED={T_CREATED:.3f}")
display(probe)
dash""",
]

FIRST_ROW_PROBE = """
window.__bk = {firstRow: null, firstData: null};
new MutationObserver((m, obs) => {
  if (window.__bk.firstRow === null && document.querySelector('tr.bk-row')) {
    window.__bk.firstRow = Date.now(); window.__bk.firstRowPerf = performance.now();
  }
  const r = document.querySelector('tr.bk-row');
  if (r && r.getAttribute('data-verdict') !== 'pending') {
    window.__bk.firstData = Date.now(); window.__bk.firstDataPerf = performance.now(); obs.disconnect();
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (GET / would start a kernel: only the browser asks for that)
        except OSError:
            time.sleep(0.25)
    raise SystemExit(f"voila did not answer at {url}")


def measure(url: str, repeat: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1200})
        page.add_init_script(FIRST_ROW_PROBE)
        page.goto(url, timeout=300_000)
        page.wait_for_selector("tr.bk-row", timeout=300_000)
        page.wait_for_function("() => window.__bk.firstData !== null", timeout=300_000)
        body = page.inner_text("body")
        created = float(body.split("T_CREATED=")[1].split()[0])
        first = page.evaluate("window.__bk")
        out["first_paint_nextflow_side_s"] = first["firstRow"] / 1000 - created
        out["first_paint_from_dashboard_call_s"] = first["firstData"] / 1000 - created
        out["first_paint_from_navigation_s"] = first["firstDataPerf"] / 1000
        out["rows_in_frame"] = page.inner_text(".bk-chip-all")
        page.wait_for_function(
            "() => { const e = document.querySelector('.bk-bench-probe');"
            " return e && e.textContent.includes('after'); }", timeout=60_000,
        )
        first_stamps = json.loads(page.locator(".bk-bench-probe").text_content() or "{}")
        out["first_poll_of_batch_s"] = first_stamps["before"] - created
        out["first_paint_after_the_data_s"] = first["firstData"] / 1000 - first_stamps["before"]

        def stamp() -> str:
            return page.locator(".bk-header-card").get_attribute("data-taken-at") or ""

        end_to_end, dashboard_part, kernel_render = [], [], []
        for _ in range(repeat):
            before = stamp()
            t_click = time.time()
            page.click(".bk-refresh")
            page.wait_for_function(
                "s => document.querySelector('.bk-header-card').getAttribute('data-taken-at') !== s",
                arg=before, timeout=120_000,
            )
            t_dom = time.time()
            # The probe is updated after the dashboard's own widgets: wait for this refresh's.
            page.wait_for_function(
                "t => { const e = document.querySelector('.bk-bench-probe');"
                " if (!e || !e.textContent.includes('after')) return false;"
                " return JSON.parse(e.textContent).before > t; }", arg=t_click, timeout=30_000,
            )
            t_all = time.time()  # the probe is sent after every dashboard widget: all drawn
            stamps = json.loads(page.locator(".bk-bench-probe").text_content() or "{}")
            end_to_end.append(t_dom - t_click)
            dashboard_part.append(t_all - stamps["before"])
            kernel_render.append(stamps["after"] - stamps["before"])
        out["refresh_end_to_end_s"] = statistics.median(end_to_end)
        out["refresh_dashboard_part_s"] = statistics.median(dashboard_part)
        out["refresh_kernel_render_s"] = statistics.median(kernel_render)

        flips, filters = [], []
        for _ in range(repeat):
            first_row = page.locator("tr.bk-row").first.get_attribute("data-job-id")
            t = time.time()
            page.click(".bk-next")
            page.wait_for_function(
                "j => { const r = document.querySelector('tr.bk-row');"
                " return r !== null && r.getAttribute('data-job-id') !== j; }",
                arg=first_row, timeout=30_000,
            )
            flips.append(time.time() - t)
            page.click(".bk-prev")
            page.wait_for_timeout(300)
        for chip in ("bk-chip-ok", "bk-chip-orphan") * ((repeat + 1) // 2):
            want = chip.removeprefix("bk-chip-")
            t = time.time()
            page.click(f".{chip}")
            page.wait_for_function(
                "v => { const r = document.querySelector('tr.bk-row');"
                " return r !== null && r.getAttribute('data-verdict') === v; }",
                arg=want, timeout=30_000,
            )
            filters.append(time.time() - t)
        out["page_flip_s"] = statistics.median(flips)
        out["filter_s"] = statistics.median(filters)
        page.wait_for_timeout(1000)  # let the last view settle before the picture
        out["kill_buttons_on_last_page"] = page.locator(".bk-kill-row.bk-can-kill").count()
        page.screenshot(path=str(Path("test-artifacts") / "bench-dashboard.png"))
        browser.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-dejavu-core")
    Path("test-artifacts").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="batchkit-bench-") as tmp, LocalBatch(manual_clock=True) as lb:
        root = Path(tmp)
        launch = root / "launch"
        launch.mkdir()
        t = time.perf_counter()
        build_run(lb, launch, args.tasks)
        print(f"built a {args.tasks:,}-task run in {time.perf_counter() - t:.1f} s", flush=True)
        (root / "bench.json").write_text(json.dumps(
            {"launch_dir": str(launch), "endpoint": lb.endpoint_url, "queue": QUEUE, "now": lb.clock.now()}
        ))
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS]
        nbformat.write(nb, root / "bench.ipynb")
        port = free_port()
        env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")
        proc = subprocess.Popen(
            [sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
             "--show_tracebacks=True", "bench.ipynb"],
            cwd=root, env=env, stdout=(root / "voila.log").open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_http(url + "api", 120)
            results = measure(url, args.repeat)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"tasks: {args.tasks:,} ({results.pop('rows_in_frame')} rows in the table; "
          f"{results.pop('kill_buttons_on_last_page')} kill buttons on the orphan page shown)")
    targets = {"first_paint_from_dashboard_call_s": 3.0, "refresh_dashboard_part_s": 0.5,
               "first_paint_after_the_data_s": 3.0, "first_paint_nextflow_side_s": 3.0}
    for key, value in results.items():
        target = targets.get(key)
        verdict = "" if target is None else f"   (target < {target} s: {'met' if value < target else 'MISSED'})"
        print(f"{key:38s} {value:8.3f} s{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
