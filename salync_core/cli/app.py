"""What every command shares: the console, running async code, and turning errors into one
clear line and an exit code (0 ok, 1 a run failed, 2 bad configuration or usage, 130 cancelled).

Every message can carry text Salync does not control (a server's error body, a record's key, a
TOML key such as ``[connections.pim]``), so the consoles never read markup: colour is given with
``style=`` or :class:`rich.text.Text`, never with ``[red]...[/]`` tags inside a string.
"""

from __future__ import annotations

import functools
import logging
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import anyio
import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from salync_core import event_loop
from salync_core.config import load_config
from salync_core.errors import ConfigError, PluginError, PolicyError, SalyncError, StoreError
from salync_core.secrets import redactor
from salync_core.store import failures

# Piped output (logs, CI, `| less`) gets 120 columns rather than rich's 80, so tables keep
# their headers; a terminal keeps its own width. markup=False: see the module docstring.
console = Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 120)
err_console = Console(
    stderr=True, highlight=False, markup=False, width=None if sys.stderr.isatty() else 120
)

P = ParamSpec("P")
T = TypeVar("T")

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_CANCELLED = 130

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


class Cancelled(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM stopped the command; what was committed stays. A
    ``KeyboardInterrupt``, so a command that runs until interrupted can simply catch that."""

    def __init__(self, signum: int) -> None:
        self.signal = signal.Signals(signum).name
        super().__init__(self.signal)


def run(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a coroutine function on asyncio (aiohttp needs it), with SIGINT and SIGTERM turned
    into cancellation: the work in progress is cancelled at its next await, a page being
    written commits or rolls back first, the run is recorded ``cancelled``, every connection
    and the mirror are closed, and :class:`Cancelled` is raised. A second signal while that
    happens is ignored (it takes a moment, never long). The loop is uvloop's where it is
    installed (:mod:`salync_core.event_loop`)."""
    return anyio.run(
        _cancellable,
        functools.partial(fn, *args, **kwargs),
        backend="asyncio",
        backend_options=event_loop.backend_options(),
    )


async def _cancellable(fn: Callable[[], Awaitable[T]]) -> T:
    received: list[int] = []
    outcome: list[T] = []
    error: list[Exception] = []
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                async for signum in signals:
                    received.append(signum)
                    tg.cancel_scope.cancel()

            async def body() -> None:
                try:
                    outcome.append(await fn())
                except Exception as exc:  # re-raised below, outside the task group
                    error.append(exc)
                finally:
                    tg.cancel_scope.cancel()

            tg.start_soon(watch)
            tg.start_soon(body)
    if received:
        raise Cancelled(received[0])
    if error:
        raise error[0]
    return outcome[0]


def fail(message: str, code: int = EXIT_FAILED) -> None:
    """Print ``error: MESSAGE`` on stderr, never reading markup in the message, and exit."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)
    sys.exit(code)


def labelled(label: str, style: str, message: str) -> Text:
    """``label message`` with the label styled and the message taken literally."""
    return Text.assemble((label, style), " ", message)


def say_cancelled(signal_name: str) -> None:
    err_console.print(
        Text.assemble(
            ("cancelled", "bold yellow"),
            f" ({signal_name}): stopped at the last committed page; "
            "run the command again to go on from there",
        ),
        soft_wrap=True,
    )
    sys.exit(EXIT_CANCELLED)


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
        except sqlite3.Error as exc:  # the mirror failed outside a run (which reports it)
            fail(failures.describe(_mirror_of(kwargs), exc))
        except Cancelled as exc:
            say_cancelled(exc.signal)
        except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
            say_cancelled("SIGINT")
        raise AssertionError("unreachable")

    return wrapper


def _mirror_of(kwargs: dict[str, Any]) -> str:
    """The mirror a failed command was using, for its error line (best effort)."""
    try:
        return str(load_config(kwargs.get("config_path") or "salync.toml").store_path)
    except Exception:
        return "the mirror"


class ProgressBars:
    """Draws one bar per stream from the engine's page callbacks."""

    def __init__(self, enabled: bool = True) -> None:
        self.bars = Progress(
            TextColumn("{task.description}", markup=False),
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
