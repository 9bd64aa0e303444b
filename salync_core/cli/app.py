"""What every command shares: the console, running async code, and turning errors into one
clear line and an exit code (0 ok, 1 a run failed, 2 bad configuration or usage)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import anyio
import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from salync_core.errors import ConfigError, PluginError, PolicyError, SalyncError, StoreError
from salync_core.secrets import redactor

# Piped output (logs, CI, `| less`) gets 120 columns rather than rich's 80, so tables keep
# their headers; a terminal keeps its own width.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)

P = ParamSpec("P")
T = TypeVar("T")

EXIT_FAILED = 1
EXIT_CONFIG = 2

config_option = click.option(
    "--config",
    "config_path",
    default="salync.toml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The configuration file.",
)


def configure_logging(verbosity: int) -> None:
    """Warnings by default, ``-v`` info, ``-vv`` debug; every handler masks known secrets."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = RichHandler(console=err_console, show_path=False, markup=False)
    handler.addFilter(redactor)
    logger = logging.getLogger("salync")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def run(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a coroutine function on asyncio (aiohttp needs it)."""
    return anyio.run(functools.partial(fn, *args, **kwargs), backend="asyncio")


def fail(message: str, code: int = EXIT_FAILED) -> None:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    sys.exit(code)


def handle_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """One clear line instead of a traceback for every error Salync knows about."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, PluginError, PolicyError, StoreError) as exc:
            fail(str(exc), EXIT_CONFIG)
        except SalyncError as exc:
            fail(str(exc))
        raise AssertionError("unreachable")

    return wrapper


class ProgressBars:
    """Draws one bar per stream from the engine's page callbacks."""

    def __init__(self, enabled: bool = True) -> None:
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            disable=not enabled,
            transient=False,
        )
        self.tasks: dict[tuple[str, str], Any] = {}

    def __enter__(self) -> ProgressBars:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.__exit__(None, None, None)

    def page_done(self, connection: str, stream: str, items: int, total: int | None) -> None:
        key = (connection, stream)
        if key not in self.tasks:
            self.tasks[key] = self.bars.add_task(f"{connection}/{stream}", total=total)
        task = self.tasks[key]
        self.bars.update(task, advance=items, total=total)
