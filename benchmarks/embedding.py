"""Throughput of the embedded MiniLM int8 ONNX embedder on SQuAD passages.

    python3 benchmarks/embedding.py [--n 512] [--threads 1 2] [--batch 32 64] [--json]

Each (threads, batch size) setting embeds the first ``--n`` passages once after a short warm-up; texts
are cut at 256 tokens as in normal use. Wall-clock texts/s; the machine may be shared, so treat small
differences as noise.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ragkit.embedding import OnnxMiniLMEmbedder

DEFAULT_PASSAGES = Path("/work/shared/data/squad2/rag/passages.jsonl")


def load_texts(path: Path, n: int) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)["text"])
                if len(texts) == n:
                    break
    return texts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=Path, default=DEFAULT_PASSAGES)
    ap.add_argument("--n", type=int, default=512, help="how many passages (the first n)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra_op_threads values")
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 64], help="batch sizes")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    texts = load_texts(args.passages, args.n)
    results = []
    for threads in args.threads:
        for batch in args.batch:
            emb = OnnxMiniLMEmbedder(intra_op_threads=threads, batch_size=batch)
            tokens = sum(min(emb.counter().count(t), emb.max_length) for t in texts)
            emb.encode(texts[:batch])  # warm-up
            t0 = time.perf_counter()
            vectors = emb.encode(texts)
            dt = time.perf_counter() - t0
            results.append({
                "intra_op_threads": threads, "batch_size": batch, "texts": len(vectors),
                "seconds": round(dt, 3), "texts_per_s": round(len(texts) / dt, 1), "tokens_per_s": round(tokens / dt),
            })
    if args.json:
        print(json.dumps({"model": OnnxMiniLMEmbedder.id, "results": results}))
    else:
        print(f"{OnnxMiniLMEmbedder.id}: {len(texts)} SQuAD passages")
        for r in results:
            print(f"threads={r['intra_op_threads']} batch={r['batch_size']:>3}: {r['texts_per_s']:>7} texts/s "
                  f"({r['tokens_per_s']} tokens/s, {r['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
