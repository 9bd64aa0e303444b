"""A CSV served over HTTP, read through the connection's shared client with a conditional GET:
an unchanged export costs one ``304`` and no parsing."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from csv_support import catalog, csv_config, products

from salync_core import Engine
from salync_core.config import load_config
from salync_core.errors import ConfigError

pytestmark = pytest.mark.anyio


class ExportServer:
    """An ERP's export endpoint on 127.0.0.1: one file, its ETag, and 304 when it matches."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.statuses: Counter[int] = Counter()
        self.url = ""

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    async def serve(self, request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == self.etag:
            response = web.Response(status=304, headers={"ETag": self.etag})
        else:
            response = web.Response(
                body=self.body, content_type="text/csv", headers={"ETag": self.etag}
            )
        self.statuses[response.status] += 1
        return response


@pytest.fixture
async def export() -> AsyncIterator[ExportServer]:
    server = ExportServer(catalog(12).encode())
    app = web.Application()
    app.router.add_get("/exports/products.csv", server.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}/exports/products.csv"
    try:
        yield server
    finally:
        await runner.cleanup()


async def test_a_csv_url_is_read_and_an_unchanged_one_answers_304(
    tmp_path: Path, export: ExportServer
) -> None:
    async with Engine.open(csv_config(tmp_path, url=export.url)) as engine:
        (first,) = await engine.sync()
        (unchanged,) = await engine.sync()
        export.body = catalog(13).encode()
        (changed,) = await engine.sync()

        assert first.ok, first.problems
        assert unchanged.ok, unchanged.problems
        assert unchanged.stream("rows").pages == 0
        assert export.statuses == Counter({200: 2, 304: 1})
        assert changed.stream("rows").applied.created == 1
        assert len(products(engine)) == 13


async def test_rows_that_left_a_served_csv_are_reconciled(
    tmp_path: Path, export: ExportServer
) -> None:
    async with Engine.open(csv_config(tmp_path, url=export.url)) as engine:
        await engine.sync()
        export.body = catalog(11).encode()

        (report,) = await engine.sync(reconcile=True)

        assert report.ok, report.problems
        assert "SKU-0012" not in products(engine)
        assert len(products(engine)) == 11


def test_plain_http_to_another_host_is_refused_when_the_file_is_loaded(tmp_path: Path) -> None:
    config = csv_config(tmp_path, url="http://erp.example.com/exports/products.csv")

    with pytest.raises(ConfigError, match=r"url: expected an absolute https:// URL \(http://"):
        load_config(config)


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ({"entity": "widget"}, "entity: expected one of"),
        ({"delimiter": ";;"}, 'delimiter: expected one character (or "tab")'),
        ({"encoding": "klingon"}, "encoding: expected an encoding Python knows"),
        ({"page_size": 0}, "page_size: expected a whole number above 0"),
        ({"columns": {"SKU": 1}}, "columns: expected a table of column = field"),
        ({"sheet": "1"}, "sheet"),
    ],
)
def test_a_wrong_option_is_refused_when_the_file_is_loaded(
    tmp_path: Path, option: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_config(csv_config(tmp_path, **option))
