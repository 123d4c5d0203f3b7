"""Incremental, resumable indexing: chunk → embed → upsert, with a manifest of what each document became.

A document whose content hash is unchanged is skipped. A changed one is chunked again: chunks whose ids are new
(chunk ids derive from the document id, offsets and text) are embedded and written, chunks kept whose payload
changed (a metadata edit: a new price, a new title) get their payload rewritten (``set_payload``, or a re-upsert
on a store without it), and its stale chunks are deleted once all its new ones are in the store. A document gone
from the source is removed when pruning, only inside the scope given.

Memory stays flat: chunks stream from the chunker in batches of ``batch_chunks``, and a long document spans as
many batches as it needs. A batch's chunk ids are listed as pending in the manifest before they are written, and a
document's manifest row is written only after its last chunk is in the store, so a run killed anywhere is finished
by running it again: no duplicates, nothing lost, and a killed run's writes are cleaned up even if the document
changed in between.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from ragkit.errors import ConfigError, DataError
from ragkit.ingest.manifest import Chunks, Manifest
from ragkit.types import Chunk, Document

log = logging.getLogger("ragkit.ingest.indexing")

PruneScope = Callable[[str], bool]


def doc_hash(doc: Document) -> str:
    """Content hash of a document: metadata and text (hashed in slices, so a long text is not copied whole)."""
    h = hashlib.sha256()
    h.update(json.dumps(dict(doc.metadata), sort_keys=True, ensure_ascii=False, default=str).encode())
    h.update(b"\x00")
    step = 1 << 20
    for i in range(0, len(doc.text), step):
        h.update(doc.text[i : i + step].encode("utf-8", "surrogatepass"))
    return h.hexdigest()


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


def payload_hash(payload: dict[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(body.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def fits_embedder(chunker: Any, embedder: Any) -> Any:
    """``chunker``, if its token cap fits what ``embedder`` reads whole (its ``max_input_tokens``, when it has one);
    otherwise a ConfigError: the embedder would silently cut every longer chunk."""
    limit = getattr(embedder, "max_input_tokens", None)
    if limit is not None and chunker.max_tokens > limit:
        raise ConfigError(
            f"chunker.max_tokens is {chunker.max_tokens}, but the embedder {embedder.id!r} reads at most {limit} "
            f"tokens and silently cuts off the rest: set chunker.max_tokens to {limit} or less"
        )
    return chunker


async def require_index(store: Any, where: Any) -> None:
    """Raise a ConfigError saying nothing was indexed yet when the store says it holds no index (``exists``)."""
    exists = getattr(store, "exists", None)
    if exists is not None and not await exists():
        raise ConfigError(f"no index in {where}: index documents first (ragkit index PATH…)")


def _jsonable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, dict))


@dataclass
class IndexReport:
    """What one indexing run did; ``errors`` lists each document that was not indexed, and why."""

    docs_seen: int = 0
    docs_unchanged: int = 0
    docs_indexed: int = 0
    docs_removed: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    chunks_embedded: int = 0
    payloads_updated: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    docs_expected: int | None = None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


Progress = Callable[[IndexReport], None]


@dataclass(slots=True)
class _Doc:
    """A changed document on its way through the batches."""

    id: str
    hash: str
    old: Chunks  # recorded chunk id -> payload hash
    stray: set[str]  # chunk ids a killed run wrote for it
    new: Chunks = field(default_factory=dict)


@dataclass(slots=True)
class _Batch:
    embed: list[tuple[Chunk, dict[str, Any]]] = field(default_factory=list)  # new chunks: embed, then upsert
    payloads: list[tuple[Chunk, dict[str, Any]]] = field(default_factory=list)  # kept chunks with a new payload
    done: list[_Doc] = field(default_factory=list)  # documents complete once this batch is written

    def size(self) -> int:
        return len(self.embed) + len(self.payloads)


@dataclass(slots=True)
class _Embedded:
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

    def _chunks(self, doc: Document) -> Iterator[Chunk]:
        stream = getattr(self.chunker, "iter_chunks", None)
        return stream(doc) if stream is not None else iter(self.chunker.chunk(doc))

    async def index(
        self,
        docs: Iterable[Document],
        *,
        prune: bool | PruneScope = False,
        progress: Progress | None = None,
        total: int | None = None,
    ) -> IndexReport:
        """Bring the store in line with ``docs``.

        ``prune=True`` removes every recorded document not seen; a callable removes those not seen for which it
        returns True (``ragkit.ingest.doc_ids.under`` gives the documents of some folders). If ``docs`` raises
        (a bad record with ``on_error="raise"`` or ``"report"``), what was read before is written first, nothing
        is pruned, and the error propagates. Duplicate ids and documents the chunker rejects are listed in
        ``report.errors``; the rest is indexed.

        Batches are pipelined: while batch k is being embedded (in a worker thread), batch k-1 is sparse-encoded,
        upserted and recorded in the manifest, and the chunks of batch k+1 are made. At most one batch is
        embedding at a time.
        """
        report = IndexReport(docs_expected=total)
        start = self._clock()
        await self._ensure_collection()
        legacy = self.manifest.legacy_ids()
        if legacy and prune is not True:
            log.warning(
                "%d documents were indexed by an older ragkit (e.g. %r) and have not been indexed since; "
                "pass prune=True (ragkit index --rebuild) to remove those not given again",
                len(legacy),
                legacy[0],
            )
        seen: set[str] = set()
        batch = _Batch()
        embedding: tuple[_Batch, asyncio.Task[_Embedded]] | None = None
        failure: Exception | None = None
        it = iter(docs)
        try:
            while True:
                try:
                    doc = next(it)
                except StopIteration:
                    break
                except Exception as e:  # a loader's error: write what was read, then let it propagate
                    failure = e
                    break
                report.docs_seen += 1
                if doc.id in seen:
                    report.errors.append(f"{doc.id}: duplicate document id in this run; the later copy was ignored")
                    continue
                seen.add(doc.id)
                state = self._changed(doc, report)
                if state is not None:
                    try:
                        for chunk in self._chunks(doc):
                            self._plan(chunk, state, batch)
                            if batch.size() >= self.batch_chunks:
                                embedding = await self._advance(embedding, batch, report, progress)
                                batch = _Batch()
                    except DataError as e:
                        # Its chunks in batches already started stay listed as pending; the next run cleans them.
                        batch.embed = [item for item in batch.embed if item[0].doc_id != doc.id]
                        batch.payloads = [item for item in batch.payloads if item[0].doc_id != doc.id]
                        report.errors.append(f"{doc.id}: cannot be chunked: {e}")
                    else:
                        # Complete with the batch holding its last chunk: the one embedding, if none came after.
                        empty = not (batch.size() or batch.done)
                        (embedding[0] if empty and embedding is not None else batch).done.append(state)
                        if len(batch.done) >= self.batch_chunks:
                            embedding = await self._advance(embedding, batch, report, progress)
                            batch = _Batch()
                if progress:
                    progress(report)
            if batch.size() or batch.done:
                embedding = await self._advance(embedding, batch, report, progress)
            await self._advance(embedding, None, report, progress)
            embedding = None
        finally:
            if embedding is not None:  # a write failed: let the running embedding finish, discard it
                await asyncio.gather(embedding[1], return_exceptions=True)
        if failure is not None:
            raise failure
        if prune:
            scope: PruneScope = (lambda _id: True) if prune is True else prune
            for doc_id in sorted(self.manifest.doc_ids() - seen):
                if scope(doc_id):
                    await self.remove(doc_id, report)
        report.seconds = self._clock() - start
        log.info(
            "indexed %d docs (%d unchanged, %d removed), %d chunks written, %d embedded, %d payloads updated in %.2fs",
            report.docs_indexed,
            report.docs_unchanged,
            report.docs_removed,
            report.chunks_written,
            report.chunks_embedded,
            report.payloads_updated,
            report.seconds,
        )
        for err in report.errors:
            log.warning("not indexed: %s", err)
        return report

    def _changed(self, doc: Document, report: IndexReport) -> _Doc | None:
        """The document's state if it needs work; None (counted unchanged) if the manifest already has it."""
        h = doc_hash(doc)
        old = self.manifest.get(doc.id)
        stray = self.manifest.pending(doc.id)
        if old is not None and old[0] == h and not stray:
            report.docs_unchanged += 1
            return None
        recorded = old[1] if old else {}
        return _Doc(doc.id, h, recorded, set(stray) - set(recorded))

    def _plan(self, chunk: Chunk, state: _Doc, batch: _Batch) -> None:
        payload = chunk_payload(chunk)
        digest = payload_hash(payload)
        state.new[chunk.id] = digest
        before = state.old.get(chunk.id)
        if before is None:
            batch.embed.append((chunk, payload))
        elif before != digest:
            batch.payloads.append((chunk, payload))

    async def _advance(
        self,
        embedding: tuple[_Batch, asyncio.Task[_Embedded]] | None,
        batch: _Batch | None,
        report: IndexReport,
        progress: Progress | None,
    ) -> tuple[_Batch, asyncio.Task[_Embedded]] | None:
        """Finish the batch being embedded, start embedding ``batch``, then write the finished one."""
        done = None
        if embedding is not None:
            done = (embedding[0], await embedding[1])
        started = None
        if batch is not None:
            started = (batch, asyncio.create_task(self._embed([c.text for c, _ in batch.embed])))
            await asyncio.sleep(0)  # let the task reach its worker thread before the writes below hold the loop
        if done is not None:
            try:
                await self._write(done[0], done[1], report)
            except BaseException:
                if started is not None:
                    await asyncio.gather(started[1], return_exceptions=True)
                raise
            if progress:
                progress(report)
        return started

    async def _embed(self, texts: Sequence[str]) -> _Embedded:
        if not texts:
            return _Embedded([], 0.0)
        t0 = self._clock()
        vectors = await self.embedder.embed_batch(texts)
        return _Embedded(vectors, self._clock() - t0)

    async def _upsert(self, items: Sequence[tuple[Chunk, dict[str, Any]]], vectors: Sequence[Any]) -> None:
        texts = [c.text for c, _ in items]
        sparse = self.sparse.encode_documents(texts) if self.sparse else None
        await self.store.upsert([c.id for c, _ in items], vectors, [p for _, p in items], sparse)

    async def _write(self, batch: _Batch, embedded: _Embedded, report: IndexReport) -> None:
        report.embed_seconds += embedded.seconds
        if batch.embed:
            self.manifest.add_pending((c.doc_id, c.id) for c, _ in batch.embed)
            report.chunks_embedded += len(batch.embed)
            await self._upsert(batch.embed, embedded.vectors)
            report.chunks_written += len(batch.embed)
        if batch.payloads:
            await self._rewrite_payloads(batch.payloads, report)
        stale = [i for d in batch.done for i in sorted((set(d.old) | d.stray) - set(d.new))]
        for b in range(0, len(stale), 1000):
            await self.store.delete(stale[b : b + 1000])
        report.chunks_deleted += len(stale)
        if batch.done:
            self.manifest.complete((d.id, d.hash, d.new) for d in batch.done)
            report.docs_indexed += len(batch.done)

    async def _rewrite_payloads(self, items: Sequence[tuple[Chunk, dict[str, Any]]], report: IndexReport) -> None:
        """New payloads for chunks already stored; a store without ``set_payload``, or missing a point, gets the
        chunk upserted again (its vector comes from the embedding cache)."""
        redo = list(items)
        set_payload = getattr(self.store, "set_payload", None)
        if set_payload is not None:
            missing = set(await set_payload([c.id for c, _ in items], [p for _, p in items]))
            report.payloads_updated += len(items) - len(missing)
            redo = [(c, p) for c, p in items if c.id in missing]
        if redo:
            embedded = await self._embed([c.text for c, _ in redo])
            report.embed_seconds += embedded.seconds
            report.chunks_embedded += len(redo)
            await self._upsert(redo, embedded.vectors)
            report.chunks_written += len(redo)

    async def remove(self, doc_id: str, report: IndexReport | None = None) -> None:
        """Delete a document's chunks (recorded and pending) and its manifest rows."""
        old = self.manifest.get(doc_id)
        ids = sorted(set(old[1] if old else ()) | set(self.manifest.pending(doc_id)))
        for b in range(0, len(ids), 1000):
            await self.store.delete(ids[b : b + 1000])
        self.manifest.delete(doc_id)
        if report:
            report.docs_removed += 1
            report.chunks_deleted += len(ids)


__all__ = [
    "Indexer",
    "IndexReport",
    "Manifest",
    "doc_hash",
    "chunk_payload",
    "payload_hash",
    "fits_embedder",
    "require_index",
]
