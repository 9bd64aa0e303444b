"""The base every platform emulator is built on: a real aiohttp server on loopback.

An emulator is a product feature, not a test mock: plugin authors point a connection at it. The
base gives every emulator the same things:

* a server on ``127.0.0.1`` (a free port unless one is asked for), usable as an async context
  manager in tests or run until stopped from ``salync emulate``;
* switchable faults (:class:`Faults`): 5xx answers, 429 bursts, HTML error pages from a
  "proxy", slow answers, truncated bodies and dropped connections;
* request statistics (:class:`Stats`) that tests assert on;
* an admin API under ``/_emulator/`` (``GET stats``, ``POST faults``, ``POST reset-stats``) so
  faults can be switched on an emulator running in another process;
* platform time (:class:`ScaledClock`), reported in the ``Date`` header;
* hooks run after each API request is answered (:attr:`Emulator.after_answer`), to change the
  data between two pages the way a concurrent user would (a plugin's paging must not skip an
  item when another is deleted or edited while it reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import format_datetime
from typing import Any, ClassVar

import orjson
from aiohttp import web
from attrs import asdict, define, field, fields_dict

from salync_core.testing.clock import ScaledClock

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AfterAnswer = Callable[[web.Request, web.StreamResponse], None]
ADMIN_PREFIX = "/_emulator/"
SHUTDOWN_SECONDS = 0.5
"""How long stopping waits for answers in flight (a killed client never reads them)."""

_PROXY_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>"
)


@define
class Faults:
    """Faults to inject, switchable while the emulator runs. Counts apply to the next N
    requests whose path contains ``path`` (every API request when empty)."""

    server_errors: int = 0
    server_error_status: int = 503
    error_rate: float = 0.0
    """Fraction of requests answered with ``server_error_status``, drawn from a seeded RNG."""
    rate_limited: int = 0
    retry_after: str | None = "1"
    """``Retry-After`` sent with injected 429s; ``None`` leaves the header out."""
    html_errors: int = 0
    """Answer with a proxy's HTML 502 page instead of JSON."""
    truncate: int = 0
    """Cut the JSON body in half (a complete HTTP answer whose body is not valid JSON)."""
    disconnect: int = 0
    """Close the connection without answering."""
    slow_seconds: float = 0.0
    """Delay every answer by this many real seconds."""
    path: str = ""

    def update(self, changes: dict[str, Any]) -> None:
        """Set the named faults, refusing names that do not exist."""
        known = fields_dict(Faults)
        unknown = set(changes) - set(known)
        if unknown:
            raise ValueError(f"unknown faults: {', '.join(sorted(unknown))}")
        for name, value in changes.items():
            setattr(self, name, value)

    def clear(self) -> None:
        """Switch every fault off."""
        for name, value in asdict(Faults()).items():
            setattr(self, name, value)


@define
class Stats:
    """What the emulator has served, for assertions in tests and benchmarks."""

    requests: int = 0
    by_route: Counter[str] = field(factory=Counter)
    by_status: Counter[int] = field(factory=Counter)
    injected: Counter[str] = field(factory=Counter)
    bytes_out: int = 0
    in_flight: int = 0
    """API requests being answered right now."""
    max_in_flight: int = 0
    """The most API requests that were being answered at once (a client's concurrency)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_route": dict(self.by_route),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "injected": dict(self.injected),
            "bytes_out": self.bytes_out,
            "max_in_flight": self.max_in_flight,
        }


def json_response(data: Any, status: int = 200, **kwargs: Any) -> web.Response:
    """A JSON answer encoded with orjson."""
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", **kwargs
    )


class Emulator:
    """Subclass, set ``name`` and implement :meth:`setup_routes`; the base does the rest."""

    name: ClassVar[str] = "emulator"
    api_prefix: ClassVar[str] = ""
    """Path under the server root where the platform API lives (``/v1``, ``/rest/Catalog``)."""

    def __init__(self, *, seed: int = 0, clock: ScaledClock | None = None) -> None:
        self.seed = seed
        self.clock = clock or ScaledClock()
        self.faults = Faults()
        self.stats = Stats()
        self._rng = random.Random(seed)
        self.after_answer: list[AfterAnswer] = []
        """Called with each API request and its answer once the answer is built, before the
        client reads it: what a hook changes is what the client's *next* request sees."""
        self.app = web.Application(
            middlewares=[self._count, self._inject_faults], client_max_size=64 * 1024**2
        )
        self.app.router.add_get(ADMIN_PREFIX + "stats", self._admin_stats)
        self.app.router.add_post(ADMIN_PREFIX + "faults", self._admin_faults)
        self.app.router.add_post(ADMIN_PREFIX + "reset-stats", self._admin_reset_stats)
        self.app.on_response_prepare.append(self._stamp_date)
        self.setup_routes(self.app.router)
        self._runner: web.AppRunner | None = None
        self.root_url = ""

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        """Add the platform's routes."""
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """The platform API's base URL, what a connection's ``base_url`` should be."""
        return self.root_url + self.api_prefix

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; return :attr:`base_url`."""
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        bound_port = server.sockets[0].getsockname()[1]
        self.root_url = f"http://{host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @contextlib.asynccontextmanager
    async def running(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """``async with emulator.running() as base_url: ...``"""
        await self.start(host, port)
        try:
            yield self.base_url
        finally:
            await self.stop()

    def serve_forever(
        self, host: str = "127.0.0.1", port: int = 0, announce: Callable[[str], None] = print
    ) -> None:
        """Run until SIGINT or SIGTERM, announcing the base URL once it is listening."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            async with self.running(host, port) as url:
                announce(url)
                await stop.wait()

        asyncio.run(main())

    # middleware and admin -------------------------------------------------------------

    async def _stamp_date(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Date"] = format_datetime(self.clock.now(), usegmt=True)

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        self.stats.requests += 1
        route = request.match_info.route.resource
        self.stats.by_route[f"{request.method} {route.canonical if route else request.path}"] += 1
        stats = self.stats  # a reset while answering must not count this one as finished
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            response = await handler(request)
        except web.HTTPException as raised:  # no such route: an answer all the same
            self._after_answer(request, raised)
            raise
        finally:
            stats.in_flight -= 1
        self._after_answer(request, response)
        self.stats.by_status[response.status] += 1
        if isinstance(response, web.Response) and response.body is not None:
            self.stats.bytes_out += len(response.body)  # type: ignore[arg-type]
        return response

    def _after_answer(self, request: web.Request, response: web.StreamResponse) -> None:
        for hook in list(self.after_answer):
            hook(request, response)

    def _take(self, name: str) -> bool:
        count: int = getattr(self.faults, name)
        if count > 0:
            setattr(self.faults, name, count - 1)
            self.stats.injected[name] += 1
            return True
        return False

    @web.middleware
    async def _inject_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        faults = self.faults
        if request.path.startswith(ADMIN_PREFIX) or faults.path not in request.path:
            return await handler(request)
        if faults.slow_seconds:
            await asyncio.sleep(faults.slow_seconds)
        if self._take("disconnect"):
            assert request.transport is not None
            request.transport.close()
            raise web.HTTPInternalServerError  # never reaches the client
        if self._take("rate_limited"):
            headers = {"Retry-After": faults.retry_after} if faults.retry_after is not None else {}
            return self.error_response(429, "too_many_requests", "Too many requests", headers)
        if self._take("html_errors"):
            return web.Response(body=_PROXY_PAGE, status=502, content_type="text/html")
        random_error = faults.error_rate and self._rng.random() < faults.error_rate
        if self._take("server_errors") or random_error:
            if random_error:
                self.stats.injected["error_rate"] += 1
            status = faults.server_error_status
            return self.error_response(status, "server_error", "Injected server error")
        response = await handler(request)
        if isinstance(response, web.Response) and response.body and self._take("truncate"):
            body = bytes(response.body)  # type: ignore[arg-type]
            response.body = body[: len(body) // 2]
        return response

    def error_response(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        """The platform's error body; emulators override it with their documented shape."""
        return json_response({"error": code, "message": message}, status, headers=headers)

    async def _admin_stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats.as_json())

    async def _admin_faults(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json(loads=orjson.loads)
            if changes.pop("clear", False):
                self.faults.clear()
            self.faults.update(changes)
        except (ValueError, AttributeError) as exc:
            return json_response({"error": "bad_request", "message": str(exc)}, 400)
        return json_response(asdict(self.faults))

    async def _admin_reset_stats(self, request: web.Request) -> web.Response:
        self.stats = Stats()
        return json_response(self.stats.as_json())
