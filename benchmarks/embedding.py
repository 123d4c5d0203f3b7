"""Throughput of the embedded MiniLM embedder: the fused graph against the packaged one, same run.

    python benchmarks/embedding.py [--n 600] [--threads 2] [--repeat 5] [--json]

Two text sets from ../shared/data/squad2: short passages (SQuAD sentences, as in ``ingest.py``) and whole
SQuAD paragraphs (cut at 256 tokens as in normal use). For each set the two graphs run alternately ``--repeat``
times, in the indexer's groups of 256 texts; the figure is the median texts/s, and the ratio fused/packaged is
taken from the same rounds, so a shared machine's drift affects both alike.
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


def measure(texts: list[str], threads: int, repeat: int, group: int = 256) -> dict:
    graphs = {g: OnnxMiniLMEmbedder(intra_op_threads=threads, graph=g) for g in ("fused", "packaged")}
    tokens = sum(min(graphs["fused"].counter().count(t), 256) for t in texts)
    for emb in graphs.values():
        emb.encode(texts[:64])  # warm-up
    rates: dict[str, list[float]] = {g: [] for g in graphs}
    for _ in range(repeat):
        for g, emb in graphs.items():
            t0 = time.perf_counter()
            for b in range(0, len(texts), group):
                emb.encode(texts[b : b + group])
            rates[g].append(len(texts) / (time.perf_counter() - t0))
    ratios = [f / p for f, p in zip(rates["fused"], rates["packaged"])]
    return {
        "texts": len(texts),
        "mean_tokens": round(tokens / len(texts), 1),
        "threads": threads,
        "fused_texts_per_s": round(statistics.median(rates["fused"]), 1),
        "packaged_texts_per_s": round(statistics.median(rates["packaged"]), 1),
        "fused_over_packaged": round(statistics.median(ratios), 2),
        "fused_runs": [round(r) for r in rates["fused"]],
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
    rows = {name: measure(texts, args.threads, args.repeat) for name, texts in sets.items()}
    if args.json:
        print(json.dumps(rows))
        return 0
    for name, r in rows.items():
        print(
            f"{name} ({r['texts']} texts, {r['mean_tokens']} tokens avg, {r['threads']} threads): fused "
            f"{r['fused_texts_per_s']} texts/s, packaged {r['packaged_texts_per_s']} texts/s, "
            f"fused/packaged {r['fused_over_packaged']}x (median of {args.repeat}; fused runs {r['fused_runs']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
