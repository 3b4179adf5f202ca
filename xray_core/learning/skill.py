"""Skill statistics for the promotion gate: paired block bootstrap of a Sharpe difference, a deflated
Sharpe ratio, and the paired per-bar returns they read (walk-forward or shadow).

Why these. A Sharpe estimated on ~1,000 hourly bars has a standard error of about 3 (annualised), so
comparing two point estimates by a fixed margin mostly ranks noise. Two models scored on the SAME bars
share the market's moves, so their difference is far less noisy than either estimate: the bootstrap
resamples the bar indices once and applies them to both series (paired). Returns are autocorrelated
(positions last many bars), so it resamples blocks: the stationary bootstrap of Politis and Romano
(1994), block lengths geometric with mean `block`, wrapping around the end. The p-value is one-sided
(H0: the challenger's Sharpe is not above the reference's), from the resampled differences centred on
the observed one, so that it is about uniform when both have the same Sharpe.

Many trials find a good-looking Sharpe by luck. The deflated Sharpe ratio (Bailey and López de Prado,
2014) is the probability that the true Sharpe exceeds the best one expected from `trials` unskilled
tries, whose Sharpe estimates vary as the logged trials' do, correcting for skew and kurtosis.

Everything is seeded and deterministic: the same inputs give the same p-value on any machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import polars as pl

from xray_core.errors import DataError

EULER_GAMMA = 0.5772156649015329
WALK_FORWARD, SHADOW = "walk-forward", "shadow"


def sharpe(returns: np.ndarray, bars_per_year: float = 1.0) -> float:
    """mean / std (ddof 1) x sqrt(bars_per_year); 0 for a series that never moves (always flat)."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return 0.0
    std = float(np.std(r, ddof=1))
    if std <= 1e-15:
        return 0.0
    return float(np.mean(r)) / std * math.sqrt(bars_per_year)


def _row_sharpe(samples: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe of each row (0 where a row never moves)."""
    std = samples.std(axis=1, ddof=1)
    mean = samples.mean(axis=1)
    return np.divide(mean, std, out=np.zeros_like(mean), where=std > 1e-15)


def stationary_indices(n: int, block: float, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) bar indices of the stationary bootstrap: each position starts a new block with
    probability 1/block (else continues the previous one by one bar), wrapping around the end."""
    starts = rng.integers(0, n, size=(resamples, n))
    fresh = rng.random((resamples, n)) < 1.0 / max(block, 1.0)
    out = np.empty((resamples, n), dtype=np.int64)
    out[:, 0] = starts[:, 0]
    for t in range(1, n):
        out[:, t] = np.where(fresh[:, t], starts[:, t], (out[:, t - 1] + 1) % n)
    return out


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """diff: challenger's minus reference's annualised Sharpe; p_value: one-sided for diff > 0;
    ci_low / ci_high: the challenger's own Sharpe, central interval at the given level."""

    diff: float
    p_value: float
    ci_low: float
    ci_high: float


def paired_bootstrap(
    challenger: np.ndarray,
    reference: np.ndarray,
    bars_per_year: float,
    *,
    block: float,
    resamples: int,
    level: float = 0.95,
    seed: int = 0,
) -> Bootstrap:
    """Paired stationary block bootstrap of the Sharpe difference of two return series on the same bars."""
    a, b = np.asarray(challenger, np.float64), np.asarray(reference, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"paired returns must be two equal 1-d series, got {a.shape} and {b.shape}",
                        "score both models on the same bars")
    if a.size < 3:
        raise DataError(f"{a.size} paired bars cannot be bootstrapped", "evaluate on more bars")
    scale = math.sqrt(bars_per_year)
    idx = stationary_indices(a.size, block, resamples, np.random.default_rng(seed))
    sa, sb = _row_sharpe(a[idx]) * scale, _row_sharpe(b[idx]) * scale
    diff = sharpe(a, bars_per_year) - sharpe(b, bars_per_year)
    # Centred: under H0 the resampled differences scatter around the observed one as it does around 0.
    exceed = int(np.count_nonzero((sa - sb) - diff >= diff))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(sa, [tail, 1.0 - tail])
    return Bootstrap(diff, (1 + exceed) / (1 + resamples), float(low), float(high))


def expected_max_sharpe(trials: int, variance: float) -> float:
    """The largest of `trials` unskilled Sharpe estimates (per bar) one expects by luck alone."""
    if trials <= 1:
        return 0.0
    z = NormalDist()
    return math.sqrt(variance) * ((1 - EULER_GAMMA) * z.inv_cdf(1 - 1 / trials)
                                  + EULER_GAMMA * z.inv_cdf(1 - 1 / (trials * math.e)))


def deflated_sharpe(returns: np.ndarray, trials: int, trial_sharpes: Sequence[float] = (),
                    bars_per_year: float = 1.0) -> float:
    """P(true Sharpe > what `trials` unskilled tries would show at best). `trial_sharpes` (annualised,
    every logged trial's) give the spread of the trials' estimates; with fewer than two, the spread of
    an unskilled estimate on these bars (1 / (n - 1) per bar) stands in."""
    r = np.asarray(returns, np.float64)
    n = r.size
    if n < 3:
        return math.nan
    sr = sharpe(r)  # per bar
    finite = [s / math.sqrt(bars_per_year) for s in trial_sharpes if math.isfinite(s)]
    variance = float(np.var(finite, ddof=1)) if len(finite) >= 2 else 1.0 / (n - 1)
    benchmark = expected_max_sharpe(trials, max(variance, 1e-12))
    std = float(np.std(r))
    if std <= 1e-15:
        return 0.0
    z = (r - r.mean()) / std
    skew, kurt = float(np.mean(z**3)), float(np.mean(z**4))
    spread = max(1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2, 1e-12)
    return NormalDist().cdf((sr - benchmark) * math.sqrt(n - 1) / math.sqrt(spread))


@dataclass(frozen=True, slots=True)
class PairedReturns:
    """Per-bar portfolio returns on the same bars: the challenger's, the champion's (None: no champion),
    buy-and-hold's, and the challenger's at twice the costs; with its trades per symbol."""

    challenger: np.ndarray
    champion: np.ndarray | None
    buy_and_hold: np.ndarray
    challenger_2x: np.ndarray
    trades_per_symbol: Mapping[str, float]
    bars_per_year: float
    source: str = WALK_FORWARD
    champion_version: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        n = np.asarray(self.challenger).size
        others = [self.buy_and_hold, self.challenger_2x]
        others += [self.champion] if self.champion is not None else []
        if any(np.asarray(o).size != n for o in others):
            raise DataError("paired returns differ in length", "score every series on the same bars")

    def to_json(self) -> dict[str, object]:
        return {
            "challenger": [float(v) for v in self.challenger],
            "champion": None if self.champion is None else [float(v) for v in self.champion],
            "buy_and_hold": [float(v) for v in self.buy_and_hold],
            "challenger_2x": [float(v) for v in self.challenger_2x],
            "trades_per_symbol": {k: float(v) for k, v in self.trades_per_symbol.items()},
            "bars_per_year": self.bars_per_year, "source": self.source,
            "champion_version": self.champion_version, "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PairedReturns:
        def arr(key: str) -> np.ndarray:
            return np.asarray(data[key], dtype=np.float64)

        trades = data.get("trades_per_symbol") or {}
        assert isinstance(trades, dict)
        return cls(arr("challenger"), None if data.get("champion") is None else arr("champion"),
                   arr("buy_and_hold"), arr("challenger_2x"), {str(k): float(v) for k, v in trades.items()},
                   float(data["bars_per_year"]), str(data.get("source", WALK_FORWARD)),  # type: ignore[arg-type]
                   None if data.get("champion_version") is None else str(data["champion_version"]),
                   tuple(str(n) for n in data.get("notes") or ()))  # type: ignore[attr-defined]


def equity_returns(equity: np.ndarray) -> np.ndarray:
    """Per-bar returns of an equity curve that starts at 1 (the first bar's return is 0)."""
    e = np.asarray(equity, np.float64)
    return e / np.concatenate([[1.0], e[:-1]]) - 1.0


def shadow_pair(
    positions: pl.DataFrame,
    candles: Mapping[str, pl.DataFrame],
    challenger: str,
    champion: str | None,
    *,
    cost: float,
    bars_per_year: float,
) -> PairedReturns | None:
    """PairedReturns from shadow books: `positions` (timestamp, symbol, model_version, position) are what
    each version held over each bar (the runtime records one row per version, symbol and closed bar).
    A position held at bar t earns close[t+1] / close[t] - 1; each change of position pays `cost` per
    unit traded (2 x cost at twice the costs). Only the bars both versions (and the market) have count,
    per symbol, equal-weighted across symbols. None when the challenger has no shadow record."""
    needed = {"timestamp", "symbol", "model_version", "position"}
    if not needed <= set(positions.columns):
        raise DataError(f"shadow positions lack {sorted(needed - set(positions.columns))}",
                        "record timestamp, symbol, model_version and position per bar")
    versions = [challenger] + ([champion] if champion else [])
    # Join on epoch milliseconds: the journal and the lake may keep different datetime units.
    positions = positions.with_columns(pl.col("timestamp").dt.epoch("ms"))
    wide = positions.filter(pl.col("model_version").is_in(versions)).pivot(
        on="model_version", index=["timestamp", "symbol"], values="position", aggregate_function="last")
    if wide.is_empty() or any(v not in wide.columns for v in versions):
        return None
    wide = wide.drop_nulls(versions)
    parts, trades = [], {}
    for (symbol,), held in wide.partition_by("symbol", as_dict=True).items():
        if symbol not in candles:
            continue
        close = pl.col("close")
        market = candles[symbol].select(pl.col("timestamp").dt.epoch("ms"),
                                        (close.shift(-1) / close - 1.0).alias("move"))
        joined = held.join(market, on="timestamp", how="inner").drop_nulls("move").sort("timestamp")
        if joined.height < 2:
            continue
        move = joined["move"].to_numpy()
        cols = {"bh": np.ones(joined.height)} | {v: joined[v].to_numpy().astype(np.float64) for v in versions}
        frame = {"timestamp": joined["timestamp"]}
        for key, held_pos in cols.items():
            turnover = np.abs(np.diff(np.concatenate([[0.0], held_pos])))
            frame[key] = held_pos * move - cost * turnover
            if key == challenger:
                frame["x2"] = held_pos * move - 2 * cost * turnover
                trades[str(symbol)] = float(np.count_nonzero(turnover))
        parts.append(pl.DataFrame(frame))
    if not parts:
        return None
    mean = pl.concat(parts).group_by("timestamp").mean().sort("timestamp")
    return PairedReturns(
        mean[challenger].to_numpy(), mean[champion].to_numpy() if champion else None, mean["bh"].to_numpy(),
        mean["x2"].to_numpy(), trades, bars_per_year, SHADOW, champion.split("/")[-1] if champion else None,
    )
