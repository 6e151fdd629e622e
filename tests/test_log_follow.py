"""Reading a growing ``.nextflow.log`` again scans only what was appended (LogFollower).

Adversaries first (the run view decides which jobs the kill plan may take): a log read in
pieces — cut anywhere, even inside a line — must give exactly the scan and the run view
of one full read; a log rotated away by a relaunch, truncated or rewritten to the same
size must be read again from its start. Each way of telling a file apart (inode, first bytes,
bytes before the offset, modification time, a cut last line) has a test that fails
without it; a shrink is also caught by the bytes before the offset.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.errors import NextflowReadError
from batchkit.nextflow import NextflowRun
from batchkit.nextflow import log as log_module
from batchkit.nextflow.log import LogFollower, LogScan, scan_log_file
from batchkit.nextflow.run import ReloadMemo
from batchkit.nextflow.weblog import WeblogReceiver
from batchkit.schema import TaskCol
from tests.conftest import real_fixture

H1, H2, H3 = "ab/cdef12", "12/345678", "9f/00aa11"
WD = "s3://b/work"


def _wd(short: str) -> str:
    return f"{WD}/{short[:2]}/{short[3:]}{'0' * 24}"


#: A log with every kind of line the scan keeps state across: multi-line events
#: (in-flight dump, Error executing + Caused by), a kill sweep, an abort, the end.
LOG = "\n".join([
    "Mar-01 08:00:00.000 [main] DEBUG nextflow.cli.Launcher - $> nextflow run main.nf -with-trace trace.txt",
    "Mar-01 08:00:00.100 [main] INFO  nextflow.cli.CmdRun - N E X T F L O W  ~  version 24.10.5",
    "Mar-01 08:00:00.200 [main] DEBUG nextflow.Session - Session UUID: 11111111-2222-4333-8444-555555555555",
    "Mar-01 08:00:00.300 [main] DEBUG nextflow.Session - Run name: happy_run",
    "Mar-01 08:00:00.400 [main] DEBUG n.c.aws.batch.AwsBatchExecutor - [AWS BATCH] Executor options=AwsOptions(region:eu-west-1)",
    "Mar-01 08:00:01.000 [main] DEBUG nextflow.executor.Executor - [warm up] executor > awsbatch",
    *(
        line
        for i, h in enumerate((H1, H2, H3), start=1)
        for line in (
            f"Mar-01 08:0{i}:00.000 [Task submitter] DEBUG n.c.aws.batch.AwsBatchTaskHandler - [AWS BATCH] "
            f"Process `ALIGN ({i})` submitted > job=job-{i}; work-dir={_wd(h)}",
            f"Mar-01 08:0{i}:00.001 [Task submitter] INFO  nextflow.Session - [{h}] Submitted process > ALIGN ({i})",
        )
    ),
    "Mar-01 08:05:00.000 [Task monitor] DEBUG n.processor.TaskPollingMonitor - !! executor awsbatch > tasks to be completed: 2 -- submitted tasks are shown below",
    f"~> TaskHandler[id: 1; name: ALIGN (1); status: RUNNING; exit: -; error: -; workDir: {_wd(H1)} started: 1709280000000; exited: -; ]",
    f"~> TaskHandler[id: 2; name: ALIGN (2); status: RUNNING; exit: -; error: -; workDir: {_wd(H2)} started: -; exited: -; ]",
    f"Mar-01 08:06:00.000 [Task monitor] DEBUG n.processor.TaskPollingMonitor - Task completed > TaskHandler[id: 1; name: ALIGN (1); status: COMPLETED; exit: 0; error: -; workDir: {_wd(H1)}]",
    "Mar-01 08:07:00.000 [Task monitor] ERROR nextflow.processor.TaskProcessor - Error executing process > 'ALIGN (2)'",
    "",
    "Caused by:",
    "  Essential container in task exited",
    "",
    "Mar-01 08:08:00.000 [main] DEBUG nextflow.Session - Session aborted -- Cause: SIGINT",
    "Mar-01 08:08:00.100 [main] DEBUG n.processor.TaskPollingMonitor - Killing running tasks (1)",
    "Mar-01 08:08:00.200 [main] DEBUG n.c.aws.batch.AwsBatchTaskHandler - [AWS BATCH] killing job=job-3; response=ok",
    "Mar-01 08:08:01.000 [main] DEBUG nextflow.script.ScriptRunner - > Execution complete -- Goodbye",
    "",
]).encode()  # fmt: skip


def _scan_or_error(read: object, path: Path) -> LogScan | str:
    try:
        return read(path)  # type: ignore[operator, no-any-return]
    except NextflowReadError as exc:
        return f"refused: {exc}"


def _cuts(data: bytes, rng: random.Random, *, at_line_ends: bool) -> list[int]:
    """Where to cut ``data`` into appends: anywhere (inside lines too), or at line ends only."""
    if at_line_ends:
        ends = [i + 1 for i, b in enumerate(data) if b == ord("\n")]
        cuts = sorted(rng.sample(ends, k=min(len(ends), rng.randint(1, 12))))
    else:
        cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(1, 12))))
    return [*cuts, len(data)]


def _append_and_compare(data: bytes, cuts: list[int], path: Path) -> LogFollower:
    """Append ``data`` piece by piece; after each piece the follower's scan is the full read's."""
    follower = LogFollower()
    path.write_bytes(b"")
    done = 0
    for cut in cuts:
        with path.open("ab") as fh:
            fh.write(data[done:cut])
        done = cut
        assert _scan_or_error(follower.scan, path) == _scan_or_error(scan_log_file, path), f"after {cut} bytes"
    return follower


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), at_line_ends=st.booleans())
def test_a_log_appended_in_pieces_scans_as_one_full_read(tmp_path: Path, seed: int, at_line_ends: bool) -> None:
    rng = random.Random(seed)
    cuts = _cuts(LOG, rng, at_line_ends=at_line_ends)
    follower = _append_and_compare(LOG, cuts, tmp_path / ".nextflow.log")
    if at_line_ends:
        assert follower.full_scans == 1  # every later read continued where the last one stopped


@pytest.mark.parametrize(
    "name",
    ["awsbatch-sigint-24.10.5.nextflow.log", "slurm-sigint-abort.nextflow.log", "failed-launch-19.01.0.nextflow.log"],
)
@pytest.mark.parametrize("at_line_ends", [True, False], ids=["line-ends", "anywhere"])
def test_a_real_log_appended_in_pieces_scans_as_one_full_read(tmp_path: Path, name: str, at_line_ends: bool) -> None:
    data = real_fixture(name).read_bytes()
    for seed in range(5):
        _append_and_compare(data, _cuts(data, random.Random(seed), at_line_ends=at_line_ends), tmp_path / ".nextflow.log")


def _view(run: NextflowRun) -> dict[str, object]:
    """What the tracker and the kill plan read from a run."""
    return {
        "fields": (run.name, run.session_id, run.version, run.work_dir, run.launch_time, run.end_time, run.state,
                   run.abort_cause, run.abort_time, run.last_activity, run.log_paths, run.executors, run.region,
                   run.recorded_by, run.contradicted_ids,
                   [(o.name, o.session_id, o.source, o.job_ids, o.hashes) for o in run.other_runs]),
        "log": None if run.log is None else (run.log.killed_job_ids, run.log.kill_requested_job_ids,
                                             run.log.killed_count, run.log.completed, run.log.year),
    }  # fmt: skip


def assert_same_run(got: NextflowRun, expected: NextflowRun) -> None:
    assert _view(got) == _view(expected)
    pd.testing.assert_frame_equal(got.tasks, expected.tasks)


@pytest.mark.parametrize("name", ["awsbatch-sigint-24.10.5.nextflow.log", "slurm-sigint-abort.nextflow.log"])
def test_reloading_a_growing_real_log_gives_the_full_reads_run(tmp_path: Path, name: str) -> None:
    data = real_fixture(name).read_bytes()
    log = tmp_path / ".nextflow.log"
    done = data.index(b"\n") + 1  # from the first line on, the file is a log
    log.write_bytes(data[:done])
    run = NextflowRun.from_dir(tmp_path, tz="UTC", year=2025)
    for cut in [c for c in _cuts(data, random.Random(7), at_line_ends=False) if c > done]:
        with log.open("ab") as fh:
            fh.write(data[done:cut])
        done = cut
        run = run.reload()
        assert_same_run(run, NextflowRun.from_dir(tmp_path, tz="UTC", year=2025))


def test_an_unchanged_or_appended_log_is_not_read_again_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / ".nextflow.log"
    lines = LOG.splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:8]))
    run = NextflowRun.from_dir(tmp_path, tz="UTC", year=2025)
    follower = LogFollower()
    follower.scan(log)
    follower.scan(log)
    with log.open("ab") as fh:
        fh.write(b"".join(lines[8:]))
    assert follower.scan(log) == scan_log_file(log)
    assert follower.full_scans == 1
    assert_same_run(run.reload(), NextflowRun.from_dir(tmp_path, tz="UTC", year=2025))


# --- the file is not the one read before: read it again from its start ---------------------


def _followed(path: Path, data: bytes) -> LogFollower:
    path.write_bytes(data)
    follower = LogFollower()
    assert follower.scan(path) == scan_log_file(path)
    return follower


def _same_times(path: Path, stat: os.stat_result) -> None:
    """An adversary's rewrite leaves the modification time as it was."""
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_same_size_rewrite_with_other_first_bytes_is_read_again(tmp_path: Path) -> None:
    log = tmp_path / ".nextflow.log"
    body = _with_a_submit_in_the_middle()
    follower = _followed(log, body)
    before = log.stat()
    other = body.replace(b"Mar-01 08:00:00.000", b"Apr-02 09:00:00.000", 1)
    assert len(other) == len(body) and other != body
    with log.open("r+b") as fh:  # in place: same inode
        fh.write(other)
    _same_times(log, before)
    assert follower.scan(log) == scan_log_file(log)
    assert follower.scan(log).first_when is not None and follower.scan(log).first_when[1] == 4
    assert follower.full_scans == 2


def test_a_same_size_rewrite_of_the_last_lines_is_read_again(tmp_path: Path) -> None:
    log = tmp_path / ".nextflow.log"
    body = _with_a_submit_in_the_middle()
    follower = _followed(log, body)
    before = log.stat()
    other = body.replace(b"killing job=job-6", b"killing job=job-9")
    assert len(other) == len(body)
    with log.open("r+b") as fh:
        fh.write(other)
    _same_times(log, before)
    assert follower.scan(log).killed == ["job-3", "job-9"] == scan_log_file(log).killed


def _with_a_submit_in_the_middle() -> bytes:
    """LOG; a submit line of job-5 more than a fingerprint away from both ends; a kill of job-6 last."""

    def filler(hour: int) -> bytes:
        return b"".join(
            f"Mar-01 {hour:02d}:{i // 60:02d}:{i % 60:02d}.000 [main] DEBUG x.Filler - filler line {i:05d}\n".encode()
            for i in range(100)
        )

    submit = (
        "Mar-01 09:59:59.000 [Task submitter] DEBUG n.c.aws.batch.AwsBatchTaskHandler - [AWS BATCH] "
        f"Process `MERGE` submitted > job=job-5; work-dir={_wd('77/777777')}\n"
    ).encode()
    kill = b"Mar-01 11:00:00.000 [main] DEBUG n.c.aws.batch.AwsBatchTaskHandler - [AWS BATCH] killing job=job-6; response=ok\n"
    body = LOG + filler(9) + submit + filler(10) + kill
    assert body.index(submit) > 4096 and len(body) - body.index(submit) > 4096 + len(submit)
    return body


def test_a_same_size_rewrite_in_the_middle_is_read_again_by_its_time(tmp_path: Path) -> None:
    log = tmp_path / ".nextflow.log"
    body = _with_a_submit_in_the_middle()
    follower = _followed(log, body)
    other = body.replace(b"job=job-5;", b"job=job-7;")
    assert len(other) == len(body)
    before = log.stat()
    with log.open("r+b") as fh:
        fh.write(other)
    os.utime(log, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert follower.scan(log) == scan_log_file(log)
    assert "job-7" in follower.scan(log).cloud_job_ids


def test_a_replaced_file_with_the_same_ends_is_read_again_by_its_inode(tmp_path: Path) -> None:
    log = tmp_path / ".nextflow.log"
    body = _with_a_submit_in_the_middle()
    follower = _followed(log, body)
    before = log.stat()
    new = tmp_path / "new.log"
    new.write_bytes(body.replace(b"job=job-5;", b"job=job-7;"))
    _same_times(new, before)
    keep = tmp_path / "keep"  # hold the old inode so that the new file cannot reuse its number
    os.link(log, keep)
    os.replace(new, log)
    assert log.stat().st_ino != before.st_ino
    assert follower.scan(log) == scan_log_file(log)
    assert "job-7" in follower.scan(log).cloud_job_ids


def test_a_truncated_log_written_again_is_read_again(tmp_path: Path) -> None:
    log = tmp_path / ".nextflow.log"
    follower = _followed(log, LOG)
    cut = LOG.index(b"Mar-01 08:05")
    with log.open("r+b") as fh:
        fh.truncate(cut)
    assert follower.scan(log) == scan_log_file(log)
    with log.open("ab") as fh:
        fh.write(LOG[cut:].replace(b"job-3", b"job-8"))
    assert follower.scan(log) == scan_log_file(log)
    assert follower.scan(log).killed == ["job-8"]


def test_a_line_cut_by_a_write_in_progress_is_read_again_once_complete(tmp_path: Path) -> None:
    log = tmp_path / ".nextflow.log"
    cut = LOG.index(b"Submitted process > ALIGN (1)") + len(b"Submitted process > AL")
    follower = _followed(log, LOG[:cut])
    assert "AL" in {row.get(TaskCol.NAME) for row in follower.scan(log).tasks.values()}  # as a full read has it
    with log.open("ab") as fh:
        fh.write(LOG[cut:])
    scan = follower.scan(log)
    assert scan == scan_log_file(log)
    assert "AL" not in {row.get(TaskCol.NAME) for row in scan.tasks.values()}


def test_a_file_that_is_no_log_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    log = tmp_path / ".nextflow.log"
    log.write_bytes(b"executor >  awsbatch (5)\n")
    follower = LogFollower()
    with pytest.raises(NextflowReadError):
        follower.scan(log)
    log.write_bytes(LOG)
    assert follower.scan(log) == scan_log_file(log)


def test_a_log_rotated_by_a_relaunch_is_followed_to_its_new_name(tmp_path: Path) -> None:
    log, rotated = tmp_path / ".nextflow.log", tmp_path / ".nextflow.log.1"
    lines = LOG.splitlines(keepends=True)
    follower = _followed(log, b"".join(lines[:10]))
    log.rename(rotated)  # logback's RollOnStartupPolicy, then the relaunch's own log
    log.write_bytes(LOG.replace(b"happy_run", b"other_run"))
    with rotated.open("ab") as fh:  # the old launch wrote on before it stopped
        fh.write(b"".join(lines[10:]))
    assert follower.scan(rotated) == scan_log_file(rotated)
    assert follower.scan(rotated).path == str(rotated)
    assert follower.full_scans == 1  # the rotated log's scan went on where it stopped
    assert follower.scan(log) == scan_log_file(log)
    assert follower.scan(log).run_name == "other_run" and follower.full_scans == 2


def test_a_reload_holds_the_followers_lock_while_it_uses_the_scans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tracker's refresh thread and a reload by hand share the run's follower: the scans
    must not change while a reload builds the run from them (a dict changing size while
    the frame is built)."""
    log = tmp_path / ".nextflow.log"
    last_line = LOG.rstrip(b"\n").rindex(b"\n") + 1
    log.write_bytes(LOG[:last_line])
    follower = LogFollower()
    run = NextflowRun.from_dir(tmp_path, tz="UTC", year=2025, follower=follower)
    with log.open("ab") as fh:  # appended: the reload builds the run again (an unchanged log is reused)
        fh.write(LOG[last_line:])
    order: list[str] = []
    building = threading.Event()
    build = log_module.build_log_info

    def slow_build(*args: Any, **kwargs: Any) -> Any:
        building.set()
        time.sleep(0.3)
        order.append("built")
        return build(*args, **kwargs)

    monkeypatch.setattr(log_module, "build_log_info", slow_build)
    reload = threading.Thread(target=run.reload)
    reload.start()
    assert building.wait(30)
    follower.scan(log)  # another user of the follower, while the reload builds
    order.append("scanned")
    reload.join()
    assert order == ["built", "scanned"]


# --- a reload of an unchanged launch dir reuses its run view (ReloadMemo) ---------------------

SESSION = "11111111-2222-4333-8444-555555555555"
TRACE_HEAD = "task_id\thash\tnative_id\tname\tstatus\texit\tsubmit\tworkdir\tqueue\n"


def _trace_row(i: int, short: str, status: str, job: str) -> str:
    return f"{i}\t{short}\t{job}\tALIGN ({i})\t{status}\t0\t2025-03-01 08:0{i}:00.000\t{_wd(short)}\tq1\n"


def _weblog_event(status: str) -> bytes:
    trace = {"task_id": 3, "hash": H3, "native_id": "job-3", "name": "ALIGN (3)", "process": "ALIGN",
             "status": status, "exit": 0, "attempt": 1, "submit": 1709280180000, "workdir": _wd(H3)}  # fmt: skip
    body = {"runName": "happy_run", "runId": SESSION, "event": "process_completed",
            "utcTime": "2025-03-01T08:09:00Z", "trace": trace}  # fmt: skip
    return json.dumps(body).encode()


def _launch_dir(folder: Path, *, with_trace: bool = True) -> None:
    """A dead run's launch dir with every input kind: log (aborted half-way), trace, config, history."""
    cut = LOG.index(b"Mar-01 08:07:00.000")
    (folder / ".nextflow.log").write_bytes(LOG[:cut])
    if with_trace:
        (folder / "trace.txt").write_text(TRACE_HEAD + _trace_row(1, H1, "COMPLETED", "job-1"))
    (folder / "nextflow.config").write_text("includeConfig 'conf/queue.config'\n")
    (folder / "conf").mkdir()
    (folder / "conf" / "queue.config").write_text("process.queue = 'q1'\n")
    (folder / ".nextflow").mkdir()
    (folder / ".nextflow" / "history").write_text(
        f"2025-03-01 08:00:00\t-\thappy_run\t-\tabc\t{SESSION}\tnextflow run main.nf\n"
    )


def _later(path: Path) -> None:
    """Move the modification time on (a coarse clock may not have ticked since the last write)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def _append_log(folder: Path, weblog: WeblogReceiver) -> None:
    with (folder / ".nextflow.log").open("ab") as fh:
        fh.write(LOG[LOG.index(b"Mar-01 08:07:00.000") :])


def _relaunch(folder: Path, weblog: WeblogReceiver) -> None:
    log = folder / ".nextflow.log"
    log.rename(folder / ".nextflow.log.1")  # logback's RollOnStartupPolicy
    log.write_bytes(LOG[: LOG.index(b"Mar-01 08:01")].replace(b"happy_run", b"other_run").replace(b"1111-2222", b"1111-9999"))


def _rewrite_log_same_size(folder: Path, weblog: WeblogReceiver) -> None:
    log = folder / ".nextflow.log"
    stat = log.stat()
    log.write_bytes(log.read_bytes().replace(b"job=job-3", b"job=job-7"))
    _same_times(log, stat)  # only the bytes tell


def _append_trace_row(folder: Path, weblog: WeblogReceiver) -> None:
    with (folder / "trace.txt").open("a") as fh:
        fh.write(_trace_row(2, H2, "FAILED", "job-2"))


def _rewrite_trace_same_size(folder: Path, weblog: WeblogReceiver) -> None:
    trace = folder / "trace.txt"
    trace.write_text(trace.read_text().replace("job-1", "job-8"))
    _later(trace)


def _new_trace(folder: Path, weblog: WeblogReceiver) -> None:
    (folder / "trace.txt").write_text(TRACE_HEAD + _trace_row(1, H1, "COMPLETED", "job-1"))


def _new_weblog_event(folder: Path, weblog: WeblogReceiver) -> None:
    weblog.ingest(_weblog_event("COMPLETED"))


def _change_config(folder: Path, weblog: WeblogReceiver) -> None:
    config = folder / "nextflow.config"
    config.write_text("includeConfig 'conf/queue.config'\nprocess.queue = 'q2'\n")
    _later(config)


def _change_included_config(folder: Path, weblog: WeblogReceiver) -> None:
    config = folder / "conf" / "queue.config"
    config.write_text("process.queue = 'q3'\n")
    _later(config)


def _change_history(folder: Path, weblog: WeblogReceiver) -> None:
    with (folder / ".nextflow" / "history").open("a") as fh:
        fh.write("2025-03-01 09:00:00\t-\tother_run\t-\tabc\t22222222-2222-4333-8444-555555555555\tnextflow run x\n")


def _memo_view(run: NextflowRun) -> tuple[object, ...]:
    """What the run view holds beyond ``_view`` that a changed input may change."""
    return (run.queue_sources, run.trace_paths, run.config_files, run.sources)


def _read(folder: Path, weblog: WeblogReceiver, memo: ReloadMemo | None = None) -> NextflowRun:
    return NextflowRun.from_dir(folder, tz="UTC", year=2025, weblog=weblog, memo=memo)


def _assert_same_view(got: NextflowRun, expected: NextflowRun) -> None:
    assert_same_run(got, expected)
    assert _memo_view(got) == _memo_view(expected)


@pytest.mark.parametrize(
    "change",
    [_append_log, _relaunch, _rewrite_log_same_size, _append_trace_row, _rewrite_trace_same_size, _new_trace,
     _new_weblog_event, _change_config, _change_included_config, _change_history],
)  # fmt: skip
def test_a_reload_after_any_input_changed_builds_the_fresh_reads_view(tmp_path: Path, change: Any) -> None:
    _launch_dir(tmp_path, with_trace=change is not _new_trace)
    weblog = WeblogReceiver(session_id=SESSION)
    memo = ReloadMemo()
    run = _read(tmp_path, weblog, memo).reload()  # the view and every file it was read from kept
    assert run.reload() is run and memo.builds == 2  # unchanged: reused
    change(tmp_path, weblog)
    fresh = _read(tmp_path, weblog)
    assert _view(run) != _view(fresh) or _memo_view(run) != _memo_view(fresh) or not run.tasks.equals(fresh.tasks)
    got = run.reload()
    assert memo.builds == 3 and got is not run
    _assert_same_view(got, fresh)


def test_an_unchanged_launch_dir_reuses_the_view_and_it_is_the_fresh_reads(tmp_path: Path) -> None:
    _launch_dir(tmp_path)
    weblog = WeblogReceiver(session_id=SESSION)
    weblog.ingest(_weblog_event("RUNNING"))
    memo = ReloadMemo()
    run = _read(tmp_path, weblog, memo)
    views = [run.reload() for _ in range(3)]
    assert memo.builds == 2  # the first reload covers the config files the first read found
    assert views[1] is views[0] and views[2] is views[0]
    _assert_same_view(views[-1], _read(tmp_path, weblog))


def test_from_files_reuses_an_unchanged_view_and_rebuilds_after_a_relaunch(tmp_path: Path) -> None:
    _launch_dir(tmp_path)
    memo = ReloadMemo()
    files = {"log": tmp_path / ".nextflow.log", "trace": tmp_path / "trace.txt", "tz": "UTC", "year": 2025}
    run = NextflowRun.from_files(**files, memo=memo).reload()  # type: ignore[arg-type]
    assert run.reload() is run and memo.builds == 2
    _relaunch(tmp_path, WeblogReceiver())  # the path given is the relaunch's log now
    got = run.reload()
    assert memo.builds == 3 and got.name == "other_run"
    _assert_same_view(got, NextflowRun.from_files(**files))  # type: ignore[arg-type]
