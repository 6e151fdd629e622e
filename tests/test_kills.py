"""The kill executor (batchkit.kills): pure pieces on hand-built data; the whole kill with the
real BatchClient over HTTP against LocalBatch with injected faults (expired credentials,
missing permissions), and the whole-command deadline against an endpoint that is not there.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from batchkit import cli
from batchkit.client import TERMINATE, BatchClient
from batchkit.errors import ExpiredCredentialsError
from batchkit.kills import KillExecutor, KillStatus, select_redrives, verified_outcome
from batchkit.ledger import Ledger
from batchkit.schema import KillJob
from batchkit.sim import LocalBatch

REASON = "batchkit: orphan of run 'wise_hypatia'"


# --- pure ----------------------------------------------------------------------------------------


def test_status_line_says_what_waits_and_why() -> None:
    failing = KillStatus(
        total=120, killed=27, retries=14, failing_since=datetime(2026, 1, 24, 12, 4, 10),
        last_error="AuthorizerConfigurationException", stage="backing off",
    )
    assert failing.line() == (
        "27 killed, 93 waiting: Batch API failing since 12:04:10, 14 retries, AuthorizerConfigurationException"
    )
    assert KillStatus(total=3, killed=3, stage="done").line() == "3 killed, 0 waiting"
    assert KillStatus(total=5, killed=1, failed=1, held=3).line() == (
        "1 killed, 1 failed, 3 waiting: 3 being killed by another batchkit process"
    )
    assert KillStatus(total=2, retries=1, stage="cancelled").line() == "0 killed, 2 waiting: 1 retry, cancelled"


def test_redrives_are_the_plans_jobs_and_those_not_seen_active() -> None:
    pending = [KillJob("a", "orphan", "r"), KillJob("b", "orphan", "r"), KillJob("c", "orphan", "r")]
    plan = [KillJob("a", "orphan", "r")]
    active = {"b"}
    assert [j.job_id for j in select_redrives(pending, plan, active.__contains__)] == ["a", "c"]
    assert [j.job_id for j in select_redrives(pending, [], active.__contains__, resume=True)] == ["a", "b", "c"]


def test_verified_outcome_reads_the_describe_after_the_kill() -> None:
    ran = {"status": "FAILED", "statusReason": REASON}
    assert verified_outcome(TERMINATE, "j", REASON, ran, False)[0].outcome == "terminated"
    ended = {"status": "SUCCEEDED", "statusReason": "Essential container in task exited"}
    assert verified_outcome(TERMINATE, "j", REASON, ended, False)[0].outcome == "already_done"
    stopping = {"status": "RUNNING"}  # real Batch stops the container after a while
    assert verified_outcome(TERMINATE, "j", REASON, stopping, False)[1] == "RUNNING"
    assert verified_outcome(TERMINATE, "j", REASON, None, True)[0].outcome == "not_found"
    unverified = verified_outcome(TERMINATE, "j", REASON, None, False)
    assert unverified[0].outcome == "terminated" and unverified[1] is None


# --- with LocalBatch over HTTP -------------------------------------------------------------------


def _orphans(lb: LocalBatch, n: int) -> list[KillJob]:
    lb.create_environment("q", vcpus=4 * n)
    ids = lb.submit_jobs(n, queue="q", name="ALIGN", command=["bash", "-c", "sleep 100000"])
    lb.advance(60)
    return [KillJob(job_id=i, verdict="orphan", reason=REASON) for i in ids]


def test_a_healthy_kill_describes_each_job_once_after_its_kill(tmp_path: Path) -> None:
    """No describe before (the plan came from a snapshot), one TerminateJobs per chunk of
    50, then the verification: DescribeJobs of 100 ids, each job once; every job in the
    ledger with Batch's status."""
    with LocalBatch(manual_clock=True) as lb:
        plan = _orphans(lb, 120)
        before = dict(lb.calls)
        with BatchClient(endpoint_url=lb.endpoint_url) as client:
            report = KillExecutor(client, Ledger(tmp_path / "l.sqlite"), run_name="r", deadline=60).run(plan)
        assert report.ok and report.killed == 120 and report.calls == 3 and report.retries == 0
        assert lb.calls["TerminateJobs"] - before.get("TerminateJobs", 0) == 3
        assert lb.calls["DescribeJobs"] - before.get("DescribeJobs", 0) == 2  # 100 + 20 ids
        assert {s for _, _, s in report.outcomes} == {"FAILED"}


def test_an_expired_token_stops_the_kill_at_once_with_the_renewal_hint(tmp_path: Path) -> None:
    """The session token dies after the first TerminateJobs: no retry, the error names the
    profile and how to renew it, the first chunk's results are recorded, the rest stays
    pending in the ledger (released for the next kill) — nothing is lost."""
    with LocalBatch(manual_clock=True) as lb:
        plan = _orphans(lb, 150)
        client = BatchClient(endpoint_url=lb.endpoint_url)
        client.profile = "lab-sso"
        ledger = Ledger(tmp_path / "ledger.sqlite")
        calls: list[int] = []

        def token_dies(status: KillStatus) -> None:
            if status.calls == 1 and not calls:
                calls.append(1)
                lb.faults.add(None, "expired-token")  # every later call: 403 ExpiredTokenException

        executor = KillExecutor(client, ledger, run_name="wise_hypatia", deadline=60, on_status=token_dies)
        t0 = time.monotonic()
        report = executor.run(plan)
        assert time.monotonic() - t0 < 5  # at once, not after a deadline's worth of retries
        assert isinstance(report.error, ExpiredCredentialsError)
        message = str(report.error)
        assert "profile 'lab-sso'" in message and "aws sso login --profile lab-sso" in message
        assert "ExpiredTokenException" in message
        assert lb.faults.counts[("TerminateJobs", "expired-token")] == 1  # no retry of the dead token
        assert len(report.outcomes) == 50 and len(report.pending) == 100 and not report.complete
        assert all("ExpiredTokenException" in why for _, why in report.pending)
        rows = ledger.kills()
        assert len(rows) == 150 and len({r["job_id"] for r in rows}) == 150
        assert sum(r["finished_at"] is not None for r in rows) == 50
        assert all(r["claim_owner"] is None for r in rows)  # the next kill takes them at once
        client.close()

        lb.faults.clear()
        again = KillExecutor(BatchClient(endpoint_url=lb.endpoint_url), ledger, run_name="wise_hypatia",
                             deadline=60).run(plan)
        assert again.ok and len(again.outcomes) == 100 and len(again.skipped) == 50
        assert len(ledger.kills()) == 150 and ledger.pending_kills() == []


def test_access_denied_on_terminate_jobs_falls_back_and_names_both_actions(tmp_path: Path) -> None:
    """A role written before TerminateJobs existed: the bulk call is denied, so the kill goes
    per job with TerminateJob; when that is denied too the refusal names both IAM actions."""
    with LocalBatch(manual_clock=True) as lb:
        plan = _orphans(lb, 4)
        lb.faults.add("TerminateJobs", "access-denied")
        with BatchClient(endpoint_url=lb.endpoint_url) as client:
            report = KillExecutor(client, None, run_name=None, deadline=30).run(plan[:2])
            assert report.ok and {o.outcome for _, o, _ in report.outcomes} == {"terminated"}
            assert lb.calls["TerminateJob"] == 2
            lb.faults.add("TerminateJob", "access-denied")
            refused = KillExecutor(client, None, run_name=None, deadline=30).run(plan[2:])
        assert {o.outcome for _, o, _ in refused.outcomes} == {"error"} and refused.pending == []
        message = refused.outcomes[0][1].message
        assert "batch:TerminateJob and batch:TerminateJobs" in message and "IAM policy" in message
        assert lb.faults.counts[("TerminateJob", "access-denied")] == 2  # refusals are not retried


def test_an_expired_token_in_the_cli_is_one_line_with_the_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from batchkit.sim.nextflow import replay_incident

    with replay_incident(launch_dir=tmp_path / "launch", n_tasks=20) as inc:
        inc.batch.faults.add("TerminateJobs", "expired-token")
        code = cli.main(["kill", str(inc.launch_dir), "--endpoint-url", inc.endpoint_url,
                         "--queue", inc.truth.queue, "--yes"])
        out, err = capsys.readouterr()
        assert code == cli.EXIT_FAILURE, out + err
        [line] = [x for x in err.splitlines() if x.startswith("batchkit: error:")]
        assert "ExpiredTokenException" in line and "aws sso login" in line
        assert "Traceback" not in err
        assert "pending" in out
        ledger = Ledger.for_launch_dir(inc.launch_dir)
        assert {k.job_id for k in ledger.pending_kills()} == inc.truth.abandoned_job_ids & {
            j["jobId"] for j in inc.batch.jobs() if j["status"] == "RUNNING"
        }


@pytest.mark.slow
def test_reconcile_of_10000_tasks_against_a_dead_endpoint_returns_by_its_deadline(tmp_path: Path) -> None:
    """--deadline is the whole command's: 100 DescribeJobs chunks against an endpoint that
    refuses connections give up together at 10 s, not one deadline per chunk."""
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    trace = tmp_path / "trace.txt"
    lines = ["task_id\thash\tnative_id\tname\tstatus\texit\tsubmit"]
    for i in range(10_000):
        lines.append(f"{i + 1}\t{i % 256:02x}/{i:06x}\tjob-{i:05d}\tALIGN ({i})\tABORTED\t-\t2026-01-24 12:00:00.000")
    trace.write_text("\n".join(lines) + "\n")
    t0 = time.monotonic()
    code = cli.main(["reconcile", "--trace", str(trace), "--endpoint-url", f"http://127.0.0.1:{port}",
                     "--region", "us-east-1", "--deadline", "10"])
    took = time.monotonic() - t0
    assert code == cli.EXIT_FAILURE
    assert took < 15, took


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_kill_processes_under_stalls_audit_each_job_once_and_agree(tmp_path: Path) -> None:
    """Two `batchkit kill --yes` processes start together on the same orphans while every
    TerminateJobs stalls 1-2 s: each job ends with exactly one final audit row, and both
    print the same counts. (benchmarks/bench_kill.py race repeats this ten times, with two
    Dashboards on one ledger as well.)"""
    import os
    import re
    import subprocess
    import sys

    from batchkit.sim.nextflow import replay_incident

    root = Path(__file__).resolve().parent.parent
    with replay_incident(launch_dir=tmp_path / "launch", n_tasks=200, seed=5) as inc:
        lb = inc.batch
        active = {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"}
        targets = inc.truth.abandoned_job_ids & {j["jobId"] for j in lb.jobs() if j["status"] in active}
        assert len(targets) >= 100
        lb.faults.add("TerminateJobs", "latency", latency=1.0)
        lb.faults.add("TerminateJobs", "latency", latency=0.5, rate=0.5)
        lb.faults.add("TerminateJobs", "latency", latency=0.5, rate=0.5)
        argv = [sys.executable, "-m", "batchkit", "kill", str(inc.launch_dir), "--endpoint-url",
                inc.endpoint_url, "--queue", inc.truth.queue, "--yes"]
        env = {**os.environ, "PYTHONPATH": str(root)}
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(2)]
        outs = [p.communicate(timeout=200) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        counts = [re.findall(r"^(\d+) of (\d+) job\(s\) killed", out, re.MULTILINE) for out, _ in outs]
        assert counts[0] == counts[1] == [(str(len(targets)), str(len(targets)))], counts
        rows = Ledger.for_launch_dir(inc.launch_dir).kills()
        assert sorted(r["job_id"] for r in rows) == sorted(targets)  # one row per job
        assert all(r["finished_at"] is not None for r in rows)
        # each job sent by one of them: its own claims, in chunks of 50
        assert lb.calls["TerminateJobs"] <= -(-len(targets) // 50) + 1
