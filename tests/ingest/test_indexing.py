"""Incremental, resumable indexing: unchanged docs cost nothing, changed docs re-embed only new chunks."""

import hashlib

import pytest

from ragkit.ingest.indexing import Indexer, Manifest
from ragkit.testing import FakeEmbedder, InMemoryStore
from ragkit.types import Chunk, Document


class ParagraphChunker:
    max_tokens = 1000

    def chunk(self, doc):
        out, pos = [], 0
        for part in doc.text.split("\n\n"):
            start = doc.text.index(part, pos)
            pos = start + len(part)
            if part.strip():
                cid = hashlib.sha256(f"{doc.id}|{start}|{pos}|{part}".encode()).hexdigest()[:32]
                out.append(Chunk(cid, doc.id, part, start, pos, dict(doc.metadata)))
        return out


class CrashingStore(InMemoryStore):
    """Fails on the n-th upsert, as a killed process would stop mid-run."""

    def __init__(self, fail_on: int):
        super().__init__()
        self.fail_on = fail_on
        self.upserts = 0

    async def upsert(self, ids, vectors, payloads, sparse=None):
        self.upserts += 1
        if self.upserts == self.fail_on:
            raise KeyboardInterrupt("killed")
        await super().upsert(ids, vectors, payloads, sparse)


def docs(n=6, paras=3):
    return [
        Document(f"d{i}", "\n\n".join(f"doc {i} paragraph {j} about freezers" for j in range(paras))) for i in range(n)
    ]


def make(tmp_path, store=None, batch=4):
    emb = FakeEmbedder(16)
    store = store or InMemoryStore()
    return (
        Indexer(
            chunker=ParagraphChunker(),
            embedder=emb,
            store=store,
            manifest=Manifest(tmp_path / "m.sqlite"),
            batch_chunks=batch,
        ),
        emb,
        store,
    )


async def test_reindex_unchanged_makes_no_embedding_calls(tmp_path):
    idx, emb, store = make(tmp_path)
    first = await idx.index(docs())
    assert first.chunks_written == 18 and await store.count() == 18
    calls = len(emb.calls)
    second = await idx.index(docs())
    assert second.docs_unchanged == 6 and second.chunks_embedded == 0
    assert len(emb.calls) == calls


async def test_changed_doc_reembeds_only_changed_chunks_and_drops_stale(tmp_path):
    idx, emb, store = make(tmp_path)
    await idx.index(docs())
    changed = docs()
    changed[2] = Document("d2", changed[2].text + " NEW")  # last paragraph changes
    report = await idx.index(changed)
    assert report.docs_indexed == 1 and report.chunks_embedded == 1 and report.chunks_deleted == 1
    assert await store.count() == 18
    texts = {p[1]["text"] for p in store.points.values()}
    assert "doc 2 paragraph 2 about freezers NEW" in texts
    assert "doc 2 paragraph 2 about freezers" not in texts


async def test_prune_removes_deleted_docs(tmp_path):
    idx, _, store = make(tmp_path)
    await idx.index(docs())
    report = await idx.index(docs()[:4], prune=True)
    assert report.docs_removed == 2
    assert await store.count() == 12
    assert {p[1]["doc_id"] for p in store.points.values()} == {"d0", "d1", "d2", "d3"}


async def test_killed_run_resumes_without_duplicates_or_loss(tmp_path):
    store = CrashingStore(fail_on=3)
    idx, _, _ = make(tmp_path, store=store, batch=3)
    with pytest.raises(KeyboardInterrupt):
        await idx.index(docs())
    partial = await store.count()
    assert 0 < partial < 18
    idx2 = Indexer(
        chunker=ParagraphChunker(),
        embedder=FakeEmbedder(16),
        store=store,
        manifest=Manifest(tmp_path / "m.sqlite"),
        batch_chunks=3,
    )
    report = await idx2.index(docs())
    assert await store.count() == 18
    assert report.docs_unchanged == 2  # the two batches committed before the crash
    ids = [p[1]["chunk_id"] for p in store.points.values()]
    assert len(ids) == len(set(ids))


async def test_dimension_mismatch_is_config_error_before_any_write(tmp_path):
    from ragkit.errors import ConfigError

    store = InMemoryStore()
    await store.ensure_collection(8)
    idx, _, _ = make(tmp_path, store=store)
    with pytest.raises(ConfigError, match="dimension mismatch"):
        await idx.index(docs())
    assert store.writes == 0


async def test_next_batch_embeds_while_the_previous_one_is_written(tmp_path):
    import asyncio

    events: list[str] = []

    class SlowEmbedder(FakeEmbedder):
        async def embed_batch(self, texts):
            events.append(f"embed start {texts[0].split()[1]}")
            await asyncio.sleep(0.02)
            events.append(f"embed end {texts[0].split()[1]}")
            return await super().embed_batch(texts)

    class SlowStore(InMemoryStore):
        async def upsert(self, ids, vectors, payloads, sparse=None):
            events.append(f"upsert start {payloads[0]['doc_id'][1:]}")
            await asyncio.sleep(0.02)
            await super().upsert(ids, vectors, payloads, sparse)
            events.append(f"upsert end {payloads[0]['doc_id'][1:]}")

    store = SlowStore()
    idx = Indexer(
        chunker=ParagraphChunker(),
        embedder=SlowEmbedder(16),
        store=store,
        manifest=Manifest(tmp_path / "m.sqlite"),
        batch_chunks=3,
    )
    report = await idx.index(docs(n=3))  # one document (3 chunks) per batch
    assert report.chunks_written == 9 and await store.count() == 9
    # batch 1 embeds while batch 0 is upserted, and only one batch embeds at a time
    assert events.index("embed start 1") < events.index("upsert end 0")
    starts_and_ends = [e for e in events if e.startswith("embed")]
    assert starts_and_ends == [f"embed {w} {i}" for i in range(3) for w in ("start", "end")]
    # writes stay in order, each after its own embedding
    assert [e for e in events if e.startswith("upsert end")] == ["upsert end 0", "upsert end 1", "upsert end 2"]


class LongChunker(ParagraphChunker):
    """Streams its chunks, as the real chunkers do for long documents."""

    def iter_chunks(self, doc):
        yield from self.chunk(doc)


async def test_a_document_changed_after_a_killed_run_leaves_no_chunk_of_that_run(tmp_path):
    big = Document("big", "\n\n".join(f"paragraph {j} of the big one" for j in range(10)))
    store = CrashingStore(fail_on=2)
    idx = Indexer(
        chunker=LongChunker(),
        embedder=FakeEmbedder(16),
        store=store,
        manifest=Manifest(tmp_path / "m.sqlite"),
        batch_chunks=4,
    )
    with pytest.raises(KeyboardInterrupt):
        await idx.index([big])
    assert 0 < await store.count() < 10 and idx.manifest.get("big") is None and idx.manifest.pending("big")
    changed = Document("big", "\n\n".join(f"paragraph {j} rewritten" for j in range(3)))
    report = await idx.index([changed])
    assert report.docs_indexed == 1
    assert sorted(p[1]["text"] for p in store.points.values()) == [f"paragraph {j} rewritten" for j in range(3)]
    assert idx.manifest.pending("big") == [] and len(idx.manifest.get("big")[1]) == 3


async def test_an_error_from_the_loader_writes_what_was_read_then_propagates(tmp_path):
    from ragkit.errors import DataError

    idx, _, store = make(tmp_path, batch=100)
    await idx.index(docs(n=6))

    changed = [Document(d.id, d.text + " v2") for d in docs(n=3)]

    def changed_loader():
        yield from changed
        raise DataError("rows.jsonl:4: not valid JSON")

    with pytest.raises(DataError, match="rows.jsonl:4"):
        await idx.index(changed_loader(), prune=True)
    assert all(idx.manifest.get(d.id)[1] for d in changed)  # recorded: their chunks are in the store
    assert len(idx.manifest.doc_ids()) == 6  # nothing pruned: the run did not see everything
    assert sum("v2" in p[1]["text"] for p in store.points.values()) == 3


async def test_prune_with_a_scope_removes_only_inside_it(tmp_path):
    idx, _, store = make(tmp_path)
    await idx.index(docs())
    report = await idx.index(docs()[:2], prune=lambda doc_id: doc_id in {"d2", "d3"})
    assert report.docs_removed == 2 and idx.manifest.doc_ids() == {"d0", "d1", "d4", "d5"}


async def test_a_document_the_chunker_rejects_is_reported_and_the_rest_indexed(tmp_path):
    from ragkit.errors import DataError

    class Picky(ParagraphChunker):
        def chunk(self, doc):
            if doc.id == "d1":
                raise DataError("cannot fit")
            return super().chunk(doc)

    idx = Indexer(chunker=Picky(), embedder=FakeEmbedder(16), store=InMemoryStore(), manifest=Manifest(tmp_path / "m"))
    report = await idx.index(docs(n=3))
    assert report.docs_indexed == 2 and report.errors == ["d1: cannot be chunked: cannot fit"]
