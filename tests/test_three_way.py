"""Three-way resolution: a value a platform merely re-sends (equal to what it last held, its
base) never overrides a newer edit made elsewhere, even when the platform's record as a whole
is newer. Checked on the resolver alone, as a property, and end to end on the emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from salync_saleslayer.emulator import SalesLayerEmulator
from support import sl_write

from salync_core import Engine
from salync_core.conflicts.policies import LastWriterWins, Manual, Owner, Priority
from salync_core.conflicts.policy_set import PolicySet
from salync_core.conflicts.resolver import Resolver

HOST_EDIT = 100.0
"""When the host app edited the mirror's value (its clock's source time)."""
LATER = 200.0
"""The platform's record is newer than the host edit: another of its fields changed."""


def resolve_product(
    policy: Any,
    incoming: dict[str, Any],
    base: dict[str, Any],
    mirror: dict[str, Any],
) -> Any:
    clocks = {name: ["local", HOST_EDIT, 7, policy.rule] for name in mirror}
    resolver = Resolver(PolicySet(default=policy))
    return resolver.resolve("pim", "product", incoming, base, mirror, clocks, LATER)


# the resolver alone --------------------------------------------------------------------------


def test_a_re_sent_stale_value_never_overrides_a_newer_edit() -> None:
    outcome = resolve_product(
        LastWriterWins(),
        incoming={"barcode": "111", "status": "inactive"},
        base={"barcode": "111", "status": "active"},
        mirror={"barcode": "222", "status": "active"},
    )

    assert outcome.changed == {"status": "inactive"}, "only what the platform changed"
    assert outcome.decisions == 1


def test_a_re_sent_locale_never_overrides_a_newer_edit_of_that_locale() -> None:
    outcome = resolve_product(
        LastWriterWins(),
        incoming={"title": {"en": "Renamed", "fr": "Vieux"}},
        base={"title": {"en": "Old", "fr": "Vieux"}},
        mirror={"title": {"en": "Old", "fr": "Nouveau"}},
    )

    assert outcome.changed == {"title": {"en": "Renamed", "fr": "Nouveau"}}


def test_a_re_sent_attribute_never_overrides_a_newer_edit_of_that_attribute() -> None:
    outcome = resolve_product(
        LastWriterWins(),
        incoming={"attributes": {"prod_brand": "Acme", "prod_weight": 2}},
        base={"attributes": {"prod_brand": "Acme", "prod_weight": 1}},
        mirror={"attributes": {"prod_brand": "Host brand", "prod_weight": 1}},
    )

    assert outcome.changed == {"attributes": {"prod_brand": "Host brand", "prod_weight": 2}}


POLICIES = st.sampled_from([LastWriterWins(), Manual(), Owner("pim"), Priority(("pim", "local"))])
VALUES = st.sampled_from(["a", "b", "c"])
LOCALES = st.dictionaries(st.sampled_from(["en", "es", "fr"]), VALUES, max_size=3)


def test_a_new_record_from_a_connection_that_does_not_own_a_field_leaves_it_out() -> None:
    resolver = Resolver(
        PolicySet(default=LastWriterWins(), fields={("product", "status"): Owner("erp")})
    )

    outcome = resolver.resolve(
        "pim", "product", {"barcode": "111", "status": "active"}, None, None, None, LATER
    )

    assert outcome.changed == {"barcode": "111"}
    assert outcome.rejected == ["status"]
    assert outcome.diverged, "pim holds a status the mirror did not take: it is pushed to"


NEW_FIELDS = st.dictionaries(
    st.sampled_from(["barcode", "status", "title", "attributes", "quantity"]),
    st.one_of(VALUES, LOCALES, st.integers(0, 5)),
)


@given(policy=POLICIES, incoming=NEW_FIELDS, origin=st.sampled_from(["pim", "local", "shop"]))
def test_property_a_new_record_is_decided_as_the_general_loop_would(
    policy: Any, incoming: dict[str, Any], origin: str
) -> None:
    """A record neither the mirror nor its origin held takes a shorter path in the resolver;
    a decide hook that never answers forces the general one, which must agree."""
    policies = PolicySet(default=LastWriterWins(), fields={("product", "status"): policy})
    fast = Resolver(policies).resolve(origin, "product", incoming, None, None, None, LATER)
    general = Resolver(policies, decide_hook=lambda *_: None).resolve(
        origin, "product", incoming, None, None, None, LATER
    )

    assert fast == general


@given(policy=POLICIES, base=VALUES, mirror=VALUES)
def test_property_a_value_equal_to_its_base_is_never_applied(
    policy: Any, base: str, mirror: str
) -> None:
    outcome = resolve_product(policy, {"barcode": base}, {"barcode": base}, {"barcode": mirror})

    assert "barcode" not in outcome.changed
    assert not outcome.conflicts
    assert outcome.decisions == 0


@given(policy=POLICIES, incoming=LOCALES, base=LOCALES, mirror=LOCALES)
def test_property_a_locale_equal_to_its_base_keeps_the_mirrors_value(
    policy: Any, incoming: dict[str, str], base: dict[str, str], mirror: dict[str, str]
) -> None:
    outcome = resolve_product(policy, {"title": incoming}, {"title": base}, {"title": mirror})

    merged = outcome.changed.get("title", mirror)
    for locale, value in incoming.items():
        if base.get(locale) == value:
            assert merged.get(locale) == mirror.get(locale), locale
    for locale in mirror.keys() - incoming.keys():
        assert merged[locale] == mirror[locale], "a locale not sent is never erased"


# end to end ----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
async def test_a_platform_re_reading_its_stale_values_keeps_the_hosts_newer_edits(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path], full: bool
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        ref = "PRD-000003"
        before = engine.get("product", ref)
        host_status = "review" if before.status != "review" else "draft"
        await engine.upsert(
            "product",
            ref,
            {
                "status": host_status,
                "title": {"fr": "Titre de l'hôte"},
                "attributes": {"prod_brand": "Host brand"},
            },
        )
        saleslayer.clock.advance(60)  # the PIM's record is now newer than the host's edit
        renamed = {"prod_title": {"en": "Renamed in the PIM"}}
        pim_id = saleslayer.product_by_ref(ref)["prod_id"]
        assert await sl_write(saleslayer.base_url, "PATCH", f"/Products({pim_id})", renamed) == 204

        (report,) = await engine.sync(full=full)  # re-sends its stale status, fr, brand

        assert report.ok, report.problems
        product = engine.get("product", ref)
        assert product.title["en"] == "Renamed in the PIM", "the PIM's own change is taken"
        assert product.title["fr"] == "Titre de l'hôte"
        assert product.title["es"] == before.title["es"]
        assert product.status == host_status
        assert product.attributes["prod_brand"] == "Host brand"
