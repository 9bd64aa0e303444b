"""The floor: the simplest correct client for the Sales Layer 2.0 sync the engine does.

It makes the same requests as the engine (categories, then products with ``$expand=Variants``
paged by id; an incremental pass adds ``X_modify ge <start of the last pass>`` and reads the
variants changed since), parses them with orjson and upserts each item by id into SQLite,
one transaction a page. No provenance, no per-field clocks, no base, no change log, no
conflict resolution, no validation beyond what SQLite needs: what a bare client pays for the
same data, so the engine's cost can be read as a ratio to it.

    python benchmarks/floor.py --child full URL API_KEY floor.db       # prints a JSON line

``benchmarks/saleslayer_sync.py`` runs it against the same emulator in the same run as the
engine, each in a child process of its own (so the peak RSS is the client's alone).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

PAGE = 100
# (collection, id field, ref field, modify field, expand): the order the engine reads them in.
COLLECTIONS = (
    ("Categories", "cat_id", "cat_ref", "cat_modify", None),
    ("Products", "prod_id", "prod_ref", "prod_modify", "Variants"),
    ("Variants", "frmt_id", "frmt_ref", "frmt_modify", None),
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (collection TEXT PRIMARY KEY, since TEXT NOT NULL);
""" + "".join(
    f"CREATE TABLE IF NOT EXISTS {name.lower()}"
    " (id INTEGER PRIMARY KEY, ref TEXT NOT NULL, modified TEXT, data BLOB NOT NULL);\n"
    for name, *_ in COLLECTIONS
)


def open_db(path: str) -> sqlite3.Connection:
    """The engine's storage settings (WAL, page size, cache, checkpoint interval), so the
    ratio measures the work each client does, not how SQLite is tuned."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size = 8192")
    conn.execute("PRAGMA journal_mode = WAL")
    for pragma in ("synchronous = NORMAL", "cache_size = -32768", "wal_autocheckpoint = 8192"):
        conn.execute(f"PRAGMA {pragma}")
    conn.executescript(SCHEMA)
    return conn


def upsert_sql(table: str) -> str:
    return (
        f"INSERT INTO {table} (id, ref, modified, data) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET ref = excluded.ref, modified = excluded.modified,"
        " data = excluded.data"
    )


def rows(items: list[dict[str, Any]], id_field: str, ref_field: str, modify: str) -> list[Any]:
    return [
        (item[id_field], item[ref_field], item.get(modify), orjson.dumps(item)) for item in items
    ]


async def sync(base_url: str, api_key: str, db_path: str, full: bool) -> dict[str, Any]:
    conn = open_db(db_path)
    since = dict(conn.execute("SELECT collection, since FROM cursors").fetchall())
    records = requests = 0
    headers = {"X-API-KEY": api_key, "Accept-Language": "en"}
    async with aiohttp.ClientSession(base_url + "/", headers=headers) as session:
        for name, id_field, ref_field, modify, expand in COLLECTIONS:
            last_since = None if full else since.get(name)
            if name == "Variants" and last_since is None:
                continue  # a full pass over products delivers every variant
            after = 0
            started: str | None = None
            while True:
                terms = ([f"{modify} ge {last_since}"] if last_since else []) + [
                    f"{id_field} gt {after}"
                ]
                params = {"$top": str(PAGE), "$orderby": id_field, "$filter": " and ".join(terms)}
                if expand:
                    params["$expand"] = expand
                async with session.get(name, params=params) as response:
                    response.raise_for_status()
                    body = orjson.loads(await response.read())
                    date = response.headers.get("Date")
                requests += 1
                if started is None and date:
                    started = parsedate_to_datetime(date).strftime("%Y-%m-%dT%H:%M:%SZ")
                items = body["value"]
                variants = [v for item in items for v in item.pop("Variants", ())]
                for item in items:
                    item.pop("Variants@count", None)
                conn.execute("BEGIN")
                conn.executemany(upsert_sql(name.lower()), rows(items, id_field, ref_field, modify))
                if variants:
                    conn.executemany(
                        upsert_sql("variants"), rows(variants, "frmt_id", "frmt_ref", "frmt_modify")
                    )
                if "@nextLink" not in body or not items:
                    conn.execute(
                        "INSERT INTO cursors VALUES (?, ?) ON CONFLICT (collection)"
                        " DO UPDATE SET since = excluded.since",
                        (name, started),
                    )
                    if expand:  # the variants were read up to the same moment
                        conn.execute(
                            "INSERT INTO cursors VALUES ('Variants', ?) ON CONFLICT (collection)"
                            " DO UPDATE SET since = excluded.since",
                            (started,),
                        )
                conn.execute("COMMIT")
                records += len(items) + len(variants)
                if "@nextLink" not in body or not items:
                    break
                after = max(item[id_field] for item in items)
    conn.close()
    return {"records": records, "requests": requests}


def child(mode: str, base_url: str, api_key: str, db_path: str) -> None:
    import resource

    started, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(sync(base_url, api_key, db_path, full=mode == "full"))
    result["seconds"] = time.perf_counter() - started
    result["cpu"] = time.process_time() - cpu
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "--child":
        raise SystemExit(__doc__)
    child(*sys.argv[2:])
