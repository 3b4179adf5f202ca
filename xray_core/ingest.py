"""Incremental candle ingestion for one symbol: fetch what is new, store it, assess its quality.

Used by both the `xray ingest` command and the Dagster `candles` asset, so both behave the same:
* the first run backfills `history_days`; later runs fetch from the bar after the last stored one;
* only closed bars are stored (the bar still forming at the exchange's "now" is left for next time);
* the batch is written in one transaction, then the stored window is assessed and the verdict saved;
* a failure of one symbol is returned as a result with its error, never raised past the caller's loop;
* every request waits on the machine-wide limiter (`throttle_ingestion`): all ingestion processes of
  this machine together stay within `weight_share` of the venue's per-IP weight (the runtime
  trades from the same IP), a 429 or 418 pauses them all for the venue's Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from xray_core.candles import schema
from xray_core.candles.quality import FeedAnomalies, QualityReport, assess
from xray_core.candles.store import CandleStore, SeriesKey, UpsertResult
from xray_core.errors import XrayError
from xray_core.exchange.client import ExchangeClient
from xray_core.exchange.venues import traits_for
from xray_core.markets import MARKET_COLUMNS, choose_markets
from xray_core.ratelimit import HostLimiter, Quota, install_host_throttle
from xray_core.settings import IngestSettings, QualitySettings
from xray_core.timeframes import timeframe_ms

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class IngestResult:
    symbol: str
    timeframe: str
    fetched: int
    written: UpsertResult | None
    feed: FeedAnomalies
    report: QualityReport | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def ingest_symbol(
    client: ExchangeClient,
    store: CandleStore,
    symbol: str,
    ingest: IngestSettings,
    quality: QualitySettings,
    now_ms: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Bring `symbol` up to date and assess it. User-fixable problems (unknown symbol, unreachable
    exchange, corrupt data) come back as `IngestResult.error`; bugs still raise."""
    throttle_ingestion(client, ingest, store.path.parent)
    timeframe = ingest.timeframe
    key = SeriesKey(client.id, symbol, timeframe)
    run_at = int(time.time() * 1000)
    try:
        now_ms = now_ms if now_ms is not None else client.fetch_time()
        step = timeframe_ms(timeframe)
        window_start = now_ms - ingest.history_days * DAY_MS
        last = store.last_timestamp_ms(key)
        start = window_start if last is None else max(last + step, window_start)
        closed_end = now_ms - now_ms % step  # bars opening before this have closed
        rows = client.fetch_ohlcv_range(symbol, timeframe, start, closed_end, on_page=on_progress)
        raw = schema.from_ohlcv(rows)
        feed = FeedAnomalies.of(raw)
        with store.session():  # one connection for the write and what follows it
            written = store.upsert(key, raw)
            stored = store.read(key, start_ms=window_start - window_start % step)
            report = assess(symbol, timeframe, stored, now_ms, quality, feed)
            store.save_checks(client.id, report, now_ms)
            store.log_ingest(key, run_at, len(rows), written, feed, None)
        return IngestResult(symbol, timeframe, len(rows), written, feed, report)
    except XrayError as exc:
        store.log_ingest(key, run_at, 0, None, FeedAnomalies(), str(exc))
        return IngestResult(symbol, timeframe, 0, None, FeedAnomalies(), None, str(exc))


def throttle_ingestion(client: ExchangeClient, ingest: IngestSettings, state_dir: Path) -> HostLimiter:
    """Put `client`'s requests behind the limiter all ingestion processes of this machine share (its
    cells in `state_dir/ratelimit/`, next to the candle store): `ingest.weight_share` of the venue's
    per-IP weight (or `weight_limit_ip`) per window. Idempotent."""
    limits = traits_for(client.id).rate_limits
    window = ingest.weight_window_s or limits.window_s
    quota = Quota.of((ingest.weight_limit_ip or limits.ip_weight) * ingest.weight_share, window)
    current = getattr(client.exchange, "xray_host_throttle", None)
    if isinstance(current, HostLimiter) and current.quotas.get("ip") == quota:
        return current
    limiter = HostLimiter(state_dir / "ratelimit" / f"{client.id}.json", {"ip": quota})
    install_host_throttle(client.exchange, limiter, limits)
    return limiter


def refresh_universe(client: ExchangeClient, store: CandleStore, ingest: IngestSettings) -> pl.DataFrame:
    """Choose the tradable markets from the exchange's listing and 24h volumes and save the choice
    (every market with kept/dropped and the reason)."""
    throttle_ingestion(client, ingest, store.path.parent)
    listed = client.load_markets(fresh=True)
    choices = choose_markets(listed, client.fetch_tickers(), ingest)
    frame = pl.DataFrame([asdict(c) for c in choices], schema=MARKET_COLUMNS)
    store.save_markets(client.id, frame, client.fetch_time())
    return frame


def refresh_verdicts(store: CandleStore, exchange: str, timeframe: str) -> pl.DataFrame:
    """Recompute and save the verdict of every kept market from the latest checks and ingestion
    errors; returns symbol, bars, verdict, reason. Downstream work reads these verdicts."""
    checks = store.checks(exchange, timeframe)
    verdicts = resolve_verdicts(
        store.markets(exchange), checks, store.last_ingest_errors(exchange, timeframe)
    )
    as_of = int(checks["assessed_at_ms"].max() or 0) if checks.height else 0  # type: ignore[arg-type]
    store.save_quality(exchange, timeframe, verdicts, as_of)
    return verdicts


def resolve_verdicts(universe: pl.DataFrame, checks: pl.DataFrame, errors: dict[str, str]) -> pl.DataFrame:
    """symbol, bars, verdict, reason for each kept market. A failed last ingestion makes a symbol
    bad even if older data passed its checks; a kept market never ingested is bad as well."""
    kept = (
        universe.filter(pl.col("kept")).select("symbol")
        if universe.height
        else pl.DataFrame(schema={"symbol": pl.String})
    )
    assessed = (
        checks.select("symbol", "bars", "verdict", "reason")
        if checks.height
        else pl.DataFrame(
            schema={"symbol": pl.String, "bars": pl.Int64, "verdict": pl.String, "reason": pl.String}
        )
    )
    joined = kept.join(assessed, on="symbol", how="left")
    error = pl.col("symbol").replace_strict(errors, default=None, return_dtype=pl.String)
    return joined.with_columns(
        pl.col("bars").fill_null(0),
        pl.when(error.is_not_null())
        .then(pl.lit("bad"))
        .otherwise(pl.col("verdict").fill_null("bad"))
        .alias("verdict"),
        pl.when(error.is_not_null())
        .then(pl.lit("last ingestion failed: ") + error)
        .otherwise(pl.col("reason").fill_null("no candles ingested yet"))
        .alias("reason"),
    ).sort("symbol")
