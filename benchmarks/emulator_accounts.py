"""Memory and CPU of an emulator's accounts: N accounts of P products each built in one process.

    python benchmarks/emulator_accounts.py                  # 1,000 accounts of 200 products
    python benchmarks/emulator_accounts.py --accounts 50    # a quick check

Each emulator runs in a fresh child process: it is made with ``accounts=N, products=P`` (account
0 built at once), then every other account is built as its first request would build it
(``salync_core.testing.accounts.build_accounts``). Reported per account: the growth of the
process's resident memory (RSS, after a garbage collection) and the CPU seconds of building it.
CPU seconds do not depend on other load on the machine; RSS growth slightly under-counts, since
the allocator reuses memory freed while building.

Measured on 2026-11-30 (2 cores shared with up to 7 other jobs, load average about 17, so the
CPU figures are high; memory is not affected), 1,000 accounts of 200 products each:

    emulator            RSS per account   all 1,000 accounts   CPU to build one
    saleslayer (2.0)        812 KiB             793 MB              23 ms
    saleslayer heavy      1,229 KiB           1,199 MB              37 ms
    saleslayer-1.18         546 KiB             533 MB              26 ms
    salync (inventory)      690 KiB             673 MB              32 ms
    salla                   680 KiB             663 MB              29 ms

Nearly all of it is the accounts' generated records (a dict per product, variant, order...);
an account nobody has called costs nothing, one that was only counted costs its ``Stats``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

EMULATORS = {
    "saleslayer": ("salync_saleslayer.emulator", "SalesLayerEmulator", {}),
    "saleslayer-heavy": ("salync_saleslayer.emulator", "SalesLayerEmulator", {"profile": "heavy"}),
    "saleslayer-1.18": ("salync_saleslayer.emulator118", "SalesLayer118Emulator", {}),
    "salync": ("salync_inventory.emulator", "SalyncEmulator", {}),
    "salla": ("salync_salla.emulator", "SallaEmulator", {}),
}


def measure(name: str, accounts: int, products: int) -> dict[str, Any]:
    """In this process: build ``accounts`` accounts of ``name`` and report what they cost."""
    import importlib

    from salync_core.testing.accounts import build_accounts, resident_bytes

    module, cls_name, extra = EMULATORS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    start_rss = resident_bytes()
    emulator = cls(products=products, accounts=accounts, **extra)
    first_rss = resident_bytes() - start_rss
    cpu = time.process_time()
    grown = build_accounts(emulator, range(1, accounts))
    cpu = time.process_time() - cpu
    return {
        "emulator": name,
        "accounts": accounts,
        "products": products,
        "account_0_and_server_mb": round(first_rss / 2**20, 1),
        "rss_mb_all_accounts": round(grown / 2**20, 1),
        "kib_per_account": round(grown / max(1, accounts - 1) / 1024, 1),
        "cpu_ms_per_account": round(cpu / max(1, accounts - 1) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--only", choices=sorted(EMULATORS), action="append")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.accounts, args.products)))
        return
    for name in args.only or EMULATORS:
        command = [sys.executable, __file__, "--child", name]
        command += ["--accounts", str(args.accounts), "--products", str(args.products)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        print(result.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
