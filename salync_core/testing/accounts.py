"""Many accounts in one emulator process: which account a request is for, and its own state.

An emulator serving ``accounts=N`` keeps one state per account (catalog, stock, orders,
webhook subscriptions, rate-limit buckets), built lazily on the account's first request, and
tells them apart by credential. Emulator code does not pass the account around: the base's
first middleware sets the *current account* for the request (a context variable, so two
requests answered at once each see their own), and attributes declared as
:class:`AccountAttribute` read and write the current account's state. Outside a request the
current account is 0, or the one chosen with ``with emulator.as_account(i):``.

Account 0 keeps the emulator's own seed and credentials, so a one-account emulator behaves
exactly as it always did; account ``i`` is seeded from :func:`account_seed` and authenticates
with :func:`account_credential`.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any, Generic, Protocol, Self, TypeVar, overload

T = TypeVar("T")

CURRENT: ContextVar[tuple[object, int] | None] = ContextVar("salync_emulator_account", default=None)
"""(emulator, account index) of the request being answered; ``None``: account 0."""

CREDENTIAL_SEPARATOR = "-acct"


def account_seed(seed: int, index: int) -> int:
    """The seed of account ``index``'s data: the emulator's own for account 0, otherwise a
    number derived from both, so every account is different and reproducible."""
    if index == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def account_credential(base: str, index: int) -> str:
    """Account ``index``'s key or token: ``base`` itself for account 0, ``base-acct7`` for 7."""
    return base if index == 0 else f"{base}{CREDENTIAL_SEPARATOR}{index}"


def credential_account(base: str, credential: str, accounts: int) -> int | None:
    """The account :func:`account_credential` made ``credential`` for, or ``None``."""
    if credential == base:
        return 0
    stem, separator, number = credential.rpartition(CREDENTIAL_SEPARATOR)
    if stem != base or not separator or not number.isascii() or not number.isdigit():
        return None
    if number.startswith("0"):
        return None
    index = int(number)
    return index if 0 < index < accounts else None


class AccountState:
    """One account's attributes (whatever :class:`AccountAttribute` stores) and its index."""

    def __init__(self, index: int) -> None:
        self.index = index


class HasAccounts(Protocol):
    def account_state(self) -> AccountState: ...


def resident_bytes() -> int:
    """This process's resident memory (Linux ``/proc``; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def build_accounts(emulator: Any, indexes: Iterable[int]) -> int:
    """Build the state of each account in ``indexes`` now (as its first request would);
    returns how many bytes of resident memory the process grew by (an estimate: freed
    memory the allocator reuses is not counted)."""
    gc.collect()
    before = resident_bytes()
    for index in indexes:
        with emulator.as_account(index):
            emulator.account_state()
    gc.collect()
    return max(0, resident_bytes() - before)


class AccountAttribute(Generic[T]):
    """An emulator attribute kept per account: reading or setting it on the emulator reads or
    sets it in the current account's state (created on first use)."""

    name: str

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, obj: HasAccounts, owner: type | None = None) -> T: ...

    def __get__(self, obj: HasAccounts | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(obj.account_state(), self.name)

    def __set__(self, obj: HasAccounts, value: T) -> None:
        setattr(obj.account_state(), self.name, value)


__all__ = [
    "CURRENT",
    "AccountAttribute",
    "AccountState",
    "account_credential",
    "account_seed",
    "build_accounts",
    "credential_account",
    "resident_bytes",
]
