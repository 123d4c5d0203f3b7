"""Document loaders: .txt, .md, .jsonl and .csv files or directories of them; bad records reported by file and line.
PDF, DOCX and HTML files load through ``ragkit.ingest.documents`` (one Document per page or heading section).

Document ids are absolute file paths (``ragkit.ingest.doc_ids``): two files never share one, and an id does not
depend on the folder named on the command line or on the directory a command runs in.

Decoding is per line: a byte that is not valid text spoils only its own line (JSONL) or record (CSV), and is
reported with that line's number. A UTF-8 byte-order mark is dropped. CSV is read strictly: a quote that is never
closed is reported on the line where it opened, and the lines it swallowed are read again as rows of their own.

``on_error`` decides what a malformed record or unreadable file does:

* ``"raise"``: stop at the first one with a ``DataError`` naming file and line.
* ``"report"`` (default): keep loading the good records, then raise one ``DataError`` listing every bad one.
* ``"skip"``: keep loading; each bad record is logged once as a warning.
* ``"collect"``: keep loading; bad records only go into the ``LoadReport`` (the caller lists them).

Every bad record is in ``report.errors`` whatever the mode: nothing is dropped silently.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

from ragkit.errors import DataError
from ragkit.ingest.doc_ids import display_path, file_id, file_of, under
from ragkit.ingest.documents import DOCUMENT_READERS
from ragkit.ingest.records import LoadIssue, Options, csv_file, jsonl_file
from ragkit.types import Document

log = logging.getLogger("ragkit.ingest.loaders")

OnError = Literal["report", "skip", "raise", "collect"]
SUFFIXES = (".txt", ".md", ".markdown", ".jsonl", ".csv", *DOCUMENT_READERS)
_MD_TITLE = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.M)


@dataclass(slots=True)
class LoadReport:
    """What a load produced: files read, documents yielded, and every record or file that was not loaded."""

    files: int = 0
    documents: int = 0
    errors: list[LoadIssue] = field(default_factory=list)

    def files_with_errors(self) -> set[str]:
        """Absolute paths of the files that had a record or read error."""
        return {os.path.abspath(e.path) for e in self.errors}


def _title(path: Path, text: str) -> str:
    m = _MD_TITLE.search(text) if path.suffix.lower() in (".md", ".markdown") else None
    return m.group(1).strip() if m else path.stem


def _text_file(path: Path, opts: Options) -> Iterator[Document | LoadIssue]:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf") and opts.encoding.replace("-", "").lower() in ("utf8", "utf8sig"):
        raw = raw[3:]
    try:
        text = raw.decode(opts.encoding)
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        yield LoadIssue(
            str(path), line, f"not {opts.encoding} text (byte {column} of the line); give the file's --encoding"
        )
        return
    del raw
    yield Document(id=file_id(path), text=text, metadata={"source": str(path), "title": _title(path, text)})


_READERS: dict[str, Callable[[Path, Options], Iterator[Document | LoadIssue]]] = {
    ".txt": _text_file,
    ".md": _text_file,
    ".markdown": _text_file,
    ".jsonl": jsonl_file,
    ".csv": csv_file,
    **DOCUMENT_READERS,
}


def check_roots(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The absolute paths of ``paths``; a missing path or a file of an unsupported type is a ``DataError``."""
    out = []
    for p in paths:
        root = Path(os.path.abspath(p))
        if not root.exists():
            raise DataError("no such file or directory", path=str(p))
        if root.is_file() and root.suffix.lower() not in _READERS:
            raise DataError(f"unsupported file type; expected one of {', '.join(SUFFIXES)}", path=str(p))
        out.append(root)
    return out


def list_files(root: Path) -> list[Path]:
    """The document files of a file or directory (recursed, hidden entries skipped), sorted by path."""
    if root.is_file():
        return [root]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath) / name
            if name.startswith(".") or path.suffix.lower() not in _READERS:
                log.debug("not a document file, ignored: %s", path)
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.as_posix())


def load_paths(
    paths: Sequence[str | os.PathLike[str]],
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
    """Yield Documents from files and directories; a file named twice (or inside two roots given) is read once."""
    if on_error not in ("report", "skip", "raise", "collect"):
        raise ValueError(f"on_error must be 'report', 'skip', 'raise' or 'collect', got {on_error!r}")
    roots = check_roots(paths)
    report = report if report is not None else LoadReport()
    opts = Options(text_field, tuple(id_fields), title_field, csv_id_column, tuple(csv_text_columns), encoding)
    issues_before = len(report.errors)
    seen: set[Path] = set()
    for root in roots:
        for file in list_files(root):
            if file in seen:
                continue
            seen.add(file)
            report.files += 1
            try:
                for item in _READERS[file.suffix.lower()](file, opts):
                    if isinstance(item, LoadIssue):
                        _issue(item, on_error, report)
                    else:
                        report.documents += 1
                        yield item
            except OSError as e:
                _issue(LoadIssue(str(file), None, f"cannot read file: {e.strerror or e}"), on_error, report)
            except LookupError as e:  # an unknown encoding name
                raise DataError(f"cannot decode: {e}", path=str(file)) from e
    new = report.errors[issues_before:]
    if on_error == "report" and new:
        listing = "; ".join(str(i) for i in new[:20]) + (f"; and {len(new) - 20} more" if len(new) > 20 else "")
        raise DataError(f"{len(new)} record(s) could not be loaded: {listing}")


def load_path(path: str | os.PathLike[str], **options: Any) -> Iterator[Document]:
    """Yield Documents from a file or a directory (recursed in sorted order); see the module doc for ``on_error``."""
    return load_paths([path], **options)


def _issue(issue: LoadIssue, on_error: OnError, report: LoadReport) -> None:
    report.errors.append(issue)
    if on_error == "raise":
        raise DataError(issue.message, path=issue.path, line=issue.line)
    if on_error == "skip":
        log.warning("skipped %s", issue)


__all__ = [
    "load_path",
    "load_paths",
    "check_roots",
    "list_files",
    "file_id",
    "file_of",
    "under",
    "display_path",
    "LoadReport",
    "LoadIssue",
    "SUFFIXES",
]
