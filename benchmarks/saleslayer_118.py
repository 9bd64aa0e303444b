"""Sales Layer API 1.18 against 2.0: the same catalog read, and the same edits written.

    python benchmarks/saleslayer_118.py                    # 100k read, 10k pushed; README.md
    python benchmarks/saleslayer_118.py --products 20000 --edits 2000 --no-write

Both emulators generate the same catalog (``dataset.py``, same size and seed), each in its own
process with no rate limit enforced; each engine run is a child process of its own.

* Read: one full sync of the whole catalog through each API. Requests are the engine's own
  count; "seconds under the rate limit" is the least time the same requests can take within
  the API's limit, ``max(measured, (ceil(requests / 50) - 1) * 10)`` for 2.0's 50 requests per
  10 seconds; 1.18 documents no request limit (busy answers are error codes 10, 11 and 14),
  so its figure is the measured time.
* Write: after a full sync of a catalog of ``--edits`` products, every product's English title
  is edited locally and ``engine.push()`` is timed: 2.0 writes one product per ``PATCH``; 1.18
  sends chunks of up to 50,000 items to the import connector and polls each chunk's tracking
  URL until it ends.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import emulator, peak_rss_mb, run_child, table, write_section

KEY = "bench-key"
CODE, SECRET = "CN118EXPORT", "sl-118-export-secret"
IMPORT_CODE, IMPORT_SECRET = "CN118IMPORT", "sl-118-import-secret"
WINDOW_REQUESTS, WINDOW_SECONDS = 50, 10.0


def connection(api: str, url: str) -> dict[str, Any]:
    common = {"plugin": "saleslayer", "base_url": url, "rate_limits": "none", "push": ["product"]}
    if api == "2.0":
        return {**common, "api_key": KEY}
    return {
        **common,
        "api": "1.18",
        "connector_code": CODE,
        "secret_key": SECRET,
        "import_code": IMPORT_CODE,
        "import_secret": IMPORT_SECRET,
        "import_poll_seconds": 0.2,
    }


def child(mode: str, config: str) -> None:
    import anyio

    from salync_core import Engine

    async def go() -> dict[str, object]:
        async with Engine.open(config) as engine:
            started = time.perf_counter()
            reports = await engine.sync(full=True)
            sync_seconds = time.perf_counter() - started
            assert all(r.ok for r in reports), [r.problems for r in reports]
            result: dict[str, object] = {
                "seconds": sync_seconds,
                "records": sum(r.totals().received for r in reports if r.kind == "sync"),
                "requests": sum(r.requests for r in reports),
            }
            if mode == "push":
                refs = [r["ref"] for r in engine.records("product")]
                for ref in refs:
                    await engine.upsert("product", ref, {"title": {"en": f"Edited {ref}"}})
                started = time.perf_counter()
                (pushed,) = await engine.push()
                result.update(
                    edits=len(refs),
                    push_seconds=time.perf_counter() - started,
                    pushed=pushed.pushed,
                    failed=pushed.push_failed,
                    push_requests=pushed.requests,
                )
            result["rss_mb"] = peak_rss_mb()
        return result

    print(json.dumps(anyio.run(go, backend="asyncio")))


def run(api: str, products: int, mode: str) -> dict[str, Any]:
    from salync_core.testing.config import write_config

    options = ["--products", str(products), "--seed", "1"]
    if api == "2.0":
        options += ["--api-key", KEY, "--no-rate-limit"]
    else:
        options += ["--api", "1.18"]
    with emulator("saleslayer", *options) as url, tempfile.TemporaryDirectory() as tmp:
        config = str(write_config(Path(tmp), {"pim": connection(api, url)}))
        return run_child(Path(__file__), mode, config)


def limited(api: str, requests: int, seconds: float) -> float:
    """The least seconds ``requests`` take within the API's request limit."""
    if api != "2.0":
        return seconds
    return max(seconds, (math.ceil(requests / WINDOW_REQUESTS) - 1) * WINDOW_SECONDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--edits", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true", help="Do not update README.md.")
    args = parser.parse_args()
    read_rows, write_rows = [], []
    for api in ("2.0", "1.18"):
        read = run(api, args.products, "read")
        read_rows.append(
            [
                api,
                f"{args.products:,}",
                f"{read['records']:,}",
                f"{read['requests']:,}",
                f"{read['seconds']:.2f}",
                f"{limited(api, read['requests'], read['seconds']):.1f}",
                f"{read['rss_mb']:.0f}",
            ]
        )
        write = run(api, args.edits, "push")
        write_rows.append(
            [
                api,
                f"{write['edits']:,}",
                f"{write['pushed']:,} ({write['failed']})",
                f"{write['push_requests']:,}",
                f"{write['push_seconds']:.2f}",
                f"{limited(api, write['push_requests'], write['push_seconds']):.1f}",
            ]
        )
    read_text = table(
        [
            "API",
            "products",
            "records (with variants)",
            "requests",
            "full sync s",
            "s under the rate limit",
            "RSS MB",
        ],
        read_rows,
    )
    write_text = table(
        ["API", "local edits", "pushed (failed)", "requests", "push s", "s under the rate limit"],
        write_rows,
    )
    print(read_text)
    print(write_text)
    if not args.no_write:
        write_section("saleslayer-118-read", read_text)
        write_section("saleslayer-118-write", write_text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
