"""Framework overhead of one `ask` excluding model time, at 5k chunks: p50 over many questions.

    python benchmarks/ask_overhead.py [--n 5000] [--questions 200] [--json]

A zero-cost lookup embedder and an instant scripted generator stand in for the models, so the time measured is
ragkit's: retrieval in Qdrant edge (hybrid), reranking, budget planning, compression, prompt assembly, ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _corpus import LookupEmbedder, sentences  # noqa: E402

from ragkit.config import parse_pipeline  # noqa: E402
from ragkit.pipeline import RAG  # noqa: E402
from ragkit.testing import FakeGenerator  # noqa: E402


async def run(n: int, questions: int, compressor: str) -> dict:
    docs = sentences(n)
    qs = [d.text[:90] + "?" for d in docs[:: max(1, len(docs) // questions)]][:questions]
    embedder = LookupEmbedder()
    for q in qs:
        embedder.vector(q)
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_pipeline(
            {
                "index_dir": tmp,
                "compressor": {"type": compressor},
                "generators": {"local": {"type": "llamacpp"}},
                "retrieval": {"top_k": 5, "candidates": 40},
            }
        )
        gen = FakeGenerator(("An answer [1].",), context_window=2048)
        gen.count_tokens = None  # use ragkit's tiktoken counter, as for an API model
        rag = RAG(config, generators={"local": gen}, embedder=embedder)
        await rag.aindex(docs)
        for q in qs[:10]:
            await rag.aask(q)
        lat, stages = [], {}
        for q in qs:
            t = time.perf_counter()
            reply = await rag.aask(q)
            lat.append((time.perf_counter() - t) * 1000)
            for s in reply.metadata["usage_report"].stages:
                stages.setdefault(s.stage, []).append(s.latency_ms)
        await rag.aclose()
    return {
        "compressor": compressor,
        "n_chunks": len(docs),
        "questions": len(qs),
        "ask_p50_ms": round(statistics.median(lat), 3),
        "stage_p50_ms": {k: round(statistics.median(v), 3) for k, v in stages.items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [asyncio.run(run(args.n, args.questions, c)) for c in ("extractive", "none")]
    if args.json:
        print(json.dumps({"runs": rows}))
        return 0
    for r in rows:
        print(
            f"compressor {r['compressor']:<10} {r['n_chunks']} chunks: "
            f"ask p50 {r['ask_p50_ms']:.2f} ms (target <= 5 ms); stages {r['stage_p50_ms']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
