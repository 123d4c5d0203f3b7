"""Retrieval quality on dev sets built from ../shared: hybrid vs dense-only vs BM25-only (nDCG@10, recall@100, MRR@10).

"hybrid" is the default fusion (DBSF); "hybrid:rrf" is reciprocal rank fusion with k=60.

    python benchmarks/retrieval_quality.py [--limit 300] [--json]

Each corpus is indexed once with the embedded defaults (MiniLM int8 ONNX, Qdrant edge, BM25 in Qdrant); the
retriever modes are scored on the same index. Query latency excludes embedding the query (done once up front).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from ragkit.eval.metrics import build_beir
from ragkit.eval.runner import run_retrieval_eval

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=300, help="questions per dataset (answerable ones)")
    ap.add_argument("--shared", default=str(SHARED))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    shared = Path(args.shared)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("squad2", "hotpotqa"):
            rag_dir = shared / name / "rag"
            beir = build_beir(rag_dir / "passages.jsonl", rag_dir / "qa.jsonl", Path(tmp) / name, limit=args.limit)
            results[name] = run_retrieval_eval(beir, modes=["hybrid", "hybrid:rrf", "dense", "sparse"])
    if args.json:
        print(json.dumps(results))
        return 0
    print(
        f"{'dataset':<9} {'mode':<10} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'q p50 ms':>9}   (docs, queries, index s)"
    )
    for name, r in results.items():
        for mode, m in r["modes"].items():
            print(
                f"{name:<9} {mode:<10} {m['ndcg@10']:>8.4f} {m['recall@100']:>7.4f} {m['mrr@10']:>7.4f} {m['query_p50_ms']:>9.2f}"
                f"   ({r['n_docs']}, {r['n_queries']}, {r['index_s']})"
            )
        best = max(r["modes"], key=lambda k: r["modes"][k]["ndcg@10"])
        print(f"{name:<9} best by nDCG@10: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
