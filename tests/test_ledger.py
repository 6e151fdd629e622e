"""The ledger on real SQLite files: before/after rows, crash and resume, concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batchkit.errors import InputError
from batchkit.ledger import DEFAULT_RELATIVE_PATH, Ledger, LedgerClosedError
from batchkit.reconcile import reconcile, summarize
from batchkit.schema import TASK_COLUMNS, TASK_DTYPES, JobOutcome, KillJob, TaskCol

T0 = pd.Timestamp("2026-01-24 12:00:00", tz="UTC")


class Clock:
    """An injected clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> pd.Timestamp:
        self.now += pd.Timedelta(seconds=1)
        return self.now


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "l" / "ledger.sqlite", clock=Clock()) as led:
        yield led


def kill(job_id: str, verdict: str = "orphan") -> KillJob:
    return KillJob(job_id=job_id, verdict=verdict, reason=f"batchkit: {verdict} of run 'wise_hypatia'",
                   task_name=f"FASTQC ({job_id})", vcpu_hours=1.5)


def test_creates_folder_schema_and_wal(tmp_path: Path) -> None:
    with Ledger.for_launch_dir(tmp_path / "launch") as led:
        assert led.path == tmp_path / "launch" / DEFAULT_RELATIVE_PATH
        assert led.path.exists()
        assert led.integrity_check() == "ok"
    conn = sqlite3.connect(led.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"submissions", "kills", "snapshots", "known_jobs", "polls"} <= tables
    conn.close()


def test_unusable_path_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match=str(blocker)):
        Ledger(blocker / "ledger.sqlite")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError, match="cannot open the ledger"):
        Ledger(garbage)


def test_submission_before_and_after(ledger: Ledger) -> None:
    request = {"jobName": "FASTQC_s1", "jobQueue": "q", "tags": {"batchkit:submission-id": "sub-1"}}
    ledger.record_submission_intent("sub-1", request)
    ledger.record_submission_intent("sub-1", request)  # a re-drive: no second row
    assert [s["submission_id"] for s in ledger.pending_submissions()] == ["sub-1"]
    (row,) = ledger.submissions()
    assert row["request"] == request and row["job_id"] is None and row["finished_at"] is None
    assert ledger.record_submission_result("sub-1", "job-1", "submitted") is True
    assert ledger.record_submission_result("sub-1", "job-2", "submitted") is False  # first result kept
    (row,) = ledger.submissions()
    assert (row["job_id"], row["outcome"], row["error"]) == ("job-1", "submitted", None)
    assert row["requested_at"] < row["finished_at"]
    assert ledger.pending_submissions() == []
    assert list(ledger.submissions_frame()["submission_id"]) == ["sub-1"]
    with pytest.raises(ValueError, match="fresh submission id"):
        ledger.record_submission_intent("sub-1", request)
    with pytest.raises(KeyError, match="record_submission_intent"):
        ledger.record_submission_result("never-announced", None, "error", "boom")


def test_kill_before_and_after(ledger: Ledger) -> None:
    kid = ledger.record_kill_intent("wise_hypatia", kill("j1"), {"jobId": "j1", "reason": "r"})
    (row,) = ledger.kills()
    assert row["kill_id"] == kid and row["finished_at"] is None and row["outcome"] is None
    assert row["request"] == {"jobId": "j1", "reason": "r"}
    assert ledger.pending_kills("wise_hypatia") == [kill("j1")]
    assert ledger.record_kill_result(kid, JobOutcome("j1", "terminated", status="FAILED"), "FAILED") is True
    (row,) = ledger.kills("wise_hypatia")
    assert (row["outcome"], row["status"], row["verified_status"], row["tries"]) == ("terminated", "FAILED", "FAILED", 1)
    assert ledger.pending_kills() == []
    assert ledger.killed_job_ids() == {"j1"} == ledger.killed_job_ids("wise_hypatia")
    assert ledger.killed_job_ids("another_run") == set()
    # A double click: the first result stays.
    assert ledger.record_kill_result(kid, "already_done") is False
    assert ledger.kills()[0]["outcome"] == "terminated"
    with pytest.raises(KeyError, match="record_kill_intent"):
        ledger.record_kill_result(999, "terminated")


def test_an_error_keeps_the_kill_pending_on_the_same_row(ledger: Ledger) -> None:
    kid = ledger.record_kill_intent("r", kill("j1"), {})
    throttled = JobOutcome("j1", "error", error_code="TooManyRequestsException", message="Rate exceeded")
    assert ledger.record_kill_result(kid, throttled) is False
    assert ledger.pending_kills("r") == [kill("j1")]
    assert ledger.record_kill_intent("r", kill("j1"), {}) == kid  # the re-drive reuses the row
    assert ledger.record_kill_result(kid, JobOutcome("j1", "terminated")) is True
    (row,) = ledger.kills()
    assert row["tries"] == 2 and row["last_error"] == "TooManyRequestsException: Rate exceeded"
    assert row["outcome"] == "terminated"
    # A given-up error is final when the caller says so, and is not a successful kill.
    other = ledger.record_kill_intent("r", kill("j2"), {})
    assert ledger.record_kill_result(other, "error", error_code="ServerException", final=True) is True
    assert ledger.killed_job_ids() == {"j1"} and ledger.pending_kills() == []
    ledger.record_kill_verification(kid, "FAILED")
    assert ledger.kills()[0]["verified_status"] == "FAILED"
    with pytest.raises(KeyError, match="no kill intent 999"):
        ledger.record_kill_verification(999, "FAILED")


def test_a_later_kill_of_a_finished_job_is_a_new_row(ledger: Ledger) -> None:
    first = ledger.record_kill_intent("r", kill("j1"), {})
    ledger.record_kill_result(first, "terminated")
    second = ledger.record_kill_intent("r", kill("j1"), {})
    assert second != first and len(ledger.kills()) == 2


def _crashing_killer(path: str) -> None:
    """A 'kernel' that writes 5 intents, finishes 2 kills, then dies without closing."""
    led = Ledger(path)
    for i in range(5):
        kid = led.record_kill_intent("wise_hypatia", kill(f"j{i}"), {"jobId": f"j{i}"})
        if i < 2:
            led.record_kill_result(kid, "terminated", status="FAILED")
    led.record_submission_intent("sub-x", {"jobName": "x"})
    os._exit(3)  # a hard crash: no close(), no atexit


def test_resume_after_a_crash_redrives_each_job_exactly_once(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite")
    child = multiprocessing.get_context("fork").Process(target=_crashing_killer, args=(path,))
    child.start()
    child.join(60)
    assert child.exitcode == 3
    with Ledger(path) as led:  # the restarted kernel
        assert led.integrity_check() == "ok"
        pending = led.pending_kills("wise_hypatia")
        assert [k.job_id for k in pending] == ["j2", "j3", "j4"]
        assert [s["submission_id"] for s in led.pending_submissions()] == ["sub-x"]
        for job in pending:
            kid = led.record_kill_intent("wise_hypatia", job, {"jobId": job.job_id})
            assert led.record_kill_result(kid, "terminated") is True
        rows = led.kills("wise_hypatia")
        assert sorted(r["job_id"] for r in rows) == [f"j{i}" for i in range(5)]  # one row per job
        assert all(r["finished_at"] is not None for r in rows)
        assert led.killed_job_ids("wise_hypatia") == {f"j{i}" for i in range(5)}


def _writer(path: str, name: str, n: int, barrier: Any) -> None:
    led = Ledger(path)
    barrier.wait()
    for i in range(n):
        job = f"{name}-{i}"
        kid = led.record_kill_intent(name, kill(job), {"jobId": job})
        led.record_kill_result(kid, "terminated", status="FAILED")
        if i % 10 == 0:
            led.record_submission_intent(f"sub-{job}", {"jobName": job})
            led.remember_jobs(name, [job])
            led.set_last_poll(name, T0 + pd.Timedelta(seconds=i))
    led.close()


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    Ledger(path).close()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(path, name, 500, barrier)) for name in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    assert [p.exitcode for p in procs] == [0, 0]
    with Ledger(path) as led:
        assert led.integrity_check() == "ok"
        rows = led.kills()
        assert len(rows) == 1000 and len({r["kill_id"] for r in rows}) == 1000
        assert all(r["outcome"] == "terminated" for r in rows)
        assert led.killed_job_ids("a") == {f"a-{i}" for i in range(500)}
        assert led.killed_job_ids("b") == {f"b-{i}" for i in range(500)}
        assert len(led.submissions()) == 100
        assert led.known_jobs("a") == {f"a-{i}" for i in range(0, 500, 10)}
        assert led.last_poll("b") == T0 + pd.Timedelta(seconds=490)
        writers = {r["writer"] for r in rows}
        assert len(writers) == 2  # both processes wrote, each under its own pid


def test_threads_share_one_ledger(ledger: Ledger) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(50):
                ledger.remember_jobs("r", [f"t{t}-{i}"])
        except BaseException as exc:  # surfaced below: a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ledger.known_jobs("r")) == 200


def test_known_jobs_and_last_poll_survive_a_new_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as led:
        assert led.remember_jobs("r", ["a", "b"]) == 2
        assert led.remember_jobs("r", ["b", "c"]) == 1
        assert led.last_poll("r") is None
        led.set_last_poll("r", T0)
        led.set_last_poll("r", T0 + pd.Timedelta(minutes=1))
        led.remember_jobs(None, ["unnamed-run-job"])
    with Ledger(path) as led:
        assert led.known_jobs("r") == {"a", "b", "c"}
        assert led.known_jobs("other") == set()
        assert led.known_jobs(None) == {"unnamed-run-job"}
        assert led.last_poll("r") == T0 + pd.Timedelta(minutes=1)


class _Run:
    name = "wise_hypatia"
    state = "aborted"
    work_dir = "s3://bucket/work"
    launch_time = T0
    end_time = T0 + pd.Timedelta(hours=1)

    @property
    def tasks(self) -> pd.DataFrame:
        rows = [{TaskCol.TASK_ID: 1, TaskCol.HASH: "ab/cdef12", TaskCol.NATIVE_ID: "j1", TaskCol.NAME: "A (1)",
                 TaskCol.STATUS: "ABORTED", TaskCol.COMPLETE: T0 + pd.Timedelta(hours=1)},
                {TaskCol.TASK_ID: 2, TaskCol.HASH: "cd/ef0123", TaskCol.NATIVE_ID: "j2", TaskCol.NAME: "B (2)",
                 TaskCol.STATUS: "COMPLETED"}]
        return pd.DataFrame(rows, columns=list(TASK_COLUMNS)).astype(TASK_DTYPES)


def test_snapshots_round_trip_and_keep_only_the_newest_frame(ledger: Ledger) -> None:
    jobs = [
        {"jobId": "j1", "status": "RUNNING", "createdAt": 1769256000000, "startedAt": 1769256060000,
         "container": {"vcpus": 2}},
        {"jobId": "j2", "status": "SUCCEEDED", "createdAt": 1769256000000, "startedAt": 1769256060000,
         "stoppedAt": 1769256120000, "attempts": [{"startedAt": 1769256060000, "stoppedAt": 1769256120000}]},
    ]
    frame = reconcile(_Run(), jobs, now=T0 + pd.Timedelta(hours=3))
    assert ledger.last_snapshot("wise_hypatia") is None
    ledger.record_snapshot("wise_hypatia", summarize(frame), frame)
    ledger.record_snapshot("wise_hypatia", summarize(frame), frame)
    taken_at, summary, restored = ledger.last_snapshot("wise_hypatia")  # type: ignore[misc]
    assert summary == summarize(frame)
    assert taken_at.tzinfo is not None
    assert restored is not None
    pd.testing.assert_frame_equal(restored, frame, check_like=False)
    history = ledger.snapshot_history("wise_hypatia")
    assert len(history) == 2 and history[0]["taken_at"] < history[1]["taken_at"]
    conn = sqlite3.connect(ledger.path)
    assert conn.execute("SELECT COUNT(*) FROM snapshots WHERE frame IS NOT NULL").fetchone()[0] == 1
    conn.close()
    ledger.record_snapshot("wise_hypatia", {"rows": 0})  # a summary-only snapshot
    assert ledger.last_snapshot("wise_hypatia")[2] is None  # type: ignore[index]


def test_snapshot_frames_keep_every_dtype(ledger: Ledger) -> None:
    frame = pd.DataFrame(
        {
            "when": pd.Series([T0, pd.NaT], dtype="datetime64[ns, UTC]"),
            "naive": pd.Series([pd.Timestamp("2026-01-01 01:02:03.000004005"), pd.NaT], dtype="datetime64[ns]"),
            "realtime": pd.Series([pd.Timedelta("1h 2m 3.5s"), pd.NaT], dtype="timedelta64[ns]"),
            "count": pd.array([3, None], dtype="Int64"),
            "cpus": pd.array([1.5, None], dtype="Float64"),
            "text": pd.array(["a'b\"c\n…", None], dtype="string"),
            "flag": [True, False],
            "score": [0.25, float("nan")],
        }
    )
    ledger.record_snapshot("r", {"rows": 2}, frame)
    _, _, back = ledger.last_snapshot("r")  # type: ignore[misc]
    pd.testing.assert_frame_equal(back, frame)


def test_closed_ledger_says_so(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    led.close()
    led.close()
    with pytest.raises(LedgerClosedError, match="closed"):
        led.known_jobs("r")


# --- claims, privacy (#11, #16) ----------------------------------------------------------------


def test_claims_one_transaction_one_sender_and_no_second_final_row(tmp_path: Path) -> None:
    """Two kills (think: two processes) claim the same jobs: each job is the first's to
    send; the second holds nothing, sees the claims, and after the first's results adopts
    them from ``done`` — it never writes a row of its own."""
    from batchkit.ledger import Ledger
    from batchkit.schema import JobOutcome, KillJob

    path = tmp_path / "l.sqlite"
    a, b = Ledger(path), Ledger(path)
    jobs = [KillJob(f"j{i}", "orphan", "r") for i in range(3)]
    mark = a.max_kill_id()
    first = a.claim_kills("run", jobs, {}, owner=a.new_claim_owner(), lease_s=60)
    second = b.claim_kills("run", jobs, {}, owner=b.new_claim_owner(), lease_s=60, concurrent_after=mark)
    assert sorted(first.mine) == ["j0", "j1", "j2"] and not first.held
    assert second.mine == {} and sorted(second.held) == ["j0", "j1", "j2"]
    a.record_kill_results([(kid, JobOutcome(j, "terminated", "FAILED"), "FAILED", True) for j, kid in first.mine.items()])
    third = b.claim_kills("run", jobs, {}, owner=b.new_claim_owner(), lease_s=60)
    assert sorted(third.done) == ["j0", "j1", "j2"] and not third.mine and not third.held
    rows = a.kills()
    assert len(rows) == 3 and all(r["finished_at"] and r["claim_owner"] is None for r in rows)
    # a late second result for a final row is refused: the first stays
    assert b.record_kill_results([(rows[0]["kill_id"], JobOutcome("j0", "already_done"), None, True)]) == [False]
    assert a.kills()[0]["outcome"] == "terminated"


def test_a_released_or_dead_claim_is_taken_over(tmp_path: Path) -> None:
    from batchkit.ledger import Ledger
    from batchkit.schema import KillJob

    ledger = Ledger(tmp_path / "l.sqlite")
    job = [KillJob("j", "orphan", "r")]
    owner = ledger.new_claim_owner()
    kid = ledger.claim_kills("run", job, {}, owner=owner, lease_s=60).mine["j"]
    assert ledger.claim_kills("run", job, {}, owner="x:1:y", lease_s=60).held  # alive: held
    ledger.release_claims(owner)
    assert ledger.claim_kills("run", job, {}, owner="x:1:y", lease_s=60).mine == {"j": kid}
    # a claim whose process is gone (same host, no such pid) is taken at once
    host = ledger.new_claim_owner().split(":")[0]
    dead = f"{host}:999999999:abc"
    with ledger._write() as conn:
        conn.execute("UPDATE kills SET claim_owner = ? WHERE kill_id = ?", (dead, kid))
    assert ledger.claim_kills("run", job, {}, owner=owner, lease_s=60).mine == {"j": kid}
    assert len(ledger.kills()) == 1  # the same audit row throughout


def test_ledger_is_private_and_warns_when_it_is_not(tmp_path: Path) -> None:
    import stat
    import warnings

    from batchkit.ledger import Ledger, LedgerPermissionWarning

    path = tmp_path / "new" / ".batchkit" / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.record_snapshot("run", {"n": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for extra in ("-wal", "-shm"):
        side = path.with_name(path.name + extra)
        if side.exists():  # SQLite gives them the database file's mode
            assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0
    ledger.close()
    path.chmod(0o644)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        Ledger(path).close()
    [warning] = [w for w in seen if issubclass(w.category, LedgerPermissionWarning)]
    assert str(path) in str(warning.message) and "chmod 600" in str(warning.message)


def test_submission_environment_values_never_reach_the_disk(tmp_path: Path) -> None:
    from batchkit.ledger import Ledger

    path = tmp_path / "l.sqlite"
    ledger = Ledger(path)
    secret = "ghp_s3cr3t-token-value"
    request = {"jobName": "a", "containerOverrides": {"environment": [{"name": "TOKEN", "value": secret}]}}
    ledger.record_submission_intent("sid-1", request)
    [row] = ledger.submissions()
    assert row["request"]["containerOverrides"]["environment"] == [{"name": "TOKEN", "value": "***"}]
    ledger.close()
    assert secret.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())


def test_a_schema_1_ledger_gets_the_claim_columns(tmp_path: Path) -> None:
    """A ledger written before claims existed opens, keeps its rows, and can be claimed."""
    from batchkit.ledger import Ledger
    from batchkit.schema import KillJob

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE kills (kill_id INTEGER PRIMARY KEY AUTOINCREMENT, run_name TEXT NOT NULL, "
        "job_id TEXT NOT NULL, verdict TEXT NOT NULL, reason TEXT NOT NULL, task_name TEXT, "
        "vcpu_hours REAL NOT NULL DEFAULT 0, request TEXT NOT NULL, requested_at TEXT NOT NULL, "
        "writer TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0, last_error TEXT, finished_at TEXT, "
        "outcome TEXT, status TEXT, error_code TEXT, message TEXT, verified_status TEXT)"
    )
    conn.execute(
        "INSERT INTO kills (run_name, job_id, verdict, reason, request, requested_at, writer) "
        "VALUES ('run', 'j1', 'orphan', 'r', '{}', '2026-01-24T12:00:00+00:00', 'old:1')"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    path.chmod(0o600)
    ledger = Ledger(path)
    claim = ledger.claim_kills("run", [KillJob("j1", "orphan", "r")], {}, owner=ledger.new_claim_owner(), lease_s=5)
    assert claim.mine == {"j1": 1}  # the old pending row, re-used
    assert ledger.kills()[0]["claim_owner"] is not None


def test_environment_values_are_told_apart_by_a_salted_digest_never_stored(tmp_path: Path) -> None:
    """Two requests that differ only in an environment value are two requests after a restart
    (their rows' fingerprints differ), yet neither value is anywhere in the ledger's files."""
    from batchkit.ledger import environment_fingerprint, fingerprint_matches

    path = tmp_path / "l.sqlite"
    ledger = Ledger(path)
    a = {"jobName": "j", "containerOverrides": {"environment": [{"name": "SAMPLE", "value": "s1-secret-a"}]}}
    b = {"jobName": "j", "containerOverrides": {"environment": [{"name": "SAMPLE", "value": "s1-secret-b"}]}}
    fp_a = ledger.record_submission_intent("sid-a", a)
    fp_b = ledger.record_submission_intent("sid-b", b)
    assert fp_a and fp_b and fp_a != fp_b
    assert ledger.record_submission_intent("sid-a", a) == fp_a  # a re-drive returns the stored one
    rows = {r["submission_id"]: r for r in ledger.submissions()}
    assert rows["sid-a"]["request"] == rows["sid-b"]["request"]  # masked alike...
    assert rows["sid-a"]["env_fingerprint"] == fp_a  # ...told apart by the digest
    assert fingerprint_matches(a, fp_a) and fingerprint_matches(b, fp_b)
    assert not fingerprint_matches(b, fp_a) and not fingerprint_matches(a, fp_b)
    assert environment_fingerprint(a) != fp_a  # a fresh salt each time: equal values, other digest
    assert environment_fingerprint({"jobName": "j"}) is None and ledger.record_submission_intent("sid-c", {}) is None
    assert fingerprint_matches(a, None)  # a row from before fingerprints: the masked request decides
    ledger.close()
    disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"s1-secret-a" not in disk and b"s1-secret-b" not in disk


def test_a_ledger_from_before_fingerprints_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE submissions (submission_id TEXT PRIMARY KEY, requested_at TEXT NOT NULL, "
        "request TEXT NOT NULL, writer TEXT NOT NULL, finished_at TEXT, job_id TEXT, outcome TEXT, error TEXT)"
    )
    conn.execute("INSERT INTO submissions VALUES ('old', '2026-01-24T12:00:00+00:00', '{}', 'old:1', "
                 "NULL, NULL, NULL, NULL)")
    conn.commit()
    conn.close()
    path.chmod(0o600)
    ledger = Ledger(path)
    (old,) = ledger.submissions()
    assert old["env_fingerprint"] is None
    env = {"containerOverrides": {"environment": [{"name": "K", "value": "v"}]}}
    assert ledger.record_submission_intent("new", env) is not None
    ledger.close()
