"""Field policies and the three-way resolver, without a database."""

from __future__ import annotations

from typing import Any

import pytest

from salync_core.conflicts.builtin import _owner, _priority
from salync_core.conflicts.policies import (
    MISSING,
    Current,
    FieldDecision,
    LastWriterWins,
    Manual,
    Owner,
    Priority,
)
from salync_core.conflicts.policy_set import PolicySet
from salync_core.conflicts.resolver import Resolver
from salync_core.errors import PolicyError
from salync_core.plugins import policy_factories

ACCEPT, REJECT, CONFLICT = FieldDecision.ACCEPT, FieldDecision.REJECT, FieldDecision.CONFLICT


@pytest.mark.parametrize(
    ("policy", "origin", "ts", "current", "base", "expected"),
    [
        pytest.param(
            Owner("pim"),
            "pim",
            1.0,
            Current("a", "erp", 9.0),
            MISSING,
            ACCEPT,
            id="owner-accepts-its-own",
        ),
        pytest.param(
            Owner("pim"),
            "erp",
            9.0,
            Current("a", "pim", 1.0),
            MISSING,
            REJECT,
            id="owner-rejects-others",
        ),
        pytest.param(
            Owner("pim"), "erp", 1.0, None, MISSING, REJECT, id="owner-rejects-others-even-first"
        ),
        pytest.param(
            Priority(("erp", "pim")),
            "erp",
            1.0,
            Current("a", "pim", 9.0),
            MISSING,
            ACCEPT,
            id="priority-higher-wins",
        ),
        pytest.param(
            Priority(("erp", "pim")),
            "pim",
            9.0,
            Current("a", "erp", 1.0),
            MISSING,
            REJECT,
            id="priority-lower-loses",
        ),
        pytest.param(
            Priority(("erp", "pim")),
            "pim",
            1.0,
            Current(None, "erp", 1.0),
            MISSING,
            ACCEPT,
            id="priority-fills-an-empty-value",
        ),
        pytest.param(
            LastWriterWins(), "b", 2.0, Current("x", "a", 1.0), MISSING, ACCEPT, id="lww-newer-wins"
        ),
        pytest.param(
            LastWriterWins(),
            "b",
            1.0,
            Current("x", "a", 2.0),
            MISSING,
            REJECT,
            id="lww-older-loses",
        ),
        pytest.param(
            LastWriterWins(),
            "b",
            1.0,
            Current("x", "a", 1.0),
            MISSING,
            ACCEPT,
            id="lww-tie-greater-name",
        ),
        pytest.param(
            LastWriterWins(),
            "a",
            1.0,
            Current("x", "b", 1.0),
            MISSING,
            REJECT,
            id="lww-tie-lesser-name",
        ),
        pytest.param(
            Manual(), "b", 1.0, Current("x", "a", 1.0), "x", ACCEPT, id="manual-nobody-else-changed"
        ),
        pytest.param(
            Manual(), "b", 1.0, Current("y", "a", 1.0), "x", CONFLICT, id="manual-concurrent-change"
        ),
        pytest.param(Manual(), "b", 1.0, None, MISSING, ACCEPT, id="manual-first-value"),
    ],
)
def test_policy_decisions(
    policy: Any, origin: str, ts: float, current: Current | None, base: Any, expected: FieldDecision
) -> None:
    assert policy.decide(origin, "new", ts, current, base) is expected


def test_the_owner_never_receives_its_own_field() -> None:
    assert not Owner("pim").receives("pim")
    assert Owner("pim").receives("inventory")


def resolve(
    resolver: Resolver,
    origin: str,
    incoming: dict[str, Any],
    base: dict[str, Any] | None,
    fields: dict[str, Any] | None,
    clocks: dict[str, Any] | None = None,
    ts: float = 1.0,
) -> Any:
    return resolver.resolve(origin, "product", incoming, base, fields, clocks, ts)


def test_a_field_equal_to_its_base_is_never_a_candidate() -> None:
    resolver = Resolver(PolicySet())
    outcome = resolve(
        resolver,
        "pim",
        {"title": {"en": "Old"}},
        {"title": {"en": "Old"}},
        {"title": {"en": "New"}},
        {"title": ["erp", 0.0, 1, "lww"]},
        ts=99.0,
    )
    assert outcome.changed == {}
    assert outcome.decisions == 0


def test_a_changed_field_is_decided_by_its_policy() -> None:
    policies = PolicySet(fields={("product", "cost_price"): Owner("erp")})
    resolver = Resolver(policies)
    outcome = resolve(
        resolver,
        "pim",
        {"cost_price": "2", "barcode": "1"},
        None,
        {"cost_price": "1"},
        {"cost_price": ["erp", 0.0, 1, "owner:erp"]},
    )
    assert outcome.changed == {"barcode": "1"}
    assert outcome.diverged
    assert outcome.clocks["barcode"][:2] == ["pim", 1.0]


def test_a_plugin_hook_decides_before_the_policy() -> None:
    def hook(
        entity: str, field: str, origin: str, current: Any, incoming: Any
    ) -> FieldDecision | None:
        return REJECT if field == "barcode" else None

    resolver = Resolver(PolicySet(), hook)
    outcome = resolve(resolver, "pim", {"barcode": "2", "currency": "EUR"}, None, None)
    assert outcome.changed == {"currency": "EUR"}


def test_manual_conflicts_keep_the_value_and_are_reported() -> None:
    resolver = Resolver(PolicySet(default=Manual()))
    outcome = resolve(
        resolver,
        "b",
        {"barcode": "b"},
        {"barcode": "x"},
        {"barcode": "a"},
        {"barcode": ["a", 1.0, 2, "manual"]},
    )
    assert outcome.changed == {}
    assert [(f, v, c.origin) for f, v, c in outcome.conflicts] == [("barcode", "b", "a")]


class TestPolicyConfig:
    def build(self, raw: dict[str, Any]) -> PolicySet:
        return PolicySet.from_config(raw, {"pim", "inventory"}, policy_factories())

    def test_a_full_configuration(self) -> None:
        policies = self.build(
            {
                "default": "last_writer_wins",
                "product": {
                    "default": {"owner": "pim"},
                    "cost_price": {"owner": "inventory"},
                    "barcode": "manual",
                    "status": {"priority": ["pim", "local"]},
                },
            }
        )
        assert policies.for_field("product", "title") == Owner("pim")
        assert policies.for_field("product", "cost_price") == Owner("inventory")
        assert policies.for_field("product", "barcode") == Manual()
        assert policies.for_field("category", "title") == LastWriterWins()
        assert policies.source("product", "title") == "[policies.product] default"

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            pytest.param(
                {"product": {"title": {"owner": "crm"}}},
                "unknown connection 'crm'",
                id="unknown-connection",
            ),
            pytest.param(
                {"product": {"colour": "manual"}},
                "product has no field 'colour'",
                id="unknown-field",
            ),
            pytest.param(
                {"gadget": {"title": "manual"}}, "unknown entity 'gadget'", id="unknown-entity"
            ),
            pytest.param(
                {"product": {"title": {"owner": ["pim", "inventory"]}}},
                "exactly one connection",
                id="two-owners",
            ),
            pytest.param(
                {"product": {"title": {"owner": "pim", "priority": ["pim"]}}},
                "exactly one policy",
                id="two-policies",
            ),
            pytest.param({"default": "newest"}, "unknown policy 'newest'", id="unknown-policy"),
            pytest.param(
                {"product": {"title": {"priority": ["pim", "pim"]}}}, "twice", id="priority-repeats"
            ),
        ],
    )
    def test_bad_policies_are_refused_at_load(self, raw: dict[str, Any], message: str) -> None:
        with pytest.raises(PolicyError, match=message):
            self.build(raw)


def test_policy_factories_validate_their_arguments() -> None:
    with pytest.raises(PolicyError):
        _owner(owner=3)
    with pytest.raises(PolicyError):
        _priority(priority=[])


def test_a_one_language_platform_changes_only_its_language() -> None:
    resolver = Resolver(PolicySet())
    mirror = {"title": {"en": "Old", "es": "Viejo"}}

    edited = resolve(resolver, "shop", {"title": {"en": "New"}}, {"title": {"en": "Old"}}, mirror)
    reread = resolve(resolver, "shop", {"title": {"en": "Old"}}, {"title": {"en": "Old"}}, mirror)

    assert edited.changed == {"title": {"en": "New", "es": "Viejo"}}
    assert reread.changed == {}
    assert reread.decisions == 0


def test_a_stock_count_merges_by_difference_whoever_wrote_last() -> None:
    """10 held by the shop, 15 set here later (a restock of 5), the shop reads 8 (a sale of
    2 made earlier): both count, 13; an owner still decides."""
    lww = Resolver(PolicySet())
    owned = Resolver(PolicySet(fields={("stock_level", "on_hand"): Owner("erp")}))
    clocks = {"on_hand": ["local", 200.0, 1, "last_writer_wins"]}

    merged = lww.resolve(
        "shop", "stock_level", {"on_hand": 8}, {"on_hand": 10}, {"on_hand": 15}, clocks, 100.0
    )
    refused = owned.resolve(
        "shop", "stock_level", {"on_hand": 8}, {"on_hand": 10}, {"on_hand": 15}, clocks, 100.0
    )

    assert merged.changed == {"on_hand": 13}
    assert refused.changed == {}
