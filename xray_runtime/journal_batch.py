"""Group commit: the executor's journal writes and reads from thousands of concurrent orders, in a
few transactions instead of one each.

Every order is written ahead before it is sent and again when the venue answers, and each of those
writes must be durable before the order moves on. Done one by one, 10,000 users' orders make
tens of thousands of small transactions that queue on the database's write lock (SQLite allows one
writer; each commit is an fsync), and the orders wait on the journal, not on the exchange.

`JournalBatcher.write` keeps the guarantee (it returns once the caller's rows are committed) but
every write that arrives while a transaction is being committed joins the next one: under load a
transaction carries hundreds of writers, alone it carries one (no added delay). One transaction is
in flight at a time, so writes land in the order they were made. A failed commit raises to each
writer of that transaction; nothing of it was recorded. Reads by client order id (`get_many`) are
batched the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from xray_core.trading.orders import Fill, Order
from xray_runtime.journal import Journal

T = TypeVar("T")
R = TypeVar("R")

Write = tuple[Sequence[Order], Sequence[Fill]]


class _Group(Generic[T, R]):
    """Requests queued while a batch is in flight, handled together by `run` in a worker thread;
    `split` hands each request its own part of the batch's result."""

    def __init__(self, run: Callable[[list[T]], R], split: Callable[[R, T], object]) -> None:
        self._run, self._split = run, split
        self._queue: list[tuple[T, asyncio.Future[object]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, request: T) -> object:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                result = await asyncio.to_thread(self._run, [request for request, _ in batch])
            except Exception as error:  # every request of the batch failed alike
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            except BaseException:  # cancelled (shutdown): so are its waiters
                for _, future in batch:
                    future.cancel()
                raise
            for request, future in batch:
                if not future.done():
                    future.set_result(self._split(result, request))


class JournalBatcher:
    """`write` and `get_many` of a `Journal`, grouped across concurrent callers (see the module)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._writes: _Group[Write, int] = _Group(self._record, lambda _result, _request: None)
        self._reads: _Group[list[str], dict[str, Order]] = _Group(self._read, _only)
        self.transactions = 0  # write transactions committed, and the writes they carried (metrics)
        self.writes = 0

    async def write(self, orders: Sequence[Order], fills: Sequence[Fill] = ()) -> None:
        """Record `fills` then `orders` durably (fills first: no order claims a fill not kept)."""
        if orders or fills:
            await self._writes.submit((orders, fills))

    async def get_many(self, client_order_ids: list[str]) -> dict[str, Order]:
        """The recorded orders among `client_order_ids`, by id."""
        if not client_order_ids:
            return {}
        found = await self._reads.submit(client_order_ids)
        assert isinstance(found, dict)
        return found

    def _record(self, writes: list[Write]) -> int:
        added = self.journal.record(writes)
        self.transactions += 1
        self.writes += len(writes)
        return added

    def _read(self, requests: list[list[str]]) -> dict[str, Order]:
        return self.journal.get_many([cid for ids in requests for cid in ids])


def _only(found: dict[str, Order], ids: list[str]) -> dict[str, Order]:
    return {cid: found[cid] for cid in ids if cid in found}
