"""Read Nextflow trace files (``-with-trace``) into a task frame (docs/ARCHITECTURE.md §3).

A trace is tab-separated with one header line naming its fields, ``-`` for a
missing value. Any subset and order of ``TraceRecord.FIELDS`` may appear, in
human or raw (``trace.raw = true``) formats; unknown fields are kept as text.
Rows are appended as tasks complete, so a trace read while Nextflow runs may end
in a half-written line: that line is dropped with a warning
(``frame.attrs["warnings"]`` and the ``batchkit.nextflow.trace`` logger).

Parsing is vectorized, with no per-row Python loop: one numpy scan of the raw
bytes finds every tab and newline (and so checks each line's field count); the
values are copied out as fixed-width numpy bytes columns, a cache-sized block of
rows at a time; typed columns are converted by the numpy parsers in
``_formats``, each distinct value once when a column repeats its values
(status, exit, memory, durations at their printed precision).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, BinaryIO, Final, TypeAlias

import numpy as np
import pandas as pd

from batchkit.errors import NextflowReadError
from batchkit.nextflow import _formats as fmt
from batchkit.schema import TaskCol

#: numpy arrays; numpy is untyped for mypy here (pyproject overrides), so this is Any.
Array: TypeAlias = Any

log = logging.getLogger(__name__)

PathLike = str | Path

#: Trace fields and their TraceRecord types (nextflow.trace.TraceRecord.FIELDS).
TRACE_FIELD_TYPES: Final[dict[str, str]] = {
    "task_id": "int", "hash": "str", "native_id": "str", "process": "str", "module": "str",
    "container": "str", "tag": "str", "name": "str", "status": "status", "exit": "exit",
    "submit": "date", "start": "date", "complete": "date", "duration": "time",
    "realtime": "time", "%cpu": "perc", "%mem": "perc", "rss": "mem", "vmem": "mem",
    "peak_rss": "mem", "peak_vmem": "mem", "rchar": "mem", "wchar": "mem", "syscr": "int",
    "syscw": "int", "read_bytes": "mem", "write_bytes": "mem", "attempt": "int",
    "workdir": "str", "script": "str", "scratch": "str", "queue": "str", "cpus": "float",
    "memory": "mem", "disk": "mem", "time": "time", "env": "str", "error_action": "str",
    "vol_ctxt": "int", "inv_ctxt": "int", "hostname": "str", "cpu_model": "str",
    "accelerator": "str", "accelerator_type": "str",
}  # fmt: skip

_IDENTITY_FIELDS: Final = frozenset({"task_id", "hash", "native_id", "name"})
_FIELD_NAME_RE: Final = re.compile(r"^[A-Za-z%][A-Za-z0-9_%]*$")
_STATUS_RE: Final = r"[A-Z][A-Z_]*"
_WHAT: Final[dict[str, str]] = {
    "date": "a date (yyyy-MM-dd HH:mm:ss.SSS or epoch milliseconds)",
    "time": "a duration (like 352ms, 1m 2s, 4h 41m 19s, or milliseconds)",
    "mem": "a memory size (like 206.9 MB, or bytes)",
    "perc": "a percentage (like 47.6%)",
    "int": "an integer",
    "exit": "an exit status (an integer)",
    "float": "a number",
    "status": "a task status (SUBMITTED, RUNNING, COMPLETED, FAILED, ABORTED or CACHED)",
}


def read_trace(
    paths: PathLike | Sequence[PathLike], *, tz: str | tzinfo | None = None
) -> pd.DataFrame:
    """Read one trace file, or several of one run (a resumed run), into a task frame.

    Columns: ``schema.TASK_COLUMNS`` (typed as ``schema.TASK_DTYPES``; local
    dates given the zone ``tz`` — default this machine's — and converted to UTC),
    then every other trace field in file order: known fields typed (durations as
    timedelta, memory in bytes, percentages as floats), unknown ones as text.

    With several files, later files win per task (key: ``hash``, else
    ``task_id``, else ``native_id``), so pass them oldest first.
    """
    path_list = _path_list(paths)
    if not path_list:
        raise NextflowReadError("no trace file given: pass the path of a trace-*.txt file")
    zone = fmt.resolve_tz(tz)
    frames: list[pd.DataFrame] = []
    warnings: list[str] = []
    for path in path_list:
        with fmt.open_regular(path, "trace file") as fh:
            frame = parse_trace_stream(fh, tz=zone, path=str(path))
        warnings.extend(frame.attrs.get("warnings", []))
        frames.append(frame)
    merged = merge_trace_frames(frames)
    merged.attrs["warnings"] = warnings
    merged.attrs["paths"] = [str(p) for p in path_list]
    return merged


def merge_trace_frames(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate trace frames (oldest first); the last row per task wins."""
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return fmt.empty_tasks()
    if len(frames) == 1:
        return frames[0]
    non_empty = [f for f in frames if len(f)] or frames[:1]
    combined = pd.concat(non_empty, ignore_index=True) if len(non_empty) > 1 else non_empty[0]
    key = task_key(combined)
    combined = combined.loc[~key.duplicated(keep="last").to_numpy()]
    return fmt.conform_tasks(_restore_extra_dtypes(combined, frames))


def task_key(frame: pd.DataFrame) -> pd.Series:
    """Per-row identity: the hash when known, else the task id, else the native id."""
    key = frame[TaskCol.HASH].astype("string") if TaskCol.HASH in frame else None
    fallbacks: list[pd.Series] = []
    if TaskCol.TASK_ID in frame:
        fallbacks.append("task_id:" + frame[TaskCol.TASK_ID].astype("string"))
    if TaskCol.NATIVE_ID in frame:
        fallbacks.append("native_id:" + frame[TaskCol.NATIVE_ID].astype("string"))
    fallbacks.append(pd.Series([f"row:{i}" for i in range(len(frame))], index=frame.index, dtype="string"))
    if key is None:
        key = pd.Series(pd.NA, index=frame.index, dtype="string")
    for fallback in fallbacks:
        key = key.fillna(fallback)
    return key


#: Most fields a trace header may name: Nextflow's TraceRecord has 46, a config can add
#: custom ones; a header naming more is not a trace (and would cost time per column).
MAX_FIELDS: Final = 1000
#: Longest line read (header or row); a longer one is not a trace line (a damaged or
#: sparse file), refused before it is held in memory.
MAX_LINE_BYTES: Final = fmt.MAX_LINE_BYTES
#: Rows are parsed this many file bytes at a time: memory grows with the rows kept,
#: not with the file's size.
_BLOCK_BYTES: Final = 8 * 1024 * 1024


def parse_trace_bytes(data: bytes, *, tz: tzinfo, path: str = "<trace>") -> pd.DataFrame:
    """Parse the bytes of one trace file (pure; ``path`` only names it in errors)."""
    return parse_trace_stream(io.BytesIO(data), tz=tz, path=path)


def parse_trace_stream(fh: BinaryIO, *, tz: tzinfo, path: str = "<trace>", block_bytes: int = _BLOCK_BYTES) -> pd.DataFrame:
    """Parse one trace from a binary file object, a block of whole lines at a time."""
    header_line = fh.readline(MAX_LINE_BYTES + 1)
    if (hint := fmt.compressed_hint(header_line)) is not None:
        raise NextflowReadError(f"{hint}; a trace is a tab-separated text file", path=path, line=1)
    if len(header_line) > MAX_LINE_BYTES:
        named = header_line.count(b"\t") + 1
        many = f" and names at least {named} fields (a trace has at most {MAX_FIELDS})" if named > MAX_FIELDS else ""
        raise NextflowReadError(
            f"the first line is longer than {MAX_LINE_BYTES >> 20} MiB{many}: not a trace header "
            "(a header names tab-separated fields such as 'task_id<TAB>hash<TAB>native_id…')",
            path=path,
            line=1,
        )
    header_bytes = header_line.rstrip(b"\r\n")
    if not header_bytes.strip():
        rest = fh.read(MAX_LINE_BYTES)
        if not rest or rest.isspace():
            raise NextflowReadError(
                "the trace file is empty: expected a header line such as 'task_id<TAB>hash<TAB>native_id…'",
                path=path,
                line=1,
            )
    n_named = header_bytes.count(b"\t") + 1
    if n_named > MAX_FIELDS:
        raise NextflowReadError(
            f"the header names {n_named} fields; a trace has at most {MAX_FIELDS} "
            "(Nextflow's TraceRecord defines 46): not a trace file",
            path=path,
            line=1,
        )
    fields = _parse_header(header_bytes, path)
    warnings: list[str] = []
    parts: list[pd.DataFrame] = []
    next_line = 2
    carry = b""
    while True:
        block = fh.read(block_bytes)
        data = carry + block if carry else block
        if not block:  # the end: what is left is the last (maybe unterminated) line
            piece, carry = data, b""
        else:
            cut = data.rfind(b"\n")
            if cut < 0:
                piece, carry = b"", data
            else:
                piece, carry = data[: cut + 1], data[cut + 1 :]
            if len(carry) > MAX_LINE_BYTES:
                line = next_line + piece.count(b"\n")
                raise NextflowReadError(
                    f"this line is longer than {MAX_LINE_BYTES >> 20} MiB with no line end: not a trace "
                    "row (a damaged or sparse file)",
                    path=path,
                    line=line,
                )
        if piece:
            frame, lines = _parse_rows(piece, fields, tz, path, next_line, warnings)
            parts.append(frame)
            next_line += lines
        if not block:
            break
    if not parts:
        frame, _ = _parse_rows(b"", fields, tz, path, next_line, warnings)
    elif len(parts) == 1:
        frame = parts[0]
    else:
        frame = _concat_rows([p for p in parts if len(p)] or parts[:1])
    frame = fmt.conform_tasks(frame)
    frame.attrs["warnings"] = warnings
    return frame


def _concat_rows(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The blocks' frames as one, column by column, each block's column freed once copied."""
    names = list(parts[0].columns)
    if any(list(p.columns) != names for p in parts):
        return pd.concat(parts, ignore_index=True)
    columns: dict[str, pd.Series] = {}
    for name in names:
        pieces = [p.pop(name) for p in parts]
        columns[name] = pd.concat(pieces, ignore_index=True)
        del pieces
    parts.clear()
    return pd.DataFrame(columns, copy=False)


def _parse_rows(
    piece: bytes, fields: list[str], tz: tzinfo, path: str, first_line: int, warnings: list[str]
) -> tuple[pd.DataFrame, int]:
    """Rows of whole lines (the last may be unterminated): (frame, lines consumed)."""
    # Windows line ends; Nextflow writes \n (avoid copying otherwise). Looking
    # for a lone \r first is one memchr, far cheaper than a two-byte search.
    if b"\r" in piece and b"\r\n" in piece:
        piece = piece.replace(b"\r\n", b"\n")
    rows = _locate_rows(memoryview(piece), len(fields), path, warnings, first_line)
    frame, bad_line = _convert(rows, fields, tz, path)
    if bad_line is not None:
        # the unterminated last line has every field but a value in it is cut short
        message = f"dropped the half-written last line {bad_line} (a trace still being written)"
        warnings.append(f"{path}:{bad_line}: {message}")
        log.warning("%s:%d: %s", path, bad_line, message)
        frame = frame.iloc[:-1]
    return frame, piece.count(b"\n")


# --- steps ----------------------------------------------------------------------


def _path_list(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _parse_header(header: bytes, path: str) -> list[str]:
    text = header.decode("utf-8", errors="replace").strip()
    fields = text.split("\t")
    valid_names = all(_FIELD_NAME_RE.match(f) for f in fields)
    if not valid_names or not _IDENTITY_FIELDS.intersection(fields):
        shown = text[:80] + ("…" if len(text) > 80 else "")
        raise NextflowReadError(
            "trace header missing: the first line should name tab-separated fields such as "
            f"'task_id<TAB>hash<TAB>native_id<TAB>name…', found {shown!r}",
            path=path,
            line=1,
        )
    seen: set[str] = set()
    for name in fields:
        if name in seen:
            raise NextflowReadError(f"trace header names the field {name!r} twice", path=path, line=1)
        seen.add(name)
    return fields


@dataclass(frozen=True)
class _Rows:
    """Where each field of each kept row lies in ``buf`` (all numpy, no per-row Python)."""

    buf: Array  # uint8 view of the body
    starts: Array  # (rows, fields) start offsets
    ends: Array  # (rows, fields) end offsets
    line_numbers: Array  # file line number of each row
    unterminated_last: bool  # the last row had no line terminator


def _locate_rows(
    body: bytes | memoryview, n_fields: int, path: str, warnings: list[str], first_line: int = 2
) -> _Rows:
    """Check every row's field count (vectorized); drop a half-written last line."""
    buf = np.frombuffer(body, dtype=np.uint8)
    if not len(buf):
        empty: Array = np.zeros((0, n_fields), dtype=np.int64)
        return _Rows(buf, empty, empty, np.zeros(0, dtype=np.int64), False)
    # one scan for both separators: tabs between newlines are each line's field count
    offsets = np.int32 if len(buf) < 2**31 else np.int64  # halves the index memory
    seps: Array = np.flatnonzero((buf - np.uint8(0x09)) <= 1).astype(offsets)  # tab or newline (uint8 wraps)
    line_end_idx: Array = np.flatnonzero(buf[seps] == 0x0A)  # where each newline is in seps
    terminated = bool(buf[-1] == 0x0A)
    if not terminated:  # a virtual terminator closes the last line
        seps = np.append(seps, np.array(len(buf), dtype=offsets))
        line_end_idx = np.append(line_end_idx, len(seps) - 1)
    ends = seps[line_end_idx]
    starts = np.concatenate((np.zeros(1, dtype=offsets), ends[:-1] + 1))
    tab_counts = np.diff(line_end_idx, prepend=-1) - 1
    line_numbers: Array = np.arange(first_line, len(ends) + first_line, dtype=np.int64)
    blank = (ends - starts) == 0  # an empty line is skipped
    wrong = (tab_counts != n_fields - 1) & ~blank
    keep = ~blank
    unterminated_last = not terminated
    if wrong.any():
        first = int(np.flatnonzero(wrong)[0])
        if first == len(ends) - 1 and unterminated_last:
            line = int(line_numbers[first])
            message = f"dropped the half-written last line {line} (a trace still being written)"
            warnings.append(f"{path}:{line}: {message}")
            log.warning("%s:%d: %s", path, line, message)
            keep[first] = False
            unterminated_last = False
        else:
            raise NextflowReadError(
                f"this row has {int(tab_counts[first]) + 1} tab-separated fields but the header names "
                f"{n_fields}: the file is damaged or two traces were concatenated",
                path=path,
                line=int(line_numbers[first]),
            )
    row_starts = starts[keep]
    # every kept row has exactly n_fields - 1 tabs: the n_fields separators that
    # end its fields are the ones just before (and at) its line end in seps
    field_ends = seps[line_end_idx[keep][:, None] + np.arange(1 - n_fields, 1)]
    field_starts = np.empty_like(field_ends)
    field_starts[:, 0] = row_starts
    field_starts[:, 1:] = field_ends[:, :-1] + 1
    last_kept_unterminated = unterminated_last and bool(keep[-1])
    return _Rows(buf, field_starts, field_ends, line_numbers[keep], last_kept_unterminated)


#: Widest a typed value can be (longer ones are bad); and the most bytes gathered at once (a batch of columns).
_MAX_TYPED_WIDTH: Final = 64
_MAX_GATHER_BYTES: Final = 64 * 1024 * 1024


def _gather(buf: Array, starts: Array, ends: Array, width: int) -> Array:
    """Each [start, end) slice of ``buf`` (cut to ``width``) as a numpy bytes array.

    Reads ``width`` bytes from every start through a strided ``S<width>`` view of
    the buffer (one memcpy per value, no byte-index grid), then blanks the bytes
    past each value's end. Rows too close to the end of the buffer for a full
    read (at most the last line or so) are copied one by one.
    """
    n = len(starts)
    if n == 0 or width == 0:
        return np.zeros(n, dtype="S1")  # never S0: np.strings misreads zero-width arrays
    lengths = np.minimum(ends - starts, width)  # ends >= starts: no lower clip needed
    window = np.ndarray(shape=(len(buf) - width + 1,), dtype=f"S{width}", buffer=buf, strides=(1,)) if len(buf) >= width else None
    if window is not None and int(lengths.min()) == width:  # every value fills the width (dates, hashes, ids)
        return window[starts]
    fits = starts <= len(buf) - width
    grid = window[starts[fits]] if window is not None else np.zeros(0, dtype=f"S{width}")
    cells: Array = grid.view(np.uint8).reshape(len(grid), width)
    cells[np.arange(width, dtype=lengths.dtype) >= lengths[fits][:, None]] = 0
    if len(grid) == n:
        return grid
    out: Array = np.zeros(n, dtype=f"S{width}")
    out[fits] = grid
    for i in np.flatnonzero(~fits):
        out[i] = buf[int(starts[i]) : int(starts[i] + lengths[i])].tobytes()
    return out


#: Text fields with a few distinct values per run, decoded once per value.
_FEW_VALUES: Final = frozenset(
    {"process", "module", "container", "queue", "scratch", "error_action", "hostname", "cpu_model", "accelerator_type"}
)


def _text_column(rows: _Rows, j: int, name: str, present: Array, arr: Array | None) -> pd.Series:
    """A text column as pandas ``string`` (UTF-8, undecodable bytes replaced).

    ``arr`` is the column's gathered bytes, or None for a column too wide (or all
    empty) to gather: those are sliced row by row.
    """
    if arr is not None:
        values = _decode(arr, arr.dtype.itemsize, few=name in _FEW_VALUES)
    else:  # rare: a column of very long values (e.g. `script`): slice row by row
        starts, ends = rows.starts[:, j], rows.ends[:, j]
        raw = rows.buf.tobytes()
        values = np.array([raw[a:b].decode("utf-8", "replace") for a, b in zip(starts, ends, strict=True)], dtype=object)
    values[~present] = None
    return pd.Series(pd.array(values, dtype="string"))


#: Rows are gathered in blocks of about this many file bytes, all columns of a block
#: at once, so the block stays in the CPU cache instead of each column re-reading the
#: whole file from memory.
_TILE_BYTES: Final = 512 * 1024


def _gather_columns(rows: _Rows, widths: dict[int, int]) -> dict[int, Array]:
    """:func:`_gather` of columns ``j`` (to ``widths[j]`` bytes), tiled over row blocks."""
    n = len(rows.starts)
    out: dict[int, Array] = {j: np.zeros(n, dtype=f"S{max(w, 1)}") for j, w in widths.items()}
    if n == 0:
        return out
    line_bytes = max(1, int(rows.ends[-1, -1] - rows.starts[0, 0]) // n)
    block = max(256, _TILE_BYTES // line_bytes)
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        starts, ends = rows.starts[lo:hi], rows.ends[lo:hi]
        for j, width in widths.items():
            if width:
                out[j][lo:hi] = _gather(rows.buf, starts[:, j], ends[:, j], width)
    return out


def _decode(arr: Array, width: int, *, few: bool = False) -> Array:
    """Bytes to an object array of str (UTF-8; undecodable bytes replaced).

    ``few``: the column repeats a few values (process, status, queue): decode each
    distinct value once and share the str objects.
    """
    if few and len(arr):
        codes, first = _factorize_bytes(arr)
        return np.asarray(_decode(arr[first], width)[codes])
    values: Array = np.empty(len(arr), dtype=object)
    try:  # tolist() gives bytes without their NUL padding; a value never holds a newline
        values[:] = b"\n".join(arr.tolist()).decode().split("\n")
    except UnicodeDecodeError:
        return np.asarray(np.strings.decode(arr, "utf-8", "replace").astype(object))
    return values


def _convert(rows: _Rows, fields: list[str], tz: tzinfo, path: str) -> tuple[pd.DataFrame, int | None]:
    """Type every column; returns the frame and the line number of a cut-short last row."""
    n = len(rows.line_numbers)
    lengths = rows.ends - rows.starts
    first_byte = rows.buf[np.minimum(rows.starts, max(len(rows.buf) - 1, 0))] if len(rows.buf) else np.zeros_like(rows.starts)
    present_all = (lengths > 0) & ~((lengths == 1) & (first_byte == ord("-")))
    kinds = [TRACE_FIELD_TYPES.get(name, "str") for name in fields]
    widest = lengths.max(axis=0) if n else np.zeros(len(fields), dtype=np.int64)
    widths: dict[int, int] = {}  # the columns to gather, and to how many bytes
    for j, kind in enumerate(kinds):
        if kind != "str":
            widths[j] = int(min(widest[j], _MAX_TYPED_WIDTH))
        elif widest[j] and n * int(widest[j]) <= _MAX_GATHER_BYTES:
            widths[j] = int(widest[j])
    out: dict[str, pd.Series] = {}
    raw_text: dict[str, tuple[Array, Array]] = {}
    last_row_bad: int | None = None
    gathered: dict[int, Array] = {}
    for j, name in enumerate(fields):
        if j not in gathered:  # gather the next columns, up to the memory budget, in one tiled pass
            batch: dict[int, int] = {}
            total = 0  # a running sum: summing the batch per column would be quadratic
            for k in range(j, len(fields)):
                if batch and n * (total + widths.get(k, 0)) > _MAX_GATHER_BYTES:
                    break
                batch[k] = widths.get(k, 0)
                total += batch[k]
            gathered = _gather_columns(rows, {k: w for k, w in batch.items() if k in widths})
            gathered.update({k: None for k in batch if k not in widths})
        arr = gathered.pop(j)
        present = present_all[:, j] if n else np.zeros(0, dtype=bool)
        kind = kinds[j]
        if kind == "str":
            out[name] = _text_column(rows, j, name, present, arr)
            if arr is not None:
                raw_text[name] = (arr, present)
            continue
        values, bad = _typed(kind, arr, present, tz)
        bad |= present & (lengths[:, j] > _MAX_TYPED_WIDTH)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            if rows.unterminated_last and first == n - 1:
                last_row_bad = int(rows.line_numbers[first])
            else:
                shown = rows.buf[rows.starts[first, j] : rows.ends[first, j]].tobytes()[:60]
                raise NextflowReadError(
                    f"cannot read {shown.decode('utf-8', 'replace')!r} in column {name} as {_WHAT[kind]}",
                    path=path,
                    line=int(rows.line_numbers[first]),
                )
        out[name] = values
    frame = pd.DataFrame(out) if out else pd.DataFrame(index=range(n))
    _derive(frame, raw_text)
    frame[TaskCol.SOURCE] = pd.Series(["trace"] * n, dtype="string")
    return frame, last_row_bad


_EMPTY_DTYPES: Final[dict[str, str]] = {
    "date": "datetime64[ns, UTC]", "status": "string", "time": "timedelta64[ns]", "float": "Float64",
    "perc": "Float64", "mem": "Int64", "int": "Int64", "exit": "Int64",
}  # fmt: skip


def _typed(kind: str, arr: Array, present: Array, tz: tzinfo) -> tuple[pd.Series, Array]:
    """Parse a typed column; each distinct value once when values repeat.

    Traces repeat most typed values (status, exit, cpus, requested memory, and
    durations/percentages at their printed precision), and every parser is a pure
    function of one value, so parsing the distinct values and broadcasting the
    result gives the same column for a fraction of the work.
    """
    if not len(arr):  # numpy's string ufuncs refuse empty arrays
        return pd.Series(dtype=_EMPTY_DTYPES[kind]), np.zeros(0, dtype=bool)
    if len(arr) > 2 * _SAMPLE_ROWS and len(_factorize_bytes(arr[:_SAMPLE_ROWS])[1]) * 10 > _SAMPLE_ROWS * 9:
        return _typed_values(kind, arr, present, tz)  # nearly all distinct (dates, ids): skip the hashing
    codes, first = _factorize_bytes(arr)
    if len(first) * 2 > len(arr):  # mostly distinct: broadcasting would not pay
        return _typed_values(kind, arr, present, tz)
    values, bad = _typed_values(kind, arr[first], present[first], tz)
    return pd.Series(values.array.take(codes)), bad[codes]


#: Rows looked at first to decide whether a column repeats its values.
_SAMPLE_ROWS: Final = 4096


def _factorize_bytes(arr: Array) -> tuple[Array, Array]:
    """(codes, first): ``arr[first][codes] == arr`` for a numpy bytes array.

    Hashes the values as 8-byte words with pandas' integer hash table (one
    factorize per word, combining codes), far cheaper than sorting byte strings
    (np.unique) or building Python bytes objects.
    """
    n, width = len(arr), arr.dtype.itemsize
    words_per_value = -(-width // 8)
    grid: Array = np.zeros((n, words_per_value * 8), dtype=np.uint8)
    grid[:, :width] = np.ascontiguousarray(arr).view(np.uint8).reshape(n, width)
    words = grid.view(np.uint64)
    codes, uniques = pd.factorize(words[:, 0])
    for k in range(1, words_per_value):
        word_codes, word_uniques = pd.factorize(words[:, k])
        # both code ranges are below n, so the product stays far inside int64
        codes, uniques = pd.factorize(codes.astype(np.int64) * len(word_uniques) + word_codes)
    first: Array = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1, dtype=np.int64)  # the earliest row wins
    return codes, first


def _typed_values(kind: str, arr: Array, present: Array, tz: tzinfo) -> tuple[pd.Series, Array]:
    if kind == "date":
        return fmt.parse_date_bytes(arr, present, tz)
    if kind == "status":
        text = np.strings.strip(arr if arr.dtype.itemsize else arr.astype("S1"))
        ok = np.strings.str_len(np.strings.strip(text, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ_")) == 0
        ok &= np.strings.str_len(text) > 0
        values = _decode(text, text.dtype.itemsize, few=True)
        values[~(present & ok)] = None
        return pd.Series(pd.array(values, dtype="string")), present & ~ok
    if kind == "time":
        ms, bad = fmt.parse_duration_bytes(arr, present)
        return pd.Series(pd.to_timedelta(ms, unit="ms")).astype("timedelta64[ns]"), bad
    if kind == "float":
        values, bad = fmt.parse_float_bytes(arr, present)
        return _floats(values), bad
    if kind == "perc":
        values, bad = fmt.parse_percent_bytes(arr, present)
        return _floats(values), bad
    if kind == "mem":
        values, bad = fmt.parse_memory_bytes(arr, present)
        return _ints(values), bad
    unknown = fmt.UNKNOWN_EXIT if kind == "exit" else None
    values, bad = fmt.parse_int_bytes(arr, present, unknown=unknown)
    return _ints(values), bad


def _ints(values: Array) -> pd.Series:
    missing = np.isnan(values)
    return pd.Series(pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing))


def _floats(values: Array) -> pd.Series:
    missing = np.isnan(values)
    return pd.Series(pd.arrays.FloatingArray(np.where(missing, 0.0, values), missing))


def _derive(frame: pd.DataFrame, raw_text: dict[str, tuple[Array, Array]]) -> None:
    """Fill process/tag/name/hash from each other when the trace lacks the column."""
    if TaskCol.NAME in frame and (TaskCol.PROCESS not in frame or TaskCol.TAG not in frame):
        if TaskCol.NAME in raw_text:
            arr, present = raw_text[TaskCol.NAME]
            proc_b, tag_b, has_tag = fmt.split_name_bytes(arr)
            process = _strings(proc_b, present, few=True)
            tag = _strings(tag_b, present & has_tag)
        else:
            process, tag = fmt.split_name(frame[TaskCol.NAME])
        if TaskCol.PROCESS not in frame:
            frame[TaskCol.PROCESS] = process.to_numpy()
        if TaskCol.TAG not in frame:
            frame[TaskCol.TAG] = tag.to_numpy()
    elif TaskCol.NAME not in frame and TaskCol.PROCESS in frame:
        tag = frame[TaskCol.TAG] if TaskCol.TAG in frame else pd.Series(pd.NA, index=frame.index)
        frame[TaskCol.NAME] = fmt.join_name(frame[TaskCol.PROCESS], tag)
    if TaskCol.WORKDIR in frame and (TaskCol.HASH not in frame or frame[TaskCol.HASH].isna().any()):
        if TaskCol.WORKDIR in raw_text:
            arr, present = raw_text[TaskCol.WORKDIR]
            short, found = fmt.hash_from_workdir_bytes(arr)
            from_dir = _strings(short, present & found)
        else:
            from_dir = fmt.hash_from_workdir(frame[TaskCol.WORKDIR])
        if TaskCol.HASH in frame:
            frame[TaskCol.HASH] = frame[TaskCol.HASH].astype("string").fillna(from_dir)
        else:
            frame[TaskCol.HASH] = from_dir


def _strings(arr: Array, present: Array, *, few: bool = False) -> pd.Series:
    values = _decode(arr, arr.dtype.itemsize, few=few)
    values[~present] = None
    return pd.Series(pd.array(values, dtype="string"))


def _restore_extra_dtypes(combined: pd.DataFrame, frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """pd.concat of frames with different columns widens dtypes to object; put them back."""
    for frame in frames:
        for col in frame.columns:
            if col in combined and combined[col].dtype != frame[col].dtype and len(frame[col]):
                try:
                    combined[col] = combined[col].astype(frame[col].dtype)
                except (TypeError, ValueError):
                    continue
    return combined
