"""`TradingEnv`: a gymnasium environment that trades exactly like the backtest engine.

Why exact: an agent is judged by `run_backtest`, so it must be trained on the same fills and fees. A
reward computed with slightly different arithmetic (say, a return that ignores the fee on the buy) would
teach a policy that trades more than the backtest can afford.

Semantics (long or flat, all-in by default, as `xray_core.backtest` with `mode` long_only, leverage 1,
no stops):

* Observation at bar t: the bar's standardised feature row followed by the current position (0 flat,
  1 long), float32.
* Action at bar t's close: 0 flat, 1 long. It is the target position, filled at bar t+1's open, and
  only when it differs from the position held (the engine trades only when the target changes).
* Fills, with fee f and slippage s: closing a long receives size x open (1 - s) less the fee on that
  value; a buy commits M = size_fraction x cash and buys size = (M / (1 + f)) / (open (1 + s)). The
  operations are those of `xray_core.backtest.kernels.simulate`, in the same order, so the equities agree
  to rounding (tests/core/learning/test_models.py replays actions through both).
* Equity = cash + size x close; reward = log(equity at bar t+1's close / equity at bar t's close).
* An episode is `episode_len` steps of one segment (one symbol's unbroken history), starting at a
  random bar drawn with the env's seeded generator, uniformly over every (segment, start) pair. It ends
  as truncated (a time limit, not a terminal state), so PPO bootstraps its value. A position still open
  at the end is valued at the last close, as the backtest values it. `reset(options={"segment": k,
  "start": t})` pins the start, for replaying a fixed sequence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from xray_core.backtest import BacktestConfig
from xray_core.errors import ConfigError, DataError


@dataclass(frozen=True)
class Segment:
    """One symbol's unbroken stretch of bars: standardised features and the prices to trade at."""

    features: np.ndarray  # (bars, features) float32, finite
    open: np.ndarray  # (bars,) float64, > 0
    close: np.ndarray  # (bars,) float64, > 0
    symbol: str = ""

    def __post_init__(self) -> None:
        n = self.features.shape[0]
        if self.open.shape != (n,) or self.close.shape != (n,):
            raise DataError(
                f"segment {self.symbol}: features, open and close differ in length", "fix the frame"
            )
        prices = np.concatenate([self.open, self.close])
        if not (np.isfinite(prices) & (prices > 0)).all():
            raise DataError(f"segment {self.symbol}: a price is not positive and finite", "repair the bars")
        if not np.isfinite(self.features).all():
            raise DataError(f"segment {self.symbol}: a feature is NaN", "cut segments at missing features")

    def __len__(self) -> int:
        return int(self.features.shape[0])


class TradingEnv(gym.Env[np.ndarray, np.int64]):  # actions: Discrete(2) samples, np.int64
    """Long/flat trading over segments with the backtest engine's fills; see the module docstring."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's class attribute)

    def __init__(
        self, segments: Sequence[Segment], episode_len: int, config: BacktestConfig | None = None
    ) -> None:
        super().__init__()
        config = config or BacktestConfig()
        if config.leverage != 1.0 or config.uses_stops:
            raise ConfigError(
                "TradingEnv trades unlevered and without stops",
                "use leverage=1 and no sl_atr/tp_atr (liquidation and stops are not modelled)",
            )
        if episode_len < 1:
            raise ConfigError(
                f"episode_len must be >= 1, got {episode_len}", "use a positive number of steps"
            )
        self.segments = [s for s in segments if len(s) > episode_len]
        if not self.segments:
            longest = max((len(s) for s in segments), default=0)
            raise DataError(
                f"no segment has the {episode_len + 1} bars an episode needs (longest: {longest})",
                "use more bars per symbol or a shorter episode_len",
            )
        width = {s.features.shape[1] for s in self.segments}
        if len(width) != 1:
            raise DataError("segments have different feature counts", "build them from one feature list")
        self.n_features = width.pop()
        self.episode_len = episode_len
        self.config = config
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self.n_features + 1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        starts = np.array([len(s) - episode_len for s in self.segments], dtype=np.int64)
        self._start_cumsum = np.cumsum(starts)
        self._segment = self.segments[0]
        self._reset_book(0)

    # ---- state ----------------------------------------------------------------------------------
    def _reset_book(self, start: int) -> None:
        self._t = start
        self._end = start + self.episode_len
        self.cash = float(self.config.cash)
        self.size = 0.0
        self.side = 0
        self.equity = self.cash

    def _observation(self) -> np.ndarray:
        obs = np.empty(self.n_features + 1, dtype=np.float32)
        obs[:-1] = self._segment.features[self._t]
        obs[-1] = self.side
        return obs

    @property
    def t(self) -> int:
        """The current bar within the current segment."""
        return self._t

    # ---- gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        options = options or {}
        if "segment" in options:
            k = int(options["segment"])
            start = int(options.get("start", 0))
            if (
                not 0 <= k < len(self.segments)
                or not 0 <= start <= len(self.segments[k]) - 1 - self.episode_len
            ):
                raise ConfigError(
                    f"no episode of {self.episode_len} steps starts at segment {k}, bar {start}",
                    "pick a start that leaves episode_len bars after it",
                )
        else:
            draw = int(self.np_random.integers(int(self._start_cumsum[-1])))
            k = int(np.searchsorted(self._start_cumsum, draw, side="right"))
            start = draw - (int(self._start_cumsum[k - 1]) if k else 0)
        self._segment = self.segments[k]
        self._reset_book(start)
        return self._observation(), {"segment": k, "start": start, "symbol": self._segment.symbol}

    def step(self, action: int | np.int64) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._t >= self._end:
            raise RuntimeError("step() after the episode ended: call reset()")
        target = int(action)
        if target not in (0, 1):
            raise ValueError(f"action must be 0 (flat) or 1 (long), got {action!r}")
        i = self._t + 1
        fee = self.config.fee
        slip = self.config.slippage
        if target != self.side:
            o = float(self._segment.open[i])
            if self.side != 0:  # close the long: kernels._exit_fill
                value = self.size * (o * (1.0 - slip))
                self.cash = self.cash + (value - value * fee)
                self.side, self.size = 0, 0.0
            if target != 0 and self.cash > 0.0:  # open it: kernels.simulate's entry, leverage 1
                margin = self.config.size_fraction * self.cash
                notional = 1.0 * margin
                base = notional / (1.0 + fee)
                self.size = base / (o * (1.0 + slip))
                self.cash = self.cash - notional
                self.side = 1
        equity = self.cash + self.size * float(self._segment.close[i])
        reward = math.log(equity / self.equity)
        self.equity = equity
        self._t = i
        truncated = self._t >= self._end
        return self._observation(), reward, False, truncated, {"equity": equity}
