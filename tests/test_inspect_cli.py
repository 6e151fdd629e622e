"""``batchkit inspect LAUNCH_DIR TASK_NAME|JOB_ID`` on the replayed incident, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchkit.cli import main
from batchkit.sim.nextflow import Incident, replay_incident


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Incident]:
    with replay_incident(launch_dir=tmp_path_factory.mktemp("insp") / "launch", n_tasks=20, seed=2) as inc:
        yield inc


def _urls(inc: Incident) -> list[str]:
    u = inc.endpoint_urls
    return ["--endpoint-url", u["batch"], "--logs-endpoint-url", u["logs"], "--s3-endpoint-url", u["s3"]]


def test_inspect_json_shows_attempts_log_and_work_dir(incident: Incident, capsys: pytest.CaptureFixture[str]) -> None:
    jid = sorted(incident.truth.abandoned_job_ids)[0]
    code = main(["inspect", str(incident.launch_dir), jid, "--format", "json", "--lines", "2", *_urls(incident)])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["job_id"] == jid and data["job_status"] == "RUNNING"
    assert data["attempts"][-1]["running"] is True
    assert data["log"]["stream"] == data["attempts"][-1]["log_stream"]
    assert 0 < len(data["log"]["lines"]) <= 2
    assert data["files"][".exitcode"]["exists"] is False
    assert data["files"][".command.begin"]["exists"] is True


def test_inspect_text_by_task_name_reads_endpoints_from_the_environment(
    incident: Incident, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    done = next(t for t in incident.truth.tasks if t["status"] == "COMPLETED")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", incident.endpoint_urls["logs"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", incident.endpoint_urls["s3"])
    code = main(["inspect", str(incident.launch_dir), done["name"], "--endpoint-url", incident.endpoint_url])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"== {done['name']}" in out.out
    assert "work dir says exit 0" in out.out
    assert "attempt 1: exit 0" in out.out


def test_inspect_html_export_is_a_standalone_escaped_page(incident: Incident, capsys: pytest.CaptureFixture[str]) -> None:
    task = incident.truth.tasks[0]
    code = main(["inspect", str(incident.launch_dir), task["hash"], "--format", "html", *_urls(incident)])
    page = capsys.readouterr().out
    assert code == 0
    assert page.startswith("<!DOCTYPE html>") and task["name"] in page


def test_unknown_target_and_missing_dir_are_one_line(incident: Incident, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["inspect", str(incident.launch_dir), "NO SUCH TASK", *_urls(incident)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "NO SUCH TASK" in err
    code = main(["inspect", str(tmp_path / "nope"), "x", *_urls(incident)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "launch directory" in err
    code = main(["inspect", str(incident.launch_dir), "x", "--lines", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1


def test_reconcile_workdir_explains_a_vanished_job(incident: Incident, capsys: pytest.CaptureFixture[str]) -> None:
    from batchkit.sim._nf_workdir import WorkdirWriter

    jid = sorted(incident.truth.abandoned_job_ids)[-1]
    task = next(t for t in incident.truth.tasks if t["job_id"] == jid)
    WorkdirWriter(incident.batch.backdrop.client("s3"), incident.truth.work_dir).finished(
        task["workdir"], name=task["name"], exit_code=0)
    incident.batch.forget(jid)
    base = ["reconcile", str(incident.launch_dir), "--endpoint-url", incident.endpoint_url, "--format", "json"]
    assert main(base) == 3
    plain = {r["native_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert main([*base, "--workdir", "--s3-endpoint-url", incident.endpoint_urls["s3"]]) == 3
    rows = {r["native_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[jid]["verdict"] == "vanished" and "work dir says exit 0" in rows[jid]["reason"]
    assert "work dir" not in plain[jid]["reason"]
    assert [r["verdict"] for r in rows.values()] == [r["verdict"] for r in plain.values()]
    assert [r["killable"] for r in rows.values()] == [r["killable"] for r in plain.values()]


def test_deadline_is_the_whole_commands_while_batch_answers_500_and_s3_is_unreachable(
    incident: Incident, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inspect --deadline 3` while LocalBatch answers every call with an injected HTTP 500 and
    the S3 endpoint is a loopback port nobody listens on. DescribeJobs, ListObjectsV2 and one
    GetObject per work-dir file would each retry for 3 s if the deadline were per call; it is
    the whole command's: it returns by it, shows what it read (Nextflow's view), says so in
    one error line and exits 1 (AWS did not answer before --deadline)."""
    import socket
    import time

    done = next(t for t in incident.truth.tasks if t["status"] == "COMPLETED")
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    rule = incident.batch.faults.add(None, "server-500", rate=1.0)
    try:
        t0 = time.monotonic()
        code = main(["inspect", str(incident.launch_dir), done["name"], "--deadline", "3",
                     "--endpoint-url", incident.endpoint_urls["batch"],
                     "--logs-endpoint-url", incident.endpoint_urls["logs"], "--s3-endpoint-url", closed])
        took = time.monotonic() - t0
    finally:
        incident.batch.faults.remove(rule)
    out = capsys.readouterr()
    assert incident.batch.faults.counts.get(("DescribeJobs", "server-500"), 0) >= 1
    assert took < 6.0, f"{took:.1f} s: --deadline bounds each call, not the command"
    assert code == 1, out.err
    [line] = out.err.splitlines()
    assert line.startswith("batchkit inspect: error: stopped at the 3 s deadline"), line
    assert "Traceback" not in out.err
    assert f"== {done['name']}" in out.out  # Nextflow's side is still shown
    # each piece not read is named in the output: Batch's answer, the work dir's listing and files
    assert f"! DescribeJobs for {done['job_id']} kept failing" in out.out
    assert "s3:ListBucket" in out.out and ".exitcode: ! S3 s3:GetObject" in out.out


def test_reconcile_workdir_reads_stop_at_the_commands_deadline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`reconcile --workdir --deadline 3` with four vanished jobs and an S3 endpoint nobody
    listens on: the witness's reads share the command's deadline (up to 8 GETs would each
    retry for 3 s if it were per read). The verdicts stand; the reasons say the work dir
    could not be read."""
    import socket
    import time

    with replay_incident(launch_dir=tmp_path / "launch", n_tasks=20, seed=2) as inc:
        gone = sorted(inc.truth.abandoned_job_ids)[:4]
        for jid in gone:
            inc.batch.forget(jid)
        with socket.socket() as probe:  # a loopback port nobody listens on
            probe.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
        t0 = time.monotonic()
        code = main(["reconcile", str(inc.launch_dir), "--endpoint-url", inc.endpoint_url, "--format", "json",
                     "--deadline", "3", "--workdir", "--s3-endpoint-url", closed])
        took = time.monotonic() - t0
    out = capsys.readouterr()
    assert took < 6.0, f"{took:.1f} s: each work-dir read had its own --deadline"
    assert code == 3, out.err
    rows = {r["native_id"]: r for r in json.loads(out.out)}
    for jid in gone:
        assert rows[jid]["verdict"] == "vanished" and "work dir unreadable" in rows[jid]["reason"], rows[jid]
