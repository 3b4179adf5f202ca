"""The global kill switch's totals over every runtime process's users.

With Redis, each process writes its users' day-open and current equity into one hash per UTC day
(field: user id, so each user is counted once however users move between processes: a user handed
over is overwritten by its new owner) and reads the sums over every field back, computed in Redis by
one small Lua script. Users a process could not measure this tick keep their last value. The hash
expires two days after its last write. Without Redis there is one process: its own users are all.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from xray_core.risk.limits.rule import Totals
from xray_core.risk.limits.state import DAY_MS

_SUM = """
local open, equity = 0, 0
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do
  local space = string.find(value, ' ', 1, true)
  if space then
    open = open + (tonumber(string.sub(value, 1, space - 1)) or 0)
    equity = equity + (tonumber(string.sub(value, space + 1)) or 0)
  end
end
return {tostring(open), tostring(equity)}
"""  # strings: Redis would truncate Lua numbers to integers
_CHUNK = 1000  # fields per HSET


class SharedTotals(Protocol):
    async def combine(self, day: int | None, user_ids: list[str], day_open: np.ndarray,
                      equity: np.ndarray) -> Totals | None:
        """Record these users' values for `day` and return every user's totals (None: only these)."""
        ...


class LocalTotals:
    """One process: its users are everyone (the book sums them itself)."""

    async def combine(self, day: int | None, user_ids: list[str], day_open: np.ndarray,
                      equity: np.ndarray) -> Totals | None:
        return None


class RedisTotals:
    """Every process's users' totals, through one Redis hash per UTC day (module docstring)."""

    def __init__(self, redis: Any, prefix: str, expire_s: int = 2 * DAY_MS // 1000 + 3600) -> None:
        self.redis = redis
        self.prefix = prefix
        self.expire_s = expire_s
        self._sum = redis.register_script(_SUM)

    def key(self, day: int) -> str:
        return f"{self.prefix}:risk:totals:{day}"

    async def combine(self, day: int | None, user_ids: list[str], day_open: np.ndarray,
                      equity: np.ndarray) -> Totals | None:
        if day is None:
            return None
        key = self.key(day)
        measured = np.flatnonzero(np.isfinite(day_open) & np.isfinite(equity))
        fields = {user_ids[i]: f"{float(day_open[i])!r} {float(equity[i])!r}" for i in measured}
        items = list(fields.items())
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(items), _CHUNK):
                pipe.hset(key, mapping=dict(items[start:start + _CHUNK]))
            pipe.expire(key, self.expire_s)
            await pipe.execute()
        opened, now = await self._sum(keys=[key])
        return Totals(float(opened), float(now))
