"""The aiohttp application that receives webhook deliveries.

Each connection's deliveries arrive at ``/webhooks/<connection>``, with any further path or
query string (Salla keeps one subscription per URL, so each event gets a URL of its own). A
delivery is read up to :data:`MAX_BODY` bytes, verified and parsed by the connection's
platform over the raw bytes, and its events committed to the inbox before the answer: ``200``
once committed (duplicates included), a 4xx with a log line for anything refused, which then
changes nothing. Applying happens elsewhere (:mod:`salync_core.webhooks.applier`): in the
background of this application (``apply=True``), in ``salync webhooks serve``, or at the start
of the next ``salync sync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from salync_core.engine.connections import LiveConnection
from salync_core.errors import SalyncError
from salync_core.store.inbox import Delivery, Inbox, Received
from salync_core.webhooks.applier import DrainReport, drain, finish_runs
from salync_core.webhooks.events import WebhookRejected

if TYPE_CHECKING:
    from salync_core.engine.core import Engine

logger = logging.getLogger("salync.webhooks")

MAX_BODY = 1024 * 1024
"""The largest delivery accepted (Salla's largest order payloads are tens of kilobytes)."""
IDLE_POLL = 1.0
"""Seconds the background applier waits for news before looking for retries that fell due."""
TURN_PAUSE = 0.02
KEEP_APPLIED_DAYS = 7
"""Applied events stay in the inbox this long, for a person to look at; the mirror's ledger
keeps their ids, so a later redelivery is still recognised."""
PURGE_EVERY = 3600.0
"""Seconds between two drains, with the mirror's lock released."""


class GroupCommit:
    """Deliveries that arrive while the inbox is committing share its next commit: one disk
    sync for all of them, and each answer still waits for the commit holding its events."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self._waiting: list[tuple[Delivery, asyncio.Future[Received]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def commit(self, delivery: Delivery) -> Received:
        future: asyncio.Future[Received] = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await self.inbox.run(self.inbox.receive, [d for d, _ in batch])
            except Exception as exc:  # the inbox is unusable: every waiting delivery fails
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class Receiver:
    """The connections that take webhooks and the inbox their events go to."""

    def __init__(self, engine: Engine, inbox: Inbox, max_body: int) -> None:
        self.engine = engine
        self.inbox = inbox
        self.max_body = max_body
        self.live: dict[str, LiveConnection] = {}
        self.news = asyncio.Event()
        self.commits = GroupCommit(inbox)
        self.stopping = False

    async def open_connections(self) -> None:
        """Open every connection whose platform sends webhooks, once, before the first
        delivery: verifying then needs neither the mirror nor its worker thread."""
        for name in self.engine.config.connections:
            try:
                live = await self.engine._connect(name)
            except SalyncError as exc:
                logger.warning("%s: cannot receive webhooks: %s", name, exc)
                continue
            if live.platform.webhook_events:
                self.live[name] = live

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["connection"]
        try:
            live = self.live.get(name)
            if live is None:
                raise WebhookRejected(404, "no connection of that name receives webhooks")
            body = await self._read(request)
            events = live.platform.parse_webhook(live.ctx, request.headers, body)
            digest = hashlib.sha256(body).hexdigest()
            rows = [
                (_event_id(e.id, digest, i, len(events)), e.type, e.data)
                for i, e in enumerate(events)
            ]
            try:
                received = await self.commits.commit(Delivery(name, rows, digest))
            except sqlite3.Error as exc:  # locked past its timeout, disk full: not committed
                logger.error("%s: the webhook inbox cannot take events: %s", name, exc)
                raise WebhookRejected(503, "the inbox cannot take events now; retry") from None
        except WebhookRejected as exc:
            logger.warning("webhook for %r refused with %d: %s", name[:64], exc.status, exc.reason)
            return web.json_response({"error": exc.reason}, status=exc.status)
        self.news.set()
        logger.info(
            "%s: webhook accepted (%d new, %d duplicate)",
            name,
            received.accepted,
            received.duplicates,
        )
        return web.json_response({"accepted": received.accepted, "duplicates": received.duplicates})

    async def _read(self, request: web.Request) -> bytes:
        """The raw body, refusing more than ``max_body`` bytes before reading them all."""
        declared = request.content_length
        if declared is not None and declared > self.max_body:
            raise WebhookRejected(413, f"body of {declared} bytes exceeds {self.max_body}")
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > self.max_body:
                    raise WebhookRejected(413, f"body exceeds {self.max_body} bytes")
                chunks.append(chunk)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            raise WebhookRejected(400, f"truncated body ({type(exc).__name__})") from None
        except Exception as exc:  # aiohttp's payload errors (a short Content-Length body)
            if type(exc).__module__.startswith("aiohttp"):
                raise WebhookRejected(400, f"truncated body ({type(exc).__name__})") from None
            raise
        if declared is not None and size != declared:
            raise WebhookRejected(400, f"truncated body ({size} of {declared} bytes)")
        return b"".join(chunks)

    async def apply_forever(self, report: DrainReport) -> None:
        """Drain the inbox whenever a delivery is accepted (and every :data:`IDLE_POLL`
        seconds, for retries that fell due) until :meth:`stop`.

        It is stopped by a flag, never cancelled: a cancellation landing inside the store's
        worker-thread call (shielded, so the page transaction is not cut off) could be lost,
        and the application's cleanup would then wait for ever."""
        purged_at = 0.0
        while not self.stopping:
            self.news.clear()
            if time.monotonic() - purged_at > PURGE_EVERY:
                await self.inbox.run(self.inbox.purge_applied, _days_ago(KEEP_APPLIED_DAYS))
                purged_at = time.monotonic()
            done = report.applied + report.failed
            try:
                # Writing the mirror is a sync's job too: take turns with other processes.
                async with self.engine.writers.mirror_lock(None):
                    await drain(self.engine, self.inbox, list(self.live), report)
            except Exception:  # the mirror unusable for now: events wait in the inbox
                logger.exception("applying webhook events failed; retrying in %.0f s", IDLE_POLL)
            if report.applied + report.failed > done:
                logger.info(
                    "webhooks applied: %d, skipped %d, failed %d so far",
                    report.applied,
                    report.skipped,
                    report.failed,
                )
            # A pause outside the lock: a sync in another process polling for the mirror's
            # lock gets its turn under a steady stream, and arrivals gather into a batch.
            await asyncio.sleep(TURN_PAUSE)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.news.wait(), IDLE_POLL)

    def stop(self) -> None:
        """Ask :meth:`apply_forever` to return after the drain under way."""
        self.stopping = True
        self.news.set()


INBOX = web.AppKey("inbox", Inbox)
RECEIVER = web.AppKey("receiver", Receiver)


def _days_ago(days: int) -> str:
    moment = datetime.now(UTC) - timedelta(days=days)
    return moment.isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


def _event_id(given: str | None, digest: str, index: int, count: int) -> str:
    """The platform's event id, else the body's hash (and the event's place in a batch)."""
    if given:
        return given
    return f"sha256:{digest}" if count == 1 else f"sha256:{digest}#{index}"


def webhook_app(
    engine: Engine,
    *,
    inbox: Inbox | None = None,
    apply: bool = True,
    max_body: int = MAX_BODY,
) -> web.Application:
    """An aiohttp application receiving ``POST /webhooks/<connection>[/...][?...]``.

    Mount it in a host app (``host.add_subapp("/hooks", webhook_app(engine))``) or serve it
    alone (``salync webhooks serve``). Events go to ``inbox`` (by default the file beside the
    mirror); with ``apply`` the application also applies them in the background, otherwise
    ``salync sync`` applies them at its start.
    """
    app = web.Application(client_max_size=max_body)
    owned = inbox is None
    box = inbox if inbox is not None else Inbox.beside(engine.store.path)
    receiver = Receiver(engine, box, max_body)
    app[INBOX] = box
    app[RECEIVER] = receiver
    app.router.add_post("/webhooks/{connection}", receiver.handle)
    app.router.add_post("/webhooks/{connection}/{tail:.*}", receiver.handle)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await receiver.open_connections()
        report = DrainReport()  # one run per connection for as long as the app serves
        loop = asyncio.get_running_loop()
        task = loop.create_task(receiver.apply_forever(report)) if apply else None
        yield
        if task is not None:
            receiver.stop()
            await asyncio.gather(task, return_exceptions=True)
            await finish_runs(engine, report)
        if owned:
            box.close()

    app.cleanup_ctx.append(lifecycle)
    return app
