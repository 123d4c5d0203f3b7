"""A change to a record's metadata alone (a price, a title) reaches the store: a filter on the new value finds it,
on the Qdrant edge store (through `ragkit index`), on qdrant-client's local mode, and on a store without
``set_payload`` (re-upserted, its vector from the embedding cache)."""

from __future__ import annotations

import pytest
from ingest_cli import index_json, pipeline, search, stored_chunks

from ragkit.ingest.chunking import RecursiveChunker
from ragkit.ingest.embedding import CachedEmbedder
from ragkit.ingest.indexing import Indexer, Manifest
from ragkit.providers.qdrant_server import QdrantServerStore
from ragkit.testing import FakeEmbedder, InMemoryStore
from ragkit.types import Document

CATALOG = "id,name,text,price\nLABO-288,Lab fridge,A laboratory refrigerator with 288 litres,{price}\n"


def test_a_changed_price_reaches_the_edge_store_and_its_filters(tmp_path, capsys):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG.format(price=2490))
    config = pipeline(tmp_path)
    index_json(capsys, str(catalog), "--config", config)
    assert search(capsys, config, "laboratory refrigerator", "--filter", '{"price": {"lte": 2000}}') == []
    catalog.write_text(CATALOG.format(price=1990))
    report = index_json(capsys, str(catalog), "--config", config)
    assert report["docs_indexed"] == 1 and report["payloads_updated"] == 1 and report["chunks_embedded"] == 0
    [payload] = stored_chunks(tmp_path / "index" / "store")
    assert payload["price"] == 1990
    hits = search(capsys, config, "laboratory refrigerator", "--filter", '{"price": {"lte": 2000}}')
    assert [h["metadata"]["price"] for h in hits] == [1990]


def doc(price: int, title: str = "Lab fridge") -> Document:
    return Document("cat#LABO-288", "A laboratory refrigerator with 288 litres.", {"price": price, "title": title})


async def _reindex(tmp_path, store) -> tuple:
    embedder = CachedEmbedder(FakeEmbedder(16))
    manifest = Manifest(tmp_path / "m.sqlite")
    idx = Indexer(chunker=RecursiveChunker(64), embedder=embedder, store=store, manifest=manifest)
    try:
        first = await idx.index([doc(2490)])
        second = await idx.index([doc(1990, "Lab fridge (sale)")])
    finally:
        manifest.close()
    return first, second, embedder


async def test_a_changed_price_reaches_qdrant_client_local_mode(tmp_path):
    store = QdrantServerStore(QdrantServerStore.Config(location=":memory:", collection="c"))
    first, second, embedder = await _reindex(tmp_path, store)
    assert first.chunks_written == 1 and second.payloads_updated == 1 and second.chunks_embedded == 0
    got = await store.search_dense([1.0] + [0.0] * 15, 5, {"price": {"lte": 2000}})
    assert [(p["price"], p["title"]) for _, _, p in got] == [(1990, "Lab fridge (sale)")]
    assert await store.count() == 1
    await store.close()


async def test_a_store_without_set_payload_gets_the_chunk_again_from_the_cache(tmp_path):
    store = InMemoryStore()
    first, second, embedder = await _reindex(tmp_path, store)
    assert second.chunks_written == 1 and second.payloads_updated == 0
    assert embedder.misses == 1  # the second write took its vector from the cache
    [(_, payload, _)] = store.points.values()
    assert payload["price"] == 1990


async def test_set_payload_reports_points_it_does_not_hold(tmp_path):
    from ragkit.providers.qdrant_edge import QdrantEdgeStore

    for store in (
        QdrantEdgeStore(QdrantEdgeStore.Config(path=str(tmp_path / "e"))),
        QdrantServerStore(QdrantServerStore.Config(location=":memory:", collection="c")),
    ):
        await store.ensure_collection(4)
        await store.upsert(["a"], [[1.0, 0, 0, 0]], [{"doc_id": "d", "v": 1}])
        assert await store.set_payload(["a", "ghost"], [{"doc_id": "d", "v": 2}, {"doc_id": "d"}]) == ["ghost"]
        assert (await store.get_payloads(["a"]))["a"]["v"] == 2
        await store.close()


@pytest.mark.parametrize("change", ["title", "text"])
async def test_unchanged_documents_cost_nothing_and_changed_text_is_embedded(tmp_path, change):
    embedder = CachedEmbedder(FakeEmbedder(16))
    manifest = Manifest(tmp_path / "m.sqlite")
    store = InMemoryStore()
    idx = Indexer(chunker=RecursiveChunker(64), embedder=embedder, store=store, manifest=manifest)
    await idx.index([doc(2490)])
    again = await idx.index([doc(2490)])
    assert again.docs_unchanged == 1 and again.chunks_written == again.payloads_updated == 0
    new = (
        doc(2490, "Renamed")
        if change == "title"
        else Document("cat#LABO-288", "A 300 litre fridge.", doc(2490).metadata)
    )
    third = await idx.index([new])
    assert third.docs_indexed == 1 and len(store.points) == 1
    assert third.chunks_deleted == (1 if change == "text" else 0)
    manifest.close()


def test_first_layout_manifest_rows_get_their_payloads_rewritten_once(tmp_path):
    """A manifest of the first layout knew no payload hashes: its documents are re-checked once when next seen."""
    import json
    import sqlite3

    db = sqlite3.connect(tmp_path / "m.sqlite")
    db.execute("CREATE TABLE docs (doc_id TEXT PRIMARY KEY, hash TEXT NOT NULL, chunk_ids TEXT NOT NULL)")
    db.execute("INSERT INTO docs VALUES (?, ?, ?)", ("cat#1", "h", json.dumps(["c1", "c2"])))
    db.commit()
    db.close()
    m = Manifest(tmp_path / "m.sqlite")
    assert m.get("cat#1") == ("", {"c1": "", "c2": ""}) and m.legacy_ids() == ["cat#1"]
    m.close()
