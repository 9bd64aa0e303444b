"""Salync inventory: a full sync paced by a plan's limits, against the theoretical minimum.

    python benchmarks/salync_paced_sync.py                  # the default cases, writes README.md
    python benchmarks/salync_paced_sync.py --cases growth:800:60 --no-write

Target (issue: "with the emulator enforcing a plan's limits, a full sync's wall time within 10%
of the theoretical minimum (requests / allowed rate) with zero 429s"): measured / minimum
<= 1.10 and no 429 answer, on the Growth plan (20 requests a minute, 500 a day) and the Pro plan
(200 a minute, 10,000 a day).

How the numbers are produced, per case ``PLAN:PRODUCTS:TIME_SCALE``:

1. Baseline: the same catalog (same product count and seed) on an emulator with its limits off
   (``--no-rate-limit``, connection ``rate_limits = "none"``); a full sync of every stream in a
   child process gives R0 requests in T0 seconds, the engine's own speed with nothing to wait
   for.
2. Paced: the emulator enforces the plan (``salync emulate salync --plan PLAN --time-scale S``)
   and the connection declares the same ``plan`` and ``time_scale``, so the client paces on the
   plan's declared limits. A fresh child runs one full sync of every stream; the wall time is
   measured around ``engine.sync(full=True)`` only. The emulator's ``/_emulator/stats`` then
   gives the requests it served (R) and ``by_status`` (the 429s).
3. The minimum. The emulator counts its burst limit of B requests in fixed 60-second windows
   of platform time, aligned on the minute, and a minute lasts 60 / S real seconds. R requests
   need k = ceil(R / B) windows; the first k - 1 each carry B requests and the last carries
   R - (k - 1) B. A client can start window i + 1's requests no earlier than one window after
   window i's, so::

       minimum = max(T0, (k - 1) * 60 / S + (R - (k - 1) * B) * T0 / R0)

   where (R - (k - 1) B) T0 / R0 is the time to serve the last window's requests at the
   engine's unpaced speed, and T0 bounds it from below when the limit is not what binds.
   ``ratio`` = measured / minimum. The daily quota is never binding here (R is far below it).

   Because the server's windows are aligned on the minute, a client that knew where the
   boundaries fall could do a little better when the sync starts late in a minute: "aligned
   bound" simulates such a client (requests back to back at T0 / R0 each, each counted in the
   fixed window it arrives in, a full window waiting for the next boundary) from the platform
   time at which the sync started. The pacer reads the emulator's
   ``X-RateLimit-Burst-*`` headers and paces on those fixed windows, so it can beat
   ``minimum`` (a ratio below 1) and approach the aligned bound; the target is on ``minimum``,
   as the issue states it.

The time scale is per case: at S = 60 a Pro window lasts one real second, about what the
engine needs to serve 200 requests, so the rate limit barely binds and the case measures the
engine's throughput rather than its pacing. Pro therefore runs at S = 10 (a six-second
minute); the default cases add Pro at S = 60 to show exactly that (pacing waits near zero,
minimum = T0; a run with no pacing wait at all is marked "limit not binding").
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from attrs import frozen
from harness import admin, emulator, run_child, table, write_section

KEY = "bench-key"
SEED = "1"
WINDOW_SECONDS = 60.0
BURST = {"growth": 20, "pro": 200}
DAILY = {"growth": 500, "pro": 10_000}
NOT_BINDING = " (limit not binding)"
"""No pacing wait at all: the ratio compares two runs' engine speed, not pacing."""
GATED_WITHIN = 0.020
"""Real seconds: request n + B answered this soon after (answer n + one window) was held back
by the sliding log, not by its own work."""
DEFAULT_CASES = ("growth:1000:60", "pro:8000:10", "pro:8000:60")


@frozen
class Case:
    plan: str
    products: int
    time_scale: float

    @classmethod
    def parse(cls, text: str) -> Case:
        plan, products, scale = text.split(":")
        if plan not in BURST:
            raise argparse.ArgumentTypeError(f"plan must be one of {', '.join(BURST)}")
        return cls(plan, int(products), float(scale))


# the child: one full sync -------------------------------------------------------------------


class PacingLog(logging.Handler):
    """Counts the pacer's waits and the requests the client logs (``salync.http`` debug)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.waits: list[float] = []
        self.answered: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if "pacing, waiting" in record.msg and isinstance(args, tuple):
            wait = args[1]
            self.waits.append(float(wait) if isinstance(wait, int | float) else 0.0)
        elif "(attempt %d)" in record.msg:
            self.answered.append(time.perf_counter())


def child(config: str, url: str) -> None:
    import anyio

    from salync_core import Engine

    pacing = PacingLog()
    logger = logging.getLogger("salync.http")
    logger.addHandler(pacing)
    logger.setLevel(logging.DEBUG)

    async def go() -> dict[str, Any]:
        async with Engine.open(config) as engine:
            platform_time = admin(url, "clock")["time"]
            started = time.perf_counter()
            (report, *_) = await engine.sync(full=True)
            seconds = time.perf_counter() - started
        assert report.ok, report.problems
        assert report.paused_until is None, report.paused_until
        return {
            "seconds": seconds,
            "requests": report.requests,
            "received": report.totals().received,
            "window_offset": platform_time % WINDOW_SECONDS,
            "pacing_seconds": sum(pacing.waits),
            "answered_at": [round(t - started, 4) for t in pacing.answered],
        }

    print(json.dumps(anyio.run(go, backend="asyncio")))


# the parent: emulators, minimum, table ------------------------------------------------------


def run_sync(case: Case, *, paced: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """One full sync in a child against a fresh emulator; returns (child result, stats)."""
    from salync_core.testing.config import write_config

    options = ["--products", str(case.products), "--seed", SEED, "--api-key", KEY]
    options += ["--time-scale", str(case.time_scale)]
    options += ["--plan", case.plan] if paced else ["--plan", "pro", "--no-rate-limit"]
    connection: dict[str, Any] = {
        "plugin": "salync",
        "base_url": "",
        "api_key": KEY,
        "plan": case.plan,
        "time_scale": case.time_scale,
    }
    if not paced:
        connection["rate_limits"] = "none"
    with emulator("salync", *options) as url, tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), {"inventory": {**connection, "base_url": url}})
        result = run_child(Path(__file__), str(config), url)
        stats = admin(url, "stats")
    return result, stats


def unpaced_per_request(base: dict[str, Any]) -> float:
    """T0 / R0: real seconds per request when nothing is paced."""
    return float(base["seconds"]) / int(base["requests"])


def minimum_seconds(case: Case, requests: int, base: dict[str, Any]) -> float:
    """max(T0, (k - 1) * 60 / S + last window's requests at the unpaced speed)."""
    burst = BURST[case.plan]
    windows = math.ceil(requests / burst)
    last = requests - (windows - 1) * burst
    per_request = unpaced_per_request(base)
    paced = (windows - 1) * WINDOW_SECONDS / case.time_scale + last * per_request
    return max(float(base["seconds"]), paced)


def aligned_bound(case: Case, requests: int, base: dict[str, Any], offset: float) -> float:
    """A client that knows the fixed windows: back to back at the unpaced speed, a request
    arriving in a full window waits for the next boundary (``offset``: platform seconds into
    the minute at the start)."""
    burst, per_request = BURST[case.plan], unpaced_per_request(base)
    window = WINDOW_SECONDS / case.time_scale
    now, boundary, used = 0.0, (WINDOW_SECONDS - offset) / case.time_scale, 0
    for _ in range(requests):
        if now >= boundary:
            boundary += window * math.floor((now - boundary) / window + 1)
            used = 0
        if used == burst:
            now, boundary, used = boundary, boundary + window, 0
        used += 1
        now += per_request
    return now


def pacing_profile(case: Case, base: dict[str, Any], paced: dict[str, Any]) -> list[object]:
    """How the sliding log gated the paced run: request n + B is answered one round trip
    after request n's answer plus one window; and the last window's requests, paced and not."""
    burst, window = BURST[case.plan], WINDOW_SECONDS / case.time_scale
    answered, unpaced = paced["answered_at"], base["answered_at"]
    lags = [answered[n] - answered[n - burst] - window for n in range(burst, len(answered))]
    gated = sum(lag < GATED_WITHIN for lag in lags)
    last = len(answered) - (math.ceil(len(answered) / burst) - 1) * burst
    return [
        case.plan,
        f"{case.time_scale:g}",
        f"{gated} of {len(lags)}",
        f"{sorted(lags)[len(lags) // 2] * 1000:.1f}" if lags else "-",
        f"{answered[burst - 1] - answered[0]:.2f} / {unpaced[burst - 1] - unpaced[0]:.2f}",
        f"{last}",
        f"{answered[-1] - answered[-last]:.2f} / {unpaced[-1] - unpaced[-last]:.2f}",
    ]


def measure(case: Case, verbose: bool) -> tuple[list[object], list[object]]:
    base, base_stats = run_sync(case, paced=False)
    result, stats = run_sync(case, paced=True)
    requests = int(stats["requests"])
    if requests >= DAILY[case.plan]:
        raise SystemExit(f"{case}: {requests} requests reach the daily quota; use fewer products")
    throttled = int(stats["by_status"].get("429", 0))
    minimum = minimum_seconds(case, requests, base)
    aligned = aligned_bound(case, requests, base, result["window_offset"])
    if verbose:
        print(json.dumps({"case": str(case), "base": base, "paced": result, "stats": stats}))
    burst = BURST[case.plan]
    row: list[object] = [
        case.plan,
        f"{burst}/min, {DAILY[case.plan]:,}/day",
        f"{case.time_scale:g} ({WINDOW_SECONDS / case.time_scale:g} s)",
        f"{case.products:,}",
        f"{requests} (unpaced {base_stats['requests']})",
        f"{math.ceil(requests / burst)}",
        f"{throttled}",
        f"{base['seconds']:.2f}",
        f"{result['seconds']:.2f}",
        f"{minimum:.2f}",
        f"{result['seconds'] / minimum:.3f}" + ("" if result["pacing_seconds"] else NOT_BINDING),
        f"{result['pacing_seconds']:.2f}",
        f"{result['window_offset']:.1f}",
        f"{aligned:.2f}",
    ]
    return row, pacing_profile(case, base, result)


HEADERS = [
    "plan",
    "limits",
    "time scale (real s per minute)",
    "products",
    "requests",
    "windows k",
    "429s",
    "unpaced T0 s",
    "measured s",
    "minimum s",
    "ratio",
    "pacing waits s",
    "start, s into the minute",
    "aligned bound s",
]
PROFILE_HEADERS = [
    "plan",
    "time scale",
    "requests after window 1 gated by the sliding log",
    "median lag ms",
    "window 1 s, paced / unpaced",
    "last window requests",
    "last window s, paced / unpaced (same requests)",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases",
        type=Case.parse,
        nargs="+",
        default=[Case.parse(c) for c in DEFAULT_CASES],
        help=f"PLAN:PRODUCTS:TIME_SCALE ... (default: {' '.join(DEFAULT_CASES)})",
    )
    parser.add_argument("--verbose", action="store_true", help="Print each run's raw numbers.")
    parser.add_argument("--no-write", action="store_true", help="Do not update README.md.")
    args = parser.parse_args()
    rows, profiles = zip(*(measure(case, args.verbose) for case in args.cases), strict=True)
    text = table(HEADERS, rows) + "\n" + table(PROFILE_HEADERS, profiles)
    print(text)
    if not args.no_write:
        write_section("salync-paced", text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
