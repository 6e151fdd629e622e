"""The trace reader against real traces and hand-written ones in every supported shape."""

from __future__ import annotations

import csv
import logging
import random
import re
from datetime import UTC
from pathlib import Path

import pandas as pd
import pytest
from conftest import real_fixture

from batchkit.errors import NextflowReadError
from batchkit.nextflow import read_trace
from batchkit.nextflow.trace import parse_trace_bytes
from batchkit.schema import TASK_COLUMNS, TASK_DTYPES, TaskCol

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DEFAULT_HEADER = "task_id\thash\tnative_id\tname\tstatus\texit\tsubmit\tduration\trealtime\t%cpu\tpeak_rss\tpeak_vmem\trchar\twchar"


def write(path: Path, *lines: str, end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end)
    return path


def assert_schema(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns[: len(TASK_COLUMNS)]) == TASK_COLUMNS
    for col in TASK_COLUMNS:
        assert str(frame[col].dtype) == TASK_DTYPES[col], col


# --- real traces ------------------------------------------------------------------------


def test_openproblems_awsbatch_trace_reads_exactly() -> None:
    path = real_fixture("openproblems-awsbatch-trace.txt")
    frame = read_trace(path, tz="UTC")
    assert_schema(frame)
    assert len(frame) == 864
    assert frame[TaskCol.STATUS].value_counts().to_dict() == {"COMPLETED": 852, "FAILED": 12}
    assert frame[TaskCol.NATIVE_ID].str.fullmatch(UUID_RE.pattern).all()
    assert set(frame.loc[frame[TaskCol.STATUS] == "FAILED", TaskCol.EXIT]) == {137}
    assert (frame[TaskCol.SOURCE] == "trace").all()
    # every duration, memory and percent present in the file was parsed
    with path.open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    for col in ("duration", "realtime", "%cpu", "peak_rss", "peak_vmem", "rchar", "wchar"):
        present = pd.Series([r[col] != "-" for r in rows])
        assert present.sum() > 800, col
        assert frame[col].notna().to_numpy().tolist() == present.tolist(), col
    first = frame.iloc[0]
    assert first[TaskCol.REALTIME] == pd.Timedelta("16.2s")
    assert first["duration"] == pd.Timedelta(minutes=7, seconds=8)
    assert first["%cpu"] == pytest.approx(47.6)
    assert first["peak_rss"] == round(206.9 * 1024**2)
    assert first["wchar"] == round(42.4 * 1024)
    assert first[TaskCol.SUBMIT] == pd.Timestamp("2022-05-13 03:02:26.406", tz="UTC")
    named = frame[frame[TaskCol.NAME] == "list_datasets (batch_integration_graph)"].iloc[0]
    assert (named[TaskCol.PROCESS], named[TaskCol.TAG]) == ("list_datasets", "batch_integration_graph")


def test_local_aborted_trace_gives_two_aborted_tasks() -> None:
    frame = read_trace(real_fixture("local-aborted-trace.txt"), tz="UTC")
    aborted = frame[frame[TaskCol.STATUS] == "ABORTED"]
    assert list(aborted[TaskCol.TASK_ID]) == [2, 4]
    assert list(aborted[TaskCol.NATIVE_ID]) == ["5114", "5520"]  # PIDs, kept as text
    assert aborted[TaskCol.EXIT].isna().all() and aborted[TaskCol.REALTIME].isna().all()


def test_local_times_get_the_given_zone_and_become_utc() -> None:
    frame = read_trace(real_fixture("openproblems-awsbatch-trace.txt"), tz="Europe/Paris")
    assert frame[TaskCol.SUBMIT].iloc[0] == pd.Timestamp("2022-05-13 01:02:26.406", tz="UTC")


# --- shapes ---------------------------------------------------------------------------


def test_raw_format_reads_milliseconds_bytes_and_epochs(tmp_path: Path) -> None:
    path = write(
        tmp_path / "trace.txt",
        "task_id\thash\tnative_id\tname\tstatus\texit\tsubmit\tstart\tcomplete\trealtime\t%cpu\tpeak_rss\tmemory\tcpus",
        "7\tab/cdef01\tjob-7\tALIGN (s1)\tCOMPLETED\t0\t1700000000123\t1700000005000\t1700000065000\t60000\t97.5\t1048576\t8589934592\t4",
    )
    row = read_trace(path, tz="Asia/Tokyo").iloc[0]
    assert row[TaskCol.SUBMIT] == pd.Timestamp(1700000000123, unit="ms", tz="UTC")  # epochs ignore tz
    assert row[TaskCol.COMPLETE] - row[TaskCol.START] == pd.Timedelta(minutes=1)
    assert row[TaskCol.REALTIME] == pd.Timedelta(minutes=1)
    assert row["%cpu"] == 97.5 and row["peak_rss"] == 1024**2
    assert row[TaskCol.MEMORY] == 8 * 1024**3 and row[TaskCol.CPUS] == 4.0


def test_any_field_order_subset_and_unknown_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "trace.txt",
        "status\tprocess\ttag\tnative_id\tfuture_field\tqueue\tworkdir\ttime\tdisk",
        "RUNNING\tNFCORE:FASTQC\tsample 1\t0a1b:3\tsomething new\tspot\ts3://b/work/3f/"
        + "0123456789abcdef0123456789abcd\t1d 2h 3m\t200 GB",
    )
    frame = read_trace(path, tz="UTC")
    assert_schema(frame)
    row = frame.iloc[0]
    assert row[TaskCol.NAME] == "NFCORE:FASTQC (sample 1)"
    assert row[TaskCol.NATIVE_ID] == "0a1b:3"  # array child "<jobId>:<index>" stays text
    assert row[TaskCol.HASH] == "3f/012345"  # from the work dir
    assert row["future_field"] == "something new"
    assert row["time"] == pd.Timedelta(days=1, hours=2, minutes=3)
    assert row["disk"] == 200 * 1024**3
    assert list(frame.columns[len(TASK_COLUMNS) :]) == ["future_field", "queue", "time", "disk"]


def test_dash_is_missing_everywhere(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", DEFAULT_HEADER, "\t".join(["-"] * 3 + ["X"] + ["-"] * 10))
    row = read_trace(path, tz="UTC").iloc[0]
    assert row[TaskCol.NAME] == "X" and pd.isna(row[TaskCol.HASH]) and pd.isna(row[TaskCol.STATUS])


@pytest.mark.parametrize(
    ("submit", "start"),
    [("2026-11-30 07:58:50.553", "2026-11-30 07:58:51.000"), ("1796025530553", "1796025531000")],
    ids=["human", "raw"],
)
def test_dash_dates_beside_real_dates_stay_missing(tmp_path: Path, submit: str, start: str) -> None:
    # an ABORTED row's "-" dates once read as epoch 0 (1970-01-01) when the column also held
    # dates, which dragged the run's launch time 57 years back and widened its kill scope
    path = write(
        tmp_path / "trace.txt",
        "task_id\thash\tnative_id\tname\tstatus\texit\tsubmit\tstart\tcomplete\tduration\trealtime",
        f"1\tab/cdef12\tj1\tA (1)\tCOMPLETED\t0\t{submit}\t{start}\t-\t60000\t1m",
        "2\tab/cdef13\tj2\tA (2)\tABORTED\t-\t-\t-\t-\t-\t-",
    )
    frame = read_trace(path, tz="UTC")
    first, aborted = frame.iloc[0], frame.iloc[1]
    assert first[TaskCol.SUBMIT].year == 2026 and first[TaskCol.START].year == 2026
    for col in (TaskCol.SUBMIT, TaskCol.START, TaskCol.COMPLETE, "duration", TaskCol.REALTIME):
        assert pd.isna(aborted[col]), col
    assert frame[TaskCol.SUBMIT].min().year == 2026


def test_real_aborted_trace_with_dash_submits_has_no_epoch_zero(tmp_path: Path) -> None:
    # the real trace with its ABORTED rows' submit cells made "-" (as Nextflow writes a task
    # aborted before it was submitted), beside the COMPLETED row's real date
    rows = real_fixture("local-aborted-trace.txt").read_text().splitlines()
    edited = [rows[0]] + [
        "\t".join([*f[:6], "-", *f[7:]]) if f[4] == "ABORTED" else row
        for row in rows[1:]
        for f in [row.split("\t")]
    ]
    frame = read_trace(write(tmp_path / "trace.txt", *edited), tz="UTC")
    aborted = frame[TaskCol.STATUS] == "ABORTED"
    assert aborted.sum() == 2 and frame.loc[aborted, TaskCol.SUBMIT].isna().all()
    assert frame[TaskCol.SUBMIT].min() == pd.Timestamp("2019-08-09 13:51:02.384", tz="UTC")
    original = read_trace(real_fixture("local-aborted-trace.txt"), tz="UTC")
    assert original[TaskCol.SUBMIT].notna().all() and original[TaskCol.SUBMIT].min().year == 2019


def test_resumed_run_two_traces_later_wins(tmp_path: Path) -> None:
    first = write(
        tmp_path / "trace-1.txt",
        "task_id\thash\tnative_id\tname\tstatus",
        "1\taa/000001\tjob-a\tA (1)\tCOMPLETED",
        "2\tbb/000002\tjob-b\tB (1)\tABORTED",
    )
    second = write(
        tmp_path / "trace-2.txt",
        "task_id\thash\tnative_id\tname\tstatus",
        "1\taa/000001\tjob-a\tA (1)\tCACHED",
        "2\tcc/000003\tjob-c\tB (1)\tCOMPLETED",
    )
    frame = read_trace([first, second], tz="UTC")
    by_hash = frame.set_index(TaskCol.HASH)[TaskCol.STATUS].to_dict()
    assert by_hash == {"aa/000001": "CACHED", "bb/000002": "ABORTED", "cc/000003": "COMPLETED"}


def test_half_written_last_line_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path / "trace.txt",
        "task_id\thash\tname\tstatus\tpeak_rss",
        "1\taa/000001\tA\tCOMPLETED\t1 MB",
        "2\tbb/000002\tB\tCOMPL",
        end="",
    )
    with caplog.at_level(logging.WARNING, logger="batchkit.nextflow.trace"):
        frame = read_trace(path, tz="UTC")
    assert list(frame[TaskCol.TASK_ID]) == [1]
    assert "half-written last line 3" in frame.attrs["warnings"][0]
    assert "half-written" in caplog.text


def test_cut_value_in_the_last_line_is_dropped_too(tmp_path: Path) -> None:
    path = write(
        tmp_path / "trace.txt",
        "task_id\thash\tname\tstatus\tsubmit",
        "1\taa/000001\tA\tCOMPLETED\t2024-01-02 03:04:05.678",
        "2\tbb/000002\tB\tCOMPLETED\t2024-01-02 03:0",
        end="",
    )
    frame = read_trace(path, tz="UTC")
    assert list(frame[TaskCol.TASK_ID]) == [1]
    assert frame.attrs["warnings"]


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", "task_id\tstatus", "1\tCOMPLETED", "2\tFAILED", end="")
    assert list(read_trace(path, tz="UTC")[TaskCol.STATUS]) == ["COMPLETED", "FAILED"]


def test_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(b"task_id\tstatus\r\n1\tCOMPLETED\r\n\r\n2\tFAILED\r\n")
    assert list(read_trace(path, tz="UTC")[TaskCol.TASK_ID]) == [1, 2]


def test_header_only_gives_an_empty_frame(tmp_path: Path) -> None:
    frame = read_trace(write(tmp_path / "t.txt", DEFAULT_HEADER), tz="UTC")
    assert len(frame) == 0
    assert_schema(frame)


# --- errors name the file, the line and what is wrong --------------------------------


def test_wrong_field_count_mid_file_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", "task_id\tstatus", "1\tCOMPLETED", "2\tFAILED\textra", "3\tCOMPLETED")
    with pytest.raises(NextflowReadError) as info:
        read_trace(path, tz="UTC")
    assert info.value.path == str(path) and info.value.line == 3
    assert "3 tab-separated fields" in str(info.value)


def test_unparseable_date_names_the_column(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", "task_id\tsubmit", "1\t2024-01-02 03:04:05.678", "2\tyesterday", "3\t-")
    with pytest.raises(NextflowReadError, match="'yesterday' in column submit") as info:
        read_trace(path, tz="UTC")
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("column", "value"),
    [("realtime", "fast"), ("peak_rss", "12 XB"), ("%cpu", "lots"), ("exit", "1.5"), ("status", "done ok")],
)
def test_bad_values_in_typed_columns(tmp_path: Path, column: str, value: str) -> None:
    path = write(tmp_path / "t.txt", f"task_id\t{column}", f"1\t{value}", "2\t-")
    with pytest.raises(NextflowReadError, match=f"in column {re.escape(column)}") as info:
        read_trace(path, tz="UTC")
    assert info.value.line == 2


def test_missing_header(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", "1\t46/ed53e6\t5083\tcheckDesign\tCOMPLETED")
    with pytest.raises(NextflowReadError, match="trace header missing") as info:
        read_trace(path, tz="UTC")
    assert info.value.line == 1


@pytest.mark.parametrize("content", [b"", b"\n\n", b"   "])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    with pytest.raises(NextflowReadError, match="empty"):
        read_trace(path, tz="UTC")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(NextflowReadError, match="no such trace file"):
        read_trace(tmp_path / "nope.txt")
    with pytest.raises(NextflowReadError, match="is a directory"):
        read_trace(tmp_path)


def test_unknown_zone_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NextflowReadError, match="unknown time zone"):
        read_trace(write(tmp_path / "t.txt", "task_id", "1"), tz="Mars/Olympus")


# --- a big trace: every fast path gives what small ones give ---------------------------


def test_big_trace_reads_as_its_pieces_do() -> None:
    """A 30,000-row trace goes through the speed paths (values gathered in cache-sized
    row blocks, repeated values parsed once, a sampled distinctness check); a trace of
    one row takes none of them. Each row must read the same either way."""
    rnd = random.Random(11)
    header = "task_id\thash\tname\tstatus\texit\tsubmit\tduration\trealtime\t%cpu\tpeak_rss\tmemory\tcpus\tworkdir\tnote"
    durations = ["352ms", "1.2s", "16.2s", "7m 8s", "4h 41m 19s", "1d 2h 3m", "59s", "-"]
    memories = ["206.9 MB", "8 GB", "1 KB", "512 B", "1.5 TB", "-", "99.9 KB"]
    rows = []
    for i in range(1, 30_001):
        h = f"{rnd.getrandbits(128):032x}"
        day, ms = rnd.randint(1, 28), rnd.randrange(86_400_000)
        submit = f"2024-03-{day:02d} {ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
        rows.append("\t".join([
            str(i), f"{h[:2]}/{h[2:8]}", rnd.choice(["ALIGN", "QC", "MERGE_ALL"]) + f" (s{rnd.randrange(10**rnd.randint(0, 5))})",
            rnd.choice(["COMPLETED", "FAILED", "CACHED"]), rnd.choice(["0", "1", "137", "-"]),
            rnd.choice([submit, submit, "-", str(1_700_000_000_000 + i)]), rnd.choice(durations),
            rnd.choice([*durations, str(rnd.randrange(10**6))]), rnd.choice(["47.6%", "100.0%", "3.1%", "-"]),
            rnd.choice(memories), rnd.choice(memories), rnd.choice(["1", "4", "0.5"]),
            f"s3://b/work/{h[:2]}/{h[2:]}", rnd.choice(["x", "é", "-", "a b c" * rnd.randint(0, 9)]),
        ]))  # fmt: skip
    whole = parse_trace_bytes(("\n".join([header, *rows]) + "\n").encode(), tz=UTC)
    picked = sorted({0, len(rows) - 1, *rnd.sample(range(len(rows)), 120)})
    singles = [parse_trace_bytes(f"{header}\n{rows[i]}\n".encode(), tz=UTC) for i in picked]
    assert len(whole) == 30_000
    expected = pd.concat(singles, ignore_index=True)
    pd.testing.assert_frame_equal(whole.iloc[picked].reset_index(drop=True), expected, check_exact=True)
