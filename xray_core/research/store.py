"""Derived research tables in DuckDB and per-series Parquet files (features) in the lake directory.

Derived data can always be recomputed from candles, so a table whose columns changed with the code is
dropped and recreated rather than migrated. Every write replaces one scope (e.g. an exchange and a
timeframe) in one transaction; readers never see half a result.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import polars as pl

from xray_core.duck import DuckFile, query


class LakeTable(StrEnum):
    """Every table of derived data in the DuckDB file, by its stored name: the one place that names them.

    A table is scoped by exchange and timeframe unless `scope_keys` says otherwise (news is about a
    symbol, whatever the bar length)."""

    BACKTESTS = "backtest_results"
    FILTERED_SYMBOLS = "filtered_symbols"
    CORRELATION_SUMMARY = "correlation_summary"
    CORRELATION_PAIRS = "correlation_correlation"
    CORRELATION_CLUSTERS = "correlation_clusters"
    CORRELATION_BETAS = "correlation_betas"
    CORRELATION_LEAD_LAG = "correlation_lead_lag"
    CORRELATION_EXCLUDED = "correlation_excluded"
    CORRELATION_SKIPPED = "correlation_skipped"
    NEWS_SENTIMENT = "news_sentiment"
    NEWS_ITEMS = "news_items"  # every headline ever fetched, with when it was first seen
    STRATEGY_PARAMS = "strategy_params"
    SYMBOL_PARAMS = "symbol_params"
    RISK_PROFILES = "risk_profiles"
    LIVE_FILLS = "live_fills"  # the runtime's fills with their lineage, snapshot by `live_fills`
    SHADOW_BARS = "shadow_bars"  # the runtime's shadow books per bar, snapshot by `shadow_records`

    @property
    def scope_keys(self) -> tuple[str, ...]:
        news = (LakeTable.NEWS_SENTIMENT, LakeTable.NEWS_ITEMS)
        return ("exchange",) if self in news else ("exchange", "timeframe")

    @classmethod
    def correlation(cls, part: str) -> LakeTable:
        """The table of one part of a correlation report (`CorrelationReport.to_tables`); a part
        without a table here fails loudly rather than being stored under an unlisted name."""
        return cls(f"correlation_{part}")


class LakeSeries(StrEnum):
    """Every kind of per-series Parquet file in the lake directory (`ResearchStore.series_path`)."""

    FEATURES = "features"  # per symbol
    TRAINING = "training"  # one file, "all" symbols


class ResearchStore(DuckFile):
    def __init__(self, duckdb_path: Path, lake_dir: Path, lock_timeout_s: float = 60.0) -> None:
        super().__init__(duckdb_path, lock_timeout_s=lock_timeout_s)
        self.lake_dir = Path(lake_dir)

    # ---- tables --------------------------------------------------------------------------------
    def write(self, table: str, rows: pl.DataFrame, scope: dict[str, str]) -> None:
        """Replace the rows of `table` in `scope` by `rows` (the scope columns are added in front)."""
        scoped = rows.select(
            *(pl.lit(value, pl.String).alias(key) for key, value in scope.items()),
            pl.all().exclude(list(scope)),
        )
        where = " AND ".join(f"{key} = ?" for key in scope)
        with self.transaction(new_rows=scoped) as con:
            existing = query(
                con,
                f"SELECT column_name, data_type FROM information_schema.columns "
                f"WHERE table_name = '{table}' ORDER BY ordinal_position",
            )
            wanted = query(con, "DESCRIBE SELECT * FROM new_rows").select("column_name", "column_type")
            if existing.height and existing.rows() != wanted.rows():
                con.execute(f"DROP TABLE {table}")  # the code changed the columns: recompute, not migrate
                existing = existing.clear()
            if not existing.height:
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM new_rows LIMIT 0")
            con.execute(f"DELETE FROM {table} WHERE {where}", list(scope.values()))
            con.execute(f"INSERT INTO {table} SELECT * FROM new_rows")

    def read(self, table: str, scope: dict[str, str]) -> pl.DataFrame:
        """The rows of `table` in `scope`, without the scope columns; empty if never written."""
        with self.connect(read_only=True) as con:
            if not query(con, "SELECT 1 FROM information_schema.tables WHERE table_name = ?", [table]).height:
                return pl.DataFrame()
            where = " AND ".join(f"{key} = ?" for key in scope)
            return query(
                con, f"SELECT * EXCLUDE ({', '.join(scope)}) FROM {table} WHERE {where}", list(scope.values())
            )

    # ---- per-series files ----------------------------------------------------------------------
    def series_path(self, kind: str, exchange: str, timeframe: str, symbol: str) -> Path:
        return self.lake_dir / kind / exchange / timeframe / f"{symbol.replace('/', '_')}.parquet"

    def write_series(
        self, kind: str, exchange: str, timeframe: str, symbol: str, frame: pl.DataFrame
    ) -> Path:
        """Write atomically: readers see the old file or the new one, never a partial one."""
        path = self.series_path(kind, exchange, timeframe, symbol)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        frame.write_parquet(partial)
        partial.replace(path)
        return path

    def read_series(self, kind: str, exchange: str, timeframe: str, symbol: str) -> pl.DataFrame | None:
        path = self.series_path(kind, exchange, timeframe, symbol)
        return pl.read_parquet(path) if path.exists() else None

    def drop_series(self, kind: str, exchange: str, timeframe: str, symbol: str) -> bool:
        path = self.series_path(kind, exchange, timeframe, symbol)
        if path.exists():
            path.unlink()
            return True
        return False
