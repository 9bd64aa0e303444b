"""Reading request bodies field by field, refusing what Salync would refuse.

[DERIVED] The emulator is strict on purpose: unknown fields, read-only fields and wrongly typed
values answer 422 ``validation_failed`` with a message naming the field, so a plugin that sends a
misspelt or read-only field learns it against the emulator rather than in production.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from salync_inventory.emulator.models import ApiError, validation_error

_CENT = Decimal("0.01")
_MONEY_MAX = Decimal(10) ** 10
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def positive_quantity(value: Any, field: str = "quantity") -> int:
    """A quantity is always a positive integer; its sign comes from the adjustment type."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ApiError(422, "invalid_quantity", f"{field} must be a positive integer")
    return value


class Body:
    """A JSON object sent by a client, with typed accessors that raise :class:`ApiError`."""

    def __init__(
        self,
        data: Any,
        allowed: Iterable[str],
        read_only: Iterable[str] = (),
        what: str = "request body",
    ) -> None:
        if not isinstance(data, dict):
            raise validation_error(f"The {what} must be a JSON object")
        read_only_sent = sorted(set(data) & set(read_only))
        if read_only_sent:
            raise validation_error(f"Read-only field(s): {', '.join(read_only_sent)}")
        unknown = sorted(set(data) - set(allowed) - set(read_only))
        if unknown:
            raise validation_error(f"Unknown field(s): {', '.join(unknown)}")
        self.data: dict[str, Any] = data

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def text(self, name: str, *, max_length: int = 255) -> str | None:
        """An optional string; ``null`` clears it."""
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise validation_error(f"{name} must be a string")
        if len(value) > max_length:
            raise validation_error(f"{name} must be at most {max_length} characters")
        return value

    def required_text(self, name: str, *, max_length: int = 255) -> str:
        value = self.text(name, max_length=max_length)
        if value is None or not value.strip():
            raise validation_error(f"{name} is required")
        return value.strip()

    def choice(self, name: str, choices: Iterable[str], *, required: bool = True) -> str | None:
        value = self.data.get(name)
        options = list(choices)
        if value is None and not required:
            return None
        if value not in options:
            raise validation_error(f"{name} must be one of: {', '.join(options)}")
        return str(value)

    def integer(self, name: str, *, minimum: int = 0) -> int | None:
        """An optional integer of at least ``minimum``; ``null`` clears it."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise validation_error(f"{name} must be an integer of at least {minimum}")
        return value

    def money(self, name: str) -> Decimal | None:
        """A non-negative amount with at most two decimals, sent as ``"12.50"`` or ``12.5``."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise validation_error(f'{name} must be a decimal string like "12.50"')
        try:
            amount = Decimal(str(value))
            valid = amount.is_finite() and 0 <= amount < _MONEY_MAX
            valid = valid and amount == amount.quantize(_CENT)
        except InvalidOperation:
            valid = False
        if not valid:
            raise validation_error(f'{name} must be a non-negative amount like "12.50"')
        return amount.quantize(_CENT)

    def currency(self, name: str = "currency") -> str | None:
        value = self.text(name)
        if value is not None and not _CURRENCY.match(value):
            raise validation_error(f"{name} must be an ISO 4217 code like GBP")
        return value

    def day(self, name: str) -> str | None:
        """An optional ``YYYY-MM-DD`` date."""
        value = self.text(name)
        if value is None:
            return None
        try:
            parsed = date.fromisoformat(value) if len(value) == 10 else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise validation_error(f"{name} must be a date like 2026-01-31")
        return parsed.isoformat()

    def array(self, name: str, *, required: bool = False) -> list[Any] | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise validation_error(f"{name} is required")
            return None
        if not isinstance(value, list):
            raise validation_error(f"{name} must be an array")
        return value
