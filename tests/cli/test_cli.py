"""The `xray` command as a user runs it: a real process against the emulator."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from xray_core.candles.schema import CANDLE_SCHEMA

XRAY = str(Path(sys.executable).with_name("xray"))


@pytest.fixture
def env(emulator, tmp_path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XRAY_")}
    return clean | {
        "XRAY_EXCHANGE_URL": emulator.base_url,
        "XRAY_HOME": str(tmp_path / "home"),
        "XRAY_INGEST_HISTORY_DAYS": "15",
        "XRAY_EXCHANGE_BACKOFF_S": "0.01",
        "XRAY_EXCHANGE_MAX_RETRIES": "1",
        "COLUMNS": "200",
    }


def xray(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [XRAY, *args], env=env, capture_output=True, text=True, timeout=300, cwd=cwd, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_ingest_then_export_then_status(env, tmp_path):
    result = xray(env, "ingest", "--symbols", "BTC/USDT,TGT/USDT")
    assert result.returncode == 0, result.stderr
    assert "BTC/USDT" in result.stdout and "good" in result.stdout
    assert "TGT/USDT" in result.stdout and "bad" in result.stdout

    out = tmp_path / "btc.parquet"
    exported = xray(env, "candles", "BTC/USDT", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    frame = pl.read_parquet(out)
    assert frame.schema == CANDLE_SCHEMA
    assert frame.height == 15 * 24
    assert frame["timestamp"].is_sorted()

    status = xray(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["exchange"]["reachable"] is True
    assert {s["symbol"] for s in report["series"]} == {"BTC/USDT", "TGT/USDT"}
    assert {q["symbol"]: q["verdict"] for q in report["quality"]} == {"BTC/USDT": "good", "TGT/USDT": "bad"}


@pytest.mark.parametrize(
    ("args", "extra_env", "fragments"),
    [
        (["ingest", "--symbols", "BTC/USDX"], {}, ["BTC/USDX is not listed", "did you mean BTC/USDT"]),
        (["ingest", "--timeframe", "7m"], {}, ["7m"]),
        (["ingest"], {"XRAY_EXCHANGE_ID": "mexcc"}, ["unknown exchange id 'mexcc'"]),
        (["ingest"], {"XRAY_INGEST_HISTORY_DAYS": "lots"}, ["XRAY_INGEST_HISTORY_DAYS"]),
        (["ingest"], {"XRAY_EXCHANGE_URL": "http://127.0.0.1:9"}, ["cannot reach mexc"]),
        (["candles", "ETH/USDT", "--out", "x.parquet"], {}, ["no 1h candles stored for ETH/USDT"]),
        (["candles", "ETH/USDT", "--out", "x.csv"], {}, ["must end in .parquet"]),
    ],
)
def test_user_errors_are_one_clear_line(env, tmp_path, args, extra_env, fragments):
    result = xray(env | extra_env, *args, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "x.parquet").exists()


def test_wrong_keys_are_one_clear_line(env):
    result = xray(env | {"XRAY_EXCHANGE_API_KEY": "wrong", "XRAY_EXCHANGE_API_SECRET": "wrong"}, "ingest")
    assert_one_line_error(result, "rejected the API key", "XRAY_EXCHANGE_API_KEY")


def test_help_lists_every_command():
    result = subprocess.run([XRAY, "--help"], capture_output=True, text=True, check=True)
    for command in ("exchange-sim", "ingest", "candles", "status", "demo"):
        assert command in result.stdout
