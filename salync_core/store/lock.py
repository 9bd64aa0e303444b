"""One writer per mirror: an OS lock on ``<mirror>.lock`` held while a sync or push runs.

Why a ``flock`` and not a lease row in SQLite: the kernel releases it when its holder dies
(``kill -9``, power loss of the process, an OOM kill), so a crashed sync never blocks the next
one and there is no heartbeat or staleness rule to get wrong. Locks taken through separate
``open`` calls exclude each other even inside one process, so two engines on one mirror in one
process also take turns. (``flock`` is not reliable on network file systems; a mirror belongs on
a local disk anyway, as SQLite's WAL mode requires.)

The file holds who has the lock (pid, command, since when) so the one that waits can say so.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from salync_core.store.database import utc_now


def lock_path(mirror: Path) -> Path:
    return mirror.with_name(mirror.name + ".lock")


class MirrorLock:
    """A non-blocking, exclusive lock on a mirror's lock file."""

    def __init__(self, mirror: Path) -> None:
        self.path = lock_path(mirror)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; returns whether this lock now holds it."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, _holder_line().encode())
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor releases the flock

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it (best effort)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        return text or "another process"


def _holder_line() -> str:
    command = " ".join(Path(arg).name if i == 0 else arg for i, arg in enumerate(sys.argv[:2]))
    return f"pid {os.getpid()} ({command or 'python'}, since {utc_now()})"
