"""Time conversions used across batchkit, defined once.

Two conventions meet here. AWS Batch gives times as epoch *milliseconds* (``createdAt``,
``startedAt``, ``stoppedAt``; ListJobs' ``AFTER_CREATED_AT`` filter takes them as a string;
see the DescribeJobs and ListJobs API reference). batchkit's frames and run views hold
tz-aware UTC pandas Timestamps, and take a zone-less value as UTC (``schema.RunLike``
promises UTC; readers give Nextflow's zone-less local times their zone before this point,
docs/ARCHITECTURE.md §3).

Pure: no I/O, no clock reads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["as_utc", "epoch_ms", "from_epoch_ms", "to_utc"]


def to_utc(value: Any) -> pd.Timestamp:
    """A timestamp-like value as a tz-aware UTC Timestamp; a zone-less one is taken as UTC.

    For values that are there: a missing one comes back as ``NaT`` (see :func:`as_utc`
    for None instead).
    """
    import pandas as pd  # here, not at import: BatchClient needs only epoch_ms

    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def as_utc(value: Any) -> pd.Timestamp | None:
    """A timestamp-like value as a tz-aware UTC Timestamp; a zone-less one is taken as UTC.

    None, NaT and NA give None.
    """
    import pandas as pd

    if value is None or value is pd.NaT or value is pd.NA:
        return None
    stamp = to_utc(value)
    return None if stamp is pd.NaT else stamp


def from_epoch_ms(value: Any) -> datetime | None:
    """Batch's epoch milliseconds as an aware UTC datetime; None for anything else.

    Batch answers JSON numbers: anything else (a string, a bool), zero or negative
    (Batch's "not yet"), or a value out of the platform's range gives None.
    """
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        return None
    try:
        return datetime.fromtimestamp(value / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def epoch_ms(when: datetime | float, *, name: str = "when") -> int:
    """Epoch milliseconds of an aware datetime, or of epoch seconds.

    A zone-less datetime is refused (``name`` is the argument the message names):
    guessing its zone would move a ListJobs ``AFTER_CREATED_AT`` bound by hours.
    """
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError(
                f"{name}={when!r} has no time zone: pass a tz-aware datetime "
                "(e.g. datetime.now(timezone.utc)) or epoch seconds"
            )
        return int(when.timestamp() * 1000)
    return int(float(when) * 1000)
