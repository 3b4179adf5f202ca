"""Settings come from the environment, are typed and frozen, and a bad value names its variable."""

import pytest
from pydantic import ValidationError

from xray_core.errors import ConfigError
from xray_core.settings import ExchangeSettings, load_settings


def test_defaults_need_no_environment(monkeypatch):
    for name in ("XRAY_EXCHANGE_ID", "XRAY_INGEST_TIMEFRAME", "XRAY_HOME"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.exchange.id == "mexc"
    assert settings.ingest.timeframe == "1h"
    assert settings.ingest.history_days == 90
    assert str(settings.store.duckdb_file).endswith(".xray/xray.duckdb")


def test_environment_overrides_each_group(monkeypatch):
    monkeypatch.setenv("XRAY_EXCHANGE_URL", "http://127.0.0.1:8765/")
    monkeypatch.setenv("XRAY_INGEST_SYMBOLS", "btc/usdt, eth/usdt")
    monkeypatch.setenv("XRAY_INGEST_HISTORY_DAYS", "30")
    monkeypatch.setenv("XRAY_QUALITY_MAX_GAP_BARS", "2")
    settings = load_settings()
    assert settings.exchange.url == "http://127.0.0.1:8765"
    assert settings.ingest.symbols == ("BTC/USDT", "ETH/USDT")
    assert settings.ingest.history_days == 30
    assert settings.quality.max_gap_bars == 2


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("XRAY_INGEST_HISTORY_DAYS", "ninety"),
        ("XRAY_INGEST_TIMEFRAME", "7m"),
        ("XRAY_EXCHANGE_URL", "ftp://x"),
    ],
)
def test_a_malformed_setting_is_one_line_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert "\n" not in message


def test_secrets_never_print(monkeypatch):
    monkeypatch.setenv("XRAY_EXCHANGE_API_SECRET", "s3cr3t-value")
    settings = load_settings()
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(settings.exchange.model_dump())
    assert settings.exchange.api_secret is not None
    assert settings.exchange.api_secret.get_secret_value() == "s3cr3t-value"


def test_settings_are_frozen():
    settings = ExchangeSettings()
    with pytest.raises(ValidationError):
        settings.id = "binance"  # type: ignore[misc]
