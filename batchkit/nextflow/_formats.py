"""Pure, vectorized parsers for the value formats Nextflow writes (docs/ARCHITECTURE.md §3).

The value parsers take a numpy bytes array (one trace column) and a mask of the
entries present (not ``-``), and return ``(values, bad)``: the parsed values and
a boolean mask of the entries that were present but could not be read. Callers
turn the first bad entry into a :class:`~batchkit.errors.NextflowReadError`
naming the file, line and column; nothing here raises on bad data.

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
from typing import Any, Final, TypeAlias

import numpy as np
import pandas as pd

from batchkit.errors import NextflowReadError
from batchkit.schema import TASK_COLUMNS, TASK_DTYPES

#: numpy arrays; numpy is untyped for mypy here (pyproject overrides), so this is Any.
Array: TypeAlias = Any

#: Nextflow writes ``Integer.MAX_VALUE`` for "no exit status yet" (weblog raw values).
UNKNOWN_EXIT: Final = 2147483647

# pandas' nanosecond range, in epoch milliseconds (1677-09-21 .. 2262-04-11).
_MIN_EPOCH_MS: Final = -9_223_372_036_854
_MAX_EPOCH_MS: Final = 9_223_372_036_854
_INT64_LIMIT: Final = 2.0**63
# "[PROCESS] (tag)" -> process, tag; process names never contain " (".
_NAME_RE: Final = re.compile(r"^(.*?) \((.*)\)$", re.DOTALL)
# <workDir>/ab/cdef0123... (30 hex digits after the slash); the short hash is ab/cdef01.
_WORKDIR_HASH_RE: Final = re.compile(r"([0-9a-f]{2})/([0-9a-f]{6})[0-9a-f]{24}/?$")



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

    Vectorized over distinct hours: the zone's offset is looked up once per
    local hour present (zone rules change on the hour), not once per row.
    Ambiguous wall times (the repeated hour when DST ends) are taken as the
    first (DST) occurrence, and times inside the skipped hour are shifted
    forward: Nextflow wrote them without an offset, so either choice is a guess
    within one hour, and raising would lose the whole file.
    """
    values = np.asarray(naive.to_numpy(dtype="datetime64[ns]"))
    if isinstance(tz, timezone) and tz.utcoffset(None) == pd.Timedelta(0):
        return pd.Series(values).dt.tz_localize("UTC")
    valid = ~np.isnat(values)
    out = values.copy()
    if valid.any():
        hours = values[valid].astype("datetime64[h]").astype("datetime64[ns]")
        # hash the hours (pandas) rather than sort them (np.unique): same pairs, less work
        inverse, unique_int = pd.factorize(hours.view(np.int64))
        unique = np.asarray(unique_int, dtype=np.int64).view("datetime64[ns]")
        ambiguous: Array = np.ones(len(unique), dtype=bool)
        local = pd.Series(unique).dt.tz_localize(tz, ambiguous=ambiguous, nonexistent="shift_forward")
        utc = np.asarray(local.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"))
        offsets = utc - unique  # UTC minus local wall time, per distinct hour
        out[valid] = values[valid] + offsets[inverse.reshape(-1)]
    return pd.Series(out).dt.tz_localize("UTC")


# --- value parsers -----------------------------------------------------------------
#
# Each takes a numpy bytes array (dtype ``S``) of one trace column and a mask of the
# entries present (not ``-``), and returns ``(values, bad)`` as numpy arrays. They use
# numpy's C string ufuncs (``np.strings``) so 100,000 rows cost milliseconds.

BytesParsed = tuple[Array, Array]

_DURATION_UNIT_MS: Final[dict[bytes, float]] = {
    b"D": 86_400_000.0, b"H": 3_600_000.0, b"M": 60_000.0, b"S": 1_000.0, b"MS": 1.0,
}  # fmt: skip
_MEMORY_UNITS: Final[dict[bytes, float]] = {
    b"": 1.0, b"B": 1.0, b"KB": 1024.0, b"MB": 1024.0**2, b"GB": 1024.0**3, b"TB": 1024.0**4,
    b"PB": 1024.0**5, b"EB": 1024.0**6, b"ZB": 1024.0**7,
}  # fmt: skip
_DATE_LAYOUT: Final = b"0000-00-00 00:00:00.000"  # 0 = a digit, anything else literal


def _nonzero_width(arr: Array) -> Array:
    """Give a zero-width bytes array (``S0``, which np.strings returns for all-empty
    parts) a width of 1: further string ufuncs misread ``S0`` memory."""
    return arr.astype("S1") if arr.dtype.itemsize == 0 else arr


def _lookup(keys: Array, table: dict[bytes, float]) -> Array:
    """``table[key]`` per entry (keys stripped, upper-cased), NaN where unknown.

    Exact spellings (Nextflow's ``MB``, ``ms``, ``h``) are matched with one vectorized
    comparison per table entry; the rare other spellings are resolved per distinct key.
    """
    if not len(keys):
        return np.zeros(0, dtype=np.float64)
    keys = _nonzero_width(keys)
    out: Array = np.full(len(keys), np.nan)
    for key, value in table.items():
        for spelling in {key, key.lower()}:
            if len(spelling) <= keys.dtype.itemsize:
                out[keys == spelling] = value
    rest = np.isnan(out)
    if rest.any():
        uniques, inverse = np.unique(keys[rest], return_inverse=True)
        values = np.array([table.get(bytes(u).strip().upper(), np.nan) for u in uniques], dtype=np.float64)
        out[rest] = values[inverse.reshape(-1)]
    return out


_POW10_SPAN: Final = 64
_POW10: Final = np.power(10.0, np.arange(-_POW10_SPAN, _POW10_SPAN + 1))


def to_float(arr: Array) -> Array:
    """Bytes to float64, NaN where not a finite number (in chunks of rows)."""
    n = len(arr)
    if n <= _CHUNK:
        return _to_float(arr)
    return np.concatenate([_to_float(arr[lo : lo + _CHUNK]) for lo in range(0, n, _CHUNK)])


_CHUNK: Final = 16384


def _to_float(arr: Array) -> Array:
    """Bytes to float64, NaN where not a finite number.

    Plain decimals (``206.9``, ``42``) are computed with numpy arithmetic on the
    byte grid; anything else (sign, spaces, exponent, ``nan``) goes through
    numpy's own parser, then pandas', for just those entries.
    """
    n = len(arr)
    if not n:
        return np.zeros(0, dtype=np.float64)
    arr = _nonzero_width(arr)
    width = arr.dtype.itemsize
    grid = np.ascontiguousarray(arr).view(np.uint8).reshape(n, width)
    if width <= _EXACT_DIGITS:
        whole = _to_whole(grid)
        if whole is not None:
            return whole
    digit = (grid >= 0x30) & (grid <= 0x39)
    dot = grid == 0x2E
    pad = grid == 0  # numpy bytes values are NUL-padded on the right
    length = width - pad.sum(axis=1)
    simple = (digit | dot | pad).all(axis=1) & (dot.sum(axis=1) <= 1) & digit.any(axis=1)
    if width > 1:  # padding only at the end: no byte after a NUL
        simple &= (np.diff(pad.view(np.int8), axis=1) >= 0).all(axis=1)
    positions = np.arange(width, dtype=np.int16)
    dot_at = np.where(dot.any(axis=1), dot.argmax(axis=1), length).astype(np.int16)
    # the power of ten of each byte: 10^(dot-1-k) before the dot, 10^(dot-k) after it
    exponent = dot_at[:, None] - positions[None, :] - (positions[None, :] < dot_at[:, None])
    powers = _POW10[np.clip(exponent, -_POW10_SPAN, _POW10_SPAN) + _POW10_SPAN]
    digits = np.where(digit, grid - 0x30, 0).astype(np.float64)
    values = np.einsum("ij,ij->i", digits, powers)
    values[~simple] = np.nan
    rest = np.flatnonzero(~simple)
    if len(rest):
        values[rest] = _slow_float(arr[rest])
    values[~np.isfinite(values)] = np.nan
    return values


#: Up to 15 digits every partial sum of digit x 10^k is an integer below 2^53, so
#: float arithmetic on them is exact in any order: integer maths gives the same bits.
_EXACT_DIGITS: Final = 15


def _to_whole(grid: Array) -> Array | None:
    """Values when every row of the byte grid is plain digits (raw ms, bytes, ids), else None.

    Horner's rule in int64 is a few passes over the rows, against the dozen
    byte-grid passes of the decimal path; the results are identical (exact).
    """
    pad = grid == 0
    digits = grid - np.uint8(0x30)  # non-digits wrap to > 9
    if not ((digits <= 9) | pad).all() or not (digits[:, 0] <= 9).all():
        return None
    if grid.shape[1] > 1 and not (np.diff(pad.view(np.int8), axis=1) >= 0).all():
        return None  # a NUL inside a value: leave it to the general path
    acc: Array = np.zeros(len(grid), dtype=np.int64)
    for k in range(grid.shape[1]):
        acc = np.where(pad[:, k], acc, acc * 10 + digits[:, k])
    return acc.astype(np.float64)


def _slow_float(arr: Array) -> Array:
    try:
        return np.asarray(arr.astype(np.float64))
    except (ValueError, OverflowError):
        text = np.strings.decode(arr, "ascii", "replace").astype(object)
        return np.array(pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))


def _fill(arr: Array, present: Array, value: bytes = b"0") -> Array:
    """The array with missing entries replaced, so whole-column conversions succeed."""
    return np.where(present, arr, np.array(value, dtype=arr.dtype if len(value) <= arr.itemsize else f"S{len(value)}"))


def parse_int_bytes(arr: Array, present: Array, *, unknown: int | None = None) -> BytesParsed:
    """Integers as float64 with NaN for missing (callers cast to Int64)."""
    arr = _nonzero_width(arr)
    body = _nonzero_width(np.strings.lstrip(np.strings.strip(arr), b"-+"))
    ok = np.strings.isdigit(body) & (np.strings.str_len(body) <= 18)
    values = to_float(_fill(np.strings.strip(arr), present & ok))
    bad = present & ~ok
    values[~(present & ok)] = np.nan
    if unknown is not None:
        values[values == unknown] = np.nan
    return values, bad


def parse_float_bytes(arr: Array, present: Array) -> BytesParsed:
    values = to_float(_fill(np.strings.strip(_nonzero_width(arr)), present))
    bad = present & np.isnan(values)
    values[~present] = np.nan
    return values, bad


def parse_percent_bytes(arr: Array, present: Array) -> BytesParsed:
    """``47.6%`` (or the bare raw number) as float64 percent."""
    return parse_float_bytes(np.strings.rstrip(np.strings.strip(_nonzero_width(arr)), b"%"), present)


def parse_memory_bytes(arr: Array, present: Array) -> BytesParsed:
    """``206.9 MB`` (1024-based) or raw bytes, as float64 bytes (rounded)."""
    number, _, unit = np.strings.partition(np.strings.strip(_nonzero_width(arr)), b" ")
    factor = _lookup(unit, _MEMORY_UNITS)
    values = np.round(to_float(_fill(number, present)) * factor)
    values[np.abs(values) >= _INT64_LIMIT] = np.nan
    bad = present & np.isnan(values)
    values[~present] = np.nan
    return values, bad


def parse_duration_bytes(arr: Array, present: Array) -> BytesParsed:
    """``352ms``, ``1.2s``, ``1m 2s``, ``4h 41m 19s``, ``1d 2h 3m`` or raw ms, as float64 ms."""
    rest = np.strings.strip(_fill(_nonzero_width(arr), present))
    raw = present & np.strings.isdigit(rest)  # the fill of absent cells is digits, not a value
    # raw milliseconds are read below; the token loop only sees the human values
    # (a raw value is one unitless token: it never counts as read by the loop)
    rest = np.where(raw, b"", rest)
    total: Array = np.zeros(len(arr), dtype=np.float64)
    ok: Array = np.ones(len(arr), dtype=bool)
    tokens: Array = np.zeros(len(arr), dtype=np.int64)
    for _ in range(5):  # "1d 2h 3m 4s 5ms" at most
        if not (np.strings.str_len(rest) > 0).any():
            break
        token, _, rest = (_nonzero_width(part) for part in np.strings.partition(np.strings.lstrip(_nonzero_width(rest)), b" "))
        has = np.strings.str_len(token) > 0
        number = _nonzero_width(np.strings.rstrip(token, b"dhms"))
        unit = _nonzero_width(np.strings.slice(token, np.strings.str_len(number), None))
        factor = _lookup(unit, _DURATION_UNIT_MS)
        value = np.full(len(arr), np.nan)
        if has.any():
            value[has] = to_float(number[has])
        part = value * factor
        ok &= ~has | ~np.isnan(part)
        total += np.where(has, np.nan_to_num(part), 0.0)
        tokens += has
    ok &= np.strings.str_len(np.strings.strip(rest)) == 0
    values: Array = total.copy()
    if raw.any():  # raw milliseconds (trace.raw = true); parse only those entries
        values[raw] = to_float(np.strings.strip(_fill(_nonzero_width(arr), present)[raw]))
    ok = (ok & (tokens > 0)) | raw  # a raw value is non-empty digits: one token
    values[np.abs(values) >= 9.2e15] = np.nan  # beyond timedelta64[ns]
    ok &= ~np.isnan(values)
    bad = present & ~ok
    values[~(present & ok)] = np.nan
    return values, bad


def parse_date_bytes(arr: Array, present: Array, tz: tzinfo) -> tuple[pd.Series, Array]:
    """Local ``yyyy-MM-dd HH:mm:ss.SSS`` (given zone ``tz``) or raw epoch ms, as UTC."""
    n = len(arr)
    text = _nonzero_width(np.strings.strip(_fill(_nonzero_width(arr), present)))
    # absent cells were filled with digits ("0") above: without ``present`` they would read
    # as raw epoch 0 (1970-01-01), the date of every "-" beside real dates in the column
    raw = present & np.strings.isdigit(text) & (np.strings.str_len(text) <= 16)
    epoch: Array = np.zeros(n, dtype=np.float64)
    if raw.any():  # only raw entries are read as numbers (the rest stay 0, never used)
        epoch[raw] = to_float(text[raw])
    raw_ok = raw & (epoch >= _MIN_EPOCH_MS) & (epoch <= _MAX_EPOCH_MS)
    result: Array = np.full(n, np.datetime64("NaT", "ms"), dtype="datetime64[ms]")
    result[raw_ok] = epoch[raw_ok].astype(np.int64).astype("datetime64[ms]")

    human = present & ~raw
    shaped = human & _matches_layout(text, _DATE_LAYOUT)
    local: Array = np.full(n, np.datetime64("NaT", "ms"), dtype="datetime64[ms]")
    if shaped.any():
        iso = text[shaped]  # numpy reads "yyyy-MM-dd HH:mm:ss.SSS" (space or T) as ISO 8601
        try:
            local[shaped] = iso.astype("datetime64[ms]")
        except ValueError:  # e.g. Feb-30: let pandas mark the bad ones
            parsed = pd.to_datetime(pd.Series(np.strings.decode(iso, "ascii", "replace")), errors="coerce", format="ISO8601")
            local[shaped] = parsed.to_numpy(dtype="datetime64[ms]")
    human_ok = shaped & ~np.isnat(local)
    utc_ns: Array = result.astype("datetime64[ns]")
    if human_ok.any():
        converted = localize_to_utc(pd.Series(local[human_ok].astype("datetime64[ns]")), tz)
        utc_ns[human_ok] = converted.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    bad = present & ~(raw_ok | human_ok)
    return pd.Series(utc_ns).dt.tz_localize("UTC"), bad


def _matches_layout(text: Array, layout: bytes) -> Array:
    """Entries of exactly ``layout``'s shape: digits where it has 0, its bytes elsewhere."""
    ok = np.strings.str_len(text) == len(layout)
    if not ok.any():
        return ok
    # entries of another length are excluded by ``ok``, so their bytes need no cleaning
    size = len(layout)
    grid = np.ascontiguousarray(text).view(np.uint8).reshape(len(text), text.dtype.itemsize)[:, :size]
    pattern = np.frombuffer(layout, dtype=np.uint8)
    digit_cols = pattern == ord("0")
    digits = (grid[:, digit_cols] - np.uint8(0x30)) <= 9  # non-digits wrap to > 9
    literal = grid[:, ~digit_cols] == pattern[~digit_cols]
    return ok & digits.all(axis=1) & literal.all(axis=1)


def split_name_bytes(name: Array) -> tuple[Array, Array, Array]:
    """``PROC (tag)`` -> (process, tag, has_tag) on a bytes array."""
    process, sep, rest = (_nonzero_width(part) for part in np.strings.partition(_nonzero_width(name), b" ("))
    has_tag = (np.strings.str_len(sep) > 0) & np.strings.endswith(rest, b")")
    tag = np.strings.slice(rest, 0, -1)
    return np.where(has_tag, process, name), tag, has_tag


def hash_from_workdir_bytes(workdir: Array) -> tuple[Array, Array]:
    """(short hash ``ab/cdef01``, found) from full work dirs ``…/ab/<30 hex>``."""
    trimmed = _nonzero_width(np.strings.rstrip(_nonzero_width(workdir), b"/"))
    tail = _nonzero_width(np.strings.slice(trimmed, -33, None))
    hexdigits = _nonzero_width(np.strings.lower(np.strings.replace(tail, b"/", b"", 1)))
    ok = (np.strings.str_len(tail) == 33) & (np.strings.find(tail, b"/") == 2)
    ok &= np.strings.str_len(np.strings.strip(hexdigits, b"0123456789abcdef")) == 0
    return np.strings.slice(tail, 0, 9), ok


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
    """The short task hash ``ab/cdef01`` from a full work dir (docs/ARCHITECTURE.md §3)."""
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
            # all missing: an empty array of the dtype, NA-filled to n rows (no list of n Nones)
            missing = pd.array([], dtype=dtype).take(np.full(n, -1, dtype=np.intp), allow_fill=True)
            out[col] = pd.Series(missing, index=frame.index)
    for col in frame.columns:
        if col not in out:
            out[col] = frame[col]
    # no copy of the columns (a dict of Series is copied by default): a million-row
    # trace would briefly be held twice
    result = pd.DataFrame(out, index=frame.index, copy=False)
    if isinstance(result.index, pd.RangeIndex) and result.index.start == 0 and result.index.step == 1:
        return result
    return result.reset_index(drop=True)


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
    "parse_date_bytes",
    "parse_duration_bytes",
    "parse_float_bytes",
    "parse_int_bytes",
    "parse_memory_bytes",
    "parse_percent_bytes",
    "resolve_tz",
    "split_name",
    "workdir_root",
]


# --- files ------------------------------------------------------------------------

#: A longer line is cut at this many bytes (the rest is skipped, not held in memory).
MAX_LINE_BYTES: Final = 1 << 20


def open_regular(path: Path, what: str) -> Any:
    """``path`` opened for binary reading, or one clear error when it is not a regular file.

    A FIFO would block forever and ``/dev/zero`` never ends: both are refused by
    ``stat`` before ``open`` (``O_NONBLOCK`` keeps a FIFO created in between from
    blocking the open itself).
    """
    import stat

    try:
        st = path.stat()
    except FileNotFoundError:
        raise NextflowReadError(f"no such {what}: check the path", path=str(path)) from None
    except OSError as exc:
        raise NextflowReadError(f"cannot read the {what}: {exc.strerror}", path=str(path)) from None
    if stat.S_ISDIR(st.st_mode):
        raise NextflowReadError(
            f"is a directory, not a {what}: use NextflowRun.from_dir for a launch directory",
            path=str(path),
        )
    if not stat.S_ISREG(st.st_mode):
        raise NextflowReadError(
            f"is not a regular file (a device, FIFO or socket): a {what} is a file Nextflow wrote; "
            "copy it to a file first",
            path=str(path),
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped between stat and open
            os.close(fd)
            raise NextflowReadError(f"is not a regular file: a {what} is a file Nextflow wrote", path=str(path))
        return os.fdopen(fd, "rb")
    except OSError as exc:
        raise NextflowReadError(f"cannot read the {what}: {exc.strerror}", path=str(path)) from None


def compressed_hint(head: bytes) -> str | None:
    """A one-line hint when ``head`` starts like a compressed file (gzip, bzip2, xz, zstd, zip)."""
    for magic, name, tool in (
        (b"\x1f\x8b", "gzip", "gunzip"), (b"BZh", "bzip2", "bunzip2"), (b"\xfd7zXZ\x00", "xz", "unxz"),
        (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"), (b"PK\x03\x04", "zip", "unzip"),
    ):  # fmt: skip
        if head.startswith(magic):
            return f"is {name}-compressed: decompress it first (`{tool}`)"
    return None


def bounded_lines(fh: Any, limit: int = MAX_LINE_BYTES) -> Any:
    """Lines of a binary file (without the newline), each cut at ``limit`` bytes.

    The rest of an over-long line is read in ``limit``-sized pieces and dropped, so a
    file of zeros without a newline costs ``limit`` bytes of memory, not its size.
    """
    while True:
        line = fh.readline(limit)
        if not line:
            return
        if not line.endswith(b"\n"):
            rest = line
            while rest and not rest.endswith(b"\n"):
                rest = fh.readline(limit)
        yield line.rstrip(b"\r\n")
