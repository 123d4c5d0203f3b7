"""Throughput of the embedded MiniLM embedder: the hand-fused graph against onnxruntime's own transformer optimizer
and the packaged graph, and one ONNX run per core (workers) against threads inside each operator; same run.

    python benchmarks/embedding.py [--n 600] [--threads 2] [--repeat 5] [--json]

Two text sets from ../shared/data/squad2: short passages (SQuAD sentences, as in ``ingest.py``) and whole
SQuAD paragraphs (cut at 256 tokens as in normal use). Variants, all on ``--threads`` cores:

- fused: ``providers/_minilm_graph.py`` (the default), one ONNX run per core (``workers=threads``);
- fused-intra: the same graph, one run at a time with ``intra_op_threads=threads`` (the embedder before workers);
- ort-optimizer: the packaged graph through ``onnxruntime.transformers.optimizer.optimize_model(model_type="bert",
  num_heads=12, hidden_size=384, opt_level=0)`` (needs sympy; skipped without it), loaded with onnxruntime's full
  graph optimizations (``ORT_ENABLE_ALL``, the default), one run per core;
- packaged: the graph as shipped, one run per core.

The variants run alternately ``--repeat`` times in the indexer's groups of 256 texts; the figure is the median
texts/s, and ratios to "fused" are medians of per-round ratios, so a shared machine's drift affects all alike.
``cos_to_fused`` is the mean cosine of each variant's vectors to the fused ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import SHARED, short_passages  # noqa: E402

from ragkit.providers.minilm_onnx import OnnxMiniLMEmbedder  # noqa: E402


def paragraphs(n: int) -> list[str]:
    texts: list[str] = []
    with (SHARED / "squad2" / "rag" / "passages.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)["text"])
                if len(texts) == n:
                    break
    return texts


def ort_optimized_graph(onnx_path: Path) -> bytes | None:
    """The packaged graph after onnxruntime's transformer optimizer (BERT fusions), or None without sympy."""
    try:
        from onnxruntime.transformers import optimizer
    except ImportError:
        return None
    try:
        # opt_level=0: the optimizer's Python fusions only; its offline onnxruntime pass imports torch. The session
        # below applies onnxruntime's own graph optimizations (ORT_ENABLE_ALL) when it loads the graph instead.
        model = optimizer.optimize_model(
            str(onnx_path), model_type="bert", num_heads=12, hidden_size=384, opt_level=0, use_gpu=False
        )
    except ImportError:  # its shape inference needs sympy
        return None
    return model.model.SerializeToString()


def variants(threads: int) -> dict[str, OnnxMiniLMEmbedder]:
    import onnxruntime as ort

    out = {
        "fused": OnnxMiniLMEmbedder(workers=threads),
        "fused-intra": OnnxMiniLMEmbedder(intra_op_threads=threads, workers=1),
        "packaged": OnnxMiniLMEmbedder(graph="packaged", workers=threads),
    }
    graph = ort_optimized_graph(out["packaged"].files.onnx)
    if graph is not None:
        emb = OnnxMiniLMEmbedder(graph="packaged", workers=threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        emb._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])  # noqa: SLF001
        emb._inputs = {i.name for i in emb._session.get_inputs()}  # noqa: SLF001
        emb._output = emb._session.get_outputs()[0].name  # noqa: SLF001
        out["ort-optimizer"] = emb
    return out


def measure(texts: list[str], embedders: dict[str, OnnxMiniLMEmbedder], repeat: int, group: int = 256) -> dict:
    tokens = sum(min(embedders["fused"].counter().count(t), 256) for t in texts)
    reference = embedders["fused"].encode(texts[:128])
    cosines = {g: float((emb.encode(texts[:128]) * reference).sum(axis=1).mean()) for g, emb in embedders.items()}
    rates: dict[str, list[float]] = {g: [] for g in embedders}
    for _ in range(repeat):
        for g, emb in embedders.items():
            t0 = time.perf_counter()
            for b in range(0, len(texts), group):
                emb.encode(texts[b : b + group])
            rates[g].append(len(texts) / (time.perf_counter() - t0))
    return {
        "texts": len(texts),
        "mean_tokens": round(tokens / len(texts), 1),
        "texts_per_s": {g: round(statistics.median(r), 1) for g, r in rates.items()},
        "over_fused": {
            g: round(statistics.median(a / f for a, f in zip(r, rates["fused"])), 2) for g, r in rates.items()
        },
        "cos_to_fused": {g: round(c, 5) for g, c in cosines.items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sets = {
        "short passages": [d.text for d in short_passages(args.n)],
        "squad paragraphs": paragraphs(args.n // 2),
    }
    embedders = variants(args.threads)
    rows = {name: measure(texts, embedders, args.repeat) for name, texts in sets.items()}
    if args.json:
        print(json.dumps({"threads": args.threads, "sets": rows}))
        return 0
    for name, r in rows.items():
        print(
            f"{name} ({r['texts']} texts, {r['mean_tokens']} tokens avg, {args.threads} threads, "
            f"median of {args.repeat}):"
        )
        for g, rate in r["texts_per_s"].items():
            print(f"  {g:<14} {rate:>7} texts/s  {r['over_fused'][g]:>5}x fused  cos to fused {r['cos_to_fused'][g]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
