"""salync.toml: good files load, bad ones name the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from salync_core.config import load_config
from salync_core.errors import ConfigError

GOOD = """
[store]
path = "mirror.db"

[connections.pim]
plugin = "saleslayer"
base_url = "https://api2.saleslayer.com/rest/Catalog/"
api_key = "env:SL_KEY"
attributes = ["prod_brand"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "salync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(write(tmp_path, GOOD))
    pim = config.connection("pim")
    assert config.store_path == tmp_path / "mirror.db"
    assert pim.base_url == "https://api2.saleslayer.com/rest/Catalog"
    assert pim.options == {"attributes": ["prod_brand"]}
    monkeypatch.setenv("SL_KEY", "s3cret")
    secret = pim.secrets["api_key"].resolve("here")
    assert secret is not None
    assert secret.reveal() == "s3cret"
    assert "s3cret" not in repr(pim)


def test_an_unset_environment_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SL_KEY", raising=False)
    pim = load_config(write(tmp_path, GOOD)).connection("pim")
    with pytest.raises(ConfigError, match="environment variable SL_KEY is not set"):
        pim.secrets["api_key"].resolve("[connections.pim] api_key")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[store\npath=1", "not valid TOML", id="not-toml"),
        pytest.param(
            "[connections.pim]\nbase_url = 'https://x'",
            r"\[connections.pim\]: missing required key 'plugin'",
            id="no-plugin",
        ),
        pytest.param(
            "[connections.pim]\nplugin = 'saleslayer'\nbase_url = 42",
            "base_url: expected a non-empty string, got 42",
            id="url-not-string",
        ),
        pytest.param(
            "[connections.pim]\nplugin = 'saleslayer'\nbase_url = 'http://api.example.com'",
            "base_url",
            id="plain-http-remote",
        ),
        pytest.param(
            "[sync]\nmass_delete_threshold = 2",
            "mass_delete_threshold: expected a share",
            id="bad-threshold",
        ),
        pytest.param("[stores]\npath = 'x'", "unknown table", id="unknown-table"),
        pytest.param(
            "[connections.local]\nplugin = 'x'\nbase_url = 'https://x'",
            "reserved",
            id="reserved-name",
        ),
    ],
)
def test_mistakes_name_the_file_the_key_and_the_expectation(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path)
    assert str(path) in str(error.value)


def test_plain_http_is_allowed_on_loopback(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path, "[connections.e]\nplugin = 'saleslayer'\nbase_url = 'http://127.0.0.1:8080/x'"
        )
    )
    assert config.connection("e").base_url == "http://127.0.0.1:8080/x"


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="salync init"):
        load_config(tmp_path / "salync.toml")
