"""Ingest throughput with the default embedder on 1 and 2 threads, its CPU use, and the framework's share.

    python benchmarks/ingest.py [--n 600] [--repeat 5] [--json]

Two document sets, indexed end to end (chunk, embed with MiniLM int8 ONNX on the fused graph, BM25-encode, upsert
into the in-process Qdrant engine, manifest):

- short: SQuAD paragraphs cut to their sentences (one chunk each, about 30 tokens);
- long: each SQuAD article's paragraphs joined into one document, cut by the default chunker into 256-token chunks.

"threads" is the embedder's ``workers`` (ONNX runs in flight, one thread each). CPU use is the process's user +
system CPU time over the ingest's wall time (200 % = both cores of a 2-core machine busy), with the machine's
1-minute load average beside it: other processes on a shared machine take cores from the run. Framework overhead,
two ways: ingest time minus the model's own time on the same texts in the same batches measured alone right after
(noisy on a shared machine: two timings taken at different moments), and the same ingest with an embedder that
answers instantly, i.e. everything but the model, as a share of the real ingest time (short set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ragkit.config import parse_pipeline
from ragkit.pipeline import RAG
from ragkit.types import Document

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def short_passages(n: int) -> list[Document]:
    docs = []
    with (SHARED / "squad2" / "rag" / "passages.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            for i, sent in enumerate(re.split(r"(?<=[.!?])\s+", row["text"])):
                if len(sent) > 40:
                    docs.append(Document(f"{row['_id']}#{i}", sent, {"title": row["title"]}))
                if len(docs) >= n:
                    return docs
    return docs


def long_documents(n_chunks: int) -> list[Document]:
    """Whole SQuAD articles (paragraphs joined), enough for about ``n_chunks`` chunks of 256 tokens."""
    articles: dict[str, list[str]] = {}
    with (SHARED / "squad2" / "rag" / "passages.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            articles.setdefault(row["title"], []).append(row["text"])
    docs, chars = [], 0
    for title, paragraphs in articles.items():
        text = "\n\n".join(paragraphs)
        docs.append(Document(title, text, {"title": title}))
        chars += len(text)
        if chars > n_chunks * 1100:  # about 1,100 characters per 256 WordPiece tokens of English prose
            break
    return docs


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


async def run(docs: list[Document], threads: int, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_pipeline({"index_dir": tmp, "embedder": {"type": "minilm_onnx", "workers": threads}})
        rag = RAG(config)
        _ = rag.embedder, rag.chunker, rag.store, rag.sparse_encoder  # model load and store creation are not ingest
        await rag.embedder.embed_batch(["warm up"])
        await rag.store.ensure_collection(rag.embedder.dim)
        load = os.getloadavg()[0]
        c0, t0 = cpu_seconds(), time.perf_counter()
        report = await rag.aindex(docs)
        total, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        # The model's own time on the same texts in the same batches, alone: everything else is framework.
        texts = [c.text for d in docs for c in rag.chunker.chunk(d)]
        model = rag.embedder.inner
        t0 = time.perf_counter()
        for b in range(0, len(texts), batch):
            model.encode(texts[b : b + batch])
        model_s = time.perf_counter() - t0
        tokens = sum(model.counter().count(t) for t in texts) / max(len(texts), 1)
        await rag.aclose()
    return {
        "threads": threads,
        "docs": len(docs),
        "chunks": report.chunks_written,
        "mean_tokens": round(tokens, 1),
        "seconds": round(total, 3),
        "chunks_per_s": round(report.chunks_written / total, 1),
        "cpu_pct": round(100 * cpu / total, 1),
        "load_1min_before": round(load, 2),
        "model_s": round(model_s, 3),
        "framework_overhead_pct": round(100 * (total - model_s) / total, 2),
    }


class _InstantEmbedder:
    """Returns one fixed vector per text at once: an ingest with it is the framework's own time, with no model."""

    id, dim, max_batch = "instant", 384, 256

    def __init__(self, counter) -> None:
        self._counter = counter

    def counter(self):
        return self._counter

    async def embed_batch(self, texts):
        return [[0.05] * self.dim for _ in texts]


async def framework_only(docs: list[Document], batch: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        rag = RAG(parse_pipeline({"index_dir": tmp, "embedder": {"type": "minilm_onnx"}}))
        rag.embedder.inner = _InstantEmbedder(rag.embedder.inner.counter())  # same chunker counts, no model
        rag.embedder.id = "instant"
        _ = rag.chunker, rag.store
        await rag.store.ensure_collection(384)
        t0 = time.perf_counter()
        await rag.aindex(docs)
        seconds = time.perf_counter() - t0
        await rag.aclose()
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600, help="short passages; the long set aims at n/2 chunks")
    ap.add_argument("--batch-chunks", type=int, default=256, help="the indexer's batch size (its default)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per setting; medians are reported")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sets = {"short": short_passages(args.n), "long": long_documents(args.n // 2)}
    fw = statistics.median(asyncio.run(framework_only(sets["short"], args.batch_chunks)) for _ in range(args.repeat))
    rows = []
    for name, docs in sets.items():
        for t in args.threads:
            runs = sorted(
                (asyncio.run(run(docs, t, args.batch_chunks)) for _ in range(args.repeat)),
                key=lambda r: r["chunks_per_s"],
            )
            row = {"set": name, **runs[len(runs) // 2]}  # the median run by throughput
            row["runs_chunks_per_s"] = [r["chunks_per_s"] for r in runs]
            row["runs_cpu_pct"] = [r["cpu_pct"] for r in runs]
            row["framework_overhead_pct"] = statistics.median(r["framework_overhead_pct"] for r in runs)
            if name == "short":
                row["framework_only_s"] = round(fw, 3)
                row["framework_only_pct"] = round(100 * fw / row["seconds"], 2)
            rows.append(row)
    if args.json:
        print(json.dumps({"runs": rows}))
        return 0
    for r in rows:
        print(
            f"{r['set']:<5} threads {r['threads']}: {r['chunks']} chunks ({r['mean_tokens']} tokens avg) in "
            f"{r['seconds']} s = {r['chunks_per_s']} chunks/s at {r['cpu_pct']} % CPU (load before "
            f"{r['load_1min_before']}; runs {r['runs_chunks_per_s']}, CPU {r['runs_cpu_pct']}); overhead vs the "
            f"model alone {r['framework_overhead_pct']} %"
            + (
                f"; framework alone (instant embedder) {r['framework_only_s']} s = {r['framework_only_pct']} %"
                if "framework_only_s" in r
                else ""
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
