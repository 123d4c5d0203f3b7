"""Chunkers: token windows, recursive (paragraph, sentence, word, token) and markdown sections, under a hard token cap.

Every chunker tokenizes a document once, plans cuts on token boundaries, then counts each final chunk
(prefix included) exactly and shrinks it when the plan was optimistic. ``max_tokens`` is never exceeded.
``Chunk.text`` is ``prefix + body`` and ``doc.text[chunk.start:chunk.end] == body``.

A document longer than ``SEGMENT_CHARS`` is planned one segment (cut at a blank line, a line end or a space) at a
time and its chunks are yielded as they are made (``iter_chunks``), so chunking a 50 MB file takes the memory of
one segment; no chunk crosses a segment boundary.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Iterator, Literal, Mapping

from pydantic import Field, model_validator

from ragkit.component import ComponentConfig
from ragkit.errors import ConfigError
from ragkit.ingest.markdown import Section, markdown_sections
from ragkit.ingest.ranges import Range, _fit_prefix, recursive_ranges, segments, token_windows
from ragkit.tokens import TiktokenCounter, TokenCounter, token_cuts
from ragkit.types import Chunk, Document

log = logging.getLogger("ragkit.ingest.chunking")

# Documents longer than this many characters are planned a segment at a time (see the module doc).
SEGMENT_CHARS = 200_000


def chunk_id(doc_id: str, start: int, end: int, text: str) -> str:
    """Stable 32-hex-char id of a chunk, from its document id, body offsets and text."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{doc_id}\x00{start}\x00{end}\x00".encode())
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render_prefix(template: str | None, metadata: Mapping[str, Any], **extra: Any) -> str:
    """Fill a prefix template from document metadata; unknown fields become empty."""
    if not template:
        return ""
    try:
        return template.format_map(_Fields({**metadata, **extra}))
    except (AttributeError, IndexError, KeyError, ValueError) as e:
        raise ConfigError(f"prefix template {template!r} cannot be filled: {e}") from e


class ChunkerConfig(ComponentConfig):
    """Settings every chunker shares."""

    max_tokens: int = Field(256, ge=8, le=1_000_000, description="hard cap on tokens per chunk, prefix included")
    prefix: str | None = Field(
        None,
        max_length=2000,
        description="template put before each chunk, filled from document metadata, e.g. '{title}\\n'",
    )
    encoding: Literal["cl100k_base", "o200k_base"] = Field(
        "cl100k_base", description="tiktoken encoding used to count when no counter is passed in"
    )


class _BaseChunker:
    """Shared construction and Chunk assembly; subclasses plan body ranges."""

    Config: type[ChunkerConfig] = ChunkerConfig

    def __init__(
        self, max_tokens: int = 256, *, counter: TokenCounter | None = None, prefix: str | None = None
    ) -> None:
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be positive, got {max_tokens}")
        self.max_tokens = max_tokens
        self.counter = counter if counter is not None else TiktokenCounter()
        self.prefix = prefix
        render_prefix(prefix, {}, headings="")  # reject a malformed template now, not mid-ingest

    @classmethod
    def from_config(cls, config: ChunkerConfig, *, counter: TokenCounter | None = None, **_: Any):
        fields = config.model_dump(exclude={"encoding"})
        return cls(**fields, counter=counter if counter is not None else TiktokenCounter(config.encoding))

    def _prefix(self, doc: Document, **extra: Any) -> str:
        return _fit_prefix(render_prefix(self.prefix, doc.metadata, **extra), self.counter, self.max_tokens)

    def _chunk(self, doc: Document, body: Range, prefix: str, index: int, **extra: Any) -> Chunk:
        start, end = body
        text = prefix + doc.text[start:end]
        meta = {**doc.metadata, **extra, "chunk_index": index, "prefix_len": len(prefix)}
        return Chunk(
            id=chunk_id(doc.id, start, end, text), doc_id=doc.id, text=text, start=start, end=end, metadata=meta
        )

    def _ranges(self, text: str, prefix: str) -> list[Range]:
        raise NotImplementedError

    def _whole(self, doc: Document) -> list[Chunk]:
        """All chunks of a document planned in one piece."""
        prefix = self._prefix(doc)
        return [self._chunk(doc, r, prefix, i) for i, r in enumerate(self._ranges(doc.text, prefix))]

    def _spans(self, doc: Document) -> Iterator[tuple[int, int, str, dict[str, Any]]]:
        """(start, end, prefix, extra metadata) of each part of a long document that is chunked on its own."""
        yield 0, len(doc.text), self._prefix(doc), {}

    def chunk(self, doc: Document) -> list[Chunk]:
        return self._whole(doc) if len(doc.text) <= SEGMENT_CHARS else list(self.iter_chunks(doc))

    def iter_chunks(self, doc: Document) -> Iterator[Chunk]:
        """The chunks of ``doc`` in order, a segment at a time for a long document (``chunk`` returns the same)."""
        if len(doc.text) <= SEGMENT_CHARS:
            yield from self._whole(doc)
            return
        index = 0
        for start, end, prefix, extra in self._spans(doc):
            for a, b in segments(doc.text, start, end, SEGMENT_CHARS):
                for s, e in self._ranges(doc.text[a:b], prefix):
                    yield self._chunk(doc, (a + s, a + e), prefix, index, **extra)
                    index += 1


class TokenWindowConfig(ChunkerConfig):
    """Settings of the token-window chunker."""

    overlap: int = Field(32, ge=0, le=100_000, description="tokens shared by consecutive windows")

    @model_validator(mode="after")
    def _overlap_below_cap(self) -> TokenWindowConfig:
        if self.overlap >= self.max_tokens:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than max_tokens ({self.max_tokens})")
        return self


class TokenWindowChunker(_BaseChunker):
    """Fixed windows of ``max_tokens`` tokens (prefix included), overlapping by ``overlap`` tokens."""

    Config = TokenWindowConfig

    def __init__(
        self,
        max_tokens: int = 256,
        overlap: int = 32,
        *,
        counter: TokenCounter | None = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(max_tokens, counter=counter, prefix=prefix)
        if not 0 <= overlap < max_tokens:
            raise ConfigError(f"overlap must be in [0, max_tokens), got {overlap}")
        self.overlap = overlap

    def _ranges(self, text: str, prefix: str) -> list[Range]:
        return token_windows(text, self.counter, self.max_tokens, overlap=self.overlap, prefix=prefix)


class RecursiveConfig(ChunkerConfig):
    """Settings of the recursive chunker."""


class RecursiveChunker(_BaseChunker):
    """Packs paragraphs into chunks; oversize paragraphs fall back to sentences, words, then tokens."""

    Config = RecursiveConfig

    def _ranges(self, text: str, prefix: str) -> list[Range]:
        return recursive_ranges(text, self.counter, self.max_tokens, prefix=prefix)


class MarkdownConfig(ChunkerConfig):
    """Settings of the markdown chunker; the prefix may use ``{headings}`` (the heading path, joined by ' > ')."""


class MarkdownChunker(_BaseChunker):
    """Chunks each heading section separately; ``metadata['headings']`` holds the section's heading path."""

    Config = MarkdownConfig

    def _ranges(self, text: str, prefix: str) -> list[Range]:
        return recursive_ranges(text, self.counter, self.max_tokens, prefix=prefix)

    def _spans(self, doc: Document) -> Iterator[tuple[int, int, str, dict[str, Any]]]:
        for sec in markdown_sections(doc.text):
            yield (
                sec.start,
                sec.end,
                self._prefix(doc, headings=" > ".join(sec.headings)),
                {"headings": list(sec.headings)},
            )

    def _whole(self, doc: Document) -> list[Chunk]:
        if not doc.text.strip():
            return []
        cuts = token_cuts(doc.text, self.counter)
        chunks: list[Chunk] = []
        for start, end, prefix, extra in self._spans(doc):
            ranges = recursive_ranges(
                doc.text, self.counter, self.max_tokens, prefix=prefix, start=start, end=end, cuts=cuts
            )
            base = len(chunks)
            chunks.extend(self._chunk(doc, r, prefix, base + k, **extra) for k, r in enumerate(ranges))
        return chunks


__all__ = [
    "TokenWindowChunker",
    "RecursiveChunker",
    "MarkdownChunker",
    "ChunkerConfig",
    "TokenWindowConfig",
    "RecursiveConfig",
    "MarkdownConfig",
    "Section",
    "chunk_id",
    "SEGMENT_CHARS",
    "token_cuts",
    "token_windows",
    "recursive_ranges",
    "markdown_sections",
    "render_prefix",
]
