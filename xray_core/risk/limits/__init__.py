"""Risk limits: small rules over arrays of users, evaluated together by `book.RiskBook`.

The runtime keeps every user's equity in numpy arrays (one row per user), so every check is a few
vector operations and 10,000 users are checked in microseconds.

A limit is a `rule.Rule`: a name, the reason a blocked user is told, and a `check` that reads this
tick's `rule.RiskInputs` (equity per user; the per-user `state.RiskState`: day-open equity, peak
equity, kill flag; the thresholds in `rule.RiskLimits`) and returns a numpy bool mask over users:
who it blocks now. Its effect is one of
* `Effect.NO_ENTRIES`: no new entries; exits always go through (reducing risk is always allowed);
* `Effect.KILL`: the user's positions are closed and the user stops trading until a person re-enables
  them. The book latches the kill flag, so a kill rule only says when it fires.
A rule with `Scope.ALL` stops everyone at once (a global switch; the runtime announces it once).
Rules own no state: whatever must carry from tick to tick is in `RiskState`, which the book rolls
each tick and passes in, so it can be stored and loaded without touching any rule: `RiskBook(...,
initial_state=...)` takes a whole state, `reindex(..., saved=...)` puts back users' stored rows
(`SavedRisk`) at their first tick. An equity of NaN (not measurable this tick) changes no state and
fires no rule. A rule that stops everyone reads `RiskInputs.totals()`: every runtime process's users
when the runtime passes their combined totals to `RiskBook.update`, else the users in the book.

Today's limits, one file each:
* `daily_loss.py`: max daily loss, no new entries until the next UTC day;
* `global_daily_loss.py`: global kill switch, all users' combined daily loss stops every entry;
* `drawdown.py`: max drawdown kill switch, positions closed, user stopped until re-enabled.
Max position is not a block but a cap on the entry size: `xray_core.risk.sizing.entry_notional`.

Adding a limit is one new file and one registration line:
1. `xray_core/risk/limits/my_limit.py` with a check `def my_check(inputs: RiskInputs) -> np.ndarray`
   returning a bool array of `len(inputs.equity)`, and `MY_LIMIT = Rule(name="my_limit", reason="...",
   check=my_check, effect=..., scope=...)`;
2. `MY_LIMIT,` in `registry.RULES`, in order of severity: a user blocked by several rules carries the
   reason of the one registered last, kill rules over entry rules;
3. its test in tests/core/risk/test_limit_rules.py (a test fails if a rule file is left unregistered).
A limit that needs a new per-user threshold also needs it as a field of `RiskLimits`, filled by the
runtime from the user's risk settings.
"""
