"""Spot balances per API key: free and locked amounts per asset, in exact Decimal arithmetic.

The book is the exchange's truth for reconciliation: every change goes through the few methods below,
each of which keeps free and locked non-negative, so value is only ever moved, never created, except
by `deposit` (starting funds, a deposit) and taken out only by a withdrawal (`transfers`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from xray_sim.exchange.decimals import ZERO, parse_decimal

if TYPE_CHECKING:
    from xray_sim.exchange.transfers import SimTransfer

NewAccount = tuple[str, str, Mapping[str, Decimal] | None]  # key, secret, funds (None: starting funds)


class InsufficientBalanceError(Exception):
    """An account lacks the free (or locked) amount an operation needs."""


@dataclass(slots=True)
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(slots=True)
class Account:
    """One API key's spot wallet."""

    key: str
    secret: str
    balances: dict[str, Balance] = field(default_factory=dict)
    transfers: list[SimTransfer] = field(default_factory=list)  # deposits and withdrawals, oldest first

    def balance(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())

    def free(self, asset: str) -> Decimal:
        held = self.balances.get(asset)
        return held.free if held else ZERO

    def deposit(self, asset: str, amount: Decimal) -> None:
        _require_non_negative(amount)
        self.balance(asset).free += amount

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move `amount` from free to locked (an order reserves what it may spend)."""
        _require_non_negative(amount)
        held = self.balance(asset)
        if held.free < amount:
            raise InsufficientBalanceError(f"{self.key}: {asset} free {held.free} < {amount}")
        held.free -= amount
        held.locked += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        """Move `amount` from locked back to free (an order is cancelled or spent less than reserved)."""
        _require_non_negative(amount)
        held = self.balance(asset)
        if held.locked < amount:
            raise InsufficientBalanceError(f"{self.key}: {asset} locked {held.locked} < {amount}")
        held.locked -= amount
        held.free += amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        """Pay `amount` out of locked funds (a fill consumes what its order reserved)."""
        _require_non_negative(amount)
        held = self.balance(asset)
        if held.locked < amount:
            raise InsufficientBalanceError(f"{self.key}: {asset} locked {held.locked} < {amount}")
        held.locked -= amount

    def credit(self, asset: str, amount: Decimal) -> None:
        """Receive `amount` into free funds (the proceeds of a fill, net of commission)."""
        self.deposit(asset, amount)

    def nonzero_balances(self) -> list[tuple[str, Balance]]:
        """Assets with a non-zero total, sorted by asset (MEXC lists only those)."""
        return sorted((asset, held) for asset, held in self.balances.items() if held.total != 0)


class AccountBook:
    """All accounts, by API key."""

    def __init__(self, starting_funds: Mapping[str, str]) -> None:
        self.starting_funds = parse_funds(starting_funds)
        self._accounts: dict[str, Account] = {}

    def __len__(self) -> int:
        return len(self._accounts)

    def __contains__(self, key: object) -> bool:
        return key in self._accounts

    def get(self, key: str) -> Account | None:
        return self._accounts.get(key)

    def register(self, key: str, secret: str, funds: Mapping[str, Decimal] | None = None) -> Account:
        """Open an account for `key`, funded with `funds` (default: the configured starting funds)."""
        if key in self._accounts:
            raise ValueError(f"API key {key!r} already exists")
        if not key or not secret:
            raise ValueError("an API key and its secret must not be empty")
        account = Account(key, secret)
        for asset, amount in (self.starting_funds if funds is None else funds).items():
            account.deposit(asset, amount)
        self._accounts[key] = account
        return account

    def register_many(self, entries: Iterable[NewAccount]) -> list[Account]:
        """Open several accounts atomically: if any key is taken or malformed, none is opened."""
        entries = list(entries)
        keys = [key for key, _, _ in entries]
        taken = [key for key in keys if key in self._accounts]
        if taken or len(set(keys)) != len(keys):
            raise ValueError(f"API key(s) taken or repeated: {', '.join(taken) or 'within the request'}")
        return [self.register(key, secret, funds) for key, secret, funds in entries]


def new_credentials(prefix: str = "mx0v") -> tuple[str, str]:
    """A fresh key and secret shaped like MEXC's (mx0v... key, 32 hex secret)."""
    return prefix + secrets.token_hex(9), secrets.token_hex(16)


def parse_funds(funds: Mapping[str, str | int | float]) -> dict[str, Decimal]:
    """{'USDT': '10000'} -> {'USDT': Decimal('10000')}; raises ValueError naming a bad entry."""
    parsed: dict[str, Decimal] = {}
    for asset, amount in funds.items():
        value = parse_decimal(str(amount))
        if not asset or value is None or value < 0:
            raise ValueError(f"bad starting balance {asset!r}: {amount!r}")
        parsed[asset.upper()] = value
    return parsed


def _require_non_negative(amount: Decimal) -> None:
    if amount < 0:
        raise ValueError(f"amounts moved between balances are never negative, got {amount}")
