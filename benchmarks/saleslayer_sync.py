"""Sales Layer 2.0: a full sync of N products, then an incremental sync after 1% changed.

    python benchmarks/saleslayer_sync.py              # 10k and 100k, writes README.md
    python benchmarks/saleslayer_sync.py --sizes 20000

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
    import anyio

    from salync_core import Engine

    async def go() -> dict[str, object]:
        async with Engine.open(config) as engine:
            started = time.perf_counter()
            (report,) = await engine.sync(full=mode == "full")
            seconds = time.perf_counter() - started
        assert report.ok, report.problems
        totals = report.totals()
        return {
            "seconds": seconds,
            "records": totals.received,
            "changed": totals.changed,
            "requests": report.requests,
            "rss_mb": peak_rss_mb(),
        }

    print(json.dumps(anyio.run(go, backend="asyncio")))


def measure(size: int, changed_share: float) -> list[object]:
    from salync_core.testing.config import write_config

    options = ["--products", str(size), "--seed", "1", "--api-key", KEY, "--no-rate-limit"]
    with emulator("saleslayer", *options) as url, tempfile.TemporaryDirectory() as tmp:
        connection = {
            "plugin": "saleslayer",
            "base_url": url,
            "api_key": KEY,
            "rate_limits": "none",
        }
        config = str(write_config(Path(tmp), {"pim": connection}))
        full = run_child(Path(__file__), "full", config)
        product_requests = admin(url, "stats")["by_route"].get("GET /rest/Catalog/Products", 0)
        admin(url, "touch", {"count": int(size * changed_share), "seed": 2})
        admin(url, "reset-stats", {})
        incremental = run_child(Path(__file__), "incremental", config)
    return [
        f"{size:,}",
        f"{full['records']:,}",
        f"{full['seconds']:.2f}",
        f"{full['records'] / full['seconds']:,.0f}",
        f"{size / full['seconds']:,.0f}",
        f"{product_requests} (ceil = {math.ceil(size / 100)})",
        f"{full['rss_mb']:.0f}",
        f"{incremental['changed']:,}",
        f"{incremental['seconds']:.3f}",
        f"{incremental['requests']}",
        f"{incremental['rss_mb']:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--no-write", action="store_true", help="Do not update README.md.")
    args = parser.parse_args()
    rows = [measure(size, args.changed) for size in args.sizes]
    headers = [
        "products",
        "records (with variants)",
        "full s",
        "records/s",
        "products/s",
        "product requests",
        "full RSS MB",
        "incremental changed",
        "incremental s",
        "incremental requests",
        "incremental RSS MB",
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
