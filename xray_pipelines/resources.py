"""Dagster resources: thin, configurable handles on the pure domain objects in xray_core.

The settings-shaped resources take their config fields from the typed settings classes
(`settings_config`), and `build_resources` configures them from the loaded settings, so the UI's
launchpad shows the values in use; secrets are wired as `dg.EnvVar`s and never appear in run config
or logs. `MarketScope` composes the exchange, the lake and the market-data settings into the one
thing most assets need: which market they work on, and its tables.
"""

import os
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from xray_core.bundle_store import BundleStore, open_store
from xray_core.candles.store import CandleStore, SeriesKey
from xray_core.exchange.client import ExchangeClient
from xray_core.research.inputs import Series, good_series
from xray_core.research.store import LakeSeries, LakeTable, ResearchStore
from xray_core.settings import (
    BundleSettings,
    ExchangeSettings,
    IngestSettings,
    JournalSettings,
    ModelSettings,
    QualitySettings,
    ResearchSettings,
    XraySettings,
    load,
    resolve_journal_url,
)
from xray_pipelines.mlops.registry import Tracking, tracking_for
from xray_pipelines.settings_config import settings_resource


class ExchangeResource(settings_resource(ExchangeSettings, config_names={"id": "exchange_id"})):  # type: ignore[misc]  # a generated base class
    """The exchange to read market data from (ccxt id, optional base-URL override for the emulator);
    the API key and secret come from XRAY_EXCHANGE_API_KEY / _SECRET as `dg.EnvVar`s."""

    def settings(self) -> ExchangeSettings:
        return self.to_settings(ExchangeSettings)

    def client(self) -> ExchangeClient:
        return ExchangeClient(self.settings())


class LakeResource(dg.ConfigurableResource):
    """Where data lives: the DuckDB file (candles, verdicts, universe, research tables) and the
    directory of per-series Parquet files (features, training data). Resolved paths rather than the
    store settings, so that runs do not depend on the working directory."""

    duckdb_path: str
    lake_dir: str = Field("", description="Per-series Parquet files; default: 'lake' next to the DuckDB file")
    bundle_url: str = Field(
        "", description="Where the promoted bundle is published (XRAY_RUNTIME_BUNDLE_URL, "
        "xray_core.bundle_store); default: 'bundles' next to the lake directory"
    )

    def candles(self) -> CandleStore:
        return CandleStore(Path(self.duckdb_path))

    def research(self) -> ResearchStore:
        lake_dir = Path(self.lake_dir) if self.lake_dir else Path(self.duckdb_path).parent / "lake"
        return ResearchStore(Path(self.duckdb_path), lake_dir)

    def bundles(self) -> BundleStore:
        """The store the runtime polls: the shared URL, else the directory beside the lake."""
        return open_store(self.bundle_url, self.research().lake_dir.parent / "bundles")


class MarketDataResource(settings_resource(IngestSettings, QualitySettings)):  # type: ignore[misc]  # a generated base class
    """What to ingest and what counts as good data: shared by every market-data asset and check."""

    def ingest(self) -> IngestSettings:
        return self.to_settings(IngestSettings)

    def quality(self) -> QualitySettings:
        return self.to_settings(QualitySettings)


class MarketScope(dg.ConfigurableResource):
    """The market a run works on — one exchange, one timeframe, a history window — and its data.

    Composed of the three resources above (Dagster nested resources: configured once, under their own
    keys), so an asset asks for `market: MarketScope` instead of rebuilding the scope from each."""

    exchange: ExchangeResource
    lake: LakeResource
    market_data: MarketDataResource

    @property
    def exchange_id(self) -> str:
        return self.exchange.exchange_id

    @property
    def timeframe(self) -> str:
        return self.market_data.timeframe

    @property
    def history_days(self) -> int:
        return self.market_data.history_days

    def scope(self, table: LakeTable) -> dict[str, str]:
        """The rows of `table` that belong to this market."""
        values = {"exchange": self.exchange_id, "timeframe": self.timeframe}
        return {key: values[key] for key in table.scope_keys}

    def series_key(self, symbol: str) -> SeriesKey:
        return SeriesKey(self.exchange_id, symbol, self.timeframe)

    def good_series(self) -> list[Series]:
        """The history window of every symbol the quality gate calls good."""
        return good_series(self.lake.candles(), self.exchange_id, self.timeframe, self.history_days)

    def read(self, table: LakeTable) -> pl.DataFrame:
        return self.lake.research().read(table, self.scope(table))

    def write(self, table: LakeTable, frame: pl.DataFrame) -> None:
        self.lake.research().write(table, frame, self.scope(table))

    def read_series(self, kind: LakeSeries, symbol: str = "all") -> pl.DataFrame | None:
        return self.lake.research().read_series(kind, self.exchange_id, self.timeframe, symbol)

    def write_series(self, kind: LakeSeries, frame: pl.DataFrame, symbol: str = "all") -> Path:
        return self.lake.research().write_series(kind, self.exchange_id, self.timeframe, symbol, frame)

    def drop_series(self, kind: LakeSeries, symbol: str) -> bool:
        return self.lake.research().drop_series(kind, self.exchange_id, self.timeframe, symbol)


class ResearchResource(settings_resource(ResearchSettings)):  # type: ignore[misc]  # a generated base class
    """Backtest costs, filter thresholds, optimiser budget and news sources of the research assets."""

    def settings(self) -> ResearchSettings:
        return self.to_settings(ResearchSettings)

    def optuna_url(self) -> str:
        """The study storage: the configured URL, else a SQLite file beside the Dagster instance."""
        if self.optuna_storage:
            return self.optuna_storage
        home = Path(os.environ.get("DAGSTER_HOME") or os.environ.get("XRAY_HOME", ".xray"))
        home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(home / 'optuna.db').resolve()}"


class ModelsResource(settings_resource(ModelSettings)):  # type: ignore[misc]  # a generated base class
    """The self-learning loop's settings and its MLflow store."""

    # Resolved (never "unset"), like the lake's paths: the store every run of this location uses.
    tracking_uri: str = Field(description="MLflow tracking and registry URI")
    artifact_root: str = Field(description="Where new runs keep their artefacts")

    def settings(self) -> ModelSettings:
        return self.to_settings(ModelSettings)

    def tracking(self) -> Tracking:
        return Tracking(self.tracking_uri, self.artifact_root, self.experiment)


class RuntimeJournalResource(settings_resource(JournalSettings)):  # type: ignore[misc]  # a generated base class
    """The runtime's order journal, read-only: its fills with the lineage of their orders, and its
    shadow books' bars (`xray_pipelines.journal`). The tables are the ones the runtime writes
    (`journal_schema`)."""

    # Resolved (never "unset"), like the MLflow URI: the journal of the runtime beside this location.
    database_url: str = Field(
        description="SQLAlchemy URL of the runtime's journal; default SQLite $XRAY_HOME/runtime.db"
    )

    def fills(self) -> pl.DataFrame:
        from xray_pipelines.journal import read_live_fills

        return read_live_fills(self.database_url)

    def shadow_bars(self) -> pl.DataFrame:
        """Every bar of the runtime's shadow books (`xray_core.learning.shadow_record.SHADOW_SCHEMA`)."""
        from xray_pipelines.journal import read_shadow_bars

        return read_shadow_bars(self.database_url)

    def shadow_positions(self) -> pl.DataFrame:
        """What each shadow book held over each closed bar, in the gate's terms (timestamp, symbol,
        model_version `name/N`, position): `xray_core.learning.skill.shadow_pair` prices them."""
        bars = self.shadow_bars()
        return bars.select(
            pl.col("bar").alias("timestamp"),
            "symbol",
            pl.format("{}/{}", "model", "version").alias("model_version"),
            "position",
        )


def _bundle_url() -> Any:
    """XRAY_RUNTIME_BUNDLE_URL as an EnvVar when the process has it: a database URL may carry a
    password, which must not show in the UI's launchpad or in run config (read at run time instead)."""
    if os.environ.get("XRAY_RUNTIME_BUNDLE_URL", "").strip():
        return dg.EnvVar("XRAY_RUNTIME_BUNDLE_URL")
    return load(BundleSettings).bundle_url or ""  # from .env, or unset: the local directory


def build_resources(settings: XraySettings) -> dict[str, dg.ConfigurableResource]:
    exchange = ExchangeResource.from_settings(settings.exchange)
    lake = LakeResource(
        duckdb_path=str(settings.store.duckdb_file.resolve()),
        lake_dir=str(settings.store.lake_dir.resolve()),
        bundle_url=_bundle_url(),
    )
    market_data = MarketDataResource.from_settings(settings.ingest, settings.quality)
    tracking = tracking_for(settings.models.tracking_uri, settings.models.experiment, settings.store.home)
    return {
        # The parts stay top-level resources: each is configured once, under its own key, in the UI.
        "exchange": exchange,
        "lake": lake,
        "market_data": market_data,
        "market": MarketScope(exchange=exchange, lake=lake, market_data=market_data),
        "research": ResearchResource.from_settings(settings.research),
        "models": ModelsResource.from_settings(
            settings.models, tracking_uri=tracking.tracking_uri, artifact_root=tracking.artifact_root
        ),
        "journal": RuntimeJournalResource.from_settings(
            settings.journal,
            database_url=resolve_journal_url(settings.journal.database_url, settings.store.home),
        ),
    }
