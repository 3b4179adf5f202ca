"""Seeded fault injection, for testing how a trading runtime copes with a misbehaving exchange.

Spec grammar (`EmulatorConfig.faults`, or POST /_emulator/faults at runtime)::

    spec    := part (";" part)*            blanks around parts are ignored, so are empty parts
    part    := "seed=" INT | rule
    rule    := KIND (":" NAME "=" VALUE)*

Options every rule takes:

    p=FLOAT        chance that the rule fires on a request it matches, 0..1 (default 1)
    path=GLOB      fnmatch glob on the URL path, e.g. /api/v3/order or /api/v3/ticker/* (default: any)
    method=M|M     HTTP method(s), separated by | or , (default: any)
    count=INT      fire at most this many times (default: no limit)

Kinds and their own options:

    latency       ms=FLOAT (required)      wait this long before processing the request
    timeout       delay_s=FLOAT            wait before answering; without delay_s, never answer
                  when=after|before        after (default): the request IS processed (an order is
                                           accepted) and the answer comes late or never; before:
                                           wait first, then process (the client has given up)
    error5xx      status=INT (default 503) answer this 5xx status instead of processing
    burst429      n=INT (default 10)       answer 429 to this request and the next n-1 it matches
    drop          when=before|after        close the connection without any response, before
                                           (default) or after processing ("after": the order
                                           exists but the client never learns it)
    partial_fill  ratio=FLOAT (default .5) only for POST /api/v3/order: the order's first fill takes
                                           this share; the rest fills on a later bar
    overtake      delay_s=FLOAT (default 1) close the connection at once without an answer, then
                                           process the request delay_s later: it acts after the
                                           client has asked and been told "no such order" — unless
                                           its signed timestamp is past its recvWindow by then
    ban418        retry_after_s=INT (60)   answer HTTP 418 (this IP address is banned) with
                                           Retry-After instead of processing

Example: ``latency:p=0.2:ms=150;timeout:p=0.05:path=/api/v3/order:method=POST:when=after:delay_s=3;
error5xx:p=0.02:status=503;burst429:p=0.01:n=20;drop:p=0.01:when=after;partial_fill:p=0.5:ratio=0.3;seed=42``

Draws come from one random generator seeded by the spec's `seed` (else the emulator's seed), one
draw per rule per request it matches, in rule order: the same requests in the same order meet the
same faults. Admin endpoints (/_emulator/...) are never faulted. A malformed spec raises ConfigError
naming the offending part.
"""

from __future__ import annotations

import fnmatch
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from xray_core.errors import ConfigError

ORDER_PATH = "/api/v3/order"


class FaultKind(StrEnum):
    LATENCY = "latency"
    TIMEOUT = "timeout"
    ERROR5XX = "error5xx"
    BURST429 = "burst429"
    DROP = "drop"
    PARTIAL_FILL = "partial_fill"
    OVERTAKE = "overtake"
    BAN418 = "ban418"


class When(StrEnum):
    BEFORE = "before"
    AFTER = "after"


_COMMON = {"p", "path", "method", "count"}
_OPTIONS: dict[FaultKind, set[str]] = {
    FaultKind.LATENCY: {"ms"},
    FaultKind.TIMEOUT: {"delay_s", "when"},
    FaultKind.ERROR5XX: {"status"},
    FaultKind.BURST429: {"n"},
    FaultKind.DROP: {"when"},
    FaultKind.PARTIAL_FILL: {"ratio"},
    FaultKind.OVERTAKE: {"delay_s"},
    FaultKind.BAN418: {"retry_after_s"},
}
OVERTAKE_DELAY_S = 1.0


@dataclass(frozen=True, slots=True)
class FaultRule:
    kind: FaultKind
    probability: float = 1.0
    path: str | None = None
    methods: frozenset[str] | None = None
    count: int | None = None
    latency_ms: float = 0.0
    delay_s: float | None = None  # timeout: None = never answer
    when: When = When.AFTER
    status: int = 503
    n: int = 10
    ratio: Decimal = Decimal("0.5")
    retry_after_s: int = 60

    def matches(self, method: str, path: str) -> bool:
        if self.kind is FaultKind.PARTIAL_FILL and (method != "POST" or path != ORDER_PATH):
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    text: str = ""
    rules: tuple[FaultRule, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """What a fault does in place of (before) or to (after) the normal processing of a request."""

    kind: FaultKind  # TIMEOUT, ERROR5XX, BURST429, DROP, OVERTAKE or BAN418
    status: int = 0
    delay_s: float | None = None
    retry_after_s: int = 0


@dataclass(slots=True)
class FaultPlan:
    """The faults one request meets."""

    latency_s: float = 0.0
    before: Action | None = None
    after: Action | None = None
    partial_ratio: Decimal | None = None


def parse_fault_spec(text: str | None) -> FaultSpec:
    """Parse a spec (grammar in the module docstring); raises ConfigError naming a bad part."""
    text = (text or "").strip()
    rules: list[FaultRule] = []
    seed: int | None = None
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        if part.startswith("seed="):
            seed = _parse_int(part, "seed", part[len("seed="):])
            continue
        rules.append(_parse_rule(part))
    return FaultSpec(text, tuple(rules), seed)


def _parse_rule(part: str) -> FaultRule:
    kind_text, *option_texts = part.split(":")
    try:
        kind = FaultKind(kind_text.strip())
    except ValueError:
        raise _error(part, f"unknown fault kind {kind_text!r}") from None
    options: dict[str, str] = {}
    for option in option_texts:
        name, sep, value = option.partition("=")
        name = name.strip()
        if not sep or not value.strip():
            raise _error(part, f"option {option!r} is not NAME=VALUE")
        if name not in _COMMON | _OPTIONS[kind]:
            raise _error(part, f"{kind} takes no option {name!r}")
        options[name] = value.strip()
    fields: dict[str, object] = {"kind": kind}
    if "p" in options:
        fields["probability"] = _parse_float(part, "p", options["p"], 0.0, 1.0)
    if "path" in options:
        fields["path"] = options["path"]
    if "method" in options:
        methods = options["method"].replace(",", "|").split("|")
        fields["methods"] = frozenset(m.strip().upper() for m in methods)
    if "count" in options:
        fields["count"] = _parse_int(part, "count", options["count"], minimum=1)
    fields.update(_kind_fields(part, kind, options))
    return FaultRule(**fields)  # type: ignore[arg-type]  # keys are FaultRule's field names


def _kind_fields(part: str, kind: FaultKind, options: dict[str, str]) -> dict[str, object]:
    fields: dict[str, object] = {}
    if kind is FaultKind.LATENCY:
        if "ms" not in options:
            raise _error(part, "latency needs ms=<milliseconds>")
        fields["latency_ms"] = _parse_float(part, "ms", options["ms"], 0.0, 600_000.0)
    if "delay_s" in options:
        fields["delay_s"] = _parse_float(part, "delay_s", options["delay_s"], 0.0, 3600.0)
    if "when" in options:
        try:
            fields["when"] = When(options["when"])
        except ValueError:
            raise _error(part, "when must be before or after") from None
    elif kind is FaultKind.DROP:
        fields["when"] = When.BEFORE
    if "status" in options:
        fields["status"] = _parse_int(part, "status", options["status"], minimum=500, maximum=599)
    if "n" in options:
        fields["n"] = _parse_int(part, "n", options["n"], minimum=1)
    if "retry_after_s" in options:
        fields["retry_after_s"] = _parse_int(part, "retry_after_s", options["retry_after_s"], minimum=0,
                                             maximum=86_400)
    if "ratio" in options:
        ratio = _parse_float(part, "ratio", options["ratio"], 0.0, 1.0)
        if not 0.0 < ratio < 1.0:
            raise _error(part, "ratio must lie strictly between 0 and 1")
        fields["ratio"] = Decimal(options["ratio"])
    return fields


def _parse_float(part: str, name: str, value: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _error(part, f"{name}={value!r} is not a number") from None
    if not low <= number <= high:
        raise _error(part, f"{name}={value} is outside {low:g}..{high:g}")
    return number


def _parse_int(part: str, name: str, value: str, minimum: int | None = None,
               maximum: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise _error(part, f"{name}={value!r} is not an integer") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise _error(part, f"{name}={value} is out of range")
    return number


def _error(part: str, problem: str) -> ConfigError:
    return ConfigError(f"bad fault spec part {part!r}: {problem}",
                       "see xray_sim.exchange.faults for the grammar")


@dataclass
class FaultInjector:
    """Decides, request by request, which faults of the current spec fire."""

    default_seed: int
    spec: FaultSpec = field(default_factory=FaultSpec)
    fired: Counter[str] = field(default_factory=Counter)  # kind -> times fired, over all specs
    _rng: random.Random = field(init=False, repr=False)
    _times_fired: list[int] = field(init=False, repr=False)  # per rule of the current spec
    _burst_left: list[int] = field(init=False, repr=False)  # per rule: 429s still owed by a burst

    def __post_init__(self) -> None:
        self.replace(self.spec)

    def replace(self, spec: FaultSpec) -> None:
        """Switch to `spec` (an empty spec clears all faults); restarts the random sequence."""
        self.spec = spec
        self._rng = random.Random(spec.seed if spec.seed is not None else self.default_seed)
        self._times_fired = [0] * len(spec.rules)
        self._burst_left = [0] * len(spec.rules)

    def plan(self, method: str, path: str) -> FaultPlan | None:
        """The faults this request meets, or None when it meets none."""
        if not self.spec.rules:
            return None
        plan = FaultPlan()
        hit = False
        for i, rule in enumerate(self.spec.rules):
            if not rule.matches(method, path):
                continue
            if self._burst_left[i]:  # an ongoing 429 burst: no draw, just the next refusal
                self._burst_left[i] -= 1
                hit |= self._apply(plan, Action(FaultKind.BURST429, status=429))
                continue
            if rule.count is not None and self._times_fired[i] >= rule.count:
                continue
            if self._rng.random() >= rule.probability:
                continue
            self._times_fired[i] += 1
            self.fired[rule.kind] += 1
            hit = True
            self._fire(plan, i, rule)
        return plan if hit else None

    def _fire(self, plan: FaultPlan, i: int, rule: FaultRule) -> None:
        if rule.kind is FaultKind.LATENCY:
            plan.latency_s += rule.latency_ms / 1000
        elif rule.kind is FaultKind.PARTIAL_FILL:
            plan.partial_ratio = rule.ratio
        elif rule.kind is FaultKind.BURST429:
            self._burst_left[i] = rule.n - 1
            self._apply(plan, Action(FaultKind.BURST429, status=429))
        elif rule.kind is FaultKind.ERROR5XX:
            self._apply(plan, Action(FaultKind.ERROR5XX, status=rule.status))
        elif rule.kind is FaultKind.OVERTAKE:
            delay = rule.delay_s if rule.delay_s is not None else OVERTAKE_DELAY_S
            self._apply(plan, Action(FaultKind.OVERTAKE, delay_s=delay))
        elif rule.kind is FaultKind.BAN418:
            self._apply(plan, Action(FaultKind.BAN418, status=418, retry_after_s=rule.retry_after_s))
        else:  # TIMEOUT or DROP, before or after processing
            action = Action(rule.kind, delay_s=rule.delay_s)
            if rule.when is When.BEFORE:
                self._apply(plan, action)
            elif plan.after is None:
                plan.after = action

    @staticmethod
    def _apply(plan: FaultPlan, action: Action) -> bool:
        """Set the request's before-processing action; the first rule to fire keeps it."""
        if plan.before is None:
            plan.before = action
        return True

    def describe(self) -> dict[str, object]:
        return {
            "spec": self.spec.text,
            "seed": self.spec.seed if self.spec.seed is not None else self.default_seed,
            "rules": [_describe_rule(rule) for rule in self.spec.rules],
            "fired": dict(self.fired),
        }


def _describe_rule(rule: FaultRule) -> dict[str, object]:
    return {
        "kind": str(rule.kind), "p": rule.probability, "path": rule.path,
        "methods": sorted(rule.methods) if rule.methods else None, "count": rule.count,
        "ms": rule.latency_ms, "delay_s": rule.delay_s, "when": str(rule.when), "status": rule.status,
        "n": rule.n, "ratio": str(rule.ratio), "retry_after_s": rule.retry_after_s,
    }
