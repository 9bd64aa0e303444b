"""Meta-tests that keep the plugin surface honest: every hook documented with its signature,
the public names exact, and the worked example in docs/plugins.md installed through a real
entry point and synced end to end."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import salync_core
from salync_core import Engine, hookspecs, plugins
from salync_core.testing.config import write_config

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
HOOKS = [
    fn
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "salync_spec")
]


def test_there_are_hooks() -> None:
    assert {fn.__name__ for fn in HOOKS} == {
        "register_platforms",
        "register_emulators",
        "register_policies",
        "decide_field",
    }


@pytest.mark.parametrize("hook", HOOKS, ids=lambda fn: fn.__name__)
def test_every_hook_is_documented_with_its_exact_signature(hook: object) -> None:
    params = ", ".join(inspect.signature(hook).parameters)  # type: ignore[arg-type]
    assert inspect.getdoc(hook), "a hook needs a docstring"
    assert f"`{hook.__name__}({params})`" in DOCS.read_text(encoding="utf-8")  # type: ignore[attr-defined]


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(salync_core).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(salync_core.__all__) == public
    assert salync_core.__all__ == sorted(salync_core.__all__)


def test_the_built_in_platforms_come_through_entry_points() -> None:
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group=plugins.ENTRY_POINT_GROUP)}
    assert {"saleslayer", "salync"} <= names
    assert {"saleslayer", "salync"} <= set(plugins.platforms())


def test_load_plugins_env_restricts_what_loads() -> None:
    env = {**os.environ, "SALYNC_LOAD_PLUGINS": "saleslayer"}
    result = subprocess.run(
        [sys.executable, "-m", "salync_core", "emulate", "salync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no emulator for 'salync'" in result.stderr


@pytest.fixture
def hello_installed(tmp_path: Path) -> Iterator[None]:
    """The docs' example module, installed as a distribution with a `salync` entry point."""
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert code is not None
    (tmp_path / "hello_platform.py").write_text(code.group(1), encoding="utf-8")
    dist = tmp_path / "hello_platform-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-platform\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[salync]\nhello = hello_platform\n")
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        plugins.load_plugins(refresh=True)
        yield
    finally:
        plugins.unregister("hello")
        sys.path.remove(str(tmp_path))
        sys.modules.pop("hello_platform", None)


@pytest.mark.anyio
@pytest.mark.usefixtures("hello_installed")
async def test_the_worked_example_syncs_end_to_end(tmp_path: Path) -> None:
    emulator = plugins.emulators()["hello"]()
    async with emulator.running() as url:
        config = write_config(
            tmp_path, {"demo": {"plugin": "hello", "base_url": url, "api_key": "k"}}
        )
        async with Engine.open(config) as engine:
            (report,) = await engine.sync()

            assert report.ok, report.problems
            assert [r["ref"] for r in engine.records("product")][:2] == ["HELLO-0", "HELLO-1"]
            assert len(list(engine.records("product"))) == 7
            assert emulator.stats.requests == 3
