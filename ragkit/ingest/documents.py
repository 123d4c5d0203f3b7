"""PDF, DOCX and HTML files as Documents: one per PDF page, one per heading section of DOCX and HTML.

Each Document carries where it came from, so a chunk can be cited as "p. 3" or by its section:
``page`` (PDF: the 1-based page; DOCX: counted from explicit and last-rendered page breaks, when the file has
any), ``pages`` (PDF page count), ``headings`` (the heading path, as the markdown chunker writes it) and
``heading`` (its last entry), with ``source`` and ``title`` as for text files. Ids are ``<file id>#p<page>``
(PDF) and ``<file id>#s<section>`` (DOCX, HTML).

A file that cannot be read becomes a ``LoadIssue`` naming the file and what to do, and the other files still
load: an encrypted PDF without an empty user password, a corrupt PDF, a scanned PDF with no text layer, a DOCX
that is not a zip archive, HTML that is not text. HTML is parsed leniently, as browsers do; markup left
unterminated at the end (an open comment or tag that swallows the rest) is reported with its line, and the text
before it is kept. PDF and DOCX need the ``docs`` extra (pypdf, python-docx); HTML needs only the standard library.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable, Iterator

from ragkit.ingest.doc_ids import record_id
from ragkit.ingest.records import LoadIssue, Options
from ragkit.types import Document

log = logging.getLogger("ragkit.ingest.documents")

_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _missing(path: Path, package: str, kind: str) -> LoadIssue:
    return LoadIssue(str(path), None, f"{kind} files need {package}: pip install 'ragkit[docs]'")


@dataclass
class _Section:
    """Text gathered under one heading path (and, for DOCX, on one page)."""

    headings: tuple[str, ...] = ()
    page: int | None = None
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return _tidy("\n".join(self.lines))


def _section_documents(path: Path, sections: list[_Section], title: str, kind: str) -> Iterator[Document]:
    for n, sec in enumerate((s for s in sections if s.text()), 1):
        meta: dict[str, Any] = {"source": str(path), "title": title, "format": kind, "section": n}
        if sec.headings:
            meta.update(headings=list(sec.headings), heading=sec.headings[-1])
        if sec.page is not None:
            meta["page"] = sec.page
        yield Document(id=record_id(path, f"s{n}"), text=sec.text(), metadata=meta)


# PDF -----------------------------------------------------------------------------------------------------------


def _pdf_headings(reader: Any) -> dict[int, str]:
    """Page index → the last outline (bookmark) title that starts on or before it."""
    starts: list[tuple[int, str]] = []

    def walk(items: Any) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
                continue
            try:
                starts.append((reader.get_destination_page_number(item), str(item.title).strip()))
            except Exception:  # noqa: BLE001 - a broken bookmark only loses its heading
                continue

    try:
        walk(reader.outline)
    except Exception:  # noqa: BLE001 - an unreadable outline only loses the headings
        return {}
    out: dict[int, str] = {}
    current = ""
    for page in range(len(reader.pages)):
        for start, title in sorted(starts):
            if start <= page and title:
                current = title
        if current:
            out[page] = current
    return out


def pdf_file(path: Path, opts: Options) -> Iterator[Document | LoadIssue]:
    """One Document per PDF page with text, with ``page``, ``pages`` and the bookmark ``heading`` of that page."""
    try:
        import pypdf
        from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError
    except ImportError:
        yield _missing(path, "pypdf", "PDF")
        return
    where = str(path)
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            yield LoadIssue(where, None, "encrypted PDF that needs a password; save a decrypted copy and index that")
            return
        pages = len(reader.pages)
        headings = _pdf_headings(reader)
        title = str((reader.metadata or {}).get("/Title") or "").strip() or path.stem
        texts: list[str] = []
        for i, page in enumerate(reader.pages):
            try:
                texts.append(_tidy(page.extract_text() or ""))
            except Exception as e:  # noqa: BLE001 - pypdf raises many types on a broken content stream
                log.warning("%s: page %d: text not extracted (%s: %s)", where, i + 1, type(e).__name__, e)
                texts.append("")
    except FileNotDecryptedError:
        yield LoadIssue(where, None, "encrypted PDF that needs a password; save a decrypted copy and index that")
        return
    except DependencyError as e:
        yield LoadIssue(where, None, f"encrypted PDF that needs the cryptography package ({e})")
        return
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as e:
        yield LoadIssue(where, None, f"not a readable PDF ({type(e).__name__}: {e})")
        return
    if not any(texts):
        yield LoadIssue(
            where,
            None,
            f"no text layer on any of its {pages} page(s): a scanned PDF? "
            "Run OCR on it (e.g. ocrmypdf) and index the result",
        )
        return
    empty = [str(i + 1) for i, t in enumerate(texts) if not t]
    if empty:
        log.warning("%s: page(s) %s have no text layer (scanned?) and are not indexed", where, ", ".join(empty))
    for i, text in enumerate(texts):
        if not text:
            continue
        meta: dict[str, Any] = {"source": where, "title": title, "format": "pdf", "page": i + 1, "pages": pages}
        if i in headings:
            meta.update(heading=headings[i], headings=[headings[i]])
        yield Document(id=record_id(path, f"p{i + 1}"), text=text, metadata=meta)


# DOCX ----------------------------------------------------------------------------------------------------------

_HEADING_STYLE = re.compile(r"^(?:heading|überschrift)\s*(\d)$", re.IGNORECASE)


def _docx_level(paragraph: Any) -> int | None:
    """0 for the Title style, n for Heading n, else None."""
    try:
        name = (paragraph.style.name or "").strip() if paragraph.style is not None else ""
    except (KeyError, AttributeError, ValueError):
        return None
    if name.lower() == "title":
        return 0
    m = _HEADING_STYLE.match(name)
    return int(m.group(1)) if m else None


def _page_breaks(paragraph: Any) -> int:
    element = paragraph._p  # python-docx exposes page breaks only through the XML element
    explicit = element.xpath('.//w:br[@w:type="page"]')
    rendered = element.xpath(".//w:lastRenderedPageBreak")
    return len(explicit) + len(rendered)


def docx_file(path: Path, opts: Options) -> Iterator[Document | LoadIssue]:
    """One Document per heading section (split at page breaks too, when the file has any), tables as text rows."""
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
    except ImportError:
        yield _missing(path, "python-docx", "DOCX")
        return
    import zipfile

    where = str(path)
    try:
        document = docx.Document(str(path))
        blocks = list(document.iter_inner_content())
        core_title = (document.core_properties.title or "").strip()
    except (PackageNotFoundError, zipfile.BadZipFile) as e:
        yield LoadIssue(where, None, f"not a DOCX file: not a readable zip package ({e})")
        return
    except (KeyError, ValueError, OSError, AttributeError) as e:
        yield LoadIssue(where, None, f"not a readable DOCX file ({type(e).__name__}: {e})")
        return
    except Exception as e:  # noqa: BLE001 - lxml's XMLSyntaxError and friends: a damaged document part
        yield LoadIssue(where, None, f"damaged DOCX file ({type(e).__name__}: {e})")
        return
    paged = any(_page_breaks(b) for b in blocks if hasattr(b, "_p"))
    page = 1 if paged else None
    trail: list[tuple[int, str]] = []
    sections = [_Section(page=page)]
    title = core_title
    for block in blocks:
        if hasattr(block, "rows"):  # a table: one line per row, cells joined
            for row in block.rows:
                cells = list(dict.fromkeys(c.text.strip() for c in row.cells if c.text.strip()))
                if cells:
                    sections[-1].lines.append(" | ".join(cells))
            continue
        text = block.text.strip()
        level = _docx_level(block)
        if level is not None and text:
            title = title or text
            trail = [(lv, h) for lv, h in trail if lv < level] + [(level, text)]
            sections.append(_Section(tuple(h for _, h in trail), page))
        if text:
            sections[-1].lines.append(text)
        if paged and _page_breaks(block):
            page = (page or 1) + _page_breaks(block)
            sections.append(_Section(sections[-1].headings, page))
    if not any(s.text() for s in sections):
        yield LoadIssue(where, None, "no text in this DOCX file")
        return
    yield from _section_documents(path, sections, title or path.stem, "docx")


# HTML ----------------------------------------------------------------------------------------------------------

_SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe", "object"})
_BLOCKS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer form header hr li main nav ol p pre "
    "section table tbody thead tfoot tr td th ul".split()
)
_HEADING_TAG = re.compile(r"^h([1-6])$")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_-]+)""", re.IGNORECASE)


class _HtmlText(HTMLParser):
    """Visible text by heading section; the <title>; where markup was left unterminated."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections = [_Section()]
        self.title = ""
        self._skip: list[str] = []
        self._heading: tuple[int, list[str]] | None = None
        self._trail: list[tuple[int, str]] = []
        self._in_title = False
        self.unterminated: tuple[int, str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in _SKIPPED:
            self._skip.append(tag)
        elif tag == "title":
            self._in_title = True
        elif m := _HEADING_TAG.match(tag):
            self._heading = (int(m.group(1)), [])
        elif tag in _BLOCKS:
            self.sections[-1].lines.append("\n")

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        if tag in _BLOCKS:
            self.sections[-1].lines.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skip and tag == self._skip[-1]:
            self._skip.pop()
        elif tag == "title":
            self._in_title = False
        elif self._heading is not None and _HEADING_TAG.match(tag):
            level, parts = self._heading
            self._heading = None
            text = " ".join("".join(parts).split())
            if text:
                self._trail = [(lv, h) for lv, h in self._trail if lv < level] + [(level, text)]
                self.sections.append(_Section(tuple(h for _, h in self._trail), lines=[text, "\n"]))
        elif tag in _BLOCKS:
            self.sections[-1].lines.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._skip:
            return
        elif self._heading is not None:
            self._heading[1].append(data)
        else:
            self.sections[-1].lines.append(data)

    def close(self) -> None:
        cut = self.rawdata.find("<")
        if cut >= 0 and len(self.rawdata[cut:].strip()) > 1:
            line = self.getpos()[0] + self.rawdata.count("\n", 0, cut)
            self.unterminated = (line, " ".join(self.rawdata[cut : cut + 40].split()))
            self.rawdata = self.rawdata[:cut]  # as in a browser, the unterminated construct swallows the rest
        super().close()


def _decode_html(raw: bytes, encoding: str) -> str | None:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    declared = _CHARSET.search(raw[:4096])
    for enc in dict.fromkeys([encoding, *([declared.group(1).decode("ascii")] if declared else [])]):
        try:
            return raw.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def html_file(path: Path, opts: Options) -> Iterator[Document | LoadIssue]:
    """One Document per heading section (h1–h6) of the visible text; scripts, styles and the head are left out."""
    where = str(path)
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        yield LoadIssue(where, None, "not an HTML text file (binary data)")
        return
    text = _decode_html(raw, opts.encoding)
    if text is None:
        yield LoadIssue(where, None, f"not {opts.encoding} text, and no <meta charset> that decodes it")
        return
    parser = _HtmlText()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError, RecursionError) as e:  # html.parser's own complaints on hopeless markup
        yield LoadIssue(where, None, f"broken HTML markup ({type(e).__name__}: {e})")
        return
    title = " ".join(parser.title.split())
    sections = [_Section(s.headings, None, ["".join(s.lines)]) for s in parser.sections]
    if parser.unterminated is not None:
        line, snippet = parser.unterminated
        yield LoadIssue(where, line, f"broken HTML markup: {snippet!r}… is never closed; the text after it is lost")
    if not any(s.text() for s in sections):
        if parser.unterminated is None:
            yield LoadIssue(where, None, "no visible text in this HTML file")
        return
    first_heading = next((s.headings[0] for s in sections if s.headings), "")
    yield from _section_documents(path, sections, title or first_heading or path.stem, "html")


DOCUMENT_READERS: dict[str, Callable[[Path, Options], Iterator[Document | LoadIssue]]] = {
    ".pdf": pdf_file,
    ".docx": docx_file,
    ".html": html_file,
    ".htm": html_file,
}

__all__ = ["DOCUMENT_READERS", "pdf_file", "docx_file", "html_file"]
