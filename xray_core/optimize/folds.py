"""Walk-forward folds: train/test splits over bar indices whose test windows are out-of-sample.

Layout (n bars, k folds, test length T, embargo E):

* The k test windows are consecutive, never overlap, and end at the last bar, so the most recent data is
  always tested: fold i tests [n - (k - i) T, n - (k - i - 1) T). With `test_bars=None`, T is the
  largest length that fits: (n - min_train_bars - E) // k (the remainder, fewer than k bars, lengthens
  the first training window).
* Each fold's training window ends E bars before its test window starts (the purge/embargo gap): bars
  whose information could straddle the boundary — labels of a model trained on the window, an indicator
  that a fitted threshold depends on — are neither trained on nor tested. `anchored` training windows
  start at bar 0 and grow; `rolling` ones all have the first fold's length and slide.
* A fold's *history* is [train_start, test_end): the bars a strategy may see to decide positions inside
  the test window, so indicators have their warm-up. Nothing at or after `test_end` belongs to a fold.

Rule strategies have nothing to fit, so for them the training window is the warm-up history and the
parameters are chosen across all folds' test windows (see `objective`). A model strategy would be fitted
on [train_start, train_end) only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xray_core.errors import ConfigError, DataError

Scheme = Literal["anchored", "rolling"]
SCHEMES: tuple[Scheme, ...] = ("anchored", "rolling")


@dataclass(frozen=True, slots=True)
class FoldConfig:
    """How bars are split into walk-forward folds.

    n_folds: number of consecutive out-of-sample test windows.
    min_train_bars: the shortest training window (the first fold's); also the warm-up the first test
        window gets, so it should exceed the strategy's longest indicator look-back.
    embargo_bars: bars dropped between each training window's end and its test window's start.
    scheme: "anchored" (training grows from bar 0) or "rolling" (fixed-length training window).
    test_bars: length of every test window; None fits the longest that the data allows.
    min_test_bars: a test window shorter than this is refused rather than silently measured on noise.
    """

    n_folds: int = 4
    min_train_bars: int = 500
    embargo_bars: int = 0
    scheme: Scheme = "anchored"
    test_bars: int | None = None
    min_test_bars: int = 50

    def __post_init__(self) -> None:
        _positive_int("n_folds", self.n_folds, 1, "e.g. 4 consecutive test windows")
        _positive_int("min_train_bars", self.min_train_bars, 1, "bars of history before the first test")
        _positive_int("embargo_bars", self.embargo_bars, 0, "0 means the test follows training directly")
        _positive_int("min_test_bars", self.min_test_bars, 1, "e.g. 50")
        if self.test_bars is not None:
            _positive_int("test_bars", self.test_bars, self.min_test_bars,
                          "or None to fit the longest test windows the data allows")
        if self.scheme not in SCHEMES:
            raise ConfigError(f"scheme must be one of {', '.join(SCHEMES)}, got {self.scheme!r}",
                              "anchored grows the training window, rolling slides a fixed one")


@dataclass(frozen=True, slots=True)
class Fold:
    """One walk-forward split; every range is a half-open interval of bar indices."""

    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    @property
    def history(self) -> slice:
        """The bars a strategy may read to decide positions in this fold's test window."""
        return slice(self.train_start, self.test_end)

    @property
    def test(self) -> slice:
        return slice(self.test_start, self.test_end)

    @property
    def train(self) -> slice:
        return slice(self.train_start, self.train_end)


def make_folds(n_bars: int, config: FoldConfig, source: str = "bars") -> list[Fold]:
    """The folds of `n_bars` bars; a DataError naming the numbers when they do not fit."""
    k, embargo, min_train = config.n_folds, config.embargo_bars, config.min_train_bars
    test = config.test_bars
    if test is None:
        test = (n_bars - min_train - embargo) // k
    needed = min_train + embargo + k * max(test, config.min_test_bars)
    if n_bars < needed or test < config.min_test_bars:
        test_text = (f"{config.test_bars} test bars" if config.test_bars is not None
                     else f"at least {config.min_test_bars} test bars")
        raise DataError(
            f"{source}: {n_bars} bars are too few for {k} walk-forward fold(s): they need "
            f"min_train_bars ({min_train}) + embargo_bars ({embargo}) + {k} x {test_text} = {needed}",
            "use fewer folds, a shorter training window or test window, or more history",
        )
    first_test = n_bars - k * test
    train_length = first_test - embargo  # >= min_train by the check above
    folds = []
    for i in range(k):
        test_start = first_test + i * test
        train_end = test_start - embargo
        train_start = 0 if config.scheme == "anchored" else train_end - train_length
        folds.append(Fold(i, train_start, train_end, test_start, test_start + test))
    return folds


def _positive_int(name: str, value: object, low: int, hint: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}", hint)
