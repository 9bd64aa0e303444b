"""Helpers for the csv platform's tests: a configuration, a CSV file, the mirror's contents."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from salync_core import Engine
from salync_core.testing.config import write_config

COLUMNS = {"SKU": "key", "Name": "title.en", "Cost": "cost_price", "Brand": "attributes.brand"}
HEADER = "SKU,Name,Cost,Brand\n"


def csv_config(tmp_path: Path, sync: dict[str, Any] | None = None, **options: Any) -> Path:
    """A salync.toml with one ``csv`` connection called ``erp``, reading
    ``exports/products.csv`` next to it unless ``url`` is given."""
    settings: dict[str, Any] = {"plugin": "csv", "columns": COLUMNS, **options}
    if "url" not in settings:
        settings.setdefault("path", "exports/products.csv")
    return write_config(tmp_path, {"erp": settings}, sync=sync)


def write_export(tmp_path: Path, content: str | bytes, name: str = "products.csv") -> Path:
    """Write the ERP's export (text is written as UTF-8)."""
    path = tmp_path / "exports" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def catalog(count: int, start: int = 1) -> str:
    """A well-formed export of ``count`` products."""
    rows = (f"SKU-{n:04d},Product {n},{n}.50,Acme\n" for n in range(start, start + count))
    return HEADER + "".join(rows)


def replace_keeping_stat(path: Path, content: str) -> None:
    """Write other bytes of the same length and put the modification time back: a change only
    a read of the file could see."""
    before = path.stat()
    assert len(content.encode()) == before.st_size
    path.write_text(content, encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def dead_letters(engine: Engine) -> list[tuple[str, str]]:
    """``(raw, reason)`` of every dead letter, in the order they were kept."""
    rows = engine.store.conn.execute("SELECT raw, reason FROM dead_letters ORDER BY id")
    return [(str(raw), str(reason)) for raw, reason in rows]


def products(engine: Engine) -> dict[str, dict[str, Any]]:
    """Live products by reference."""
    return {r["ref"]: r for r in engine.records("product")}


def tombstoned(engine: Engine) -> set[str]:
    """References of deleted products."""
    everything = {r["ref"] for r in engine.records("product", deleted=True)}
    return everything - set(products(engine))
