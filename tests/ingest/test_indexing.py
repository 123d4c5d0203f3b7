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
