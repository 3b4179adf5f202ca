"""The promoted bundle: the one artefact through which the pipelines hand work to the trading runtime.

A small JSON manifest: which symbols to trade with which strategy and parameters (a `model` symbol
names its champion's kind), each risk profile's sizing per symbol, the champion models by MLflow alias
(and whether each was trained with news sentiment), why each symbol trades its strategy (`selection`:
rule vs model scores, `xray_core.research.selection`), the challengers the runtime shadow-trades (by
version: never ordered, only recorded), the research costs their shadow books are priced at, and the
data, feature and code versions it was built from. The pipelines write `bundle-<version>.json` and
then atomically replace `current.json`; the runtime polls `current.json` and swaps a new version in
between ticks. The version is a content hash, so an unchanged bundle keeps its version and triggers
nothing.

What a reader may trust is `BundleSpec` (`parse`): a schema of every field — at least one symbol, each
once, as BASE/QUOTE; each strategy known and its parameters valid for it; risk profiles of the known
profiles, for the bundle's symbols, with usable sizing; models with a name, a URI and a version;
non-blank feature, code and data versions; a known timeframe; and a version that is the hash of the
content. Anything else is
refused with one line naming the first things wrong, never a KeyError deep inside a consumer.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from xray_core.errors import DataError, XrayError
from xray_core.risk.profiles import DEFAULT_PROFILES
from xray_core.timeframes import TIMEFRAME_MS

CURRENT = "current.json"
VOLATILE = ("created_at", "dagster_run_id")  # not part of the content version


@dataclass(frozen=True)
class Bundle:
    exchange: str
    timeframe: str
    symbols: list[dict[str, Any]]  # symbol, strategy, params, group (and model: the kind, on `model`)
    risk_profiles: dict[str, dict[str, dict[str, float]]]  # profile -> symbol -> sizing
    models: dict[str, dict[str, Any]]  # kind -> name, uri, version
    feature_version: str
    code_version: str
    data_versions: dict[str, str]
    # Per symbol: why it trades its strategy (`xray_core.research.selection`: rule vs model scores).
    selection: dict[str, dict[str, Any]] = field(default_factory=dict)
    # kind -> name, uri (by version), version: models the runtime shadow-trades next to the champions
    challengers: dict[str, dict[str, Any]] = field(default_factory=dict)
    costs: dict[str, float] | None = None  # fee, slippage per fill: the research's, for the shadow books
    dagster_run_id: str = ""
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def content(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in VOLATILE}

    @property
    def version(self) -> str:
        return content_version(self.content())

    def to_json(self) -> str:
        return json.dumps({"version": self.version, **self.__dict__}, indent=2, sort_keys=True, default=str)


def content_version(content: dict[str, Any]) -> str:
    """The version of a bundle's content (every field but the volatile ones and the version)."""
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def publish(bundle: Bundle, directory: Path) -> tuple[Path, bool]:
    """Write the bundle and point `current.json` at it; returns (path, whether current changed)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bundle-{bundle.version}.json"
    current = directory / CURRENT
    if current.exists() and _intact(current, bundle.version):
        return path, False
    for target in (path, current):
        partial = target.with_name(target.name + ".partial")
        partial.write_text(bundle.to_json())
        partial.replace(target)  # readers see the old file or the new one, never a torn one
    return path, True


def is_version(data: dict[str, Any], version: str) -> bool:
    """Whether `data` (a bundle file's JSON) is bundle `version`: it says so and its content hashes
    to it (a file edited after publishing, or torn, is not)."""
    content = {k: v for k, v in data.items() if k not in (*VOLATILE, "version")}
    return data.get("version") == version and content_version(content) == version


def _intact(path: Path, version: str) -> bool:
    try:
        return is_version(read(path), version)
    except DataError:
        return False  # corrupt: publish over it


def read(path: Path) -> dict[str, Any]:
    """A bundle file as a dict, with a clear error for a missing or corrupt one."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(
            f"no promoted bundle at {path}", "run the pipeline (`make demo`) to publish one"
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"promoted bundle {path} is not valid JSON ({exc.msg})", "publish it again") from None
    if not isinstance(data, dict) or "version" not in data or "symbols" not in data:
        raise DataError(f"promoted bundle {path} lacks version or symbols", "publish it again")
    return data


# ---- the schema a reader trusts ----------------------------------------------------------------------

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SymbolName = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")]
PROFILES = tuple(profile.name for profile in DEFAULT_PROFILES)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SymbolSpec(_Strict):
    symbol: SymbolName
    strategy: Name
    params: dict[str, Any] = Field(default_factory=dict)
    group: int | str | None = None
    model: Name | None = None  # which champion (a key of `models`) a `model` symbol trades

    @model_validator(mode="after")
    def _strategy_and_params(self) -> SymbolSpec:
        from xray_core.strategies import get_strategy  # numba and the indicators: only when read

        try:
            get_strategy(self.strategy).params(self.params)
        except XrayError as exc:
            raise ValueError(exc.problem) from None
        if self.model is not None and self.strategy != "model":
            raise ValueError(f"{self.symbol} names model {self.model!r} but trades {self.strategy}")
        return self


class SelectionSpec(BaseModel):
    """Why a symbol trades its strategy: the scores it was chosen on (informative, not traded from)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    chosen: Name
    reason: str


class SizingSpec(_Strict):
    """One profile's sizing for one symbol (what `xray_core.risk.profiles.size` computed)."""

    leverage: float = Field(gt=0, allow_inf_nan=False)
    trade_percentage: float = Field(gt=0, le=1, allow_inf_nan=False)
    margin_multiplier: float = Field(gt=0, allow_inf_nan=False)


class ModelSpec(_Strict):
    name: Name
    uri: Name
    version: int = Field(ge=1)
    sentiment: bool = False  # trained with news sentiment: the runtime must feed it the same


class CostSpec(_Strict):
    """Per-fill costs as fractions of the traded value (the research's backtest costs)."""

    fee: float = Field(ge=0, le=0.05, allow_inf_nan=False)
    slippage: float = Field(ge=0, le=0.05, allow_inf_nan=False)


class BundleSpec(_Strict):
    version: Name
    exchange: Name
    timeframe: Name
    symbols: list[SymbolSpec] = Field(min_length=1)
    risk_profiles: dict[str, dict[str, SizingSpec]] = Field(default_factory=dict)
    models: dict[Name, ModelSpec] = Field(default_factory=dict)
    challengers: dict[Name, ModelSpec] = Field(default_factory=dict)  # shadow-traded, never ordered
    costs: CostSpec | None = None  # None: shadow books priced at the runtime's XRAY_RESEARCH_FEE/_SLIPPAGE
    feature_version: Name
    code_version: Name
    data_versions: dict[str, Name] = Field(default_factory=dict)  # per symbol ("" in lineage if none)
    selection: dict[str, SelectionSpec] = Field(default_factory=dict)
    dagster_run_id: str = ""
    created_at: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> BundleSpec:
        if self.timeframe not in TIMEFRAME_MS:
            raise ValueError(f"timeframe {self.timeframe!r} is not one of {', '.join(TIMEFRAME_MS)}")
        names = [entry.symbol for entry in self.symbols]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"symbols listed twice: {', '.join(twice)}")
        unknown = sorted({f"{e.symbol} ({e.model})" for e in self.symbols
                          if e.model is not None and e.model not in self.models})
        if unknown:
            raise ValueError(f"symbols trade models the bundle does not list: {', '.join(unknown)}")
        for profile, sizing in self.risk_profiles.items():
            if profile not in PROFILES:
                raise ValueError(f"risk profile {profile!r} is not one of {', '.join(PROFILES)}")
            strangers = sorted(set(sizing) - set(names))
            if strangers:
                raise ValueError(f"risk profile {profile!r} sizes symbols not in the bundle: "
                                 f"{', '.join(strangers)}")
        return self

    @property
    def symbol_names(self) -> list[str]:
        return [entry.symbol for entry in self.symbols]


def parse(data: Any, source: str = "bundle") -> BundleSpec:
    """`data` (a bundle file's JSON) checked against the schema, or a DataError naming what is wrong
    (at most three problems, values not echoed: one line for logs and /health)."""
    if not isinstance(data, dict):
        raise DataError(f"{source} is not a JSON object", "publish it again")
    try:
        spec = BundleSpec.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors()]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError(f"{source} {data.get('version', '?')!s:.40} is malformed: "
                        f"{'; '.join(problems[:3])}{more}", "publish a fixed bundle") from None
    content = {k: v for k, v in data.items() if k not in (*VOLATILE, "version")}
    expected = content_version(content)
    if spec.version != expected:
        raise DataError(f"{source} {spec.version!s:.40} does not match its content (version {expected})",
                        "publish it with xray_core.bundle.publish; do not edit a published bundle")
    return spec


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "bundle"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"
