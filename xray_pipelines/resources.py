"""Dagster resources: thin, configurable handles on the pure domain objects in xray_core.

Defaults come from the typed settings (environment), so the UI's launchpad shows the values in use;
secrets are wired as `dg.EnvVar`s and never appear in run config or logs. Resources whose fields
mirror a settings class share the field names, so one `_settings_values` call converts either way.
"""

import os
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import BaseModel, Field, SecretStr

from xray_core.candles.store import CandleStore
from xray_core.exchange.client import ExchangeClient
from xray_core.research.store import ResearchStore
from xray_core.settings import (
    ExchangeSettings,
    IngestSettings,
    ModelSettings,
    QualitySettings,
    ResearchSettings,
    XraySettings,
)
from xray_pipelines.mlops.registry import Tracking, tracking_for


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


class LakeResource(dg.ConfigurableResource):
    """Where data lives: the DuckDB file (candles, verdicts, universe, research tables) and the
    directory of per-series Parquet files (features)."""

    duckdb_path: str
    lake_dir: str = Field("", description="Per-series Parquet files; default: 'lake' next to the DuckDB file")

    def candles(self) -> CandleStore:
        return CandleStore(Path(self.duckdb_path))

    def research(self) -> ResearchStore:
        lake_dir = Path(self.lake_dir) if self.lake_dir else Path(self.duckdb_path).parent / "lake"
        return ResearchStore(Path(self.duckdb_path), lake_dir)


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
        return IngestSettings(**_settings_values(self, IngestSettings))

    def quality(self) -> QualitySettings:
        return QualitySettings(**_settings_values(self, QualitySettings))


class ResearchResource(dg.ConfigurableResource):
    """Backtest costs, filter thresholds, optimiser budget and news sources of the research assets."""

    fee: float = 0.001
    slippage: float = 0.0005
    cash: float = 10_000.0
    mode: Literal["long_only", "long_short"] = "long_only"
    min_total_return: float = 0.0
    min_sharpe: float = 0.5
    max_drawdown: float = 0.35
    min_trades: int = 3
    min_quote_volume: float = 0.0
    clusters: int = 5
    optimize_trials: int = 40
    optimize_folds: int = 3
    seed: int = 7
    optuna_storage: str | None = Field(
        None, description="Optuna storage URL; default: sqlite in DAGSTER_HOME"
    )
    news_sources: list[str] = Field(default_factory=list, description="RSS/Atom URLs or JSON drop paths")
    news_half_life_hours: float = 6.0

    def settings(self) -> ResearchSettings:
        return ResearchSettings(**_settings_values(self, ResearchSettings))

    def optuna_url(self) -> str:
        """The study storage: the configured URL, else a SQLite file beside the Dagster instance."""
        if self.optuna_storage:
            return self.optuna_storage
        home = Path(os.environ.get("DAGSTER_HOME") or os.environ.get("XRAY_HOME", ".xray"))
        home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(home / 'optuna.db').resolve()}"


class ModelsResource(dg.ConfigurableResource):
    """The self-learning loop's settings and its MLflow store."""

    tracking_uri: str = Field(description="MLflow tracking and registry URI")
    artifact_root: str = Field(description="Where new runs keep their artefacts")
    experiment: str = "xray"
    horizon_bars: int = 24
    label_threshold: float = 0.0
    folds: int = 3
    embargo_bars: int = 24
    size: Literal["test", "demo"] = "demo"
    promotion_margin: float = 0.1
    min_oos_trades: int = 5
    retrain_new_bars: int = 24
    drift_psi: float = 0.2
    decay_sharpe_drop: float = 1.0

    def settings(self) -> ModelSettings:
        return ModelSettings(**_settings_values(self, ModelSettings))

    def tracking(self) -> Tracking:
        return Tracking(self.tracking_uri, self.artifact_root, self.experiment)


def _settings_values(source: BaseModel, target: type[BaseModel]) -> dict[str, Any]:
    """The fields `source` shares with `target`; sequences take the target's kind (settings hold tuples,
    Dagster config holds lists)."""
    values = {}
    for name, field in target.model_fields.items():
        if name in type(source).model_fields:
            value = getattr(source, name)
            kind = type(field.get_default(call_default_factory=True))
            values[name] = kind(value) if kind in (list, tuple) else value
    return values


def _secret(name: str) -> dg.EnvVar | None:
    """A secret is wired as an EnvVar (resolved at run time, hidden in the UI) only when it is set."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources(settings: XraySettings) -> dict[str, dg.ConfigurableResource]:
    exchange = settings.exchange
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
        "lake": LakeResource(
            duckdb_path=str(settings.store.duckdb_file.resolve()),
            lake_dir=str(settings.store.lake_dir.resolve()),
        ),
        "market_data": MarketDataResource(
            **_settings_values(settings.ingest, MarketDataResource),
            **_settings_values(settings.quality, MarketDataResource),
        ),
        "research": ResearchResource(**_settings_values(settings.research, ResearchResource)),
        "models": models_resource(settings),
    }


def models_resource(settings: XraySettings) -> ModelsResource:
    tracking = tracking_for(settings.models.tracking_uri, settings.models.experiment, settings.store.home)
    values = _settings_values(settings.models, ModelsResource) | {"tracking_uri": tracking.tracking_uri}
    return ModelsResource(**values, artifact_root=tracking.artifact_root)
