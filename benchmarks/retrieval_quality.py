"""Retrieval quality on SQuAD, HotpotQA and a German set: dense, BM25 (old and new analyzer), hybrid fusions and
the optional local-LLM reranker (nDCG@10, recall@100, MRR@10), dev and test splits reported apart.

    python benchmarks/retrieval_quality.py [--json] [--tune] [--llm MODEL|none] [--llm-limit 8] [--llm-top-n 5]

Each corpus is indexed twice with the embedded defaults, once per BM25 analyzer: "old" is the first analyzer
(``stemmer: light``: plural endings, one mixed stopword list) with the fusion before tuning (unweighted DBSF), so
its hybrid row is the README's earlier figure; "new" is the default (Snowball stems and stopwords of each
paragraph's language, DBSF with dense_weight 0.4). Dense vectors are embedded once and shared. Splits:

- squad2: test = the first 300 answerable questions of the seed-13 shuffle (the README's figures), dev = the next 400.
- hotpotqa: its 100 questions; dev = even positions, test = odd ones ("all" = both, the README's figure).
- german: ``benchmarks/data/german_qa.jsonl`` (written before any tuning): German questions over the German halves
  of ``examples/product_qa/docs`` and German paraphrases of SQuAD questions over the (English) SQuAD passages.

``--tune`` grid-searches the fusion method and dense weight on the dev splits (squad2 + hotpotqa + german dev,
mean nDCG@10) from the cached candidate lists and reports the choice's test figures. Query latency excludes
embedding the query (done once up front).

"hybrid+llm" reranks the default hybrid's top ``--llm-top-n`` hits with the LLM reranker (``--llm``, default the
0.5B Qwen2.5-Coder; skipped with the reason when it is not installed) on the first ``--llm-limit`` dev and test
questions of each set: P(yes) is computed once per passage, the mixing weight is chosen on those dev questions,
and the rows give dev/test nDCG@10 beside plain hybrid on the same questions and the added milliseconds per query
(CPU, llama.cpp). The samples are small because each passage costs a model evaluation on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ragkit.config import ComponentSpec, load_pipeline
from ragkit.errors import ConfigError
from ragkit.eval.metrics import build_beir, doc_ranking, load_beir, mrr_at_k, ndcg_at_k, recall_at_k
from ragkit.eval.runner import retriever_spec
from ragkit.ingest.embedding import CachedEmbedder, SqliteEmbeddingCache
from ragkit.language import is_german
from ragkit.pipeline import RAG, build_component
from ragkit.retrieve.hybrid import normalised_score_fusion, reciprocal_rank_fusion
from ragkit.retrieve.sparse import Bm25Encoder

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GERMAN_QA = ROOT / "benchmarks" / "data" / "german_qa.jsonl"
PRODUCT_DOCS = ROOT / "examples" / "product_qa" / "docs"
BM25 = {"old": Bm25Encoder.Config(stemmer="light"), "new": Bm25Encoder.Config()}
MODES = ["dense", "sparse", "hybrid", "hybrid:rrf"]
OLD_FUSION = {"method": "dbsf", "dense_weight": 0.5}


def build_german(shared: Path, out: Path) -> tuple[Path, dict[str, str]]:
    """BEIR files for the German set: German product paragraphs + SQuAD passages; qid -> split."""
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for path in sorted(PRODUCT_DOCS.glob("*.md")):
            paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n")]
            german = [p for p in paragraphs if p and not p.startswith("#") and is_german(p)]
            f.write(json.dumps({"_id": path.stem, "title": "", "text": "\n\n".join(german)}, ensure_ascii=False) + "\n")
        for line in (shared / "squad2" / "rag" / "passages.jsonl").open(encoding="utf-8"):
            f.write(line if line.endswith("\n") else line + "\n")
    splits = {}
    with (
        (out / "queries.jsonl").open("w", encoding="utf-8") as fq,
        (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as fr,
    ):
        fr.write("query-id\tcorpus-id\tscore\n")
        for line in GERMAN_QA.open(encoding="utf-8"):
            row = json.loads(line)
            fq.write(json.dumps({"_id": row["id"], "text": row["question"]}, ensure_ascii=False) + "\n")
            for g in row["gold"]:
                fr.write(f"{row['id']}\t{g}\t1\n")
            splits[row["id"]] = row["split"]
    return out, splits


def datasets(shared: Path, tmp: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    out = {}
    squad = build_beir(shared / "squad2/rag/passages.jsonl", shared / "squad2/rag/qa.jsonl", tmp / "squad2", limit=700)
    qids = [json.loads(line)["_id"] for line in (squad / "queries.jsonl").open(encoding="utf-8")]
    out["squad2"] = (squad, {q: "test" if i < 300 else "dev" for i, q in enumerate(qids)})
    hotpot = build_beir(shared / "hotpotqa/rag/passages.jsonl", shared / "hotpotqa/rag/qa.jsonl", tmp / "hotpotqa")
    qids = [json.loads(line)["_id"] for line in (hotpot / "queries.jsonl").open(encoding="utf-8")]
    out["hotpotqa"] = (hotpot, {q: "dev" if i % 2 == 0 else "test" for i, q in enumerate(qids)})
    out["german"] = build_german(shared, tmp / "german")
    return out


def metrics(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]], qids: list[str]) -> dict[str, float]:
    n = len(qids) or 1
    return {
        "ndcg@10": round(sum(ndcg_at_k(rankings[q], qrels[q], 10) for q in qids) / n, 4),
        "recall@100": round(sum(recall_at_k(rankings[q], qrels[q], 100) for q in qids) / n, 4),
        "mrr@10": round(sum(mrr_at_k(rankings[q], qrels[q], 10) for q in qids) / n, 4),
        "n": len(qids),
    }


def by_split(rankings, qrels, splits) -> dict[str, dict[str, float]]:
    out = {s: metrics(rankings, qrels, [q for q in rankings if splits.get(q) == s]) for s in ("dev", "test")}
    out["all"] = metrics(rankings, qrels, list(rankings))
    return out


async def run_dataset(name, beir_dir, splits, embedder, tmp: Path, args) -> dict[str, Any]:
    data = load_beir(beir_dir)
    queries = [(q, t) for q, t in data.queries.items() if q in data.qrels]
    base = load_pipeline(args.config)
    result: dict[str, Any] = {"n_docs": len(data.corpus), "n_queries": len(queries), "bm25": {}}
    cache: dict[str, dict[str, Any]] = {}  # variant -> qid -> (dense rows, sparse rows)
    for variant, bm25 in BM25.items():
        config = replace(
            base,
            index_dir=str(tmp / f"{name}-{variant}"),
            components={**base.components, "sparse": ComponentSpec("sparse", "bm25", bm25)},
        )
        rag = RAG(config, embedder=embedder)
        t0 = time.perf_counter()
        report = await rag.aindex(data.corpus)
        result.setdefault("index_s", {})[variant] = round(time.perf_counter() - t0, 2)
        result["n_chunks"] = report.chunks_written
        for _, text in queries:
            await rag.embedder.embed_query(text)
        spec = rag.config.components["retriever"]
        modes: dict[str, Any] = {}
        for mode in MODES if variant == "new" else ["sparse", "hybrid"]:
            mode_spec = retriever_spec(spec, mode)
            if variant == "old":  # the fusion before tuning too: unweighted DBSF
                mode_spec = ComponentSpec("retriever", spec.type, mode_spec.config.model_copy(update=OLD_FUSION))
            retriever = build_component(
                mode_spec, embedder=rag.embedder, store=rag.store, sparse_encoder=rag.sparse_encoder
            )
            rankings, lat = {}, []
            for qid, text in queries:
                t = time.perf_counter()
                hits = await retriever.retrieve(text, 100, None)
                lat.append((time.perf_counter() - t) * 1000)
                rankings[qid] = doc_ranking([h.chunk.doc_id for h in hits])
            modes[mode] = {**by_split(rankings, data.qrels, splits), "query_p50_ms": round(statistics.median(lat), 2)}
        if args.llm != "none" and variant == "new":
            try:
                modes["hybrid+llm"] = await llm_mode(rag, queries, data, splits, args)
            except ConfigError as e:  # the model is not installed: say so in the figures, keep the rest
                modes["hybrid+llm"] = {"skipped": str(e)}
        result["bm25"][variant] = modes
        if args.tune:
            rows = {}
            for qid, text in queries:
                vec = await rag.embedder.embed_query(text)
                dense = await rag.store.search_dense(vec, 100, None)
                sparse = await rag.store.search_sparse(rag.sparse_encoder.encode_query(text), 100, None)
                rows[qid] = (
                    [(r[0], r[1], r[2]["doc_id"]) for r in dense],
                    [(r[0], r[1], r[2]["doc_id"]) for r in sparse],
                )
            cache[variant] = rows
        await rag.aclose()
    result["_rows"] = cache
    return result


LLM_WEIGHTS = (0.0, 0.3, 0.5, 0.7, 0.85, 1.0)


async def llm_mode(rag, queries, data, splits, args) -> dict[str, Any]:
    """Hybrid (the default fusion), then the LLM reranker over its top candidates, on ``--llm-limit`` dev and test
    questions each. P(yes) is computed once per passage; the reranker's mixing weight is chosen on dev."""
    reranker = build_component(_llm_spec(args))
    hybrid = build_component(
        rag.config.components["retriever"], embedder=rag.embedder, store=rag.store, sparse_encoder=rag.sparse_encoder
    )
    picked = [q for s in ("dev", "test") for q in [x for x in queries if splits.get(x[0]) == s][: args.llm_limit]]
    reranker.config = reranker.config.model_copy(update={"weight": 1.0})
    scored, lat, over = {}, {}, 0
    for qid, text in picked:
        hits = await hybrid.retrieve(text, 100, None)
        t = time.perf_counter()
        reranked = await reranker.rerank(text, hits, 100)
        lat[qid] = (time.perf_counter() - t) * 1000
        over += any(h.rank_scores.get("llm_budget_exhausted") for h in reranked[:1])
        probs = {h.chunk.id: h.rank_scores.get("llm_yes") for h in reranked}
        scored[qid] = [(h.chunk.doc_id, h.score, probs.get(h.chunk.id)) for h in hits]
    by_weight = {}
    for w in LLM_WEIGHTS:
        rankings = {}
        for qid, rows in scored.items():
            head = rows[: args.llm_top_n]
            low, span = min(r[1] for r in head), max(r[1] for r in head) - min(r[1] for r in head)
            mixed = sorted(
                head,
                key=lambda r: -(w * (r[2] or 0.0) + (1 - w) * (1.0 if span == 0 else (r[1] - low) / span)),
            )
            rankings[qid] = doc_ranking([r[0] for r in mixed + rows[args.llm_top_n :]])
        by_weight[w] = by_split(rankings, data.qrels, splits)
    best = max(LLM_WEIGHTS, key=lambda w: by_weight[w]["dev"]["ndcg@10"])
    return {
        "model": args.llm,
        "top_n": args.llm_top_n,
        "weight_chosen_on_dev": best,
        "ndcg@10_by_weight": {str(w): {s: m[s]["ndcg@10"] for s in ("dev", "test")} for w, m in by_weight.items()},
        "dev": by_weight[best]["dev"],
        "test": by_weight[best]["test"],
        "hybrid_same_queries": {s: by_weight[0.0][s] for s in ("dev", "test")},
        "added_ms_p50": round(statistics.median(lat.values()), 1) if lat else 0.0,
        "added_ms_mean": round(statistics.fmean(lat.values()), 1) if lat else 0.0,
        "budget_exhausted": over,
        "query_p50_ms": round(statistics.median(lat.values()), 1) if lat else 0.0,
    }


def _llm_spec(args) -> ComponentSpec:
    from ragkit import registry

    cls = registry.resolve("reranker", "llm")
    config = cls.Config(model=args.llm, top_n=args.llm_top_n, budget_ms=args.llm_budget_ms, n_threads=args.llm_threads)
    return ComponentSpec("reranker", "llm", config)


def fuse(rows, method: str, w: float) -> list[str]:
    dense, sparse = rows
    doc = {cid: d for cid, _, d in dense} | {cid: d for cid, _, d in sparse}
    if method == "rrf":
        fused = reciprocal_rank_fusion([[r[0] for r in dense], [r[0] for r in sparse]], k=60)
    else:
        fused = normalised_score_fusion(
            [[r[:2] for r in dense[:50]], [r[:2] for r in sparse[:50]]], weights=(w, 1 - w), method=method, head=50
        )
    return doc_ranking([doc[c] for c, _ in fused])


def tune(results: dict[str, Any], qrels: dict[str, Any], splits: dict[str, Any]) -> dict[str, Any]:
    """Mean dev nDCG@10 over the datasets for each (method, dense weight); the best one's dev and test figures."""
    grid = [("rrf", 0.5)] + [(m, w / 20) for m in ("dbsf", "minmax") for w in range(4, 17)]
    table = {}
    for method, w in grid:
        per = {}
        for name, r in results.items():
            rows = r["_rows"]["new"]
            rankings = {q: fuse(rows[q], method, w) for q in rows}
            per[name] = by_split(rankings, qrels[name], splits[name])
        dev = statistics.fmean(p["dev"]["ndcg@10"] for p in per.values())
        table[f"{method}:{w:.2f}"] = {
            "dev_mean": round(dev, 4),
            **{n: {s: p[s]["ndcg@10"] for s in ("dev", "test")} for n, p in per.items()},
        }
    best = max(table, key=lambda k: table[k]["dev_mean"])
    return {"best": best, "table": table}


ABLATION = {
    "light (old analyzer)": {"stemmer": "light"},
    "no stemming, new stopwords": {"stemmer": "none"},
    "no stemming, no stopwords": {"stemmer": "none", "stopwords": False},
    "Snowball English for every text": {"language": "en"},
    "Snowball per language, no stopwords": {"stopwords": False},
    "Snowball per language + stopwords (new)": {},
    "new, k1 0.9 b 0.4": {"k1": 0.9, "b": 0.4},
    "new, k1 1.5 b 0.75": {"k1": 1.5, "b": 0.75},
    "new, k1 1.2 b 0.9": {"k1": 1.2, "b": 0.9},
}


def bm25_ablation(sets: dict[str, tuple[Path, dict[str, str]]]) -> dict[str, dict[str, float]]:
    """Sparse-only dev nDCG@10 of each analyzer change, BM25 computed in memory over whole passages with the
    store's formula (encoder weights times Qdrant's IDF), so no index is built per setting."""
    import math
    from collections import defaultdict

    out: dict[str, dict[str, float]] = {}
    for label, kw in ABLATION.items():
        row = {}
        for name, (beir_dir, splits) in sets.items():
            data = load_beir(beir_dir)
            enc = Bm25Encoder(**kw)
            postings: dict[int, list[tuple[int, float]]] = defaultdict(list)
            for i, v in enumerate(enc.encode_documents([d.text for d in data.corpus])):
                for t, w in zip(v.indices, v.values):
                    postings[t].append((i, w))
            n = len(data.corpus)
            scores = []
            for qid, text in data.queries.items():
                if splits.get(qid) != "dev":
                    continue
                acc: dict[int, float] = defaultdict(float)
                for t in enc.encode_query(text).indices:
                    df = len(postings.get(t, ()))
                    for i, w in postings.get(t, ()):
                        acc[i] += math.log(1 + (n - df + 0.5) / (df + 0.5)) * w
                ranked = [data.corpus[i].id for i, _ in sorted(acc.items(), key=lambda kv: -kv[1])[:10]]
                scores.append(ndcg_at_k(ranked, data.qrels[qid], 10))
            row[name] = round(statistics.fmean(scores), 4)
        row["mean"] = round(statistics.fmean(row.values()), 4)
        out[label] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(SHARED))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--tune", action="store_true", help="grid-search fusion weights on the dev splits")
    ap.add_argument(
        "--llm",
        default="qwen2.5-coder-0.5b-instruct",
        help="rerank hybrid hits with this local model (name or GGUF path); 'none' skips the LLM rows",
    )
    ap.add_argument("--llm-limit", type=int, default=8, help="dev and test questions each, per dataset, for the LLM")
    ap.add_argument("--llm-top-n", type=int, default=5, help="candidates the LLM scores per query")
    ap.add_argument("--llm-budget-ms", type=float, default=600_000, help="the reranker's latency budget per query")
    ap.add_argument("--llm-threads", type=int, default=2, help="llama.cpp threads")
    ap.add_argument("--only", nargs="*", help="datasets to run (squad2 hotpotqa german)")
    ap.add_argument("--config", help="pipeline YAML to start from instead of the embedded defaults")
    ap.add_argument("--ablation", action="store_true", help="only the in-memory BM25 analyzer ablation on dev")
    args = ap.parse_args()
    results, qrels, splits = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="ragkit-rq-") as tmp_name:
        tmp = Path(tmp_name)
        base = load_pipeline(args.config)
        inner = build_component(base.components["embedder"])
        embedder = CachedEmbedder(inner, SqliteEmbeddingCache(tmp / "shared-embeddings.sqlite"))
        sets = datasets(Path(args.shared), tmp)
        if args.ablation:
            table = bm25_ablation(sets)
            if args.json:
                print(json.dumps({"bm25_ablation_dev_ndcg@10": table}))
            else:
                for label, row in table.items():
                    print(f"{label:<42} " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()))
            return 0
        for name, (beir_dir, split) in sets.items():
            if args.only and name not in args.only:
                continue
            results[name] = asyncio.run(run_dataset(name, beir_dir, split, embedder, tmp, args))
            qrels[name], splits[name] = load_beir(beir_dir).qrels, split
    tuned = tune(results, qrels, splits) if args.tune else None
    for r in results.values():
        r.pop("_rows")
    out = {"datasets": results, **({"tuning": tuned} if tuned else {})}
    if args.json:
        print(json.dumps(out))
        return 0
    print(
        f"{'dataset':<9} {'bm25':<4} {'mode':<11} {'dev nDCG':>8} {'test nDCG':>9} {'all nDCG':>8} "
        f"{'all R@100':>9} {'p50 ms':>7}"
    )
    for name, r in results.items():
        for variant, modes in r["bm25"].items():
            for mode, m in modes.items():
                if mode == "hybrid+llm" and "skipped" in m:
                    print(f"{name:<9} {variant:<4} {mode:<11} skipped: {m['skipped']}")
                    continue
                if mode == "hybrid+llm":
                    print(
                        f"{name:<9} {variant:<4} {mode:<11} {m['dev']['ndcg@10']:>8.4f} {m['test']['ndcg@10']:>9.4f}"
                        f"   vs hybrid {m['hybrid_same_queries']['dev']['ndcg@10']:.4f} / "
                        f"{m['hybrid_same_queries']['test']['ndcg@10']:.4f} on the same {m['test']['n']}+"
                        f"{m['dev']['n']} questions; weight {m['weight_chosen_on_dev']} (dev); "
                        f"+{m['added_ms_p50']} ms p50 per query"
                    )
                    continue
                print(
                    f"{name:<9} {variant:<4} {mode:<11} {m['dev']['ndcg@10']:>8.4f} {m['test']['ndcg@10']:>9.4f} "
                    f"{m['all']['ndcg@10']:>8.4f} {m['all']['recall@100']:>9.4f} {m['query_p50_ms']:>7.2f}"
                )
    if tuned:
        print(f"fusion chosen on dev: {tuned['best']} -> {tuned['table'][tuned['best']]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
