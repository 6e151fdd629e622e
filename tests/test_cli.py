"""The CLI, in-process (``main(argv)``) against the replayed incident on LocalBatch, plus a
couple of real subprocesses (``python -m batchkit``) for the entry point and the
no-credentials path."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchkit import cli
from batchkit.client import BatchClient
from batchkit.ledger import Ledger
from batchkit.schema import JOB_ACTIVE
from batchkit.sim.nextflow import Incident, replay_incident

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def incident_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Incident]:
    """One replayed #5516 incident, read-only for the tests that use it."""
    with replay_incident(launch_dir=tmp_path_factory.mktemp("ro") / "launch", n_tasks=20) as inc:
        yield inc


@pytest.fixture
def incident(tmp_path: Path) -> Iterator[Incident]:
    """A fresh incident a test may kill jobs in."""
    with replay_incident(launch_dir=tmp_path / "launch", n_tasks=20) as inc:
        yield inc


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def target(inc: Incident) -> list[str]:
    return [str(inc.launch_dir), "--endpoint-url", inc.endpoint_url, "--queue", inc.truth.queue]


def active_ids(inc: Incident) -> set[str]:
    return {j["jobId"] for j in inc.batch.jobs() if j["status"] in JOB_ACTIVE}


# --- reconcile ---------------------------------------------------------------------------------


def test_reconcile_table_exit_3_on_mismatch(
    incident_module: Incident, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "reconcile", *target(incident_module))
    assert code == cli.EXIT_MISMATCH, err
    assert "VERDICT" in out and "orphan" in out
    some = sorted(incident_module.truth.abandoned_job_ids & active_ids(incident_module))[0]
    assert some in out
    assert "waste" in out.splitlines()[-1]


def test_reconcile_json_and_csv(
    incident_module: Incident, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "reconcile", *target(incident_module), "--format", "json")
    assert code == cli.EXIT_MISMATCH
    rows = json.loads(out)
    orphans = {r["job_id"] for r in rows if r["verdict"] == "orphan"}
    assert orphans == incident_module.truth.abandoned_job_ids & active_ids(incident_module)
    code, out, _ = run_cli(capsys, "reconcile", *target(incident_module), "--format", "csv")
    assert out.splitlines()[0].startswith("task_id,")
    assert len(out.splitlines()) == len(rows) + 1


def test_reconcile_with_trace_and_log_files(
    incident_module: Incident, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    truth = incident_module.truth
    code, out, err = run_cli(
        capsys,
        "reconcile",
        "--trace",
        truth.trace_file,
        "--log",
        truth.log_file,
        "--endpoint-url",
        incident_module.endpoint_url,
        "--queue",
        truth.queue,
        "--format",
        "json",
    )
    assert code == cli.EXIT_MISMATCH, err
    assert {r["job_id"] for r in json.loads(out) if r["verdict"] == "orphan"}


def test_reconcile_healthy_run_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from batchkit.sim import LocalBatch
    from batchkit.sim.nextflow import Pipeline, SimulatedNextflow

    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment("q", vcpus=64)
        SimulatedNextflow(
            lb.client(retries={"total_max_attempts": 1}),
            launch_dir=tmp_path / "launch",
            queue="q",
            pipeline=Pipeline(n_tasks=6),
            batch=lb,
            poll_interval=60.0,
        ).run()
        code, out, err = run_cli(
            capsys,
            "reconcile",
            tmp_path / "launch",
            "--endpoint-url",
            lb.endpoint_url,
            "--queue",
            "q",
        )
    assert code == cli.EXIT_OK, out + err
    assert "orphan" not in out


# --- errors: one line, the right code, no traceback -------------------------------------------


def test_bad_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "reconcile", tmp_path / "nope", "--endpoint-url", "http://127.0.0.1:9"
    )
    assert code == cli.EXIT_USAGE
    assert err.count("\n") == 1 and str(tmp_path / "nope") in err and "launch directory" in err
    assert "Traceback" not in err and out == ""


def test_missing_trace_file_and_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "kill", "--trace", tmp_path / "trace.txt")
    assert code == cli.EXIT_USAGE and "trace.txt" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "reconcile")
    assert code == cli.EXIT_USAGE and "LAUNCH_DIR" in err


def test_unknown_queue_is_an_aws_error(
    incident_module: Incident, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys,
        "reconcile",
        incident_module.launch_dir,
        "--endpoint-url",
        incident_module.endpoint_url,
        "--queue",
        "no-such-queue",
    )
    assert code == cli.EXIT_AWS
    assert err.count("\n") == 1 and "no-such-queue" in err and "Traceback" not in err
    assert out == ""


def test_usage_error_from_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "reconcile", "--format", "xml")
    assert code == cli.EXIT_USAGE and "invalid choice" in err
    code, _, _ = run_cli(capsys)
    assert code == cli.EXIT_USAGE


# --- kill ------------------------------------------------------------------------------------


def test_kill_dry_run_then_yes_then_noop(
    incident: Incident, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = incident.truth
    orphans = truth.abandoned_job_ids & active_ids(incident)
    assert orphans

    code, out, _ = run_cli(capsys, "kill", *target(incident))
    assert code == cli.EXIT_OK
    assert "dry run" in out and all(j in out for j in orphans)
    assert active_ids(incident) >= orphans  # nothing was touched

    code, out, err = run_cli(capsys, "kill", *target(incident), "--yes")
    assert code == cli.EXIT_OK, out + err
    assert f"{len(orphans)}/{len(orphans)}" in err  # the progress bar reached the end
    assert all(f"{j}  terminated" in out for j in orphans)
    assert not (active_ids(incident) & orphans)

    ledger = Ledger.for_launch_dir(incident.launch_dir)
    assert sorted(k["job_id"] for k in ledger.kills()) == sorted(orphans)

    code, out, _ = run_cli(capsys, "kill", *target(incident), "--yes")
    assert code == cli.EXIT_OK and "nothing to kill" in out
    assert sorted(k["job_id"] for k in ledger.kills()) == sorted(orphans)

    # after the kill, no orphan is active any more
    code, out, _ = run_cli(capsys, "reconcile", *target(incident), "--format", "json")
    active_orphans = [
        r
        for r in json.loads(out)
        if r["verdict"] in ("orphan", "untracked") and r["batch_status"] in JOB_ACTIVE
    ]
    assert active_orphans == []


def test_kill_never_touches_another_run_on_the_same_queue(
    incident: Incident, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A second run, launched after the first on the same queue with the same task names
    (so colliding job names) but its own work dir, keeps every job running."""
    from batchkit.sim.nextflow import Pipeline, SimulatedNextflow

    lb = incident.batch
    second = SimulatedNextflow(
        lb.client(retries={"total_max_attempts": 1}),
        launch_dir=tmp_path / "second",
        work_dir="s3://batchkit-demo/work-second",
        queue=incident.truth.queue,
        pipeline=Pipeline(
            n_tasks=20, durations={"FASTQC": 90.0, "ALIGN": 4 * 3600.0, "MERGE": 600.0}
        ),
        behavior="crash",  # dies with its jobs in flight: they keep running, untouched
        batch=lb,
        crash_after=0.2,
    ).run()
    theirs = {t["job_id"] for t in second.tasks if t["job_id"]} & active_ids(incident)
    assert theirs, "the second run must have jobs in flight"
    names_first = {j["jobName"] for j in lb.jobs() if j["jobId"] in incident.truth.job_ids}
    names_second = {j["jobName"] for j in lb.jobs() if j["jobId"] in theirs}
    assert names_first & names_second, "the two runs' job names must collide"

    code, out, err = run_cli(capsys, "kill", *target(incident), "--yes")
    assert code == cli.EXIT_OK, out + err
    assert theirs <= active_ids(incident)
    assert not any(j in out for j in theirs)


def test_kill_with_a_stopped_api_is_an_aws_error(
    incident: Incident, capsys: pytest.CaptureFixture[str]
) -> None:
    args = target(incident)
    incident.batch.stop()
    code, _, err = run_cli(capsys, "kill", *args, "--yes", "--deadline", "1")
    assert code == cli.EXIT_AWS and err.count("\n") == 1 and "Traceback" not in err


# --- demo ------------------------------------------------------------------------------------


def test_demo_headless_kills_the_orphans(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(
        capsys, "demo", "--headless", "--tasks", "12", "--launch-dir", tmp_path / "d"
    )
    assert code == cli.EXIT_OK, out + err
    assert "orphan" in out and "waste" in out
    assert "0 active orphan/untracked job(s) remain" in out


def test_demo_without_notebook_falls_back_to_headless(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "find_notebook", lambda: None)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(cli, "run_headless_demo", lambda **kw: calls.append(kw) or 0)
    code, _, err = run_cli(capsys, "demo")
    assert code == 0 and calls and "headless" in err


def test_demo_opens_jupyterlab_on_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    notebook = notebooks / "01-incident-replay.ipynb"
    notebook.write_text("{}")
    (notebooks / "02-investigate-a-run.ipynb").write_text("{}")
    monkeypatch.setattr(cli, "find_notebook", lambda: notebook)
    launched: list[tuple[list[str], str, Path]] = []
    args = cli.build_parser().parse_args(["demo"])
    code = cli.cmd_demo(args, launcher=lambda cmd, url, scratch: launched.append((cmd, url, scratch)) or 0)
    assert code == 0
    [(command, url, scratch)] = launched
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    assert command[:4] == [sys.executable, "-m", "jupyterlab", "--no-browser"]
    assert "--ServerApp.ip=127.0.0.1" in command
    # The URL opens notebook 01 itself, in a scratch copy of the notebooks: the checkout
    # stays clean (JupyterLab autosaves), and each demo starts from a fresh copy.
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/lab/tree/01-incident-replay\.ipynb\?token=[0-9a-f]{48}", url)
    assert f"--ServerApp.root_dir={scratch}" in command
    assert sorted(p.name for p in scratch.glob("*.ipynb")) == ["01-incident-replay.ipynb", "02-investigate-a-run.ipynb"]
    assert scratch != notebooks and not str(scratch).startswith(str(tmp_path))
    assert any(c.startswith("--IdentityProvider.token=") and url.endswith(c.split("=", 1)[1]) for c in command)
    root = cli.jupyter_command(scratch, port=1, token="t", as_root=True)
    assert "--allow-root" in root
    assert "--allow-root" not in cli.jupyter_command(scratch, port=1, token="t", as_root=False)


# --- subprocesses: the real entry point --------------------------------------------------------


def test_python_m_batchkit_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "batchkit", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0
    for command in ("reconcile", "kill", "demo", "sim", "doctor"):
        assert command in done.stdout


def test_the_batchkit_script_is_the_entry_point_that_starts_the_clock() -> None:
    """pyproject's ``batchkit`` script and ``python -m batchkit`` are one function,
    ``batchkit.__main__.main``, which takes the command's clock before importing the CLI;
    importing the module runs nothing."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["batchkit"] == "batchkit.__main__:main"
    out = python_probe(
        "import sys",
        "import batchkit.__main__ as entry",
        "assert 'batchkit.cli' not in sys.modules",
        "sys.argv = ['batchkit', 'kill', '--help']",
        "sys.exit(entry.main())",
    )
    assert "usage: batchkit kill" in out


def python_probe(*lines: str) -> str:
    """Run ``lines`` as a fresh interpreter's program (its own sys.modules); its stdout,
    once it exits 0."""
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_no_credentials_is_one_line_and_exit_1(incident_module: Incident, tmp_path: Path) -> None:
    """AWS env cleared, no endpoint, HOME without ~/.aws: one clear line, exit 1."""
    env = {
        "HOME": str(tmp_path),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # no instance metadata service on this machine: don't wait for its timeout
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "batchkit",
            "reconcile",
            str(incident_module.launch_dir),
            "--queue",
            "q",
            "--region",
            "eu-west-1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == cli.EXIT_AWS, done.stderr
    assert done.stderr.count("\n") == 1 and "credentials" in done.stderr.lower()
    assert "Traceback" not in done.stderr


def test_client_is_built_from_the_flags(incident_module: Incident) -> None:
    args = cli.build_parser().parse_args(
        ["reconcile", "x", "--endpoint-url", incident_module.endpoint_url]
    )
    client = cli.make_client(args)
    assert isinstance(client, BatchClient)
    assert client.check_queue(incident_module.truth.queue)


def test_sim_serve_and_doctor_get_their_own_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "sim", "serve", "--help")
    assert code == 0 and "batchkit sim serve" in out and "--port" in out
    code, out, _ = run_cli(capsys, "doctor", "--help")
    assert code == 0 and "batchkit doctor" in out
    code, _, err = run_cli(capsys, "sim")
    assert code == cli.EXIT_USAGE and "sim" in err


def test_failed_kill_exits_pending_and_the_next_kill_finishes_it(
    incident: Incident, capsys: pytest.CaptureFixture[str]
) -> None:
    """Batch answers 500 to every terminate until the deadline: the "kills pending" exit
    status, each pending job listed with why, the intents pending in the ledger; once
    Batch answers again, the next kill finishes them and each job is audited exactly once."""
    orphans = incident.truth.abandoned_job_ids & active_ids(incident)
    rules = [
        incident.batch.faults.add(op, "authorizer-500") for op in ("TerminateJobs", "TerminateJob")
    ]
    code, out, err = run_cli(capsys, "kill", *target(incident), "--yes", "--deadline", "2")
    assert code == cli.EXIT_KILLS_PENDING, out + err
    assert all(f"{j}  pending  Batch kept failing until the kill's deadline: "
               "AuthorizerConfigurationException" in out for j in orphans)
    assert f"0 of {len(orphans)} job(s) killed, {len(orphans)} pending" in out
    assert "AuthorizerConfigurationException" in err  # the progress line said why
    ledger = Ledger.for_launch_dir(incident.launch_dir)
    assert {k.job_id for k in ledger.pending_kills(incident.truth.run_name)} == orphans
    assert active_ids(incident) >= orphans

    for rule in rules:
        incident.batch.faults.remove(rule)
    code, out, err = run_cli(capsys, "kill", *target(incident), "--yes")
    assert code == cli.EXIT_OK, out + err
    assert not (active_ids(incident) & orphans)
    assert sorted(k["job_id"] for k in ledger.kills()) == sorted(orphans)
    assert ledger.pending_kills(incident.truth.run_name) == []


@pytest.mark.slow
def test_kill_of_120_orphans_returns_by_its_deadline_while_terminate_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#11's incident: TerminateJobs and TerminateJob answer 500 without end. `kill --yes
    --deadline 20` on 120 orphans returns within 30 s (real time), lists every pending job
    and why, exits "kills pending", and sends at most one Terminate call per chunk per
    backoff step; after the fault is lifted the next kill finishes all 120, each once."""
    import time

    with replay_incident(launch_dir=tmp_path / "launch", n_tasks=160) as inc:
        orphans = inc.truth.abandoned_job_ids & active_ids(inc)
        assert len(orphans) == 120
        lb = inc.batch
        rules = [lb.faults.add(op, "authorizer-500") for op in ("TerminateJobs", "TerminateJob")]
        before = dict(lb.calls)
        t0 = time.monotonic()
        code, out, err = run_cli(capsys, "kill", *target(inc), "--yes", "--deadline", "20")
        took = time.monotonic() - t0
        assert code == cli.EXIT_KILLS_PENDING, out + err
        assert took < 30, took
        assert "0 of 120 job(s) killed, 120 pending" in out
        assert sum(f"{j}  pending  Batch kept failing" in out for j in orphans) == 120
        terminate = lb.calls.get("TerminateJobs", 0) - before.get("TerminateJobs", 0)
        assert lb.calls.get("TerminateJob", 0) == before.get("TerminateJob", 0)  # 500 is no fallback
        steps = [line for line in err.splitlines() if "retries" in line]
        assert steps, err
        retries = int(steps[-1].split(" retries")[0].rsplit(" ", 1)[-1])
        # 3 chunks of <= 50: one call each on the first step, one per chunk per later step
        assert terminate == 3 + retries and terminate % 3 == 0, (terminate, retries)
        sys.__stderr__.write(f"\n[#11] kill --deadline 20 under 500s: {took:.1f} s, {terminate} TerminateJobs calls, {retries} re-sends\n")

        for rule in rules:
            lb.faults.remove(rule)
        code, out, err = run_cli(capsys, "kill", *target(inc), "--yes")
        assert code == cli.EXIT_OK, out + err
        assert "120 of 120 job(s) killed" in out
        assert not (active_ids(inc) & orphans)
        ledger = Ledger.for_launch_dir(inc.launch_dir)
        audit = [k["job_id"] for k in ledger.kills()]
        assert sorted(audit) == sorted(orphans)  # exactly once each
        assert all(k["finished_at"] is not None and k["outcome"] == "terminated" for k in ledger.kills())


def test_kill_force_takes_jobs_of_a_run_that_looks_alive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a kill -9 nothing says the run ended: its jobs are Nextflow's, so a plain kill
    takes nothing and --force takes exactly the in-flight jobs."""
    from batchkit.sim import LocalBatch
    from batchkit.sim.nextflow import Pipeline, SimulatedNextflow

    with LocalBatch(manual_clock=True) as lb:
        lb.create_environment("q", vcpus=64)
        truth = SimulatedNextflow(
            lb.client(retries={"total_max_attempts": 1}),
            launch_dir=tmp_path / "launch",
            queue="q",
            pipeline=Pipeline(
                n_tasks=9, durations={"FASTQC": 90.0, "ALIGN": 3600.0, "MERGE": 60.0}
            ),
            behavior="crash",
            batch=lb,
            poll_interval=60.0,
        ).run()
        running = {j["jobId"] for j in lb.jobs() if j["status"] in JOB_ACTIVE}
        in_flight = truth.abandoned_job_ids & running
        assert in_flight
        args = [tmp_path / "launch", "--endpoint-url", lb.endpoint_url, "--queue", "q"]
        code, out, _ = run_cli(capsys, "kill", *args, "--yes")
        assert code == cli.EXIT_OK and "nothing to kill" in out
        code, out, _ = run_cli(capsys, "kill", *args, "--force")
        assert code == cli.EXIT_OK and "forced kill" in out and all(j in out for j in in_flight)
        code, out, err = run_cli(capsys, "kill", *args, "--force", "--yes")
        assert code == cli.EXIT_OK, out + err
        still = {j["jobId"] for j in lb.jobs() if j["status"] in JOB_ACTIVE}
        assert not (still & in_flight)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--endpoint-url", "notaurl"], "--endpoint-url: 'notaurl' is not a URL"),
        (["--tz", "Mars/Olympus"], "--tz: 'Mars/Olympus' is not a time zone name"),
        (["--deadline", "-1"], "--deadline: -1 must be 0 or more"),
        (["--price", "cheap"], "--price: 'cheap' is not a number"),
    ],
)
def test_bad_options_are_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    from batchkit.cli import main

    trace = tmp_path / "trace.txt"
    trace.write_text("task_id\thash\tnative_id\tname\tstatus\n1\tab/cdef12\tjob-1\tA (1)\tCOMPLETED\n")
    try:
        code = main(["reconcile", "--trace", str(trace), *extra])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and "Traceback" not in err


# --- the CLI's promise: every bad input is one line with a documented status ------------------


def one_line(err: str) -> str:
    """The single stderr line of a failure (and that it is one, with no traceback)."""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and err.startswith("batchkit"), err
    return err.rstrip("\n")


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    trace = tmp_path / "trace.txt"
    trace.write_text("task_id\thash\tnative_id\tname\tstatus\n1\tab/cdef12\tjob-1\tA (1)\tCOMPLETED\n")
    return trace


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--endpoint-url", "http://127.0.0.1:99999"], "not a URL with a valid port"),
        (["--endpoint-url", "http://127.0.0.1:0"], "port 0 is not a port"),
        (["--endpoint-url", "ftp://127.0.0.1:21"], "is not a URL"),
        (["--deadline", "inf"], "--deadline: inf is not a finite number"),
        (["--deadline", "nan"], "--deadline: nan is not a finite number"),
        (["--deadline", "1e9"], "at most 86400 seconds"),
        (["--price", "inf"], "--price: inf is not a finite number"),
        (["--price", "-0.5"], "--price: -0.5 must be 0 or more"),
        (["--tz", "x" * 5000], "is not a time zone name"),
        (["--tz", "../../etc/passwd"], "is not a time zone name"),
        (["--ledger", "a\x00b"], "is not a path"),
        (["--ledger", "."], ". is a directory, not a file"),
        (["--region", "no such region!"], "is not an AWS region name"),
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_reconcile_refuses_bad_arguments_in_one_line(
    capsys: pytest.CaptureFixture[str], trace_file: Path, argv: list[str], needle: str
) -> None:
    code, out, err = run_cli(capsys, "reconcile", "--trace", trace_file, *argv)
    assert code == cli.EXIT_USAGE
    line = one_line(err)
    assert line.startswith(("batchkit reconcile: error: ", "batchkit: error: ")) and needle in line
    assert out == ""


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["kill", "--verdict", "bogus"], "'bogus' is not a verdict: use one of ok, orphan"),
        (["demo", "--tasks", "0"], "--tasks: 0 must be between 3 and 100000"),
        (["demo", "--tasks", "-5"], "--tasks: -5 must be between 3 and 100000"),
        (["demo", "--tasks", "many"], "--tasks: 'many' is not a whole number"),
        (["sim", "serve", "--port", "99999"], "--port: 99999 is not a port: give 1-65535"),
        (["sim", "serve", "--port", "-1"], "--port: -1 is not a port"),
        (["sim", "serve", "--speed", "nan"], "--speed: nan is not a finite number"),
        (["sim", "serve", "--speed", "0"], "--speed: 0 must be more than 0"),
        (["sim", "serve", "--vcpus", "-3"], "--vcpus: -3 must be between 1 and"),
        (["sim", "serve", "--save", "no/such/dir/state.json"], "no such directory no/such/dir"),
        (["sim", "serve", "--save", "."], ". is a directory, not a file"),
        (["sim", "run", "main.nf", "-behavior", "nope"], "'nope' is not a behavior"),
        (["sim", "run", "main.nf", "-n-tasks", "0"], "-n-tasks: 0 must be between 3"),
        (["sim", "run", "main.nf", "-n-tasks", "2"], "-n-tasks: 2 must be between 3"),
        (["demo", "--tasks", "2"], "--tasks: 2 must be between 3 and 100000"),
        (["doctor", ".", "--runnable-after", "inf"], "--runnable-after: inf is not a finite number"),
        (["doctor", ".", "--endpoint-url", "http://127.0.0.1:99999"], "not a URL with a valid port"),
        (["sim"], "required: SIM_COMMAND"),
        ([], "required: COMMAND"),
        (["nope"], "invalid choice: 'nope'"),
    ],
)
def test_every_command_refuses_bad_arguments_in_one_line(
    capsys: pytest.CaptureFixture[str], trace_file: Path, argv: list[str], needle: str
) -> None:
    if argv[:1] == ["kill"]:
        argv = [*argv, "--trace", str(trace_file)]
    code, out, err = run_cli(capsys, *argv)
    assert code == cli.EXIT_USAGE
    assert needle in one_line(err) and out == ""


def test_demo_launch_dir_that_is_a_file_is_one_line(
    capsys: pytest.CaptureFixture[str], trace_file: Path
) -> None:
    code, _, err = run_cli(capsys, "demo", "--headless", "--launch-dir", trace_file)
    assert code == cli.EXIT_USAGE
    assert f"{trace_file} is a file, not a directory" in one_line(err)
    code, _, err = run_cli(capsys, "demo", "--headless", "--launch-dir", trace_file / "sub")
    assert code == cli.EXIT_USAGE
    assert f"{trace_file} is a file, not a directory" in one_line(err)


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` made unwritable even for root (an immutable attribute), else by its mode."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode:
        pytest.skip("root without a working chattr: cannot make a path unwritable for root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_demo_launch_dir_that_is_not_writable_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    with unwritable(locked):
        for target in (locked, locked / "new" / "deeper"):
            code, _, err = run_cli(capsys, "demo", "--headless", "--launch-dir", target)
            assert code == cli.EXIT_USAGE
            assert f"{locked} is not writable" in one_line(err)
        # sim serve --save is written on exit: refused up front, not after the session
        code, _, err = run_cli(capsys, "sim", "serve", "--save", locked / "state.json")
        assert code == cli.EXIT_USAGE and "state.json is not writable" in one_line(err)


def test_sim_serve_state_that_is_not_an_object_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_text('[{"jobId": "j-1"}]')
    code, out, err = run_cli(capsys, "sim", "serve", "--state", state)
    assert code == cli.EXIT_USAGE and out == ""
    assert f"{state}: --state: a JSON list, not an object" in one_line(err)
    code, _, err = run_cli(capsys, "sim", "serve", "--state", tmp_path)
    assert code == cli.EXIT_USAGE and "not a regular file" in one_line(err)


def test_sim_serve_beyond_loopback_needs_a_flag_and_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchkit.sim.localbatch import ADMIN_TOKEN_ENV

    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    code, out, err = run_cli(capsys, "sim", "serve", "--host", "0.0.0.0")
    assert code == cli.EXIT_USAGE and out == ""
    assert "not a loopback address" in one_line(err) and "--allow-remote" in err
    code, _, err = run_cli(capsys, "sim", "serve", "--host", "0.0.0.0", "--allow-remote")
    assert code == cli.EXIT_USAGE and ADMIN_TOKEN_ENV in one_line(err)
    # With the flag and a token it goes as far as listening: an address no interface has
    # (TEST-NET-1, RFC 5737) fails to bind, after the warning, with the runtime status.
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "t" * 32)
    code, out, err = run_cli(capsys, "sim", "serve", "--host", "192.0.2.1", "--allow-remote")
    assert code == cli.EXIT_FAILURE and out == ""
    warning, error = err.splitlines()
    assert warning.startswith("batchkit sim serve: warning: ") and "no authentication" in warning
    assert error.startswith("batchkit sim serve: error: cannot listen on 192.0.2.1")
    assert "t" * 32 not in err


def test_emulator_admin_api_refuses_non_loopback_without_a_token() -> None:
    import urllib.error
    import urllib.request

    from batchkit.sim import LocalBatch

    with pytest.raises(ValueError, match="without admin_token"):
        LocalBatch(host="0.0.0.0").start()  # refused before binding anything
    with LocalBatch(manual_clock=True, admin_token="s3cret-token-0123456789") as lb:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{lb.endpoint_url}/_admin/health", timeout=10)
        assert refused.value.code == 401
        ok = urllib.request.Request(
            f"{lb.endpoint_url}/_admin/health",
            headers={"Authorization": "Bearer s3cret-token-0123456789"},
        )
        with urllib.request.urlopen(ok, timeout=10) as answer:
            assert json.load(answer)["ok"] is True
        # the Batch API itself answers as before
        assert lb.client().describe_job_queues()["jobQueues"] == []
        # sim serve's banner names the variable, never the token
        from batchkit.sim.localbatch import _usage_text

        banner = _usage_text(lb, None)
        assert 'curl -H "Authorization: Bearer $BATCHKIT_ADMIN_TOKEN"' in banner
        assert "s3cret-token" not in banner


def test_unreachable_endpoint_is_exit_1_in_one_line_without_a_poll_promise(
    capsys: pytest.CaptureFixture[str], trace_file: Path, incident_module: Incident, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    runs = [["--trace", str(trace_file)], [str(incident_module.launch_dir)]]
    for command, run, extra in itertools.product(("reconcile", "kill"), runs, ([], ["--queue", "q"])):
        yes = ["--yes", "--ledger", str(tmp_path / "ledger.sqlite")] if command == "kill" else []
        code, out, err = run_cli(
            capsys, command, *run, "--endpoint-url", url, "--deadline", "0.2", *extra, *yes
        )
        assert code == cli.EXIT_FAILURE and out == ""
        line = one_line(err)
        assert "next poll" not in line and "retrying" not in line


# --- --deadline is the whole command's, from the process's start -----------------------------


@contextlib.contextmanager
def counting_server() -> Iterator[tuple[str, list[int]]]:
    """A loopback endpoint that accepts every connection and closes it at once, counting
    them: a client that touches the network shows in the count."""
    import socket
    import threading

    accepted: list[int] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def test_deadline_left_counts_from_the_command_start() -> None:
    import argparse
    import time

    from batchkit import _cli_args

    now = time.monotonic()
    assert _cli_args.deadline_left(argparse.Namespace(deadline=10.0)) == 10.0
    left = _cli_args.deadline_left(argparse.Namespace(deadline=10.0, command_started=now - 4))
    assert 5.0 < left <= 6.0
    assert _cli_args.deadline_left(argparse.Namespace(deadline=3.0, command_started=now - 20)) == 0.0


def test_a_deadline_spent_before_the_command_ran_sends_no_request(
    capsys: pytest.CaptureFixture[str], trace_file: Path
) -> None:
    """``started`` is when the process started (``batchkit.__main__`` takes it before the
    imports): a deadline used up by then leaves nothing for Batch calls — one line, exit 1,
    no connection. With the clock started at ``main`` itself, the same command connects."""
    import time

    argv = ["reconcile", "--trace", str(trace_file), "--deadline", "3"]
    with counting_server() as (url, accepted):
        code = cli.main([*argv, "--endpoint-url", url], started=time.monotonic() - 3.5)
        _, err = capsys.readouterr()
        assert code == cli.EXIT_FAILURE and "longer --deadline" in one_line(err)
        assert accepted == []
        code = cli.main([*argv[:-1], "2", "--endpoint-url", url])
        _, err = capsys.readouterr()
        assert code == cli.EXIT_FAILURE and one_line(err)
        assert accepted, "the counting server saw no request: it cannot tell the cases apart"


#: Seconds a subprocess may take past its --deadline: the interpreter's start before the
#: entry point takes the clock, the last answer, the error line and the exit. Generous, as
#: the test machine is shared; the figure itself is benchmarks/bench_cli_deadline.py's.
DEADLINE_MARGIN = 6.0


def reconcile_process(trace: Path, url: str, deadline: float) -> tuple[float, str]:
    """`python -m batchkit reconcile --trace TRACE` against ``url``: its wall time, from
    the spawn to the exit, and its one stderr line (checked: exit 1, nothing on stdout)."""
    import time

    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "batchkit", "reconcile", "--trace", str(trace), "--endpoint-url", url,
         "--deadline", f"{deadline:g}"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    took = time.monotonic() - began
    assert done.returncode == cli.EXIT_FAILURE and done.stdout == "", done.stderr
    return took, one_line(done.stderr)


def test_reconcile_of_2000_tasks_returns_by_its_deadline_as_a_process(tmp_path: Path) -> None:
    """`python -m batchkit reconcile --deadline 3` against a closed port, 2,000 recorded
    jobs (20 DescribeJobs chunks, each retried until refused for good): it returns within
    the deadline + DEADLINE_MARGIN, the imports included, with exit 1 and one line.
    Bounded per call only, the chunks would take 20 / 4 workers x 3 s = 15 s."""
    trace = tmp_path / "trace.txt"
    rows = (f"{i}\t{i % 256:02x}/{i:06x}\tjob-{i:05d}\tA ({i})\tRUNNING\n" for i in range(1, 2001))
    trace.write_text("task_id\thash\tnative_id\tname\tstatus\n" + "".join(rows))
    took, line = reconcile_process(trace, f"http://127.0.0.1:{closed_port()}", 3)
    assert "did not answer for 2000 job(s)" in line
    assert took < 3 + DEADLINE_MARGIN, f"{took:.1f} s for --deadline 3"


def test_reconcile_against_an_endpoint_that_never_answers_returns_by_its_deadline(trace_file: Path) -> None:
    """A loopback port that accepts connections (the kernel's backlog) and never answers:
    no socket timeout may outlast --deadline, so `reconcile --deadline 2` returns within
    the deadline, one read timeout (at most the deadline) and DEADLINE_MARGIN — not after
    botocore's default 60 s read timeout."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        took, line = reconcile_process(trace_file, f"http://127.0.0.1:{silent.getsockname()[1]}", 2)
    assert "longer --deadline" in line
    assert took < 2 + 2 + DEADLINE_MARGIN, f"{took:.1f} s for --deadline 2"


def test_a_password_in_the_endpoint_url_is_never_echoed(
    capsys: pytest.CaptureFixture[str], trace_file: Path
) -> None:
    port = closed_port()
    for url in (f"http://alice:hunter2@127.0.0.1:{port}", "http://alice:hunter2@127.0.0.1:99999"):
        for extra in ([], ["--queue", "q"]):
            code, _, err = run_cli(
                capsys, "reconcile", "--trace", trace_file, "--endpoint-url", url, "--deadline", "0.2", *extra
            )
            assert code in (cli.EXIT_USAGE, cli.EXIT_FAILURE)
            line = one_line(err)
            assert "hunter2" not in line and "alice" not in line
    code, out, err = run_cli(
        capsys, "doctor", trace_file.parent, "--endpoint-url", f"http://alice:hunter2@127.0.0.1:{port}",
        "--deadline", "0.2",
    )  # fmt: skip
    # The outage stops the account checks at the whole command's deadline: one stderr line
    # says so, and the status is a failure (never "all clear").
    assert code in (cli.EXIT_AWS, cli.EXIT_ERROR_FINDING), err
    assert "hunter2" not in out + err and "account checks stopped" in err


def test_url_helpers_drop_userinfo() -> None:
    from batchkit import _cli_args

    assert _cli_args.redact_url("https://u:p@h.example:8443/x?y=1") == "https://h.example:8443/x?y=1"
    assert _cli_args.redact_url("http://127.0.0.1:4566") == "http://127.0.0.1:4566"
    text = 'Could not connect to "http://u:p@ss@127.0.0.1:9/v1/x" nor s3://k:s@b/key'
    assert _cli_args.scrub_userinfo(text) == 'Could not connect to "http://127.0.0.1:9/v1/x" nor s3://b/key'


# --- the ledger at the CLI boundary: one line whatever the file or the disk does ------------


def test_ledger_of_garbage_bytes_is_one_line_exit_2(
    incident_module: Incident, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    garbage = tmp_path / "ledger.sqlite"
    garbage.write_bytes(bytes(range(256)) * 64)
    garbage.chmod(0o600)  # private, as the ledger wants it: no warning about its mode
    for extra in ([], ["--yes"]):
        code, out, err = run_cli(capsys, "kill", *target(incident_module), "--ledger", garbage, *extra)
        assert code == cli.EXIT_USAGE and out == ""
        assert str(garbage) in one_line(err) and "not a database" in err


def test_immutable_ledger_is_one_line_exit_1(
    incident: Incident, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    Ledger(ledger).close()
    with unwritable(ledger):
        code, out, err = run_cli(capsys, "kill", *target(incident), "--ledger", ledger, "--yes")
    assert code == cli.EXIT_FAILURE and out == ""
    assert str(ledger) in one_line(err) and "read-only" in err
    assert active_ids(incident) >= incident.truth.abandoned_job_ids & active_ids(incident)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 kB tmpfs filled up (needs root and mount: a container without them skips)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        pytest.skip("mounting a small tmpfs needs root and CAP_SYS_ADMIN")
    try:
        with contextlib.suppress(OSError), (mount / "filler").open("wb") as filler:
            filler.write(b"\0" * (1 << 20))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_full_disk_is_one_line_exit_1(
    incident: Incident, capsys: pytest.CaptureFixture[str], full_disk: Path
) -> None:
    ledger = full_disk / "ledger.sqlite"
    code, out, err = run_cli(capsys, "kill", *target(incident), "--ledger", ledger, "--yes")
    assert code == cli.EXIT_FAILURE and out == ""
    assert str(ledger) in one_line(err) and "full" in err
    code, _, err = run_cli(capsys, "demo", "--headless", "--tasks", "3", "--launch-dir", full_disk / "d")
    assert code == cli.EXIT_FAILURE
    assert "disk is full" in err.splitlines()[-1] and "Traceback" not in err


# --- output: what reaches a terminal or a spreadsheet is shown, never obeyed ------------------


def test_ansi_and_formulas_from_names_and_status_reasons_are_neutralised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task name from the trace and a statusReason from Batch carrying ANSI escapes and
    spreadsheet formulas: the table shows the escapes as text, CSV cells are text."""
    from batchkit.sim import LocalBatch

    with LocalBatch(manual_clock=True) as lb:
        env = lb.create_environment("q", vcpus=4)
        batch = lb.client()
        job_id = batch.submit_job(
            jobName="x", jobQueue="q", jobDefinition=env["jobDefinitionName"],
            containerOverrides={"command": ["sleep", "1000"]},
        )["jobId"]  # fmt: skip
        lb.advance(5)
        batch.terminate_job(jobId=job_id, reason="\x1b[31mred\x1b[0m\x07 done")
        lb.advance(5)
        trace = tmp_path / "trace.txt"
        name = '=HYPERLINK("http://evil.example")\x1b[2J\u202e (1)'
        trace.write_text(f"task_id\thash\tnative_id\tname\tstatus\n1\tab/cdef12\t{job_id}\t{name}\tRUNNING\n")
        argv = ["reconcile", "--trace", trace, "--endpoint-url", lb.endpoint_url, "--queue", "q"]
        code, table, _ = run_cli(capsys, *argv)
        assert code == cli.EXIT_MISMATCH
        code, csv_text, _ = run_cli(capsys, *argv, "--format", "csv")
        code, json_text, _ = run_cli(capsys, *argv, "--format", "json")
    for text in (table, csv_text):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b[2J" in table and "\\u202e" in table
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert rows[0]["name"] == "'=HYPERLINK(\"http://evil.example\")\\x1b[2J\\u202e (1)"
    assert rows[0]["status_reason"] == "\\x1b[31mred\\x1b[0m\\x07 done"
    assert not any(
        cell.startswith(("=", "+", "@")) or (cell.startswith("-") and not _is_number(cell))
        for row in rows
        for cell in row.values()
    )
    # JSON keeps the exact text: its escapes are data, not terminal commands
    assert json.loads(json_text)[0]["name"] == name


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_printable_and_csv_cell() -> None:
    from batchkit._cli_args import csv_cell, printable

    assert printable("plain — ünïcode ✓") == "plain — ünïcode ✓"
    assert printable("a\x1b[31mb\x9bc\r\nd\x00\udcff") == "a\\x1b[31mb\\x9bc\\x0d\\x0ad\\x00\\udcff"
    assert printable("zero\u200bwidth\u2066bidi") == "zero\\u200bwidth\\u2066bidi"
    for formula in ("=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "-", "=", "-x"):
        assert csv_cell(formula).startswith("'"), formula
    for safe in ("-1.5", "+3", "1e3", "a=b", "task (1)"):
        assert csv_cell(safe) == safe


def test_render_table_cuts_and_escapes_by_hand_built_frame() -> None:
    import io

    import pandas as pd

    from batchkit.schema import RecCol, TaskCol

    frame = pd.DataFrame(
        {RecCol.VERDICT: ["orphan"], TaskCol.NAME: ["\x1b]0;title\x07A (1)"], RecCol.REASON: ["r"]}
    )
    out = io.StringIO()
    cli.render_table(frame, out)
    assert "\x1b" not in out.getvalue() and "\\x1b]0;title\\x07A (1)" in out.getvalue()
    out = io.StringIO()
    cli.render_frame(frame.assign(extra=[-3]), "csv", out)
    assert out.getvalue().splitlines()[1] == "orphan,\\x1b]0;title\\x07A (1),r,-3"


# --- the old entry points are the same tree -------------------------------------------------


def test_old_entry_points_keep_working(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from batchkit.doctor import main as doctor_main
    from batchkit.sim import serve_main
    from batchkit.sim.nextflow import main as nextflow_main

    assert doctor_main(["--help"]) == 0 and "batchkit doctor" in capsys.readouterr().out
    assert serve_main(["--help"]) == 0 and "--allow-remote" in capsys.readouterr().out
    assert nextflow_main(["run", "--help"]) == 0 and "-with-trace" in capsys.readouterr().out
    assert nextflow_main(["run", "x.nf", "-behavior", "nope"]) == cli.EXIT_USAGE
    assert "batchkit sim run: error:" in one_line(capsys.readouterr().err)
    assert doctor_main([str(tmp_path / "nope"), "--offline"]) == cli.EXIT_USAGE
    done_sub = subprocess.run(
        [sys.executable, "-m", "batchkit.sim.nextflow", "run", "--help"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done_sub.returncode == 0 and "usage: batchkit sim run" in done_sub.stdout


def test_help_documents_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["reconcile"], ["kill"], ["demo"], ["doctor"], ["sim"], ["sim", "serve"]):
        code, out, _ = run_cli(capsys, *argv, "--help")
        assert code == 0
        for status in (cli.EXIT_OK, cli.EXIT_AWS, cli.EXIT_USAGE, cli.EXIT_MISMATCH,
                       cli.EXIT_ERROR_FINDING, cli.EXIT_KILLS_PENDING, cli.EXIT_INTERRUPTED):  # fmt: skip
            assert f"\n  {status} " in out, (argv, status)
    readme = (ROOT / "README.md").read_text()
    for status in ("0", "1", "2", "3", "4", "5", "130"):
        assert f"| {status} |" in readme


def test_warnings_are_one_line_each(
    incident_module: Incident, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A Python warning raised during a command (a ledger other users can read) is one
    ``batchkit: warning:`` line, not Python's file/line/source block."""
    ledger = tmp_path / "ledger.sqlite"
    Ledger(ledger).close()
    ledger.chmod(0o644)
    code, _, err = run_cli(capsys, "kill", *target(incident_module), "--ledger", ledger)
    assert code == cli.EXIT_OK, err
    warning_lines = [line for line in err.splitlines() if "0644" in line]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("batchkit: warning: ")
    assert "Traceback" not in err and ".py:" not in err


def test_help_and_the_batch_client_import_no_pandas() -> None:
    """pandas is imported where a command reads or draws frames, not to build a parser:
    ``kill``, ``doctor``, ``demo`` and ``sim serve`` answer --help without it, and
    ``batchkit.client`` (which needs only epoch milliseconds from ``_time``) loads without it."""
    python_probe(
        "import sys, contextlib, io",
        "from batchkit.cli import main",
        "for argv in (['kill', '--help'], ['doctor', '--help'], ['demo', '--help'], ['sim', 'serve', '--help']):",
        "    with contextlib.redirect_stdout(io.StringIO()):",
        "        assert main(argv) == 0, argv",
        "    assert 'pandas' not in sys.modules, argv",
        "import batchkit.client",
        "assert 'pandas' not in sys.modules, 'batchkit.client'",
    )


def test_the_lazy_tree_lists_what_each_command_registers() -> None:
    """``batchkit --help`` lists the commands from cli.COMMANDS without importing them;
    each entry's help is the help its module registers, and parsing one command builds
    that command's parser only."""

    def helps(parser: Any) -> dict[str, str]:
        (sub,) = [a for a in parser._actions if a.dest == "command"]
        return {a.dest: a.help for a in sub._choices_actions}

    full, lazy = helps(cli.build_parser()), helps(cli.build_parser([]))
    assert full == lazy and list(full) == [name for name, _, _ in cli.COMMANDS]
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from batchkit.cli import main; code = main(['--help']); "
         "sys.exit(code if 'pandas' not in sys.modules else 99)"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
