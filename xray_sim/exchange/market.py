"""A deterministic synthetic market: correlated, regime-switching, fat-tailed prices with volumes.

The model is defined on absolute time from a fixed genesis day, so a bar's value depends only on the
seed and its timestamp, never on when the emulator started: ingesting twice gives identical bars.

* Days: a Markov chain picks a regime per day (calm bull, normal, turbulent bear). Each symbol's daily
  log return is beta x market factor + sector factor + idiosyncratic noise, all Student-t (fat tails),
  scaled by the regime's volatility, with a weak pull back towards the symbol's reference price.
* Minutes: within a day, minute returns follow the same factor structure with an intraday volatility
  cycle and clustered volatility, then are bridged so that the day ends exactly at the daily close.
  Volume rises with the size of the move and with the regime.
* Defects (`universe.Defect`) are applied on top, deterministically, to the broken symbols.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from xray_core.candles.bars import Bars, aggregate
from xray_core.timeframes import MINUTE_MS, TIMEFRAME_MS
from xray_sim.exchange.universe import DEFAULT_UNIVERSE, Defect, MarketSpec

DAY_MS = 86_400_000
MINUTES_PER_DAY = 1440
GENESIS_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z: day 0 of the model

# Regimes: (volatility multiplier, daily drift of the market factor)
_REGIMES = np.array([[0.65, 0.0020], [1.00, 0.0000], [1.90, -0.0040]])
_TRANSITIONS = np.array([[0.970, 0.025, 0.005], [0.020, 0.960, 0.020], [0.010, 0.050, 0.940]])
_MARKET_VOL = 0.032
_SECTOR_VOL = 0.035
_SECTOR_LOADING = 0.6
_MEAN_REVERSION = 0.004
_DF = 4.0  # Student-t degrees of freedom: fat tails with finite variance


def _student_t(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(_DF, size=shape) / np.sqrt(_DF / (_DF - 2.0))


@dataclass(frozen=True, slots=True)
class _Day:
    """One day of 1m bars for every symbol: arrays of shape (symbols, 1440); NaN marks a missing bar."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class SyntheticMarket:
    """Bars and prices for `universe`, generated on demand and cached by day."""

    def __init__(self, seed: int = 7, start_ms: int | None = None, history_days: int = 120,
                 universe: tuple[MarketSpec, ...] = DEFAULT_UNIVERSE, cache_days: int = 96) -> None:
        self.seed = seed
        self.specs = universe
        self._index = {spec.symbol: i for i, spec in enumerate(universe)}
        self._by_id = {spec.market_id: spec for spec in universe}
        start_ms = start_ms if start_ms is not None else GENESIS_MS + 1000 * DAY_MS
        start_day = (start_ms - GENESIS_MS) // DAY_MS
        self.listed_from_ms = GENESIS_MS + (start_day - history_days) * DAY_MS
        # A halted listing stops a week before the emulator's first day.
        self.halted_from_ms = GENESIS_MS + (start_day - 7) * DAY_MS
        sectors = sorted({spec.sector for spec in universe})
        self._sector_of = np.array([sectors.index(spec.sector) for spec in universe])
        self._n_sectors = len(sectors)
        self._beta = np.array([spec.beta for spec in universe])
        self._vol = np.array([spec.daily_vol for spec in universe])
        systematic = (self._beta * _MARKET_VOL) ** 2 + (_SECTOR_LOADING * _SECTOR_VOL) ** 2
        self._idio_vol = np.sqrt(np.maximum(self._vol**2 - systematic, (0.3 * self._vol) ** 2))
        self._log_ref = np.log([spec.price for spec in universe])
        self._daily_regime = np.empty(0, dtype=np.int64)
        self._daily_log_open = np.empty((0, len(universe)))
        self._last_daily_return = np.zeros(len(universe))
        self._day_cache: OrderedDict[int, _Day] = OrderedDict()
        self._cache_days = cache_days

    # ---- lookups -------------------------------------------------------------------------------
    def spec(self, symbol_or_id: str) -> MarketSpec | None:
        """Find a market by unified symbol (BTC/USDT) or MEXC id (BTCUSDT)."""
        if symbol_or_id in self._index:
            return self.specs[self._index[symbol_or_id]]
        return self._by_id.get(symbol_or_id)

    def timeframes(self, symbol: str) -> tuple[str, ...]:
        return tuple(TIMEFRAME_MS)

    def is_trading(self, symbol: str, now_ms: int) -> bool:
        spec = self.spec(symbol)
        if spec is None:
            return False
        return not (Defect.HALTED in spec.defects and now_ms >= self.halted_from_ms)

    # ---- prices --------------------------------------------------------------------------------
    def price_at(self, symbol: str, t_ms: int) -> float | None:
        """The traded price at `t_ms`: linear between the open and close of the current minute.

        For a halted market it is the last price before the halt; None before the listing."""
        spec = self.spec(symbol)
        if spec is None or t_ms < self.listed_from_ms:
            return None
        if Defect.HALTED in spec.defects:
            t_ms = min(t_ms, self.halted_from_ms - 1)
        minute = t_ms - t_ms % MINUTE_MS
        day = self._day((minute - GENESIS_MS) // DAY_MS)
        i = self._index[spec.symbol]
        m = (minute - GENESIS_MS) % DAY_MS // MINUTE_MS
        o, c = day.open[i, m], day.close[i, m]
        if not np.isfinite(o) or o <= 0:  # a missing or zero bar: fall back to the day's last good close
            good = day.close[i, :m][np.isfinite(day.close[i, :m]) & (day.close[i, :m] > 0)]
            return float(good[-1]) if len(good) else spec.price
        frac = (t_ms - minute) / MINUTE_MS
        return float(_round_to(o + (c - o) * frac, spec.price_decimals))

    # ---- bars ----------------------------------------------------------------------------------
    def bars(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, now_ms: int) -> Bars:
        """Bars of `timeframe` with open time in [start_ms, end_ms) that have begun by `now_ms`.

        The bar containing `now_ms` is returned as it stands (partial), as exchanges do."""
        spec = self.spec(symbol)
        if spec is None:
            return Bars.empty()
        step = TIMEFRAME_MS[timeframe]
        start_ms = max(start_ms - start_ms % step, self.listed_from_ms)
        end_ms = min(end_ms, now_ms + 1)
        if Defect.HALTED in spec.defects:
            end_ms = min(end_ms, self.halted_from_ms)
        if end_ms <= start_ms:
            return Bars.empty()
        # Aggregating needs whole buckets of minutes; cut to [start, end) afterwards.
        minutes = self._minutes(spec, start_ms, end_ms + (-end_ms) % step, now_ms)
        bars = minutes if step == MINUTE_MS else aggregate(minutes, step)
        bars = bars.between(start_ms, end_ms)
        if Defect.DUPLICATE_BARS in spec.defects and len(bars):
            bars = _duplicate_some(bars, step)
        return bars

    def _minutes(self, spec: MarketSpec, start_ms: int, end_ms: int, now_ms: int) -> Bars:
        i = self._index[spec.symbol]
        first_day = (start_ms - GENESIS_MS) // DAY_MS
        last_day = (min(end_ms, now_ms + 1) - 1 - GENESIS_MS) // DAY_MS
        parts = []
        for d in range(first_day, last_day + 1):
            day = self._day(d)
            stamps = GENESIS_MS + d * DAY_MS + np.arange(MINUTES_PER_DAY, dtype=np.int64) * MINUTE_MS
            keep = np.isfinite(day.open[i]) & (stamps >= start_ms) & (stamps < end_ms) & (stamps <= now_ms)
            parts.append(Bars(stamps[keep], day.open[i][keep], day.high[i][keep], day.low[i][keep],
                              day.close[i][keep], day.volume[i][keep]))
        bars = Bars.concat(parts)
        if len(bars) and bars.timestamp[-1] + MINUTE_MS > now_ms:
            bars = _partial_last(bars, now_ms, spec.price_decimals)
        return bars

    # ---- generation ----------------------------------------------------------------------------
    def _day(self, d: int) -> _Day:
        cached = self._day_cache.get(d)
        if cached is not None:
            self._day_cache.move_to_end(d)
            return cached
        day = self._generate_day(d)
        self._day_cache[d] = day
        if len(self._day_cache) > self._cache_days:
            self._day_cache.popitem(last=False)
        return day

    def _extend_daily(self, last_day: int) -> None:
        """Run the daily regime chain and daily closes forward to `last_day + 1` (sequential, cheap)."""
        have = len(self._daily_regime)
        if have > last_day + 1:
            return
        n_days = last_day + 2 - have
        rng = np.random.default_rng([self.seed, 0, have])
        regimes = np.empty(n_days, dtype=np.int64)
        log_open = np.empty((n_days, len(self.specs)))
        regime = int(self._daily_regime[-1]) if have else 1
        log_p = self._daily_log_open[-1] + self._last_daily_return if have else self._log_ref.copy()
        uniforms = rng.random(n_days)
        market = _student_t(rng, (n_days,))
        sector = _student_t(rng, (n_days, self._n_sectors))
        idio = _student_t(rng, (n_days, len(self.specs)))
        for k in range(n_days):
            regime = int(np.searchsorted(np.cumsum(_TRANSITIONS[regime]), uniforms[k]))
            regime = min(regime, len(_REGIMES) - 1)
            vol_mult, drift = _REGIMES[regime]
            regimes[k] = regime
            log_open[k] = log_p
            ret = vol_mult * (self._beta * (drift / vol_mult + _MARKET_VOL * market[k])
                              + _SECTOR_LOADING * _SECTOR_VOL * sector[k, self._sector_of]
                              + self._idio_vol * idio[k])
            ret -= _MEAN_REVERSION * (log_p - self._log_ref)
            self._last_daily_return = ret
            log_p = log_p + ret
        self._daily_regime = np.concatenate([self._daily_regime, regimes])
        self._daily_log_open = np.vstack([self._daily_log_open, log_open])

    def _generate_day(self, d: int) -> _Day:
        self._extend_daily(d + 1)
        n = len(self.specs)
        rng = np.random.default_rng([self.seed, 1, d])
        vol_mult = _REGIMES[self._daily_regime[d], 0]
        log_open = self._daily_log_open[d]
        day_return = self._daily_log_open[d + 1] - log_open

        hours = np.arange(MINUTES_PER_DAY) / 60.0
        season = 0.8 + 0.35 * np.cos(2 * np.pi * (hours - 15.0) / 24.0)  # busiest in US/EU overlap
        season /= np.sqrt(np.mean(season**2))
        cluster = np.exp(0.45 * _smooth(rng.standard_normal(MINUTES_PER_DAY), 90))
        cluster /= np.sqrt(np.mean(cluster**2))
        scale = season * cluster  # common intraday volatility profile

        market = _student_t(rng, (MINUTES_PER_DAY,))
        sector = _student_t(rng, (self._n_sectors, MINUTES_PER_DAY))
        idio = _student_t(rng, (n, MINUTES_PER_DAY))
        sector_vol = _SECTOR_LOADING * _SECTOR_VOL
        load = np.sqrt(self._beta**2 * _MARKET_VOL**2 + sector_vol**2 + self._idio_vol**2)
        shocks = (self._beta[:, None] * _MARKET_VOL * market[None, :]
                  + _SECTOR_LOADING * _SECTOR_VOL * sector[self._sector_of]
                  + self._idio_vol[:, None] * idio) / load[:, None]
        minute_vol = vol_mult * self._vol / np.sqrt(MINUTES_PER_DAY)
        rets = shocks * scale[None, :] * minute_vol[:, None]
        rets += (day_return - rets.sum(axis=1))[:, None] / MINUTES_PER_DAY  # end the day on its close

        log_close = log_open[:, None] + np.cumsum(rets, axis=1)
        close = np.exp(log_close)
        open_ = np.concatenate([np.exp(log_open)[:, None], close[:, :-1]], axis=1)
        wick = np.abs(rng.standard_normal((2, n, MINUTES_PER_DAY))) * 0.6 * minute_vol[None, :, None]
        high = np.maximum(open_, close) * np.exp(wick[0] * scale)
        low = np.minimum(open_, close) * np.exp(-wick[1] * scale)

        quote_vol = np.array([spec.quote_volume_per_minute for spec in self.specs])[:, None]
        surprise = np.abs(rets) / (minute_vol[:, None] * scale[None, :])
        noise = np.exp(0.4 * rng.standard_normal((n, MINUTES_PER_DAY)) - 0.08)
        volume_quote = quote_vol * vol_mult * season[None, :] * (0.4 + 0.6 * surprise) * noise
        volume = volume_quote / close

        for i, spec in enumerate(self.specs):
            o, c = _round_to(open_[i], spec.price_decimals), _round_to(close[i], spec.price_decimals)
            open_[i], close[i] = o, c
            high[i] = np.maximum(_round_to(high[i], spec.price_decimals), np.maximum(o, c))
            low[i] = np.minimum(_round_to(low[i], spec.price_decimals), np.minimum(o, c))
            volume[i] = np.round(volume[i], spec.amount_decimals)
        day = _Day(open_, high, low, close, volume)
        self._apply_defects(d, day)
        return day

    def _apply_defects(self, d: int, day: _Day) -> None:
        rng = np.random.default_rng([self.seed, 2, d])
        for i, spec in enumerate(self.specs):
            if Defect.GAPS in spec.defects:
                # Most days lose a run of bars; some lose most of a session.
                for _ in range(rng.poisson(1.2)):
                    length = int(rng.choice([5, 30, 90, 240, 600], p=[0.35, 0.3, 0.2, 0.1, 0.05]))
                    start = int(rng.integers(0, MINUTES_PER_DAY - length))
                    for arr in (day.open, day.high, day.low, day.close, day.volume):
                        arr[i, start:start + length] = np.nan
            if Defect.ZERO_PRICES in spec.defects and rng.random() < 0.5:
                m = int(rng.integers(0, MINUTES_PER_DAY))
                if np.isfinite(day.open[i, m]):
                    day.low[i, m] = 0.0
                    day.close[i, m] = 0.0
                    day.volume[i, m] = 0.0


def _smooth(noise: np.ndarray, span: int) -> np.ndarray:
    """An AR(1)-like smooth path with unit variance: volatility that clusters over ~`span` minutes."""
    kernel = np.exp(-np.arange(4 * span) / span)
    path = np.convolve(noise, kernel, mode="full")[: len(noise)]
    return path / np.sqrt(np.sum(kernel**2))


def _round_to(values: np.ndarray | float, decimals: int) -> np.ndarray | float:
    return np.round(values, decimals)


def _partial_last(bars: Bars, now_ms: int, decimals: int) -> Bars:
    """Replace the last (still forming) minute bar by what it looks like at `now_ms`."""
    frac = (now_ms - int(bars.timestamp[-1])) / MINUTE_MS
    o, c = bars.open[-1], bars.close[-1]
    close = float(_round_to(o + (c - o) * frac, decimals))
    high = bars.high.copy()
    low = bars.low.copy()
    closes = bars.close.copy()
    volume = bars.volume.copy()
    closes[-1] = close
    high[-1] = max(o, close) if frac < 0.5 else max(high[-1], close)
    low[-1] = min(o, close) if frac < 0.5 else min(low[-1], close)
    volume[-1] = volume[-1] * frac
    return Bars(bars.timestamp, bars.open, high, low, closes, volume)


def _duplicate_some(bars: Bars, step: int) -> Bars:
    """Return about one bar in forty twice, as a buggy exchange feed does."""
    repeat = np.where((bars.timestamp // step) % 41 == 17, 2, 1)
    return bars.take(np.repeat(np.arange(len(bars)), repeat))
