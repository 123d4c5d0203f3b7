"""Answer quality on the fixed splits (benchmarks/qa_splits): the figures of ``ragkit eval --qa``, per dataset too,
and one JSON line per question with everything the calibration scripts need (answer, gold, retrieval scores,
model confidence, grounding and abstention checks, seconds).

Run from the project root (the machine is shared: use ``nice``)::

    nice -n 10 .venv/bin/python benchmarks/answer_quality.py --split dev [--config F] [--limit N] \\
        [--details /tmp/dev-details.jsonl] [--json]

The shared data is materialised into ``--data`` (default: a folder under the system temp dir), never into the
project; the corpus (SQuAD 2.0 and HotpotQA passages) is indexed there once and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "qa_splits"))

import splits  # noqa: E402

from ragkit.config import load_pipeline  # noqa: E402
from ragkit.eval.metrics import contains_answer, exact_match, token_f1  # noqa: E402
from ragkit.eval.runner import answer_text  # noqa: E402
from ragkit.ingest.loaders import load_path  # noqa: E402
from ragkit.language import is_abstention  # noqa: E402
from ragkit.pipeline import RAG  # noqa: E402


def plain(value: Any) -> Any:
    """Metadata as JSON-ready data: objects with ``as_dict``/``to_dict`` become dicts."""
    for name in ("as_dict", "to_dict"):
        method = getattr(value, name, None)
        if callable(method):
            return plain(method())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def record(row: dict[str, Any], reply: Any, seconds: float) -> dict[str, Any]:
    answers = row.get("answers") or []
    unanswerable = bool(row.get("is_impossible")) or not answers
    text = answer_text(reply.text)
    meta = reply.metadata
    out = {
        "id": row["id"],
        "dataset": row.get("dataset", ""),
        "question": row["question"],
        "answers": answers,
        "unanswerable": unanswerable,
        "text": reply.text,
        "abstained": is_abstention(reply.text),
        "contains": contains_answer(text, answers) if answers else None,
        "f1": token_f1(text, answers) if answers else None,
        "em": exact_match(text, answers) if answers else None,
        "seconds": round(seconds, 3),
        "output_tokens": reply.usage.output_tokens,
        "input_tokens": reply.usage.input_tokens,
        "mean_logprob": meta.get("mean_logprob"),
        "sources": [
            {"doc_id": h.chunk.doc_id, "score": h.score, "rank_scores": dict(h.rank_scores)} for h in reply.sources
        ],
    }
    for key in ("grounding", "abstention", "route"):
        if key in meta:
            out[key] = plain(meta[key])
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(xs: list[float]) -> float | None:
        return round(statistics.fmean(xs), 4) if xs else None

    answerable = [r for r in rows if not r["unanswerable"]]
    unanswerable = [r for r in rows if r["unanswerable"]]
    return {
        "n_questions": len(rows),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "exact_match": mean([r["em"] for r in answerable]),
        "token_f1": mean([r["f1"] for r in answerable]),
        "contains_answer": mean([r["contains"] for r in answerable]),
        "abstention_accuracy": mean([float(r["abstained"]) for r in unanswerable]),
        "false_abstention_rate": mean([float(r["abstained"]) for r in answerable]),
        "seconds_per_question": mean([r["seconds"] for r in rows]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=splits.SPLITS, default="dev")
    p.add_argument("--config", help="pipeline YAML (default: the embedded defaults)")
    p.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "ragkit-qa")
    p.add_argument("--limit", type=int, help="first N questions of the split (the stored order is shuffled)")
    p.add_argument("--offset", type=int, default=0, help="skip the first N questions")
    p.add_argument("--details", type=Path, help="write one JSON line per question here")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    qa = splits.materialise(args.split, splits.SHARED, args.data)
    rows = [json.loads(line) for line in qa.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = rows[args.offset :][: args.limit]
    config = load_pipeline(args.config)
    config = replace(config, index_dir=str(args.data / "index"))
    rag = RAG(config)
    t0 = time.perf_counter()
    report = rag.index(list(load_path(args.data / "corpus")))
    print(f"index: {report.docs_indexed} new documents, {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    results = []
    out = args.details.open("w", encoding="utf-8") if args.details else None
    try:
        for i, row in enumerate(rows, 1):
            t = time.perf_counter()
            reply = rag.ask(row["question"])
            rec = record(row, reply, time.perf_counter() - t)
            results.append(rec)
            if out:
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                out.flush()
            mark = "abstain" if rec["abstained"] else f"c={rec['contains']}"
            print(f"{i}/{len(rows)} {rec['seconds']:.1f}s {mark} {reply.text[:80]!r}", file=sys.stderr)
    finally:
        if out:
            out.close()
    summary = {"split": args.split, **summarise(results)}
    for dataset in sorted({r["dataset"] for r in results}):
        summary[dataset] = summarise([r for r in results if r["dataset"] == dataset])
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
