"""A "did you mean" hint for a misspelt name: a typo in ``salync.toml`` must never pass
silently, and the message should point at the name that was meant."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'push'?"`` for the closest of ``choices``, or ``""`` when none is
    close enough."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown(kind: str, word: str, choices: Iterable[str]) -> str:
    """``"unknown key 'pussh'; did you mean 'push'? (known: ...)"``: the hint, then the list."""
    known = sorted(choices)
    hint = did_you_mean(word, known)
    listing = ", ".join(known) or "none"
    return f"unknown {kind} {word!r}{hint} (known: {listing})"
