"""Pytest fixtures for plugin authors, installed as the ``salync`` pytest plugin.

aiohttp runs on asyncio only, so the anyio backend is pinned to asyncio for every test.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio (aiohttp needs it)."""
    return "asyncio"
