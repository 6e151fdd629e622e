"""batchkit._time: the one place epoch milliseconds and UTC timestamps are converted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from batchkit._time import as_utc, epoch_ms, from_epoch_ms, to_utc


def test_as_utc_takes_a_zone_less_value_as_utc_and_converts_an_aware_one() -> None:
    assert as_utc("2026-01-24 12:49:27") == pd.Timestamp("2026-01-24 12:49:27", tz="UTC")
    aware = pd.Timestamp("2026-01-24 13:49:27", tz="Europe/Stockholm")
    assert as_utc(aware) == aware
    assert str(as_utc(aware).tz) == "UTC"  # type: ignore[union-attr]
    assert as_utc(datetime(2026, 1, 24, 12, tzinfo=timezone(timedelta(hours=2)))) == pd.Timestamp(
        "2026-01-24 10:00", tz="UTC"
    )


@pytest.mark.parametrize("missing", [None, pd.NaT, pd.NA, float("nan")])
def test_as_utc_gives_none_for_a_missing_value(missing: object) -> None:
    assert as_utc(missing) is None


def test_from_epoch_ms_reads_batch_times() -> None:
    assert from_epoch_ms(1_769_258_967_026) == datetime(2026, 1, 24, 12, 49, 27, 26_000, tzinfo=UTC)
    assert from_epoch_ms(1.5e12) == datetime.fromtimestamp(1.5e9, tz=UTC)


@pytest.mark.parametrize("value", [None, 0, -5, True, "1769258967026", {}, 1e30])
def test_from_epoch_ms_gives_none_for_what_batch_never_sends_as_a_time(value: object) -> None:
    assert from_epoch_ms(value) is None


def test_epoch_ms_of_an_aware_datetime_and_of_epoch_seconds() -> None:
    when = datetime(2026, 1, 24, 12, 49, 27, 26_000, tzinfo=UTC)
    assert epoch_ms(when) == 1_769_258_967_026
    assert epoch_ms(1_769_258_967.026) == 1_769_258_967_026
    assert from_epoch_ms(epoch_ms(when)) == when


def test_epoch_ms_refuses_a_zone_less_datetime_and_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"created_after=.* has no time zone"):
        epoch_ms(datetime(2026, 1, 24, 12), name="created_after")


def test_to_utc_is_as_utc_for_a_present_value_and_keeps_a_missing_one_as_nat() -> None:
    for value in ("2026-01-24 12:49:27", pd.Timestamp("2026-01-24 13:49", tz="Europe/Stockholm")):
        assert to_utc(value) == as_utc(value)
        assert str(to_utc(value).tz) == "UTC"
    assert to_utc(None) is pd.NaT
