"""Pure, vectorized parsers for the value formats Nextflow writes (DESIGN §2).

Every parser takes a pandas Series of text (missing values as NA, never the
trace's ``-``) and returns ``(values, bad)``: the parsed Series and a boolean
mask of the entries that were present but could not be read. Callers turn the
first bad entry into a :class:`~batchkit.errors.NextflowReadError` naming the
file, line and column; nothing here raises on bad data.

Formats, as ``nextflow.trace.TraceRecord`` renders them:

- dates ``yyyy-MM-dd HH:mm:ss.SSS`` in the launch machine's local zone without a
  zone marker; ``trace.raw = true`` writes epoch milliseconds instead;
- durations from ``nextflow.util.Duration.toString``: ``352ms``, ``16.2s``,
  ``7m 8s``, ``4h 41m 19s``, ``1d 2h 3m``; raw: milliseconds;
- memory from ``nextflow.util.MemoryUnit.toString``: 1024-based, ``0.#`` and a
  unit ``B KB MB GB TB PB EB`` (``206.9 MB``); raw: bytes;
- percent ``47.6%`` (``%.1f%%``, Locale.ROOT); raw: the bare number.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from datetime import UTC, timezone, tzinfo
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from batchkit.errors import NextflowReadError
from batchkit.schema import TASK_COLUMNS, TASK_DTYPES

#: Nextflow writes ``Integer.MAX_VALUE`` for "no exit status yet" (weblog raw values).
UNKNOWN_EXIT: Final = 2147483647

_NUM = r"(\d+(?:\.\d+)?)"
# One anchored match per value; the regex engine backtracks "352ms" past the
# minutes group, so no look-ahead is needed.
_DURATION_RE: Final = re.compile(
    rf"^\s*(?:{_NUM}\s*d)?\s*(?:{_NUM}\s*h)?\s*(?:{_NUM}\s*m)?\s*(?:{_NUM}\s*s)?\s*(?:{_NUM}\s*ms)?\s*$"
)
_DURATION_MS_PER_UNIT: Final = (86_400_000.0, 3_600_000.0, 60_000.0, 1_000.0, 1.0)
_MEMORY_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPEZ]?B)?\s*$", re.IGNORECASE)
_MEMORY_FACTOR: Final = {
    "": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4,
    "PB": 1024**5, "EB": 1024**6, "ZB": 1024**7,
}  # fmt: skip
_PERCENT_RE: Final = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*%?\s*$")
_DIGITS_RE: Final = re.compile(r"^\s*\d+\s*$")
_TRACE_DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S.%f"
# pandas' nanosecond range, in epoch milliseconds (1677-09-21 .. 2262-04-11).
_MIN_EPOCH_MS: Final = -9_223_372_036_854
_MAX_EPOCH_MS: Final = 9_223_372_036_854
_INT64_LIMIT: Final = 2.0**63
# "[PROCESS] (tag)" -> process, tag; process names never contain " (".
_NAME_RE: Final = re.compile(r"^(.*?) \((.*)\)$", re.DOTALL)
# <workDir>/ab/cdef0123... (30 hex digits after the slash); the short hash is ab/cdef01.
_WORKDIR_HASH_RE: Final = re.compile(r"([0-9a-f]{2})/([0-9a-f]{6})[0-9a-f]{24}/?$")

Parsed = tuple[pd.Series, pd.Series]


# --- time zones -----------------------------------------------------------------


def resolve_tz(tz: str | tzinfo | None) -> tzinfo:
    """The zone local trace/log times are in: ``tz``, or this machine's zone.

    A DST-aware zone is preferred over a fixed offset so times either side of a
    DST change convert correctly.
    """
    if isinstance(tz, tzinfo):
        return tz
    if isinstance(tz, str):
        try:
            return zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise NextflowReadError(
                f"unknown time zone {tz!r}: pass an IANA name such as 'Europe/Paris' or 'UTC'"
            ) from exc
    return _machine_tz()


def _machine_tz() -> tzinfo:
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    localtime = Path("/etc/localtime")
    try:
        with localtime.open("rb") as fh:
            return zoneinfo.ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ValueError):
        pass
    offset = pd.Timestamp.now().tz_localize(None).to_pydatetime().astimezone().utcoffset()
    return timezone(offset) if offset is not None else UTC


def localize_to_utc(naive: pd.Series, tz: tzinfo) -> pd.Series:
    """Give naive local times their zone, then convert to UTC.

    Ambiguous wall times (the repeated hour when DST ends) are taken as the
    first (DST) occurrence, and times inside the skipped hour are shifted
    forward: Nextflow wrote them without an offset, so either choice is a guess
    within one hour, and raising would lose the whole file.
    """
    naive = naive.astype("datetime64[ns]")
    if isinstance(tz, timezone) and tz.utcoffset(None) == pd.Timedelta(0):
        return naive.dt.tz_localize("UTC")
    ambiguous: np.ndarray = np.ones(len(naive), dtype=bool)
    local = naive.dt.tz_localize(tz, ambiguous=ambiguous, nonexistent="shift_forward")
    return local.dt.tz_convert("UTC")


# --- value parsers --------------------------------------------------------------


def _present(s: pd.Series) -> pd.Series:
    return s.notna()


def _empty_bad(s: pd.Series) -> pd.Series:
    return pd.Series(False, index=s.index, dtype=bool)


def parse_duration(s: pd.Series) -> Parsed:
    """Durations (human or raw milliseconds) as ``timedelta64[ns]``."""
    out = pd.Series(pd.NaT, index=s.index, dtype="timedelta64[ns]")
    bad = _empty_bad(s)
    mask = _present(s)
    if not mask.any():
        return out, bad
    text = s[mask].astype(str)
    raw = text.str.fullmatch(_DIGITS_RE.pattern)
    ms = pd.Series(np.nan, index=text.index, dtype="float64")
    if raw.any():
        ms[raw] = pd.to_numeric(text[raw], errors="coerce").astype("float64")
    human = ~raw
    if human.any():
        parts = text[human].str.extract(_DURATION_RE.pattern).astype("float64")
        matched = parts.notna().any(axis=1)
        total = (parts.fillna(0.0) * np.array(_DURATION_MS_PER_UNIT)).sum(axis=1)
        ms[human] = total.where(matched)
    ok = ms.notna() & (ms.abs() < 9.2e15)  # timedelta64[ns] range in ms
    bad[mask] = ~ok.to_numpy()
    out[mask] = pd.to_timedelta(ms.where(ok).round(), unit="ms")
    return out, bad


def parse_memory(s: pd.Series) -> Parsed:
    """Memory (``206.9 MB`` or raw bytes) as ``Int64`` bytes."""
    out = pd.Series(pd.NA, index=s.index, dtype="Int64")
    bad = _empty_bad(s)
    mask = _present(s)
    if not mask.any():
        return out, bad
    parts = s[mask].astype(str).str.extract(_MEMORY_RE.pattern)
    number = pd.to_numeric(parts[0], errors="coerce").astype("float64")
    unit = parts[1].fillna("").str.upper()
    factor = unit.map(_MEMORY_FACTOR).astype("float64")
    value = (number * factor).round()
    ok = value.notna() & (value.abs() < _INT64_LIMIT)
    bad[mask] = ~ok.to_numpy()
    out[mask] = value.where(ok).astype("Int64")
    return out, bad


def parse_percent(s: pd.Series) -> Parsed:
    """Percentages (``47.6%`` or a bare number) as ``Float64`` percent."""
    out = pd.Series(pd.NA, index=s.index, dtype="Float64")
    bad = _empty_bad(s)
    mask = _present(s)
    if not mask.any():
        return out, bad
    number = s[mask].astype(str).str.extract(_PERCENT_RE.pattern)[0]
    value = pd.to_numeric(number, errors="coerce").astype("float64")
    ok = value.notna() & np.isfinite(value)
    bad[mask] = ~ok.to_numpy()
    out[mask] = value.where(ok).astype("Float64")
    return out, bad


def parse_float(s: pd.Series) -> Parsed:
    """Plain numbers (``cpus``) as ``Float64``."""
    out = pd.Series(pd.NA, index=s.index, dtype="Float64")
    bad = _empty_bad(s)
    mask = _present(s)
    if not mask.any():
        return out, bad
    value = pd.to_numeric(s[mask].astype(str).str.strip(), errors="coerce").astype("float64")
    ok = value.notna() & np.isfinite(value)
    bad[mask] = ~ok.to_numpy()
    out[mask] = value.where(ok).astype("Float64")
    return out, bad


def parse_int(s: pd.Series, *, unknown: int | None = None) -> Parsed:
    """Integers (task_id, exit, attempt, counters) as ``Int64``.

    ``unknown`` is a sentinel read as missing (``Integer.MAX_VALUE`` for an exit
    status Nextflow does not know yet).
    """
    out = pd.Series(pd.NA, index=s.index, dtype="Int64")
    bad = _empty_bad(s)
    mask = _present(s)
    if not mask.any():
        return out, bad
    text = s[mask].astype(str).str.strip()
    is_int = text.str.fullmatch(r"[-+]?\d{1,18}")
    value = pd.Series(pd.NA, index=text.index, dtype="Int64")
    if is_int.any():
        value[is_int] = pd.to_numeric(text[is_int]).astype("Int64")
    bad[mask] = ~is_int.to_numpy()
    if unknown is not None:
        value = value.mask(value == unknown)
    out[mask] = value
    return out, bad


def parse_trace_date(s: pd.Series, tz: tzinfo) -> Parsed:
    """Trace dates (local ``yyyy-MM-dd HH:mm:ss.SSS`` or raw epoch ms) as UTC."""
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    bad = _empty_bad(s)
    mask = _present(s)
    if not mask.any():
        return out, bad
    text = s[mask].astype(str).str.strip()
    raw = text.str.fullmatch(r"\d{1,16}")
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    ok = pd.Series(False, index=text.index, dtype=bool)
    if raw.any():
        ms = pd.to_numeric(text[raw], errors="coerce").astype("float64")
        in_range = ms.between(_MIN_EPOCH_MS, _MAX_EPOCH_MS)
        stamps = pd.to_datetime(ms.where(in_range), unit="ms", utc=True)
        result[raw] = stamps
        ok[raw] = in_range
    human = ~raw
    if human.any():
        naive = pd.to_datetime(text[human], format=_TRACE_DATE_FORMAT, errors="coerce")
        parsed = naive.notna()
        if parsed.any():
            result[naive.index[parsed]] = localize_to_utc(naive[parsed], tz)
        ok[human] = parsed
    bad[mask] = ~ok.to_numpy()
    out[mask] = result
    return out, bad


def epoch_ms_to_utc(value: Any) -> pd.Timestamp | None:
    """One raw epoch-millisecond value (weblog) as a UTC Timestamp; 0/None -> None."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value <= 0 or not (_MIN_EPOCH_MS <= value <= _MAX_EPOCH_MS):
        return None
    return pd.Timestamp(int(value), unit="ms", tz="UTC")


# --- names and work dirs --------------------------------------------------------


def split_name(name: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``"PROC (tag)"`` -> (``PROC``, ``tag``); a name without a tag is all process."""
    parts = name.astype("string").str.extract(_NAME_RE.pattern)
    has_tag = parts[0].notna()
    process = parts[0].where(has_tag, name).astype("string")
    tag = parts[1].where(has_tag).astype("string")
    return process, tag


def join_name(process: pd.Series, tag: pd.Series) -> pd.Series:
    """The inverse of :func:`split_name`: ``PROC (tag)``, or ``PROC`` without a tag."""
    process = process.astype("string")
    tag = tag.astype("string")
    with_tag = process + " (" + tag + ")"
    return with_tag.where(tag.notna(), process).astype("string")


def hash_from_workdir(workdir: pd.Series) -> pd.Series:
    """The short task hash ``ab/cdef01`` from a full work dir (DESIGN §2)."""
    parts = workdir.astype("string").str.extract(_WORKDIR_HASH_RE.pattern)
    return (parts[0] + "/" + parts[1]).astype("string")


def hash_of_workdir(workdir: str) -> str | None:
    """Scalar form of :func:`hash_from_workdir`."""
    match = _WORKDIR_HASH_RE.search(workdir)
    return f"{match.group(1)}/{match.group(2)}" if match else None


def workdir_root(workdir: str) -> str | None:
    """``s3://bucket/work`` from ``s3://bucket/work/ab/cdef…`` (the run's work dir)."""
    match = _WORKDIR_HASH_RE.search(workdir)
    if not match:
        return None
    return workdir[: match.start()].rstrip("/") or None


# --- frames ---------------------------------------------------------------------


def empty_tasks() -> pd.DataFrame:
    """A task frame with no rows and the schema's columns and dtypes."""
    return pd.DataFrame({col: pd.Series(dtype=TASK_DTYPES[col]) for col in TASK_COLUMNS})


def conform_tasks(frame: pd.DataFrame) -> pd.DataFrame:
    """Schema columns first with their dtypes (missing ones added), extras after."""
    out = {}
    n = len(frame)
    for col in TASK_COLUMNS:
        dtype = TASK_DTYPES[col]
        if col in frame.columns:
            out[col] = _as_dtype(frame[col], dtype)
        else:
            out[col] = pd.Series([None] * n, index=frame.index, dtype=_missing_dtype(dtype))
            out[col] = _as_dtype(out[col], dtype)
    for col in frame.columns:
        if col not in out:
            out[col] = frame[col]
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def _missing_dtype(dtype: str) -> str:
    return "object" if dtype == "string" else dtype


def _as_dtype(s: pd.Series, dtype: str) -> pd.Series:
    if str(s.dtype) == dtype:
        return s
    if dtype.startswith("datetime64"):
        return pd.to_datetime(s, utc=True).astype(dtype)
    if dtype.startswith("timedelta64"):
        return pd.to_timedelta(s).astype(dtype)
    return s.astype(dtype)


__all__ = [
    "UNKNOWN_EXIT",
    "conform_tasks",
    "empty_tasks",
    "epoch_ms_to_utc",
    "hash_from_workdir",
    "hash_of_workdir",
    "join_name",
    "localize_to_utc",
    "parse_duration",
    "parse_float",
    "parse_int",
    "parse_memory",
    "parse_percent",
    "parse_trace_date",
    "resolve_tz",
    "split_name",
    "workdir_root",
]
