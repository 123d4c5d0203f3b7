"""Document ids of files: the absolute path, so two files never share one and pruning can tell where each came from.

A file's id is its absolute path (``os.path.abspath``: the current directory joined on, ``..`` folded, symbolic
links kept as named), POSIX-style, with ``%`` and ``#`` written as ``%25`` and ``%23``; a record of a JSONL or CSV
file is ``<file id>#<record id>``. The id does not depend on the folder named on the command line or on the
directory a command runs in, and ``file_of`` reads the file back out of an id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable

_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:/")


def file_id(path: str | os.PathLike[str]) -> str:
    """The document id of a file: its absolute path, POSIX-style, with ``%`` and ``#`` escaped."""
    return Path(os.path.abspath(path)).as_posix().replace("%", "%25").replace("#", "%23")


def record_id(path: str | os.PathLike[str], rid: str) -> str:
    """The document id of record ``rid`` of a JSONL or CSV file."""
    return f"{file_id(path)}#{rid}"


def file_of(doc_id: str) -> str | None:
    """The absolute path a file-made document id names, or None for any other id."""
    head = doc_id.split("#", 1)[0]
    if not (head.startswith("/") or _WINDOWS_DRIVE.match(head)):
        return None
    return head.replace("%23", "#").replace("%25", "%")


def under(roots: Iterable[str | os.PathLike[str]], *, exclude: Iterable[str] = ()) -> Callable[[str], bool]:
    """Whether a document id names a file at or below one of ``roots``, and not one of the files ``exclude``."""
    bases = [Path(os.path.abspath(r)).as_posix() for r in roots]
    skipped = {Path(os.path.abspath(p)).as_posix() for p in exclude}

    def inside(doc_id: str) -> bool:
        path = file_of(doc_id)
        if path is None or path in skipped:
            return False
        return any(path == b or path.startswith(b.rstrip("/") + "/") for b in bases)

    return inside


def display_path(doc_id: str) -> str:
    """A document id for people: relative to the current directory when its file lies below it."""
    path = file_of(doc_id)
    if path is None:
        return doc_id
    rest = doc_id[len(doc_id.split("#", 1)[0]) :]
    try:
        shown = Path(path).relative_to(Path.cwd()).as_posix()
    except ValueError:
        shown = path
    return shown + rest


__all__ = ["file_id", "record_id", "file_of", "under", "display_path"]
