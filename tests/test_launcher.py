"""launch_nextflow, the stop path and the watchdog, with the simulated Nextflow as a real subprocess."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from batchkit.client import BatchClient
from batchkit.launcher import (
    Watchdog,
    assess,
    build_command,
    launch_nextflow,
    parse_nextflow_version,
    weblog_config,
)
from batchkit.schema import JOB_ACTIVE
from batchkit.sim import LocalBatch

# --- pure parts -------------------------------------------------------------------------


def test_parse_nextflow_version() -> None:
    text = "\n      N E X T F L O W\n      version 24.10.4 build 5934\n      created 05-02-2025"
    assert parse_nextflow_version(text) == (24, 10, 4)
    assert parse_nextflow_version("nextflow: command not found") is None


def test_weblog_wiring_follows_the_version() -> None:
    common = dict(
        executable=["nextflow"], run_name="r", trace_file="t.txt", work_dir="s3://b/w",
        weblog_url="http://127.0.0.1:9/", simulated=False,
    )
    # A real Nextflow, old or new, reads its weblog settings (a secret URL, a token) from
    # a private config file: on the command line `ps` would show them to every user.
    old = build_command("main.nf", version=(24, 10, 4), config_file="w.config", **common)  # type: ignore[arg-type]
    assert old[:4] == ["nextflow", "run", "main.nf", "-name"]
    assert "-with-weblog" not in old and old[old.index("-c") + 1] == "w.config"
    new = build_command("main.nf", version=(25, 4, 0), config_file="w.config", **common)  # type: ignore[arg-type]
    assert "-with-weblog" not in new
    assert new[new.index("-c") + 1] == "w.config"
    for version in ((25, 10, 0), (24, 10, 4), None):
        with pytest.raises(ValueError):
            build_command("main.nf", version=version, **common)  # type: ignore[arg-type]
    assert "-with-trace" in new and new[new.index("-with-trace") + 1] == "t.txt"
    sim = build_command("main.nf", version=None, **{**common, "simulated": True})  # type: ignore[arg-type]
    assert sim[sim.index("-with-weblog") + 1] == "http://127.0.0.1:9/" and "-c" not in sim


def test_weblog_config_text() -> None:
    text = weblog_config("http://127.0.0.1:5/", "nf:s3cret-token")
    assert "id 'nf-weblog'" in text
    assert "url = 'http://127.0.0.1:5/'" in text
    assert "basicToken = 'nf:s3cret-token'" in text
    assert "basicToken" not in weblog_config("http://127.0.0.1:5/")
    # before 25.04: the core's own weblog settings, no plugin and no token setting (the
    # secret is the URL's path)
    old = weblog_config("http://127.0.0.1:5/s3cret_path-x/", "nf:s3cret-token", plugin=False)
    assert old == "weblog {\n    enabled = true\n    url = 'http://127.0.0.1:5/s3cret_path-x/'\n}\n"


def test_assess() -> None:
    base = dict(process_known=True, silent_after=600.0, killable=3, armed=False)
    assert assess(process_exit=None, silent_for=10.0, active_jobs=3, **base) is None  # type: ignore[arg-type]
    gone = assess(process_exit=-9, silent_for=10.0, active_jobs=3, **base)  # type: ignore[arg-type]
    assert gone is not None and "exited (code -9)" in gone.reason
    silent = assess(process_exit=None, silent_for=900.0, active_jobs=2, **base)  # type: ignore[arg-type]
    assert silent is not None and "silent for 15 min" in silent.reason
    assert assess(process_exit=-9, silent_for=None, active_jobs=0, **base) is None  # type: ignore[arg-type]


# --- a real subprocess on LocalBatch ---------------------------------------------------------


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _submitted(launch: object) -> int:
    tasks = launch.weblog.tasks()  # type: ignore[attr-defined]
    return int(tasks["native_id"].notna().sum()) if len(tasks) else 0


@pytest.mark.slow
def test_killed_run_leaves_orphans_that_the_armed_watchdog_kills(tmp_path: Path) -> None:
    with LocalBatch(speed=20.0) as lb:
        lb.create_environment("demo-queue", vcpus=512)
        client = BatchClient(client=lb.client(), rate=200.0)
        sim = ["-n-tasks", "8", "-poll-interval", "5"]
        victim = launch_nextflow(
            "main.nf", tmp_path / "victim", client=client, queue="demo-queue",
            endpoint_url=lb.endpoint_url, simulated=True, sim_args=sim,
        )
        # The canary: another run of the same pipeline on the same queue (so the same
        # job names), in another launch dir and work dir. It must never be touched.
        canary = launch_nextflow(
            "main.nf", tmp_path / "canary", client=client, queue="demo-queue",
            endpoint_url=lb.endpoint_url, simulated=True, work_dir="s3://batchkit-demo/canary",
            sim_args=sim,
        )
        try:
            _wait(lambda: _submitted(victim) >= 2 and _submitted(canary) >= 2, 60, "submissions")
            # Visible in its dashboard's tracker within one refresh of the first submission:
            # every id recorded before the refresh. (The run is still submitting: an id read
            # after the refresh may belong to a job created after its ListJobs.)
            ids = set(victim.weblog.tasks()["native_id"].dropna())
            tracker = victim.tracker()
            snap = tracker.refresh()
            seen = set(snap.frame["job_id"].dropna()) if len(snap.frame) else set()
            assert ids and ids <= seen

            dash = victim.dashboard(autostart=False)
            # Off by default: started here, unarmed; its own loop checks once at start.
            watchdog = victim.watch(silent_after=3600, interval=3600)
            assert isinstance(watchdog, Watchdog)
            assert watchdog.check() is None  # alive: no alert
            assert dash.alert.value == ""
            code = victim.kill_process()
            assert code != 0
            alert = watchdog.check()  # unarmed: an alert, no kill
            assert alert is not None and "exited" in alert.reason and not alert.armed
            assert watchdog.kills == []
            assert "Watchdog: the nextflow process exited" in dash.alert.value
            assert "arm the watchdog" in dash.alert.value
            victim_jobs = {j["jobId"]: j for j in lb.jobs() if "batchkit-demo/work/" in " ".join(j["container"]["command"])}
            active_before = {i for i, j in victim_jobs.items() if j["status"] in JOB_ACTIVE}
            assert active_before, "the killed run should have left active jobs"

            watchdog.arm()
            alert = watchdog.check()
            assert alert is not None and alert.armed
            assert watchdog.kills and watchdog.kills[-1].ok
            assert "armed: killing" in dash.alert.value
            after = {j["jobId"]: j for j in lb.jobs()}
            for job_id in active_before:
                assert after[job_id]["status"] == "FAILED", after[job_id]
                assert after[job_id]["statusReason"].startswith("batchkit: ")
            canary_jobs = [j for j in after.values() if "batchkit-demo/canary/" in " ".join(j["container"]["command"])]
            assert canary_jobs
            assert not any((j.get("statusReason") or "").startswith("batchkit") for j in canary_jobs)
            assert canary.returncode is None  # still running
        finally:
            for launch in (victim, canary):
                if launch.returncode is None:
                    launch.kill_process()
                launch.close()


@pytest.mark.slow
def test_stop_sends_sigterm_and_streams_console(tmp_path: Path) -> None:
    with LocalBatch(speed=20.0) as lb:
        lb.create_environment("demo-queue", vcpus=512)
        client = BatchClient(client=lb.client(), rate=200.0)
        launch = launch_nextflow(
            "main.nf", tmp_path, client=client, queue="demo-queue", endpoint_url=lb.endpoint_url,
            simulated=True, sim_args=["-n-tasks", "4", "-poll-interval", "5"],
        )
        try:
            _wait(lambda: _submitted(launch) >= 1, 60, "a submission")
            code = launch.stop(grace=30)
            # SIGTERM: the simulated Nextflow aborts the way Nextflow does on a signal
            # (Session.registerSignalHandlers): it exits 1 on its own, not killed by the signal.
            assert code == 1, f"exit {code}: the stand-in did not handle SIGTERM"
            run = launch.run()
            assert run.state == "aborted"
            assert run.abort_cause == "SIGTERM", "the run's own log says why it ended"
            console = "".join(launch.console)
            # What Nextflow prints on its console, streamed while the run went on.
            assert console.startswith("N E X T F L O W  ~  version "), console[:200]
            assert "] Submitted process > " in console
            assert launch.leftovers() is not None
        finally:
            launch.close()


def test_no_nextflow_and_not_simulated_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from batchkit.errors import BatchkitError

    monkeypatch.setenv("PATH", str(tmp_path))  # no nextflow anywhere on PATH
    with pytest.raises(BatchkitError, match="nextflow is not on PATH"):
        launch_nextflow("main.nf", tmp_path / "run", simulated=False)


def test_alert_text_and_banner_escape() -> None:
    from batchkit.launcher import WatchdogAlert, alert_text
    from batchkit.widgets.dashboard import alert_html

    text = alert_text(WatchdogAlert(reason="the run <b>x</b> exited", active_jobs=3, killable=2, armed=False))
    assert text.startswith("Watchdog: the run <b>x</b> exited (3 active job(s)); 2 job(s) killable")
    banner = alert_html(text)
    assert "&lt;b&gt;x&lt;/b&gt;" in banner and "<b>x</b>" not in banner
    assert alert_html(None) == "" and alert_html("") == ""
    armed = alert_text(WatchdogAlert(reason="r", active_jobs=1, killable=1, armed=True))
    assert "armed: killing 1 orphan job(s)" in armed


def _fake_nextflow(tmp_path: Path) -> Path:
    """A stand-in `nextflow` that prints invalid UTF-8 and 4 MB of lines, then exits."""
    script = tmp_path / "nextflow"
    script.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1" = "-version" ]; then echo "      version 24.10.4 build 5934"; exit 0; fi\n'
        "printf 'caf\\xe9 au lait\\n'\n"
        "yes 'a line of console output, repeated to fill the pipe' | head -n 80000\n"
        "exit 0\n"
    )
    script.chmod(0o755)
    return script


def test_console_survives_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    launch = launch_nextflow("main.nf", tmp_path / "run", nextflow=str(_fake_nextflow(tmp_path)), simulated=False)
    try:
        assert launch.wait(60) == 0  # the reader kept draining the pipe
        launch.stop()
        assert launch.console[-1].startswith("a line of console output")
        # 24.10: the core weblog, from a private config whose URL path is the secret
        assert "-with-weblog" not in launch.command
        config = Path(launch.command[launch.command.index("-c") + 1])
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert f"url = '{launch.weblog.url}'" in config.read_text() and "plugins" not in config.read_text()
        assert launch.weblog.path_secret in launch.weblog.url
        assert not any(launch.weblog.path_secret in arg or launch.weblog.token in arg for arg in launch.command)
        out = launch.output()
        assert len(out.outputs) == 1  # one block, not one output per line
        assert out.outputs[0]["text"].endswith("repeated to fill the pipe\n")
    finally:
        launch.close()


OLD_WEBLOG_NEXTFLOW = """#!{python}
# A stand-in for Nextflow 24.10's core weblog: WebLogObserver posts each event to the URL
# of weblog.url exactly as given, with no Authorization header (nextflow-io/nextflow,
# modules/nextflow/src/main/groovy/nextflow/trace/WebLogObserver.groovy, SimpleHttpClient).
import json, re, sys, urllib.request
if sys.argv[1:2] == ["-version"]:
    print("      version {version} build 5934")
    sys.exit(0)
config = open(sys.argv[sys.argv.index("-c") + 1]).read()
url = re.search(r"url = '([^']+)'", config).group(1)
name = sys.argv[sys.argv.index("-name") + 1]
body = json.dumps({{"runName": name, "runId": "sess-1", "event": "started", "utcTime": "2026-01-01T00:00:00Z"}})
request = urllib.request.Request(url, data=body.encode(), method="POST", headers={{"Content-Type": "application/json"}})
print("weblog", urllib.request.urlopen(request, timeout=10).status)
"""


@pytest.mark.parametrize("version", ["24.10.4", "25.04.2"])
def test_a_real_nextflows_weblog_reaches_the_receiver_and_a_stranger_does_not(tmp_path: Path, version: str) -> None:
    import http.client
    import sys

    script = tmp_path / "nextflow"
    script.write_text(OLD_WEBLOG_NEXTFLOW.format(python=sys.executable, version=version))
    script.chmod(0o755)
    launch = launch_nextflow("main.nf", tmp_path / "run", nextflow=str(script), simulated=False, run_name="nf_run")
    try:
        assert launch.wait(60) == 0, launch.console
        assert [line.strip() for line in launch.console] == ["weblog 200"]
        assert (launch.weblog.run_name, launch.weblog.run_id) == ("nf_run", "sess-1")
        config = Path(launch.command[launch.command.index("-c") + 1]).read_text()
        assert ("id 'nf-weblog'" in config) == version.startswith("25.")
        assert ("basicToken" in config) == version.startswith("25.")
        # another user of the machine, who knows the port but not the secret: refused, counted
        conn = http.client.HTTPConnection("127.0.0.1", launch.weblog.port, timeout=10)
        forged = b'{"runName": "nf_run", "runId": "sess-1", "event": "error", "utcTime": "2026-01-01T00:01:00Z"}'
        conn.request("POST", "/", body=forged, headers={"Content-Type": "application/json"})
        assert conn.getresponse().status == 401
        conn.close()
        assert launch.weblog.refused_posts == 1 and launch.weblog.run_state == "alive"
    finally:
        launch.close()


def test_background_flag_is_refused(tmp_path: Path) -> None:
    from batchkit.errors import InputError

    with pytest.raises(InputError, match="-bg"):
        launch_nextflow("main.nf", tmp_path, simulated=True, extra_args=["-bg"])
