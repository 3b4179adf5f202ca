"""The promotion gate: a challenger replaces the champion only when the evidence says it has skill.

Evidence is `PairedReturns` (`xray_core.learning.skill`): per-bar returns of the challenger and of the
champion on the SAME bars — the challenger's walk-forward test folds (the champion's recipe refitted on
them), or the runtime's shadow books once they hold `min_shadow_bars` bars — next to buy-and-hold and
the challenger at twice the costs. A challenger is promoted only when all of these hold:

1. at least `min_bars` paired bars and `min_trades_per_symbol` trades on EVERY symbol it was scored on;
2. its Sharpe stays above 0 at twice the fees and slippage;
3. its Sharpe beats always-flat (0) and buy-and-hold on the same bars;
4. the paired block bootstrap of its Sharpe minus the reference's has p < `alpha`; the reference is the
   champion, or with none, the better of flat and buy-and-hold;
5. its deflated Sharpe ratio, counting every trial logged for that model name, is >= 1 - `alpha`.

A missing or failed measurement never promotes; the record always carries every reason it failed.
Demotion is the mirror image: a champion whose live record falls below the lower bound of the
confidence interval it was promoted with has lost what it promised (`decayed`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from xray_core.errors import ConfigError
from xray_core.learning.skill import PairedReturns, deflated_sharpe, paired_bootstrap, sharpe

PROMOTE, KEEP = "promote", "keep"


@dataclass(frozen=True, slots=True)
class GateConfig:
    alpha: float = 0.05  # significance level of the bootstrap test; the DSR must reach 1 - alpha
    block_bars: int = 24  # mean block length of the stationary bootstrap (one day of hourly bars)
    resamples: int = 2000
    min_trades_per_symbol: int = 3
    min_bars: int = 240  # paired bars, at least 10 blocks
    min_shadow_bars: int = 168  # a shadow record replaces the walk-forward one from this many bars
    seed: int = 20261203

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise ConfigError(f"gate alpha must be in (0, 0.5), got {self.alpha!r}",
                              "set XRAY_MODELS_GATE_ALPHA, e.g. 0.05")
        if self.block_bars < 1 or self.resamples < 99:
            raise ConfigError(f"gate block {self.block_bars} / resamples {self.resamples} too small",
                              "use a block of >= 1 bar and >= 99 resamples")


@dataclass(frozen=True, slots=True)
class GateRecord:
    """What the gate measured and decided; `as_dict` is what MLflow and `xray models list` show."""

    verdict: str
    reason: str
    p_value: float
    trials: int
    deflated_sharpe: float
    oos_sharpe: float
    oos_sharpe_ci_low: float
    oos_sharpe_ci_high: float
    reference: str
    reference_sharpe: float
    baseline_flat_sharpe: float
    bh_sharpe: float
    sharpe_at_2x_costs: float
    min_trades_per_symbol: float
    bars: int
    source: str

    @property
    def promote(self) -> bool:
        return self.verdict == PROMOTE

    def as_dict(self) -> dict[str, object]:
        # JSON has no NaN: an unmeasured value is null.
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in asdict(self).items()}


def judge(evidence: PairedReturns, trials: int, trial_sharpes: Sequence[float] = (),
          config: GateConfig = GateConfig()) -> GateRecord:
    """The gate's verdict on `evidence`; `trials`: versions ever logged for the model name (this one
    included); `trial_sharpes`: their logged out-of-sample Sharpes (the spread the DSR deflates by)."""
    per_year = evidence.bars_per_year
    ours = np.asarray(evidence.challenger, np.float64)
    bars = ours.size
    oos = sharpe(ours, per_year) if bars >= 2 and np.isfinite(ours).all() else math.nan
    bh = sharpe(evidence.buy_and_hold, per_year)
    at_2x = sharpe(evidence.challenger_2x, per_year)
    trades = min(evidence.trades_per_symbol.values(), default=0.0)
    if evidence.champion is not None:
        reference, label = np.asarray(evidence.champion, np.float64), f"champion v{evidence.champion_version}"
    elif bh > 0.0:
        reference, label = np.asarray(evidence.buy_and_hold, np.float64), "buy-and-hold"
    else:
        reference, label = np.zeros(bars), "flat"
    failed: list[str] = []
    if not math.isfinite(oos) or bars < 3:
        return _record(config, evidence, trials, f"no usable out-of-sample returns ({bars} bars)", oos=oos,
                       bh=bh, at_2x=at_2x, trades=trades, label=label)
    boot = paired_bootstrap(ours, reference, per_year, block=config.block_bars, resamples=config.resamples,
                            level=1 - config.alpha, seed=config.seed)
    dsr = deflated_sharpe(ours, max(trials, 1), trial_sharpes, per_year)
    if bars < config.min_bars:
        failed.append(f"{bars} paired bars, {config.min_bars} needed")
    if trades < config.min_trades_per_symbol:
        worst = min(evidence.trades_per_symbol, key=lambda s: evidence.trades_per_symbol[s], default="-")
        failed.append(f"{trades:.0f} trades on {worst}, {config.min_trades_per_symbol} per symbol needed")
    if not at_2x > 0.0:
        failed.append(f"Sharpe {at_2x:.2f} at 2x costs")
    if not oos > 0.0:
        failed.append(f"Sharpe {oos:.2f} does not beat flat (0)")
    if not oos > bh:
        failed.append(f"Sharpe {oos:.2f} does not beat buy-and-hold {bh:.2f}")
    if not boot.p_value < config.alpha:
        failed.append(
            f"vs {label} +{boot.diff:.2f} is not significant (p={boot.p_value:.3f} >= {config.alpha:g})"
            if boot.diff > 0 else f"no better than {label} ({boot.diff:+.2f}, p={boot.p_value:.3f})")
    if not dsr >= 1 - config.alpha:
        failed.append(f"deflated Sharpe {dsr:.3f} < {1 - config.alpha:g} over {trials} trials")
    summary = (f"Sharpe {oos:.2f} [{boot.ci_low:.2f}, {boot.ci_high:.2f}] vs {label} {boot.diff:+.2f} "
               f"(p={boot.p_value:.3f}, {trials} trials, DSR {dsr:.3f}) on {bars} {evidence.source} bars")
    reason = f"{summary}: " + ("; ".join(failed) if failed else "significant, beats flat and buy-and-hold, "
                                                               "positive at 2x costs")
    return GateRecord(KEEP if failed else PROMOTE, reason, boot.p_value, trials, dsr, oos, boot.ci_low,
                      boot.ci_high, label, sharpe(reference, per_year), 0.0, bh, at_2x, trades, bars,
                      evidence.source)


def _record(config: GateConfig, evidence: PairedReturns, trials: int, reason: str, *, oos: float, bh: float,
            at_2x: float, trades: float, label: str) -> GateRecord:
    bars = int(np.asarray(evidence.challenger).size)
    return GateRecord(KEEP, reason, math.nan, trials, math.nan, oos, math.nan, math.nan, label, math.nan,
                      0.0, bh, at_2x, trades, bars, evidence.source)


def decayed(live_sharpe: float, promised_ci_low: float) -> bool:
    """A champion has lost its promise when its live Sharpe is below the lower bound of the confidence
    interval it was promoted with (an unmeasured bound never demotes)."""
    return math.isfinite(promised_ci_low) and not live_sharpe >= promised_ci_low
