"""``batchkit reconcile``/``kill`` on real launch dirs with zero flags: region, queues, non-AWS runs."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest import real_fixture

from batchkit import cli
from batchkit.nextflow import NextflowRun


def _no_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_REGION", "AWS_DEFAULT_REGION"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class _Listener:
    """A loopback socket that records whether anything connected (an AWS endpoint stand-in)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.mark.parametrize("command", ["reconcile", "kill"])
@pytest.mark.parametrize(
    "files", [["--log", "slurm-sigint-abort.nextflow.log"], ["--trace", "local-aborted-trace.txt"]]
)
def test_a_run_that_did_not_use_aws_batch_asks_aws_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str, files: list[str]
) -> None:
    _no_aws(tmp_path, monkeypatch)
    endpoint = _Listener()
    try:
        argv = [command, files[0], str(real_fixture(files[1])), "--endpoint-url", endpoint.url, "--region", "us-east-1"]
        code = cli.main(argv)
        out = capsys.readouterr().out
        assert code == 0
        assert "did not use AWS Batch" in out and "nothing was asked of AWS" in out
        assert endpoint.connections() == 0  # not one request reached the endpoint
    finally:
        endpoint.sock.close()
    if files[0] == "--log":
        assert "slurm" in out and "ABORTED 3" in out and "aborted (SIGINT)" in out


def test_region_and_queues_come_from_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _no_aws(tmp_path, monkeypatch)
    (tmp_path / ".nextflow.log").write_bytes(real_fixture("awsbatch-sigint-24.10.5.nextflow.log").read_bytes())
    (tmp_path / "nextflow.config").write_text("process { executor = 'awsbatch'\n queue = 'nf-queue' }\n")
    args = cli.build_parser().parse_args(["reconcile", str(tmp_path)])
    run = cli.load_run(args)
    client = cli.make_client(args, run)
    try:
        assert client.region == "eu-north-1"  # the log's AwsOptions line, not "No AWS region"
    finally:
        client.close()
    err = capsys.readouterr().err
    assert "region eu-north-1 (from log" in err
    assert "nf-queue (from" in err and "nextflow.config" in err
    assert run.queues == ["nf-queue"]
    # every flag still overrides
    args = cli.build_parser().parse_args(["reconcile", str(tmp_path), "--region", "us-west-1"])
    flagged = cli.make_client(args, run)
    try:
        assert flagged.region == "us-west-1"
    finally:
        flagged.close()


def test_an_unproven_year_is_said_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".nextflow.log").write_bytes(real_fixture("awsbatch-sigint-24.10.5.nextflow.log").read_bytes())
    args = cli.build_parser().parse_args(["reconcile", str(tmp_path)])
    run = cli.load_run(args)
    assert isinstance(run, NextflowRun) and not run.year_proven
    assert "the year 2025 of the log's times is a guess" in capsys.readouterr().err
