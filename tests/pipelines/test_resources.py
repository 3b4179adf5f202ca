"""Resources built from the settings classes, the composed MarketScope, and the lake's table catalogue."""

import dagster as dg
import polars as pl
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap

from xray_core.errors import ConfigError
from xray_core.research.store import LakeTable
from xray_core.settings import (
    ExchangeSettings,
    IngestSettings,
    JournalSettings,
    ModelSettings,
    QualitySettings,
    ResearchSettings,
    load_settings,
)
from xray_pipelines.resources import (
    ExchangeResource,
    LakeResource,
    MarketDataResource,
    MarketScope,
    ModelsResource,
    ResearchResource,
    RuntimeJournalResource,
    build_resources,
)

MIRRORS = [
    (ExchangeResource, ExchangeSettings),
    (MarketDataResource, IngestSettings),
    (MarketDataResource, QualitySettings),
    (ResearchResource, ResearchSettings),
    (ModelsResource, ModelSettings),
    (RuntimeJournalResource, JournalSettings),
]


@pytest.mark.parametrize(("resource", "settings"), MIRRORS)
def test_every_settings_field_is_a_config_field_with_its_description(resource, settings):
    fields = resource.model_fields
    for name, field in settings.model_fields.items():
        config = fields[resource.config_names.get(name, name)]
        if name != "tracking_uri":  # resolved by build_resources, so required rather than optional
            assert config.description == field.description, name


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("XRAY_HOME", str(tmp_path))
    monkeypatch.setenv("XRAY_EXCHANGE_ID", "Binance")
    monkeypatch.setenv("XRAY_EXCHANGE_API_KEY", "not-in-config")
    monkeypatch.setenv("XRAY_INGEST_TIMEFRAME", "4h")
    monkeypatch.setenv("XRAY_INGEST_SYMBOLS", "btc/usdt,eth/usdt")
    monkeypatch.setenv("XRAY_QUALITY_MIN_BARS", "50")
    monkeypatch.setenv("XRAY_RESEARCH_NEWS_SOURCES", "http://a.example/rss,/tmp/drop.json")
    monkeypatch.setenv("XRAY_MODELS_FOLDS", "5")
    return load_settings()


def test_resources_round_trip_the_settings(settings):
    resources = build_resources(settings)
    assert resources["market_data"].ingest() == settings.ingest
    assert resources["market_data"].quality() == settings.quality
    assert resources["research"].settings() == settings.research
    models = resources["models"].settings()
    assert models.model_dump(exclude={"tracking_uri"}) == settings.models.model_dump(exclude={"tracking_uri"})
    # The runtime's journal: its embedded default under XRAY_HOME, like the runtime's own setting.
    assert resources["journal"].database_url == f"sqlite:///{(settings.store.home / 'runtime.db').resolve()}"
    exchange = resources["exchange"]
    assert exchange.exchange_id == "binance"
    assert exchange.settings().model_dump(exclude={"api_key"}) == settings.exchange.model_dump(
        exclude={"api_key"}
    )


def test_the_launchpad_shows_the_values_in_use_and_secrets_as_env_vars(settings):
    defs = dg.Definitions(resources=build_resources(settings))
    snap = {r.name: r for r in RepositorySnap.from_def(defs.get_repository_def()).resources}
    market_data = snap["market_data"].configured_values
    assert market_data["timeframe"] == '"4h"' and market_data["min_bars"] == "50"
    assert market_data["symbols"] == '["BTC/USDT", "ETH/USDT"]'
    api_key = snap["exchange"].configured_values["api_key"]
    assert getattr(api_key, "name", None) == "XRAY_EXCHANGE_API_KEY"  # never the value
    assert "not-in-config" not in repr(snap)
    # MarketScope is composed of the top-level resources: each is configured once, under its own key.
    assert {k: v.name for k, v in snap["market"].nested_resources.items()} == {
        "exchange": "exchange",
        "lake": "lake",
        "market_data": "market_data",
    }


def test_bad_launchpad_config_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="XRAY_INGEST_TIMEFRAME"):
        MarketDataResource(timeframe="7m").ingest()


def test_market_scope_reads_and_writes_each_table_in_its_own_scope(tmp_path):
    def scope(exchange: str, timeframe: str) -> MarketScope:
        return MarketScope(
            exchange=ExchangeResource(exchange_id=exchange),
            lake=LakeResource(duckdb_path=str(tmp_path / "x.duckdb")),
            market_data=MarketDataResource(timeframe=timeframe),
        )

    hourly, daily, other = scope("mexc", "1h"), scope("mexc", "1d"), scope("binance", "1h")
    assert hourly.scope(LakeTable.BACKTESTS) == {"exchange": "mexc", "timeframe": "1h"}
    assert hourly.scope(LakeTable.NEWS_SENTIMENT) == {"exchange": "mexc"}  # news has no timeframe
    hourly.write(LakeTable.RISK_PROFILES, pl.DataFrame({"symbol": ["BTC/USDT"]}))
    daily.write(LakeTable.RISK_PROFILES, pl.DataFrame({"symbol": ["ETH/USDT"]}))
    assert hourly.read(LakeTable.RISK_PROFILES)["symbol"].to_list() == ["BTC/USDT"]
    assert other.read(LakeTable.RISK_PROFILES).is_empty()
    hourly.write(LakeTable.NEWS_SENTIMENT, pl.DataFrame({"symbol": ["*"]}))
    assert daily.read(LakeTable.NEWS_SENTIMENT)["symbol"].to_list() == ["*"]


def test_every_correlation_table_is_catalogued():
    parts = ("summary", "correlation", "clusters", "betas", "lead_lag", "excluded", "skipped")
    assert {LakeTable.correlation(p) for p in parts} <= set(LakeTable)
    assert LakeTable.correlation("clusters") is LakeTable.CORRELATION_CLUSTERS
    with pytest.raises(ValueError):
        LakeTable.correlation("unlisted")
