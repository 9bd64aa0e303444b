"""Sales Layer 2.0: a full sync of N products, then an incremental sync after 1% changed,
by the engine and by the floor (benchmarks/floor.py, a bare client) against the same emulator.

    python benchmarks/saleslayer_sync.py              # 10k and 100k, heavy catalog, README.md
    python benchmarks/saleslayer_sync.py --sizes 20000 --profile standard

The emulator runs in its own process with its rate limit off (the connection's declared limit
is lifted too: `rate_limits = "none"`). Each sync runs in a fresh child process, so its peak
RSS is the engine's alone. Targets (issue 2): >= 40,000 records/s on a full sync of 100k
products, an incremental sync of 1,000 changes in <= 0.3 s, products requests = ceil(N/100)
plus at most one, peak RSS under 150 MB and flat from 10k to 100k.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from harness import admin, emulator, peak_rss_mb, run_child, table, write_section

KEY = "bench-key"


def child(mode: str, config: str) -> None:
    import resource

    import anyio

    from salync_core import Engine

    async def go() -> dict[str, object]:
        async with Engine.open(config) as engine:
            started, cpu = time.perf_counter(), time.process_time()
            if mode == "reconcile":
                (report,) = await engine.reconcile()
            else:
                (report,) = await engine.sync(full=mode == "full")
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        # the engine's worker processes (page writer, mapper pool) are joined by now
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert report.ok, report.problems
        totals = report.totals()
        return {
            "seconds": seconds,
            "cpu": cpu + children.ru_utime + children.ru_stime,
            "cpu_workers": children.ru_utime + children.ru_stime,
            "records": totals.received,
            "changed": totals.changed,
            "requests": report.requests,
            "rss_mb": peak_rss_mb(),
            "rss_workers_mb": children.ru_maxrss / 1024,
        }

    print(json.dumps(anyio.run(go, backend="asyncio")))


def mirror_bytes(path: Path) -> int:
    """The database file and its write-ahead log, as the disk holds them after the run."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def measure(size: int, changed_share: float, profile: str) -> list[object]:
    from salync_core.testing.config import write_config

    options = ["--products", str(size), "--seed", "1", "--api-key", KEY, "--no-rate-limit"]
    options += ["--profile", profile]
    floor = Path(__file__).with_name("floor.py")
    with emulator("saleslayer", *options) as url, tempfile.TemporaryDirectory() as tmp:
        connection = {
            "plugin": "saleslayer",
            "base_url": url,
            "api_key": KEY,
            "rate_limits": "none",
            "attributes": "*",  # every custom field, as the floor stores the whole item
        }
        config = str(write_config(Path(tmp), {"pim": connection}))
        floor_db = str(Path(tmp) / "floor.db")
        full = run_child(Path(__file__), "full", config)
        product_requests = admin(url, "stats")["by_route"].get("GET /rest/Catalog/Products", 0)
        floor_full = run_child(floor, "full", url, KEY, floor_db)
        engine_mb = mirror_bytes(Path(tmp) / "salync.db") / 1e6
        floor_mb = mirror_bytes(Path(floor_db)) / 1e6
        admin(url, "touch", {"count": int(size * changed_share), "seed": 2})
        admin(url, "reset-stats", {})
        incremental = run_child(Path(__file__), "incremental", config)
        floor_incremental = run_child(floor, "incremental", url, KEY, floor_db)
        admin(url, "reset-stats", {})
        reconcile = run_child(Path(__file__), "reconcile", config)
        scans = admin(url, "stats")["by_route"]
        categories = admin(url, "catalog/summary")["categories"]["live"]
    assert floor_full["records"] == full["records"], (floor_full, full)

    def ratio(engine: float, bare: float) -> str:
        return f"{engine / bare:.1f}x"

    return [
        f"{size:,}",
        f"{full['records']:,}",
        f"{full['seconds']:.2f}",
        f"{floor_full['seconds']:.2f}",
        ratio(full["seconds"], floor_full["seconds"]),
        f"{full['cpu']:.1f} (workers {full['cpu_workers']:.1f}) / {floor_full['cpu']:.1f}",
        f"{full['records'] / full['seconds']:,.0f}",
        f"{product_requests} (ceil = {math.ceil(size / 100)})",
        f"{incremental['changed']:,}",
        f"{incremental['seconds']:.3f}",
        f"{floor_incremental['seconds']:.3f}",
        ratio(incremental["seconds"], floor_incremental["seconds"]),
        f"{incremental['requests']} / {floor_incremental['requests']}",
        f"{engine_mb:.1f}",
        f"{floor_mb:.1f}",
        ratio(engine_mb, floor_mb),
        f"{full['rss_mb']:.0f} (workers {full['rss_workers_mb']:.0f})",
        f"{floor_full['rss_mb']:.0f}",
        ratio(full["rss_mb"], floor_full["rss_mb"]),
        f"{sum(scans.values())} (products {scans.get('GET /rest/Catalog/Products', 0)}, "
        f"categories {scans.get('GET /rest/Catalog/Categories', 0)}, "
        f"variants {scans.get('GET /rest/Catalog/Variants', 0)}; target "
        f"{math.ceil(size / 100) + math.ceil(categories / 100)}) in {reconcile['seconds']:.2f} s",
        f"{reconcile['rss_mb']:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--profile", default="heavy", help="The emulator's catalog profile.")
    parser.add_argument("--no-write", action="store_true", help="Do not update README.md.")
    args = parser.parse_args()
    rows = [measure(size, args.changed, args.profile) for size in args.sizes]
    headers = [
        "products",
        "records (with variants)",
        "full s: engine",
        "floor",
        "engine / floor",
        "full CPU s: engine / floor",
        "engine records/s",
        "product requests",
        "incremental changed",
        "incremental s: engine",
        "floor",
        "engine / floor",
        "incremental requests: engine / floor",
        "mirror MB: engine",
        "floor",
        "engine / floor",
        "full peak RSS MB: engine",
        "floor",
        "engine / floor",
        "reconcile requests",
        "reconcile peak RSS MB",
    ]
    text = table(headers, rows)
    print(text)
    if not args.no_write:
        write_section("saleslayer", text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
