"""What `salync` tells people when things go wrong: one clear line per failure, the message
exactly as written (brackets and all), never a traceback.

The emulators run in a thread of the test process (:func:`serving`), so the commands run through
click's CliRunner as a person types them, with a real server at the other end.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cli_support import invoke, serving
from click.testing import Result
from salync_saleslayer.emulator import SalesLayerEmulator
from support import SL_KEY

from salync_core.store import Store
from salync_core.testing.config import write_config


@pytest.fixture(scope="module")
def pim_url() -> Iterator[str]:
    emulator = SalesLayerEmulator(products=250, seed=1, api_key=SL_KEY, rate_limit=False)
    with serving(emulator) as (url,):
        yield url


def salync(*args: str, env: dict[str, str] | None = None) -> Result:
    return invoke(args, env)


def problems(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("problem:")]


def assert_no_traceback(result: Result) -> None:
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text
        assert "ExceptionGroup" not in text
    assert not isinstance(result.exception, Exception | KeyboardInterrupt) or isinstance(
        result.exception, SystemExit
    ), result.exception


# rich markup ----------------------------------------------------------------------------


def test_a_config_error_keeps_the_table_name_in_brackets(tmp_path: Path) -> None:
    config = tmp_path / "salync.toml"
    config.write_text("[connections.pim]\nplugin = 'saleslayer'\nbase_url = 42\n", "utf-8")

    result = salync("sync", "--config", str(config))

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {config}: [connections.pim] base_url")
    assert len(result.stderr.splitlines()) == 1


def test_missing_credentials_are_one_line_naming_the_connection_once(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, {"pim": {"plugin": "saleslayer", "base_url": "http://127.0.0.1:9/rest/Catalog"}}
    )

    result = salync("sync", "--config", str(config), "--no-progress")

    assert result.exit_code == 1
    assert problems(result) == [
        "problem: [connections.pim]: no credentials; set api_key in salync.toml (a literal or "
        '"env:VARIABLE") or store one with `salync secrets set pim`'
    ]


def test_a_server_message_with_markup_is_printed_as_sent_and_status_shows_it(
    tmp_path: Path, pim_url: str
) -> None:
    # the emulator refuses an unknown $select field, quoting it: "unknown field(s): prod_[/select]"
    config = write_config(
        tmp_path,
        {
            "pim": {
                "plugin": "saleslayer",
                "base_url": pim_url,
                "api_key": SL_KEY,
                "attributes": ["prod_[/select]"],
                "retry_attempts": 1,
            }
        },
    )

    synced = salync("sync", "--config", str(config), "--no-progress")
    status = salync("status", "--config", str(config))

    assert_no_traceback(synced)
    assert synced.exit_code == 1
    assert len(problems(synced)) == 1
    assert "unknown field(s): prod_[/select]" in problems(synced)[0]
    assert status.exit_code == 0, status.output
    assert "unknown field(s): prod_[/select]" in status.stdout


# other reports --------------------------------------------------------------------------


def test_an_unreachable_host_is_one_line_with_the_url_once(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "pim": {
                "plugin": "saleslayer",
                "base_url": "http://127.0.0.1:9/rest/Catalog",
                "api_key": SL_KEY,
                "retry_attempts": 1,
            }
        },
    )

    result = salync("sync", "--config", str(config), "--no-progress")

    assert result.exit_code == 1
    (line,) = problems(result)
    assert line.startswith("problem: pim/categories: GET http://127.0.0.1:9/rest/Catalog/")
    assert line.count("http://127.0.0.1:9") == 1
    assert "pim: pim:" not in line


# store errors ---------------------------------------------------------------------------


@pytest.fixture
def synced_config(tmp_path: Path, pim_url: str) -> Path:
    config = write_config(tmp_path, {"pim": {"plugin": "saleslayer", "base_url": pim_url}})
    text = config.read_text("utf-8") + f'api_key = "{SL_KEY}"\n'
    config.write_text(text, "utf-8")
    result = salync("sync", "--config", str(config), "--no-progress")
    assert result.exit_code == 0, result.output
    return config


def test_a_full_disk_is_one_line_and_the_pages_before_stay(
    tmp_path: Path, pim_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        tmp_path, {"pim": {"plugin": "saleslayer", "base_url": pim_url, "api_key": SL_KEY}}
    )
    opened = Store.__init__

    def tiny_disk(self: Store, *args: Any, **kwargs: Any) -> None:
        opened(self, *args, **kwargs)
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        self.conn.execute(f"PRAGMA max_page_count = {pages + 12}")  # room for a page or two

    monkeypatch.setattr(Store, "__init__", tiny_disk)
    write = Store.write

    @contextmanager
    def unhurried_write(self: Store) -> Iterator[Any]:
        time.sleep(0.2)  # the next pages are fetched and wait to be written meanwhile
        with write(self) as txn:
            yield txn

    monkeypatch.setattr(Store, "write", unhurried_write)

    result = salync("sync", "--config", str(config), "--no-progress")

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr == ""
    (line,) = problems(result)
    assert "the disk is full" in line
    assert "nothing of the interrupted page was applied" in line
    with sqlite3.connect(tmp_path / "salync.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def damage(mirror: Path) -> None:
    """Overwrite everything after the first pages with garbage, as a failing disk would."""
    data = bytearray(mirror.read_bytes())
    start = 8192 * 2
    data[start:] = bytes(i % 251 for i in range(len(data) - start))
    mirror.write_bytes(bytes(data))


def test_a_damaged_mirror_is_one_line_saying_what_to_do(synced_config: Path) -> None:
    copy = synced_config.parent / "copy"
    copy.mkdir()
    shutil.copy(synced_config.parent / "salync.db", copy / "salync.db")
    damage(copy / "salync.db")
    config = copy / "salync.toml"
    config.write_text(synced_config.read_text("utf-8"), "utf-8")

    for command in (["status"], ["status", "--json"], ["records", "product"]):
        result = salync(*command, "--config", str(config))

        assert_no_traceback(result)
        assert result.exit_code != 0, command
        (line,) = result.stderr.splitlines()
        assert "the mirror is damaged" in line, line
        assert "salync sync --full" in line


def test_a_locked_mirror_is_one_line(synced_config: Path) -> None:
    holder = sqlite3.connect(synced_config.parent / "salync.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = salync(
            "sync",
            "--config",
            str(synced_config),
            "--no-progress",
            env={"SALYNC_BUSY_TIMEOUT_MS": "100"},
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert_no_traceback(result)
    assert result.exit_code != 0
    (line,) = result.stderr.splitlines()
    assert "the mirror is locked by another program" in line
