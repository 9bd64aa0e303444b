"""The package's public surface is exactly what ``__all__`` says."""

from __future__ import annotations

import inspect

import salync_core.http as http


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(http).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert set(http.__all__) == public
    assert http.__all__ == sorted(http.__all__)
