"""The run doctor: each rule with inputs it should and should not fire on.

Pure rules are fed hand-written versions, configs and log lines; the account rules
run through a real BatchClient over HTTP against LocalBatch.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import real_fixture

from batchkit._nfconfig import NfConfig, read_config
from batchkit.doctor import (
    EXIT_ERROR_FINDING,
    EXIT_OK,
    Finding,
    Version,
    account_findings,
    compute_environment_findings,
    config_findings,
    doctor,
    exit_code,
    format_findings,
    is_aws_batch_rule,
    log_facts,
    main,
    queue_health_findings,
    run_findings,
    runnable_findings,
    submit_rate,
    version_findings,
)
from batchkit.doctor import VERSION_RULES as RULE_TABLE

REAL_LOG = "slurm-sigint-abort.nextflow.log"


def rules(findings: list[Finding]) -> dict[str, Finding]:
    return {f.rule: f for f in findings}


def cfg(tmp_path: Path, text: str, **kwargs: Any) -> NfConfig:
    path = tmp_path / "nextflow.config"
    path.write_text(text)
    return read_config([path], **kwargs)


# --- versions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("19.12.0-edge", (19, 12, 0, "edge", None)),
        ("24.10.2", (24, 10, 2, "stable", None)),
        ("24.04.4", (24, 4, 4, "stable", None)),
        ("25.04.0", (25, 4, 0, "stable", None)),
        ("24.12.0-edge", (24, 12, 0, "edge", None)),
        ("23.10.1-SNAPSHOT", (23, 10, 1, "snapshot", None)),
        ("22.04.0.5697", (22, 4, 0, "stable", 5697)),
        ("v24.04.0", (24, 4, 0, "stable", None)),
        ("20.07.0-RC1", (20, 7, 0, "rc", None)),
    ],
)
def test_version_parse(text: str, parts: tuple[Any, ...]) -> None:
    v = Version.parse(text)
    assert v is not None
    assert (v.year, v.month, v.patch, v.kind, v.build) == parts
    assert str(v) == text


@pytest.mark.parametrize("text", [None, "", "latest", "twenty.four", "24"])
def test_version_parse_rejects(text: str | None) -> None:
    assert Version.parse(text) is None


def test_version_order() -> None:
    ordered = [
        "19.12.0-edge", "22.04.0", "23.10.1-SNAPSHOT", "23.10.1", "24.03.0-edge", "24.04.0-edge",
        "24.04.0", "24.04.4", "24.10.2-SNAPSHOT", "24.10.2", "24.11.0-edge", "24.12.0-SNAPSHOT",
        "24.12.0-edge", "25.04.0",
    ]  # fmt: skip
    versions = [Version.parse(t) for t in ordered]
    assert all(v is not None for v in versions)
    assert sorted(versions, key=lambda v: v.key) == versions  # type: ignore[union-attr]
    assert Version.parse("20.07.0-RC1") < Version.parse("20.07.0")  # type: ignore[operator]
    assert Version.parse("23.10.1-SNAPSHOT") < Version.parse("23.10.1-edge")  # type: ignore[operator]
    # the build number of old launchers is not part of the order
    assert Version.parse("22.04.0.5697") == Version.parse("22.04.0")


# --- version rules -------------------------------------------------------------------------------

VERSION_RULES = [
    # rule, versions it fires on, versions it must not fire on
    ("nf-no-500-retry", ["19.12.0-edge", "23.10.1", "23.10.1-SNAPSHOT", "24.02.0-edge"], ["24.03.0-edge", "24.04.4", "25.04.0"]),
    ("nf-null-describe-crash", ["24.04.4", "24.10.1", "24.10.2-SNAPSHOT"], ["24.10.2", "24.11.0-edge", "25.04.0"]),
    ("nf-status-check-orphans", ["24.02.0-edge", "24.10.2", "24.12.0-SNAPSHOT"], ["24.12.0-edge", "25.04.0", "25.10.0"]),
    ("nf-spot-retry-default", ["22.04.0.5697", "24.04.4", "24.07.0-edge"], ["24.08.0-edge", "24.10.2", "25.04.0"]),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "fires", "quiet"), VERSION_RULES)
def test_version_rule(rule: str, fires: list[str], quiet: list[str]) -> None:
    for v in fires:
        found = rules(version_findings(v, "log:2"))
        assert rule in found, v
        assert found[rule].evidence == "log:2"
        assert found[rule].severity == "warning"
        assert v in found[rule].title
    for v in quiet:
        assert rule not in rules(version_findings(v, "log:2")), v


def test_status_check_rule_names_the_incident() -> None:
    f = rules(version_findings("24.02.0-edge", "log:2"))["nf-status-check-orphans"]
    assert f.source == "nextflow-io/nextflow#5516"
    assert "24.12" in f.advice


def test_submit_after_abort_fires_for_every_version() -> None:
    # nextflow-io/nextflow#7445: fixed by #7482 (Aug 2026) in a release we cannot name.
    for v in ("19.12.0-edge", "24.04.4", "25.10.0", "26.04.0"):
        assert rules(version_findings(v, "log:2"))["nf-submit-after-abort"].severity == "warning"
    for v in ("26.09.0-edge", "26.10.0"):
        assert rules(version_findings(v, "log:2"))["nf-submit-after-abort"].severity == "info"


def test_unknown_version_is_said_not_guessed() -> None:
    found = version_findings(None, "/x/.nextflow.log")
    assert [f.rule for f in found] == ["nf-version-unknown"]
    assert found[0].severity == "info"
    assert rules(version_findings("latest", "x"))["nf-version-unknown"].title.endswith("(latest)")


def test_spot_default_depends_on_the_config(tmp_path: Path) -> None:
    zero = cfg(tmp_path, "aws.batch.maxSpotAttempts = 0\n")
    got = rules(version_findings("24.04.4", "log:2", config=zero))
    # nextflow-io/nextflow#5330: before 24.08 an explicit 0 is ignored (Groovy truth)
    assert "nf-spot-retry-default" not in got
    assert got["nf-spot-zero-ignored"].evidence.startswith(f"{tmp_path / 'nextflow.config'}:1")
    assert "-1" in got["nf-spot-zero-ignored"].advice
    assert "nf-spot-zero-ignored" not in rules(version_findings("24.10.0", "log:2", config=zero))
    minus = cfg(tmp_path, "aws { batch { maxSpotAttempts = -1 } }\n")
    assert not {"nf-spot-retry-default", "nf-spot-zero-ignored"} & set(rules(version_findings("24.04.4", "l", config=minus)))
    unset = cfg(tmp_path, "aws.region = 'eu-west-1'\n")
    assert "nf-spot-retry-default" in rules(version_findings("24.04.4", "l", config=unset))
    unknown = cfg(tmp_path, "aws.batch.maxSpotAttempts = params.spot\n")
    f = rules(version_findings("24.04.4", "l", config=unknown))["nf-spot-retry-default"]
    assert "params.spot" in f.evidence
    assert "unreadable config" in f.title


def test_weblog_plugin_rule(tmp_path: Path) -> None:
    on = cfg(tmp_path, "weblog { enabled = true; url = 'http://127.0.0.1:9/' }\n")
    assert "nf-weblog-plugin" not in rules(version_findings("24.10.0", "l", config=on))
    assert rules(version_findings("25.04.0", "l", config=on))["nf-weblog-plugin"].severity == "info"
    assert rules(version_findings("26.10.0", "l", config=on))["nf-weblog-plugin"].severity == "warning"
    declared = cfg(tmp_path, "weblog.enabled = true\nplugins { id 'nf-weblog@1.2.0' }\n")
    assert "nf-weblog-plugin" not in rules(version_findings("26.10.0", "l", config=declared))
    off = cfg(tmp_path, "trace.enabled = true\n")
    assert "nf-weblog-plugin" not in rules(version_findings("25.04.0", "l", config=off))
    flag = read_config([], cli_args=("nextflow", "run", "x", "-with-weblog", "http://h/"))
    f = rules(version_findings("25.04.0", "l", config=flag))["nf-weblog-plugin"]
    assert "-with-weblog" in f.evidence


# --- config rules --------------------------------------------------------------------------------


def test_spot_retries_setting(tmp_path: Path) -> None:
    assert rules(config_findings(cfg(tmp_path, "aws.batch.maxSpotAttempts = 3\n")))["cfg-spot-retries"].evidence == (
        f"{tmp_path / 'nextflow.config'}:1"
    )
    for text in ("aws.batch.maxSpotAttempts = 0\n", "aws.batch.maxSpotAttempts = -1\n", "aws.region = 'x'\n"):
        assert "cfg-spot-retries" not in rules(config_findings(cfg(tmp_path, text))), text


def test_transfer_attempts_setting(tmp_path: Path) -> None:
    assert "cfg-transfer-attempts" in rules(config_findings(cfg(tmp_path, "aws.region = 'x'\n")))
    assert "cfg-transfer-attempts" in rules(config_findings(cfg(tmp_path, "aws.batch.maxTransferAttempts = 1\n")))
    assert "cfg-transfer-attempts" not in rules(config_findings(cfg(tmp_path, "aws.batch.maxTransferAttempts = 3\n")))


def test_retry_mode_setting(tmp_path: Path) -> None:
    bad = rules(config_findings(cfg(tmp_path, "aws { batch { retryMode = 'aggressive' } }\n")))["cfg-retry-mode"]
    assert bad.severity == "warning" and "aggressive" in bad.title
    for text in ("aws.batch.retryMode = 'standard'\n", "aws.batch.retryMode = 'built-in'\n", "aws.region = 'x'\n"):
        assert "cfg-retry-mode" not in rules(config_findings(cfg(tmp_path, text))), text


@pytest.mark.parametrize(
    ("text", "rate"),
    [("10sec", 10.0), ("10 sec", 10.0), ("50/2min", 50 / 120), ("10/1s", 10.0), ("1/5 min", 1 / 300), ("fast", None), ("10/0s", None)],
)
def test_submit_rate(text: str, rate: float | None) -> None:
    got = submit_rate(text)
    assert got == pytest.approx(rate) if rate is not None else got is None


def test_submit_rate_setting(tmp_path: Path) -> None:
    assert "cfg-no-submit-rate" in rules(config_findings(cfg(tmp_path, "aws.region = 'x'\n")))
    high = rules(config_findings(cfg(tmp_path, "executor.submitRateLimit = '100/1s'\n")))
    assert high["cfg-submit-rate-high"].severity == "warning"
    ok = rules(config_findings(cfg(tmp_path, "executor { $awsbatch { submitRateLimit = '20 sec' } }\n")))
    assert not {"cfg-no-submit-rate", "cfg-submit-rate-high"} & set(ok)
    odd = rules(config_findings(cfg(tmp_path, "executor.submitRateLimit = 'fast'\n")))
    assert odd["cfg-undetermined"].evidence == f"{tmp_path / 'nextflow.config'}:1"


def test_resource_labels_setting(tmp_path: Path) -> None:
    assert "cfg-no-resource-labels" in rules(config_findings(cfg(tmp_path, "aws.region = 'x'\n")))
    for text in (
        "process.resourceLabels = [run: 'x']\n",
        "process { withName: 'FOO' { resourceLabels = [a: 'b'] } }\n",
        "process.resourceLabels = { [run: workflow.runName] }\n",
    ):
        assert "cfg-no-resource-labels" not in rules(config_findings(cfg(tmp_path, text))), text


def test_trace_and_weblog_off(tmp_path: Path) -> None:
    off = rules(config_findings(cfg(tmp_path, "aws.region = 'x'\n")))
    assert {"cfg-trace-off", "cfg-weblog-off"} <= set(off)
    assert "unless the command line" in off["cfg-trace-off"].title
    on = rules(config_findings(cfg(tmp_path, "trace.enabled = true\nweblog { enabled = true }\n")))
    assert not {"cfg-trace-off", "cfg-weblog-off"} & set(on)
    flags = read_config([], cli_args=("nextflow", "run", "x", "-with-trace", "-with-weblog", "http://h/"))
    assert not {"cfg-trace-off", "cfg-weblog-off"} & set(rules(config_findings(flags)))
    no_flags = rules(config_findings(read_config([], cli_args=("nextflow", "run", "x"))))
    assert "unless" not in no_flags["cfg-trace-off"].title


def test_unreadable_settings_are_reported_not_guessed(tmp_path: Path) -> None:
    got = config_findings(cfg(tmp_path, "aws.batch.maxSpotAttempts = params.spot\ntrace.enabled = params.trace\n"))
    undetermined = [f for f in got if f.rule == "cfg-undetermined"]
    assert {f.title for f in undetermined} == {
        "could not determine aws.batch.maxSpotAttempts",
        "could not determine trace.enabled",
    }
    assert all(f.severity == "info" for f in undetermined)
    assert "cfg-spot-retries" not in rules(got) and "cfg-trace-off" not in rules(got)


def test_missing_include_is_one_finding_and_silences_unset_rules(tmp_path: Path) -> None:
    got = config_findings(cfg(tmp_path, "includeConfig 'conf/aws.config'\n"))
    unreadable = [f for f in got if f.rule == "cfg-unreadable"]
    assert len(unreadable) == 1
    assert unreadable[0].evidence.startswith(f"{tmp_path / 'nextflow.config'}:1")
    # an unreadable include could set any of these: no "not set" advice on a guess
    assert not {"cfg-no-resource-labels", "cfg-trace-off", "cfg-spot-retries"} & set(rules(got))


def test_unschedulable_option_advice(tmp_path: Path) -> None:
    unset = cfg(tmp_path, "aws.region = 'x'\n")
    assert "cfg-unschedulable-wait" in rules(config_findings(unset, version="25.04.0"))
    assert "cfg-unschedulable-wait" not in rules(config_findings(unset, version="24.10.2"))
    on = cfg(tmp_path, "aws.batch.terminateUnschedulableJobs = true\n")
    assert "cfg-unschedulable-wait" not in rules(config_findings(on, version="25.04.0"))


# --- the log -------------------------------------------------------------------------------------


def test_log_facts_of_the_real_log() -> None:
    path = real_fixture(REAL_LOG)
    facts = log_facts(path.read_text().splitlines(), str(path))
    assert (facts.version, facts.version_line) == ("19.12.0-edge", 2)
    assert facts.cli_args[:3] == ("nextflow", "run", "singlecell/cellranger/cellranger.nf")
    assert facts.profiles == ("standard",)
    assert facts.config_files == (
        "/home/sravisha/projects/NextFlow/nextflow.config",
        "/home/sravisha/projects/NextFlow/singlecell/cellranger/params.config",
    )
    assert facts.launch_dir == "/home/sravisha/projects/NextFlow"
    assert (facts.abort_cause, facts.abort_line) == ("SIGINT", 655)
    assert facts.on_batch is False and facts.reaper_line is None


@pytest.fixture
def real_launch_dir(tmp_path: Path) -> Path:
    launch = tmp_path / "NextFlow"
    launch.mkdir()
    shutil.copy(real_fixture(REAL_LOG), launch / ".nextflow.log")
    return launch


def test_no_aws_batch_rule_fires_on_the_real_slurm_log(real_launch_dir: Path) -> None:
    found = rules(doctor(real_launch_dir, env={"HOME": str(real_launch_dir / "home")}))
    # a SLURM run (19.12.0-edge) stopped by SIGINT: its version has every AWS Batch bug, but
    # it never used AWS Batch, so none of them applies; one finding says so
    assert not [r for r, f in found.items() if is_aws_batch_rule(f)], sorted(found)
    assert found["nf-not-aws-batch"].severity == "info"
    assert "local, slurm" in found["nf-not-aws-batch"].title
    assert found["nf-not-aws-batch"].evidence.startswith(f"{real_launch_dir / '.nextflow.log'}:2")
    assert all(f.severity != "error" for f in found.values())
    # the run read two config files that are not here: said, not guessed
    unreadable = [f for f in doctor(real_launch_dir, env={"HOME": "/nonexistent"}) if f.rule == "cfg-unreadable"]
    assert {f.evidence for f in unreadable} == {
        str(real_launch_dir / "nextflow.config"),
        str(real_launch_dir / "singlecell" / "cellranger" / "params.config"),
    }


def test_every_pre_24_version_rule_fires_on_an_aws_batch_log(tmp_path: Path) -> None:
    launch = launch_with_log(tmp_path, "19.12.0-edge", "")
    found = rules(doctor(launch, env={"HOME": str(tmp_path / "home")}))
    for rule in ("nf-no-500-retry", "nf-null-describe-crash", "nf-status-check-orphans",
                 "nf-spot-retry-default", "nf-submit-after-abort"):  # fmt: skip
        assert rule in found, rule
        assert found[rule].evidence.startswith(f"{launch / '.nextflow.log'}:2")
    assert "nf-not-aws-batch" not in found


@pytest.mark.parametrize(
    "name", ["slurm-sigint-abort.nextflow.log", "failed-launch-19.01.0.nextflow.log", "awsbatch-sigint-24.10.5.nextflow.log"]
)
def test_aws_batch_rules_fire_only_on_the_real_aws_batch_log(tmp_path: Path, name: str) -> None:
    shutil.copyfile(real_fixture(name), tmp_path / ".nextflow.log")
    found = doctor(tmp_path, env={"HOME": str(tmp_path / "home")})
    aws = [f.rule for f in found if is_aws_batch_rule(f)]
    if name.startswith("awsbatch"):
        # 24.10.5 on AWS Batch: the status-check orphans bug (fixed in 24.12) and #7445 apply
        assert "nf-status-check-orphans" in aws and "nf-submit-after-abort" in aws
        assert "nf-no-500-retry" not in aws and "nf-null-describe-crash" not in aws
    else:
        assert aws == []
    if name.startswith("failed-launch"):
        # no executor line: the launch failed before any; the doctor says it could not tell
        assert "nf-executor-unknown" in {f.rule for f in found}


def test_rules_are_data() -> None:
    assert [r.id for r in RULE_TABLE] == [
        "nf-no-500-retry", "nf-null-describe-crash", "nf-status-check-orphans", "nf-submit-after-abort",
    ]  # fmt: skip
    for rule in RULE_TABLE:
        assert rule.source and rule.advice and rule.title and rule.severity in ("error", "warning", "info")
        assert rule.affected.startswith("< ")
    assert RULE_TABLE[1].affected == "< 24.10.2"


def test_config_files_named_in_the_log_are_found_in_the_launch_dir(real_launch_dir: Path) -> None:
    (real_launch_dir / "nextflow.config").write_text("aws.batch.maxSpotAttempts = 0\n")
    params = real_launch_dir / "singlecell" / "cellranger" / "params.config"
    params.parent.mkdir(parents=True)
    params.write_text("trace { enabled = true }\nprocess.resourceLabels = [a: 'b']\n")
    # this machine's home config was not part of that run: the log lists what it read
    home = real_launch_dir / "home" / ".nextflow" / "config"
    home.parent.mkdir(parents=True)
    home.write_text("aws.batch.maxSpotAttempts = 7\n")
    found = rules(doctor(real_launch_dir, env={"HOME": str(real_launch_dir / "home")}))
    assert "cfg-spot-retries" not in found
    assert "cfg-unreadable" not in found
    # params.config turned the trace on: read from its place under the launch dir
    assert "cfg-trace-off" not in found
    # the run was on SLURM: maxSpotAttempts = 0 is not judged (an AWS Batch setting)
    assert "nf-spot-zero-ignored" not in found and "nf-not-aws-batch" in found


BATCH_LOG = """\
Mar-10 10:00:00.000 [main] DEBUG nextflow.cli.Launcher - $> nextflow run main.nf -profile awsbatch
Mar-10 10:00:00.100 [main] INFO  nextflow.cli.CmdRun - N E X T F L O W  ~  version {version}
Mar-10 10:00:00.200 [main] DEBUG nextflow.config.ConfigBuilder - Applying config profile: `awsbatch`
Mar-10 10:00:01.000 [main] DEBUG nextflow.Session - Run name: tiny_turing
Mar-10 10:00:02.000 [AWSBatch-executor-1] DEBUG n.c.aws.batch.AwsBatchTaskHandler - [AWS BATCH] Process `FOO (1)` submitted > job=70af3d53-0000-0000-0000-000000000001; work-dir=s3://b/work/2e/8bJ
{tail}"""
ABORT = (
    "Mar-10 10:05:00.000 [Task monitor] DEBUG nextflow.Session - Session aborted -- Cause: "
    "Internal server error (Service: AWSBatch; Status Code: 500; Error Code: AuthorizerConfigurationException)\n"
)
REAPER = (
    "Mar-10 10:05:09.000 [main] WARN  n.c.aws.batch.AwsBatchExecutor - [AWS BATCH] Exiting before jobs "
    "reaper thread pool complete -- Some jobs may not be terminated\n"
)


def launch_with_log(tmp_path: Path, version: str, tail: str) -> Path:
    (tmp_path / ".nextflow.log").write_text(BATCH_LOG.format(version=version, tail=tail))
    return tmp_path


def test_an_aborted_batch_run_turns_the_known_bugs_into_errors(tmp_path: Path) -> None:
    launch = launch_with_log(tmp_path, "24.04.4", ABORT + REAPER)
    found = rules(doctor(launch, env={"HOME": str(tmp_path / "h")}))
    orphans = found["nf-status-check-orphans"]
    assert orphans.severity == "error"
    assert orphans.evidence == f"{launch / '.nextflow.log'}:2; abort at {launch / '.nextflow.log'}:6"
    assert "AuthorizerConfigurationException" in orphans.title
    assert found["nf-submit-after-abort"].severity == "error"
    assert found["nf-reaper-gave-up"].evidence == f"{launch / '.nextflow.log'}:7"
    assert found["nf-reaper-gave-up"].source == "nextflow-io/nextflow#2169"
    assert exit_code(list(found.values())) == EXIT_ERROR_FINDING


def test_without_config_lines_in_the_log_the_usual_places_are_read(tmp_path: Path) -> None:
    launch = launch_with_log(tmp_path, "24.10.2", "")
    home = tmp_path / "nxf"
    home.mkdir()
    (home / "config").write_text("aws { batch { maxSpotAttempts = 3 } }\n")
    (launch / "nextflow.config").write_text("executor.submitRateLimit = '10/1s'\n")
    found = rules(doctor(launch, env={"NXF_HOME": str(home)}))
    assert found["cfg-spot-retries"].evidence == f"{home / 'config'}:1"
    assert "cfg-no-submit-rate" not in found and "cfg-unreadable" not in found


def test_jobs_submitted_after_the_abort_are_named(tmp_path: Path) -> None:
    late = (
        "Mar-10 10:05:00.500 [AWSBatch-executor-3] DEBUG n.c.aws.batch.AwsBatchTaskHandler - [AWS BATCH] "
        "Process `FOO (2)` submitted > job=70af3d53-0000-0000-0000-000000000002; work-dir=s3://b/work/aa/bb\n"
    )
    launch = launch_with_log(tmp_path, "25.10.0", ABORT + late)
    f = rules(doctor(launch, env={"HOME": str(tmp_path / "h")}))["nf-jobs-after-abort"]
    assert f.severity == "error" and f.title.startswith("1 job(s)")
    assert f"{launch / '.nextflow.log'}:7 job=70af3d53-0000-0000-0000-000000000002" in f.evidence
    assert f.source == "nextflow-io/nextflow#7445"
    # the submission before the abort (line 5) is not one of them
    assert "000000000001" not in f.evidence
    quiet = rules(doctor(launch_with_log(tmp_path, "25.10.0", ABORT), env={"HOME": str(tmp_path / "h")}))
    assert "nf-jobs-after-abort" not in quiet


def test_a_healthy_batch_run_keeps_them_warnings(tmp_path: Path) -> None:
    launch = launch_with_log(tmp_path, "24.04.4", "")
    found = rules(doctor(launch, env={"HOME": str(tmp_path / "h")}))
    assert found["nf-status-check-orphans"].severity == "warning"
    assert "nf-reaper-gave-up" not in found
    fixed = rules(doctor(launch_with_log(tmp_path, "25.04.0", ABORT), env={"HOME": str(tmp_path / "h")}))
    assert "nf-status-check-orphans" not in fixed
    assert fixed["nf-submit-after-abort"].severity == "error"


def test_run_findings_without_a_log_change_nothing() -> None:
    from batchkit.doctor import LogFacts

    given = version_findings("24.04.4", "x")
    assert run_findings(LogFacts(), given) == given


# --- output and CLI ------------------------------------------------------------------------------


def test_format_and_exit_code() -> None:
    warn = Finding("r-w", "warning", "a warning", "f:1", "do this", "src#1")
    err = Finding("r-e", "error", "an error", "f:2", "do that", "src#2")
    text = format_findings([err, warn])
    assert "ERROR   an error  [r-e]" in text and "evidence: f:2" in text and "source:   src#1" in text
    assert text.rstrip().endswith("1 error(s), 1 warning(s), 0 info")
    assert "\x1b[" in format_findings([err], color=True) and "\x1b[" not in text
    assert format_findings([]).startswith("No findings")
    assert exit_code([warn, Finding("i", "info", "t", "e", "a", "s")]) == EXIT_OK
    assert exit_code([warn, err]) == EXIT_ERROR_FINDING
    assert exit_code([]) == EXIT_OK


def test_main_offline_on_the_real_log(real_launch_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(real_launch_dir / "home"))
    monkeypatch.delenv("NXF_HOME", raising=False)
    assert main([str(real_launch_dir), "--offline"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "[nf-not-aws-batch]" in out and "nextflow-io/nextflow#4709" not in out
    assert main([str(real_launch_dir), "--offline", "--format", "json"]) == EXIT_OK
    parsed = json.loads(capsys.readouterr().out)
    assert {"rule", "severity", "title", "evidence", "advice", "source"} == set(parsed[0])


def test_main_bad_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope"), "--offline"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err and "Traceback" not in err


def _no_aws_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_REGION", "AWS_DEFAULT_REGION", "NXF_HOME"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize("region", [["--region", "us-east-1"], []])
def test_main_without_aws_configuration_gives_every_offline_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, region: list[str]
) -> None:
    """No credentials (and, second case, no region anywhere): the log and config findings, one skip line."""
    _no_aws_configuration(tmp_path, monkeypatch)
    (tmp_path / ".nextflow.log").write_text(BATCH_LOG.format(version="24.04.4", tail=ABORT + REAPER))
    offline = doctor(tmp_path)
    code = main([str(tmp_path), *region, "--queue", "q"])
    captured = capsys.readouterr()
    assert code == exit_code(offline) == EXIT_ERROR_FINDING  # from the findings, not the account
    for f in offline:
        assert f"[{f.rule}]" in captured.out
    assert len(offline) >= 6
    assert captured.err.count("\n") == 1 and "account checks skipped" in captured.err
    assert ("credentials" in captured.err.lower()) if region else ("region" in captured.err.lower())
    assert "Traceback" not in captured.err


def test_main_takes_the_region_from_the_log(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _no_aws_configuration(tmp_path, monkeypatch)
    shutil.copyfile(real_fixture("awsbatch-sigint-24.10.5.nextflow.log"), tmp_path / ".nextflow.log")
    code = main([str(tmp_path)])
    err = capsys.readouterr().err
    # the region came from the log's AwsOptions line: only the credentials are missing
    assert "account checks skipped" in err and "region" not in err.lower().replace("account checks", "")
    assert code in (EXIT_OK, EXIT_ERROR_FINDING)


def test_main_on_a_slurm_run_asks_aws_nothing(real_launch_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _no_aws_configuration(real_launch_dir, monkeypatch)
    assert main([str(real_launch_dir)]) == EXIT_OK
    captured = capsys.readouterr()
    assert "[nf-not-aws-batch]" in captured.out
    assert "did not use AWS Batch" in captured.err


# --- account rules on LocalBatch -----------------------------------------------------------------


@pytest.fixture(scope="module")
def lb() -> Iterator[Any]:
    from batchkit.sim import LocalBatch

    with LocalBatch(manual_clock=True) as emulator:
        yield emulator


@pytest.fixture
def client(lb: Any) -> Iterator[Any]:
    from batchkit.client import BatchClient

    with BatchClient(lb.client()) as c:
        yield c


def emulator_now(lb: Any) -> datetime:
    return datetime.fromtimestamp(lb.clock.now(), tz=UTC)


def submit(lb: Any, queue: str, vcpus: int, name: str = "job") -> str:
    answer = lb.client().submit_job(
        jobName=name,
        jobQueue=queue,
        jobDefinition="nf-demo",
        containerOverrides={"resourceRequirements": [{"type": "VCPU", "value": str(vcpus)}, {"type": "MEMORY", "value": "1024"}]},
    )
    return str(answer["jobId"])


def test_job_asking_more_vcpus_than_the_environment_is_unschedulable(lb: Any, client: Any) -> None:
    lb.create_environment("small-q", vcpus=4, compute_environment="small-ce")
    big = submit(lb, "small-q", 16, "big")
    fits = submit(lb, "small-q", 2, "fits")
    lb.advance(10)
    found = rules(account_findings(client, ["small-q"], now=emulator_now(lb)))
    f = found["aws-unschedulable"]
    assert f.severity == "error"
    assert big in f.evidence and "vcpus=16" in f.evidence and "small-ce maxvCpus=4" in f.evidence
    assert fits not in f.evidence
    assert "25.04" in f.advice and "terminateUnschedulableJobs" in f.advice
    newer = rules(account_findings(client, ["small-q"], now=emulator_now(lb), version="25.04.0"))
    assert "aws.batch.terminateUnschedulableJobs = true" in newer["aws-unschedulable"].advice


def test_job_that_fits_is_not_unschedulable(lb: Any, client: Any) -> None:
    lb.create_environment("wide-q", vcpus=16, compute_environment="wide-ce")
    submit(lb, "wide-q", 16, "exact")
    lb.advance(10)
    found = rules(account_findings(client, ["wide-q"], now=emulator_now(lb)))
    assert "aws-unschedulable" not in found
    assert not [f for f in found.values() if f.severity == "error"]


def test_job_waiting_too_long_in_runnable(lb: Any, client: Any) -> None:
    lb.create_environment("busy-q", vcpus=4, compute_environment="busy-ce")
    first = submit(lb, "busy-q", 4, "first")
    lb.advance(5)
    lb.set_job_behavior(first, duration=100_000)
    waiting = submit(lb, "busy-q", 4, "waiting")
    lb.advance(60)
    quiet = rules(account_findings(client, ["busy-q"], now=emulator_now(lb), runnable_after=1800))
    assert "aws-runnable-stuck" not in quiet
    lb.advance(2000)
    found = rules(account_findings(client, ["busy-q"], now=emulator_now(lb), runnable_after=1800))
    assert waiting in found["aws-runnable-stuck"].evidence
    assert "aws-unschedulable" not in found


def test_disabled_queue_is_reported(lb: Any, client: Any) -> None:
    ce = lb.create_environment("on-q", vcpus=8, compute_environment="shared-ce")
    # LocalBatch has no UpdateJobQueue: create the queue DISABLED instead.
    lb.client().create_job_queue(
        jobQueueName="off-q", state="DISABLED", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
    )  # fmt: skip
    found = rules(account_findings(client, ["off-q"], now=emulator_now(lb)))
    f = found["aws-queue-disabled"]
    assert f.severity == "error" and "off-q" in f.title and "state=DISABLED" in f.evidence
    assert "--state ENABLED" in f.advice
    assert "aws-queue-disabled" not in rules(account_findings(client, ["on-q"], now=emulator_now(lb)))


def test_disabled_compute_environment_is_reported(lb: Any, client: Any) -> None:
    boto = lb.client()
    ce = boto.create_compute_environment(
        computeEnvironmentName="off-ce", type="MANAGED", state="DISABLED",
        computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 4, "instanceTypes": ["optimal"],
                          "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"], "instanceRole": "ecsInstanceRole"},
    )  # fmt: skip
    boto.create_job_queue(
        jobQueueName="off-ce-q", state="ENABLED", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
    )  # fmt: skip
    found = rules(account_findings(client, ["off-ce-q"], now=emulator_now(lb)))
    assert "off-ce" in found["aws-ce-disabled"].title
    assert "aws-queue-disabled" not in found


def test_no_queue_known_still_probes_permissions(lb: Any, client: Any) -> None:
    lb.create_environment("any-q", vcpus=4)
    found = rules(account_findings(client, [], now=emulator_now(lb)))
    assert found["aws-no-queue"].severity == "info"
    assert "aws-permission" not in found
    # other queues of the account (some disabled by other tests) are not the run's: not judged
    assert not [f for f in found.values() if f.severity == "error"]


def test_api_down_past_the_deadline_is_a_finding(lb: Any) -> None:
    from batchkit.client import BatchClient

    lb.create_environment("down-q", vcpus=4)
    t = [0.0]

    def sleep(seconds: float) -> None:
        t[0] += seconds  # no real sleeping: the client's clock moves instead

    rule = lb.faults.add("DescribeComputeEnvironments", "authorizer-500")
    try:
        with BatchClient(lb.client(), deadline=30.0, clock=lambda: t[0], sleep=sleep) as c:
            found = rules(account_findings(c, ["down-q"], now=emulator_now(lb)))
    finally:
        lb.faults.remove(rule)
    f = found["aws-api-unavailable"]
    assert "DescribeComputeEnvironments" in f.title and "AuthorizerConfigurationException" in f.evidence


def test_the_whole_commands_deadline_stops_the_account_checks_with_what_they_found(lb: Any) -> None:
    """With give_up_after (the CLI's --deadline), a call that keeps failing until the command's
    deadline stops the account checks: no later call is tried, the findings made so far come back."""
    from batchkit.client import BatchClient
    from batchkit.doctor import AccountChecksStopped

    ce = lb.create_environment("late-on-q", vcpus=4, compute_environment="late-ce")
    lb.client().create_job_queue(
        jobQueueName="late-q", state="DISABLED", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
    )  # fmt: skip
    t = [0.0]

    def sleep(seconds: float) -> None:
        t[0] += seconds

    rule = lb.faults.add("DescribeComputeEnvironments", "authorizer-500")
    before = lb.calls.get("ListJobs", 0)
    try:
        with BatchClient(lb.client(), deadline=300.0, clock=lambda: t[0], sleep=sleep) as c:
            c.give_up_after(20.0)
            with pytest.raises(AccountChecksStopped) as stopped:
                account_findings(c, ["late-q"], now=emulator_now(lb))
    finally:
        lb.faults.remove(rule)
    assert stopped.value.operation == "DescribeComputeEnvironments" and t[0] <= 20.0 + 1e-9
    assert "AuthorizerConfigurationException" in str(stopped.value)
    found = rules(stopped.value.findings)  # what DescribeJobQueues showed before the stop
    assert "aws-queue-disabled" in found and "aws-api-unavailable" not in found
    assert lb.calls.get("ListJobs", 0) == before  # nothing tried after the deadline


def test_missing_queue_is_reported(lb: Any, client: Any) -> None:
    found = rules(account_findings(client, ["no-such-queue"], now=emulator_now(lb)))
    assert "no-such-queue" in found["aws-queue-missing"].title


class _Raw:
    """The raw body botocore reads a short-circuited answer from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def refuse(boto_client: Any, operation: str) -> None:
    """Answer ``operation`` with HTTP 403 AccessDeniedException before it is sent.

    LocalBatch has no access-denied fault kind yet, so this hooks the boto3 client.
    """
    from botocore.awsrequest import AWSResponse

    body = json.dumps(
        {"__type": "AccessDeniedException",
         "message": f"User: arn:aws:iam::123:user/x is not authorized to perform: batch:{operation}"}
    ).encode()  # fmt: skip

    def answer(request: Any, **_: Any) -> Any:
        return AWSResponse(request.url, 403, {"Content-Type": "application/json"}, _Raw(body))

    boto_client.meta.events.register(f"before-send.batch.{operation}", answer)


def test_refused_list_jobs_names_the_iam_action(lb: Any) -> None:
    from batchkit.client import BatchClient

    lb.create_environment("perm-q", vcpus=4)
    boto = lb.client()
    refuse(boto, "ListJobs")
    with BatchClient(boto) as c:
        found = account_findings(c, ["perm-q"], now=emulator_now(lb))
    perms = [f for f in found if f.rule == "aws-permission"]
    assert len(perms) == 1
    assert perms[0].advice == "Add batch:ListJobs to the role's (or user's) IAM policy."
    assert "ListJobs" in perms[0].title and perms[0].severity == "error"


def test_refused_describe_jobs_names_the_iam_action(lb: Any) -> None:
    from batchkit.client import BatchClient

    lb.create_environment("perm-dj-q", vcpus=4)
    boto = lb.client()
    refuse(boto, "DescribeJobs")
    with BatchClient(boto) as c:
        found = rules(account_findings(c, ["perm-dj-q"], now=emulator_now(lb)))
    assert found["aws-permission"].advice == "Add batch:DescribeJobs to the role's (or user's) IAM policy."


def test_permitted_caller_gets_no_permission_finding(lb: Any, client: Any) -> None:
    lb.create_environment("perm-ok-q", vcpus=4)
    assert "aws-permission" not in rules(account_findings(client, ["perm-ok-q"], now=emulator_now(lb)))


def test_refused_describe_job_queues(lb: Any) -> None:
    from batchkit.client import BatchClient

    boto = lb.client()
    refuse(boto, "DescribeJobQueues")
    with BatchClient(boto) as c:
        found = rules(account_findings(c, ["perm-ok-q"], now=emulator_now(lb)))
    assert "batch:DescribeJobQueues" in found["aws-permission"].advice


def test_doctor_with_a_client_checks_the_config_queue(tmp_path: Path, lb: Any, client: Any) -> None:
    lb.create_environment("cfg-q", vcpus=2, compute_environment="cfg-ce")
    big = submit(lb, "cfg-q", 8, "big")
    lb.advance(10)
    launch = launch_with_log(tmp_path, "24.04.4", "")
    (tmp_path / "nextflow.config").write_text("process { executor = 'awsbatch'; queue = 'cfg-q' }\n")
    findings = doctor(launch, client, now=emulator_now(lb), env={"HOME": str(tmp_path / "h")})
    assert big in rules(findings)["aws-unschedulable"].evidence
    order = {"error": 0, "warning": 1, "info": 2}
    assert [order[f.severity] for f in findings] == sorted(order[f.severity] for f in findings)


# --- pure account rules over hand-built API answers (states LocalBatch cannot produce) -----------


def test_queue_health_findings() -> None:
    healthy = {"jobQueueName": "q", "state": "ENABLED", "status": "VALID"}
    invalid = {"jobQueueName": "bad", "state": "ENABLED", "status": "INVALID",
               "statusReason": "CLIENT_ERROR - compute environment ce-1 is deleted"}  # fmt: skip
    assert queue_health_findings([healthy, {**healthy, "status": "UPDATING"}]) == []
    (f,) = queue_health_findings([invalid])
    assert f.rule == "aws-queue-invalid" and "ce-1 is deleted" in f.title and "status=INVALID" in f.evidence


def test_compute_environment_findings() -> None:
    ok = {"computeEnvironmentName": "ce", "state": "ENABLED", "status": "VALID"}
    assert compute_environment_findings([ok]) == []
    got = rules(compute_environment_findings([
        {"computeEnvironmentName": "off", "state": "DISABLED", "status": "VALID"},
        {"computeEnvironmentName": "broken", "state": "ENABLED", "status": "INVALID",
         "statusReason": "CLIENT_ERROR - The security group 'sg-1' does not exist"},
    ]))  # fmt: skip
    assert "off" in got["aws-ce-disabled"].title
    assert "sg-1" in got["aws-ce-invalid"].evidence


NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
QUEUE = {"jobQueueName": "q", "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "arn:ce"}]}
MANAGED = {"arn:ce": {"computeEnvironmentName": "ce", "state": "ENABLED", "computeResources": {"maxvCpus": 8}}}


def row(job_id: str, minutes_ago: float) -> dict[str, Any]:
    return {"jobId": job_id, "jobName": job_id, "createdAt": int((NOW.timestamp() - minutes_ago * 60) * 1000)}


def test_batch_says_unschedulable_for_memory() -> None:
    # Batch's own verdict covers memory, which maxvCpus cannot (nextflow-io/nextflow#5936)
    details = {"m": {"statusReason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - not enough memory"}}
    got = rules(runnable_findings(QUEUE, [row("m", 1)], details, MANAGED, now=NOW, runnable_after=1800, version=None))
    assert "MISCONFIGURATION" in got["aws-unschedulable"].evidence


def test_unmanaged_environment_gives_no_vcpu_verdict() -> None:
    unmanaged = {"arn:ce": {"computeEnvironmentName": "ce", "state": "ENABLED", "type": "UNMANAGED"}}
    details = {"big": {"container": {"vcpus": 64}}}
    assert runnable_findings(QUEUE, [row("big", 1)], details, unmanaged, now=NOW, runnable_after=1800, version=None) == []
    got = rules(runnable_findings(QUEUE, [row("big", 1)], details, MANAGED, now=NOW, runnable_after=1800, version=None))
    assert "vcpus=64" in got["aws-unschedulable"].evidence


def test_stuck_threshold_is_settable() -> None:
    rows = [row("old", 45), row("new", 5)]
    got = rules(runnable_findings(QUEUE, rows, {}, MANAGED, now=NOW, runnable_after=1800, version=None))
    assert "old created 45 min ago" in got["aws-runnable-stuck"].evidence and "new" not in got["aws-runnable-stuck"].evidence
    assert runnable_findings(QUEUE, rows, {}, MANAGED, now=NOW, runnable_after=3600, version=None) == []


# --- the simulated 24.02 incident ----------------------------------------------------------------


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from batchkit.sim.nextflow import replay_incident

    with replay_incident(n_tasks=12, launch_dir=tmp_path_factory.mktemp("incident")) as inc:
        yield inc


def test_the_incident_is_named_from_the_log_alone(incident: Any, tmp_path: Path) -> None:
    found = rules(doctor(incident.launch_dir, env={"HOME": str(tmp_path)}))
    cause = found["nf-status-check-orphans"]
    assert cause.source == "nextflow-io/nextflow#5516"
    assert cause.severity == "error" and "24.02.0-edge" in cause.title
    assert "AuthorizerConfigurationException" in cause.title
    assert found["nf-no-500-retry"].source == "nextflow-io/nextflow#4709"


def test_the_incident_through_the_client_and_a_nextflow_run(incident: Any, tmp_path: Path) -> None:
    from batchkit.client import BatchClient
    from batchkit.nextflow import NextflowRun

    run = NextflowRun.from_dir(incident.launch_dir)
    with BatchClient(incident.batch.client()) as c:
        findings = doctor(
            run, c, queues=["demo-queue"], now=emulator_now(incident.batch), env={"HOME": str(tmp_path)}
        )
    found = rules(findings)
    assert "nextflow-io/nextflow#5516" in {f.source for f in findings}
    assert found["nf-status-check-orphans"].evidence.startswith(f"{incident.launch_dir / '.nextflow.log'}:2")
    # the queue and the caller are fine: the trouble is Nextflow's, not the account's
    assert not {"aws-permission", "aws-queue-disabled", "aws-queue-missing", "aws-unschedulable"} & set(found)
    assert exit_code(findings) == EXIT_ERROR_FINDING


def test_a_run_without_a_launch_dir_skips_the_config() -> None:
    from types import SimpleNamespace

    bare = SimpleNamespace(
        version="24.04.4", launch_dir=None, log_paths=[], queues=[], tasks=None, executors=["awsbatch"]
    )
    found = rules(doctor(bare))  # type: ignore[arg-type]
    assert found["nf-null-describe-crash"].evidence.startswith("NextflowRun.version")
    assert "cfg-not-checked" in found
    assert not [r for r in found if r.startswith("cfg-") and r != "cfg-not-checked"]


def test_main_against_the_emulator_exits_4_on_an_error_finding(
    lb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    ce = lb.create_environment("cli-ok-q", vcpus=4)
    lb.client().create_job_queue(
        jobQueueName="cli-off-q", state="DISABLED", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
    )  # fmt: skip
    launch = launch_with_log(tmp_path, "25.04.0", "")
    base = [str(launch), "--endpoint-url", lb.endpoint_url, "--region", "us-east-1", "--format", "json"]
    assert main([*base, "--queue", "cli-ok-q"]) == EXIT_OK
    capsys.readouterr()
    assert main([*base, "--queue", "cli-off-q"]) == EXIT_ERROR_FINDING
    found = {f["rule"]: f for f in json.loads(capsys.readouterr().out)}
    assert "cli-off-q" in found["aws-queue-disabled"]["title"]


def test_client_names_the_missing_permission_not_missing_credentials(lb: Any) -> None:
    from batchkit.client import BatchClient
    from batchkit.errors import AccessDeniedError

    lb.create_environment("perm-cli-q", vcpus=4)
    boto = lb.client()
    refuse(boto, "ListJobs")
    with BatchClient(boto) as c, pytest.raises(AccessDeniedError, match=r"add batch:ListJobs to the role"):
        c.list_jobs("perm-cli-q")


def test_a_sigint_abort_is_no_status_check_failure(tmp_path: Path) -> None:
    sigint = "Mar-10 10:05:00.000 [SIGINT handler] DEBUG nextflow.Session - Session aborted -- Cause: SIGINT\n"
    found = rules(doctor(launch_with_log(tmp_path, "24.10.5", sigint), env={"HOME": str(tmp_path / "h")}))
    assert found["nf-status-check-orphans"].severity == "warning"  # the bug may exist; this run did not hit it
    assert found["nf-submit-after-abort"].severity == "error"  # any abort can leave late submissions


def test_deadline_is_the_whole_commands_against_an_unreachable_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run recording 3,000 jobs, an endpoint nobody listens on (a closed loopback port):
    `doctor --deadline 4` returns by its deadline (not one deadline per call: DescribeJobQueues,
    ListJobs, DescribeJobs) with every offline finding and one line about the account checks."""
    import socket
    import time

    _no_aws_configuration(tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")  # credentials: only the endpoint is missing
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    late = "".join(
        f"Mar-10 10:06:{i % 60:02d}.{i % 1000:03d} [AWSBatch-executor-3] DEBUG n.c.aws.batch.AwsBatchTaskHandler - "
        f"[AWS BATCH] Process `FOO ({i})` submitted > job=70af3d53-0000-0000-0000-{i:012d}; "
        f"work-dir=s3://b/work/{i % 256:02x}/{i:030x}\n"
        for i in range(2, 3002)
    )
    (tmp_path / ".nextflow.log").write_text(BATCH_LOG.format(version="24.04.4", tail=ABORT + REAPER + late))
    offline = doctor(tmp_path)
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    t0 = time.monotonic()
    code = main([str(tmp_path), "--endpoint-url", f"http://127.0.0.1:{port}", "--region", "us-east-1",
                 "--queue", "q", "--deadline", "4"])
    took = time.monotonic() - t0
    captured = capsys.readouterr()
    assert took < 6.5, f"{took:.1f} s: --deadline bounds each call, not the command"
    assert code == exit_code(offline) == EXIT_ERROR_FINDING  # from the findings, not the endpoint
    for f in offline:
        assert f"[{f.rule}]" in captured.out
    assert "[aws-" not in captured.out  # the account checks say one thing, once, on stderr
    [line] = captured.err.splitlines()
    assert line.startswith("batchkit doctor: account checks stopped at the 4 s deadline")
    assert "EndpointConnectionError" in line and line.endswith("from the log and config only")
    assert "Traceback" not in captured.err
