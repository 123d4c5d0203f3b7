"""Reading JSON Lines: one object per line, decoded line by line, so one bad line names itself and loses no other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from ragkit.errors import DataError


def iter_jsonl(path: str | Path, *, on_error: str = "raise") -> Iterator[tuple[int, dict | DataError]]:
    """``(line number, object)`` for each non-blank line of ``path``; a byte-order mark is skipped.

    A line that is not UTF-8, not JSON or not an object raises ``DataError`` naming the file and line; with
    ``on_error="yield"`` the error is yielded in the object's place and reading goes on with the next line.
    """
    p = Path(path)
    try:
        f = p.open("rb")
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror or e}", path=str(p)) from e
    with f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise DataError(f"expected a JSON object, got {type(row).__name__}", path=str(p), line=n)
            except UnicodeDecodeError as e:
                err = DataError(f"not UTF-8 text (byte {e.start + 1} of the line)", path=str(p), line=n)
            except json.JSONDecodeError as e:
                err = DataError(f"not valid JSON: {e.msg} (column {e.colno})", path=str(p), line=n)
            except DataError as e:
                err = e
            else:
                yield n, row
                continue
            if on_error != "yield":
                raise err
            yield n, err


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line; the first bad line raises ``DataError`` with its number."""
    yield from iter_jsonl(path)  # type: ignore[misc]


__all__ = ["iter_jsonl", "read_jsonl"]
