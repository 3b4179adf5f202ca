"""A PPO agent (stable-baselines3) that learns to be long or flat from the trading reward itself.

Why an agent next to two classifiers: a classifier is trained on P(up) and leaves trading to a threshold,
so it pays no attention to fees or to how long a move lasts. The agent is trained on the equity of the
backtest engine's own fills (`env.TradingEnv`), fee and slippage included, so it learns when a move is
worth a round trip.

Training uses the frame's features (standardised on the training rows), `open` and `close`; `label` and
`weight` play no part (the reward is the label). Episodes are cut from `symbol_runs` (one symbol's
unbroken history), further cut where a feature is NaN, so an episode never spans a gap or a warm-up.
PPO sees the rewards divided by a running scale (`VecNormalize`, rewards only): the env's reward is the
exact log change of equity, ~1e-2 an hour, far below a fresh value network's errors, and on that scale
PPO learnt policies backwards from the value noise in our tests.

`predict_proba` is the policy's probability of action 1 (long). That probability depends on the
position held, which is part of the observation, so each symbol's rows are run through the policy in
time order: flat at the start of each unbroken run, then holding what the model strategy holds after
the previous row: long when P(long) > `long_above`, the model strategy's entry threshold (0.55), not the
policy's argmax at 0.5 — the path the agent is evaluated and traded on is the strategy's. A row with
a NaN feature gives 0.5 and resets the position to flat, as the model strategy is flat there. Both
possible observations of a row (flat, long) are evaluated in two batched passes; only the cheap walk
over positions is sequential.

Saved as the policy network's `state_dict` plus `model.json` (standardiser, net sizes): the PPO object,
its rollout buffer and optimizer are training state only, and stable-baselines3's own zip format
pickles its learning-rate schedule (a closure), which a fresh process should not have to unpickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from torch import nn

from xray_core import progress
from xray_core.backtest import BacktestConfig
from xray_core.errors import DataError
from xray_core.learning.models.base import (
    SignalModel,
    Standardiser,
    check_float,
    check_int,
    feature_matrix,
    require_columns,
    seed_all,
    symbol_runs,
    torch_threads,
)
from xray_core.learning.models.env import Segment, TradingEnv

WEIGHTS_FILE = "policy.pt"


@dataclass(frozen=True)
class RlConfig:
    """Hyper-parameters; the defaults are the quick test settings (see `DEMO`)."""

    total_timesteps: int = 2_000
    episode_len: int = 128  # steps (bars) per episode
    n_steps: int = 256  # rollout length per update
    batch_size: int = 64
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.9  # an hourly reward horizon of ~10 bars: a position's payoff is near-term
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.01
    hidden: int = 32  # units in each of the two hidden layers (policy and value nets)
    # Costs and entry threshold: those it is judged and traded with (the model assets pass the research
    # costs and the model strategy's long_above; these defaults are theirs).
    fee: float = 0.001  # per fill, as BacktestConfig
    slippage: float = 0.0005
    long_above: float = 0.55
    seed: int = 0
    threads: int = 1  # torch intra-op threads while fitting and predicting (see base.torch_threads)

    def __post_init__(self) -> None:
        check_int("total_timesteps", self.total_timesteps, 1)
        check_int("episode_len", self.episode_len, 2)
        check_int("n_steps", self.n_steps, 2)
        check_int("batch_size", self.batch_size, 2)
        check_int("n_epochs", self.n_epochs, 1, 100)
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, open_low=True)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_float("clip_range", self.clip_range, 0.0, 1.0, open_low=True)
        check_float("ent_coef", self.ent_coef, 0.0, 1.0)
        check_int("hidden", self.hidden, 1, 1024)
        check_int("seed", self.seed, 0)
        check_int("threads", self.threads, 1, 256)
        check_float("long_above", self.long_above, 0.5, 0.99)
        BacktestConfig(fee=self.fee, slippage=self.slippage)  # the engine's own bounds and messages

    @property
    def backtest(self) -> BacktestConfig:
        return BacktestConfig(fee=self.fee, slippage=self.slippage)


DEMO: dict[str, Any] = {
    "total_timesteps": 40_000,  # ~20 s per fit on one core: walk-forward fits it once per fold
    "episode_len": 256,
    "n_steps": 1024,
    "batch_size": 128,
    "n_epochs": 5,
    "hidden": 64,
}


def with_prices(frame: pl.DataFrame, candles: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """`frame` with each row's bar `open` and `close` joined from `candles` (symbol -> candle frame).

    The training frame carries scale-free features only; the agent also needs the prices its fills
    happen at. Its row order is kept; a row whose bar is missing from the candles is an error."""
    require_columns(frame, ["timestamp", "symbol"], "with_prices")
    dtype = frame["timestamp"].dtype
    prices = pl.concat(
        [
            c.select(pl.col("timestamp").cast(dtype), pl.lit(symbol).alias("symbol"), "open", "close")
            for symbol, c in candles.items()
        ]
    ).with_columns(pl.col("symbol").cast(frame["symbol"].dtype), pl.col("open", "close").cast(pl.Float64))
    joined = frame.drop("open", "close", strict=False).join(
        prices, on=["timestamp", "symbol"], how="left", maintain_order="left"
    )
    if joined.height != frame.height:
        raise DataError("with_prices: the candles have duplicate bars", "de-duplicate them first")
    if joined["open"].null_count() or joined["close"].null_count():
        raise DataError("with_prices: some rows have no candle", "pass the candles the frame was built from")
    return joined


def _constant_lr(_progress: float) -> float:
    """The learning-rate schedule a loaded policy is built with; it is never trained again."""
    return 0.0


def _policy_kwargs(hidden: int) -> dict[str, Any]:
    return {"net_arch": [hidden, hidden], "activation_fn": nn.Tanh}


class ReportSteps(BaseCallback):
    """Environment steps so far, after each rollout (xray_core.progress); it draws nothing at random."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total

    def _on_training_start(self) -> None:
        progress.report("step", "rl: PPO steps", 0, self.total)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        # PPO collects whole rollouts, so the last one may pass the budget: the count stops at it.
        progress.report("step", "rl: PPO steps", min(self.num_timesteps, self.total), self.total)


class RlAgent(SignalModel):
    """PPO on `TradingEnv`; P(up) is the policy's P(long) on its own position path."""

    kind: ClassVar[str] = "rl"
    flavor = "sb3"
    Config = RlConfig
    library = ("torch", "stable-baselines3", "gymnasium")
    config: RlConfig

    def __init__(self, features: list[str] | None = None, **params: Any) -> None:
        super().__init__(features, **params)
        self.policy: ActorCriticPolicy | None = None
        self.standardiser: Standardiser | None = None

    def segments(self, frame: pl.DataFrame) -> list[Segment]:
        """The frame cut into unbroken per-symbol stretches with every feature defined."""
        assert self.standardiser is not None
        require_columns(frame, ["open", "close"], "rl fit (the agent trades the bars' open and close)")
        values = self.standardiser.transform(feature_matrix(frame, self.feature_names, "rl fit"))
        opens = frame["open"].cast(pl.Float64).to_numpy()
        closes = frame["close"].cast(pl.Float64).to_numpy()
        symbols = frame["symbol"].cast(pl.String).to_numpy() if "symbol" in frame.columns else None
        out: list[Segment] = []
        for run in symbol_runs(frame, "rl fit"):
            finite = np.isfinite(values[run]).all(axis=1)
            cuts = np.flatnonzero(np.diff(finite.astype(np.int8))) + 1
            for part, ok in zip(np.split(run, cuts), np.split(finite, cuts), strict=True):
                if ok[0] and len(part) > 1:
                    symbol = str(symbols[part[0]]) if symbols is not None else ""
                    out.append(Segment(values[part], opens[part], closes[part], symbol))
        return out

    def fit(self, frame: pl.DataFrame) -> Self:
        c = self.config
        raw = feature_matrix(frame, self.feature_names, "rl fit")
        if not np.isfinite(raw).all(axis=1).any():
            raise DataError("rl fit: no row has every feature", "use more bars than the indicators' warm-up")
        self.standardiser = Standardiser.fit(raw)
        segments = self.segments(frame)
        env = TradingEnv(segments, c.episode_len, c.backtest)  # refuses too little data
        seed_all(c.seed)
        plain = DummyVecEnv([lambda: env])  # in-process, never pickled; PPO(seed=) seeds its resets
        # Rewards scaled by the running std of the discounted return, for learning only (see above).
        venv = VecNormalize(plain, norm_obs=False, norm_reward=True, gamma=c.gamma)
        agent = PPO(
            "MlpPolicy",
            venv,
            learning_rate=c.learning_rate,
            n_steps=c.n_steps,
            batch_size=c.batch_size,
            n_epochs=c.n_epochs,
            gamma=c.gamma,
            gae_lambda=c.gae_lambda,
            clip_range=c.clip_range,
            ent_coef=c.ent_coef,
            policy_kwargs=_policy_kwargs(c.hidden),
            seed=c.seed,
            device="cpu",
            verbose=0,
        )
        steps = ReportSteps(c.total_timesteps) if progress.active() else None
        with torch_threads(c.threads):
            agent.learn(total_timesteps=c.total_timesteps, callback=steps)
        self.policy = agent.policy
        self.policy.set_training_mode(False)
        self.fit_info = {
            "segments": len(env.segments),
            "bars": int(sum(len(s) for s in env.segments)),
            "timesteps": int(agent.num_timesteps),
        }
        self._fitted = True
        return self

    @property
    def history_bars(self) -> int:
        """One row suffices, but the position path starts flat at a symbol's first row: pass the
        agent as many recent bars as its episodes were long, so the held position has settled."""
        return self.config.episode_len

    def _new_policy(self) -> ActorCriticPolicy:
        n = len(self.feature_names) + 1
        return ActorCriticPolicy(
            spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float32),
            spaces.Discrete(2),
            _constant_lr,
            **_policy_kwargs(self.config.hidden),
        )

    def long_probability(self, observations: np.ndarray) -> np.ndarray:
        """The policy's P(action = long) for each observation row (features + position)."""
        assert self.policy is not None
        with torch.inference_mode(), torch_threads(self.config.threads):
            obs = torch.from_numpy(observations.astype(np.float32))
            dist = self.policy.get_distribution(obs).distribution
            # A Discrete(2) action space: one categorical over {flat, long}.
            assert isinstance(dist, torch.distributions.Categorical)
            return dist.probs[:, 1].double().numpy()

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        self._check_fitted()
        assert self.standardiser is not None
        values = self.standardiser.transform(feature_matrix(frame, self.feature_names, "rl predict"))
        finite = np.isfinite(values).all(axis=1)
        p_flat = np.full(frame.height, 0.5)
        p_long = np.full(frame.height, 0.5)
        if finite.any():
            rows = values[finite]
            p_flat[finite] = self.long_probability(np.column_stack([rows, np.zeros(len(rows))]))
            p_long[finite] = self.long_probability(np.column_stack([rows, np.ones(len(rows))]))
        out = np.full(frame.height, 0.5)
        for run in symbol_runs(frame, "rl predict"):
            held = False
            for row in run.tolist():
                if not finite[row]:
                    held = False
                    continue
                p = p_long[row] if held else p_flat[row]
                out[row] = p
                held = p > self.config.long_above
        return out

    def _state(self, directory: Path) -> dict[str, Any]:
        assert self.policy is not None and self.standardiser is not None
        torch.save(self.policy.state_dict(), directory / WEIGHTS_FILE)
        return {"weights": WEIGHTS_FILE, "standardiser": self.standardiser.to_dict()}

    def _restore(self, directory: Path, state: dict[str, Any]) -> None:
        self.standardiser = Standardiser.from_dict(state["standardiser"])
        self.policy = self._new_policy()
        self.policy.load_state_dict(torch.load(directory / state["weights"], weights_only=True))
        self.policy.set_training_mode(False)
