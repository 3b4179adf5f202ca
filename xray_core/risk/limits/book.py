"""The risk book: each tick, rolls every user's risk state, evaluates the registered rules over all
users at once and says who may enter, who is killed (and who was just killed) and which global
switches are on. Users whose state was kept elsewhere (a store, another process) get it back through
`reindex(..., saved=...)`: it is put back at their first tick here, once the day is known."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field

import numpy as np

from xray_core.errors import ConfigError
from xray_core.risk.limits import registry
from xray_core.risk.limits.rule import Effect, RiskInputs, RiskLimits, Rule, Scope, Totals
from xray_core.risk.limits.state import RiskState, SavedRisk

NOT_BLOCKED = 0  # block code of a user no rule blocks; otherwise the blocking rule's code


@dataclass(frozen=True, slots=True, eq=False)
class RiskCheck:
    block: np.ndarray  # int8 per user: NOT_BLOCKED, or the code of the rule whose reason the user carries
    newly_killed: np.ndarray  # bool per user: a kill rule fired on a user not killed before
    switches: tuple[Rule, ...]  # the rules that stop everyone and are on
    killed: np.ndarray  # bool per user: killed now or before, until revived (their positions are closed)

    @property
    def global_on(self) -> bool:
        return bool(self.switches)


def _registered() -> tuple[Rule, ...]:
    return registry.RULES  # read when a book is made, so the registry is the one source of rules


@dataclass
class RiskBook:
    """Risk state and limits for the current rows of users; `update` checks them at each tick."""

    limits: RiskLimits
    rules: tuple[Rule, ...] = field(default_factory=_registered)
    initial_state: InitVar[RiskState | None] = None  # None: nothing measured yet
    state: RiskState = field(init=False)
    _latch_code: int = field(init=False, repr=False)  # the block code a user killed before carries
    _saved: dict[int, SavedRisk] = field(init=False, repr=False, default_factory=dict)  # put back next tick

    def __post_init__(self, initial_state: RiskState | None) -> None:
        names = [rule.name for rule in self.rules]
        if len(set(names)) != len(names):
            raise ConfigError(f"risk rules: a name is registered twice in {names}",
                              "give each rule in xray_core/risk/limits its own name")
        if len(self.rules) > np.iinfo(np.int8).max:
            raise ConfigError(f"risk rules: {len(self.rules)} registered, codes fit 127",
                              "merge rules or widen the block codes")
        kills = [code for code, rule in enumerate(self.rules, 1) if rule.effect is Effect.KILL]
        if not kills:
            raise ConfigError("risk rules: no kill rule registered",
                              "register one: a user's kill flag carries the last kill rule's reason")
        self._latch_code = kills[-1]
        self.state = RiskState.fresh(self.limits.users) if initial_state is None else initial_state
        if self.state.users != self.limits.users:
            raise ValueError(f"risk state of {self.state.users} users for limits of {self.limits.users}")

    def preview(self, equity: np.ndarray, now_ms: int) -> RiskState:
        """The state this tick's rules would read (rolled, saved rows put back), changing nothing: what
        a runtime shares with other processes before `update`."""
        if len(equity) != self.state.users:
            raise ValueError(f"risk book holds {self.state.users} users but got {len(equity)} equities: "
                             "reindex it when the users change")
        return self.state.roll(equity, now_ms).restore(self._saved)

    def update(self, equity: np.ndarray, now_ms: int, combined: Totals | None = None,
               transfers: np.ndarray | None = None) -> RiskCheck:
        """Roll the state to this tick and evaluate every rule. `combined`: every user's totals across
        processes, for the rules that stop everyone (None: the users here are everyone). `transfers`:
        each user's net deposits less withdrawals (None: none); the state is rolled on equity less
        them (`RiskInputs`)."""
        state = self.preview(equity if transfers is None else equity - transfers, now_ms)
        self._saved = {}
        inputs = RiskInputs(now_ms, equity, state, self.limits, combined, transfers)
        block = np.zeros(len(equity), dtype=np.int8)
        fired = np.zeros(len(equity), dtype=bool)
        kills: list[tuple[int, np.ndarray]] = []
        switches: list[Rule] = []
        for code, rule in enumerate(self.rules, 1):
            mask = rule.check(inputs)
            if mask.dtype != np.bool_ or mask.shape != equity.shape:
                raise TypeError(f"risk rule {rule.name} returned {mask.dtype}{mask.shape}, "
                                f"not a bool mask over {len(equity)} users")
            if rule.scope is Scope.ALL and mask.any():
                switches.append(rule)
            if rule.effect is Effect.KILL:
                kills.append((code, mask))
            else:
                block[mask] = code  # later registered (more severe) overrides
        # Kills outrank every entry block; a user killed before stays killed until revived.
        block[state.killed] = self._latch_code
        for code, mask in kills:
            block[mask] = code
            fired |= mask
        newly_killed = fired & ~state.killed
        self.state = state.kill(fired)
        return RiskCheck(block, newly_killed, tuple(switches), self.state.killed.copy())

    def reason(self, code: int) -> str:
        """What a user with block `code` is told ("" when not blocked)."""
        return self.rules[int(code) - 1].reason if code != NOT_BLOCKED else ""

    def reindex(self, old: np.ndarray, limits: RiskLimits,
                saved: Mapping[int, SavedRisk] | None = None) -> None:
        """Users changed: row i is now the old row `old[i]` (-1: a new user, measured from the next
        update, or from `saved[i]` when a store kept its state); `limits` are the new rows' limits."""
        if len(old) != limits.users:
            raise ValueError(f"{len(old)} rows reindexed but limits for {limits.users} users")
        moved = {int(new): self._saved[int(was)] for new, was in enumerate(old) if int(was) in self._saved}
        self._saved = moved | {int(i): row for i, row in (saved or {}).items() if old[int(i)] < 0}
        self.state, self.limits = self.state.reindex(old), limits

    def revive(self, index: int, equity: float) -> None:
        """A person re-enabled the user: the drawdown is measured from here."""
        self.state = self.state.revive(index, equity)
