"""The candle store: DuckDB tables fed from polars, with idempotent, transactional upserts.

Rows are keyed by (exchange, symbol, timeframe, ts_ms): writing the same bars twice changes nothing,
and a corrected bar replaces the old one. Each write is one transaction, so a crash or an error
leaves the previous data intact, never half a batch (connections and locking: `xray_core.duck`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from xray_core.candles.quality import FeedAnomalies, QualityReport
from xray_core.candles.schema import CANDLE_SCHEMA, conform
from xray_core.duck import DuckFile

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS candles (
    exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,
    ts_ms BIGINT NOT NULL,
    open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE,
    PRIMARY KEY (exchange, symbol, timeframe, ts_ms)
);
CREATE TABLE IF NOT EXISTS candle_checks (
    exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,
    assessed_at_ms BIGINT NOT NULL, verdict VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    bars BIGINT NOT NULL, first_ms BIGINT, last_ms BIGINT, checks JSON NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe)
);
CREATE TABLE IF NOT EXISTS candle_quality (
    exchange VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
    bars BIGINT NOT NULL, verdict VARCHAR NOT NULL, reason VARCHAR NOT NULL, as_of_ms BIGINT NOT NULL,
    PRIMARY KEY (exchange, timeframe, symbol)
);
CREATE TABLE IF NOT EXISTS markets (
    exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL, base VARCHAR NOT NULL, quote VARCHAR NOT NULL,
    active BOOLEAN NOT NULL, quote_volume_24h DOUBLE NOT NULL, kept BOOLEAN NOT NULL,
    reason VARCHAR NOT NULL, as_of_ms BIGINT NOT NULL,
    PRIMARY KEY (exchange, symbol)
);
CREATE TABLE IF NOT EXISTS ingest_log (
    exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,
    run_at_ms BIGINT NOT NULL, fetched BIGINT NOT NULL, inserted BIGINT NOT NULL, updated BIGINT NOT NULL,
    identical_duplicates BIGINT NOT NULL, conflicting_duplicates BIGINT NOT NULL,
    status VARCHAR NOT NULL, error VARCHAR
);
"""


@dataclass(frozen=True, slots=True)
class UpsertResult:
    inserted: int
    updated: int


@dataclass(frozen=True, slots=True)
class SeriesKey:
    exchange: str
    symbol: str
    timeframe: str


class CandleStore(DuckFile):
    """Candles, their quality checks and verdicts, the ingest log and the tradable universe."""

    def __init__(self, path: Path, lock_timeout_s: float = 60.0) -> None:
        super().__init__(path, _SCHEMA_SQL, lock_timeout_s)

    # ---- candles -------------------------------------------------------------------------------
    def upsert(self, key: SeriesKey, frame: pl.DataFrame) -> UpsertResult:
        """Insert or replace bars in one transaction. Repeated timestamps keep the last row."""
        frame = conform(frame, f"{key.symbol} {key.timeframe} batch")
        if frame.is_empty():
            return UpsertResult(0, 0)
        batch = frame.unique(subset="timestamp", keep="last", maintain_order=True).select(
            pl.lit(key.exchange).alias("exchange"),
            pl.lit(key.symbol).alias("symbol"),
            pl.lit(key.timeframe).alias("timeframe"),
            pl.col("timestamp").dt.epoch("ms").alias("ts_ms"),
            "open",
            "high",
            "low",
            "close",
            "volume",
        )
        with self.transaction(batch=batch) as con:
            existing = con.execute(
                "SELECT count(*) FROM candles c JOIN batch b USING (exchange, symbol, timeframe, ts_ms)"
            ).fetchone()[0]  # type: ignore[index]
            con.execute("""
                INSERT INTO candles SELECT * FROM batch
                ON CONFLICT (exchange, symbol, timeframe, ts_ms) DO UPDATE SET
                    open = excluded.open, high = excluded.high, low = excluded.low,
                    close = excluded.close, volume = excluded.volume""")
        return UpsertResult(inserted=batch.height - int(existing), updated=int(existing))

    def last_timestamp_ms(self, key: SeriesKey) -> int | None:
        with self.connect(read_only=True) as con:
            row = con.execute(
                "SELECT max(ts_ms) FROM candles WHERE exchange = ? AND symbol = ? AND timeframe = ?",
                [key.exchange, key.symbol, key.timeframe],
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def read(self, key: SeriesKey, start_ms: int | None = None, end_ms: int | None = None) -> pl.DataFrame:
        """Bars with open time in [start_ms, end_ms), in the candle schema, sorted."""
        sql = (
            "SELECT ts_ms, open, high, low, close, volume FROM candles "
            "WHERE exchange = ? AND symbol = ? AND timeframe = ?"
        )
        params: list[object] = [key.exchange, key.symbol, key.timeframe]
        if start_ms is not None:
            sql += " AND ts_ms >= ?"
            params.append(start_ms)
        if end_ms is not None:
            sql += " AND ts_ms < ?"
            params.append(end_ms)
        frame = self.frame(sql + " ORDER BY ts_ms", params)
        if frame.is_empty():
            return pl.DataFrame(schema=CANDLE_SCHEMA)
        return frame.select(
            pl.col("ts_ms").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("timestamp"),
            "open",
            "high",
            "low",
            "close",
            "volume",
        )

    def fingerprint(self, key: SeriesKey, start_ms: int | None = None) -> str:
        """A content hash of the stored bars from `start_ms` on: equal iff the data is equal.
        Used as the Dagster data version, so downstream work reruns only when candles change."""
        with self.connect(read_only=True) as con:
            row = con.execute(
                """
                SELECT count(*), coalesce(bit_xor(hash(ts_ms, open, high, low, close, volume)), 0)
                FROM candles WHERE exchange = ? AND symbol = ? AND timeframe = ? AND ts_ms >= ?""",
                [key.exchange, key.symbol, key.timeframe, start_ms if start_ms is not None else -(2**62)],
            ).fetchone()
        assert row is not None
        return f"{row[0]}-{int(row[1]):016x}"

    def series(self) -> pl.DataFrame:
        """One row per stored series: exchange, symbol, timeframe, bars, first_ms, last_ms."""
        return self.frame(
            """
                SELECT exchange, symbol, timeframe, count(*) AS bars, min(ts_ms) AS first_ms,
                       max(ts_ms) AS last_ms
                FROM candles GROUP BY ALL ORDER BY exchange, timeframe, symbol""",
        )

    # ---- quality and ingest history ----------------------------------------------------------------
    def save_checks(self, exchange: str, report: QualityReport, assessed_at_ms: int) -> None:
        """Keep the latest assessment of a series (its verdict, reason and every check's outcome)."""
        checks = json.dumps([asdict(check) for check in report.checks])
        row = [exchange, report.symbol, report.timeframe, assessed_at_ms, report.verdict, report.reason]
        row += [report.bars, report.first_ms, report.last_ms, checks]
        with self.connect() as con:
            con.execute("INSERT OR REPLACE INTO candle_checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def log_ingest(
        self,
        key: SeriesKey,
        run_at_ms: int,
        fetched: int,
        result: UpsertResult | None,
        feed: FeedAnomalies,
        error: str | None,
    ) -> None:
        """Append one ingestion attempt (successful or not) to the ingest log."""
        row = [key.exchange, key.symbol, key.timeframe, run_at_ms, fetched]
        row += [result.inserted if result else 0, result.updated if result else 0]
        row += [
            feed.identical_duplicates,
            feed.conflicting_duplicates,
            "ok" if error is None else "failed",
            error,
        ]
        with self.connect() as con:
            con.execute("INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def checks(self, exchange: str, timeframe: str) -> pl.DataFrame:
        """The latest assessment of every ingested series (one row per symbol, checks as JSON)."""
        return self.frame(
            "SELECT * FROM candle_checks WHERE exchange = ? AND timeframe = ? ORDER BY symbol",
            [exchange, timeframe],
        )

    def last_ingest_errors(self, exchange: str, timeframe: str) -> dict[str, str]:
        """Symbol -> error of its most recent ingestion, for symbols whose last ingestion failed."""
        with self.connect(read_only=True) as con:
            rows = con.execute(
                """
                SELECT symbol, arg_max(error, run_at_ms), arg_max(status, run_at_ms) FROM ingest_log
                WHERE exchange = ? AND timeframe = ? GROUP BY symbol""",
                [exchange, timeframe],
            ).fetchall()
        return {symbol: error for symbol, error, status in rows if status == "failed"}

    def ingested_since(self, exchange: str, timeframe: str, since_ms: int) -> dict[str, int]:
        """Symbol -> new bars stored by successful ingestions that ran after `since_ms`."""
        with self.connect(read_only=True) as con:
            rows = con.execute(
                """SELECT symbol, sum(inserted) FROM ingest_log WHERE exchange = ? AND timeframe = ?
                   AND run_at_ms > ? AND status = 'ok' GROUP BY symbol""",
                [exchange, timeframe, since_ms],
            ).fetchall()
        return {symbol: int(count) for symbol, count in rows}

    # ---- the tradable universe and the resolved quality verdicts -----------------------------------
    def save_markets(self, exchange: str, markets: pl.DataFrame, as_of_ms: int) -> None:
        """Replace the exchange's universe (columns of `markets.MarketChoice`) in one transaction."""
        rows = markets.select("symbol", "base", "quote", "active", "quote_volume_24h", "kept", "reason")
        self.replace(
            "markets",
            "exchange = ?",
            [exchange],
            rows.with_columns(pl.lit(as_of_ms).alias("as_of_ms")).select(
                pl.lit(exchange).alias("exchange"), pl.all()
            ),
        )

    def markets(self, exchange: str) -> pl.DataFrame:
        return self.frame(
            "SELECT * EXCLUDE (exchange) FROM markets WHERE exchange = ? ORDER BY symbol", [exchange]
        )

    def save_quality(self, exchange: str, timeframe: str, verdicts: pl.DataFrame, as_of_ms: int) -> None:
        """Replace the verdicts (symbol, bars, verdict, reason) for one exchange and timeframe."""
        rows = verdicts.select(
            pl.lit(exchange).alias("exchange"),
            pl.lit(timeframe).alias("timeframe"),
            "symbol",
            "bars",
            "verdict",
            "reason",
            pl.lit(as_of_ms).alias("as_of_ms"),
        )
        self.replace("candle_quality", "exchange = ? AND timeframe = ?", [exchange, timeframe], rows)

    def quality(self, exchange: str, timeframe: str) -> pl.DataFrame:
        return self.frame(
            """SELECT symbol, bars, verdict, reason, as_of_ms FROM candle_quality
                                  WHERE exchange = ? AND timeframe = ? ORDER BY symbol""",
            [exchange, timeframe],
        )

    def good_symbols(self, exchange: str, timeframe: str) -> list[str]:
        """The symbols downstream work may use: the ones the quality verdict calls good."""
        return self.quality(exchange, timeframe).filter(pl.col("verdict") == "good")["symbol"].to_list()
