"""Runs evaluations end to end: retrieval on a BEIR dataset, answers on a QA file."""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ragkit.config import ComponentSpec, PipelineConfig, load_pipeline
from ragkit.errors import DataError, RagkitError
from ragkit.eval.metrics import (
    contains_answer,
    doc_ranking,
    exact_match,
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    token_f1,
)
from ragkit.jsonl import read_jsonl
from ragkit.types import Reply

log = logging.getLogger("ragkit.eval.runner")

Progress = Callable[[int, int | None], None] | None


def retriever_spec(spec: ComponentSpec, mode: str) -> ComponentSpec:
    """The retriever block with its mode replaced; "hybrid:rrf" names a fusion method as well."""
    mode_name, _, method = mode.partition(":")
    update = {"mode": mode_name, **({"method": method} if method else {})}
    return ComponentSpec(spec.role, spec.type, spec.config.model_copy(update=update))


def distinctive_titles(corpus: Sequence[Any], share: float = 0.9) -> bool:
    """Whether the corpus's titles name its documents: at least ``share`` of them have a title, and at least
    ``share`` of those titles are different (HotpotQA's, or a paper's title; not SQuAD's article name repeated over
    dozens of passages, which says nothing about one passage)."""
    titles = [str(d.metadata.get("title") or "").strip() for d in corpus]
    named = [t for t in titles if t]
    return bool(corpus) and len(named) >= share * len(corpus) and len(set(named)) >= share * len(named)


def with_titles(config: PipelineConfig, corpus: Sequence[Any]) -> PipelineConfig:
    """BEIR convention: when the titles name the documents, each chunk is indexed as ``title`` + newline + text
    (the chunker's ``prefix``), unless the config sets a prefix of its own (``prefix: ""`` turns this off)."""
    spec = config.components.get("chunker")
    if spec is None or getattr(spec.config, "prefix", "") is not None or not distinctive_titles(corpus):
        return config
    chunker = ComponentSpec(spec.role, spec.type, spec.config.model_copy(update={"prefix": "{title}\n"}))
    return replace(config, components={**config.components, "chunker": chunker})


def with_mode(config: PipelineConfig, mode: str | None) -> PipelineConfig:
    """The same pipeline with the retriever's mode replaced."""
    if mode is None:
        return config
    return replace(
        config, components={**config.components, "retriever": retriever_spec(config.components["retriever"], mode)}
    )


def run_retrieval_eval(
    dataset: str | Path,
    *,
    config: str | Path | PipelineConfig | None = None,
    mode: str | None = None,
    limit: int | None = None,
    progress: Progress = None,
    embedder: Any = None,
    modes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Index the corpus into a fresh temporary index, run every query, report nDCG@10, recall@100, MRR@10 and timings.

    With ``modes`` the corpus is indexed once and each retriever mode is scored on it: ``{"modes": {mode: metrics}}``.
    """
    from ragkit._aio import run_sync
    from ragkit.pipeline import RAG, build_component

    data = load_beir(dataset)
    base = config if isinstance(config, PipelineConfig) else load_pipeline(config)
    queries = [(qid, q) for qid, q in data.queries.items() if qid in data.qrels][:limit]
    with tempfile.TemporaryDirectory(prefix="ragkit-eval-") as tmp:
        titled = with_titles(base, data.corpus)
        rag = RAG(replace(with_mode(titled, mode), index_dir=tmp), embedder=embedder)

        async def score(retriever: Any) -> dict[str, Any]:
            ndcg, recall, mrr, lat = [], [], [], []
            for i, (qid, text) in enumerate(queries, 1):
                t = time.perf_counter()
                hits = await retriever.retrieve(text, 100, None)
                lat.append((time.perf_counter() - t) * 1000)
                ranked = doc_ranking([h.chunk.doc_id for h in hits])
                rel = data.qrels[qid]
                ndcg.append(ndcg_at_k(ranked, rel, 10))
                recall.append(recall_at_k(ranked, rel, 100))
                mrr.append(mrr_at_k(ranked, rel, 10))
                if progress:
                    progress(i, len(queries))
            return {
                "ndcg@10": statistics.fmean(ndcg) if ndcg else 0.0,
                "recall@100": statistics.fmean(recall) if recall else 0.0,
                "mrr@10": statistics.fmean(mrr) if mrr else 0.0,
                "query_p50_ms": round(statistics.median(lat), 3) if lat else 0.0,
            }

        async def go() -> dict[str, Any]:
            t0 = time.perf_counter()
            report = await rag.aindex(data.corpus)
            index_s = time.perf_counter() - t0
            common = {
                "n_docs": len(data.corpus),
                "n_chunks": report.chunks_written,
                "n_queries": len(queries),
                "titles_indexed": titled is not base,
                "index_s": round(index_s, 3),
            }
            if modes:
                # Embed every query once up front, so each mode's latency is the retrieval's own.
                for _, text in queries:
                    await rag.embedder.embed_query(text)
                spec = rag.config.components["retriever"]
                out = {}
                for m in modes:
                    retriever = build_component(
                        retriever_spec(spec, m),
                        embedder=rag.embedder,
                        store=rag.store,
                        sparse_encoder=rag.sparse_encoder,
                    )
                    out[m] = await score(retriever)
                await rag.aclose()
                return {**common, "modes": out}
            result = await score(rag.retriever)
            await rag.aclose()
            return {
                "mode": mode or getattr(rag.config.components["retriever"].config, "mode", "hybrid"),
                **result,
                **common,
            }

        return run_sync(go())


def read_qa(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a QA JSONL file: ``question``, ``answers[]``, optional ``is_impossible``."""
    rows = []
    for n, row in read_jsonl(Path(path)):
        if not isinstance(row.get("question"), str) or not isinstance(row.get("answers", []), list):
            raise DataError("expected an object with 'question' (string) and 'answers' (list)", path=str(path), line=n)
        rows.append(row)
    return rows


def answer_text(reply_text: str) -> str:
    """What an answer is scored on: its text without ``[n]`` citation markers."""
    from ragkit.answer.prompting import strip_citations

    return strip_citations(reply_text)


def plain(value: Any) -> Any:
    """Metadata as JSON-ready data: objects with ``to_dict`` and dataclasses (a budget plan) become dicts, the rest
    stays or becomes text."""
    to_dict = getattr(value, "to_dict", None) or getattr(value, "as_dict", None)
    if callable(to_dict):
        return plain(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def answer_record(row: Mapping[str, Any], reply: Any, seconds: float) -> dict[str, Any]:
    """One question's result: the answer and its scores, the sources' retrieval scores, the model's confidence,
    the grounding and abstention checks and the route (the input of ``ragkit route build-data`` and calibration)."""
    from ragkit.language import is_abstention

    answers = list(row.get("answers") or [])
    unanswerable = bool(row.get("is_impossible")) or not answers
    text = answer_text(reply.text)
    meta = reply.metadata or {}
    out: dict[str, Any] = {
        "id": row.get("id"),
        "dataset": row.get("dataset"),
        "question": row["question"],
        "answers": answers,
        "unanswerable": unanswerable,
        "text": reply.text,
        "abstained": is_abstention(reply.text),
        "em": exact_match(text, answers) if answers else None,
        "f1": token_f1(text, answers) if answers else None,
        "contains": contains_answer(text, answers) if answers else None,
        "seconds": round(seconds, 4),
        "input_tokens": reply.usage.input_tokens,
        "output_tokens": reply.usage.output_tokens,
        "mean_logprob": meta.get("mean_logprob"),
        "sources": [
            {"doc_id": h.chunk.doc_id, "score": h.score, "rank_scores": dict(h.rank_scores)}
            for h in getattr(reply, "sources", ())
        ],
    }
    for key in ("grounding", "abstention", "route", "error"):
        if meta.get(key) is not None:
            out[key] = plain(meta[key])
    return out


def detail_line(record: Mapping[str, Any], reply: Any, check: Any) -> dict[str, Any]:
    """One ``--details`` line: the question, the answer, the path it took, its tool calls and the checked claims,
    with the rest of its ``answer_record`` (gold answers, scores, sources and their retrieval scores, the grounding
    and abstention checks), so the file feeds ``ragkit route build-data`` and the calibration scripts as it is."""
    meta = reply.metadata or {}
    route = meta.get("route")
    path = meta.get("path") or (plain(route).get("generator") if isinstance(route, Mapping) else None) or "rag"
    return {
        **record,
        "answer": reply.text,
        "path": path,
        "tool_calls": plain(meta.get("tool_calls") or []),
        "claims": plain(check) if check is not None else None,
        **({"plan": plain(meta["plan"])} if meta.get("plan") is not None else {}),
    }


def summarise_answers(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Exact match, token F1 and containment on answerable questions, abstention accuracy on unanswerable ones."""

    def mean(xs: Sequence[float]) -> float | None:
        return round(statistics.fmean(xs), 4) if xs else None

    answerable = [r for r in records if not r["unanswerable"]]
    unanswerable = [r for r in records if r["unanswerable"]]
    grounded = [r["grounding"]["ok"] for r in records if isinstance(r.get("grounding"), Mapping)]
    return {
        "n_questions": len(records),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "exact_match": mean([r["em"] for r in answerable]),
        "token_f1": mean([r["f1"] for r in answerable]),
        "contains_answer": mean([r["contains"] for r in answerable]),
        "abstention_accuracy": mean([float(r["abstained"]) for r in unanswerable]),
        "false_abstention_rate": mean([float(r["abstained"]) for r in answerable]),
        "seconds_per_question": mean([r["seconds"] for r in records]),
        "errors": sum(1 for r in records if r.get("error")),
        **({"grounded_share": mean([float(g) for g in grounded])} if grounded else {}),
    }


def run_answer_eval(
    qa: str | Path,
    *,
    config: str | Path | PipelineConfig | None = None,
    limit: int | None = None,
    progress: Progress = None,
    rag: Any = None,
    generator: str | None = None,
    checker: Callable[[str], Any] | None = None,
    on_answer: Callable[[dict[str, Any]], None] | None = None,
    details: str | Path | None = None,
) -> dict[str, Any]:
    """Ask every question; report exact match, token F1, containment, and abstention accuracy on unanswerable ones.

    ``rag`` is whatever answers (a ``RAG``, an app's bot); ``checker(text)`` checks each answer's claims. Without
    ``rag``, the pipeline config builds both (``ragkit.pipeline.build_app``). Answers are scored without their
    ``[n]`` citation markers (``answer_text``): a citation is a pointer, not words of the answer. ``on_answer``
    receives each question's ``answer_record`` as it is done. ``details`` names a JSONL file that gets one line per
    question: the question, the answer, the path it took, its tool calls and the checked claims (``detail_line``).
    """
    if rag is None:
        from ragkit.pipeline import build_app

        app = build_app(config if isinstance(config, PipelineConfig) else load_pipeline(config))
        rag, checker = app.answerer, checker or app.checker
    rows = read_qa(qa)[:limit]
    records: list[dict[str, Any]] = []
    checks = []
    routes: dict[str, int] = {}
    sink = Path(details).open("w", encoding="utf-8") if details else None
    for i, row in enumerate(rows, 1):
        t = time.perf_counter()
        try:
            reply = rag.ask(row["question"], generator=generator)
        except RagkitError as e:
            # A question that fails (a timeout on a loaded machine, a provider error) scores as a wrong answer.
            log.warning("question %s failed: %s: %s", row.get("id", i), type(e).__name__, e)
            reply = Reply("", metadata={"error": f"{type(e).__name__}: {e}"})
        record = answer_record(row, reply, time.perf_counter() - t)
        records.append(record)
        route = reply.metadata.get("route")
        if route is not None:
            # RoutedGenerator reports the route as a dict (generator actually used), routers as a RouteDecision.
            name = (
                route.get("generator", "?")
                if isinstance(route, dict)
                else getattr(route, "generator", None) or getattr(route, "route", "?")
            )
            routes[name] = routes.get(name, 0) + 1
        if checker is not None:
            checks.append(checker(reply.text))
        if sink is not None:
            sink.write(
                json.dumps(detail_line(record, reply, checks[-1] if checker else None), ensure_ascii=False) + "\n"
            )
            sink.flush()
        if on_answer is not None:
            on_answer(record)
        if progress:
            progress(i, len(rows))
    if sink is not None:
        sink.close()
    out = summarise_answers(records)
    if routes:
        out["routes"] = routes
    if checks:
        shares = [c.correct_share for c in checks if c.n_claims]
        out["numeric_claims_correct"] = round(statistics.fmean(shares), 4) if shares else None
        out["answers_with_wrong_numbers"] = sum(1 for c in checks if c.wrong)
    return out
