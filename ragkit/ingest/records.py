"""Records of JSONL and CSV files as Documents, each bad one as a ``LoadIssue`` with its line; decoded line by line."""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from ragkit.errors import DataError
from ragkit.ingest.doc_ids import record_id
from ragkit.jsonl import iter_jsonl
from ragkit.types import Document

log = logging.getLogger("ragkit.ingest.loaders")

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
# Payload fields ragkit sets itself; a record's own field of that name is dropped (with a warning).
RESERVED = ("source", "line", "chunk_id", "doc_id", "start", "end", "chunk_index", "prefix_len")


@dataclass(frozen=True, slots=True)
class LoadIssue:
    """One record or file that was not loaded."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class Options:
    text_field: str
    id_fields: tuple[str, ...]
    title_field: str
    csv_id_column: str
    csv_text_columns: tuple[str, ...]
    encoding: str


def _warn_reserved(path: Path, keys: Any, warned: set[str]) -> None:
    for key in keys:
        if key in RESERVED and key not in warned:
            warned.add(key)
            log.warning(
                "%s: field %r is set by ragkit (it names the file, line or chunk); the file's own is dropped", path, key
            )


def _record_id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    rid = str(value).strip()
    return rid or None


def jsonl_file(path: Path, opts: Options) -> Iterator[Document | LoadIssue]:
    seen: set[str] = set()
    warned: set[str] = set()
    by_line = False
    for n, record in iter_jsonl(path, on_error="yield"):
        if isinstance(record, DataError):
            yield LoadIssue(str(path), n, str(record).removeprefix(f"{record.path}:{record.line}: "))
            continue
        text = record.get(opts.text_field)
        if not isinstance(text, str) or not text.strip():
            yield LoadIssue(str(path), n, f"field {opts.text_field!r} must be a non-empty string, got {text!r:.60}")
            continue
        id_key = next((k for k in opts.id_fields if k in record), None)
        if id_key is None:
            if not by_line:
                by_line = True
                log.warning("%s: records without %s are identified by line number", path, " or ".join(opts.id_fields))
            rid: str | None = str(n)
        else:
            rid = _record_id(record[id_key])
            if rid is None:
                yield LoadIssue(
                    str(path), n, f"field {id_key!r} must be a non-empty string or integer, got {record[id_key]!r:.60}"
                )
                continue
        if rid in seen:
            yield LoadIssue(str(path), n, f"duplicate id {rid!r}")
            continue
        seen.add(rid)
        meta = {k: v for k, v in record.items() if k != opts.text_field and k != id_key}
        if opts.title_field != "title" and opts.title_field in meta:
            meta["title"] = meta.pop(opts.title_field)
        _warn_reserved(path, meta, warned)
        meta.update(source=str(path), line=n)
        yield Document(id=record_id(path, rid), text=text, metadata=meta)


def _number(value: str) -> Any:
    """A CSV cell as int or float when it is one, else the string."""
    v = value.strip()
    if re.match(r"[+-]?0\d", v):  # leading zeros mark codes (zip, part numbers), not numbers
        return value
    if _INT.fullmatch(v):
        return int(v)
    if _FLOAT.fullmatch(v):
        return float(v)
    return value


class _Lines:
    """A file's physical lines, each decoded on its own, with the lines of the record being read kept for rereading.

    A line that is not valid text is decoded with replacement characters and remembered in ``bad``, so only the
    record that holds it is rejected. ``taken`` holds the (number, text) of the lines handed out since it was last
    cleared; ``reread`` puts lines back to be handed out again.
    """

    def __init__(self, f: IO[bytes], encoding: str) -> None:
        self._f = f
        self._encoding = encoding
        self._bom = encoding.replace("-", "").lower() in ("utf8", "utf8sig")
        self.read_count = 0
        self._back: list[tuple[int, str]] = []
        self.taken: list[tuple[int, str]] = []
        self.bad: dict[int, str] = {}

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._back:
            n, text = self._back.pop()
        else:
            raw = self._f.readline()
            if not raw:
                raise StopIteration
            self.read_count += 1
            n = self.read_count
            if n == 1 and self._bom and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode(self._encoding)
            except UnicodeDecodeError as e:
                text = raw.decode(self._encoding, "replace")
                self.bad[n] = f"not {self._encoding} text (byte {e.start + 1} of the line)"
        self.taken.append((n, text))
        return text

    def reread(self, lines: list[tuple[int, str]]) -> None:
        self._back.extend(reversed(lines))


def csv_file(path: Path, opts: Options) -> Iterator[Document | LoadIssue]:
    with path.open("rb") as f:
        lines = _Lines(f, opts.encoding)
        reader = csv.reader(lines, strict=True)
        header: list[str] | None = None
        seen: set[str] = set()
        warned: set[str] = set()
        while True:
            lines.taken.clear()
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                taken = list(lines.taken)
                start = taken[0][0] if taken else lines.read_count
                if len(taken) > 1:
                    yield LoadIssue(
                        str(path),
                        start,
                        f"bad CSV quoting: {e} (a quoted field opened on this line was read "
                        f"through line {taken[-1][0]}); the lines after it are read again as rows",
                    )
                    lines.reread(taken[1:])
                else:
                    yield LoadIssue(str(path), start, f"bad CSV row: {e}")
                continue
            start, end = lines.taken[0][0], lines.taken[-1][0]
            spoiled = next((lines.bad[i] for i in range(start, end + 1) if i in lines.bad), None)
            if header is None:
                if spoiled:
                    yield LoadIssue(str(path), start, f"unreadable CSV header: {spoiled}")
                    return
                header = [h.strip() for h in row]
                missing = [c for c in opts.csv_text_columns if c not in header]
                if missing:
                    yield LoadIssue(str(path), start, f"missing text column(s) {missing}; header has {header}")
                    return
                id_col = header.index(opts.csv_id_column) if opts.csv_id_column in header else None
                if id_col is None:
                    log.warning("%s: no %r column; rows are identified by line number", path, opts.csv_id_column)
                text_cols = [header.index(c) for c in opts.csv_text_columns]
                skip = set(text_cols) | ({id_col} if id_col is not None else set())
                _warn_reserved(path, (h for i, h in enumerate(header) if i not in skip), warned)
                continue
            if spoiled:
                yield LoadIssue(str(path), start, spoiled)
                continue
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield LoadIssue(str(path), start, f"row has {len(row)} fields, header has {len(header)}")
                continue
            text = "\n".join(row[i] for i in text_cols if row[i].strip())
            if not text.strip():
                yield LoadIssue(str(path), start, f"text column(s) {list(opts.csv_text_columns)} are empty")
                continue
            rid = row[id_col].strip() if id_col is not None else str(start)
            if not rid or rid in seen:
                yield LoadIssue(
                    str(path), start, f"{'duplicate' if rid else 'empty'} id {rid!r} in column {opts.csv_id_column!r}"
                )
                continue
            seen.add(rid)
            meta: dict[str, Any] = {h: _number(row[i]) for i, h in enumerate(header) if i not in skip and h}
            meta.update(source=str(path), line=start)
            yield Document(id=record_id(path, rid), text=text, metadata=meta)


__all__ = ["LoadIssue", "Options", "jsonl_file", "csv_file", "RESERVED"]
