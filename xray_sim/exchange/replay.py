"""Replay recorded candles (Parquet files) as the emulated exchange's market.

Files
    `BASE_QUOTE-TF.parquet` is the spot market BASE/QUOTE at timeframe TF (freqtrade's naming), with
    columns timestamp (Datetime, bar open time), open, high, low, close, volume. Futures files
    `BASE_QUOTE_SETTLE-TF-futures.parquet` are replayed as the spot market BASE/QUOTE when no spot file
    exists for that pair (their price path is as good a path as any); other suffixes (`-mark`,
    `-funding_rate`, ...) are not trade candles and are skipped. When a pair has files of several
    timeframes the shortest one wins: it carries the most detail and longer timeframes are aggregated.

Time
    Timestamps are shifted (by a whole number of bars) so that the file's last bar ends at the clock
    start: the whole file is history. From there the market goes on by replaying the file's bar-to-bar
    log returns again from the start, chained on from the last close, so it never runs dry. Each
    continuation bar copies the shape of its source bar (open/high/low relative to the previous
    close) and its volume. Gaps in the file stay gaps in the history; the continuation has none.

Timeframes
    Only the file's timeframe and longer multiples of it are served; a shorter one is refused by the
    server with a MEXC-style error (`timeframes()` lists what is served).

Derived market parameters (candles do not carry them)
    * tick: the decimals the file's prices are written with (at most 12); if the prices are float
      noise, six significant digits of the median price.
    * lot: about a hundredth of the minimum order cost (`min_quote`, MEXC's quoteAmountPrecision:
      1 for USD stablecoins, 0.0001 BTC, 0.001 ETH, 0.01 BNB), at most 8 decimals.
    * half spread: a tenth of the median bar range (high - low) / close, between 0.5 and 25 bps.
    * fees: MEXC's standard spot schedule, taker 0.0005 and maker 0 (fees cannot be seen in candles).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from xray_core.candles.bars import Bars, aggregate
from xray_core.errors import DataError
from xray_core.timeframes import TIMEFRAME_MS
from xray_sim.exchange.universe import MarketSpec

# BASE_QUOTE[_SETTLE]-TF[-kind], e.g. BTC_USDT-5m or XRP_USDT_USDT-5m-futures
_FILE_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,2})-(?P<tf>[0-9]+[a-zA-Z]+)(?:-(?P<kind>[a-z_]+))?$"
)
_PRICE_COLUMNS = ("open", "high", "low", "close")
_MIN_QUOTE = {"USDT": "1", "USDC": "1", "USD": "1", "FDUSD": "1",
              "BTC": "0.0001", "ETH": "0.001", "BNB": "0.01"}
_MAX_DECIMALS = 12


@dataclass(frozen=True, slots=True)
class _Series:
    """One replayed market: shifted history plus what the continuation needs."""

    spec: MarketSpec
    timeframe: str
    step: int
    history: Bars
    history_end_ms: int  # end of the last history bar = open time of the first continuation bar
    # Continuation: element i describes source bar i+1 relative to the close of source bar i.
    rel_open: np.ndarray
    rel_high: np.ndarray
    rel_low: np.ndarray
    rel_close: np.ndarray
    volume: np.ndarray
    log_growth: np.ndarray  # log(close[i+1] / close[0]): growth after replaying i+1 source bars
    last_close: float

    def continuation(self, first: int, last: int) -> Bars:
        """Continuation bars number `first`..`last` (inclusive, 0 = first bar after the history)."""
        if last < first:
            return Bars.empty()
        k = np.arange(first, last + 1, dtype=np.int64)
        cycle, j = np.divmod(k, len(self.rel_close))
        grown = np.where(j > 0, self.log_growth[np.maximum(j - 1, 0)], 0.0)
        prev_close = self.last_close * np.exp(cycle * self.log_growth[-1] + grown)
        decimals = self.spec.price_decimals
        return Bars(
            timestamp=self.history_end_ms + k * self.step,
            open=np.round(prev_close * self.rel_open[j], decimals),
            high=np.round(prev_close * self.rel_high[j], decimals),
            low=np.round(prev_close * self.rel_low[j], decimals),
            close=np.round(prev_close * self.rel_close[j], decimals),
            volume=self.volume[j],
        )

    def base_bars(self, start_ms: int, end_ms: int, now_ms: int) -> Bars:
        """Bars of the file's timeframe with open time in [start_ms, end_ms) that have begun by now_ms."""
        end_ms = min(end_ms, now_ms + 1)
        past = self.history.between(start_ms, min(end_ms, self.history_end_ms))
        first = max(0, -(-(start_ms - self.history_end_ms) // self.step))
        last = (end_ms - 1 - self.history_end_ms) // self.step
        bars = Bars.concat([past, self.continuation(first, last)])
        if len(bars) and int(bars.timestamp[-1]) + self.step > now_ms:
            elapsed = (now_ms - int(bars.timestamp[-1])) / self.step
            bars = _partial_last(bars, elapsed, self.spec.price_decimals)
        return bars

    def price_at(self, t_ms: int) -> float | None:
        if not len(self.history) or t_ms < int(self.history.timestamp[0]):
            return None
        if t_ms >= self.history_end_ms:
            k = (t_ms - self.history_end_ms) // self.step
            bar = self.continuation(k, k)
        else:
            i = int(np.searchsorted(self.history.timestamp, t_ms, side="right")) - 1
            bar = self.history.take(slice(i, i + 1))
        opened = int(bar.timestamp[0])
        if t_ms >= opened + self.step:  # inside a gap of the history: the last trade stands
            return float(bar.close[0])
        frac = (t_ms - opened) / self.step
        return float(round(bar.open[0] + (bar.close[0] - bar.open[0]) * frac, self.spec.price_decimals))


class ReplayMarket:
    """Recorded candles replayed on the emulator's clock; same interface as SyntheticMarket."""

    def __init__(self, data_dir: Path | str, start_ms: int) -> None:
        self.data_dir = Path(data_dir)
        self._series = {s.spec.symbol: s for s in _load_all(self.data_dir, start_ms)}
        self._by_id = {s.spec.market_id: s for s in self._series.values()}
        self.specs = tuple(s.spec for s in self._series.values())
        self.listed_from_ms = min(int(s.history.timestamp[0]) for s in self._series.values())
        self.halted_from_ms: int | None = None  # recorded listings never halt

    def _get(self, symbol_or_id: str) -> _Series | None:
        return self._series.get(symbol_or_id) or self._by_id.get(symbol_or_id)

    def spec(self, symbol_or_id: str) -> MarketSpec | None:
        series = self._get(symbol_or_id)
        return series.spec if series else None

    def timeframes(self, symbol: str) -> tuple[str, ...]:
        series = self._get(symbol)
        if series is None:
            return ()
        return tuple(tf for tf, ms in TIMEFRAME_MS.items() if ms >= series.step and ms % series.step == 0)

    def is_trading(self, symbol: str, now_ms: int) -> bool:
        series = self._get(symbol)
        return series is not None and now_ms >= int(series.history.timestamp[0])

    def price_at(self, symbol: str, t_ms: int) -> float | None:
        series = self._get(symbol)
        return series.price_at(t_ms) if series else None

    def bars(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, now_ms: int) -> Bars:
        """Bars of `timeframe` opening in [start_ms, end_ms) and begun by `now_ms` (last may be partial)."""
        series = self._get(symbol)
        if series is None or timeframe not in self.timeframes(symbol):
            return Bars.empty()
        step = TIMEFRAME_MS[timeframe]
        start_ms -= start_ms % step
        if end_ms <= start_ms:
            return Bars.empty()
        # Aggregation needs whole buckets: read to the end of the bucket holding end_ms, then cut.
        base = series.base_bars(start_ms, end_ms + (-end_ms) % step, now_ms)
        bars = base if step == series.step else aggregate(base, step)
        return bars.between(start_ms, end_ms)


# ---- loading -----------------------------------------------------------------------------------


def _load_all(data_dir: Path, start_ms: int) -> list[_Series]:
    if not data_dir.is_dir():
        raise DataError(f"replay data directory {data_dir} does not exist",
                        "pass a folder of *.parquet candles")
    # Per pair, prefer spot over futures files, then the shortest timeframe.
    chosen: dict[tuple[str, str], tuple[bool, int, Path, str]] = {}
    for path in sorted(data_dir.glob("*.parquet")):
        parsed = _parse_name(path)
        if parsed is None:
            continue
        base, quote, timeframe, is_futures = parsed
        rank = (is_futures, TIMEFRAME_MS[timeframe], path, timeframe)
        if (base, quote) not in chosen or rank < chosen[(base, quote)]:
            chosen[(base, quote)] = rank
    if not chosen:
        raise DataError(f"no candle files in {data_dir}", "expected files named like BTC_USDT-5m.parquet")
    return [_load_file(path, base, quote, timeframe, start_ms)
            for (base, quote), (_, _, path, timeframe) in sorted(chosen.items())]


def _parse_name(path: Path) -> tuple[str, str, str, bool] | None:
    """(base, quote, timeframe, is_futures) from a file name; None for files that are not trade candles."""
    match = _FILE_NAME.match(path.stem)
    if match is None:
        raise DataError(f"cannot tell the market of {path.name}", "name candle files BASE_QUOTE-TF.parquet")
    kind = match["kind"]
    if kind not in (None, "futures"):
        return None
    if match["tf"] not in TIMEFRAME_MS:
        raise DataError(f"{path.name}: unsupported timeframe {match['tf']!r}",
                        f"use one of {', '.join(TIMEFRAME_MS)}")
    base, quote = match["pair"].upper().split("_")[:2]
    return base, quote, match["tf"], kind == "futures"


def _read_frame(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several unrelated types for unreadable files
        raise DataError(f"cannot read {path.name}: {exc}", "check that it is a Parquet file") from exc
    missing = [c for c in ("timestamp", "volume", *_PRICE_COLUMNS) if c not in frame.columns]
    if missing:
        raise DataError(f"{path.name} lacks column(s) {', '.join(missing)}",
                        "expected timestamp, open, high, low, close, volume")
    if not isinstance(frame.schema["timestamp"], pl.Datetime):
        raise DataError(f"{path.name}: column timestamp is {frame.schema['timestamp']}, not a Datetime")
    for column in (*_PRICE_COLUMNS, "volume"):
        if not frame.schema[column].is_numeric():
            raise DataError(f"{path.name}: column {column} is {frame.schema[column]}, not numeric")
    if frame.height < 2:
        raise DataError(f"{path.name} has {frame.height} bar(s)", "a replay needs at least two bars")
    return frame


def _load_file(path: Path, base: str, quote: str, timeframe: str, start_ms: int) -> _Series:
    frame = _read_frame(path)
    step = TIMEFRAME_MS[timeframe]
    frame = (frame.select(pl.col("timestamp").dt.epoch("ms").alias("t"),
                          *(pl.col(c).cast(pl.Float64) for c in (*_PRICE_COLUMNS, "volume")))
             .sort("t").unique("t", keep="last", maintain_order=True))
    if frame.null_count().sum_horizontal()[0]:
        raise DataError(f"{path.name} has empty cells", "drop or fill the incomplete bars")
    t = frame["t"].to_numpy().astype(np.int64)
    o, h, lo, c, v = (frame[col].to_numpy() for col in (*_PRICE_COLUMNS, "volume"))
    prices = np.concatenate([o, h, lo, c])
    if not np.all(np.isfinite(prices) & (prices > 0)) or np.any(v < 0) or not np.all(np.isfinite(v)):
        raise DataError(f"{path.name} has non-positive or non-finite prices or negative volumes")
    if np.any(t % step):
        raise DataError(f"{path.name}: bar times are not aligned to {timeframe} bars")

    spec = _derive_spec(base, quote, c, h, lo, v, step)
    shift = (start_ms - start_ms % step) - (int(t[-1]) + step)
    history = Bars(t + shift, o, h, lo, c, np.round(v, spec.amount_decimals))
    return _Series(
        spec=spec, timeframe=timeframe, step=step, history=history, history_end_ms=int(t[-1]) + step + shift,
        rel_open=o[1:] / c[:-1], rel_high=h[1:] / c[:-1], rel_low=lo[1:] / c[:-1], rel_close=c[1:] / c[:-1],
        volume=history.volume[1:], log_growth=np.log(c[1:] / c[0]), last_close=float(c[-1]),
    )


def _derive_spec(base: str, quote: str, close: np.ndarray, high: np.ndarray, low: np.ndarray,
                 volume: np.ndarray, step: int) -> MarketSpec:
    """Tick, lot, spread and liquidity of a replayed market, read off its candles (see module doc)."""
    median = float(np.median(close))
    price_decimals = _observed_decimals(np.concatenate([close, high, low]))
    if price_decimals is None:
        price_decimals = min(_MAX_DECIMALS, max(0, 5 - math.floor(math.log10(median))))
    min_quote = _MIN_QUOTE.get(quote, "1")
    amount_decimals = min(8, max(0, math.ceil(math.log10(median * 100 / float(min_quote)))))
    bars_per_day = 86_400_000 / step
    returns = np.diff(np.log(close))
    half_spread = float(np.median((high - low) / close)) * 1e4 / 10
    return MarketSpec(
        base=base, quote=quote, price=float(close[-1]),
        daily_vol=float(np.std(returns) * math.sqrt(bars_per_day)) if len(returns) else 0.0,
        beta=1.0, sector="replay", price_decimals=price_decimals, amount_decimals=amount_decimals,
        quote_volume_per_minute=float(np.median(volume * close)) * 60_000 / step,
        half_spread_bps=min(25.0, max(0.5, half_spread)), taker_fee="0.0005", maker_fee="0",
        min_quote=min_quote, full_name=base,
    )


def _observed_decimals(prices: np.ndarray) -> int | None:
    """The fewest decimals that write every price exactly (up to float noise), or None beyond 12."""
    sample = prices[:: max(1, len(prices) // 5000)]
    for decimals in range(_MAX_DECIMALS + 1):
        scaled = sample * 10.0**decimals
        # Tolerate float representation noise only: about 1e-11 relative to the scaled value.
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 + 1e-11 * np.abs(scaled)):
            return decimals
    return None


def _partial_last(bars: Bars, frac: float, decimals: int) -> Bars:
    """The last (still forming) bar as it stands after `frac` of its time: close moves from open
    towards the final close, the extremes appear in the second half, the volume accrues linearly."""
    o, c = float(bars.open[-1]), float(bars.close[-1])
    close = round(o + (c - o) * frac, decimals)
    high, low, closes, volume = bars.high.copy(), bars.low.copy(), bars.close.copy(), bars.volume.copy()
    closes[-1] = close
    high[-1] = max(o, close) if frac < 0.5 else max(high[-1], close)
    low[-1] = min(o, close) if frac < 0.5 else min(low[-1], close)
    volume[-1] = volume[-1] * frac
    return Bars(bars.timestamp, bars.open, high, low, closes, volume)
