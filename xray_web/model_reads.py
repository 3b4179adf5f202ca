"""The operator's view of the models: every registered version with its aliases, out-of-sample metrics
and the gate's record (the row `xray models list --json` prints: `xray_core.learning.registry_rows`),
joined with its shadow record from the runtime's SQL (`shadow_bars`); and the promoted bundle per
symbol with why it trades its strategy (the bundle's `selection`). Nothing here asks the exchange."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import sqlalchemy as sa

from xray_web.reads import Sources, iso

KINDS_SHOWN = ("gbm", "lstm", "rl")  # the registered names are `xray-<kind>`, as the pipelines register them


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def models(src: Sources) -> list[dict[str, Any]]:
    """Every registered version of every X-Ray model (`version_row`), with `shadow`: its record in the
    runtime's shadow books (None when the runtime never shadow-traded it)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from xray_core.learning.registry_rows import version_row

    records = shadow(src)
    client = MlflowClient(tracking_uri=src.tracking_uri, registry_uri=src.tracking_uri)
    rows: list[dict[str, Any]] = []
    for name in sorted(f"xray-{kind}" for kind in KINDS_SHOWN):
        try:  # the same calls as xray_pipelines.mlops.registry.list_versions
            versions = client.search_model_versions(f"name = '{name}'")
            aliases = client.get_registered_model(name).aliases  # search results leave aliases out
        except MlflowException:
            continue
        for version in sorted(versions, key=lambda v: int(v.version)):
            metrics = dict(client.get_run(version.run_id).data.metrics) if version.run_id else {}
            row = version_row(name, version.version, version.tags, aliases, metrics)
            row["metrics"] = {k: _finite(v) for k, v in sorted(row["metrics"].items())}
            row["gate"] = {k: _finite(v) for k, v in row["gate"].items()}
            row["shadow"] = records.get((name, row["version"]))
            rows.append(row)
    return rows


def shadow(src: Sources) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (model name, version): its shadow record (`shadow_record.model_summary`) and its books per
    symbol, read from the runtime's `shadow_bars`."""
    from xray_core.learning.shadow_record import SHADOW_SCHEMA, book_summary, model_summary
    from xray_core.timeframes import TIMEFRAME_MS
    from xray_runtime.shadow import shadow_bars_table as table

    if not sa.inspect(src.engine).has_table(table.name):
        return {}
    c = table.c
    query = sa.select(c.bar_ms.label("bar"), c.model, c.version, c.symbol, c.role, c.position, c.close,
                      c.ret, c.bundle_version)
    with src.engine.connect() as conn:
        found = [dict(row) for row in conn.execute(query).mappings()]
    if not found:
        return {}
    frame = pl.DataFrame(found, schema={**SHADOW_SCHEMA, "bar": pl.Int64()}).with_columns(
        pl.col("bar").cast(SHADOW_SCHEMA["bar"]))
    per_year = 365 * 86_400_000 / TIMEFRAME_MS.get(src.timeframe, 3_600_000)
    books: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for book in book_summary(frame).iter_rows(named=True):
        books.setdefault((book["model"], book["version"]), []).append(
            {"symbol": book["symbol"], "bars": book["bars"], "bars_long": book["bars_long"],
             "net_return": _finite(book["net_return"])})
    out = {}
    for rec in model_summary(frame, per_year).iter_rows(named=True):
        key = (rec["model"], rec["version"])
        out[key] = {
            "role": rec["role"], "books": rec["books"], "bars": rec["bars"], "book_bars": rec["book_bars"],
            "bars_long": rec["bars_long"], "net_return": _finite(rec["net_return"]),
            "sharpe": _finite(rec["sharpe"]), "first_bar": _iso(rec["first_bar"]),
            "last_bar": _iso(rec["last_bar"]), "by_symbol": books.get(key, []),
        }
    return out


def _iso(value: Any) -> str | None:
    return None if value is None else iso(int(value.timestamp() * 1000))


def bundle_view(bundle: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per symbol of the promoted bundle: its strategy and parameters, the model kind and version it
    trades on (model-planned symbols), and the selection's reason with the rule's and the model's
    Sharpe on the model's walk-forward windows."""
    if not bundle:
        return []
    models_ = bundle.get("models") or {}
    selection = bundle.get("selection") or {}
    rows = []
    for entry in bundle.get("symbols", []):
        symbol, kind = entry.get("symbol"), entry.get("model")
        chosen = selection.get(symbol) or {}
        rows.append({
            "symbol": symbol, "strategy": entry.get("strategy"), "params": entry.get("params") or {},
            "group": entry.get("group"), "model": kind,
            "model_version": (models_.get(kind) or {}).get("version") if kind else None,
            "reason": chosen.get("reason"), "rule_strategy": chosen.get("rule_strategy"),
            "rule_sharpe": _finite(chosen.get("rule_sharpe")),
            "model_sharpe": _finite(chosen.get("model_sharpe")),
            "model_trades": chosen.get("model_trades"),
        })
    return rows
