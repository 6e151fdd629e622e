"""Read Nextflow trace files (``-with-trace``) into a task frame (DESIGN §2).

A trace is tab-separated with one header line naming its fields, ``-`` for a
missing value. Any subset and order of ``TraceRecord.FIELDS`` may appear, in
human or raw (``trace.raw = true``) formats; unknown fields are kept as text.
Rows are appended as tasks complete, so a trace read while Nextflow runs may end
in a half-written line: that line is dropped with a warning
(``frame.attrs["warnings"]`` and the ``batchkit.nextflow.trace`` logger).

Parsing is vectorized: the field count of every line is checked with numpy over
the raw bytes, the table is split by pandas' C reader, and each column is
converted with pandas string/regex operations — no per-row Python loop.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from batchkit.errors import NextflowReadError
from batchkit.nextflow import _formats as fmt
from batchkit.schema import TaskCol

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
        frame = parse_trace_bytes(_read_bytes(path), tz=zone, path=str(path))
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


def parse_trace_bytes(data: bytes, *, tz: tzinfo, path: str = "<trace>") -> pd.DataFrame:
    """Parse the bytes of one trace file (pure; ``path`` only names it in errors)."""
    data = data.replace(b"\r\n", b"\n")
    if not data.strip():
        raise NextflowReadError(
            "the trace file is empty: expected a header line such as 'task_id<TAB>hash<TAB>native_id…'",
            path=path,
            line=1,
        )
    header_end = data.find(b"\n")
    header_bytes = data if header_end < 0 else data[:header_end]
    fields = _parse_header(header_bytes, path)
    body = b"" if header_end < 0 else data[header_end + 1 :]
    warnings: list[str] = []
    body, line_numbers, unterminated = _check_rows(body, len(fields), path, warnings)
    raw = _split_rows(body, fields)
    frame, bad_line = _convert(raw, fields, tz, line_numbers, path, unterminated)
    if bad_line is not None:
        # the unterminated last line parsed but a value in it is cut short
        message = f"dropped the half-written last line {bad_line} (a trace still being written)"
        warnings.append(f"{path}:{bad_line}: {message}")
        log.warning("%s:%d: %s", path, bad_line, message)
        frame = frame.iloc[:-1]
    frame = fmt.conform_tasks(frame)
    frame.attrs["warnings"] = warnings
    return frame


# --- steps ----------------------------------------------------------------------


def _path_list(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NextflowReadError("no such trace file: check the path", path=str(path)) from None
    except IsADirectoryError:
        raise NextflowReadError(
            "is a directory, not a trace file: use NextflowRun.from_dir for a launch directory",
            path=str(path),
        ) from None
    except OSError as exc:
        raise NextflowReadError(f"cannot read the trace file: {exc.strerror}", path=str(path)) from None


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


def _check_rows(
    body: bytes, n_fields: int, path: str, warnings: list[str]
) -> tuple[bytes, np.ndarray, bool]:
    """Check every row's field count (vectorized); drop a half-written last line.

    Returns the body to parse, the file line number of each non-blank row, and
    whether the last kept row had no line terminator.
    """
    if not body:
        return body, np.zeros(0, dtype=np.int64), False
    buf = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 0x0A)
    terminated = bool(len(newlines)) and newlines[-1] == len(buf) - 1
    ends = newlines if terminated else np.append(newlines, len(buf))
    starts = np.concatenate(([0], newlines + 1))[: len(ends)]
    tabs = np.flatnonzero(buf == 0x09)
    tab_counts = np.searchsorted(tabs, ends) - np.searchsorted(tabs, starts)
    lengths = ends - starts
    # An empty line is skipped by the reader below too (skip_blank_lines).
    blank = lengths == 0
    line_numbers: np.ndarray = np.arange(2, len(ends) + 2, dtype=np.int64)
    wrong = (tab_counts != n_fields - 1) & ~blank
    unterminated_last = not terminated
    if wrong.any():
        first = int(np.flatnonzero(wrong)[0])
        is_last = first == len(ends) - 1
        if is_last and unterminated_last:
            message = f"dropped the half-written last line {line_numbers[first]} (a trace still being written)"
            warnings.append(f"{path}:{line_numbers[first]}: {message}")
            log.warning("%s:%d: %s", path, line_numbers[first], message)
            body = body[: int(starts[first])]
            keep = ~blank[:first]
            return body, line_numbers[:first][keep], False
        raise NextflowReadError(
            f"this row has {int(tab_counts[first]) + 1} tab-separated fields but the header names "
            f"{n_fields}: the file is damaged or two traces were concatenated",
            path=path,
            line=int(line_numbers[first]),
        )
    keep = ~blank
    last_kept_unterminated = unterminated_last and bool(len(keep)) and bool(keep[-1])
    return body, line_numbers[keep], last_kept_unterminated


def _split_rows(body: bytes, fields: list[str]) -> pd.DataFrame:
    if not body.strip():
        return pd.DataFrame({f: pd.Series(dtype="str") for f in fields})
    return pd.read_csv(
        io.BytesIO(body),
        sep="\t",
        header=None,
        names=fields,
        dtype=str,
        na_values=["-"],
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        skip_blank_lines=True,
        engine="c",
        encoding="utf-8",
        encoding_errors="replace",
    )


_Parser = Callable[[pd.Series], tuple[pd.Series, pd.Series]]


def _parser_for(kind: str, tz: tzinfo) -> _Parser | None:
    parsers: dict[str, _Parser] = {
        "date": lambda s: fmt.parse_trace_date(s, tz),
        "time": fmt.parse_duration,
        "mem": fmt.parse_memory,
        "perc": fmt.parse_percent,
        "int": fmt.parse_int,
        "exit": lambda s: fmt.parse_int(s, unknown=fmt.UNKNOWN_EXIT),
        "float": fmt.parse_float,
        "status": _parse_status,
    }
    return parsers.get(kind)


def _parse_status(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = s.astype("string").str.strip()
    ok = text.str.fullmatch(_STATUS_RE).fillna(True)
    return text.where(ok), ~ok.astype(bool)


def _convert(
    raw: pd.DataFrame,
    fields: list[str],
    tz: tzinfo,
    line_numbers: np.ndarray,
    path: str,
    unterminated_last: bool,
) -> tuple[pd.DataFrame, int | None]:
    """Type every column; returns the frame and the line number of a cut-short last row."""
    out: dict[str, pd.Series] = {}
    last_row_bad: int | None = None
    n = len(raw)
    for name in fields:
        column = raw[name]
        kind = TRACE_FIELD_TYPES.get(name, "str")
        parser = _parser_for(kind, tz)
        if parser is None:
            out[name] = column.astype("string")
            continue
        values, bad = parser(column)
        if bad.any():
            positions = np.flatnonzero(bad.to_numpy())
            first = int(positions[0])
            if unterminated_last and first == n - 1:
                last_row_bad = int(line_numbers[first])
            else:
                value = str(column.iloc[first])
                raise NextflowReadError(
                    f"cannot read {value[:60]!r} in column {name} as {_WHAT[kind]}",
                    path=path,
                    line=int(line_numbers[first]),
                )
        out[name] = values
    frame = pd.DataFrame(out, index=raw.index)
    frame = _derive(frame)
    frame[TaskCol.SOURCE] = pd.Series("trace", index=frame.index, dtype="string")
    return frame, last_row_bad


def _derive(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill process/tag/name/hash from each other when the trace lacks the column."""
    if TaskCol.NAME in frame and (TaskCol.PROCESS not in frame or TaskCol.TAG not in frame):
        process, tag = fmt.split_name(frame[TaskCol.NAME])
        if TaskCol.PROCESS not in frame:
            frame[TaskCol.PROCESS] = process
        if TaskCol.TAG not in frame:
            frame[TaskCol.TAG] = tag
    elif TaskCol.NAME not in frame and TaskCol.PROCESS in frame:
        tag = frame[TaskCol.TAG] if TaskCol.TAG in frame else pd.Series(pd.NA, index=frame.index)
        frame[TaskCol.NAME] = fmt.join_name(frame[TaskCol.PROCESS], tag)
    if TaskCol.WORKDIR in frame:
        from_dir = fmt.hash_from_workdir(frame[TaskCol.WORKDIR])
        if TaskCol.HASH in frame:
            frame[TaskCol.HASH] = frame[TaskCol.HASH].astype("string").fillna(from_dir)
        else:
            frame[TaskCol.HASH] = from_dir
    return frame


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
