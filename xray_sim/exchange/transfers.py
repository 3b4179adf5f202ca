"""Deposits and withdrawals of an emulated account, as a venue's wallet reports them.

Test equipment moves money in and out (`POST /_emulator/accounts/{key}/deposit|withdraw`); the
account's history is then listed by MEXC's capital endpoints, the ones ccxt's `fetch_deposits` and
`fetch_withdrawals` read (`GET /api/v3/capital/deposit/hisrec`, `.../withdraw/history`). Both act at
once and succeed (MEXC status 5 for a deposit, 7 for a withdrawal): the emulator has no chain to wait
for. A withdrawal takes `amount` out of the free balance; its fee is 0 (the coin config says so).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

from xray_sim.exchange.accounts import Account, InsufficientBalanceError
from xray_sim.exchange.decimals import fmt_decimal

DEPOSIT_SUCCESS = 5  # MEXC's deposit status SUCCESS
WITHDRAW_SUCCESS = 7  # MEXC's withdrawal status SUCCESS
MAX_HISTORY_LIMIT = 1000

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class SimTransfer:
    id: str  # a withdrawal's id; for a deposit, its transaction hash (MEXC lists no deposit id)
    deposit: bool
    asset: str
    amount: Decimal
    time_ms: int


def deposit(account: Account, asset: str, amount: Decimal, now_ms: int) -> SimTransfer:
    if amount <= 0:
        raise ValueError(f"a deposit must be positive, got {amount}")
    account.deposit(asset, amount)
    return _record(account, SimTransfer(f"0x{next(_ids):064x}", True, asset, amount, now_ms))


def withdraw(account: Account, asset: str, amount: Decimal, now_ms: int) -> SimTransfer:
    """Take `amount` out of the free balance; InsufficientBalanceError when it is not free."""
    if amount <= 0:
        raise ValueError(f"a withdrawal must be positive, got {amount}")
    held = account.balance(asset)
    if held.free < amount:
        raise InsufficientBalanceError(f"{account.key}: {asset} free {held.free} < {amount}")
    held.free -= amount
    return _record(account, SimTransfer(f"wd{next(_ids):012d}", False, asset, amount, now_ms))


def _record(account: Account, transfer: SimTransfer) -> SimTransfer:
    account.transfers.append(transfer)
    return transfer


def history(account: Account, deposits: bool, coin: str | None, start_ms: int | None, end_ms: int | None,
            limit: int) -> list[SimTransfer]:
    """The account's deposits (or withdrawals), newest first as MEXC lists them."""
    chosen = [t for t in account.transfers if t.deposit == deposits
              and (coin is None or t.asset == coin.split("-")[0].upper())
              and (start_ms is None or t.time_ms >= start_ms) and (end_ms is None or t.time_ms <= end_ms)]
    return sorted(chosen, key=lambda t: t.time_ms, reverse=True)[:limit]


def deposit_shape(transfer: SimTransfer) -> dict[str, object]:
    """One /api/v3/capital/deposit/hisrec entry."""
    return {
        "amount": fmt_decimal(transfer.amount), "coin": transfer.asset, "network": transfer.asset,
        "status": DEPOSIT_SUCCESS, "address": "emulator", "txId": f"{transfer.id}:0",
        "transHash": transfer.id, "insertTime": transfer.time_ms, "updateTime": transfer.time_ms,
        "unlockConfirm": "12", "confirmTimes": "12", "memo": None,
    }


def withdrawal_shape(transfer: SimTransfer) -> dict[str, object]:
    """One /api/v3/capital/withdraw/history entry (`amount` includes the fee, here 0)."""
    return {
        "id": transfer.id, "txId": None, "coin": transfer.asset, "network": transfer.asset,
        "address": "emulator", "amount": fmt_decimal(transfer.amount), "transferType": 0,
        "status": WITHDRAW_SUCCESS, "transactionFee": "0", "confirmNo": None,
        "applyTime": transfer.time_ms, "updateTime": transfer.time_ms, "remark": "", "memo": None,
        "transHash": f"0x{transfer.id}", "coinId": transfer.asset, "vcoinId": transfer.asset,
    }
