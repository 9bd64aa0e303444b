"""Push: 10,000 products edited locally, delivered in as few requests as the batch size allows.

    python benchmarks/push.py                      # 1k and 10k, Sales Layer and Salync
    python benchmarks/push.py --products 2000 --platforms saleslayer --no-write

Target (issue: "pushing 10k changed products to an emulator with no more requests than the
platform's batch size allows"): write requests = ceil(edits / push_batch_size), every edit
acknowledged; a second push sends nothing; reading the pushed values back changes no pushed
field (echo suppression).

How the numbers are produced, per platform: its emulator runs in its own process with its rate
limit off (``--no-rate-limit``; the connection lifts the declared limits too: ``rate_limits =
"none"``) and the connection pushes products (``push = ["product"]``). One child process:

1. runs a full sync of every stream (it ends with a push step, which must find nothing to send);
2. resets the emulator's counters and edits every product locally in one loop of
   ``engine.upsert("product", ref, {FIELD: value})`` (a value each product does not hold yet;
   the default policy, last-writer-wins, accepts it from ``local``);
3. times ``engine.push()``; the emulator's ``/_emulator/stats`` ``by_route`` gives the write
   requests (every route that is not a GET) and the total, the report gives the pushed count;
4. calls ``engine.push()`` again and counts the requests the emulator saw (expected 0);
5. syncs again (incremental) and reads the change log it wrote: records changed, and how many
   of those changes touch the pushed field (expected 0: the values read back equal what the
   connection was last sent). The platform stamps its own modification time on every write,
   so the records do change, in ``modified_at`` only; the table says which fields changed.

Sales Layer 2.0 writes one product per call (``PATCH /Products(id)``, batch size 1) and takes
``status``; Salync writes one product per call (``PATCH /products/{id}``, batch size 1), on the
Pro plan, and takes ``low_stock_threshold`` (it documents no bulk write). ``saleslayer-1.18`` is
Sales Layer's documented bulk write: API 1.18 imports up to 50,000 items a call (one ``POST``
plus the polls of its tracking URL), here of the English ``title``.

"CPU ms a push" is the CPU time (user + system) the engine process spent in ``engine.push()``
and the emulator process over the same interval, each divided by the pushes: steadier than
pushes/s on a busy machine, and what a host serving many accounts pays.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import frozen
from harness import admin, run_child, table, write_section
from harness import emulator_process as emulator

KEY = "bench-key"
CONNECTION = "target"


def flip_status(record: dict[str, Any]) -> str:
    return "inactive" if record.get("status") == "active" else "active"


def raise_threshold(record: dict[str, Any]) -> int:
    return int(record.get("low_stock_threshold") or 0) + 1


def edit_title(record: dict[str, Any]) -> dict[str, str]:
    return {"en": f"Edited {record['ref']}"}


@frozen
class Target:
    """A platform, how its emulator and connection are set up, and the field edited."""

    plugin: str
    emulator_options: tuple[str, ...]
    connection: dict[str, Any]
    field: str
    new_value: Callable[[dict[str, Any]], Any]


TARGETS = {
    "saleslayer": Target("saleslayer", ("--no-rate-limit",), {}, "status", flip_status),
    "salync": Target(
        "salync",
        ("--plan", "pro", "--no-rate-limit"),
        {"plan": "pro"},
        "low_stock_threshold",
        raise_threshold,
    ),
    "saleslayer-1.18": Target(  # the documented bulk write: one import call per 50,000 items
        "saleslayer",
        ("--api", "1.18"),
        {
            "api": "1.18",
            "connector_code": "CN118EXPORT",
            "secret_key": "sl-118-export-secret",
            "import_code": "CN118IMPORT",
            "import_secret": "sl-118-import-secret",
            "import_poll_seconds": 0.2,
        },
        "title",
        edit_title,
    ),
}


# the child: sync, edit, push, push again, re-sync ------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def take_stats(url: str) -> dict[str, Any]:
    """The emulator's counters since the last call, then reset."""
    stats: dict[str, Any] = admin(url, "stats")
    admin(url, "reset-stats", {})
    return stats


def write_requests(stats: dict[str, Any]) -> int:
    return sum(n for route, n in stats["by_route"].items() if not route.startswith("GET "))


async def edit_all(engine: Any, target: Target) -> tuple[int, float]:
    """Edit every product once; returns (edits recorded, seconds)."""
    products = list(engine.records("product"))
    started = time.perf_counter()
    edits = 0
    for record in products:
        seq = await engine.upsert(
            "product", record["ref"], {target.field: target.new_value(record)}
        )
        edits += seq is not None
    return edits, time.perf_counter() - started


async def changes_after(engine: Any, seq: int) -> Counter[str]:
    """Fields changed by the connection after ``seq``: how many changes touched each."""
    fields: Counter[str] = Counter()
    async for change in engine.changes(seq, entity="product"):
        if change.origin == CONNECTION:
            fields.update(list(change.fields or {}))
            fields["(records)"] += 1
    return fields


class PlanTimer:
    """Times the outbox planning inside ``engine.push()`` (a wrapper around the core's
    ``outbox.plan``; measurement only, left out if the core no longer has that function)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def install(self) -> None:
        from salync_core.engine import outbox

        plan = getattr(outbox, "plan", None)
        if plan is None:
            self.seconds = math.nan
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return plan(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        outbox.plan = timed


async def last_seq(engine: Any) -> int:
    seq = 0
    async for change in engine.changes(0):
        seq = change.seq
    return seq


def child(plugin: str, config: str, url: str, emulator_pid: int) -> None:
    import anyio

    from salync_core import Engine, event_loop, plugins

    target = TARGETS[plugin]
    planning = PlanTimer()

    async def go() -> dict[str, Any]:
        async with Engine.open(config) as engine:
            first = await engine.sync(full=True)
            assert all(r.ok for r in first), [r.problems for r in first]
            take_stats(url)
            edits, edit_seconds = await edit_all(engine, target)
            planning.install()
            emulator_cpu = cpu_seconds(emulator_pid)
            engine_cpu = time.process_time()
            started = time.perf_counter()
            (push,) = await engine.push()
            push_seconds = time.perf_counter() - started
            engine_cpu = time.process_time() - engine_cpu
            emulator_cpu = cpu_seconds(emulator_pid) - emulator_cpu
            pushed_stats = take_stats(url)
            (again,) = await engine.push()
            again_stats = take_stats(url)
            before = await last_seq(engine)
            resync = await engine.sync()
            changed = await changes_after(engine, before)
            resync_stats = admin(url, "stats")
        for report in (push, again, *resync):
            assert report.ok, report.problems
        return {
            "batch_size": plugins.platform(target.plugin)
            .for_connection(target.connection)
            .push_batch_size,
            "initial_pushed": sum(r.pushed for r in first),
            "edits": edits,
            "edit_seconds": edit_seconds,
            "pushed": push.pushed,
            "push_failed": push.push_failed,
            "push_seconds": push_seconds,
            "plan_seconds": planning.seconds,
            "engine_cpu": engine_cpu,
            "emulator_cpu": emulator_cpu,
            "push_requests": pushed_stats["requests"],
            "write_requests": write_requests(pushed_stats),
            "write_routes": [r for r in pushed_stats["by_route"] if not r.startswith("GET ")],
            "again_pushed": again.pushed,
            "again_requests": again_stats["requests"],
            "resync_requests": resync_stats["requests"],
            "resync_pushed": sum(r.pushed for r in resync),
            "resync_changed": sum(r.totals().changed for r in resync),
            "resync_fields": dict(changed),
        }

    print(
        json.dumps(anyio.run(go, backend="asyncio", backend_options=event_loop.backend_options()))
    )


# the parent: emulator, table ----------------------------------------------------------------


def measure(plugin: str, products: int) -> dict[str, Any]:
    from salync_core.testing.config import write_config

    target = TARGETS[plugin]
    keyed = "api" not in target.connection  # API 1.18 signs with connector codes instead
    options = ["--products", str(products), "--seed", "1", *(["--api-key", KEY] * keyed)]
    emulated = emulator(target.plugin, *options, *target.emulator_options)
    with emulated as (url, pid), tempfile.TemporaryDirectory() as tmp:
        connection = {
            "plugin": target.plugin,
            "base_url": url,
            **({"api_key": KEY} if keyed else {}),
            "rate_limits": "none",
            "push": ["product"],
            **target.connection,
        }
        config = write_config(Path(tmp), {CONNECTION: connection})
        result = run_child(Path(__file__), plugin, str(config), url, str(pid))
    return {"plugin": plugin, "products": products, **result}


def row(result: dict[str, Any]) -> list[object]:
    target = TARGETS[result["plugin"]]
    expected = math.ceil(result["edits"] / result["batch_size"])
    fields = result["resync_fields"]
    other = sorted(f for f in fields if f not in ("(records)", target.field))
    return [
        result["plugin"],
        f"{result['products']:,}",
        f"{result['edits']:,} ({target.field})",
        f"{result['edit_seconds']:.2f}",
        f"{result['pushed']:,} ({result['push_failed']})",
        f"{result['write_requests']:,} ({', '.join(result['write_routes'])})",
        f"{expected:,} (batch size {result['batch_size']})",
        f"{result['push_seconds']:.2f} ({result['plan_seconds']:.2f})",
        f"{result['pushed'] / result['push_seconds']:,.0f}",
        f"{1000 * result['engine_cpu'] / result['pushed']:.2f}"
        f" / {1000 * result['emulator_cpu'] / result['pushed']:.2f}",
        f"{result['again_requests']}",
        f"{result['resync_requests']}",
        f"{fields.get(target.field, 0)}",
        f"{fields.get('(records)', 0):,} ({', '.join(other) or 'none'})",
    ]


HEADERS = [
    "platform",
    "products",
    "local edits (field)",
    "edit s",
    "pushed (failed)",
    "write requests (route)",
    "expected ceil(edits / batch)",
    "push s (of which planning)",
    "pushes/s",
    "CPU ms a push: engine / emulator",
    "second push: requests",
    "re-sync: requests",
    "re-sync: changes to the pushed field",
    "re-sync: records changed (fields)",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument(
        "--salync-products",
        type=int,
        nargs="+",
        default=None,
        help="Salync catalog sizes (default: --products).",
    )
    parser.add_argument("--platforms", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    parser.add_argument("--verbose", action="store_true", help="Print each run's raw numbers.")
    parser.add_argument("--no-write", action="store_true", help="Do not update README.md.")
    args = parser.parse_args()
    sizes = {"salync": args.salync_products or args.products}
    results = [
        measure(plugin, size)
        for plugin in args.platforms
        for size in sizes.get(plugin, args.products)
    ]
    if args.verbose:
        print(json.dumps(results, indent=1))
    text = table(HEADERS, [row(result) for result in results])
    print(text)
    if not args.no_write:
        write_section("push", text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
