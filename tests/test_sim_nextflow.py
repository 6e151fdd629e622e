"""The simulated Nextflow: its pure formats against real artefacts, and every behaviour
run against LocalBatch (manual clock) over real HTTP with real boto3."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from random import Random
from typing import Any

import pytest
from conftest import real_fixture

from batchkit.sim._nf_format import (
    abbreviate_logger,
    fmt_date,
    fmt_duration,
    fmt_memory,
    fmt_percent,
    launch_command,
    log_line,
    normalize_job_name,
    random_run_name,
    render_trace_row,
    version_tuple,
)
from batchkit.sim._nf_pipeline import Pipeline, plan
from batchkit.sim.localbatch import LocalBatch
from batchkit.sim.nextflow import GroundTruth, SimulatedNextflow, main, replay_incident

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
ACTIVE = {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"}

# Line shapes, written from the real .nextflow.log and checked against it below.
LOG_LINE = re.compile(r"^[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \[[^\]]+\] (TRACE|DEBUG|INFO |WARN |ERROR) \S+ - ")
BANNER = re.compile(r"N E X T F L O W  ~  version (\S+)$", re.M)
LAUNCHING = re.compile(r"Launching `([^`]+)` \[(\w+)\]")
SESSION = re.compile(r"Session (?:UUID|uuid): ([0-9a-f-]{36})$", re.M)
RUN_NAME = re.compile(r"Run name: (\w+)$", re.M)
SUBMITTED = re.compile(r"\[([0-9a-f]{2}/[0-9a-f]{6})\] Submitted process > (.+)$", re.M)
ABORTED = re.compile(r"Session aborted -- Cause: (.+)$", re.M)
KILLING = re.compile(r"Killing (?:running|pending) tasks \((\d+)\)$", re.M)
GOODBYE = re.compile(r"> Execution complete -- Goodbye$", re.M)
AWS_SUBMIT = re.compile(
    r"\[AWS BATCH\] (?:Process `(?P<name>[^`]+)` )?submitted > job=(?P<job>[0-9a-f-]+); work-dir=(?P<wd>\S+)$", re.M
)


# --- pure formats ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ALIGN (sample_01:2)", "ALIGN_sample_012"),
        ("NFCORE:RNASEQ:FASTQC (s-1.fq.gz)", "NFCORERNASEQFASTQC_s-1fqgz"),
        ("a b/c é ✓ d", "a_bc___d"),
        ("MERGE", "MERGE"),
    ],
)
def test_job_name_follows_nextflows_rule(name: str, expected: str) -> None:
    assert normalize_job_name(name) == expected


def test_job_name_is_cut_to_128_and_old_versions_drop_hyphens() -> None:
    long = "P (" + "x" * 300 + ")"
    assert len(normalize_job_name(long)) == 128
    assert normalize_job_name(long).startswith("P_x")
    assert normalize_job_name("tw-abc-X (a-b)", keep_hyphen=False) == "twabcX_ab"


def test_container_command_holds_the_task_work_dir() -> None:
    wd = "s3://bucket/work/2e/8b3a0c4f1d2e3f4a5b6c7d8e9f0a1b"
    cmd = launch_command(wd)
    assert cmd[:4] == ["bash", "-o", "pipefail", "-c"]
    assert f"s3 cp --only-show-errors {wd}/.command.run - | bash 2>&1 | tee .command.log" in cmd[4]
    assert f".command.log {wd}/.command.log||true; exit $ret;" in cmd[4]
    assert cmd[4].startswith('trap "{ ret=$?; /usr/local/bin/aws s3 cp --only-show-errors')


@pytest.mark.parametrize(
    ("ms", "text"),
    [(352, "352ms"), (1200, "1.2s"), (16_000, "16s"), (16_249, "16.2s"), (62_000, "1m 2s"),
     (60_000, "1m"), (16_879_000, "4h 41m 19s"), (93_780_000, "1d 2h 3m"), (None, "-")],
)  # fmt: skip
def test_duration_format(ms: int | None, text: str) -> None:
    assert fmt_duration(ms) == text


def test_memory_and_percent_formats() -> None:
    assert fmt_memory(round(206.9 * 1024**2)) == "206.9 MB"
    assert fmt_memory(40 * 1024**2) == "40 MB"
    assert fmt_memory(0) == "0"
    assert fmt_memory(512) == "512 B"
    assert fmt_memory(round(1.8 * 1024**3)) == "1.8 GB"
    assert fmt_percent(47.6) == "47.6%"
    assert fmt_percent(100) == "100.0%"
    assert fmt_date(1652410946406, "UTC") == "2022-05-13 03:02:26.406"
    assert fmt_date(1652410946406, "Europe/Paris") == "2022-05-13 05:02:26.406"
    assert fmt_date(None) == "-"


def _to_ms(text: str) -> int:
    if text.endswith("ms"):
        return int(text[:-2])
    total = 0.0
    for part in text.split():
        n, unit = float(part[:-1]), part[-1]
        total += n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    return round(total * 1000)


def _to_bytes(text: str) -> int:
    n, unit = text.split()
    return round(float(n) * 1024 ** ["B", "KB", "MB", "GB", "TB"].index(unit))


def test_formats_reproduce_every_value_of_a_real_trace() -> None:
    """Every duration, memory and percent in a real Nextflow trace is what our formatter writes."""
    lines = real_fixture("openproblems-awsbatch-trace.txt").read_text().splitlines()
    header = lines[0].split("\t")
    seen = 0
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        for f in ("duration", "realtime"):
            if row[f] != "-":
                assert fmt_duration(_to_ms(row[f])) == row[f]
                seen += 1
        for f in ("peak_rss", "peak_vmem", "rchar", "wchar"):
            if row[f] not in ("-", "0"):
                assert fmt_memory(_to_bytes(row[f])) == row[f]
                seen += 1
        if row["%cpu"] != "-":
            assert fmt_percent(float(row["%cpu"].rstrip("%"))) == row["%cpu"]
    assert seen > 5000


def test_aborted_row_looks_like_a_real_aborted_row() -> None:
    real = real_fixture("local-aborted-trace.txt").read_text().splitlines()[2].split("\t")
    ours = render_trace_row(
        {"task_id": 2, "hash": "f0/86ae3f", "native_id": "5114", "name": "makeGeneBED (genes.gtf)",
         "status": "ABORTED", "exit": 2147483647, "submit": 1565358662511},
        tz="UTC",
    ).split("\t")  # fmt: skip
    assert ours == real


def test_log_lines_match_the_real_logs_shapes() -> None:
    real = real_fixture("slurm-sigint-abort.nextflow.log").read_text().splitlines()
    entries = [x for x in real if x[:1].isupper() and x[3:4] == "-"]
    assert entries and all(LOG_LINE.match(x) for x in entries)
    text = "\n".join(real)
    # the shape regexes are right: they find the real values
    assert BANNER.search(text.splitlines()[1])
    assert SESSION.search(text) and re.search(r"Run name: wise_hypatia", text)
    assert len([x for x in real if SUBMITTED.search(x)]) == 5
    assert any(ABORTED.search(x) for x in real) and any(KILLING.search(x) for x in real)
    assert GOODBYE.search(real[-1])
    # our lines have the same shape, down to the padding of the level
    ours = log_line(T0, "Task submitter", "INFO", "nextflow.Session", "[16/b7af3d] Submitted process > X (1)")
    assert ours == "Jun-15 15:06:40.000 [Task submitter] INFO  nextflow.Session - [16/b7af3d] Submitted process > X (1)"
    assert LOG_LINE.match(ours)
    warn = log_line(T0 + 0.0461, "main", "WARN", "nextflow.processor.TaskPollingMonitor", "Killing running tasks (3)")
    assert warn.endswith("[main] WARN  n.processor.TaskPollingMonitor - Killing running tasks (3)")
    assert ".046 " in warn


def test_logger_abbreviation_is_logbacks() -> None:
    assert abbreviate_logger("nextflow.processor.TaskPollingMonitor") == "n.processor.TaskPollingMonitor"
    assert abbreviate_logger("nextflow.cloud.aws.batch.AwsBatchTaskHandler") == "n.c.aws.batch.AwsBatchTaskHandler"
    assert abbreviate_logger("nextflow.Session") == "nextflow.Session"


def test_versions_and_run_names() -> None:
    assert version_tuple("24.02.0-edge") == (24, 2, 0)
    assert version_tuple("24.10.4") == (24, 10, 4)
    assert version_tuple("19.12") == (19, 12, 0)
    assert re.fullmatch(r"[a-z]+_[a-z]+", random_run_name(Random(1)))
    assert random_run_name(Random(1)) == random_run_name(Random(1))


def test_pipeline_plan_is_scatter_fanout_gather_and_seeded() -> None:
    tasks = plan(Pipeline(n_tasks=40, seed=3))
    assert len(tasks) == 40
    assert [t.process for t in tasks].count("FASTQC") == 9
    assert [t.process for t in tasks].count("ALIGN") == 30
    merge = tasks[-1]
    assert merge.name == "MERGE" and merge.gather and len(merge.depends_on) == 30
    align = next(t for t in tasks if t.process == "ALIGN")
    assert align.name == "ALIGN (sample_01:1)" and align.depends_on == ("FASTQC:sample_01",)
    assert len({t.hash32 for t in tasks}) == 40 and all(re.fullmatch(r"[0-9a-f]{32}", t.hash32) for t in tasks)
    assert plan(Pipeline(n_tasks=40, seed=3)) == tasks
    assert plan(Pipeline(n_tasks=40, seed=4)) != tasks
    assert all(t.exit_code == 0 for t in tasks)
    failing = plan(Pipeline(n_tasks=12, fail_tasks=("ALIGN (sample_02:1)",)))
    assert [t.name for t in failing if t.exit_code] == ["ALIGN (sample_02:1)"]


@pytest.mark.parametrize(
    "kwargs",
    [{"n_tasks": 2}, {"processes": ("A", "B")}, {"processes": ("A", "A", "B")}, {"failure_rate": 1.5}, {"jitter": 1.0}],
)
def test_pipeline_rejects_bad_shapes(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Pipeline"):
        Pipeline(**kwargs)


# --- behaviours on LocalBatch -------------------------------------------------------


class _Receiver(ThreadingHTTPServer):
    events: list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        assert self.headers.get("Content-Type") == "application/json"
        self.server.events.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def weblog() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = _Receiver(("127.0.0.1", 0), _Handler)
    server.events = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/weblog", server.events
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def lb() -> Iterator[LocalBatch]:
    with LocalBatch(manual_clock=True, start_time=T0, seed=1) as batch:
        batch.create_environment("demo-queue", vcpus=512)
        yield batch


def _burst(batch: LocalBatch, start: float = 200.0, length: float = 1000.0) -> None:
    t0 = batch.clock.now()
    batch.faults.add("DescribeJobs", "authorizer-500", window=(t0 + start, t0 + start + length))


SHORT = {"FASTQC": 60.0, "ALIGN": 240.0, "MERGE": 60.0}
LONG = {"FASTQC": 60.0, "ALIGN": 7200.0, "MERGE": 60.0}


def _run(batch: LocalBatch, tmp_path: Path, behavior: str, *, durations: dict[str, float] = SHORT,
         n_tasks: int = 12, weblog_url: str | None = None, **kw: Any) -> GroundTruth:
    pipeline = kw.pop("pipeline", None) or Pipeline(n_tasks=n_tasks, durations=durations, seed=5)
    nf = SimulatedNextflow(
        batch.client(retries={"total_max_attempts": 1}),
        launch_dir=tmp_path,
        behavior=behavior,
        pipeline=pipeline,
        batch=batch,
        poll_interval=30.0,
        weblog_url=weblog_url,
        **kw,
    )
    return nf.run()


def _trace_rows(truth: GroundTruth) -> list[dict[str, str]]:
    lines = truth.trace_file.read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, x.split("\t"), strict=True)) for x in lines[1:]]


def _jobs(batch: LocalBatch) -> dict[str, dict[str, Any]]:
    return {j["jobId"]: j for j in batch.jobs()}


def test_healthy_run_submits_like_nextflow_and_completes(
    lb: LocalBatch, tmp_path: Path, weblog: tuple[str, list[dict[str, Any]]]
) -> None:
    url, events = weblog
    truth = _run(lb, tmp_path, "healthy", weblog_url=url, resource_labels={"project": "demo", "owner": "me"})
    assert truth.run_state == "completed" and truth.abort_cause is None and truth.version == "24.10.4"
    assert len(truth.tasks) == 12 and {t["status"] for t in truth.tasks} == {"COMPLETED"}
    assert not (truth.abandoned_job_ids | truth.untracked_job_ids | truth.killed_by_nf)

    jobs = _jobs(lb)
    assert set(jobs) == truth.job_ids
    for t in truth.tasks:
        job = jobs[t["job_id"]]
        assert job["status"] == "SUCCEEDED"
        assert job["jobName"] == normalize_job_name(t["name"])
        assert job["container"]["command"] == launch_command(t["workdir"])
        assert t["workdir"].startswith(f"{truth.work_dir}/{t['hash']}")
        assert job["tags"] == {"project": "demo", "owner": "me"} and job["propagateTags"] is True
        assert "retryStrategy" not in job  # maxSpotAttempts defaults to 0 since 24.08

    rows = _trace_rows(truth)
    assert [r["status"] for r in rows] == ["COMPLETED"] * 12
    assert {r["native_id"] for r in rows} == truth.job_ids
    assert all(re.fullmatch(r"\d+(\.\d)?%", r["%cpu"]) for r in rows)

    log = truth.log_file.read_text()
    assert GOODBYE.search(log.splitlines()[-1]) and "Session aborted" not in log
    assert BANNER.search(log) and LAUNCHING.search(log).group(2) == truth.run_name  # type: ignore[union-attr]
    assert SESSION.search(log.splitlines()[3]).group(1) == truth.session_id  # type: ignore[union-attr]
    submits = [m for line in log.splitlines() if (m := AWS_SUBMIT.search(line))]
    assert {m["job"] for m in submits} == truth.job_ids and all(m["name"] for m in submits)

    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert kinds.count("process_submitted") == kinds.count("process_started") == kinds.count("process_completed") == 12
    assert all(e["runName"] == truth.run_name and e["runId"] == truth.session_id for e in events)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", events[0]["utcTime"])
    sub = next(e["trace"] for e in events if e["event"] == "process_submitted")
    assert sub["exit"] == 2147483647 and sub["status"] == "SUBMITTED" and sub["native_id"] in truth.job_ids
    done = next(e["trace"] for e in events if e["event"] == "process_completed")
    assert done["exit"] == 0 and done["realtime"] > 0 and done["complete"] >= done["start"] >= done["submit"]
    assert events[-1]["metadata"]["workflow"]["success"] is True


def test_ignored_failures_are_recorded_failed_and_their_dependents_dropped(lb: LocalBatch, tmp_path: Path) -> None:
    pipeline = Pipeline(n_tasks=12, durations=SHORT, seed=5, fail_tasks=("FASTQC (sample_01)", "ALIGN (sample_02:1)"))
    truth = _run(lb, tmp_path, "healthy", pipeline=pipeline)
    assert truth.run_state == "completed"
    failed = {t["name"] for t in truth.tasks if t["status"] == "FAILED"}
    assert failed == {"FASTQC (sample_01)", "ALIGN (sample_02:1)"}
    assert not any(t["name"].startswith("ALIGN (sample_01") for t in truth.tasks)
    assert truth.task("MERGE")["status"] == "COMPLETED"
    assert all(t["exit"] == 1 for t in truth.tasks if t["status"] == "FAILED")
    assert "terminated with an error exit status (1) -- Error is ignored" in truth.log_file.read_text()
    assert {r["status"] for r in _trace_rows(truth)} == {"COMPLETED", "FAILED"}


def test_24_02_abandons_running_jobs_on_a_500_burst(
    lb: LocalBatch, tmp_path: Path, weblog: tuple[str, list[dict[str, Any]]]
) -> None:
    _burst(lb)
    truth = _run(lb, tmp_path, "24.02", durations=LONG, weblog_url=weblog[0])
    assert truth.run_state == "aborted" and truth.version == "24.02.0-edge"
    assert truth.abort_cause is not None
    assert truth.abort_cause.startswith("Internal server error (Service: AWSBatch; Status Code: 500; "
                                        "Error Code: AuthorizerConfigurationException;")  # fmt: skip
    running = [t for t in truth.tasks if t["process"] == "ALIGN"]
    assert running and all(t["abandoned"] and t["status"] == "RUNNING" for t in running)
    assert truth.abandoned_job_ids == {t["job_id"] for t in running}
    assert not truth.killed_by_nf
    jobs = _jobs(lb)
    assert all(jobs[j]["status"] in ACTIVE for j in truth.abandoned_job_ids)  # still burning money

    log = truth.log_file.read_text()
    assert ABORTED.search(log) and "Killing running tasks" not in log and GOODBYE.search(log)
    assert "killing job" not in log
    # before 24.04 the AWS BATCH submit line did not name the task
    assert all(m["name"] is None for line in log.splitlines() if (m := AWS_SUBMIT.search(line)))
    assert {r["native_id"]: r["status"] for r in _trace_rows(truth) if r["status"] == "RUNNING"}.keys() == (
        truth.abandoned_job_ids
    )
    kinds = [e["event"] for e in weblog[1]]
    assert "error" in kinds and kinds[-1] == "completed"
    assert "trace" not in next(e for e in weblog[1] if e["event"] == "error")
    assert weblog[1][-1]["metadata"]["workflow"]["errorMessage"] == truth.abort_cause


def test_24_12_kills_the_job_whose_status_check_failed(lb: LocalBatch, tmp_path: Path) -> None:
    _burst(lb)
    truth = _run(lb, tmp_path, "24.12", durations=LONG)
    assert truth.run_state == "aborted" and not truth.abandoned_job_ids
    align = {t["job_id"] for t in truth.tasks if t["process"] == "ALIGN"}
    assert align and truth.killed_by_nf == align
    jobs = _jobs(lb)
    assert all(jobs[j]["status"] == "FAILED" and jobs[j]["statusReason"] == "Job killed by NF" for j in align)
    log = truth.log_file.read_text()
    assert all(f"[AWS BATCH] killing job={j}; response=" in log for j in align)
    # the trace still says RUNNING: the tasks were dropped, never reported complete
    assert {t["status"] for t in truth.tasks if t["process"] == "ALIGN"} == {"RUNNING"}


def test_a_short_burst_is_survived(lb: LocalBatch, tmp_path: Path) -> None:
    t0 = lb.clock.now()
    lb.faults.add("DescribeJobs", "authorizer-500", count=2, window=(t0 + 100, t0 + 10_000))
    truth = _run(lb, tmp_path, "24.02")
    assert truth.run_state == "completed"


def test_crash_leaves_no_final_rows_and_no_goodbye(
    lb: LocalBatch, tmp_path: Path, weblog: tuple[str, list[dict[str, Any]]]
) -> None:
    truth = _run(lb, tmp_path, "crash", durations={"FASTQC": 60.0, "ALIGN": 900.0, "MERGE": 60.0},
                 weblog_url=weblog[0])  # fmt: skip
    assert truth.run_state == "alive" and truth.end_time is None
    in_flight = [t for t in truth.tasks if t["trace_status"] is None]
    assert in_flight and all(t["abandoned"] and t["status"] in ("SUBMITTED", "RUNNING") for t in in_flight)
    assert truth.abandoned_job_ids == {t["job_id"] for t in in_flight}
    rows = _trace_rows(truth)
    assert {r["status"] for r in rows} == {"COMPLETED"}
    assert not {r["native_id"] for r in rows} & truth.abandoned_job_ids
    log = truth.log_file.read_text()
    assert "Goodbye" not in log and "Session aborted" not in log
    assert all(j in log for j in truth.abandoned_job_ids)  # the submit lines survive the crash
    assert weblog[1][-1]["event"] != "completed"
    jobs = _jobs(lb)
    assert all(jobs[j]["status"] in ACTIVE for j in truth.abandoned_job_ids)


def test_post_abort_submits_are_untracked_and_never_killed(lb: LocalBatch, tmp_path: Path) -> None:
    truth = _run(lb, tmp_path, "post-abort-submit", durations=LONG, resource_labels={"run": "x"})
    assert truth.run_state == "aborted"
    assert truth.abort_cause == "Process `FASTQC (sample_02)` terminated with an error exit status (1)"
    assert truth.untracked_job_ids and not truth.untracked_job_ids & truth.job_ids
    jobs = _jobs(lb)
    assert all(jobs[j]["status"] in ACTIVE for j in truth.untracked_job_ids)
    assert all(truth.work_dir in " ".join(jobs[j]["container"]["command"]) for j in truth.untracked_job_ids)
    # As in nextflow-io/nextflow#7445's log: the submissions are logged after the abort
    # line, but never reach the trace (Nextflow's running queue never held them).
    log = truth.log_file.read_text()
    aborted_at = log.index("Session aborted")
    assert all(log.find(f"job={j};", aborted_at) > aborted_at for j in truth.untracked_job_ids)
    assert not any(j in truth.trace_file.read_text() for j in truth.untracked_job_ids)
    assert truth.task("FASTQC (sample_02)")["status"] == "FAILED"


def test_post_abort_submit_kills_what_was_running_as_aborted(lb: LocalBatch, tmp_path: Path) -> None:
    # A third sample keeps a FASTQC running when the second one fails.
    pipeline = Pipeline(n_tasks=13, durations={"FASTQC": 60.0, "ALIGN": 7200.0, "MERGE": 60.0}, seed=2)
    truth = _run(lb, tmp_path, "post-abort-submit", pipeline=pipeline)
    aborted = [t for t in truth.tasks if t["status"] == "ABORTED"]
    log = truth.log_file.read_text()
    assert aborted and KILLING.search(log).group(1) == str(len(aborted))  # type: ignore[union-attr]
    assert all(t["killed"] for t in aborted) and {t["job_id"] for t in aborted} <= truth.killed_by_nf
    assert all(f"[AWS BATCH] cleanup = terminating job {t['job_id']}" in log for t in aborted)
    assert all(f"[AWS BATCH] cleanup = killing job {t['job_id']}" in log for t in aborted)
    jobs = _jobs(lb)
    assert all(jobs[t["job_id"]]["statusReason"] == "Job killed by NF" for t in aborted)
    rows = {r["native_id"]: r for r in _trace_rows(truth)}
    assert all(rows[t["job_id"]]["status"] == "ABORTED" and rows[t["job_id"]]["exit"] == "-" for t in aborted)
    assert truth.untracked_job_ids


def test_spot_retries_rerun_jobs_under_the_same_id(lb: LocalBatch, tmp_path: Path) -> None:
    truth = _run(lb, tmp_path, "spot-retries")
    assert truth.run_state == "completed" and truth.version == "24.04.4"
    assert truth.spot_retried_job_ids
    jobs = _jobs(lb)
    for job_id in truth.spot_retried_job_ids:
        job = jobs[job_id]
        assert job["status"] == "SUCCEEDED" and len(job["attempts"]) >= 2
        assert job["attempts"][0]["statusReason"].startswith("Host EC2")
    assert all(j["retryStrategy"]["attempts"] == 5 for j in jobs.values())
    assert {t["status"] for t in truth.tasks} == {"COMPLETED"}  # Nextflow never noticed


def test_without_a_batch_handle_duration_and_exit_travel_in_the_command(lb: LocalBatch, tmp_path: Path) -> None:
    pipeline = Pipeline(n_tasks=5, durations=SHORT, seed=5, fail_tasks=("ALIGN (sample_01:2)",))
    nf = SimulatedNextflow(
        lb.client(retries={"total_max_attempts": 1}), launch_dir=tmp_path, pipeline=pipeline,
        clock=lb.clock.now, sleep=lb.advance, poll_interval=30.0,
    )  # fmt: skip
    truth = nf.run()
    assert truth.task("ALIGN (sample_01:2)")["status"] == "FAILED"
    jobs = _jobs(lb)
    cmd = jobs[truth.task("ALIGN (sample_01:2)")["job_id"]]["container"]["command"][-1]
    assert cmd.endswith("| tee .command.log # batchkit-sim: sleep " + cmd.rsplit("sleep ", 1)[1])
    assert cmd.endswith("; exit 1")


def test_log_rotation_and_trace_options(lb: LocalBatch, tmp_path: Path) -> None:
    (tmp_path / ".nextflow.log").write_text("old run\n")
    truth = _run(lb, tmp_path, "healthy", n_tasks=3, trace_file="trace.txt",
                 fields=("task_id", "native_id", "status", "realtime", "workdir"), trace_raw=True, tz="Asia/Tokyo")  # fmt: skip
    assert (tmp_path / ".nextflow.log.1").read_text() == "old run\n"
    assert truth.trace_file == tmp_path / "trace.txt"
    rows = _trace_rows(truth)
    assert list(rows[0]) == ["task_id", "native_id", "status", "realtime", "workdir"]
    assert all(r["realtime"].isdigit() for r in rows)  # raw: milliseconds
    assert truth.log_file.read_text().startswith("Jun-16 00:06:40.000 [main]")  # Tokyo is UTC+9


def test_bad_arguments_are_rejected(lb: LocalBatch, tmp_path: Path) -> None:
    client = lb.client()
    with pytest.raises(ValueError, match="unknown behavior"):
        SimulatedNextflow(client, launch_dir=tmp_path, behavior="25.04")
    with pytest.raises(ValueError, match="not Nextflow trace fields: bogus"):
        SimulatedNextflow(client, launch_dir=tmp_path, fields=("task_id", "bogus"))
    with pytest.raises(ValueError, match="at least 2 samples"):
        SimulatedNextflow(client, launch_dir=tmp_path, behavior="post-abort-submit", pipeline=Pipeline(n_tasks=5))


def test_replay_incident_leaves_abandoned_jobs_running(tmp_path: Path) -> None:
    with replay_incident(launch_dir=tmp_path, n_tasks=20, seed=1) as incident:
        truth = incident.truth
        assert truth.behavior == "24.02" and truth.run_state == "aborted"
        assert "AuthorizerConfigurationException" in (truth.abort_cause or "")
        assert len(truth.abandoned_job_ids) >= 10
        jobs = {j["jobId"]: j for j in incident.batch.jobs()}
        assert all(jobs[j]["status"] in ACTIVE for j in truth.abandoned_job_ids)
        assert incident.endpoint_url == incident.batch.endpoint_url
        assert (incident.launch_dir / ".nextflow.log").exists() and truth.trace_file.exists()
        # reachable over real HTTP: a boto3 client sees the orphans
        seen = incident.batch.client().describe_jobs(jobs=sorted(truth.abandoned_job_ids)[:100])["jobs"]
        assert {j["jobId"] for j in seen} == set(sorted(truth.abandoned_job_ids)[:100])


def test_command_line_runs_against_a_localbatch_server(lb: LocalBatch, tmp_path: Path) -> None:
    code = main([
        "run", "demo.nf", "-name", "tiny_turing", "-with-trace", "t.txt", "-work-dir", "s3://b/w",
        "-launch-dir", str(tmp_path), "--endpoint-url", lb.endpoint_url, "-n-tasks", "5",
        "-poll-interval", "30", "-behavior", "healthy",
    ])  # fmt: skip
    assert code == 0
    log = (tmp_path / ".nextflow.log").read_text()
    assert "Launching `demo.nf` [tiny_turing]" in log and GOODBYE.search(log)
    rows = (tmp_path / "t.txt").read_text().splitlines()
    assert len(rows) == 6 and all("COMPLETED" in r for r in rows[1:])
    assert {j["status"] for j in lb.jobs()} == {"SUCCEEDED"}
    assert main(["run", "x.nf", "-behavior", "nope"]) == 2


def test_each_launch_has_its_own_identity_unless_seeded(lb: LocalBatch, tmp_path: Path) -> None:
    client = lb.client()
    a, b = (SimulatedNextflow(client, launch_dir=tmp_path) for _ in range(2))
    assert a.session_id != b.session_id
    c, d = (SimulatedNextflow(client, launch_dir=tmp_path, seed=9) for _ in range(2))
    assert (c.session_id, c.run_name) == (d.session_id, d.run_name)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", c.session_id)


def test_describe_jobs_is_polled_100_ids_at_a_time(tmp_path: Path) -> None:
    with LocalBatch(manual_clock=True, start_time=T0) as batch:
        batch.create_environment("demo-queue", vcpus=1024)
        client = batch.client(retries={"total_max_attempts": 1})
        sizes: list[int] = []
        client.meta.events.register(
            "provide-client-params.batch.DescribeJobs", lambda params, **_: sizes.append(len(params["jobs"]))
        )
        pipeline = Pipeline(n_tasks=141, durations={"FASTQC": 60.0, "ALIGN": 300.0, "MERGE": 30.0}, jitter=0.1)
        truth = SimulatedNextflow(client, launch_dir=tmp_path, pipeline=pipeline, batch=batch, poll_interval=60.0).run()
        assert truth.run_state == "completed" and len(truth.tasks) == 141
        assert max(sizes) == 100  # 105 ALIGN jobs in flight: one full batch of 100, then the rest
        assert 5 in sizes
        assert len(sizes) <= 2 * 20  # about two calls per poll, never one per task


def test_command_line_against_a_real_time_emulator(tmp_path: Path) -> None:
    with LocalBatch(speed=7200.0) as batch:  # two emulated hours per wall-clock second
        batch.create_environment("demo-queue")
        code = main(["run", "main.nf", "-launch-dir", str(tmp_path), "--endpoint-url", batch.endpoint_url,
                     "-n-tasks", "5", "-poll-interval", "60", "-with-trace"])  # fmt: skip
        assert code == 0
        traces = list(tmp_path.glob("trace-*.txt"))
        assert len(traces) == 1 and len(traces[0].read_text().splitlines()) == 6
        assert {j["status"] for j in batch.jobs()} == {"SUCCEEDED"}


def test_a_lost_submit_answer_leaves_an_untracked_duplicate(lb: LocalBatch, tmp_path: Path) -> None:
    # The request is applied, the answer never arrives; the retry creates a second job.
    lb.faults.add("SubmitJob", "applied-lost", count=1)
    truth = _run(lb, tmp_path, "healthy", n_tasks=5)
    assert truth.run_state == "completed" and len(truth.untracked_job_ids) == 1
    jobs = _jobs(lb)
    (dup,) = truth.untracked_job_ids
    first = truth.tasks[0]
    assert jobs[dup]["container"]["command"] == jobs[first["job_id"]]["container"]["command"]
    text = truth.log_file.read_text() + truth.trace_file.read_text()
    assert dup not in text and first["job_id"] in text


def test_terminate_strategy_aborts_and_kills_the_running_tasks(lb: LocalBatch, tmp_path: Path) -> None:
    pipeline = Pipeline(n_tasks=12, durations=LONG, seed=5, error_strategy="terminate",
                        fail_tasks=("ALIGN (sample_02:1)",))  # fmt: skip
    truth = _run(lb, tmp_path, "healthy", pipeline=pipeline, durations=LONG)
    assert truth.run_state == "aborted"
    assert truth.abort_cause == "Process `ALIGN (sample_02:1)` terminated with an error exit status (1)"
    aborted = {t["job_id"] for t in truth.tasks if t["status"] == "ABORTED"}
    assert aborted and aborted == truth.killed_by_nf and not truth.abandoned_job_ids
    log = truth.log_file.read_text()
    assert f"Killing running tasks ({len(aborted)})" in log
    assert all(f"[AWS BATCH] killing job={j}; response={{}}" in log for j in aborted)
    assert all(_jobs(lb)[j]["status"] == "FAILED" for j in aborted)


def test_a_submit_that_keeps_failing_aborts_the_run(lb: LocalBatch, tmp_path: Path) -> None:
    lb.faults.add("SubmitJob", "server-500")
    truth = _run(lb, tmp_path, "healthy", n_tasks=5)
    assert truth.run_state == "aborted"
    assert (truth.abort_cause or "").startswith("Failed to submit job: FASTQC_sample_01 - Reason: ")
    assert not lb.jobs() and not truth.job_ids
    rows = _trace_rows(truth)
    assert [(r["name"], r["status"], r["native_id"]) for r in rows] == [("FASTQC (sample_01)", "FAILED", "-")]


def test_a_signal_aborts_the_run_as_nextflow_does_and_the_console_shows_it(lb: LocalBatch, tmp_path: Path) -> None:
    """SIGTERM/SIGHUP/a first Ctrl-C abort the session (Nextflow's Session.registerSignalHandlers):
    running tasks are killed and ABORTED; the console shows Nextflow's INFO/WARN lines as they happen."""
    import io

    console = io.StringIO()
    holder: list[SimulatedNextflow] = []
    waits = 0

    def sleep(seconds: float) -> None:
        nonlocal waits
        lb.advance(seconds)
        waits += 1
        if waits == 3:  # a signal arrives while tasks are in flight
            holder[0].signal_abort("SIGTERM")

    nf = SimulatedNextflow(
        lb.client(retries={"total_max_attempts": 1}), launch_dir=tmp_path, batch=lb, sleep=sleep,
        pipeline=Pipeline(n_tasks=12, durations=LONG, seed=5), poll_interval=30.0, console=console,
    )
    holder.append(nf)
    truth = nf.run()
    assert truth.run_state == "aborted" and truth.abort_cause == "SIGTERM"
    aborted = {t["job_id"] for t in truth.tasks if t["status"] == "ABORTED"}
    assert aborted and aborted == truth.killed_by_nf and not truth.abandoned_job_ids
    # Killed (or finished before Nextflow's next poll would have seen it): none left running.
    assert not {j for j in aborted if _jobs(lb)[j]["status"] in ACTIVE}
    assert {r["native_id"] for r in _trace_rows(truth) if r["status"] == "ABORTED"} == aborted
    log = truth.log_file.read_text()
    assert ABORTED.search(log).group(1) == "SIGTERM"  # type: ignore[union-attr]

    lines = console.getvalue().splitlines()
    assert lines[0] == f"N E X T F L O W  ~  version {truth.version}"
    assert LAUNCHING.search(lines[1]).group(2) == truth.run_name  # type: ignore[union-attr]
    assert {m.group(1) for line in lines if (m := SUBMITTED.search(line))} == {t["hash"] for t in truth.tasks
                                                                                if t["job_id"]}
    assert lines[-1] == f"WARN: Killing running tasks ({len(aborted)})"
    assert not any("DEBUG" in line or "[AWS BATCH]" in line for line in lines), "DEBUG stays in the log file"


def test_a_simulated_launch_runs_once(lb: LocalBatch, tmp_path: Path) -> None:
    nf = SimulatedNextflow(lb.client(), launch_dir=tmp_path, pipeline=Pipeline(n_tasks=3, durations=SHORT), batch=lb)
    assert nf.run().run_state == "completed"
    with pytest.raises(RuntimeError, match="already ran"):
        nf.run()


def test_dropped_connections_abort_like_an_sdk_client_exception(lb: LocalBatch, tmp_path: Path) -> None:
    t0 = lb.clock.now()
    lb.faults.add("DescribeJobs", "drop", window=(t0 + 200, t0 + 1200))
    truth = _run(lb, tmp_path, "24.02", durations=LONG)
    assert truth.run_state == "aborted"
    assert (truth.abort_cause or "").startswith("Unable to execute HTTP request: ")
    assert "error [com.amazonaws.SdkClientException]: Unable to execute HTTP request" in truth.log_file.read_text()
    assert truth.abandoned_job_ids and all(_jobs(lb)[j]["status"] in ACTIVE for j in truth.abandoned_job_ids)
