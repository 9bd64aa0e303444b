"""Local edits in bulk: N ``engine.upsert`` calls against one ``engine.upsert_many`` of the
same N edits, and ``delete_many`` of N records, on a mirror holding N synced products.

    python benchmarks/local_edits.py                  # 10,000 edits, writes README.md
    python benchmarks/local_edits.py --products 2000 --no-write

The Sales Layer emulator (standard catalog, rate limit off) runs in its own process; one child
process syncs it, then edits every product's ``status`` once per way (one call per record,
then one batch that sets them all active), each edit a change the mirror records, and finally
deletes every product with one ``delete_many``. Target (issue 10 item 5): one transaction per
batch instead of one per record.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from harness import emulator, run_child, table, write_section

KEY = "bench-key"


def child(config: str) -> None:
    import anyio

    from salync_core import Engine

    async def go() -> dict[str, float | int]:
        async with Engine.open(config) as engine:
            (report,) = await engine.sync(full=True)
            assert report.ok, report.problems
            refs = sorted(record["ref"] for record in engine.records("product"))
            started = time.perf_counter()
            for ref in refs:
                await engine.upsert("product", ref, {"status": "review"})
            one_by_one = time.perf_counter() - started
            started = time.perf_counter()
            result = await engine.upsert_many(
                "product", {ref: {"status": "active"} for ref in refs}
            )
            batch = time.perf_counter() - started
            assert result.changed == len(refs), result
            started = time.perf_counter()
            deleted = await engine.delete_many("product", refs)
            deletes = time.perf_counter() - started
        return {
            "edits": len(refs),
            "upsert_s": one_by_one,
            "upsert_many_s": batch,
            "deleted": deleted,
            "delete_many_s": deletes,
        }

    print(json.dumps(anyio.run(go, backend="asyncio")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true", help="Do not update README.md.")
    args = parser.parse_args()
    from salync_core.testing.config import write_config

    options = ["--products", str(args.products), "--seed", "1", "--api-key", KEY]
    options += ["--no-rate-limit"]
    with emulator("saleslayer", *options) as url, tempfile.TemporaryDirectory() as tmp:
        connection = {"plugin": "saleslayer", "base_url": url, "api_key": KEY}
        connection["rate_limits"] = "none"
        config = str(write_config(Path(tmp), {"pim": connection}))
        result = run_child(Path(__file__), config)
    edits = result["edits"]
    row = [
        f"{edits:,}",
        f"{result['upsert_s']:.2f}",
        f"{edits / result['upsert_s']:,.0f}",
        f"{result['upsert_many_s']:.2f}",
        f"{edits / result['upsert_many_s']:,.0f}",
        f"{result['upsert_s'] / result['upsert_many_s']:.1f}x",
        f"{result['deleted']:,}",
        f"{result['delete_many_s']:.2f}",
    ]
    headers = [
        "edits",
        "upsert, one call each: s",
        "edits/s",
        "upsert_many, one batch: s",
        "edits/s",
        "speed-up",
        "delete_many: records",
        "s",
    ]
    text = table(headers, [row])
    print(text)
    if not args.no_write:
        write_section("local-edits", text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
