"""Rerankers: identity, MMR diversity, and the ONNX cross-encoder plumbing with a tiny generated model."""

from __future__ import annotations

import pytest

from ragkit.errors import ConfigError
from ragkit.protocols import Reranker
from ragkit.retrieve.rerank import CrossEncoderReranker, IdentityReranker, MMRReranker, mmr_order
from ragkit.testing import FakeEmbedder
from ragkit.types import Chunk, Hit

onnx = pytest.importorskip("onnx")

VOCAB = ["[PAD]", "[UNK]", "freezer", "vaccine", "fridge", "quiet", "wine", "alarm", "samples", "cold"]
# Per-token weights of the tiny model; [PAD] is heavy so that ignoring attention_mask would change the ranking.
WEIGHTS = {
    "[PAD]": 100.0,
    "[UNK]": 0.0,
    "freezer": 3.0,
    "vaccine": 5.0,
    "fridge": 2.0,
    "quiet": -1.0,
    "wine": -4.0,
    "alarm": 1.5,
    "samples": 0.5,
    "cold": 1.0,
}


def hit(i: int, text: str, score: float = 1.0) -> Hit:
    return Hit(Chunk(f"c{i}", f"d{i}", text, 0, len(text)), score, {"dense": score})


def _write_model(model_dir, outputs: int = 1) -> None:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, pre_tokenizers

    weights = np.array([[WEIGHTS[w] * (j + 1) for j in range(outputs)] for w in VOCAB], dtype=np.float32)
    nodes = [
        helper.make_node("Gather", ["W", "input_ids"], ["per_token"], axis=0),  # [n, s, outputs]
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axes"], ["mask3"]),
        helper.make_node("Mul", ["per_token", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "sum_axes"], ["logits"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cross_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["n", "s"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["n", "s"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", outputs])],
        initializer=[
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axes"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "sum_axes"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(model_dir / "model.onnx"))
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(model_dir / "tokenizer.json"))


def expected_score(query: str, text: str) -> float:
    return sum(WEIGHTS.get(w, 0.0) for w in f"{query} {text}".split())


@pytest.fixture
def model_dir(tmp_path):
    _write_model(tmp_path)
    return tmp_path


HITS = [
    hit(0, "wine fridge quiet"),
    hit(1, "vaccine fridge alarm cold"),
    hit(2, "freezer"),
    hit(3, "samples samples samples cold freezer vaccine wine"),
    hit(4, "unknown words only"),
]


async def test_cross_encoder_orders_by_model_scores(model_dir):
    r = CrossEncoderReranker(model_dir)
    assert isinstance(r, Reranker)
    got = await r.rerank("cold vaccine", HITS, top_k=4)
    want = sorted(HITS, key=lambda h: -expected_score("cold vaccine", h.chunk.text))[:4]
    assert [h.chunk.id for h in got] == [h.chunk.id for h in want]
    assert [h.score for h in got] == pytest.approx([expected_score("cold vaccine", h.chunk.text) for h in want])
    assert got[0].rank_scores["retrieval"] == 1.0 and got[0].rank_scores["dense"] == 1.0


async def test_cross_encoder_batches_and_masks_padding(model_dir):
    small = CrossEncoderReranker(model_dir, batch_size=2)
    big = CrossEncoderReranker(model_dir, batch_size=64)
    texts = [h.chunk.text for h in HITS]
    assert small.scores("alarm", texts) == pytest.approx(big.scores("alarm", texts))
    assert small.scores("alarm", texts) == pytest.approx([expected_score("alarm", t) for t in texts])


async def test_two_class_output_uses_last_column(tmp_path):
    _write_model(tmp_path, outputs=2)
    r = CrossEncoderReranker(tmp_path, backend="onnx")
    assert r.scores("vaccine", ["freezer"]) == pytest.approx([16.0])  # column 2 holds twice the weights


def test_cross_encoder_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        CrossEncoderReranker(tmp_path / "missing")
    with pytest.raises(ConfigError, match="lacks model.onnx"):
        CrossEncoderReranker(tmp_path, backend="onnx")
    with pytest.raises(ConfigError, match="sentence-transformers"):
        CrossEncoderReranker(tmp_path, backend="sentence_transformers")


async def test_identity_keeps_order():
    r = IdentityReranker.from_config()
    assert await r.rerank("q", HITS, 2) == HITS[:2]


async def test_mmr_prefers_diverse_hits():
    hits = [
        hit(0, "vaccine fridge alarm", 0.9),
        hit(1, "vaccine fridge alarm", 0.89),
        hit(2, "vaccine freezer samples", 0.5),
    ]
    diverse = await MMRReranker(FakeEmbedder(64), lambda_=0.5).rerank("vaccine fridge", hits, 3)
    assert [h.chunk.id for h in diverse] == ["c0", "c2", "c1"]
    relevant = await MMRReranker(FakeEmbedder(64), lambda_=1.0).rerank("vaccine fridge", hits, 3)
    assert relevant[-1].chunk.id == "c2"
    assert [h.score for h in diverse] == sorted((h.score for h in diverse), reverse=True)
    assert diverse[0].rank_scores["retrieval"] == 0.9


def test_bad_arguments_are_config_errors(model_dir):
    with pytest.raises(ConfigError, match="lambda_"):
        MMRReranker(FakeEmbedder(8), lambda_=1.5)
    with pytest.raises(ConfigError, match="batch_size"):
        CrossEncoderReranker(model_dir, batch_size=0)


def test_mmr_order_basics():
    assert mmr_order([1.0, 0.0], [], 3, 0.5) == []
    assert mmr_order([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]], 2, 1.0) == [0, 2]
    assert mmr_order([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]], 2, 0.3) == [0, 1]
