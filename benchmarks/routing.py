"""Routing on measured local failures: train and calibrate on the dev split, report on the test split.

Input: the per-question records of the local model on both splits (``benchmarks/answer_quality.py --split dev
--details DEV`` and ``--split test --details TEST``, same config). The default abstention thresholds are applied to
the records (exactly what the pipeline would have done), then each question is labelled "simple" when the local
answer was right (contains a gold answer; on an unanswerable question: abstained) and "complex" when not.

Routers compared on test, each calibrated on dev only:
- all local: every question stays local;
- rules: the hand-weighted query rules (their default threshold);
- classifier: logistic regression on query + retrieval features, trained on the dev labels, threshold set on dev so
  the kept-local share is right on at least ``--target-local-accuracy`` of its questions;
- cascade: local first, escalate when the local answer abstains or exp(mean log-probability) is under a
  confidence set on dev the same way.

No strong model can run here (no API key), so the strong model's own accuracy is not measured: "quality lost" is
the bound that holds if it were right on every question (the kept-local mistakes, as a share of all questions).

    python3 benchmarks/routing.py --dev /tmp/dev.jsonl --test /tmp/test.jsonl [--weights-out W.json] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ragkit.answer.abstention import AbstentionConfig, decide
from ragkit.generate.classifier import ClassifierRouter, hits_from_scores
from ragkit.generate.routing_data import evaluate_router, local_answer_right, read_answer_records
from ragkit.generate.rules import CascadeRouter, RoutingExample, RuleRouter
from ragkit.types import Reply


def with_default_abstention(record: Mapping[str, Any], config: AbstentionConfig) -> dict[str, Any]:
    """The record as the pipeline with ``config`` would have answered: a withdrawn answer abstains."""
    out = dict(record)
    check = record.get("abstention") or {}
    if not check.get("model_abstained") and decide(check.get("signals") or {}, config) is not None:
        out.update(abstained=True, contains=0.0 if not record["unanswerable"] else None, f1=0.0, text="(withdrawn)")
    return out


def examples(records: Sequence[Mapping[str, Any]]) -> list[RoutingExample]:
    return [
        RoutingExample(
            " ".join(r["question"].split()),
            "simple" if local_answer_right(r) else "complex",
            hits_from_scores([{k: h.get(k) for k in ("doc_id", "score", "rank_scores")} for h in r["sources"]]),
        )
        for r in records
    ]


def cascade_keeps(record: Mapping[str, Any], min_confidence: float) -> bool:
    reply = Reply(record["text"], metadata={"mean_logprob": record.get("mean_logprob")})
    return CascadeRouter({"min_confidence": min_confidence}).escalation_reason(reply) is None


def cascade_figures(records: Sequence[Mapping[str, Any]], min_confidence: float) -> dict[str, Any]:
    kept = [r for r in records if cascade_keeps(r, min_confidence)]
    right = sum(local_answer_right(r) for r in kept)
    n = len(records)
    return {
        "local_share": len(kept) / n,
        "kept_local_accuracy": right / len(kept) if kept else None,
        "all_local_accuracy": sum(local_answer_right(r) for r in records) / n,
        "quality_lost_bound": (len(kept) - right) / n,
    }


def calibrate_cascade(records: Sequence[Mapping[str, Any]], target: float) -> float:
    """The lowest confidence bar (most kept local) whose kept share is right on at least ``target`` of it."""
    bars = sorted({0.0} | {math.exp(min(0.0, r["mean_logprob"])) for r in records if r.get("mean_logprob") is not None})
    for bar in bars:
        acc = cascade_figures(records, bar)["kept_local_accuracy"]
        if acc is not None and acc >= target:
            return round(bar, 4)
    return 1.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dev", type=Path, required=True, help="dev records (answer_quality.py --details)")
    p.add_argument("--test", type=Path, required=True, help="test records, same config")
    p.add_argument("--target-local-accuracy", type=float, default=0.8)
    p.add_argument("--weights-out", type=Path, help="save the calibrated classifier here")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    config = AbstentionConfig()
    dev = [with_default_abstention(r, config) for r in read_answer_records(args.dev)]
    test = [with_default_abstention(r, config) for r in read_answer_records(args.test)]
    dev_ex, test_ex = examples(dev), examples(test)

    classifier = ClassifierRouter()
    classifier.train(dev_ex)
    threshold = classifier.calibrate_local_accuracy(dev_ex, args.target_local_accuracy)
    if args.weights_out:
        classifier.save(args.weights_out)
    bar = calibrate_cascade(dev, args.target_local_accuracy)

    def pick(result: Mapping[str, Any]) -> dict[str, Any]:
        keys = ("local_share", "kept_local_accuracy", "all_local_accuracy", "quality_lost_bound")
        return {k: result[k] for k in keys}

    n_right = sum(e.label == "simple" for e in test_ex)
    rows = {
        "all local": {
            "local_share": 1.0,
            "kept_local_accuracy": n_right / len(test_ex),
            "all_local_accuracy": n_right / len(test_ex),
            "quality_lost_bound": 1 - n_right / len(test_ex),
        },
        "rules (default threshold 0.5)": pick(evaluate_router(RuleRouter(), test_ex)),
        f"classifier (dev-calibrated, threshold {threshold:.3f})": pick(evaluate_router(classifier, test_ex)),
        f"cascade (dev-calibrated, min_confidence {bar:.3f})": cascade_figures(test, bar),
        "all strong": "not measured: no API key for a strong model in this environment",
    }
    report = {
        "dev_questions": len(dev_ex),
        "dev_local_right": sum(e.label == "simple" for e in dev_ex),
        "test_questions": len(test_ex),
        "test_local_right": n_right,
        "target_local_accuracy": args.target_local_accuracy,
        "test": rows,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"dev: {report['dev_local_right']}/{len(dev_ex)} right locally; test: {n_right}/{len(test_ex)}")
    print(f"{'router (test split)':<48} {'kept local':>10} {'kept acc.':>10} {'lost (bound)':>13}")
    for name, row in rows.items():
        if isinstance(row, str):
            print(f"{name:<48} {row}")
            continue
        acc = "-" if row["kept_local_accuracy"] is None else f"{row['kept_local_accuracy']:.1%}"
        print(f"{name:<48} {row['local_share']:>10.1%} {acc:>10} {row['quality_lost_bound']:>13.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
