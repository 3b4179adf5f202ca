"""Signal models: P(next move up) per row from a training frame, behind one interface.

`SignalModel` (base) is the interface; `GbmModel` (scikit-learn), `LstmModel` (Lightning) and
`RlAgent` (stable-baselines3 PPO on `TradingEnv`) implement it; `registry` builds any of them by kind
and restores any saved one. Names are resolved lazily, so importing the scikit-learn model does not load
torch, Lightning or stable-baselines3.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SignalModel": "base",
    "Standardiser": "base",
    "GbmModel": "gbm",
    "LstmModel": "lstm",
    "RlAgent": "rl",
    "TradingEnv": "env",
    "Segment": "env",
    "MODEL_KINDS": "registry",
    "DEMO_PARAMS": "registry",
    "build_model": "registry",
    "load_model": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"xray_core.learning.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
