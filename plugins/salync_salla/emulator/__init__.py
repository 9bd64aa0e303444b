"""The Salla emulator: accounts host and Admin API v2 on one loopback port.

Modules: ``server`` (:class:`SallaEmulator`: routes, limits, Python API), ``oauth`` (the
accounts host: codes, single-use refresh tokens in families), ``data`` (the store, its seed,
the queued bulk quantities and the change events a webhook sender hooks into:
``SallaEmulator.store.listeners`` / ``SallaEmulator.changes``).
"""

from salync_salla.emulator.server import SallaEmulator

__all__ = ["SallaEmulator"]
