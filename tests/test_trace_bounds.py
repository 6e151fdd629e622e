"""Bounded work in the trace reader: streamed in blocks, limits on columns and lines, regular files only."""

from __future__ import annotations

import io
import os
import time
from datetime import UTC
from pathlib import Path

import pandas as pd
import pytest
from conftest import real_fixture

from batchkit.errors import NextflowReadError
from batchkit.nextflow import read_trace
from batchkit.nextflow.trace import MAX_FIELDS, parse_trace_bytes, parse_trace_stream

HEADER = "task_id\thash\tnative_id\tname\tstatus\texit\tsubmit\trealtime\tpeak_rss"


def _row(i: int) -> str:
    return f"{i}\t{i % 256:02x}/{i:06x}\tjob-{i}\tP ({i})\tCOMPLETED\t0\t2025-03-0{1 + i % 9} 10:00:00.{i % 1000:03d}\t{i}ms\t{i % 7}.5 MB"


@pytest.mark.parametrize("block", [64, 1000, 1 << 20])
def test_blocks_read_row_for_row_as_the_whole_file(block: int) -> None:
    data = real_fixture("openproblems-awsbatch-trace.txt").read_bytes()
    whole = parse_trace_bytes(data, tz=UTC)
    streamed = parse_trace_stream(io.BytesIO(data), tz=UTC, block_bytes=block)
    pd.testing.assert_frame_equal(whole, streamed)
    assert len(streamed) == 864


def test_errors_name_the_right_line_across_blocks() -> None:
    rows = [_row(i) for i in range(1, 200)]
    rows[150] += "\textra"
    data = ("\n".join([HEADER, *rows]) + "\n").encode()
    with pytest.raises(NextflowReadError) as err:
        parse_trace_stream(io.BytesIO(data), tz=UTC, block_bytes=100)
    assert err.value.line == 152  # header is line 1, rows[0] line 2


def test_a_half_written_last_line_is_dropped_in_the_last_block() -> None:
    rows = [_row(i) for i in range(1, 50)]
    data = ("\n".join([HEADER, *rows]) + "\n" + _row(50)[:20]).encode()
    frame = parse_trace_stream(io.BytesIO(data), tz=UTC, block_bytes=97)
    assert len(frame) == 49 and any("line 51" in w for w in frame.attrs["warnings"])


def test_a_million_columns_is_refused_fast_with_the_limit() -> None:
    header = "\t".join(f"f{i}" for i in range(1_000_000)) + "\n"
    started = time.perf_counter()
    with pytest.raises(NextflowReadError, match=f"at most {MAX_FIELDS}"):
        parse_trace_bytes(header.encode(), tz=UTC)
    assert time.perf_counter() - started < 2.0


def test_many_columns_within_the_limit_are_read() -> None:
    extra = [f"custom_{i}" for i in range(MAX_FIELDS - 3)]
    header = "\t".join(["task_id", "hash", "status", *extra])
    row = "\t".join(["1", "ab/cdef12", "COMPLETED", *("x" for _ in extra)])
    frame = parse_trace_bytes(f"{header}\n{row}\n".encode(), tz=UTC)
    assert len(frame) == 1 and frame.iloc[0]["custom_5"] == "x"


def test_fifo_and_devices_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "trace.txt"
    os.mkfifo(fifo)
    with pytest.raises(NextflowReadError, match="not a regular file"):
        read_trace(fifo, tz="UTC")
    with pytest.raises(NextflowReadError, match="not a regular file"):
        read_trace("/dev/zero", tz="UTC")


def test_a_sparse_file_is_refused_never_an_empty_run(tmp_path: Path) -> None:
    zeros = tmp_path / "zeros.txt"
    with zeros.open("wb") as fh:
        fh.truncate(64 << 20)
    with pytest.raises(NextflowReadError, match="not a trace header"):
        read_trace(zeros, tz="UTC")
    headed = tmp_path / "trace.txt"
    with headed.open("wb") as fh:
        fh.write((HEADER + "\n" + _row(1) + "\n").encode())
        fh.truncate(64 << 20)  # a header, a row, then 64 MiB of zeros without a line end
    with pytest.raises(NextflowReadError, match="longer than 1 MiB") as err:
        read_trace(headed, tz="UTC")
    assert err.value.line == 3


def test_a_compressed_file_says_so(tmp_path: Path) -> None:
    import gzip

    from batchkit.nextflow import read_log

    trace = tmp_path / "trace.txt.gz"
    trace.write_bytes(gzip.compress((HEADER + "\n" + _row(1) + "\n").encode()))
    with pytest.raises(NextflowReadError, match="gzip-compressed: decompress it first"):
        read_trace(trace, tz="UTC")
    log = tmp_path / ".nextflow.log.gz"
    log.write_bytes(gzip.compress(b"Jan-24 12:49:23.194 [main] DEBUG nextflow.cli.Launcher - $> nextflow run x\n"))
    with pytest.raises(NextflowReadError, match="gzip-compressed"):
        read_log(log, tz="UTC")
