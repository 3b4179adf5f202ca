"""The candle schema: what every file and table agrees on, and clear errors when data disagrees."""

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from xray_core.candles.schema import CANDLE_SCHEMA, conform, from_ohlcv, read_parquet
from xray_core.errors import DataError


def test_every_shared_file_reads_in_the_canonical_schema(candles_dir: Path):
    for path in sorted(candles_dir.glob("*.parquet")):
        frame = read_parquet(path)
        assert frame.schema == CANDLE_SCHEMA, path.name
        assert frame["timestamp"].is_sorted()


def test_ohlcv_rows_become_candles_keeping_repeats():
    rows = [[1_700_000_000_000, "1.5", "2", "1", "1.8", "10"], [1_700_000_000_000, 1.5, 2, 1, 1.8, 10]]
    frame = from_ohlcv(rows)
    assert frame.schema == CANDLE_SCHEMA
    assert frame.height == 2
    assert frame["close"].to_list() == [1.8, 1.8]


def test_missing_column_names_the_source_and_the_column():
    frame = pl.DataFrame({"timestamp": [1], "open": [1.0]})
    with pytest.raises(DataError, match=r"my\.parquet: missing column\(s\) high, low, close, volume"):
        conform(frame, "my.parquet")


def test_non_numeric_price_column_is_rejected():
    frame = pl.DataFrame(
        {
            "timestamp": [datetime(2024, 1, 1)],
            "open": ["x"],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "volume": [1.0],
        }
    )
    with pytest.raises(DataError, match="'open' is String"):
        conform(frame, "bad")


def test_naive_timestamps_are_taken_as_utc():
    frame = pl.DataFrame(
        {
            "timestamp": [datetime(2024, 1, 1)],
            "open": [1],
            "high": [1],
            "low": [1],
            "close": [1],
            "volume": [0],
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    assert conform(frame, "naive").schema == CANDLE_SCHEMA


def test_empty_or_corrupt_files_get_clear_errors(tmp_path: Path):
    empty = tmp_path / "empty.parquet"
    pl.DataFrame(schema=CANDLE_SCHEMA).write_parquet(empty)
    with pytest.raises(DataError, match="has no rows"):
        read_parquet(empty)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not readable Parquet"):
        read_parquet(corrupt)
    with pytest.raises(DataError, match="does not exist"):
        read_parquet(tmp_path / "missing.parquet")
