"""Webhooks: deliveries accepted and applied per second, and a change's latency to the mirror.

    python benchmarks/webhooks.py                  # 5,000 deliveries, 300 timed edits
    python benchmarks/webhooks.py --events 1000 --edits 50 --no-write

How the numbers are produced: the Salync emulator (Pro plan, rate limit off) runs in its own
process, ``salync webhooks serve`` in another (receiving and applying, as deployed), and this
process is the load:

1. **Throughput.** ``--events`` signed ``product.created`` deliveries of distinct new products
   (5% of them sent twice, as platforms redeliver), posted ``--concurrency`` at a time.
   *accepted/s* = deliveries answered 200 (each committed to the inbox first) per second of
   posting; *applied/s* = events per second from the first post until the inbox shows every
   event applied to the mirror (read from the inbox file).
2. **Latency.** The emulator is subscribed to the receiver (``POST /v1/webhooks``); one product
   at a time is renamed through the API (``PATCH /products/{id}``), and the clock runs from
   just before the PATCH is sent until the mirror file shows the new title (polled every
   millisecond, read-only). Median and p99 over ``--edits`` edits.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from harness import emulator, table, write_section

from salync_core.testing.config import write_config

KEY = "bench-key"
SECRET = "whsec_bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signed(event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(event)
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Salync-Timestamp": stamp,
        "X-Salync-Signature": "sha256=" + digest,
    }
    return body, headers


def applied(inbox: Path) -> int:
    if not inbox.exists():
        return 0
    with sqlite3.connect(f"file:{inbox}?mode=ro", uri=True) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM events WHERE status = 'applied'").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0])


async def products(http: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    async with http.get(f"{base}/products", params={"limit": "100"}) as reply:
        return list((await reply.json())["data"])


async def throughput(
    http: aiohttp.ClientSession, hook_url: str, inbox: Path, template: dict[str, Any], args: Any
) -> dict[str, float]:
    deliveries = []
    for n in range(args.events):
        product = {**template, "id": f"prd_bench{n}", "sku": f"BENCH-{n:06d}", "name": f"B{n}"}
        event = {"id": f"evt_bench{n}", "type": "product.created", "data": {"object": product}}
        deliveries.append(signed(event))
    deliveries += deliveries[::20]
    limiter = asyncio.Semaphore(args.concurrency)

    async def post(body: bytes, headers: dict[str, str]) -> int:
        async with limiter, http.post(hook_url, data=body, headers=headers) as reply:
            await reply.read()
            return reply.status

    started = time.perf_counter()
    statuses = await asyncio.gather(*(post(b, h) for b, h in deliveries))
    accepted_at = time.perf_counter()
    assert set(statuses) == {200}, set(statuses)
    while applied(inbox) < args.events:  # noqa: ASYNC110 - another process's file
        await asyncio.sleep(0.01)
    done_at = time.perf_counter()
    with sqlite3.connect(f"file:{inbox}?mode=ro", uri=True) as conn:
        held = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert held == args.events, f"{held} events held for {args.events} distinct ones"
    return {
        "deliveries": len(deliveries),
        "accept_s": accepted_at - started,
        "accepted_per_s": len(deliveries) / (accepted_at - started),
        "apply_s": done_at - started,
        "applied_per_s": args.events / (done_at - started),
    }


def mirror_title(conn: sqlite3.Connection, sku: str) -> Any:
    row = conn.execute(
        "SELECT json_extract(fields, '$.title.en') FROM records"
        " WHERE entity = 'product' AND key = ?",
        (sku,),
    ).fetchone()
    return None if row is None else row[0]


async def latency(
    http: aiohttp.ClientSession, base: str, hook_url: str, mirror: Path, args: Any
) -> dict[str, float]:
    body = {"url": hook_url, "secret": SECRET, "events": ["product.updated"]}
    async with http.post(f"{base}/webhooks", json=body) as reply:
        assert reply.status == 201, await reply.text()
    catalog = [p for p in await products(http, base) if not p.get("has_variants")]
    conn = sqlite3.connect(f"file:{mirror}?mode=ro", uri=True)
    seconds = []
    try:
        for n in range(args.edits):
            product = catalog[n % len(catalog)]
            name = f"latency {n}"
            started = time.perf_counter()
            async with http.patch(f"{base}/products/{product['id']}", json={"name": name}) as r:
                assert r.status == 200, await r.text()
            while mirror_title(conn, product["sku"]) != name:  # noqa: ASYNC110 - as above
                await asyncio.sleep(0.001)
            seconds.append(time.perf_counter() - started)
    finally:
        conn.close()
    seconds.sort()
    return {
        "edits": len(seconds),
        "median_ms": statistics.median(seconds) * 1000,
        "p99_ms": seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))] * 1000,
        "max_ms": seconds[-1] * 1000,
    }


async def measure(base: str, tmp: Path, args: Any) -> dict[str, Any]:
    connection = {
        "plugin": "salync",
        "base_url": base,
        "api_key": KEY,
        "plan": "pro",
        "webhook_secret": SECRET,
        "rate_limits": "none",
    }
    config = write_config(tmp, {"inv": connection})
    port = free_port()
    hook_url = f"http://127.0.0.1:{port}/webhooks/inv"
    command = [sys.executable, "-m", "salync_core", "webhooks", "serve", "--config", str(config)]
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measuring
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            while True:
                try:
                    async with http.post(hook_url.replace("/inv", "/none")) as reply:
                        if reply.status == 404:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            template = (await products(http, base))[0]
            inbox = tmp / "salync.inbox.db"
            rates = await throughput(http, hook_url, inbox, template, args)
            delays = await latency(http, base, hook_url, tmp / "salync.db", args)
    finally:
        server.terminate()
        server.wait()
    return {**rates, **delays}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--edits", type=int, default=300)
    parser.add_argument("--no-write", action="store_true", help="Print, do not update README.")
    args = parser.parse_args()
    options = ["--products", "200", "--seed", "1", "--api-key", KEY, "--plan", "pro"]
    with (
        emulator("salync", *options, "--no-rate-limit") as base,
        tempfile.TemporaryDirectory() as tmp,
    ):
        result = asyncio.run(measure(base, Path(tmp), args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    text = table(
        [
            "deliveries (5% repeated)",
            "concurrency",
            "accepted/s",
            "applied/s",
            "edits timed",
            "change -> mirror median ms",
            "p99 ms",
            "max ms",
        ],
        [
            [
                f"{result['deliveries']:,}",
                args.concurrency,
                f"{result['accepted_per_s']:,.0f}",
                f"{result['applied_per_s']:,.0f}",
                result["edits"],
                f"{result['median_ms']:.1f}",
                f"{result['p99_ms']:.1f}",
                f"{result['max_ms']:.1f}",
            ]
        ],
    )
    if not args.no_write:
        write_section("webhooks", text)
    print(text)


if __name__ == "__main__":
    main()
