"""The Salync inventory API emulator: a real aiohttp server on loopback.

Plugin authors point a Salync connection at it; tests drive it over HTTP and assert on its
Python API. What is documented and what is derived is stated in each module's docstring; in
short, the facts of API-FACTS §4.1 (plans, keys, HTTPS only, limits, the error body, the
resources and the stock / variant / purchase-order / supplier rules) are followed as written,
and everything the public docs do not show (paths, parameters, JSON shapes, pagination, headers,
idempotency, webhooks) follows the derived design of §4.2.

Modules:

* ``server``: :class:`SalyncEmulator`, the server, its middleware and its Python API;
* ``api``: the ``/v1`` endpoints; ``admin``: the ``/_emulator/`` routes;
* ``gate``: API keys, plans, rate limits and ``Idempotency-Key``;
* ``data`` / ``models``: the in-memory workspace and its JSON shapes; ``body``: request bodies;
* ``catalog``, ``stock``, ``purchasing``: the rules that change it;
* ``paging``: keyset pagination; ``seed``: the starting data;
* ``webhooks``: signed deliveries with retries; ``tls``: the HTTPS mode.

Admin routes (no auth, under ``/_emulator/``), besides the toolkit's ``stats``, ``faults`` and
``reset-stats``: ``GET|POST config``, ``POST keys``, ``GET|POST clock``,
``POST channels/{id}/status``, ``POST channels/{id}/listings/{sku}``, ``GET|POST webhooks``.
"""

from salync_inventory.emulator.server import SalyncEmulator

__all__ = ["SalyncEmulator"]
