"""A small LSTM that reads the last `seq_len` bars of one symbol and outputs P(up), trained with Lightning.

Why a sequence model at all: the feature row is a snapshot, and some structure (a volatility burst
fading, momentum building over a day) lives in how the features move. The LSTM sees that path.

Windows are built per symbol, in time order, from `base.symbol_runs`: a window ends at the row it
predicts and holds that row and the `seq_len - 1` bars before it of the same symbol, never crossing a
symbol boundary or a gap. A row without `seq_len` unbroken bars behind it (or with a NaN feature in its
window) gets 0.5. Windows are gathered batch by batch from one standardised matrix (`WindowData.
__getitems__`) instead of being materialised, which would cost seq_len times the frame's memory.

Training: weighted BCE (the frame's `weight`, optionally class-balanced), Adam, gradient clipping,
shuffled batches from a seeded generator, and Lightning's `deterministic=True`, so one seed gives one
model. The number of epochs is chosen on the latest `validation_fraction` of the timestamps (never
shuffled, patience `patience`), then the network is trained afresh on every window for that many epochs.
Torch runs on `threads` threads (one by default, see `base.torch_threads`). The standardisation is
fitted on the training rows and saved with the weights (a torch `state_dict`, loaded with
`weights_only=True`); loading needs torch only, not Lightning.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import pytorch_lightning as lightning
import torch
from torch import nn
from torch.utils.data import DataLoader

from xray_core import progress
from xray_core.errors import DataError
from xray_core.learning.models.base import (
    SignalModel,
    Standardiser,
    balanced_weights,
    check_float,
    check_int,
    check_trainable,
    epoch_ms,
    feature_matrix,
    labels_and_weights,
    seed_all,
    symbol_runs,
    time_split,
    torch_threads,
)

WEIGHTS_FILE = "lstm.pt"
MIN_WINDOWS = 64


@dataclass(frozen=True)
class LstmConfig:
    """Hyper-parameters; the defaults are the quick test settings (see `DEMO`)."""

    seq_len: int = 16  # bars per window, the predicted bar included
    hidden: int = 16
    layers: int = 1
    dropout: float = 0.0  # between LSTM layers (needs layers > 1)
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 2
    validation_fraction: float = 0.2  # latest share of timestamps that picks the epoch count; 0: none
    patience: int = 2  # epochs without a better validation loss before stopping
    grad_clip: float = 1.0
    balance_classes: bool = True
    seed: int = 0
    threads: int = 1  # torch intra-op threads while fitting and predicting (see base.torch_threads)

    def __post_init__(self) -> None:
        check_int("seq_len", self.seq_len, 2, 1024)
        check_int("hidden", self.hidden, 1, 1024)
        check_int("layers", self.layers, 1, 8)
        check_float("dropout", self.dropout, 0.0, 0.9)
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, open_low=True)
        check_float("weight_decay", self.weight_decay, 0.0, 1.0)
        check_int("batch_size", self.batch_size, 1)
        check_int("max_epochs", self.max_epochs, 1, 1000)
        if self.validation_fraction != 0:
            check_float("validation_fraction", self.validation_fraction, 0.05, 0.5)
        check_int("patience", self.patience, 1)
        check_float("grad_clip", self.grad_clip, 0.0, 1e6, open_low=True)
        if not isinstance(self.balance_classes, bool):
            check_int("balance_classes", self.balance_classes, 0, 1)
        check_int("seed", self.seed, 0)
        check_int("threads", self.threads, 1, 256)


DEMO: dict[str, Any] = {
    "seq_len": 32,
    "hidden": 32,
    "layers": 1,
    "batch_size": 256,
    "max_epochs": 10,
    "patience": 3,
    "learning_rate": 2e-3,
    "weight_decay": 1e-5,
}


# ---- windows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Windows:
    """Every full window of a frame: `values` holds the features in symbol-run order, window k covers
    values[ends[k] - seq_len + 1 : ends[k] + 1] and predicts frame row `rows[k]`."""

    values: np.ndarray  # (rows, features), in run order
    ends: np.ndarray  # int64 positions in `values`
    rows: np.ndarray  # int64 frame rows, one per window
    seq_len: int

    def gather(self, index: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The windows `index` as an array (windows, seq_len, features)."""
        ends = self.ends[index]
        return self.values[ends[:, None] + np.arange(-self.seq_len + 1, 1)]


def build_windows(frame: pl.DataFrame, values: np.ndarray, seq_len: int, what: str) -> Windows:
    """The windows of `frame` over `values` (its feature rows, already scaled): one per row that has
    `seq_len` unbroken bars of its own symbol behind it, none with a NaN feature."""
    runs = symbol_runs(frame, what)
    order = np.concatenate(runs) if runs else np.empty(0, dtype=np.int64)
    ordered = values[order]
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(ordered).all(axis=1))])
    ends: list[np.ndarray] = []
    start = 0
    for run in runs:
        candidates = np.arange(start + seq_len - 1, start + len(run))
        clean = bad[candidates + 1] - bad[candidates + 1 - seq_len] == 0
        ends.append(candidates[clean])
        start += len(run)
    end = np.concatenate(ends) if ends else np.empty(0, dtype=np.int64)
    return Windows(np.nan_to_num(ordered), end.astype(np.int64), order[end].astype(np.int64), seq_len)


class WindowData(torch.utils.data.Dataset):
    """Windows (a subset `pick` of `windows`) with their labels and weights; a batch is gathered in one
    indexing operation."""

    def __init__(self, windows: Windows, labels: np.ndarray, weights: np.ndarray, pick: np.ndarray) -> None:
        self.values = torch.from_numpy(windows.values.astype(np.float32))
        self.ends = torch.from_numpy(windows.ends[pick])
        self.offsets = torch.arange(-windows.seq_len + 1, 1)
        self.labels = torch.from_numpy(labels[pick].astype(np.float32))
        self.weights = torch.from_numpy(weights[pick].astype(np.float32))

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    def __getitems__(self, index: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k = torch.as_tensor(index, dtype=torch.int64)
        return self.values[self.ends[k][:, None] + self.offsets], self.labels[k], self.weights[k]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y, w = self.__getitems__([index])
        return x[0], y[0], w[0]


def _as_batch(batch: Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
    """The collate function: `__getitems__` already returns a batch (x, y, w)."""
    return batch


# ---- network ----------------------------------------------------------------------------------------


class LstmNet(nn.Module):
    """LSTM over the window, a linear head on the last step's hidden state: the logit of P(up)."""

    def __init__(self, n_features: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            n_features, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1, :]).squeeze(-1)


class LstmTask(lightning.LightningModule):
    """The training loop's pieces: weighted BCE on the logits, Adam."""

    def __init__(self, net: LstmNet, learning_rate: float, weight_decay: float) -> None:
        super().__init__()
        self.net = net
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x, y, w = batch
        losses = nn.functional.binary_cross_entropy_with_logits(self.net(x), y, reduction="none")
        loss = (losses * w).sum() / w.sum().clamp_min(1e-12)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=int(y.shape[0]))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._valid_sums = torch.zeros(2, dtype=torch.float64)

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        x, y, w = batch
        losses = nn.functional.binary_cross_entropy_with_logits(self.net(x), y, reduction="none")
        self._valid_sums += torch.stack([(losses * w).sum(), w.sum()]).double()

    def on_validation_epoch_end(self) -> None:
        """The epoch's weighted loss over all validation windows (not a mean of batch means)."""
        loss, weight = self._valid_sums.tolist()
        self.log("valid_loss", loss / max(weight, 1e-12))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)


class ReportEpochs(lightning.Callback):
    """Finished epochs (xray_core.progress), in place of Lightning's own bar; it draws nothing at random."""

    def __init__(self, label: str, epochs: int) -> None:
        self.label, self.epochs = label, epochs

    def on_train_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        progress.report("epoch", self.label, 0, self.epochs)

    def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        progress.report("epoch", self.label, trainer.current_epoch + 1, self.epochs)


class KeepBest(lightning.Callback):
    """Remembers the epoch with the lowest validation loss and stops `patience` epochs after it."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_epoch = -1
        self.best_loss = math.inf

    def on_validation_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        loss = float(trainer.callback_metrics["valid_loss"])
        if loss < self.best_loss:
            self.best_epoch, self.best_loss = trainer.current_epoch, loss
        elif trainer.current_epoch - self.best_epoch >= self.patience:
            trainer.should_stop = True


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's banner ("GPU available: ..."), tips and the few-workers warning are noise for a
    CPU model trained in-process; errors and other warnings still come through."""
    loggers = [
        logging.getLogger(name) for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")
    ]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*LightningModule.*has parameters that were not used.*")
        warnings.filterwarnings("ignore", message=r".*litlogger.*|.*LitLogger.*")
        warnings.filterwarnings("ignore", message=r".*`validation_step` but have no `val_dataloader`.*")
        # Lightning's result collection still builds torch's deprecated LeafSpec (torch >= 2.9).
        warnings.filterwarnings(
            "ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning
        )
        try:
            yield
        finally:
            for log, level in zip(loggers, levels, strict=True):
                log.setLevel(level)


# ---- the model --------------------------------------------------------------------------------------


class LstmModel(SignalModel):
    """P(up) from the last `seq_len` bars of the row's own symbol."""

    kind: ClassVar[str] = "lstm"
    flavor = "lightning"
    Config = LstmConfig
    library = ("torch", "pytorch-lightning")
    config: LstmConfig

    def __init__(self, features: list[str] | None = None, **params: Any) -> None:
        super().__init__(features, **params)
        self.net: LstmNet | None = None
        self.standardiser: Standardiser | None = None

    @property
    def history_bars(self) -> int:
        return self.config.seq_len

    def _new_net(self) -> LstmNet:
        c = self.config
        return LstmNet(len(self.feature_names), c.hidden, c.layers, c.dropout)

    def windows(self, frame: pl.DataFrame, what: str = "lstm") -> Windows:
        """The frame's windows over its standardised features (the model must be fitted)."""
        assert self.standardiser is not None
        values = self.standardiser.transform(feature_matrix(frame, self.feature_names, what))
        return build_windows(frame, values, self.config.seq_len, what)

    def fit(self, frame: pl.DataFrame) -> Self:
        """Pick the epoch count on the latest `validation_fraction` of the timestamps (training on the
        earlier windows), then train afresh on every window for that many epochs, as `GbmModel` does
        with its tree count: the most recent bars matter most in a drifting market."""
        c = self.config
        raw = feature_matrix(frame, self.feature_names, "lstm fit")
        y, w = labels_and_weights(frame, "lstm fit")
        check_trainable(y, int(np.isfinite(raw).all(axis=1).sum()), MIN_WINDOWS, "lstm fit")
        self.standardiser = Standardiser.fit(raw)
        windows = self.windows(frame, "lstm fit")
        labels = y[windows.rows]
        check_trainable(labels, len(windows.rows), MIN_WINDOWS, f"lstm fit (windows of {c.seq_len} bars)")
        weights = balanced_weights(labels, w[windows.rows], bool(c.balance_classes))
        everything = np.arange(len(windows.rows))
        epochs, info = c.max_epochs, {}
        if c.validation_fraction > 0:
            train, valid = time_split(epoch_ms(frame, "lstm fit")[windows.rows], c.validation_fraction)
            if len(np.unique(labels[train])) < 2 or not valid.any():
                raise DataError("lstm fit: the training slice holds one class only", "use a longer period")
            keep = KeepBest(c.patience)
            self._train(
                WindowData(windows, labels, weights, everything[train]),
                WindowData(windows, labels, weights, everything[valid]),
                c.max_epochs,
                keep,
            )
            epochs = keep.best_epoch + 1
            info = {"valid_loss": keep.best_loss, "valid_windows": int(valid.sum())}
        self.net, trainer = self._train(WindowData(windows, labels, weights, everything), None, epochs, None)
        self.fit_info = {
            "windows": len(windows.rows),
            "epochs": epochs,
            **info,
            "train_loss": float(trainer.callback_metrics.get("train_loss", torch.tensor(np.nan))),
            "up_share": float(labels.mean()),
        }
        self._fitted = True
        return self

    def _train(
        self, train: WindowData, valid: WindowData | None, epochs: int, keep: KeepBest | None
    ) -> tuple[LstmNet, lightning.Trainer]:
        """A freshly initialised network (same seed, so the same start) trained for up to `epochs`."""
        c = self.config
        seed_all(c.seed)
        net = self._new_net()
        loader = DataLoader(
            train,
            batch_size=c.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(c.seed),
            collate_fn=_as_batch,
            num_workers=0,
        )
        valid_loader = None
        if valid is not None:
            valid_loader = DataLoader(valid, batch_size=4096, collate_fn=_as_batch, num_workers=0)
        deterministic = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        callbacks: list[lightning.Callback] = [keep] if keep is not None else []
        if progress.active():
            stage = "choosing the epoch count" if valid is not None else "training"
            callbacks.append(ReportEpochs(f"lstm: {stage}", epochs))
        with quiet_lightning(), torch_threads(c.threads):
            trainer = lightning.Trainer(
                max_epochs=epochs,
                accelerator="cpu",
                devices=1,
                enable_progress_bar=False,
                enable_model_summary=False,
                logger=False,
                enable_checkpointing=False,
                deterministic=True,
                gradient_clip_val=c.grad_clip,
                num_sanity_val_steps=0,
                callbacks=callbacks or None,
            )
            try:
                trainer.fit(LstmTask(net, c.learning_rate, c.weight_decay), loader, valid_loader)
            finally:  # `deterministic=True` switches torch's global flag on; give the caller theirs back
                torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        net.eval()
        return net, trainer

    def predict_proba(self, frame: pl.DataFrame, batch_size: int = 4096) -> np.ndarray:
        self._check_fitted()
        assert self.net is not None
        windows = self.windows(frame, "lstm predict")
        out = np.full(frame.height, 0.5)
        self.net.eval()
        with torch.inference_mode(), torch_threads(self.config.threads):
            for start in range(0, len(windows.rows), batch_size):
                part = slice(start, start + batch_size)
                logits = self.net(torch.from_numpy(windows.gather(part)))
                out[windows.rows[part]] = torch.sigmoid(logits).double().numpy()
        return out

    def _state(self, directory: Path) -> dict[str, Any]:
        assert self.net is not None and self.standardiser is not None
        torch.save(self.net.state_dict(), directory / WEIGHTS_FILE)
        return {"weights": WEIGHTS_FILE, "standardiser": self.standardiser.to_dict()}

    def _restore(self, directory: Path, state: dict[str, Any]) -> None:
        self.standardiser = Standardiser.from_dict(state["standardiser"])
        self.net = self._new_net()
        self.net.load_state_dict(torch.load(directory / state["weights"], weights_only=True))
        self.net.eval()
