"""The policies of one configuration: a global default, a default per entity, and per field.

::

    [policies]
    default = "last_writer_wins"            # every field without a more specific rule

    [policies.product]
    default = { owner = "pim" }             # every product field ...
    cost_price = { owner = "inventory" }    # ... except these
    status = { priority = ["pim", "inventory"] }
    barcode = "manual"

A policy naming an unknown connection, entity or field, or a table that names two policies, is
refused at load with the table and key in the message.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import cache
from typing import Any

import attrs

from salync_core.conflicts.policies import LOCAL, LastWriterWins, Owner, Policy
from salync_core.errors import PolicyError
from salync_core.hints import did_you_mean
from salync_core.models import ENTITY_TYPES


class PolicySet:
    """Looks up the policy of any ``entity.field``."""

    def __init__(
        self,
        default: Policy | None = None,
        entities: Mapping[str, Policy] | None = None,
        fields: Mapping[tuple[str, str], Policy] | None = None,
    ) -> None:
        self.default: Policy = default if default is not None else LastWriterWins()
        self.entities = dict(entities or {})
        self.fields = dict(fields or {})
        self.for_field = cache(self._lookup)

    def _lookup(self, entity: str, field: str) -> Policy:
        found = self.fields.get((entity, field)) or self.entities.get(entity)
        return found or self.default

    def source(self, entity: str, field: str) -> str:
        """Where the field's policy was configured, for ``salync explain``."""
        if (entity, field) in self.fields:
            return f"[policies.{entity}] {field}"
        if entity in self.entities:
            return f"[policies.{entity}] default"
        return "[policies] default"

    def accepts_delete(self, entity: str, origin: str) -> bool:
        """A deletion is accepted from anyone, unless the entity as a whole has an owner."""
        owner = self.entities.get(entity)
        return not isinstance(owner, Owner) or owner.owner == origin

    @classmethod
    def from_config(
        cls,
        raw: Mapping[str, Any],
        connections: Collection[str],
        factories: Mapping[str, Callable[..., Policy]],
    ) -> PolicySet:
        """Build and validate the ``[policies]`` table."""
        known = set(connections) | {LOCAL}
        build = _Builder(factories, known)
        default = build.policy(raw["default"], "[policies] default") if "default" in raw else None
        entities: dict[str, Policy] = {}
        fields: dict[tuple[str, str], Policy] = {}
        for entity, table in raw.items():
            if entity == "default":
                continue
            where = f"[policies.{entity}]"
            if entity not in ENTITY_TYPES:
                raise PolicyError(
                    f"{where}: unknown entity {entity!r}{did_you_mean(entity, ENTITY_TYPES)} "
                    f"(known: {_names(ENTITY_TYPES)})"
                )
            if not isinstance(table, dict):
                raise PolicyError(f"{where}: expected a table of field policies")
            field_names = set(attrs.fields_dict(ENTITY_TYPES[entity])) - {"ref"}
            for field, spec in table.items():
                if field == "default":
                    entities[entity] = build.policy(spec, f"{where} default")
                elif field not in field_names:
                    raise PolicyError(
                        f"{where} {field}: {entity} has no field {field!r}"
                        f"{did_you_mean(field, field_names)} "
                        f"(fields: {_names(field_names)})"
                    )
                else:
                    fields[(entity, field)] = build.policy(spec, f"{where} {field}")
        return cls(default, entities, fields)


@attrs.define
class _Builder:
    factories: Mapping[str, Callable[..., Policy]]
    connections: set[str]

    def policy(self, spec: Any, where: str) -> Policy:
        name, kwargs = self._parse(spec, where)
        factory = self.factories.get(name)
        if factory is None:
            raise PolicyError(
                f"{where}: unknown policy {name!r}{did_you_mean(name, self.factories)} "
                f"(known: {_names(self.factories)})"
            )
        try:
            policy = factory(**kwargs)
        except PolicyError as exc:
            raise PolicyError(f"{where}: {exc}") from None
        except TypeError as exc:
            raise PolicyError(f"{where}: bad arguments for {name!r}: {exc}") from None
        for connection in policy.connections():
            if connection not in self.connections:
                raise PolicyError(
                    f"{where}: unknown connection {connection!r} "
                    f"(configured: {_names(self.connections)})"
                )
        return policy

    def _parse(self, spec: Any, where: str) -> tuple[str, dict[str, Any]]:
        if isinstance(spec, str):
            return spec, {}
        if not isinstance(spec, dict) or not spec:
            raise PolicyError(
                f'{where}: expected a policy name or a table such as {{owner = "pim"}}'
            )
        if "policy" in spec:
            rest = dict(spec)
            return str(rest.pop("policy")), rest
        named = [key for key in spec if key in self.factories]
        if len(named) != 1:
            hint = did_you_mean(next(iter(spec)), self.factories) if len(spec) == 1 else ""
            raise PolicyError(
                f"{where}: a field takes exactly one policy, got {sorted(spec)}{hint}"
            )
        return named[0], {
            named[0]: spec[named[0]],
            **{k: v for k, v in spec.items() if k != named[0]},
        }


def _names(items: Collection[str]) -> str:
    return ", ".join(sorted(items)) or "none"
