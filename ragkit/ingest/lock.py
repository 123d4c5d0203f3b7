"""Cross-process write locks: one writer per index (and per store directory), waiting with a timeout.

A lock is an exclusive ``flock`` on a small file; the holder writes who it is into that file (pid, host, what it is
doing, since when), so a process that finds the lock busy can say who holds it. The kernel releases a flock when
its process dies, so a killed writer never leaves a stale lock behind; the holder text it leaves is overwritten by
the next holder. ``flock`` is per open file: a second lock object on the same path waits even in the same process,
unless the lock is ``reentrant`` (the index lock is: the command line takes it, then the indexer takes it again).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable

from ragkit.errors import RagkitError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; locks are then only advisory no-ops
    fcntl = None  # type: ignore[assignment]

DEFAULT_WAIT_S = 60.0
INDEX_LOCK = "index.lock"


class IndexBusy(RagkitError):
    """Another process holds the write lock and did not let go within the wait."""

    def __init__(self, message: str, *, holder: str, path: str) -> None:
        super().__init__(message)
        self.holder = holder
        self.path = path


def _command() -> str:
    # Program and subcommand only: the rest of a command line may hold things that should not be written down.
    argv = [a for a in sys.argv if a]
    prog = Path(argv[0]).name if argv else "python"
    sub = next((a for a in argv[1:] if not a.startswith("-")), "")
    return f"{prog} {sub}".strip()


def describe_holder(text: str) -> str:
    """A holder record as one phrase: 'pid 4242 (ragkit index) on host, since 12:00:03'."""
    try:
        info = json.loads(text)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["since"])))
        host = f" on {info['host']}" if info.get("host") != socket.gethostname() else ""
        return f"pid {info['pid']} ({info['what']}){host}, since {since}"
    except (ValueError, KeyError, TypeError):
        return "another process (it has not said who it is yet)"


_held: dict[str, list[Any]] = {}  # reentrant locks this process holds: path -> [file, count]
_held_guard = threading.Lock()


class FileLock:
    """An exclusive lock on ``path`` shared with every process that locks the same file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        what: str = "",
        reentrant: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(path)
        self.what = what or _command()
        self.reentrant = reentrant
        self._file: IO[str] | None = None
        self._clock = clock
        self._sleep = sleep

    @property
    def held(self) -> bool:
        return self._file is not None

    def holder(self) -> str:
        """Who holds the lock now, as far as its file says."""
        try:
            return describe_holder(self.path.read_text(encoding="utf-8"))
        except OSError:
            return describe_holder("")

    def _try(self, f: IO[str]) -> bool:
        if fcntl is None:
            return True
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def acquire(self, wait: float = DEFAULT_WAIT_S, *, label: str = "") -> None:
        """Take the lock, waiting up to ``wait`` seconds; ``IndexBusy`` names the holder when it stays busy."""
        if self._file is not None:
            return
        key = str(self.path.resolve())
        if self.reentrant:
            with _held_guard:
                entry = _held.get(key)
                if entry is not None:
                    entry[1] += 1
                    self._file = entry[0]
                    return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for as long as the lock is
        deadline = self._clock() + max(0.0, wait)
        delay = 0.02
        while not self._try(f):
            if self._clock() >= deadline:
                f.close()
                holder = self.holder()
                where = label or str(self.path.parent)
                raise IndexBusy(
                    f"{where} is busy: {holder} is writing it; waited {wait:g} s for it to finish",
                    holder=holder,
                    path=str(self.path),
                )
            self._sleep(delay)
            delay = min(delay * 2, 0.5)
        f.seek(0)
        f.truncate()
        record = {"pid": os.getpid(), "host": socket.gethostname(), "what": self.what, "since": time.time()}
        f.write(json.dumps(record))
        f.flush()
        self._file = f
        if self.reentrant:
            with _held_guard:
                _held[key] = [f, 1]

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; never waits."""
        try:
            self.acquire(0.0)
        except IndexBusy:
            return False
        return True

    def release(self) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        if self.reentrant:
            key = str(self.path.resolve())
            with _held_guard:
                entry = _held.get(key)
                if entry is not None and entry[0] is f:
                    entry[1] -= 1
                    if entry[1] > 0:
                        return
                    del _held[key]
        try:
            f.seek(0)
            f.truncate()
        finally:
            f.close()  # closing the file releases the flock

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def index_lock(index_dir: str | os.PathLike[str], *, what: str = "") -> FileLock:
    """The write lock of the index in ``index_dir`` (reentrant within a process)."""
    return FileLock(Path(index_dir) / INDEX_LOCK, what=what, reentrant=True)


__all__ = ["FileLock", "IndexBusy", "index_lock", "describe_holder", "DEFAULT_WAIT_S", "INDEX_LOCK"]
