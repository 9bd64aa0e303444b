"""salync.toml: good files load, bad ones name the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from salync_core.config import load_config
from salync_core.errors import ConfigError, PolicyError

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


TYPOS = {
    "top-level": ("[stor]\npath = 'x.db'\n", "unknown table 'stor'; did you mean 'store'?"),
    "store": ("[store]\npth = 'x.db'\n", r"\[store\]: unknown key 'pth'; did you mean 'path'?"),
    "sync": (
        "[sync]\nmass_delete_treshold = 0.5\n",
        r"\[sync\]: unknown key 'mass_delete_treshold'; did you mean 'mass_delete_threshold'?",
    ),
    "push": (
        "[connections.pim]\nplugin = 'saleslayer'\nbase_url = 'https://x'\npussh = ['product']\n",
        r"\[connections.pim\]: unknown key 'pussh'; did you mean 'push'?",
    ),
    "retry": (
        "[connections.pim]\nplugin = 'saleslayer'\nbase_url = 'https://x'\nretry_atempts = 1\n",
        r"\[connections.pim\]: unknown key 'retry_atempts'; did you mean 'retry_attempts'?",
    ),
    "rate-limit": (
        "[connections.pim]\nplugin = 'saleslayer'\nbase_url = 'https://x'\nrate_limit = 'none'\n",
        r"\[connections.pim\]: unknown key 'rate_limit'; did you mean 'rate_limits'?",
    ),
    "plan": (
        "[connections.inv]\nplugin = 'salync'\nbase_url = 'https://x'\nplna = 'pro'\n",
        r"\[connections.inv\]: unknown key 'plna'; did you mean 'plan'?",
    ),
    "plugin": (
        "[connections.pim]\nplugin = 'saleslayr'\nbase_url = 'https://x'\n",
        r"\[connections.pim\] plugin: no platform plugin named 'saleslayr'.*did you mean"
        " 'saleslayer'?",
    ),
    "policy-entity": (
        "[policies.prodcut]\ntitle = 'manual'\n",
        r"\[policies.prodcut\]: unknown entity 'prodcut'; did you mean 'product'?",
    ),
    "policy-field": (
        "[policies.product]\ntitel = 'manual'\n",
        r"\[policies.product\] titel: product has no field 'titel'; did you mean 'title'?",
    ),
    "policy-table": (
        "[policies.product]\ntitle = { ownr = 'x' }\n",
        r"\[policies.product\] title: .*got \['ownr'\]; did you mean 'owner'\?",
    ),
    "rate-limits": (
        "[connections.pim]\nplugin = 'saleslayer'\nbase_url = 'https://x'\n"
        "rate_limits = { daly = 5 }\n",
        r"\[connections.pim\] rate_limits: unknown key 'daly'; did you mean 'daily'\?",
    ),
    "policy-name": (
        "[policies]\ndefault = 'last_writer_wn'\n",
        r"\[policies\] default: unknown policy 'last_writer_wn'; did you mean 'last_writer_wins'?",
    ),
}


@pytest.mark.parametrize(("text", "message"), TYPOS.values(), ids=TYPOS.keys())
def test_a_typo_anywhere_is_refused_with_a_hint(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises((ConfigError, PolicyError), match=message) as error:
        load_config(path)
    assert str(path) in str(error.value)


BAD_VALUES = {
    "plan": ("salync", "plan = 'starter'", r"plan: expected one of 'growth', 'pro', got 'starter'"),
    "attributes": (
        "saleslayer",
        "attributes = 5",
        r"attributes: expected a list of field names or \"\*\", got 5",
    ),
    "variant-options": (
        "saleslayer",
        "variant_options = ['frmt_size']",
        r"variant_options: expected a table .*got \['frmt_size'\]",
    ),
    "locale": ("saleslayer", "locale = 3", r"locale: expected a non-empty string, got 3"),
    "secret": ("saleslayer", "api_key = 12", r"api_key: expected a string"),
}


@pytest.mark.parametrize(("plugin", "line", "message"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_a_plugin_option_of_the_wrong_type_names_file_table_and_key(
    tmp_path: Path, plugin: str, line: str, message: str
) -> None:
    path = write(
        tmp_path, f"[connections.c]\nplugin = '{plugin}'\nbase_url = 'https://x'\n{line}\n"
    )
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path)
    assert f"{path}: [connections.c]" in str(error.value)


def test_the_built_in_platforms_options_load(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
[sync]
mass_delete_threshold = 0.2
mass_delete_min = 5

[connections.pim]
plugin = "saleslayer"
base_url = "https://x"
api_key = "k"
locale = "es"
attributes = "*"
variant_options = { frmt_size = "size" }

[connections.inv]
plugin = "salync"
base_url = "https://y"
api_key = "env:INV_KEY"
plan = "pro"
push = ["product"]
retry_attempts = 3
rate_limits = "none"
""",
        )
    )
    assert config.connection("pim").options == {
        "attributes": "*",
        "variant_options": {"frmt_size": "size"},
    }
    assert config.connection("inv").options == {"plan": "pro"}
    assert set(config.connection("inv").secrets) == {"api_key"}
