"""Routing data and figures: questions labelled by whether the local model answered them right (from per-question
answer records), and how a router does on such labels (share kept local, that share's accuracy, cost, overhead)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

# Assumed prices per 1M tokens: a small local model (electricity and hardware, amortised) vs a strong API model
# (GPT-4o-class list prices). Override with --price-table.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "local": {"input_per_mtok": 0.03, "output_per_mtok": 0.06},
    "strong": {"input_per_mtok": 2.50, "output_per_mtok": 10.00},
}
DEFAULT_CONTEXT_TOKENS = 1500  # retrieved context sent with every query
DEFAULT_OUTPUT_TOKENS = 150


def local_answer_right(record: Mapping[str, Any], *, min_f1: float | None = None) -> bool:
    """Whether the local model's answer was right: on an unanswerable question it abstained; otherwise it contains
    a gold answer (or, with ``min_f1``, reaches that token F1)."""
    if record.get("unanswerable"):
        return bool(record.get("abstained"))
    if min_f1 is not None:
        return (record.get("f1") or 0.0) >= min_f1
    return bool(record.get("contains"))


def read_answer_records(path: str | Path) -> list[dict[str, Any]]:
    """Per-question records as ``ragkit eval --details`` / ``benchmarks/answer_quality.py --details`` write them."""
    from ragkit.errors import DataError
    from ragkit.jsonl import read_jsonl

    p = Path(path)
    if not p.is_file():
        raise DataError("no such file; write one with benchmarks/answer_quality.py --details", path=str(p))
    rows = []
    for n, row in read_jsonl(p):
        for key, kind in (("question", str), ("unanswerable", bool), ("abstained", bool)):
            if not isinstance(row.get(key), kind):
                raise DataError(f"expected field {key!r} ({kind.__name__}) in an answer record", path=str(p), line=n)
        rows.append(row)
    return rows


def build_routing_data(
    answers: str | Path | Sequence[Mapping[str, Any]], out: str | Path, *, min_f1: float | None = None
) -> dict[str, int]:
    """Write routing examples labelled by how the local model did on each question: "simple" when its answer was
    right (``local_answer_right``), "complex" when it was not; each example keeps its retrieval hits' scores."""
    records = read_answer_records(answers) if isinstance(answers, (str, Path)) else list(answers)
    rows = []
    for r in records:
        label = "simple" if local_answer_right(r, min_f1=min_f1) else "complex"
        hits = [{k: h.get(k) for k in ("doc_id", "score", "rank_scores")} for h in r.get("sources") or []]
        rows.append({"query": " ".join(r["question"].split()), "label": label, "hits": hits})
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)
    simple = sum(r["label"] == "simple" for r in rows)
    return {"examples": len(rows), "simple": simple, "complex": len(rows) - simple}


def evaluate_router(
    router: Any,
    examples: Sequence[Any],
    *,
    prices: Mapping[str, Any] | None = None,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    query_vectors: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Accuracy, strong share, expected cost saving vs all-strong, and routing overhead of ``router`` on ``examples``.

    With ``query_vectors`` (one per example, as retrieval would have computed them) the router gets each vector
    and ``p50_ms`` excludes embedding; the router's own ``embed`` is then timed per query on its own
    (``embed_p50_ms``) and added per query for ``p50_with_embedding_ms``.
    """
    from ragkit.generate.rules import STRONG
    from ragkit.model_info import Price
    from ragkit.tokens import TiktokenCounter

    table = {k: v if isinstance(v, Price) else Price.model_validate(v) for k, v in (prices or DEFAULT_PRICES).items()}
    if not examples:
        return {"n": 0}
    rows = router.routes()
    local_gen = next(r["generator"] for r in rows if r["route"] != STRONG)
    strong_gen = next(r["generator"] for r in rows if r["route"] == STRONG)
    for gen in (local_gen, strong_gen):
        if gen not in table:
            from ragkit.errors import ConfigError

            raise ConfigError(f"price table has no entry for generator {gen!r} (keys: {', '.join(table)})")
    counter = TiktokenCounter("cl100k_base")
    if query_vectors is not None and len(query_vectors) != len(examples):
        raise ValueError(f"got {len(query_vectors)} query vectors for {len(examples)} examples")
    extra = {} if query_vectors is None else {"query_vector": query_vectors[0]}
    router.decide(examples[0].query, hits=examples[0].hits or None, **extra)  # warm caches before timing
    embed = getattr(router, "embed", None) if query_vectors is not None else None
    timings: list[float] = []
    embed_timings: list[float] = []
    correct = strong = kept_right = 0
    cost_routed = cost_strong = 0.0
    confusion = {"simple->local": 0, "simple->strong": 0, "complex->local": 0, "complex->strong": 0}
    for i, ex in enumerate(examples):
        if embed is not None:
            t0 = time.perf_counter()
            embed(ex.query)
            embed_timings.append((time.perf_counter() - t0) * 1000)
        extra = {} if query_vectors is None else {"query_vector": query_vectors[i]}
        t0 = time.perf_counter()
        decision = router.decide(ex.query, hits=ex.hits or None, **extra)
        timings.append((time.perf_counter() - t0) * 1000)
        is_strong = decision.route == STRONG
        strong += is_strong
        kept_right += (not is_strong) and ex.label == "simple"
        correct += is_strong == (ex.label == "complex")
        confusion[f"{ex.label}->{'strong' if is_strong else 'local'}"] += 1
        tokens_in = counter.count(ex.query) + context_tokens
        cost_strong += table[strong_gen].cost(tokens_in, output_tokens)
        cost_routed += table[strong_gen if is_strong else local_gen].cost(tokens_in, output_tokens)
    n = len(examples)
    kept = n - strong
    local_right = sum(e.label == "simple" for e in examples)
    extra_out: dict[str, Any] = {
        # Labels say whether the local model answered right, so these are answer accuracies.
        "all_local_accuracy": local_right / n,
        "kept_local_accuracy": kept_right / kept if kept else None,
        "escalated_local_wrong_share": (strong - (local_right - kept_right)) / strong if strong else None,
        # If the strong model were right on every question, routing would lose only the kept-local mistakes.
        "quality_lost_bound": (kept - kept_right) / n,
    }
    if embed_timings:
        total = sorted(a + b for a, b in zip(timings, embed_timings))
        extra_out |= {
            "embed_p50_ms": statistics.median(embed_timings),
            "p50_with_embedding_ms": statistics.median(total),
            "p95_with_embedding_ms": total[min(n - 1, int(0.95 * n))],
        }
    timings.sort()
    return {
        **extra_out,
        "n": n,
        "accuracy": correct / n,
        "strong_share": strong / n,
        "local_share": 1 - strong / n,
        "cost_routed_usd": cost_routed,
        "cost_all_strong_usd": cost_strong,
        "saving": 1 - cost_routed / cost_strong if cost_strong else 0.0,
        "p50_ms": statistics.median(timings),
        "p95_ms": timings[min(n - 1, int(0.95 * n))],
        "confusion": confusion,
        "context_tokens": context_tokens,
        "output_tokens": output_tokens,
        "prices": {k: v.model_dump() for k, v in table.items()},
    }


__all__ = [
    "DEFAULT_PRICES",
    "DEFAULT_CONTEXT_TOKENS",
    "DEFAULT_OUTPUT_TOKENS",
    "local_answer_right",
    "read_answer_records",
    "build_routing_data",
    "evaluate_router",
]
