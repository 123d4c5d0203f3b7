"""Document loaders: .txt, .md, .jsonl and .csv files or directories of them, with bad records reported by file and line.

``on_error`` decides what a malformed record or unreadable file does:

* ``"raise"``: stop at the first one with a ``DataError`` naming file and line.
* ``"report"`` (default): keep loading the good records, then raise one ``DataError`` listing every bad one.
* ``"skip"``: keep loading; each bad record is logged as a warning and collected in the ``LoadReport``.

Nothing is dropped silently: pass ``report=LoadReport()`` to read what was loaded and what was not.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

from ragkit.errors import DataError
from ragkit.types import Document

log = logging.getLogger("ragkit.ingest.loaders")

OnError = Literal["report", "skip", "raise"]
SUFFIXES = (".txt", ".md", ".markdown", ".jsonl", ".csv")
_MD_TITLE = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.M)
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class LoadIssue:
    """One record or file that was not loaded."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass(slots=True)
class LoadReport:
    """What a load produced: files read, documents yielded, and every record or file that was not loaded."""

    files: int = 0
    documents: int = 0
    errors: list[LoadIssue] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Options:
    text_field: str
    id_fields: tuple[str, ...]
    title_field: str
    csv_id_column: str
    csv_text_columns: tuple[str, ...]
    encoding: str


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


def _text_file(path: Path, rel: str, opts: _Options) -> Iterator[Document]:
    text = path.read_text(encoding=opts.encoding)
    meta: dict[str, Any] = {"source": rel}
    m = _MD_TITLE.search(text) if path.suffix in (".md", ".markdown") else None
    meta["title"] = m.group(1).strip() if m else path.stem
    yield Document(id=rel, text=text, metadata=meta)


def _jsonl_file(path: Path, rel: str, opts: _Options) -> Iterator[Document | LoadIssue]:
    seen: set[str] = set()
    with path.open(encoding=opts.encoding) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                yield LoadIssue(rel, n, f"invalid JSON: {e.msg} at column {e.colno}")
                continue
            if not isinstance(record, dict):
                yield LoadIssue(rel, n, f"expected a JSON object, got {type(record).__name__}")
                continue
            text = record.get(opts.text_field)
            if not isinstance(text, str) or not text.strip():
                yield LoadIssue(rel, n, f"field {opts.text_field!r} must be a non-empty string, got {text!r:.60}")
                continue
            id_key = next((k for k in opts.id_fields if k in record), None)
            rid = str(record[id_key]) if id_key is not None else str(n)
            if rid in seen:
                yield LoadIssue(rel, n, f"duplicate id {rid!r}")
                continue
            seen.add(rid)
            meta = {k: v for k, v in record.items() if k != opts.text_field and k != id_key}
            if opts.title_field != "title" and opts.title_field in meta:
                meta["title"] = meta.pop(opts.title_field)
            meta.update(source=rel, line=n)
            yield Document(id=f"{rel}#{rid}", text=text, metadata=meta)


def _csv_file(path: Path, rel: str, opts: _Options) -> Iterator[Document | LoadIssue]:
    with path.open(encoding=opts.encoding, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield LoadIssue(rel, 1, f"unreadable CSV header: {e}")
            return
        header = [h.strip() for h in header]
        missing = [c for c in opts.csv_text_columns if c not in header]
        if missing:
            yield LoadIssue(rel, 1, f"missing text column(s) {missing}; header has {header}")
            return
        id_col = header.index(opts.csv_id_column) if opts.csv_id_column in header else None
        text_cols = [header.index(c) for c in opts.csv_text_columns]
        seen: set[str] = set()
        line = reader.line_num
        while True:
            start = line + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield LoadIssue(rel, start, f"unreadable CSV row: {e}")
                line = reader.line_num
                continue
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield LoadIssue(rel, start, f"row has {len(row)} fields, header has {len(header)}")
                continue
            text = "\n".join(row[i] for i in text_cols if row[i].strip())
            if not text.strip():
                yield LoadIssue(rel, start, f"text column(s) {list(opts.csv_text_columns)} are empty")
                continue
            rid = row[id_col].strip() if id_col is not None else str(start)
            if not rid or rid in seen:
                yield LoadIssue(
                    rel, start, f"{'duplicate' if rid else 'empty'} id {rid!r} in column {opts.csv_id_column!r}"
                )
                continue
            seen.add(rid)
            skip = set(text_cols) | ({id_col} if id_col is not None else set())
            meta: dict[str, Any] = {h: _number(row[i]) for i, h in enumerate(header) if i not in skip}
            meta.update(source=rel, line=start)
            yield Document(id=f"{rel}#{rid}", text=text, metadata=meta)


_READERS = {".txt": _text_file, ".md": _text_file, ".markdown": _text_file, ".jsonl": _jsonl_file, ".csv": _csv_file}


def _files(root: Path) -> list[tuple[Path, str]]:
    if root.is_file():
        return [(root, root.name)]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath) / name
            if name.startswith(".") or path.suffix.lower() not in _READERS:
                log.debug("not a document file, ignored: %s", path)
                continue
            found.append((path, path.relative_to(root).as_posix()))
    return sorted(found, key=lambda f: f[1])  # sorted by relative path, so ids and order are stable


def load_path(
    path: str | os.PathLike[str],
    *,
    on_error: OnError = "report",
    report: LoadReport | None = None,
    text_field: str = "text",
    id_fields: Sequence[str] = ("id", "_id"),
    title_field: str = "title",
    csv_id_column: str = "id",
    csv_text_columns: Sequence[str] = ("text",),
    encoding: str = "utf-8",
) -> Iterator[Document]:
    """Yield Documents from a file or a directory (recursed in sorted order); see the module doc for ``on_error``."""
    if on_error not in ("report", "skip", "raise"):
        raise ValueError(f"on_error must be 'report', 'skip' or 'raise', got {on_error!r}")
    root = Path(path)
    if not root.exists():
        raise DataError("no such file or directory", path=str(root))
    if root.is_file() and root.suffix.lower() not in _READERS:
        raise DataError(f"unsupported file type; expected one of {', '.join(SUFFIXES)}", path=str(root))
    report = report if report is not None else LoadReport()
    opts = _Options(text_field, tuple(id_fields), title_field, csv_id_column, tuple(csv_text_columns), encoding)
    issues_before = len(report.errors)
    for file, rel in _files(root):
        report.files += 1
        try:
            for item in _READERS[file.suffix.lower()](file, rel, opts):
                if isinstance(item, LoadIssue):
                    _issue(LoadIssue(str(file), item.line, item.message), on_error, report)
                else:
                    report.documents += 1
                    yield item
        except (OSError, UnicodeDecodeError) as e:
            _issue(LoadIssue(str(file), None, f"cannot read file: {e}"), on_error, report)
    new = report.errors[issues_before:]
    if on_error == "report" and new:
        listing = "; ".join(str(i) for i in new[:20]) + (f"; and {len(new) - 20} more" if len(new) > 20 else "")
        raise DataError(f"{len(new)} record(s) could not be loaded: {listing}", path=str(root))


def _issue(issue: LoadIssue, on_error: OnError, report: LoadReport) -> None:
    report.errors.append(issue)
    if on_error == "raise":
        raise DataError(issue.message, path=issue.path, line=issue.line)
    log.warning("skipped %s", issue)


__all__ = ["load_path", "LoadReport", "LoadIssue", "SUFFIXES"]
