"""Dagster resources: thin, configurable handles on the pure domain objects in xray_core.

Defaults come from the typed settings (environment), so the UI's launchpad shows the values in use;
secrets are wired as `dg.EnvVar`s and never appear in run config or logs.
"""

import os
from pathlib import Path

import dagster as dg
from pydantic import Field, SecretStr

from xray_core.candles.store import CandleStore
from xray_core.exchange.client import ExchangeClient
from xray_core.settings import ExchangeSettings, IngestSettings, QualitySettings, XraySettings


class ExchangeResource(dg.ConfigurableResource):
    """The exchange to read market data from (ccxt id, optional base-URL override for the emulator)."""

    exchange_id: str = "mexc"
    url: str | None = Field(None, description="Replaces the exchange's API host, e.g. the emulator's URL")
    api_key: str | None = Field(None, description="Set through XRAY_EXCHANGE_API_KEY (dg.EnvVar)")
    api_secret: str | None = Field(None, description="Set through XRAY_EXCHANGE_API_SECRET (dg.EnvVar)")
    timeout_s: float = 10.0
    max_retries: int = 5
    requests_per_s: float | None = None

    def settings(self) -> ExchangeSettings:
        return ExchangeSettings(
            id=self.exchange_id,
            url=self.url,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            requests_per_s=self.requests_per_s,
            api_key=SecretStr(self.api_key) if self.api_key else None,
            api_secret=SecretStr(self.api_secret) if self.api_secret else None,
        )

    def client(self) -> ExchangeClient:
        return ExchangeClient(self.settings())


class CandleStoreResource(dg.ConfigurableResource):
    """The DuckDB file holding candles, quality verdicts and the tradable universe."""

    duckdb_path: str

    def store(self) -> CandleStore:
        return CandleStore(Path(self.duckdb_path))


class MarketDataResource(dg.ConfigurableResource):
    """What to ingest and what counts as good data: shared by every market-data asset and check."""

    timeframe: str = "1h"
    history_days: int = 90
    quote: str = "USDT"
    min_quote_volume: float = 0.0
    max_symbols: int | None = None
    symbols: list[str] = Field(default_factory=list, description="Allow-list; empty keeps every market")
    max_missing_ratio: float = 0.01
    max_gap_bars: int = 6
    freshness_bars: int = 3
    min_bars: int = 200

    def ingest(self) -> IngestSettings:
        return IngestSettings(
            timeframe=self.timeframe,
            history_days=self.history_days,
            quote=self.quote,
            min_quote_volume=self.min_quote_volume,
            max_symbols=self.max_symbols,
            symbols=tuple(self.symbols),
        )

    def quality(self) -> QualitySettings:
        return QualitySettings(
            max_missing_ratio=self.max_missing_ratio,
            max_gap_bars=self.max_gap_bars,
            freshness_bars=self.freshness_bars,
            min_bars=self.min_bars,
        )


def _secret(name: str) -> dg.EnvVar | None:
    """A secret is wired as an EnvVar (resolved at run time, hidden in the UI) only when it is set."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources(settings: XraySettings) -> dict[str, dg.ConfigurableResource]:
    exchange, ingest, quality = settings.exchange, settings.ingest, settings.quality
    return {
        "exchange": ExchangeResource(
            exchange_id=exchange.id,
            url=exchange.url,
            timeout_s=exchange.timeout_s,
            max_retries=exchange.max_retries,
            requests_per_s=exchange.requests_per_s,
            api_key=_secret("XRAY_EXCHANGE_API_KEY"),
            api_secret=_secret("XRAY_EXCHANGE_API_SECRET"),
        ),
        "candle_store": CandleStoreResource(duckdb_path=str(settings.store.duckdb_file.resolve())),
        "market_data": MarketDataResource(
            timeframe=ingest.timeframe,
            history_days=ingest.history_days,
            quote=ingest.quote,
            min_quote_volume=ingest.min_quote_volume,
            max_symbols=ingest.max_symbols,
            symbols=list(ingest.symbols),
            max_missing_ratio=quality.max_missing_ratio,
            max_gap_bars=quality.max_gap_bars,
            freshness_bars=quality.freshness_bars,
            min_bars=quality.min_bars,
        ),
    }
