"""Webhook delivery for emulators: the machinery every platform's sender shares.

An emulator owns the platform's part (which subscriptions want an event, the envelope, the
signature and the retry schedule); :class:`WebhookSender` owns the rest: an HTTP session of its
own, one background task per delivery, attempts spaced in platform time (so advancing a
:class:`~salync_core.testing.clock.ScaledClock` runs a retry sooner), and :meth:`idle` for tests
that wait until everything in flight has landed. Targets are whatever URLs the test's receiver
listens on (127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Protocol

import aiohttp
from attrs import define, field

from salync_core.testing.clock import ScaledClock

_POLL: Final = 0.02


class Outcome(Protocol):
    """The record of one attempt, which :meth:`WebhookSender.post` fills in."""

    status: int | None
    error: str | None


@define
class WebhookSender:
    """Deliveries in flight for one emulator: open it with the server, close it after."""

    clock: ScaledClock
    user_agent: str
    attempt_timeout: float
    """Real seconds an attempt may take before it fails."""
    _tasks: set[asyncio.Task[None]] = field(factory=set, init=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False)

    @property
    def is_open(self) -> bool:
        return self._session is not None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.attempt_timeout),
            headers={"User-Agent": self.user_agent},
        )

    async def close(self) -> None:
        """Cancel deliveries in flight and close the HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def idle(self) -> None:
        """Wait until no delivery is in flight, retries included."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, delivery: Coroutine[Any, Any, None]) -> None:
        """Run one delivery in the background."""
        task = asyncio.get_running_loop().create_task(delivery)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def retrying(
        self, delays: tuple[float, ...], attempt: Callable[[int], Awaitable[bool]]
    ) -> int | None:
        """Call ``attempt(1)``, then again after each of ``delays`` platform seconds until it
        answers ``True``; returns the number of the attempt that did, or ``None``."""
        for number, delay in enumerate((0.0, *delays), start=1):
            await self.sleep_platform(delay)
            if await attempt(number):
                return number
        return None

    async def post(self, url: str, body: bytes, headers: dict[str, str], record: Outcome) -> None:
        """POST one attempt, writing its status (or the error that failed it) into ``record``."""
        assert self._session is not None
        try:
            async with self._session.post(url, data=body, headers=headers) as reply:
                record.status = reply.status
                with contextlib.suppress(aiohttp.ClientError):
                    await reply.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            record.error = f"{type(exc).__name__}: {exc}"

    async def sleep_platform(self, seconds: float) -> None:
        """Sleep ``seconds`` of platform time, waking early if the clock is advanced."""
        deadline = self.clock.time() + seconds
        # Polling, because ScaledClock.advance() cannot wake a sleeper.
        while (left := deadline - self.clock.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(left / self.clock.scale, _POLL))
