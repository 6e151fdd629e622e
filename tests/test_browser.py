"""The incident notebook served by Voila and driven by a real chromium (Playwright).

The browser sees the orphan rows highlighted, clicks "Kill all orphans", confirms,
sees the rows turn killed, and the emulator (LocalBatch, over its real API) confirms
those jobs FAILED with batchkit's reason. Screenshots before and after go to
test-artifacts/.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import (
    KILL_DONE_MS,
    PAGE_READY_MS,
    SERVER_START_S,
    assert_killed_by_batchkit,
    chromium,
    chromium_or_skip,
    no_aws_env,
    stop_group,
    voila_server,
    wait_or_explain,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01-incident-replay.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def voila(tmp_path: Path) -> Iterator[str]:
    chromium_or_skip()
    env = no_aws_env(
        BATCHKIT_AUTO_KILL="0",  # the browser presses the button itself
        BATCHKIT_SIM_SPEED="0",  # manual emulator clock: the orphans run until killed
    )
    with voila_server(NOTEBOOK, tmp_path, env) as url:
        yield url


def test_kill_all_orphans_in_the_browser(voila: str, artifacts_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"{exc.message} {exc.stack or ''}"))
        page.goto(voila, timeout=PAGE_READY_MS)
        wait_or_explain(page, [("tr.bk-row.bk-orphan", "visible")], shot=artifacts_dir / "dashboard-not-ready.png",
                        tmp_path=tmp_path, what="no orphan row appeared")

        body = page.inner_text("body")
        endpoint = re.search(r"LocalBatch endpoint:\s*(http://127\.0\.0\.1:\d+)", body)
        assert endpoint, "the notebook did not print the LocalBatch endpoint"
        assert "aborted" in page.inner_text(".bk-header")

        orphan_rows = page.locator("tr.bk-row.bk-orphan")
        n = orphan_rows.count()
        assert n > 0
        job_ids = [orphan_rows.nth(i).get_attribute("data-job-id") or "" for i in range(n)]
        assert all(job_ids)
        # Highlighted: the orphan rows have a coloured background, the ok rows do not.
        orphan_bg = orphan_rows.first.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
        assert orphan_bg not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
        # Each killable row has its own kill button, inside the row, naming its job.
        for i, job_id in enumerate(job_ids):
            assert orphan_rows.nth(i).locator("button.bk-kill-row.bk-can-kill").get_attribute("data-kill") == job_id

        kill_all = page.locator(".bk-kill-all")
        expect(kill_all).to_contain_text(f"Kill all orphans ({n} jobs")
        page.screenshot(path=str(artifacts_dir / "dashboard-before.png"), full_page=True)

        kill_all.click()
        confirm = page.locator(".bk-confirm")
        expect(confirm).to_be_visible()
        expect(page.locator(".bk-confirm-panel")).to_contain_text(f"Terminate {n} job(s)")
        expect(kill_all).to_be_disabled()
        page.screenshot(path=str(artifacts_dir / "dashboard-confirm.png"), full_page=True)
        confirm.click()

        for job_id in job_ids:
            expect(page.locator(f'tr.bk-row[data-job-id="{job_id}"]')).to_have_class(
                re.compile(r"\bbk-killed\b"), timeout=KILL_DONE_MS
            )
        expect(page.locator(".bk-kill-status")).to_contain_text(f"{n} of {n} job(s) killed")
        expect(page.locator(".bk-kill-status")).to_contain_text("Batch now: FAILED")
        # After the post-kill refresh Batch no longer runs them: no orphan is left
        # (the killed rows stay in place, marked, until the filter changes).
        expect(page.locator(".bk-chip-orphan")).to_have_text("orphan 0", timeout=KILL_DONE_MS)
        expect(kill_all).to_contain_text("Kill all orphans (0 jobs")
        expect(page.locator(".bk-kill-row.bk-killed-btn")).to_have_count(n)
        expect(page.locator(".bk-chip-killed")).to_have_text(f"killed {n}")
        page.screenshot(path=str(artifacts_dir / "dashboard-after.png"), full_page=True)
        page.locator(".bk-chip-orphan").click()
        expect(page.locator("tr.bk-row")).to_have_count(0)
        expect(page.locator(".bk-table-html")).to_contain_text("No task matches this filter")
        # plotly 7's JupyterLab renderer, loaded into Voila 0.5's older JupyterLab core,
        # throws "setData is not a function" after drawing (the figures are drawn): a
        # mismatch between those two packages, not ours. Anything else fails the test.
        ours = [e for e in errors if "labextensions/jupyterlab-plotly" not in e]
        assert not ours, f"JavaScript errors in the page: {ours}"
        # The same notebook in Voila's dark theme.
        dark = browser.new_page(viewport={"width": 1300, "height": 1400})
        dark.goto(voila + "?theme=dark", timeout=PAGE_READY_MS)
        try:
            dark.wait_for_selector("tr.bk-row.bk-orphan", timeout=PAGE_READY_MS)
        except Exception:
            dark.screenshot(path=str(artifacts_dir / "voila-dark-not-ready.png"), full_page=True)
            raise
        dark.wait_for_timeout(500)
        # The dashboard follows the theme: its text is light on the dark page.
        colour = dark.locator("tr.bk-row td.bk-nf").first.evaluate("e => getComputedStyle(e).color")
        assert sum(int(c) for c in re.findall(r"\d+", colour)[:3]) > 3 * 150, colour
        dark.screenshot(path=str(artifacts_dir / "voila-dark.png"), full_page=True)

    assert_killed_by_batchkit(endpoint.group(1), job_ids)


# --- JupyterLab and Notebook 7, from `make demo`'s own URL ---------------------------------------

#: What `make demo` runs (after building the venv): the demo command, from the checkout.
DEMO_COMMAND = [sys.executable, "-m", "batchkit", "demo"]
#: Run All, then the replay and the dashboard's first answer from Batch.
RUN_ALL_MS = 240_000


def git_status(path: Path) -> str:
    done = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=path, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else "(not a git checkout)"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    """`make demo`'s server: yields the one URL it prints; stops it with Ctrl-C (SIGINT)."""
    chromium_or_skip()
    status_before = git_status(ROOT)
    # The demo's own defaults: real-time orphans, nothing killed by code.
    env = no_aws_env(drop=("BATCHKIT_AUTO_KILL", "BATCHKIT_SIM_SPEED"))
    out = (tmp_path / "demo.out").open("w+")
    proc = subprocess.Popen(
        DEMO_COMMAND, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    url = ""
    try:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline and proc.poll() is None:
            text = (tmp_path / "demo.out").read_text()
            found = re.findall(r"http://127\.0\.0\.1:\d+/\S+", text)
            if found:
                url = found[0]
                break
            time.sleep(0.25)  # the server coming up: nothing to wait on but its output
        text = (tmp_path / "demo.out").read_text()
        assert url, f"make demo printed no URL:\n{text}"
        # One clean URL, opening notebook 01 in JupyterLab, and how to stop; no noise.
        assert len(found) == 1 and "/lab/tree/01-incident-replay.ipynb?token=" in url, text
        assert "Ctrl-C" in text
        for noise in ("Warning", "DeprecationWarning", "without encryption", "setuptools", "Traceback"):
            assert noise not in text, text
        # The notebook's own kernel is up before the URL is printed: the page attaches to it.
        sessions = [s for s in jupyter_api(url, "sessions") if s["path"] == NOTEBOOK.name]
        assert [s["kernel"]["name"] for s in sessions] == [notebook_kernelspec()["name"]], sessions
        yield url
    finally:
        stop_group(proc, signal.SIGINT, 30)  # what Ctrl-C in the terminal sends
        out.close()
    scratch = re.search(r"\((/\S+batchkit-demo-\w+);", (tmp_path / "demo.out").read_text())
    assert scratch and not Path(scratch.group(1)).exists(), "the scratch copy outlived the demo"
    assert git_status(ROOT) == status_before, "make demo changed the checkout (git status)"


def menu(page: Any, *path: str) -> None:
    """Click through JupyterLab's (and Notebook 7's) menu bar: menu(page, "Run", "Run All Cells")."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(path[0])}$")).click()
    for label in path[1:]:
        page.locator(".lm-Menu:visible .lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(label)}$")).last.click()


def shot(page: Any, path: Path, selector: str = ".bk-dashboard") -> None:
    """The page as a user sees it, scrolled to the top of the dashboard."""
    page.locator(selector).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))


def notebook_kernelspec() -> dict[str, str]:
    """The kernel notebook 01's metadata names (``python3``, "Python 3 (ipykernel)")."""
    spec: dict[str, str] = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["metadata"]["kernelspec"]
    return spec


def choose_notebook_kernel(page: Any) -> None:
    """Answer JupyterLab's "Select Kernel" dialog as a newcomer would: the notebook's own kernel,
    then Select. JupyterLab 4 asks when the notebook's session starts before its kernel list has
    arrived (SessionContext._initialize waits for the sessions, not the kernelspecs, and
    getDefaultKernel returns null without them: packages/apputils/src/sessioncontext.tsx), which
    a loaded machine makes likely. Playwright runs the handler before any action or assertion
    while the dialog is open, so it is answered before the kernel wait and Run All. A dialog that
    does not offer the notebook's kernel fails the test (select_option times out); any other
    dialog is left to fail it too."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    name = notebook_kernelspec()["display_name"]

    def choose() -> None:
        dialog.locator("select").select_option(label=name)
        dialog.locator(".jp-mod-accept").click()

    page.add_locator_handler(dialog, choose)


def jupyter_api(demo: str, what: str) -> Any:
    """GET /api/<what> on the demo's Jupyter server (the token from its URL)."""
    base, token = demo.split("/lab/tree/", 1)[0], demo.split("?token=", 1)[1]
    with urllib.request.urlopen(f"{base}/api/{what}?token={token}", timeout=30) as answer:
        return json.load(answer)


def wait_for_notebook_kernel(page: Any, demo: str) -> None:
    """Wait until the notebook's own kernel is attached to the page, connected and idle.

    Only then does Run All queue every cell. Before it, JupyterLab 4's runCell lets the first
    code cell start the kernel (SessionContext.hasNoKernel) and the others go to
    CodeCell.execute, which finds no kernel yet and clears them: cell 1 runs, the rest never
    do, and nothing says so (packages/notebook/src/actions.tsx, packages/cells/src/widget.ts).
    The toolbar's execution indicator reads "idle" from the moment it is drawn (its initial
    state, before any kernel), so it proves nothing; the kernel status does: JupyterLab's status
    bar ("Python 3 (ipykernel) | Idle"), Notebook 7's kernel-status item (faded and empty when
    idle or busy, i.e. connected). Then the server's word: the notebook's one session runs the
    kernel its metadata names, one Jupyter has, with the page connected to it.
    """
    from playwright.sync_api import expect

    spec = notebook_kernelspec()
    expect(page.locator(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName")).to_have_text(
        spec["display_name"], timeout=PAGE_READY_MS)
    lab_idle = f'.jp-StatusBar-TextItem:text-is("{spec["display_name"]} | Idle")'
    notebook7_idle = ".jp-NotebookKernelStatus.jp-NotebookKernelStatus-fade:not(.jp-NotebookKernelStatus-info)"
    expect(page.locator(f"{lab_idle}, {notebook7_idle}")).to_have_count(1, timeout=PAGE_READY_MS)
    assert spec["name"] in jupyter_api(demo, "kernelspecs")["kernelspecs"]
    sessions = [s for s in jupyter_api(demo, "sessions") if s["path"] == NOTEBOOK.name]
    assert len(sessions) == 1, sessions
    kernel = sessions[0]["kernel"]
    assert kernel["name"] == spec["name"] and kernel["connections"] >= 1, kernel


def run_all(page: Any, demo: str, artifacts_dir: Path, name: str) -> None:
    """Run ▸ Run All Cells once the notebook's kernel is attached and idle, checked: at once
    every code cell is queued or run ([*] or [n]), so a Run All that dropped cells fails here
    with a screenshot. A menu click that a busy page swallowed (no cell queued or run, so
    nothing has run) is tried again. Then the dashboard's orphan rows appear."""
    from playwright.sync_api import expect

    wait_for_notebook_kernel(page, demo)
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
    started = prompts.filter(has_text=re.compile(r"\[(\*|\d+)\]"))
    for _ in range(3):
        menu(page, "Run", "Run All Cells")
        try:
            expect(started).not_to_have_count(0, timeout=30_000)
            break
        except AssertionError:
            page.keyboard.press("Escape")
    try:
        expect(started).to_have_count(prompts.count(), timeout=30_000)
    except AssertionError:
        page.screenshot(path=str(artifacts_dir / f"{name}-cells-dropped.png"))
        raise AssertionError(f"Run All did not queue every code cell: {prompts.all_text_contents()}") from None
    try:
        expect(page.locator("tr.bk-row.bk-orphan").first).to_be_visible(timeout=RUN_ALL_MS)
    except AssertionError:
        page.screenshot(path=str(artifacts_dir / f"{name}-not-ready.png"))
        raise


def no_nan_geometry(page: Any) -> list[str]:
    return page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot [transform]')]"
        ".map(e => e.getAttribute('transform')).filter(t => t.includes('NaN'))"
    )


def test_jupyterlab_from_make_demo_run_all_kill_all(demo: str, artifacts_dir: Path) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"{exc.message} {exc.stack or ''}"))
        page.on("console", lambda msg: errors.append(msg.text) if "NaN" in msg.text else None)
        choose_notebook_kernel(page)
        page.goto(demo, timeout=PAGE_READY_MS)
        # The URL opens the incident notebook itself, not a Launcher.
        expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible(timeout=PAGE_READY_MS)
        expect(page.locator(".lm-TabBar-tab.jp-mod-current")).to_contain_text("01-incident-replay")
        run_all(page, demo, artifacts_dir, "lab")
        orphans = page.locator("tr.bk-row.bk-orphan")
        expect(page.locator(".jp-OutputArea-output", has_text="Nothing killed")).to_have_count(1, timeout=RUN_ALL_MS)
        first_output = page.locator(".jp-OutputArea-output", has_text="LocalBatch endpoint")
        expect(first_output).to_have_count(1)
        text = first_output.text_content() or ""  # offscreen cells are not laid out: DOM text
        endpoint = re.search(r"LocalBatch endpoint:\s*(http://127\.0\.0\.1:\d+)", text)
        abandoned = re.search(r"jobs it abandoned:\s*(\d+)", text)
        assert endpoint and abandoned, text[:3000]
        n = int(abandoned.group(1))
        # Visible and counted: every abandoned job is an orphan row, counted on its chip.
        expect(orphans).to_have_count(n)
        expect(page.locator(".bk-chip-orphan")).to_have_text(f"orphan {n}")
        expect(page.locator(".bk-header")).to_contain_text("aborted")
        job_ids = [orphans.nth(i).get_attribute("data-job-id") or "" for i in range(n)]
        for i, job_id in enumerate(job_ids):  # each Kill button sits in its own row
            assert orphans.nth(i).locator("button.bk-kill-row").get_attribute("data-kill") == job_id
        shot(page, artifacts_dir / "lab-light-before.png")

        page.locator(".bk-kill-all").click()
        expect(page.locator(".bk-confirm-panel")).to_contain_text(f"Terminate {n} job(s)")
        page.locator(".bk-confirm").click()
        killed = page.locator("tr.bk-row.bk-killed")
        expect(killed).to_have_count(n, timeout=KILL_DONE_MS)
        expect(page.locator(".bk-chip-orphan")).to_have_text("orphan 0", timeout=KILL_DONE_MS)
        expect(page.locator(".bk-chip-killed")).to_have_text(f"killed {n}")
        # One verdict per row: badge, chip, filter and reason agree on every killed row.
        for job_id in job_ids:
            row = page.locator(f'tr.bk-row[data-job-id="{job_id}"]')
            expect(row).to_have_attribute("data-verdict", "killed", timeout=KILL_DONE_MS)
            expect(row.locator(".bk-verdict")).to_have_text("killed")
            expect(row.locator(".bk-why")).to_contain_text(re.compile(
                r"killed by batchkit at \d\d:\d\d:\d\d UTC \(was orphan\); Batch confirmed FAILED"))
        page.locator(".bk-chip-killed").click()
        expect(page.locator("tr.bk-row")).to_have_count(n)
        page.locator(".bk-chip-orphan").click()
        expect(page.locator(".bk-table-html")).to_contain_text("No task matches this filter")
        page.locator(".bk-chip-all").click()
        shot(page, artifacts_dir / "lab-light-after.png")

        # Figures survive resizes: open the timelines, resize across 1,000-1,900 px.
        page.locator(".bk-figures .jupyter-widget-Collapse-header").nth(1).click()
        plot = page.locator(".bk-figures .js-plotly-plot").first
        expect(plot).to_be_visible(timeout=30_000)
        for width in (1000, 1900, 1300):
            page.set_viewport_size({"width": width, "height": 1500})
            page.wait_for_timeout(800)
            box = plot.bounding_box()
            assert box and box["height"] > 100, (width, box)
            assert not no_nan_geometry(page), width
            dash_box = page.locator(".bk-dashboard").bounding_box()
            assert dash_box and dash_box["width"] <= width, (width, dash_box)

        menu(page, "Settings", "Theme", "JupyterLab Dark")
        expect(page.locator("body[data-jp-theme-light='false']")).to_have_count(1, timeout=30_000)
        page.wait_for_timeout(500)
        shot(page, artifacts_dir / "lab-dark-after.png")
        # Dark theme: the table's text is light on the dark page (from --jp-* variables).
        colour = page.locator("tr.bk-row td.bk-nf").first.evaluate("e => getComputedStyle(e).color")
        rgb = [int(c) for c in re.findall(r"\d+", colour)[:3]]
        assert sum(rgb) > 3 * 150, colour
        menu(page, "Settings", "Theme", "JupyterLab Light")
        assert not [e for e in errors if "NaN" in e], errors

    assert_killed_by_batchkit(endpoint.group(1), job_ids)


def test_notebook7_opens_and_renders_the_dashboard(demo: str, artifacts_dir: Path) -> None:
    from playwright.sync_api import expect

    url = demo.replace("/lab/tree/", "/notebooks/")  # Notebook 7's page for the same file
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 1500})
        choose_notebook_kernel(page)
        page.goto(url, timeout=PAGE_READY_MS)
        expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible(timeout=PAGE_READY_MS)
        assert "/notebooks/01-incident-replay.ipynb" in page.url  # Notebook 7, not JupyterLab
        run_all(page, demo, artifacts_dir, "notebook7")
        orphans = page.locator("tr.bk-row.bk-orphan")
        n = orphans.count()
        expect(page.locator(".bk-chip-orphan")).to_have_text(f"orphan {n}")
        assert orphans.first.locator("button.bk-kill-row").get_attribute("data-kill") == orphans.first.get_attribute("data-job-id")
        shot(page, artifacts_dir / "notebook7-light.png")
        menu(page, "Settings", "Theme", "JupyterLab Dark")
        expect(page.locator("body[data-jp-theme-light='false']")).to_have_count(1, timeout=30_000)
        page.wait_for_timeout(500)
        shot(page, artifacts_dir / "notebook7-dark.png")
        menu(page, "Settings", "Theme", "JupyterLab Light")
