"""Three-way, per-field resolution of one incoming record against the mirror. Pure: no I/O.

For every field a connection sends, the resolver compares three values: the mirror's
(``current``), the one this connection last held (its ``base``) and the incoming one. A field
equal to its base was not changed by this connection and is skipped, so re-reading a platform
never overrides anything. Only the rest, the *candidates*, reach a policy (or a plugin's
``decide_field`` hook first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from attrs import Factory, define, frozen

from salync_core.conflicts.policies import (
    MISSING,
    Current,
    FieldDecision,
    LastWriterWins,
    Policy,
)
from salync_core.conflicts.policy_set import PolicySet
from salync_core.models import COUNTER_FIELDS, KEYED_FIELDS

Clock = list[Any]
"""``[origin, source_ts, seq, rule]`` as stored in ``records.clocks``."""

DecideHook = Callable[[str, str, str, Any, Any], FieldDecision | None]
"""``(entity, field, origin, current_value, incoming) -> decision or None``."""


@define
class Outcome:
    """What resolving one record decided."""

    changed: dict[str, Any] = Factory(dict)
    """Fields whose mirror value changes, with their new values."""
    clocks: dict[str, Clock] = Factory(dict)
    """New clocks for the changed fields (the seq is filled in by the caller)."""
    diverged: bool = False
    """The connection holds a value the mirror did not take: it must be pushed to."""
    conflicts: list[tuple[str, Any, Current]] = Factory(list)
    """``(field, incoming value, current)`` for each field that opened a conflict."""
    rejected: list[str] = Factory(list)
    """Fields whose incoming value a policy refused."""
    decisions: int = 0


@frozen
class FieldRule:
    """How one field of one entity is resolved for one origin, looked up once and kept: the
    resolver reads it for every field of every record, so nothing in it is computed twice."""

    policy: Policy
    rule: str
    """``policy.rule``, kept: some policies build it on every call."""
    first: FieldDecision
    """The policy's answer to this origin for a field the mirror does not hold yet."""
    keyed: bool
    """Merged key by key (``models.KEYED_FIELDS``)."""
    counter: bool
    """Merged by difference (``models.COUNTER_FIELDS``)."""
    counts_both: bool
    """A counter under last-writer-wins: both writes are kept, there is no last writer."""


class Resolver:
    """Decides incoming records field by field under a :class:`PolicySet`."""

    def __init__(self, policies: PolicySet, decide_hook: DecideHook | None = None) -> None:
        self.policies = policies
        self.decide_hook = decide_hook
        self._rules: dict[tuple[str, str], dict[str, FieldRule]] = {}

    def resolve(
        self,
        origin: str,
        entity: str,
        incoming: Mapping[str, Any],
        base: Mapping[str, Any] | None,
        fields: Mapping[str, Any] | None,
        clocks: Mapping[str, Clock] | None,
        ts: float | None,
    ) -> Outcome:
        """Resolve ``incoming`` from ``origin`` against the mirror's ``fields`` and ``clocks``.

        This runs once per record on every page, so it is written for speed: each field's
        :class:`FieldRule` is built once per origin, and a field equal to its base or to the
        mirror's value costs two dictionary reads.
        """
        outcome = Outcome()
        rules = self._rules.get((entity, origin))
        if rules is None:
            rules = self._rules[(entity, origin)] = {}
        if fields is None and base is None and self.decide_hook is None:
            return self._first(outcome, rules, origin, entity, incoming, ts)
        for name, value in incoming.items():
            seen = MISSING if base is None else base.get(name, MISSING)
            if seen is not MISSING and seen == value:
                continue  # not changed by origin since it last saw it: never a candidate
            have = MISSING if fields is None else fields.get(name, MISSING)
            rule = rules.get(name) or self._rule(rules, entity, origin, name)
            if rule.keyed and type(value) is dict:
                value = _merge_keys(value, seen, have)
                if value is None:
                    continue  # no key changed since origin last saw it
            merged = rule.counter and _whole(seen) and _whole(have) and _whole(value)
            if merged:
                value = have + (value - seen)  # see COUNTER_FIELDS
            if have is not MISSING and have == value:
                continue  # already the mirror's value
            current = None if have is MISSING else _current(have, clocks, name)
            outcome.decisions += 1
            decision = None
            if self.decide_hook is not None:
                have_value = None if current is None else current.value
                decision = self.decide_hook(entity, name, origin, have_value, value)
            if decision is None and merged and rule.counts_both:
                decision = FieldDecision.ACCEPT  # both writes are kept: no last writer
            if decision is None:
                if current is None:
                    decision = rule.first
                else:
                    decision = rule.policy.decide(origin, value, ts, current, seen)
            if decision is FieldDecision.ACCEPT:
                outcome.changed[name] = value
                outcome.clocks[name] = [origin, ts, 0, rule.rule]
            else:
                outcome.diverged = True
                if decision is FieldDecision.CONFLICT and current is not None:
                    outcome.conflicts.append((name, value, current))
                else:
                    outcome.rejected.append(name)
        return outcome

    def _first(
        self,
        outcome: Outcome,
        rules: dict[str, FieldRule],
        origin: str,
        entity: str,
        incoming: Mapping[str, Any],
        ts: float | None,
    ) -> Outcome:
        """:meth:`resolve` for a record neither the mirror nor ``origin`` held before (every
        record of a first sync): each field's policy gives its first answer. The same
        decisions as the general loop, which would find nothing to compare."""
        for name, value in incoming.items():
            rule = rules.get(name) or self._rule(rules, entity, origin, name)
            if rule.keyed and type(value) is dict and not value:
                continue  # an empty map is no value (see _merge_keys)
            outcome.decisions += 1
            if rule.first is FieldDecision.ACCEPT:
                outcome.changed[name] = value
                outcome.clocks[name] = [origin, ts, 0, rule.rule]
            else:
                outcome.diverged = True
                outcome.rejected.append(name)
        return outcome

    def _rule(self, rules: dict[str, FieldRule], entity: str, origin: str, name: str) -> FieldRule:
        policy = self.policies.for_field(entity, name)
        counter = name in COUNTER_FIELDS.get(entity, ())
        rule = rules[name] = FieldRule(
            policy=policy,
            rule=policy.rule,
            first=policy.first(origin),
            keyed=name in KEYED_FIELDS.get(entity, ()),
            counter=counter,
            counts_both=counter and isinstance(policy, LastWriterWins),
        )
        return rule


def _merge_keys(value: dict[str, Any], seen: Any, have: Any) -> dict[str, Any] | None:
    """The mirror's map with the keys ``origin`` changed since it last saw them; ``None`` when
    it changed none. Keys it does not send are left alone, so a one-language platform never
    erases the other languages, nor one catalog the attributes of another."""
    if type(seen) is not dict:  # a new map (the usual first sync): every key is a change
        if not value:
            return None
        return value if type(have) is not dict else {**have, **value}
    changed = {key: item for key, item in value.items() if seen.get(key, MISSING) != item}
    if not changed:
        return None
    current = have if type(have) is dict else {}
    return {**current, **changed}


def _current(value: Any, clocks: Mapping[str, Clock] | None, name: str) -> Current:
    clock = clocks.get(name) if clocks else None
    if clock is None:
        return Current(value, "", None)
    return Current(value, clock[0], clock[1])


def _whole(value: Any) -> bool:
    return type(value) is int
