"""Incremental, resumable indexing: chunk → embed → upsert, with a manifest of what each document became.

A document whose content hash is unchanged is skipped; a changed one re-embeds only chunks whose ids are new
(chunk ids derive from content and offsets) and deletes its stale chunks after the new ones are written; a
document gone from the source is removed when pruning. The manifest row of a document is written only after
its chunks are in the store, so a killed run is finished by running it again: no duplicates, nothing lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ragkit.types import Chunk, Document

log = logging.getLogger("ragkit.ingest.indexing")

Progress = Callable[[int, int | None], None]


def doc_hash(doc: Document) -> str:
    """Content hash of a document: text and metadata."""
    body = json.dumps({"t": doc.text, "m": dict(doc.metadata)}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def chunk_payload(chunk: Chunk) -> dict[str, Any]:
    """The store payload of a chunk; ``retrieval`` rebuilds the Chunk from it."""
    return {
        **{k: v for k, v in chunk.metadata.items() if _jsonable(v)},
        "chunk_id": chunk.id,
        "doc_id": chunk.doc_id,
        "text": chunk.text,
        "start": chunk.start,
        "end": chunk.end,
    }


def _jsonable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, dict))


class Manifest:
    """doc id → (content hash, chunk ids), in SQLite beside the index."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path))
        # WAL with synchronous=NORMAL: a commit survives the process being killed (what resuming needs) without an
        # fsync per batch; only an OS crash can lose the last commits, and those documents are simply re-indexed.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY, hash TEXT NOT NULL, chunk_ids TEXT NOT NULL)"
        )
        self._db.commit()

    def get(self, doc_id: str) -> tuple[str, list[str]] | None:
        row = self._db.execute("SELECT hash, chunk_ids FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def put_many(self, rows: Iterable[tuple[str, str, list[str]]]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO docs (doc_id, hash, chunk_ids) VALUES (?, ?, ?)",
            [(d, h, json.dumps(ids)) for d, h, ids in rows],
        )
        self._db.commit()

    def delete(self, doc_id: str) -> None:
        self._db.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))
        self._db.commit()

    def doc_ids(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT doc_id FROM docs")}

    def close(self) -> None:
        self._db.close()


@dataclass
class IndexReport:
    """What one indexing run did."""

    docs_seen: int = 0
    docs_unchanged: int = 0
    docs_indexed: int = 0
    docs_removed: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_Pending = tuple[Document, str, list[Chunk], list[str]]  # document, content hash, its chunks, its chunk ids before


@dataclass(slots=True)
class _Embedded:
    chunks: list[Chunk]
    stale: list[str]
    vectors: list[list[float]]
    seconds: float


class Indexer:
    """Chunks, embeds (dense and sparse) and upserts documents into a store, incrementally."""

    def __init__(
        self,
        *,
        chunker: Any,
        embedder: Any,
        store: Any,
        manifest: Manifest,
        sparse_encoder: Any | None = None,
        batch_chunks: int = 256,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.chunker = chunker
        self.embedder = embedder
        self.store = store
        self.manifest = manifest
        self.sparse = sparse_encoder
        self.batch_chunks = batch_chunks
        self._clock = clock
        self._collection_ready = False

    async def _ensure_collection(self) -> None:
        if not self._collection_ready:
            await self.store.ensure_collection(self.embedder.dim)
            self._collection_ready = True

    async def index(
        self,
        docs: Iterable[Document],
        *,
        prune: bool = False,
        progress: Progress | None = None,
        total: int | None = None,
    ) -> IndexReport:
        """Bring the store in line with ``docs``; with ``prune``, documents not seen are removed.

        Batches are pipelined: while batch k is being embedded (in a worker thread), batch k-1 is sparse-encoded,
        upserted and recorded in the manifest, and the documents of batch k+1 are chunked. At most one batch is
        embedding at a time, and a batch's manifest rows are written only after its chunks are in the store, so a
        run killed anywhere can be resumed.
        """
        report = IndexReport()
        start = self._clock()
        await self._ensure_collection()
        seen: set[str] = set()
        pending: list[_Pending] = []
        pending_chunks = 0
        embedding: tuple[list[_Pending], asyncio.Task[_Embedded]] | None = None
        try:
            for doc in docs:
                report.docs_seen += 1
                if doc.id in seen:
                    report.errors.append(f"duplicate document id {doc.id!r}; later copy ignored")
                    continue
                seen.add(doc.id)
                h = doc_hash(doc)
                old = self.manifest.get(doc.id)
                if old is not None and old[0] == h:
                    report.docs_unchanged += 1
                else:
                    chunks = self.chunker.chunk(doc)
                    pending.append((doc, h, chunks, old[1] if old else []))
                    pending_chunks += len(chunks)
                    if pending_chunks >= self.batch_chunks:
                        embedding = await self._advance(embedding, pending, report)
                        pending, pending_chunks = [], 0
                if progress:
                    progress(report.docs_seen, total)
            if pending:
                embedding = await self._advance(embedding, pending, report)
            await self._advance(embedding, None, report)
            embedding = None
        finally:
            if embedding is not None:  # a write failed: let the running embedding finish, discard it
                await asyncio.gather(embedding[1], return_exceptions=True)
        if prune:
            for doc_id in sorted(self.manifest.doc_ids() - seen):
                await self.remove(doc_id, report)
        report.seconds = self._clock() - start
        log.info(
            "indexed %d docs (%d unchanged, %d removed), %d chunks written, %d embedded in %.2fs",
            report.docs_indexed,
            report.docs_unchanged,
            report.docs_removed,
            report.chunks_written,
            report.chunks_embedded,
            report.seconds,
        )
        return report

    async def _advance(
        self,
        embedding: tuple[list[_Pending], asyncio.Task[_Embedded]] | None,
        batch: list[_Pending] | None,
        report: IndexReport,
    ) -> tuple[list[_Pending], asyncio.Task[_Embedded]] | None:
        """Finish the batch being embedded, start embedding ``batch``, then write the finished one."""
        done = None
        if embedding is not None:
            done = (embedding[0], await embedding[1])
        started = None
        if batch is not None:
            started = (batch, asyncio.create_task(self._embed(batch)))
            await asyncio.sleep(0)  # let the task reach its worker thread before the writes below hold the loop
        if done is not None:
            try:
                await self._write(done[0], done[1], report)
            except BaseException:
                if started is not None:
                    await asyncio.gather(started[1], return_exceptions=True)
                raise
        return started

    async def _embed(self, pending: Sequence[_Pending]) -> _Embedded:
        new_chunks: list[Chunk] = []
        stale: list[str] = []
        for _doc, _h, chunks, old_ids in pending:
            ids = {c.id for c in chunks}
            old = set(old_ids)
            new_chunks.extend(c for c in chunks if c.id not in old)
            stale.extend(i for i in old_ids if i not in ids)
        vectors: list[list[float]] = []
        seconds = 0.0
        if new_chunks:
            t0 = self._clock()
            vectors = await self.embedder.embed_batch([c.text for c in new_chunks])
            seconds = self._clock() - t0
        return _Embedded(new_chunks, stale, vectors, seconds)

    async def _write(self, pending: Sequence[_Pending], embedded: _Embedded, report: IndexReport) -> None:
        new_chunks = embedded.chunks
        report.embed_seconds += embedded.seconds
        if new_chunks:
            report.chunks_embedded += len(new_chunks)
            sparse = self.sparse.encode_documents([c.text for c in new_chunks]) if self.sparse else None
            await self.store.upsert(
                [c.id for c in new_chunks], embedded.vectors, [chunk_payload(c) for c in new_chunks], sparse
            )
            report.chunks_written += len(new_chunks)
        if embedded.stale:
            await self.store.delete(embedded.stale)
            report.chunks_deleted += len(embedded.stale)
        self.manifest.put_many((doc.id, h, [c.id for c in chunks]) for doc, h, chunks, _ in pending)
        report.docs_indexed += len(pending)

    async def remove(self, doc_id: str, report: IndexReport | None = None) -> None:
        """Delete a document's chunks and its manifest row."""
        old = self.manifest.get(doc_id)
        if old is None:
            return
        if old[1]:
            await self.store.delete(old[1])
        self.manifest.delete(doc_id)
        if report:
            report.docs_removed += 1
            report.chunks_deleted += len(old[1])
