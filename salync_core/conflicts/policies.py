"""Field policies: who may change a field, decided one incoming change at a time.

A policy only ever sees a *candidate*: a field that connection ``origin`` changed since the
value it last saw (its base). Re-reading unchanged data never reaches a policy, so it can never
override anything. Each policy answers ``ACCEPT`` (the mirror takes the value), ``REJECT`` (the
mirror keeps its value and the connection will receive it on push) or ``CONFLICT`` (keep the
value, open a conflict for a person). A policy refuses to guess: what it cannot order is a
conflict, never a silent pick.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, ClassVar, NamedTuple, Protocol

from attrs import frozen

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
"""A field the mirror or a base does not hold at all (not the same as ``None``)."""

LOCAL = "local"
"""The origin of edits made by the host app through ``Engine.upsert`` and ``Engine.delete``."""


class FieldDecision(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    CONFLICT = "conflict"


class Current(NamedTuple):
    """The mirror's value of a field and its clock."""

    value: Any
    origin: str
    ts: float | None


class Policy(Protocol):
    """Decides candidates for the fields it is configured on."""

    @property
    def rule(self) -> str:
        """How provenance names this policy, e.g. ``owner:pim``."""
        ...

    def first(self, origin: str) -> FieldDecision:
        """Decide a value from ``origin`` for a field the mirror holds no value for yet.

        It may depend on nothing but ``origin``: the resolver caches the answer."""
        ...

    def decide(
        self, origin: str, value: Any, ts: float | None, current: Current | None, base: Any
    ) -> FieldDecision:
        """Decide a candidate from ``origin`` against the mirror's ``current`` value, which
        is never ``None`` (see :meth:`first`)."""
        ...

    def receives(self, connection: str) -> bool:
        """Whether ``connection`` should be sent this field's value on push."""
        ...

    def connections(self) -> Iterable[str]:
        """Connections this policy names, for validation at load."""
        ...


def _newer(ts: float | None, origin: str, current: Current) -> bool:
    """Last-writer-wins order: newer source time first, then connection name (deterministic)."""
    mine = -1.0 if ts is None else ts
    theirs = -1.0 if current.ts is None else current.ts
    return (mine, origin) >= (theirs, current.origin)


@frozen
class Owner:
    """Only ``owner``'s changes are accepted; every other connection receives its value."""

    owner: str
    name: ClassVar[str] = "owner"

    @property
    def rule(self) -> str:
        return f"owner:{self.owner}"

    def first(self, origin: str) -> FieldDecision:
        return FieldDecision.ACCEPT if origin == self.owner else FieldDecision.REJECT

    def decide(
        self, origin: str, value: Any, ts: float | None, current: Current | None, base: Any
    ) -> FieldDecision:
        return FieldDecision.ACCEPT if origin == self.owner else FieldDecision.REJECT

    def receives(self, connection: str) -> bool:
        return connection != self.owner

    def connections(self) -> Iterable[str]:
        return (self.owner,)


@frozen
class Priority:
    """The first connection in ``order`` that has a value wins; unlisted ones rank last and
    are ordered among themselves by last-writer-wins."""

    order: tuple[str, ...]
    name: ClassVar[str] = "priority"

    @property
    def rule(self) -> str:
        return "priority:" + ">".join(self.order)

    def _rank(self, origin: str) -> int:
        return self.order.index(origin) if origin in self.order else len(self.order)

    def first(self, origin: str) -> FieldDecision:
        return FieldDecision.ACCEPT

    def decide(
        self, origin: str, value: Any, ts: float | None, current: Current | None, base: Any
    ) -> FieldDecision:
        if current is None or current.value is None or origin == current.origin:
            return FieldDecision.ACCEPT
        mine, theirs = self._rank(origin), self._rank(current.origin)
        if mine != theirs:
            return FieldDecision.ACCEPT if mine < theirs else FieldDecision.REJECT
        return FieldDecision.ACCEPT if _newer(ts, origin, current) else FieldDecision.REJECT

    def receives(self, connection: str) -> bool:
        return True

    def connections(self) -> Iterable[str]:
        return self.order


@frozen
class LastWriterWins:
    """The change with the newest source timestamp wins; ties go to the greater connection name."""

    name: ClassVar[str] = "last_writer_wins"
    rule: ClassVar[str] = "last_writer_wins"

    def first(self, origin: str) -> FieldDecision:
        return FieldDecision.ACCEPT

    def decide(
        self, origin: str, value: Any, ts: float | None, current: Current | None, base: Any
    ) -> FieldDecision:
        if current is None or origin == current.origin:
            return FieldDecision.ACCEPT
        return FieldDecision.ACCEPT if _newer(ts, origin, current) else FieldDecision.REJECT

    def receives(self, connection: str) -> bool:
        return True

    def connections(self) -> Iterable[str]:
        return ()


@frozen
class Manual:
    """A change is accepted while nobody else changed the field since the connection last saw
    it; concurrent changes open a conflict and the field keeps its value until resolved."""

    name: ClassVar[str] = "manual"
    rule: ClassVar[str] = "manual"

    def first(self, origin: str) -> FieldDecision:
        return FieldDecision.ACCEPT

    def decide(
        self, origin: str, value: Any, ts: float | None, current: Current | None, base: Any
    ) -> FieldDecision:
        if current is None or origin == current.origin or current.value == value:
            return FieldDecision.ACCEPT
        if base is not MISSING and current.value == base:
            return FieldDecision.ACCEPT
        return FieldDecision.CONFLICT

    def receives(self, connection: str) -> bool:
        return True

    def connections(self) -> Iterable[str]:
        return ()
