"""`xray status`: what X-Ray is configured to use and what it has stored."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from xray_cli.console import out, verdict_style
from xray_core.settings import load_settings


def show_status(*, as_json: bool) -> None:
    from xray_core.candles.store import CandleStore

    settings = load_settings()
    store = CandleStore(settings.store.duckdb_file)
    series = store.series()
    verdicts = store.quality(settings.exchange.id, settings.ingest.timeframe)
    report: dict[str, Any] = {
        "exchange": {
            "id": settings.exchange.id,
            "url": settings.exchange.url,
            "api_key_set": settings.exchange.api_key is not None,
            "reachable": _ping(settings),
        },
        "duckdb": str(settings.store.duckdb_file),
        "dagster_home": os.environ.get("DAGSTER_HOME"),
        "timeframe": settings.ingest.timeframe,
        "series": series.to_dicts(),
        "quality": verdicts.to_dicts(),
    }
    if as_json:
        print(json.dumps(report, default=str))
        return
    exchange = report["exchange"]
    out.print(
        f"exchange   {exchange['id']} {exchange['url'] or '(public API)'} — "
        f"{'reachable' if exchange['reachable'] is True else exchange['reachable']}"
    )
    out.print(f"duckdb     {report['duckdb']}")
    out.print(f"dagster    {report['dagster_home'] or '(DAGSTER_HOME not set)'}")
    verdict_of = {row["symbol"]: row for row in verdicts.iter_rows(named=True)}
    table = Table(title=f"stored series ({len(series)})")
    for name in ("exchange", "symbol", "timeframe", "bars", "first", "last", "verdict", "reason"):
        table.add_column(name)
    for row in series.iter_rows(named=True):
        quality = verdict_of.get(row["symbol"]) if row["timeframe"] == settings.ingest.timeframe else None
        verdict = quality["verdict"] if quality else "-"
        table.add_row(
            row["exchange"],
            row["symbol"],
            row["timeframe"],
            str(row["bars"]),
            _iso(row["first_ms"]),
            _iso(row["last_ms"]),
            f"[{verdict_style(verdict)}]{verdict}[/]",
            quality["reason"] if quality else "",
        )
    out.print(table)


def _ping(settings: Any) -> bool | str:
    """True when the exchange answers, else a short reason (status never fails on it)."""
    from xray_core.errors import XrayError
    from xray_core.exchange.client import ExchangeClient

    try:
        client = ExchangeClient(settings.exchange.model_copy(update={"max_retries": 0, "timeout_s": 3.0}))
        client.fetch_time()
        return True
    except XrayError as exc:
        return f"unreachable ({exc.problem})"


def _iso(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms is not None else "-"
