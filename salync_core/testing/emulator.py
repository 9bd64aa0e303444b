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
  item when another is deleted or edited while it reads);
* many accounts in one process (``accounts=N``, see :mod:`salync_core.testing.accounts`): each
  request is routed to its account by credential, each account has its own data, limits,
  statistics (``GET /_emulator/stats`` lists them under ``accounts``) and faults, and every
  admin route acts on one account with ``?account=i`` (account 0 without it);
  ``GET /_emulator/account?account=i`` answers account i's connection options.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.utils import format_datetime
from typing import Any, ClassVar

import anyio
import orjson
from aiohttp import web
from attrs import asdict, define, field, fields_dict

from salync_core import event_loop
from salync_core.testing.accounts import CURRENT, AccountState
from salync_core.testing.clock import ScaledClock

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AfterAnswer = Callable[[web.Request, web.StreamResponse], None]
ADMIN_PREFIX = "/_emulator/"
ACCOUNT_KEY: web.RequestKey[int | None] = web.RequestKey("salync_emulator_account")
"""Where a request keeps the index of the account it was routed to (``None``: no account's
credential)."""
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

    def __init__(
        self, *, seed: int = 0, clock: ScaledClock | None = None, accounts: int = 1
    ) -> None:
        if accounts < 1:
            raise ValueError("accounts must be at least 1")
        self.seed = seed
        self.clock = clock or ScaledClock()
        self.account_count = accounts
        """How many accounts this emulator serves (0 to ``accounts - 1``)."""
        self._account_states: dict[int, AccountState] = {}
        self.account_stats: dict[int, Stats] = {}
        """Per account that made a request: what it was served."""
        self.account_faults: dict[int, Faults] = {}
        """Faults armed for one account only (besides :attr:`faults`, which apply to all)."""
        self.faults = Faults()
        self.stats = Stats()
        self._rng = random.Random(seed)
        self.after_answer: list[AfterAnswer] = []
        """Called with each API request and its answer once the answer is built, before the
        client reads it: what a hook changes is what the client's *next* request sees."""
        self.app = web.Application(
            middlewares=[self._route_account, self._count, self._inject_faults],
            client_max_size=64 * 1024**2,
        )
        self.app.router.add_get(ADMIN_PREFIX + "stats", self._admin_stats)
        self.app.router.add_post(ADMIN_PREFIX + "faults", self._admin_faults)
        self.app.router.add_post(ADMIN_PREFIX + "reset-stats", self._admin_reset_stats)
        self.app.router.add_get(ADMIN_PREFIX + "account", self._admin_account)
        self.app.on_response_prepare.append(self._stamp_date)
        self.setup_routes(self.app.router)
        self._runner: web.AppRunner | None = None
        self.root_url = ""

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        """Add the platform's routes."""
        raise NotImplementedError

    # accounts ---------------------------------------------------------------------------

    def init_account(self, index: int) -> None:
        """Build account ``index``'s state: set its :class:`AccountAttribute`\\ s (it is the
        current account while this runs). Called once, on the account's first use."""

    def account_for_request(self, request: web.Request) -> int | None:
        """The account whose credential an API request carries, or ``None`` for a credential
        of no account (it is then answered as account 0, which refuses it as it always has)."""
        return 0

    async def request_account(self, request: web.Request) -> int | None:
        """:meth:`account_for_request`, for an emulator that must read the body to know
        (credentials in a form or JSON body): override this one instead."""
        return self.account_for_request(request)

    def account_options(self, index: int) -> dict[str, str]:
        """The ``[connections.NAME]`` options (``plugin``, ``base_url``, credentials) that
        connect to account ``index``; call it once the emulator is running."""
        raise NotImplementedError(f"the {self.name} emulator serves one account")

    @property
    def current_account(self) -> int:
        """The account the request being answered is for (0 outside a request)."""
        current = CURRENT.get()
        return current[1] if current is not None and current[0] is self else 0

    def account_state(self) -> AccountState:
        """The current account's state, built on first use by :meth:`init_account`."""
        index = self.current_account
        state = self._account_states.get(index)
        if state is None:
            state = self._account_states[index] = AccountState(index)
            try:
                with self.as_account(index):
                    self.init_account(index)
            except BaseException:
                del self._account_states[index]
                raise
        return state

    @property
    def created_accounts(self) -> list[int]:
        """The accounts whose state exists so far (ascending)."""
        return sorted(self._account_states)

    def account_created(self, index: int) -> bool:
        """Whether account ``index``'s state exists yet (no request has built it otherwise)."""
        return index in self._account_states

    @contextlib.contextmanager
    def as_account(self, index: int) -> Iterator[None]:
        """``with emulator.as_account(3): emulator.product_by_ref(...)``: the Python API
        acts on account ``index`` inside the block."""
        if not 0 <= index < self.account_count:
            raise ValueError(f"no account {index}: this emulator serves {self.account_count}")
        token = CURRENT.set((self, index))
        try:
            yield
        finally:
            CURRENT.reset(token)

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
        server = site._server  # asyncio's Server, or uvloop's (not a subclass of it)
        assert server is not None
        bound_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
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

        anyio.run(main, backend="asyncio", backend_options=event_loop.backend_options())

    # middleware and admin -------------------------------------------------------------

    @web.middleware
    async def _route_account(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Make the request's account current: ``?account=i`` on admin routes, the
        credential's on API routes."""
        if request.path.startswith(ADMIN_PREFIX):
            text = request.query.get("account")
            index: int | None = 0
            if text is not None:
                index = int(text) if text.isascii() and text.isdigit() else -1
                if not 0 <= index < self.account_count:
                    message = f"account must be 0 to {self.account_count - 1}"
                    return json_response({"error": "bad_request", "message": message}, 400)
        else:
            index = await self.request_account(request)
        request[ACCOUNT_KEY] = index
        token = CURRENT.set((self, index or 0))
        try:
            return await handler(request)
        finally:
            CURRENT.reset(token)

    async def _stamp_date(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Date"] = format_datetime(self.clock.now(), usegmt=True)

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        index = request.get(ACCOUNT_KEY)
        # a reset while answering must not count this one as finished
        counted = [self.stats] if self.account_count == 1 else [self.stats, self._stats_of(index)]
        route = request.match_info.route.resource
        route_name = f"{request.method} {route.canonical if route else request.path}"
        for stats in counted:
            stats.requests += 1
            stats.by_route[route_name] += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            response = await handler(request)
        except web.HTTPException as raised:  # no such route: an answer all the same
            self._after_answer(request, raised)
            raise
        finally:
            for stats in counted:
                stats.in_flight -= 1
        self._after_answer(request, response)
        body = response.body if isinstance(response, web.Response) else None
        for stats in (
            [self.stats] if self.account_count == 1 else [self.stats, self._stats_of(index)]
        ):
            stats.by_status[response.status] += 1
            if body is not None:
                stats.bytes_out += len(body)  # type: ignore[arg-type]
        return response

    def _stats_of(self, index: int | None) -> Stats:
        """Account ``index``'s statistics (a throwaway for a request of no account)."""
        if index is None:
            return Stats()
        return self.account_stats.setdefault(index, Stats())

    def _after_answer(self, request: web.Request, response: web.StreamResponse) -> None:
        for hook in list(self.after_answer):
            hook(request, response)

    def _take(self, armed: list[Faults], name: str) -> Faults | None:
        """Spend one of the ``name`` faults armed for this request; the set it came from."""
        for faults in armed:
            count: int = getattr(faults, name)
            if count > 0:
                setattr(faults, name, count - 1)
                self._injected(name)
                return faults
        return None

    def _injected(self, name: str) -> None:
        self.stats.injected[name] += 1
        index = self.current_account
        if index in self.account_stats:
            self.account_stats[index].injected[name] += 1

    @web.middleware
    async def _inject_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        own = self.account_faults.get(self.current_account)
        armed = [f for f in (self.faults, own) if f is not None and f.path in request.path]
        if not armed:
            return await handler(request)
        slow_seconds = max(faults.slow_seconds for faults in armed)
        if slow_seconds:
            await asyncio.sleep(slow_seconds)
        if self._take(armed, "disconnect"):
            assert request.transport is not None
            request.transport.close()
            raise web.HTTPInternalServerError  # never reaches the client
        if limited := self._take(armed, "rate_limited"):
            retry_after = limited.retry_after
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return self.error_response(429, "too_many_requests", "Too many requests", headers)
        if self._take(armed, "html_errors"):
            return web.Response(body=_PROXY_PAGE, status=502, content_type="text/html")
        random_error = next(
            (f for f in armed if f.error_rate and self._rng.random() < f.error_rate), None
        )
        if failing := self._take(armed, "server_errors") or random_error:
            if random_error is not None:
                self._injected("error_rate")
            status = failing.server_error_status
            return self.error_response(status, "server_error", "Injected server error")
        response = await handler(request)
        truncatable = isinstance(response, web.Response) and response.body
        if truncatable and self._take(armed, "truncate"):
            assert isinstance(response, web.Response)
            body = bytes(response.body)  # type: ignore[arg-type]
            response.body = body[: len(body) // 2]
        return response

    def error_response(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        """The platform's error body; emulators override it with their documented shape."""
        return json_response({"error": code, "message": message}, status, headers=headers)

    def stats_json(self) -> dict[str, Any]:
        """What ``GET /_emulator/stats`` answers: the totals, and with several accounts
        ``accounts``, each account that made a request by its index (a string in JSON)."""
        body = self.stats.as_json()
        if self.account_count > 1:
            body["accounts"] = {str(i): s.as_json() for i, s in sorted(self.account_stats.items())}
        return body

    async def _admin_stats(self, request: web.Request) -> web.Response:
        if "account" in request.query:
            stats = self.account_stats.get(self.current_account, Stats())
            return json_response(
                stats.as_json() if self.account_count > 1 else self.stats.as_json()
            )
        return json_response(self.stats_json())

    def _faults_for(self, request: web.Request) -> Faults:
        """The global faults, or with ``?account=i`` account i's own."""
        if "account" not in request.query:
            return self.faults
        return self.account_faults.setdefault(self.current_account, Faults())

    async def _admin_faults(self, request: web.Request) -> web.Response:
        faults = self._faults_for(request)
        try:
            changes = await request.json(loads=orjson.loads)
            if changes.pop("clear", False):
                faults.clear()
            faults.update(changes)
        except (ValueError, AttributeError) as exc:
            return json_response({"error": "bad_request", "message": str(exc)}, 400)
        return json_response(asdict(faults))

    async def _admin_account(self, request: web.Request) -> web.Response:
        """``GET /_emulator/account?account=i``: account i's connection options, for a client
        of an emulator running in another process (``salync emulate --accounts N``)."""
        index = self.current_account
        try:
            options = self.account_options(index)
        except NotImplementedError as exc:
            return json_response({"error": "not_found", "message": str(exc)}, 404)
        return json_response({"account": index, "options": options})

    async def _admin_reset_stats(self, request: web.Request) -> web.Response:
        self.stats = Stats()
        self.account_stats = {}
        return json_response(self.stats.as_json())
