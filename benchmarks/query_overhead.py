"""Query-path overhead: retrieval latency excluding the embedding model, ragkit vs LlamaIndex, same vectors, same run.

    python benchmarks/query_overhead.py [--n 5000] [--queries 300] [--json]

Both frameworks get the same precomputed vectors through a zero-cost lookup embedder, so what is timed is the
framework: query handling, vector search, hit construction. ragkit runs on its default store (Qdrant edge,
in-process); LlamaIndex on its default VectorStoreIndex (SimpleVectorStore). Needs the `bench` extra.
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


def p50(xs):
    return statistics.median(xs)


async def ragkit_latencies(docs, queries, embedder, mode: str) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        rag = RAG(parse_pipeline({"index_dir": tmp, "retriever": {"type": "hybrid", "mode": mode}}), embedder=embedder)
        await rag.aindex(docs)
        retriever = rag.retriever
        for q in queries[:20]:
            await retriever.retrieve(q, 10)
        out = []
        for q in queries:
            t = time.perf_counter()
            await retriever.retrieve(q, 10)
            out.append((time.perf_counter() - t) * 1000)
        await rag.aclose()
        return out


def llamaindex_latencies(docs, queries, embedder) -> list[float]:
    from llama_index.core import Settings, VectorStoreIndex
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.schema import TextNode

    class Lookup(BaseEmbedding):
        def _get_query_embedding(self, query: str):
            return embedder.vector(query)

        def _get_text_embedding(self, text: str):
            return embedder.vector(text)

        async def _aget_query_embedding(self, query: str):
            return embedder.vector(query)

    Settings.embed_model = Lookup(model_name="lookup")
    nodes = [TextNode(id_=d.id, text=d.text, embedding=embedder.vector(d.text)) for d in docs]
    index = VectorStoreIndex(nodes)
    retriever = index.as_retriever(similarity_top_k=10)
    for q in queries[:20]:
        retriever.retrieve(q)
    out = []
    for q in queries:
        t = time.perf_counter()
        retriever.retrieve(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    docs = sentences(args.n)
    queries = [d.text[:80] for d in docs[:: max(1, len(docs) // args.queries)]][: args.queries]
    embedder = LookupEmbedder()
    for q in queries:
        embedder.vector(q)  # precompute: the embedding model is not what is measured
    dense = asyncio.run(ragkit_latencies(docs, queries, embedder, "dense"))
    hybrid = asyncio.run(ragkit_latencies(docs, queries, embedder, "hybrid"))
    li = llamaindex_latencies(docs, queries, embedder)
    result = {
        "n_chunks": len(docs),
        "n_queries": len(queries),
        "ragkit_dense_p50_ms": round(p50(dense), 3),
        "ragkit_hybrid_p50_ms": round(p50(hybrid), 3),
        "llamaindex_p50_ms": round(p50(li), 3),
        "ratio_dense": round(p50(dense) / p50(li), 4),
        "ratio_hybrid": round(p50(hybrid) / p50(li), 4),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['n_chunks']} chunks, {result['n_queries']} queries, top-10, embedding excluded")
        print(f"  ragkit dense   p50 {result['ragkit_dense_p50_ms']:.3f} ms  ({result['ratio_dense']:.3f}x LlamaIndex)")
        print(
            f"  ragkit hybrid  p50 {result['ragkit_hybrid_p50_ms']:.3f} ms  ({result['ratio_hybrid']:.3f}x LlamaIndex)"
        )
        print(f"  LlamaIndex     p50 {result['llamaindex_p50_ms']:.3f} ms   (target: ragkit <= 0.1x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
