"""A fleet of N accounts of P products each: a full round and an incremental round (1% of each
account's products changed), on one process and on Dask with two local workers.

    python benchmarks/fleet.py                            # 1,000 Sales Layer accounts, README.md
    python benchmarks/fleet.py --shape shop+pim --accounts 200   # a Salla shop + its PIM each
    python benchmarks/fleet.py --accounts 20 --no-write   # a quick check

One emulator process per platform serves every account (``salync emulate saleslayer
--accounts N --products P --profile heavy``; ``salync emulate salla --accounts N --products P
--plan plus``): each account has its own credentials, its own seeded data and its own rate
limit, which stays on. Each account is a directory with a ``salync.toml`` whose connections
(``pim``: Sales Layer, every field read; ``shop``: Salla) use that account's options from
``GET /_emulator/account?account=i``. The rounds run in child processes:

- one process: the :class:`Fleet` API, ``run_due`` once (what ``salync fleet run --once`` does);
- Dask: :class:`DaskFleet` on ``local_cluster(workers=2)`` (127.0.0.1; what ``salync fleet run
  --once --dask`` starts), its cluster started before the round's clock starts.

Each round is timed in wall seconds and in CPU seconds of the whole process tree (the fleet
process, and on Dask its scheduler, nannies and workers), sampled for resident memory every
0.2 s; requests per account are the emulators' own per-account counts. The incremental round
changes 1% of each account's products through the emulators' admin routes first; every
account's ``[sync] interval`` is 1 s, so each round finds every account due. The idle figure
is a fresh process building the schedule of every account (``Fleet.load``: each configuration
and mirror read once, nothing kept open). The floor is account 0 alone: the single-account
engine (``Engine.sync`` in a process of its own) and, for Sales Layer, the bare client of
``benchmarks/floor.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from harness import admin, emulator_process, run_child, table, write_section

KEY = "bench-key"
CONCURRENCY = 8
INTERVAL = "1s"


# --- the emulator ----------------------------------------------------------------------------


SHAPES = {
    "pim": ("pim",),
    "shop": ("shop",),
    "shop+pim": ("shop", "pim"),
}
"""What an account holds: a Sales Layer PIM workspace (``pim``), a Salla shop (``shop``), or
both, as the host of issue 11 has them."""

PLATFORM = {"pim": "saleslayer", "shop": "salla"}


def emulator(
    connection: str, accounts: int, products: int
) -> AbstractContextManager[tuple[str, int]]:
    """``salync emulate`` for every account, in its own process: (URL, pid)."""
    options = ["--accounts", str(accounts), "--products", str(products), "--seed", "1"]
    if connection == "pim":
        options += ["--profile", "heavy", "--api-key", KEY]
    else:
        options += ["--plan", "plus"]
    return emulator_process(PLATFORM[connection], *options)


def write_accounts(root: Path, urls: dict[str, str], accounts: int) -> None:
    """A directory per account with one connection per emulator, each to that account's
    data (its options from ``GET /_emulator/account?account=i``)."""
    from salync_core.testing.config import write_config

    for index in range(accounts):
        directory = root / f"acct{index:05d}"
        directory.mkdir(parents=True)
        connections = {}
        for name, url in urls.items():
            options = dict(admin(url, f"account?account={index}")["options"])
            if name == "pim":
                options["attributes"] = "*"  # every custom field
            connections[name] = options
        write_config(directory, connections, sync={"interval": INTERVAL})


def touch_all(urls: dict[str, str], accounts: int, count: int, seed: int) -> None:
    """Change ``count`` products of every account of every emulator through its admin
    routes (Salla: new names for the first products its API lists)."""
    for index in range(accounts):
        for name, url in urls.items():
            if name == "pim":
                admin(url, f"touch?account={index}", {"count": count, "seed": seed + index})
                continue
            options = admin(url, f"account?account={index}")["options"]
            request = urllib.request.Request(
                f"{url}/products?per_page=60",
                headers={"Authorization": f"Bearer {options['access_token']}"},
            )
            with urllib.request.urlopen(request, timeout=600) as response:
                products = json.loads(response.read())["data"][:count]
            for product in products:
                admin(url, f"products/{product['id']}?account={index}", {"name": f"r{seed}"})


def account_requests(url: str) -> dict[str, Any]:
    stats = admin(url, "stats")
    per = stats.get("accounts") or {"0": stats}
    counts = [s["requests"] for s in per.values()]
    return {
        "total": stats["requests"],
        "accounts": len(counts),
        "mean": statistics.fmean(counts) if counts else 0.0,
        "min": min(counts, default=0),
        "max": max(counts, default=0),
        "bytes_out": stats["bytes_out"],
        "by_route": stats["by_route"],
        "errors": sum(v for k, v in stats["by_status"].items() if not k.startswith("2")),
    }


def process_cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


# --- measuring a process tree ----------------------------------------------------------------


class TreeMeter:
    """CPU seconds and sampled resident memory of this process and its descendants."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def tree(self) -> list[Any]:
        return [self.me, *self.me.children(recursive=True)]

    def cpu(self) -> dict[int, float]:
        found = {}
        for process in self.tree():
            try:
                t = process.cpu_times()
                found[process.pid] = t.user + t.system
            except Exception:  # gone meanwhile
                continue
        return found

    def rss(self) -> int:
        total = 0
        for process in self.tree():
            try:
                total += process.memory_info().rss
            except Exception:
                continue
        return total

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> TreeMeter:
        self.start_cpu = self.cpu()
        self.start_rss = self.rss()
        self.peak = self.start_rss
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self._stop.set()
        self._thread.join()
        end = self.cpu()
        self.cpu_seconds = sum(end[p] - self.start_cpu.get(p, 0.0) for p in end)
        self.end_rss = self.rss()
        self.peak = max(self.peak, self.end_rss)

    def result(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "cpu": self.cpu_seconds,
            "processes": len(self.tree()),
            "rss_start_mb": self.start_rss / 1e6,
            "rss_peak_mb": self.peak / 1e6,
        }


# --- the child processes ---------------------------------------------------------------------


def child_round(where: str, root: str, concurrency: int) -> None:
    """One round of every due account, here or on a local Dask cluster; prints a JSON line."""
    import anyio

    from salync_core.fleet import Fleet

    def summary(outcomes: list[Any], meter: TreeMeter) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for outcome in outcomes:
            statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        problems = [p for o in outcomes for p in o.problems][:3]
        return {
            **meter.result(),
            "statuses": statuses,
            "problems": problems,
            "requests": sum(o.requests for o in outcomes),
        }

    if where == "local":
        fleet = Fleet(Path(root), concurrency=concurrency)
        fleet.load()
        with TreeMeter() as meter:
            outcomes = anyio.run(fleet.run_due)
        print(json.dumps(summary(outcomes, meter)))
        return
    from salync_core.fleet.dask import DaskFleet, local_cluster

    started = time.perf_counter()
    with local_cluster(workers=2) as client:
        cluster_seconds = time.perf_counter() - started
        fleet = DaskFleet(Path(root), client, concurrency=concurrency)
        fleet.load()
        with TreeMeter() as meter:
            outcomes = anyio.run(fleet.run_due)
        result = summary(outcomes, meter)
    result["cluster_start_seconds"] = cluster_seconds
    print(json.dumps(result))


def child_idle(root: str) -> None:
    """The memory of the schedule of every account in ``root`` (idle: nothing open)."""
    import tracemalloc

    from salync_core.fleet import Fleet
    from salync_core.fleet.fleet import discover_accounts  # noqa: F401 - imported before

    def rss() -> int:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    # Everything a load imports is imported first (one account's schedule), so the growth
    # measured is the accounts' own.
    accounts = sorted(p for p in Path(root).iterdir() if p.is_dir())
    Fleet([]).load()
    warm = Fleet(Path(root))
    warm.entries = warm.entries[:1]
    warm.load()
    del warm
    gc.collect()
    before = rss()
    tracemalloc.start()
    fleet = Fleet(Path(root))
    fleet.load()
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after = rss()
    due = sum(1 for e in fleet.entries if e.due_at < float("inf"))
    print(
        json.dumps(
            {
                "accounts": len(accounts),
                "entries": len(fleet.entries),
                "due_known": due,
                "traced_bytes": traced,
                "rss_growth_bytes": max(0, after - before),
            }
        )
    )


def child_engine(mode: str, config: str) -> None:
    """The single-account engine: one sync of one account, in a process of its own."""
    import anyio

    from salync_core import Engine

    async def go() -> dict[str, Any]:
        opened, opened_cpu = time.perf_counter(), time.process_time()
        async with Engine.open(config) as engine:
            started, cpu = time.perf_counter(), time.process_time()
            reports = await engine.sync(full=mode == "full")
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        whole, whole_cpu = time.perf_counter() - opened, time.process_time() - opened_cpu
        assert all(r.ok for r in reports), [r.problems for r in reports]
        return {
            "seconds": seconds,
            "cpu": cpu,
            "records": sum(r.totals().received for r in reports),
            "changed": sum(r.totals().changed for r in reports),
            "requests": sum(r.requests for r in reports),
            "by_connection": {r.connection: r.requests for r in reports},
            "with_open_seconds": whole,
            "with_open_cpu": whole_cpu,
        }

    print(json.dumps(anyio.run(go, backend="asyncio")))


# --- the benchmark ---------------------------------------------------------------------------


def mirror_sizes(root: Path) -> dict[str, Any]:
    """Bytes and files each account holds on disk after its rounds."""
    total = files = accounts = 0
    for directory in root.iterdir():
        if not directory.is_dir():
            continue
        accounts += 1
        for path in directory.iterdir():
            files += 1
            total += path.stat().st_size
    return {"bytes": total, "files": files, "accounts": accounts}


Emulators = dict[str, tuple[str, int]]
"""connection name -> (URL, pid) of the emulator serving it."""


def timed_round(emulators: Emulators, where: str, root: Path, concurrency: int) -> dict[str, Any]:
    cpu = {}
    for name, (url, pid) in emulators.items():
        admin(url, "reset-stats", {})
        cpu[name] = process_cpu(pid)
    result = run_child(Path(__file__), "round", where, str(root), str(concurrency))
    result["emulator_cpu"] = sum(process_cpu(pid) - cpu[n] for n, (_, pid) in emulators.items())
    result["served"] = {name: account_requests(url) for name, (url, _) in emulators.items()}
    return result


def floor_runs(emulators: Emulators, tmp: Path, products: int) -> dict[str, Any]:
    """Account 0 alone: the single-account engine (its own process, a fresh mirror) and, for
    the Sales Layer connection, the bare client of floor.py."""
    from salync_core.testing.config import write_config

    directory = tmp / "single"
    directory.mkdir()
    urls = {name: url for name, (url, _) in emulators.items()}
    connections = {n: dict(admin(u, "account?account=0")["options"]) for n, u in urls.items()}
    if "pim" in connections:
        connections["pim"]["attributes"] = "*"
    config = str(write_config(directory, connections))
    found = {"full": run_child(Path(__file__), "engine", "full", config)}
    floor_script = Path(__file__).with_name("floor.py")
    bare_db = str(directory / "floor.db")
    if "pim" in urls:
        found["bare"] = run_child(floor_script, "full", urls["pim"], KEY, bare_db)
    touch_all(urls, 1, max(1, products // 100), seed=99)
    found["incremental"] = run_child(Path(__file__), "engine", "incremental", config)
    if "pim" in urls:
        found["bare_inc"] = run_child(floor_script, "incremental", urls["pim"], KEY, bare_db)
    return found


def measure(
    shape: str, accounts: int, products: int, concurrency: int, dask: bool, save: Path | None
) -> dict[str, Any]:
    """Every figure of the run (saved to ``save`` after each step, when given)."""

    def keep() -> None:
        if save is not None:
            save.write_text(json.dumps(results, indent=2), encoding="utf-8")

    if "shop" in SHAPES[shape]:  # Salla's tokens are kept encrypted in each mirror
        from cryptography.fernet import Fernet

        from salync_core.secrets import KEY_ENV

        os.environ.setdefault(KEY_ENV, Fernet.generate_key().decode())
    changed = max(1, products // 100)
    results: dict[str, Any] = {"accounts": accounts, "products": products, "changed": changed}
    results["shape"] = shape
    results["concurrency"] = concurrency
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["load_before"] = os.getloadavg()
    with contextlib.ExitStack() as stack:
        emulators = {
            name: stack.enter_context(emulator(name, accounts, products)) for name in SHAPES[shape]
        }
        urls = {name: url for name, (url, _) in emulators.items()}
        base = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sides = ["local", "dask"] if dask else ["local"]
        for side in sides:
            root = base / side
            write_accounts(root, urls, accounts)
            print(f"{side}: full round of {accounts} accounts", file=sys.stderr)
            full = timed_round(emulators, side, root, concurrency)
            sizes = mirror_sizes(root)
            touch_all(urls, accounts, changed, seed=1000 if side == "local" else 2000)
            time.sleep(1.1)  # the interval: every account due again
            print(f"{side}: incremental round", file=sys.stderr)
            incremental = timed_round(emulators, side, root, concurrency)
            results[side] = {"full": full, "incremental": incremental, "mirrors": sizes}
            keep()
            if side == "local":
                results["idle"] = run_child(Path(__file__), "idle", str(root))
        print("floor: one account, the single-account engine", file=sys.stderr)
        results["floor"] = floor_runs(emulators, base, products)
        results["emulator_rss_mb"] = sum(emulator_rss(pid) for _, pid in emulators.values())
    results["load_after"] = os.getloadavg()
    keep()
    return results


def emulator_rss(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss / 1e6)


# --- the report ------------------------------------------------------------------------------


def rows(results: dict[str, Any]) -> list[list[str]]:
    n = results["accounts"]
    found = []
    for side, label in (("local", "one process"), ("dask", "Dask, 2 workers")):
        if side not in results:
            continue
        for kind in ("full", "incremental"):
            r = results[side][kind]
            served = r["served"]
            total = sum(v["mean"] for v in served.values())
            statuses = ", ".join(f"{v} {k}" for k, v in sorted(r["statuses"].items()))
            found.append(
                [
                    label,
                    kind,
                    statuses,
                    f"{r['seconds']:.1f}",
                    f"{n / (r['seconds'] / 60) / 2:,.0f}",
                    f"{n / (r['cpu'] / 60):,.0f}",
                    f"{1000 * r['cpu'] / n:.0f}",
                    f"{1000 * r['emulator_cpu'] / n:.0f}",
                    f"{r['rss_start_mb']:.0f} / {r['rss_peak_mb']:.0f} ({r['processes']})",
                    f"{total:.2f}: "
                    + ", ".join(
                        f"{name} {v['mean']:.2f} ({v['min']}-{v['max']}; {v['errors']} not 2xx)"
                        for name, v in served.items()
                    ),
                    f"{sum(v['bytes_out'] for v in served.values()) / n / 1e3:.0f}",
                ]
            )
    return found


HEADERS = [
    "fleet",
    "round",
    "accounts: outcome",
    "wall s",
    "accounts / core / min (wall, 2 cores)",
    "accounts / CPU-minute of the fleet",
    "fleet CPU ms / account",
    "emulator CPU ms / account",
    "fleet RSS MB: start / peak (processes)",
    "requests / account: by connection (min-max)",
    "KB served / account",
]


def timing(run: dict[str, Any] | None) -> str:
    """Wall ms / CPU ms of a run, or a dash when there was none (no Sales Layer connection)."""
    return "-" if run is None else f"{1000 * run['seconds']:.0f} / {1000 * run['cpu']:.0f}"


def with_open(run: dict[str, Any]) -> str:
    if "with_open_cpu" not in run:
        return "not measured"
    return f"{1000 * run['with_open_seconds']:.0f} / {1000 * run['with_open_cpu']:.0f}"


def floor_table(results: dict[str, Any]) -> str:
    if "floor" not in results:
        return "The floor was not measured in this run.\n"
    f = results["floor"]
    local = results["local"]
    n = results["accounts"]
    rows_ = [
        [
            "full",
            f"{f['full']['records']:,}",
            f"{1000 * f['full']['seconds']:.0f} / {1000 * f['full']['cpu']:.0f}",
            with_open(f["full"]),
            timing(f.get("bare")),
            f"{1000 * local['full']['cpu'] / n:.0f}",
            f"{f['full']['requests']} / {f.get('bare', {}).get('requests', '-')}",
        ],
        [
            "incremental",
            f"{f['incremental']['changed']:,} changed",
            f"{1000 * f['incremental']['seconds']:.0f} / {1000 * f['incremental']['cpu']:.0f}",
            with_open(f["incremental"]),
            timing(f.get("bare_inc")),
            f"{1000 * local['incremental']['cpu'] / n:.0f}",
            f"{f['incremental']['requests']} / {f.get('bare_inc', {}).get('requests', '-')}",
        ],
    ]
    headers = [
        "one account",
        "records",
        "single-account engine, the sync: wall ms / CPU ms",
        "with opening and closing the mirror: wall ms / CPU ms",
        "bare client (floor.py, Sales Layer only): wall ms / CPU ms",
        "fleet, one process: CPU ms / account",
        "requests: engine / bare",
    ]
    return table(headers, rows_)


def other_table(results: dict[str, Any]) -> str:
    n, p = results["accounts"], results["products"]
    idle = results.get("idle")
    sizes = results["local"]["mirrors"]
    rows_ = [
        [
            "not measured in this run"
            if idle is None
            else f"{idle['traced_bytes'] / idle['entries']:,.0f} B traced, "
            f"{idle['rss_growth_bytes'] / idle['entries']:,.0f} B RSS "
            f"({idle['entries']:,} accounts)",
            f"{sizes['bytes'] / sizes['accounts'] / 1e6:.2f} MB "
            f"({sizes['bytes'] / (n * p * len(SHAPES[results['shape']])):,.0f} B per product "
            f"of {len(SHAPES[results['shape']])} connection(s)), "
            f"{sizes['files'] / sizes['accounts']:.0f} files",
            f"{results['dask']['full']['cluster_start_seconds']:.1f}"
            if "dask" in results
            else "no Dask round",
            f"{results['emulator_rss_mb']:.0f}" if "emulator_rss_mb" in results else "-",
            " / ".join(f"{x:.1f}" for x in results["load_before"])
            + " -> "
            + (
                " / ".join(f"{x:.1f}" for x in results["load_after"])
                if "load_after" in results
                else "not recorded"
            ),
        ]
    ]
    headers = [
        "idle account in the schedule",
        "mirror on disk per account (after the full round)",
        "Dask cluster start s",
        "emulator RSS MB (all accounts)",
        "load average (1/5/15 min) before -> after",
    ]
    return table(headers, rows_)


WHAT = {
    "pim": "a Sales Layer 2.0 workspace (heavy catalog)",
    "shop": "a Salla shop (Plus plan)",
    "shop+pim": "a Salla shop (Plus plan) and a Sales Layer 2.0 workspace (heavy catalog)",
}


def normalized(results: dict[str, Any]) -> dict[str, Any]:
    """A run saved before accounts had shapes: one Sales Layer connection named pim."""
    results.setdefault("concurrency", CONCURRENCY)
    results.setdefault("date", "date not recorded")
    if "shape" not in results:
        results["shape"] = "pim"
        for side in ("local", "dask"):
            for kind in ("full", "incremental"):
                if side in results:
                    results[side][kind]["served"] = {"pim": results[side][kind]["served"]}
    return results


def report(results: dict[str, Any]) -> str:
    return (
        f"{results['accounts']:,} accounts, each {WHAT[results['shape']]} of "
        f"{results['products']} products; concurrency {results['concurrency']}; 1% = "
        f"{results['changed']} products changed per connection; {results['date']}:\n\n"
        + table(HEADERS, rows(results))
        + "\n"
        + floor_table(results)
        + "\n"
        + other_table(results)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--no-dask", action="store_true", help="Only the one-process fleet.")
    parser.add_argument("--json", type=Path, help="Also write every figure to this file.")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="pim", help="An account's data.")
    parser.add_argument(
        "--render", type=Path, nargs="+", help="Only write the tables of --json files."
    )
    parser.add_argument("--no-write", action="store_true", help="Do not update README.md.")
    args = parser.parse_args()
    if args.render:
        runs = [json.loads(path.read_text(encoding="utf-8")) for path in args.render]
    else:
        options = (args.accounts, args.products, args.concurrency, not args.no_dask, args.json)
        runs = [measure(args.shape, *options)]
    text = "\n".join(report(normalized(results)) for results in runs)
    print(text)
    if not args.no_write:
        write_section("fleet", text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind = sys.argv[2]
        if kind == "round":
            child_round(sys.argv[3], sys.argv[4], int(sys.argv[5]))
        elif kind == "idle":
            child_idle(sys.argv[3])
        else:
            child_engine(sys.argv[3], sys.argv[4])
    else:
        main()
