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
from salync_core.config import load_config
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


def code_blocks(language: str) -> list[str]:
    """The guide's code blocks in one language, exactly as printed."""
    text = DOCS.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def the_block(language: str, first_line: str) -> str:
    (block,) = [b for b in code_blocks(language) if b.startswith(first_line)]
    return block


@pytest.fixture
def hello_dir(tmp_path: Path) -> Path:
    """The docs' example module, installed as a distribution with a `salync` entry point."""
    module = the_block("python", '"""hello_platform:')
    directory = tmp_path / "site"
    directory.mkdir()
    (directory / "hello_platform.py").write_text(module, encoding="utf-8")
    dist = directory / "hello_platform-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-platform\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[salync]\nhello = hello_platform\n")
    return directory


@pytest.fixture
def hello_installed(hello_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SALYNC_LOAD_PLUGINS", raising=False)
    sys.path.insert(0, str(hello_dir))
    importlib.invalidate_caches()
    try:
        plugins.load_plugins(refresh=True)
        yield
    finally:
        plugins.unregister("hello")
        sys.path.remove(str(hello_dir))
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


@pytest.mark.usefixtures("hello_installed")
def test_the_guides_salync_toml_loads_with_the_example_installed(tmp_path: Path) -> None:
    shell = the_block("sh", "salync emulate hello")
    toml = re.search(r"<<'TOML'\n(.*?)^TOML$", shell, re.S | re.M)
    assert toml is not None
    (tmp_path / "salync.toml").write_text(toml.group(1), encoding="utf-8")

    demo = load_config(tmp_path / "salync.toml").connection("demo")

    assert demo.options == {"shout": True}
    assert set(demo.secrets) == {"api_key"}


def test_the_guides_test_file_passes_as_printed(hello_dir: Path, tmp_path: Path) -> None:
    test_file = the_block("python", '"""test_hello.py:')
    (tmp_path / "test_hello.py").write_text(test_file, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "SALYNC_LOAD_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(hello_dir), env.get("PYTHONPATH", "")])

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hello.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
