"""Typed settings, read from the environment (and a `.env` file) with pydantic-settings.

Each group has its own prefix so that a variable's name says where it goes:
`XRAY_EXCHANGE_*` (which exchange, keys, retries), `XRAY_HOME` / `XRAY_DUCKDB_PATH` (where data lives),
`XRAY_INGEST_*` (what to ingest), `XRAY_QUALITY_*` (what counts as good data). All settings are frozen:
code receives them, never mutates them. Secrets are `SecretStr`, so they never print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from xray_core.errors import ConfigError
from xray_core.timeframes import TIMEFRAME_MS

_COMMON = SettingsConfigDict(frozen=True, extra="ignore", env_file=".env", env_file_encoding="utf-8")


class ExchangeSettings(BaseSettings):
    """Which exchange to talk to and how hard to try."""

    model_config = SettingsConfigDict(env_prefix="XRAY_EXCHANGE_", **_COMMON)

    id: str = Field("mexc", description="ccxt exchange id (mexc, binance, ...)")
    url: str | None = Field(
        None,
        description="Base URL replacing the exchange's API host, e.g. http://127.0.0.1:8765 for the emulator",
    )
    api_key: SecretStr | None = Field(None, description="API key (only needed for private endpoints)")
    api_secret: SecretStr | None = Field(None, description="API secret")
    timeout_s: float = Field(10.0, gt=0, le=300, description="HTTP timeout per request")
    max_retries: int = Field(5, ge=0, le=20, description="Retries on network errors and 429s")
    backoff_s: float = Field(0.5, gt=0, le=60, description="First retry delay; doubles each retry")
    backoff_max_s: float = Field(20.0, gt=0, le=600, description="Longest retry delay")
    requests_per_s: float | None = Field(
        None, gt=0, description="Client-side request rate; unset uses the exchange's published rate"
    )

    @field_validator("id")
    @classmethod
    def _lower_id(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class StoreSettings(BaseSettings):
    """Where X-Ray keeps its data (the lake: DuckDB and Parquet)."""

    model_config = SettingsConfigDict(env_prefix="XRAY_", **_COMMON)

    home: Path = Field(Path(".xray"), description="Directory for local state (DuckDB, Dagster home, MLflow)")
    duckdb_path: Path | None = Field(None, description="DuckDB file; defaults to $XRAY_HOME/xray.duckdb")

    @property
    def duckdb_file(self) -> Path:
        return self.duckdb_path or self.home / "xray.duckdb"

    @property
    def lake_dir(self) -> Path:
        """Per-series Parquet files (features), next to the DuckDB file."""
        return self.duckdb_file.parent / "lake"


class IngestSettings(BaseSettings):
    """Which markets and how much history to ingest."""

    model_config = SettingsConfigDict(env_prefix="XRAY_INGEST_", **_COMMON)

    timeframe: str = Field("1h", description="Bar timeframe to ingest")
    history_days: int = Field(90, ge=1, le=3650, description="History to backfill on first ingest")
    quote: str = Field("USDT", description="Quote currency of the tradable universe")
    min_quote_volume: float = Field(0.0, ge=0, description="Minimum 24h quote volume to keep a market")
    max_symbols: int | None = Field(None, ge=1, description="Keep at most this many markets (by volume)")
    symbols: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Comma-separated allow-list, e.g. BTC/USDT,ETH/USDT (empty: all)"
    )
    weight_share: float = Field(
        0.5, gt=0, le=1,
        description="Share of the venue's per-IP request weight that ingestion on this machine may use "
        "(all its processes together; the trading runtime uses the same IP)",
    )
    weight_limit_ip: int | None = Field(
        None, ge=1, description="Request weight per IP per window; unset: the venue's (MEXC: 500 per 10 s)"
    )
    weight_window_s: float | None = Field(None, gt=0, description="Rate-limit window; unset: the venue's")

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        if value not in TIMEFRAME_MS:
            raise ValueError(f"must be one of {', '.join(TIMEFRAME_MS)}")
        return value

    @field_validator("quote")
    @classmethod
    def _upper_quote(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip().upper() for part in value.split(",") if part.strip())
        return value


class QualitySettings(BaseSettings):
    """What counts as usable candle data."""

    model_config = SettingsConfigDict(env_prefix="XRAY_QUALITY_", **_COMMON)

    max_missing_ratio: float = Field(
        0.01, ge=0, le=1, description="Largest fraction of expected bars that may be missing"
    )
    max_gap_bars: int = Field(6, ge=0, description="Longest run of consecutive missing bars")
    freshness_bars: int = Field(3, ge=1, description="The newest bar may be at most this many bars old")
    min_bars: int = Field(200, ge=1, description="Fewest bars a symbol needs to be usable")


class ResearchSettings(BaseSettings):
    """How symbols are backtested, filtered and optimised, and where news comes from."""

    model_config = SettingsConfigDict(env_prefix="XRAY_RESEARCH_", **_COMMON)

    fee: float = Field(0.001, ge=0, le=0.05, description="Fee per fill (0.001 = 0.1%)")
    slippage: float = Field(0.0005, ge=0, le=0.05, description="Slippage per fill")
    cash: float = Field(10_000.0, gt=0, description="Starting equity of every backtest")
    mode: Literal["long_only", "long_short"] = Field("long_only", description="Backtest mode")
    min_total_return: float = Field(0.0, description="Keep a symbol only above this total return")
    min_sharpe: float = Field(0.5, description="... and above this Sharpe ratio")
    max_drawdown: float = Field(0.35, gt=0, le=1, description="... and below this max drawdown")
    min_trades: int = Field(3, ge=0, description="... and with at least this many trades")
    min_quote_volume: float = Field(0.0, ge=0, description="... and this 24h quote volume (liquidity)")
    clusters: int = Field(5, ge=1, le=100, description="Correlation clusters (one parameter set each)")
    optimize_trials: int = Field(40, ge=1, le=5000, description="Optuna trials per symbol group")
    optimize_folds: int = Field(3, ge=1, le=20, description="Walk-forward folds")
    seed: int = Field(7, description="Seed of the genetic optimiser")
    optuna_storage: str | None = Field(
        None, description="Optuna storage URL; default: sqlite in DAGSTER_HOME (or XRAY_HOME)"
    )
    news_sources: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Comma-separated RSS/Atom URLs or JSON drop paths"
    )
    news_half_life_hours: float = Field(6.0, gt=0, description="Decay of the sentiment feature")

    @field_validator("news_sources", mode="before")
    @classmethod
    def _split_sources(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class ModelSettings(BaseSettings):
    """The self-learning loop: labels, walk-forward evaluation, promotion, retraining triggers."""

    model_config = SettingsConfigDict(env_prefix="XRAY_MODELS_", **_COMMON)

    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default MLFLOW_TRACKING_URI, else SQLite in $XRAY_HOME/mlflow"
    )
    experiment: str = Field("xray", description="MLflow experiment of the training runs")
    horizon_bars: int = Field(24, ge=1, le=1000, description="Label: the forward return over this many bars")
    label_threshold: float = Field(0.0, ge=0, description="Label: up when the forward return exceeds this")
    folds: int = Field(3, ge=2, le=20, description="Purged walk-forward folds")
    embargo_bars: int = Field(24, ge=0, description="Bars embargoed after each test block")
    size: Literal["test", "demo"] = Field("demo", description="Model sizes: test (tiny) or demo")
    gate_alpha: float = Field(
        0.05, gt=0, lt=0.5, description="Gate: significance level of the paired bootstrap (DSR >= 1 - alpha)"
    )
    gate_block_bars: int = Field(24, ge=1, description="Gate: mean block length of the stationary bootstrap")
    gate_resamples: int = Field(2000, ge=99, description="Gate: bootstrap resamples")
    gate_min_bars: int = Field(240, ge=3, description="Gate: fewest paired out-of-sample bars")
    min_trades_per_symbol: int = Field(
        3, ge=0, description="Gate: fewest out-of-sample trades on every symbol a model is scored on"
    )
    min_shadow_bars: int = Field(
        168, ge=3, description="Gate: shadow-book bars from which they replace the walk-forward evidence"
    )
    retrain_new_bars: int = Field(24, ge=1, description="Retrain after this many new bars per symbol")
    drift_psi: float = Field(0.2, gt=0, description="Retrain when a key feature's PSI passes this")
    decay_sharpe_drop: float = Field(
        1.0, gt=0, description="Retrain when the live Sharpe falls this far below the promised one"
    )
    decay_min_bars: int = Field(
        168, ge=2, description="Decay: fewest bars per symbol, after trained_until + horizon, to judge on"
    )


class JournalSettings(BaseSettings):
    """Where the pipelines read the runtime's order journal (`live_fills`): the runtime's own database
    setting, read here without importing the runtime."""

    model_config = SettingsConfigDict(env_prefix="XRAY_RUNTIME_", **_COMMON)

    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the runtime's journal; default SQLite $XRAY_HOME/runtime.db"
    )


class BundleSettings(BaseSettings):
    """Where the pipelines publish the promoted bundle: the runtime's own setting
    (`XRAY_RUNTIME_BUNDLE_URL`), read here without importing the runtime, so both meet at one store."""

    model_config = SettingsConfigDict(env_prefix="XRAY_RUNTIME_", **_COMMON)

    bundle_url: str | None = Field(
        None, description="Shared bundle store (xray_core.bundle_store); unset: $XRAY_HOME/bundles"
    )


def resolve_journal_url(database_url: str | None, home: Path) -> str:
    """The journal in use: XRAY_RUNTIME_DATABASE_URL, else the runtime's embedded default."""
    return database_url or f"sqlite:///{(home / 'runtime.db').resolve()}"


def resolve_tracking_uri(models_tracking_uri: str | None, home: Path) -> str:
    """The MLflow store in use: XRAY_MODELS_TRACKING_URI, else MLFLOW_TRACKING_URI, else the embedded
    default (SQLite in $XRAY_HOME/mlflow). The pipelines write there and the runtime reads from it."""
    import os

    root = (home / "mlflow").resolve()
    return models_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"


class XraySettings(BaseModel):
    """All settings together; each group reads its own environment prefix."""

    model_config = ConfigDict(frozen=True)

    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    research: ResearchSettings = Field(default_factory=ResearchSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    journal: JournalSettings = Field(default_factory=JournalSettings)


S = TypeVar("S", bound=BaseSettings)


def load(settings_cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment plus explicit overrides, turning validation errors
    into one line that names the variable and what it should be."""
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(*_describe(settings_cls, exc)) from None


def load_settings(**overrides: Any) -> XraySettings:
    return XraySettings(
        exchange=load(ExchangeSettings, **overrides.pop("exchange", {})),
        store=load(StoreSettings, **overrides.pop("store", {})),
        ingest=load(IngestSettings, **overrides.pop("ingest", {})),
        quality=load(QualitySettings, **overrides.pop("quality", {})),
        research=load(ResearchSettings, **overrides.pop("research", {})),
        models=load(ModelSettings, **overrides.pop("models", {})),
        journal=load(JournalSettings, **overrides.pop("journal", {})),
    )


def _describe(settings_cls: type[BaseSettings], exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    variable = f"{prefix}{field}".upper()
    given = first.get("input")
    shown = "(secret)" if "secret" in field or "key" in field else repr(given)
    return (
        f"setting {variable}={shown} is invalid: {first['msg']}",
        f"fix or unset {variable} (see README, 'Settings')",
    )
