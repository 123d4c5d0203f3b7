"""HybridRetriever over real stores, RRF as a pure function, and engine-vs-Python fusion equivalence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragkit.errors import ConfigError
from ragkit.protocols import Retriever
from ragkit.providers.qdrant_edge import QdrantEdgeStore
from ragkit.providers.qdrant_server import QdrantServerStore
from ragkit.retrieve.hybrid import (
    HybridRetriever,
    chunk_from_payload,
    distribution_based_score_fusion,
    normalised_score_fusion,
    reciprocal_rank_fusion,
)
from ragkit.retrieve.sparse import Bm25Encoder
from ragkit.testing import FakeEmbedder
from ragkit.types import Chunk

TEXTS = [
    (
        "d1",
        "The LABO-288 laboratory freezer keeps samples at minus 86 degrees.",
        {"category": "freezer", "volume_l": 288.0},
    ),
    (
        "d2",
        "MED-COOL-300 is a medical refrigerator for vaccines with an alarm.",
        {"category": "fridge", "volume_l": 300.0},
    ),
    ("d3", "A quiet wine cooler for the kitchen holds forty bottles.", {"category": "cooler", "volume_l": 120.0}),
    (
        "d4",
        "Der Gefrierschrank LABO-150 hat eine Temperaturanzeige und ein Schloss.",
        {"category": "freezer", "volume_l": 150.0},
    ),
    ("d5", "Vaccine storage needs a stable temperature and a data logger.", {"category": "fridge", "volume_l": 200.0}),
    ("d6", "Ultra low temperature freezers protect biological samples.", {"category": "freezer", "volume_l": 500.0}),
]


def payload(doc_id: str, text: str, meta: dict) -> dict:
    return {"chunk_id": f"{doc_id}#0", "doc_id": doc_id, "text": text, "start": 0, "end": len(text), **meta}


async def _fill(store, embedder, encoder):
    await store.ensure_collection(embedder.dim)
    texts = [t for _, t, _ in TEXTS]
    vectors = await embedder.embed_batch(texts)
    await store.upsert(
        [f"{d}#0" for d, _, _ in TEXTS],
        vectors,
        [payload(*row) for row in TEXTS],
        [encoder.encode_document(t) for t in texts],
    )
    return store


@pytest.fixture(params=["edge", "local"])
async def store(request, tmp_path):
    if request.param == "edge":
        s = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(tmp_path / "s"), payload_schema={"category": "keyword"}))
    else:
        s = QdrantServerStore(QdrantServerStore.Config(location=":memory:", collection="r"))
    yield await _fill(s, FakeEmbedder(64), Bm25Encoder(avg_doc_len=10))
    await s.close()


def test_rrf_textbook_values():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert [key for key, _ in reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60)][:2] == ["b", "a"]
    with pytest.raises(ConfigError):
        reciprocal_rank_fusion([["a"]], k=-1)


@given(st.lists(st.lists(st.integers(0, 30), unique=True, max_size=15), max_size=4), st.integers(0, 100))
def test_rrf_properties(rankings, k):
    fused = reciprocal_rank_fusion(rankings, k=k)
    keys = [key for key, _ in fused]
    assert set(keys) == {x for r in rankings for x in r} and len(keys) == len(set(keys))
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)
    if len(rankings) == 1:
        assert keys == rankings[0]
    for key, score in fused:  # each score is the textbook sum over the rankings that contain the key
        assert score == pytest.approx(sum(1 / (k + r.index(key) + 1) for r in rankings if key in r))


def test_chunk_round_trips_through_payload():
    c = chunk_from_payload(payload("d9", "hello", {"category": "x"}))
    assert c == Chunk("d9#0", "d9", "hello", 0, 5, {"category": "x"})


async def test_hybrid_finds_product_id_and_keeps_rank_scores(store):
    r = HybridRetriever(FakeEmbedder(64), store, Bm25Encoder(avg_doc_len=10), method="rrf")
    assert isinstance(r, Retriever)
    hits = await r.retrieve("LABO-288", 3)
    assert hits[0].chunk.id == "d1#0" and hits[0].chunk.doc_id == "d1"
    assert hits[0].chunk.metadata["category"] == "freezer"
    assert {"dense", "sparse", "rrf"} <= set(hits[0].rank_scores)
    assert hits[0].score == hits[0].rank_scores["rrf"]


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
async def test_filter_passes_through(store, mode):
    r = HybridRetriever(FakeEmbedder(64), store, Bm25Encoder(avg_doc_len=10), mode=mode)
    hits = await r.retrieve("vaccine temperature freezer", 10, {"category": "freezer", "volume_l": {"lt": 400}})
    assert hits and {h.chunk.id for h in hits} <= {"d1#0", "d4#0"}
    assert set(hits[0].rank_scores) >= ({"dense", "sparse"} if mode == "hybrid" else {mode})


async def test_engine_fusion_equals_python_fusion(store):
    enc = Bm25Encoder(avg_doc_len=10)
    emb = FakeEmbedder(64)
    for query in ["vaccine refrigerator alarm", "LABO freezer samples", "Gefrierschrank Schloss", "kitchen wine"]:
        engine = await HybridRetriever(emb, store, enc, candidates=4, fusion="engine", method="rrf").retrieve(query, 10)
        python = await HybridRetriever(emb, store, enc, candidates=4, fusion="python", method="rrf").retrieve(query, 10)
        assert {h.chunk.id: h.score for h in engine} == pytest.approx({h.chunk.id: h.score for h in python}, rel=1e-5)
        assert [h.rank_scores.get("dense") for h in sorted(engine, key=lambda h: h.chunk.id)] == pytest.approx(
            [h.rank_scores.get("dense") for h in sorted(python, key=lambda h: h.chunk.id)], rel=1e-5
        )


async def test_python_fusion_for_stores_without_engine_fusion(store):
    class Plain:  # only the VectorStore protocol, no search_hybrid
        def __init__(self, inner):
            self.search_dense, self.search_sparse = inner.search_dense, inner.search_sparse

    enc, emb = Bm25Encoder(avg_doc_len=10), FakeEmbedder(64)
    hits = await HybridRetriever(emb, Plain(store), enc, candidates=6, method="rrf").retrieve(
        "MED-COOL-300 vaccines", 3
    )
    dense_rows = await store.search_dense((await emb.embed_batch(["MED-COOL-300 vaccines"]))[0], 6)
    sparse_rows = await store.search_sparse(enc.encode_query("MED-COOL-300 vaccines"), 6)
    dense, sparse = [r[0] for r in dense_rows], [r[0] for r in sparse_rows]
    assert [(h.chunk.id, h.score) for h in hits] == reciprocal_rank_fusion([dense, sparse])[:3]
    for method, w in (("dbsf", 0.5), ("minmax", 0.7)):
        hits = await HybridRetriever(emb, Plain(store), enc, candidates=6, method=method, dense_weight=w).retrieve(
            "MED-COOL-300 vaccines", 3
        )
        expected = normalised_score_fusion(
            [[r[:2] for r in dense_rows], [r[:2] for r in sparse_rows]], weights=(w, 1 - w), method=method
        )[:3]
        assert [h.chunk.id for h in hits] == [k for k, _ in expected]
        assert [h.score for h in hits] == pytest.approx([v for _, v in expected])
        assert hits[0].score == hits[0].rank_scores[method]


async def test_blank_or_stopword_only_query_finds_nothing_and_says_why(store, caplog):
    r = HybridRetriever(FakeEmbedder(64), store, Bm25Encoder(avg_doc_len=10))
    with caplog.at_level("INFO", logger="ragkit.retrieve.hybrid"):
        assert await r.retrieve("   ", 5) == []
        assert await r.retrieve("what is the", 5) == []
        assert await r.retrieve("was ist das", 5) == []
    assert "the query is empty" in caplog.text and "only stopwords" in caplog.text
    assert r.no_terms_reason("MED-COOL-300") is None and await r.retrieve("MED-COOL-300", 5)


def test_weighted_minmax_by_hand():
    a = [("x", 3.0), ("y", 2.0), ("z", 1.0)]
    b = [("z", 9.0), ("w", 5.0)]
    fused = dict(normalised_score_fusion([a, b], weights=(0.25, 0.75), method="minmax"))
    assert fused == pytest.approx({"x": 0.25, "y": 0.125, "z": 0.75, "w": 0.0})
    assert normalised_score_fusion([a, b], weights=(0.5, 0.5)) == [
        (k, v / 2) for k, v in distribution_based_score_fusion([a, b])
    ]
    with pytest.raises(ConfigError, match="2 fusion weights for 1"):
        normalised_score_fusion([a], weights=(0.5, 0.5))


def test_dbsf_by_hand():
    # list A: mean 2, sd sqrt(2/3); list B: all equal -> every score maps to 0.5
    a = [("x", 3.0), ("y", 2.0), ("z", 1.0)]
    b = [("z", 7.0), ("w", 7.0)]
    sd = (2 / 3) ** 0.5
    norm = lambda v: (v - (2 - 3 * sd)) / (6 * sd)  # noqa: E731
    fused = dict(distribution_based_score_fusion([a, b]))
    assert fused["x"] == pytest.approx(norm(3.0))
    assert fused["z"] == pytest.approx(norm(1.0) + 0.5)
    assert fused["w"] == pytest.approx(0.5)
    assert [k for k, _ in distribution_based_score_fusion([a, b])][0] == "z"
    assert distribution_based_score_fusion([[], []]) == []
    # Statistics from the head only: a longer tail does not rescore the head.
    longer = a + [("t1", 0.5), ("t2", 0.1)]
    head_only = dict(distribution_based_score_fusion([longer], head=3))
    assert head_only["x"] == pytest.approx(norm(3.0)) and head_only["t2"] == pytest.approx(norm(0.1))
    assert dict(distribution_based_score_fusion([longer]))["x"] != pytest.approx(norm(3.0))


def test_config_validation():
    with pytest.raises(ConfigError, match="sparse encoder"):
        HybridRetriever(FakeEmbedder(8), object(), None, mode="hybrid")
    with pytest.raises(ConfigError, match="mode"):
        HybridRetriever(FakeEmbedder(8), object(), Bm25Encoder(), mode="fuzzy")
    r = HybridRetriever.from_config(HybridRetriever.Config(mode="dense"), embedder=FakeEmbedder(8), store=object())
    assert r.mode == "dense"


async def test_with_real_onnx_embedder(tmp_path):
    embedding = pytest.importorskip("ragkit.providers.minilm_onnx")
    try:
        emb = embedding.OnnxMiniLMEmbedder()
    except Exception as e:  # model package missing on this machine
        pytest.skip(f"MiniLM not available: {e}")
    s = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(tmp_path / "onnx")))
    await _fill(s, emb, Bm25Encoder(avg_doc_len=10))
    hits = await HybridRetriever(emb, s, Bm25Encoder(avg_doc_len=10), mode="dense").retrieve(
        "Which fridge is meant for storing vaccines?", 2
    )
    assert {h.chunk.doc_id for h in hits} & {"d2", "d5"}
    await s.close()
