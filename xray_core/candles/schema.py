"""The candle schema shared by the store, exports and the research pipeline.

A candle frame has exactly these columns: `timestamp` (bar open time, Datetime[ms, UTC]), `open`,
`high`, `low`, `close`, `volume` (Float64), sorted by timestamp. It is the schema of the real data in
../shared/data/candles, so files exported by `xray candles` can be compared with it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from xray_core.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
CANDLE_SCHEMA = pl.Schema(
    {
        "timestamp": pl.Datetime("ms", "UTC"),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
    }
)


def from_ohlcv(rows: Sequence[Sequence[float | int | str | None]]) -> pl.DataFrame:
    """Build a candle frame from ccxt's OHLCV rows ([ms, open, high, low, close, volume], ...).

    Order and duplicates are kept exactly as received: deciding what to do with them is the
    caller's job (the store de-duplicates, quality checks count them)."""
    if not rows:
        return empty()
    frame = pl.DataFrame(
        [list(row[:6]) for row in rows],
        schema=["ts", *PRICE_COLUMNS, "volume"],
        orient="row",
        infer_schema_length=None,
        strict=False,
    )
    return frame.select(
        pl.col("ts").cast(pl.Int64).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("timestamp"),
        *(pl.col(c).cast(pl.Float64, strict=False) for c in (*PRICE_COLUMNS, "volume")),
    )


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=CANDLE_SCHEMA)


def conform(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Check that `frame` has the candle columns with usable types and return it in canonical form.

    Raises DataError naming `source` and the offending column."""
    missing = [name for name in CANDLE_SCHEMA if name not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}",
            "candle files need timestamp, open, high, low, close, volume",
        )
    ts = frame.schema["timestamp"]
    if not isinstance(ts, pl.Datetime):
        raise DataError(
            f"{source}: column 'timestamp' is {ts}, expected a datetime",
            "store bar open times as Datetime[ms, UTC]",
        )
    for name in (*PRICE_COLUMNS, "volume"):
        if not frame.schema[name].is_numeric():
            raise DataError(
                f"{source}: column {name!r} is {frame.schema[name]}, expected a number",
                "prices and volume must be numeric",
            )
    stamp = pl.col("timestamp").cast(pl.Datetime("ms", ts.time_zone))
    stamp = stamp.dt.replace_time_zone("UTC") if ts.time_zone is None else stamp.dt.convert_time_zone("UTC")
    return frame.select(
        stamp.alias("timestamp"), *(pl.col(c).cast(pl.Float64) for c in CANDLE_SCHEMA if c != "timestamp")
    )


def read_parquet(path: Path) -> pl.DataFrame:
    """Read a candle Parquet file, with a clear error for a missing, empty or malformed file."""
    if not path.is_file():
        raise DataError(f"candle file {path} does not exist", "check the path")
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for corrupt files
        raise DataError(
            f"candle file {path} is not readable Parquet ({exc.__class__.__name__})",
            "re-export it with `xray candles SYMBOL --out FILE`",
        ) from None
    frame = conform(frame, str(path))
    if frame.is_empty():
        raise DataError(f"candle file {path} has no rows", "export a symbol that has data")
    return frame.sort("timestamp")
