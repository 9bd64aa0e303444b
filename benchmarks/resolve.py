"""Field decisions per second: 100k incoming records of 10 fields under mixed policies.

    python benchmarks/resolve.py [--records 100000]

Every field of every record is a candidate (its value differs from what the connection last
held and from the mirror), so each one reaches a policy: owner, priority, last-writer-wins and
manual are all in play. Target (issue 4): >= 200,000 field decisions per second.
"""

from __future__ import annotations

import argparse
import random
import time

from harness import table, write_section

from salync_core.conflicts.policies import LastWriterWins, Manual, Owner, Priority
from salync_core.conflicts.policy_set import PolicySet
from salync_core.conflicts.resolver import Resolver

FIELDS = {
    "title": Owner("pim"),
    "description": Owner("pim"),
    "category_refs": Owner("pim"),
    "cost_price": Owner("inventory"),
    "sell_price": Priority(("inventory", "pim")),
    "status": Priority(("pim", "inventory")),
    "barcode": Manual(),
    "currency": LastWriterWins(),
    "supplier_ref": LastWriterWins(),
    "low_stock_threshold": LastWriterWins(),
}


def workload(records: int, seed: int = 1) -> list[tuple[str, dict, dict, dict, dict, float]]:
    rng = random.Random(seed)
    origins = ("pim", "inventory", "local")
    work = []
    for n in range(records):
        origin = rng.choice(origins)
        current = {name: f"mirror-{n}-{name}" for name in FIELDS}
        clocks = {name: [rng.choice(origins), rng.random() * 1e9, n, "x"] for name in FIELDS}
        base = {name: f"old-{n}-{name}" for name in FIELDS}
        incoming = {name: f"new-{n}-{name}" for name in FIELDS}
        work.append((origin, incoming, base, current, clocks, rng.random() * 1e9))
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    resolver = Resolver(PolicySet(fields={("product", f): p for f, p in FIELDS.items()}))
    work = workload(args.records)
    decisions = accepted = conflicts = 0
    started = time.perf_counter()
    for origin, incoming, base, current, clocks, ts in work:
        outcome = resolver.resolve(origin, "product", incoming, base, current, clocks, ts)
        decisions += outcome.decisions
        accepted += len(outcome.changed)
        conflicts += len(outcome.conflicts)
    seconds = time.perf_counter() - started
    rows = [
        [
            f"{args.records:,}",
            f"{decisions:,}",
            f"{accepted:,}",
            f"{conflicts:,}",
            f"{seconds:.2f}",
            f"{decisions / seconds:,.0f}",
        ]
    ]
    text = table(
        ["records", "field decisions", "accepted", "conflicts", "seconds", "decisions/s"], rows
    )
    print(text)
    if not args.no_write:
        write_section("resolve", text)


if __name__ == "__main__":
    main()
