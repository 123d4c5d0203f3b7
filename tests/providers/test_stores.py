"""Congruence tests: one contract, run against the Qdrant Edge shard and qdrant-client's local mode."""

from __future__ import annotations

import math
import random
import uuid
import warnings

import pytest

from ragkit.errors import ConfigError, DataError
from ragkit.protocols import VectorStore
from ragkit.providers.qdrant_edge import DENSE, ID_NAMESPACE, QdrantEdgeStore, dense_rows, point_id
from ragkit.providers.qdrant_server import QdrantServerStore
from ragkit.retrieve.filters import matches
from ragkit.retrieve.sparse import Bm25Encoder
from ragkit.types import SparseVector

DIM = 16
SCHEMA = {"category": "keyword", "volume_l": "float", "manufacturer": "keyword", "stock": "integer", "active": "bool"}
# Per-test stores index only part of the schema (each index costs a disk sync); filters on the rest scan payloads.
SOME = {"category": "keyword", "volume_l": "float"}
CATEGORIES = ["freezer", "fridge", "incubator"]
MAKERS = ["Labo", "Medi", "Cryo", "Therm"]
WORDS = "cold storage sample vaccine laboratory quiet energy door alarm shelf glass compressor".split()


def _unit(rng: random.Random) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(DIM)]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _corpus():
    rng = random.Random(7)
    enc = Bm25Encoder(avg_doc_len=8)
    ids, vectors, payloads, sparse = [], [], [], []
    for i in range(60):
        text = f"MODEL-{i % 20} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        ids.append(f"doc{i // 3}#{i % 3}")
        vectors.append(_unit(rng))
        payloads.append(
            {
                "doc_id": f"doc{i // 3}",
                "text": text,
                "start": 0,
                "end": len(text),
                "category": CATEGORIES[i % 3],
                "volume_l": float(50 + 7 * i),
                "manufacturer": MAKERS[i % 4],
                "stock": i % 5,
                "active": i % 2 == 0,
            }
        )
        sparse.append(enc.encode_document(text))
    return ids, vectors, payloads, sparse, enc


CORPUS = _corpus()
FILTERS = [
    None,
    {"category": "freezer"},
    {"volume_l": {"gte": 100, "lte": 300}},
    {"volume_l": {"gt": 120, "lt": 200}},
    {"manufacturer": {"any": ["Labo", "Cryo"]}},
    {"stock": 3},
    {"active": True},
    {"category": "fridge", "volume_l": {"lt": 250}, "manufacturer": {"any": ["Medi", "Therm"]}},
]


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b))


async def _recall_at_10(store, queries, best) -> float:
    """Share of the exact top 10 (``best``: point numbers per query) that the store's dense search finds."""
    hits = 0
    for q, top in zip(queries, best):
        got = [cid for cid, _, _ in await store.search_dense(q, 10)]
        hits += len(set(got) & {f"p{i}" for i in top})
    return hits / (10 * len(queries))


def _exact_dense(query, flt, k):
    ids, vectors, payloads, _, _ = CORPUS
    scored = [(cid, _cos(query, v)) for cid, v, p in zip(ids, vectors, payloads) if matches(flt, p)]
    return [cid for cid, _ in sorted(scored, key=lambda t: -t[1])[:k]]


class StoreContract:
    """Inherit and define an async fixture ``store`` returning an empty store."""

    @pytest.fixture
    async def loaded(self, store):
        ids, vectors, payloads, sparse, _ = CORPUS
        await store.ensure_collection(DIM)
        await store.upsert(ids, vectors, payloads, sparse)
        return store

    async def test_is_a_vector_store(self, store):
        assert isinstance(store, VectorStore)

    async def test_count_and_payloads_keep_chunk_id(self, loaded):
        assert await loaded.count() == 60
        got = await loaded.get_payloads(["doc3#1", "nope"])
        assert set(got) == {"doc3#1"}
        assert got["doc3#1"]["chunk_id"] == "doc3#1" and got["doc3#1"]["doc_id"] == "doc3"

    async def test_dense_search_matches_exact_search(self, loaded):
        rng = random.Random(11)
        for flt in FILTERS:
            for _ in range(3):
                q = _unit(rng)
                got = await loaded.search_dense(q, 5, flt)
                assert [cid for cid, _, _ in got] == _exact_dense(q, flt, 5), flt
                assert all(matches(flt, payload) for _, _, payload in got)

    async def test_sparse_search_respects_filter(self, loaded):
        enc = CORPUS[4]
        for flt in FILTERS:
            got = await loaded.search_sparse(enc.encode_query("MODEL-7 vaccine alarm"), 5, flt)
            assert got and all(matches(flt, p) for _, _, p in got), flt
            scores = [s for _, s, _ in got]
            assert scores == sorted(scores, reverse=True)

    async def test_sparse_exact_id_ranks_first(self, loaded):
        got = await loaded.search_sparse(CORPUS[4].encode_query("MODEL-13"), 3)
        assert got[0][2]["text"].startswith("MODEL-13 ")

    async def test_hybrid_fusion_has_both_scores(self, loaded):
        enc = CORPUS[4]
        q = CORPUS[1][5]
        got = await loaded.search_hybrid(q, enc.encode_query("MODEL-5 door"), 5, {"category": "incubator"})
        assert got[0][0] == CORPUS[0][5]  # its own vector, and its own model id
        assert set(got[0][3]) == {"dense", "sparse"}
        assert all(p["category"] == "incubator" for _, _, p, _ in got)

    async def test_dimension_mismatch_is_reported_before_writes(self, loaded):
        with pytest.raises(ConfigError, match="dimension mismatch: collection has 16, embedder gives 8"):
            await loaded.ensure_collection(8)
        assert await loaded.count() == 60

    async def test_upsert_rejects_wrong_dimension_and_ragged_batches(self, loaded):
        with pytest.raises(ConfigError, match="dimension mismatch"):
            await loaded.upsert(["x"], [[0.1] * 3], [{"doc_id": "x"}])
        with pytest.raises(DataError):
            await loaded.upsert(["x", "y"], [[0.1] * DIM], [{"doc_id": "x"}])
        assert await loaded.count() == 60

    async def test_delete_doc_and_ids_for_doc(self, loaded):
        assert await loaded.ids_for_doc("doc4") == {"doc4#0", "doc4#1", "doc4#2"}
        await loaded.delete_doc("doc4")
        assert await loaded.ids_for_doc("doc4") == set()
        assert await loaded.count() == 57
        await loaded.delete(["doc5#0"])
        assert await loaded.ids_for_doc("doc5") == {"doc5#1", "doc5#2"}

    async def test_upsert_same_id_replaces(self, loaded):
        ids, vectors, payloads, sparse, _ = CORPUS
        await loaded.upsert([ids[0]], [vectors[1]], [{**payloads[0], "category": "changed"}], [sparse[0]])
        assert await loaded.count() == 60
        assert (await loaded.get_payloads([ids[0]]))[ids[0]]["category"] == "changed"

    async def test_set_payload_replaces_payloads_and_names_ids_not_stored(self, loaded):
        ids, _, payloads, _, _ = CORPUS
        missing = await loaded.set_payload([ids[0], "ghost"], [{**payloads[0], "category": "sale"}, {"doc_id": "x"}])
        assert missing == ["ghost"] and await loaded.count() == 60
        got = (await loaded.get_payloads([ids[0]]))[ids[0]]
        assert got["category"] == "sale" and got["chunk_id"] == ids[0]
        hits = await loaded.search_dense(CORPUS[1][0], 3, {"category": "sale"})
        assert [cid for cid, _, _ in hits] == [ids[0]]

    async def test_exists_once_a_collection_is_made(self, store):
        assert not await store.exists()
        await store.ensure_collection(DIM)
        assert await store.exists()

    async def test_bad_filter_names_key(self, loaded):
        with pytest.raises(ConfigError, match="volume_l.*between"):
            await loaded.search_dense(CORPUS[1][0], 3, {"volume_l": {"between": [1, 2]}})


class TestQdrantEdgeStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path):
        s = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(tmp_path / "shard"), payload_schema=SOME))
        yield s
        await s.close()

    async def test_persists_across_reopen(self, loaded, tmp_path):
        q = CORPUS[1][9]
        before = await loaded.search_dense(q, 5)
        await loaded.close()
        again = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(tmp_path / "shard"), payload_schema=SOME))
        assert await again.count() == 60
        assert await again.search_dense(q, 5) == before
        with pytest.raises(ConfigError, match="dimension mismatch: collection has 16, embedder gives 32"):
            await again.ensure_collection(32)
        await again.close()

    async def test_without_wal_close_makes_writes_durable(self, tmp_path):
        ids, vectors, payloads, sparse, _ = CORPUS
        s = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(tmp_path / "nowal"), wal=False))
        await s.ensure_collection(DIM)
        await s.upsert(ids[:10], vectors[:10], payloads[:10], sparse[:10])
        await s.close()
        again = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(tmp_path / "nowal")))
        assert await again.count() == 10
        await again.close()

    def test_path_from_config_or_pipeline(self, tmp_path):
        from_pipeline = QdrantEdgeStore.from_config(QdrantEdgeStore.Config(), path=str(tmp_path / "p"))
        assert from_pipeline.path == tmp_path / "p"
        own = QdrantEdgeStore.from_config(QdrantEdgeStore.Config(path=str(tmp_path / "own")), path=str(tmp_path / "p"))
        assert own.path == tmp_path / "own"
        with pytest.raises(ConfigError, match="needs a path"):
            QdrantEdgeStore.from_config(QdrantEdgeStore.Config())

    async def test_optimize_builds_hnsw_and_keeps_results(self, tmp_path):
        rng = random.Random(3)
        s = QdrantEdgeStore(
            QdrantEdgeStore.Config(
                path=str(tmp_path / "big"),
                indexing_threshold_kb=1,
                full_scan_threshold_kb=1,
                hnsw_m=16,
                hnsw_ef_construct=64,
            )
        )
        await s.ensure_collection(DIM)
        vecs = [_unit(rng) for _ in range(600)]
        await s.upsert([f"p{i}" for i in range(600)], vecs, [{"doc_id": f"d{i}"} for i in range(600)])
        await s.optimize()
        assert s.info()["indexed_vectors"] > 0
        exact = [sorted(range(600), key=lambda i: -_cos(q, vecs[i]))[:10] for q in vecs[:20]]
        assert await _recall_at_10(s, vecs[:20], exact) >= 0.9
        await s.close()

    async def test_a_long_ingest_is_optimised_in_bounded_pieces_as_it_goes(self, tmp_path):
        """The optimiser runs every ``optimize_every_points`` writes (not only at the end), and no segment grows past
        ``max_segment_size_kb``: what one optimiser run holds in memory does not grow with the index."""
        import numpy as np

        dim, n = 384, 3000  # 1.5 KB per vector: 1,000 KB holds about 660
        rng = np.random.default_rng(5)
        vecs = rng.standard_normal((n, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        s = QdrantEdgeStore(
            QdrantEdgeStore.Config(
                path=str(tmp_path / "long"),
                indexing_threshold_kb=1,
                full_scan_threshold_kb=1,
                hnsw_ef_construct=32,
                optimize_every_points=400,
                max_segment_size_kb=1000,
            )
        )
        await s.ensure_collection(dim)
        for start in range(0, n, 250):  # batches as the indexer writes them
            ids = [f"p{i}" for i in range(start, start + 250)]
            await s.upsert(ids, vecs[start : start + 250], [{"doc_id": i} for i in ids])
        info = s.info()  # no optimize() call yet: the periodic runs built these
        assert info["points"] == n and info["indexed_vectors"] >= n // 2 and info["segments"] >= 3
        exact = np.argsort(-(vecs[:20] @ vecs.T), axis=1)[:, :10]
        assert await _recall_at_10(s, vecs[:20], exact) >= 0.9
        await s.close()
        once = QdrantEdgeStore(
            QdrantEdgeStore.Config(path=str(tmp_path / "once"), indexing_threshold_kb=1, optimize_every_points=None)
        )
        await once.ensure_collection(dim)
        await once.upsert([f"p{i}" for i in range(600)], vecs[:600], [{"doc_id": "d"}] * 600)
        assert once.info()["indexed_vectors"] == 0  # without it, nothing is optimised before optimize()
        await once.close()

    async def test_another_reader_sees_the_last_published_copy_not_unfinished_writes(self, loaded, tmp_path):
        reader = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(tmp_path / "shard")))
        with pytest.raises(ConfigError, match="being written for the first time"):
            await reader.count()  # the writer has not published yet, and holds the lock
        await loaded.optimize()  # publishes, lets go of the lock
        assert await reader.count() == 60
        ids, vectors, payloads, sparse, _ = CORPUS
        await loaded.upsert(["new"], [vectors[0]], [{**payloads[0], "doc_id": "new"}])
        assert await loaded.count() == 61 and await reader.count() == 60  # the writer reads its own writes
        await loaded.close()
        assert await reader.count() == 61  # published on close; the reader moves to the new copy
        files = sorted(p.name for p in (tmp_path / "shard").iterdir())
        assert files[:1] == ["CURRENT"] and "live" in files and sum(f.startswith("gen-") for f in files) >= 2
        await reader.close()
        assert sum(p.name.startswith("gen-") and p.is_dir() for p in (tmp_path / "shard").iterdir()) >= 1

    async def test_a_published_copy_keeps_the_engines_holes(self, loaded, tmp_path):
        """The engine sizes its files in 32 MB steps and writes little of them; the copy readers open must not fill
        the holes with zeros (a small index took ~115 MB of disk per copy), and must read back the same."""
        await loaded.close()
        root = tmp_path / "shard"
        gen = root / (root / "CURRENT").read_text()

        def on_disk(d):
            files = [p for p in d.rglob("*") if p.is_file()]
            return sum(p.stat().st_blocks * 512 for p in files), sum(p.stat().st_size for p in files)

        used, size = on_disk(gen)
        assert size > 64 << 20 and used < 16 << 20  # the engine's files are sized large, and stay holes
        reader = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(root)))
        q = CORPUS[1][9]
        assert await reader.count() == 60 and [h[0] for h in await reader.search_dense(q, 5)]
        await reader.close()

    def test_sparse_copy_reads_back_byte_for_byte(self, tmp_path):
        import os

        from ragkit.providers.qdrant_edge_files import sparse_copy

        src, dst = tmp_path / "src", tmp_path / "dst"
        with open(src, "wb") as f:
            f.truncate(8 << 20)
            f.seek(3 << 20)
            f.write(os.urandom(100_000))
            f.seek((8 << 20) - 3)
            f.write(b"end")
        sparse_copy(str(src), str(dst))
        assert dst.read_bytes() == src.read_bytes()
        assert dst.stat().st_blocks * 512 < 2 << 20
        (tmp_path / "empty").write_bytes(b"")
        sparse_copy(str(tmp_path / "empty"), str(dst))
        assert dst.read_bytes() == b""

    async def test_a_store_of_the_first_layout_is_moved_in_and_published(self, tmp_path):
        import qdrant_edge as qe

        path = tmp_path / "old"
        path.mkdir()
        shard = qe.EdgeShard.create(
            str(path), qe.EdgeConfig(vectors={DENSE: qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)})
        )
        shard.update(
            qe.UpdateOperation.upsert_points([qe.Point(point_id("a"), {DENSE: CORPUS[1][0]}, {"chunk_id": "a"})])
        )
        shard.flush()
        shard.close()
        s = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(path)))
        assert await s.exists() and await s.count() == 1
        assert (path / "live" / "edge_config.json").exists() and not (path / "edge_config.json").exists()
        await s.ensure_collection(DIM)
        await s.close()

    def test_point_ids_are_deterministic_uuid5(self):
        assert point_id("doc1#0") == point_id("doc1#0") != point_id("doc1#1")
        for cid in ["x", "doc1#0", "Kühlschrank/ü#12", ""]:
            assert point_id(cid) == str(uuid.uuid5(ID_NAMESPACE, cid))

    async def test_numpy_and_list_vectors_store_the_same(self, store):
        import numpy as np

        await store.ensure_collection(DIM)
        rows = np.asarray(CORPUS[1][:4], dtype=np.float32)
        await store.upsert(["a", "b"], rows[:2], [{"doc_id": "a"}, {"doc_id": "b"}])
        await store.upsert(["c", "d"], rows[2:].tolist(), [{"doc_id": "c"}, {"doc_id": "d"}])
        for i, cid in enumerate("abcd"):
            assert (await store.search_dense(CORPUS[1][i], 1))[0][0] == cid

    async def test_any_numpy_layout_is_stored_as_its_float32_values(self, store):
        import numpy as np

        await store.ensure_collection(DIM)
        base = np.asarray(CORPUS[1][:12], dtype=np.float64)
        # Strided, Fortran-ordered and float64 inputs all go through the contiguous float32 copy, in order.
        layouts = {"s": base[::2], "f": np.asfortranarray(base[:3]), "r": list(base[3:5].astype(np.float32))}
        for tag, rows in layouts.items():
            ids = [f"{tag}{i}" for i in range(len(rows))]
            await store.upsert(ids, rows, [{"doc_id": tag} for _ in ids])
            want = np.asarray(rows, dtype=np.float32)
            got = store._ready().retrieve([point_id(c) for c in ids], with_payload=True, with_vector=True)
            stored = {r.payload["chunk_id"]: r.vector[DENSE] for r in got}
            for i, cid in enumerate(ids):
                # Cosine vectors are stored normalised; the inputs are unit vectors already.
                assert np.allclose(stored[cid], want[i] / np.linalg.norm(want[i]), atol=1e-6), cid
        assert await store.count() == 6 + 3 + 2

    def test_dense_rows_are_float32_views_in_input_order(self):
        import numpy as np

        m = np.arange(24, dtype=np.float64).reshape(6, 4)[:, ::-1]
        rows = dense_rows(m)
        assert [list(r) for r in rows] == m.astype(np.float32).tolist()
        assert dense_rows([[1, 2], (3.5, 4)]) == [[1, 2], [3.5, 4]]
        assert dense_rows([]) == []


class TestQdrantServerStoreLocal(StoreContract):
    @pytest.fixture
    async def store(self):
        s = QdrantServerStore(QdrantServerStore.Config(location=":memory:", collection="t", payload_schema=SOME))
        yield s
        await s.close()

    def test_config_needs_exactly_one_target_and_hides_key(self, monkeypatch):
        with pytest.raises(ValueError, match="exactly one"):
            QdrantServerStore.Config(url="http://x:6333", location=":memory:")
        monkeypatch.setenv("QDRANT_TEST_KEY", "s3cret-value")
        with warnings.catch_warnings():  # the SDK warns that the key travels over plain http
            warnings.simplefilter("ignore", UserWarning)
            s = QdrantServerStore(
                QdrantServerStore.Config(
                    url="http://localhost:1", api_key_env="QDRANT_TEST_KEY", check_compatibility=False
                )
            )
        assert "s3cret" not in repr(s) and "s3cret" not in repr(s.config)


async def test_stores_agree(tmp_path):
    """Same data, same queries: both engines return the same ids in the same order."""
    edge = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(tmp_path / "e"), payload_schema=SCHEMA))
    local = QdrantServerStore(QdrantServerStore.Config(location=":memory:", collection="c"))
    ids, vectors, payloads, sparse, enc = CORPUS
    for s in (edge, local):
        await s.ensure_collection(DIM)
        await s.upsert(ids, vectors, payloads, sparse)
    rng = random.Random(5)
    for flt in FILTERS:
        q = _unit(rng)
        sq = enc.encode_query(f"{rng.choice(WORDS)} {rng.choice(WORDS)} MODEL-{rng.randint(0, 19)}")
        d_edge, d_local = await edge.search_dense(q, 7, flt), await local.search_dense(q, 7, flt)
        assert [r[0] for r in d_edge] == [r[0] for r in d_local]
        s_edge, s_local = await edge.search_sparse(sq, 7, flt), await local.search_sparse(sq, 7, flt)
        assert [r[1] for r in s_edge] == pytest.approx([r[1] for r in s_local], rel=1e-4)
        assert {r[0] for r in s_edge if r[1] > s_edge[-1][1] + 1e-4} == {
            r[0] for r in s_local if r[1] > s_local[-1][1] + 1e-4
        }
        h_edge, h_local = (
            await edge.search_hybrid(q, sq, 100, flt, candidates=10),
            await local.search_hybrid(q, sq, 100, flt, candidates=10),
        )
        # Equal sparse scores may be ordered differently by the two engines, so compare the fused score profile.
        assert sorted(r[1] for r in h_edge) == pytest.approx(sorted(r[1] for r in h_local), rel=1e-5)
        assert {r[0] for r in h_edge} == {r[0] for r in h_local}
    assert await edge.search_sparse(SparseVector((), ()), 5) == []
    assert set(edge._shard.info().payload_schema) == {*SCHEMA, "doc_id", "chunk_id"}  # noqa: SLF001
    await edge.close()
    await local.close()
