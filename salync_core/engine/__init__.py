"""The sync engine: fetch, map, resolve, apply, push, and reconcile."""

from salync_core.engine.core import Engine
from salync_core.engine.report import Problem, RunReport, StreamReport

__all__ = ["Engine", "Problem", "RunReport", "StreamReport"]
