"""Routing benchmark: build the SQuAD/HotpotQA routing set in a temp dir, train, evaluate rules and classifier.

Run from the project root: ``python3 benchmarks/routing.py [--squad DIR --hotpot DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ragkit.commands.route import DEFAULT_HOTPOT, DEFAULT_SQUAD, build_routing_data, evaluate_router
from ragkit.routing import ClassifierRouter, RuleRouter, load_examples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--squad", default=DEFAULT_SQUAD)
    p.add_argument("--hotpot", default=DEFAULT_HOTPOT)
    p.add_argument("--target-strong-share", type=float, default=0.25)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        counts = build_routing_data(args.squad, args.hotpot, tmp)
        train, test = load_examples(Path(tmp) / "train.jsonl"), load_examples(Path(tmp) / "test.jsonl")
    print(f"data: {counts['train']} train / {counts['test']} test ({counts['simple']} SQuAD simple, {counts['complex']} HotpotQA complex)")
    classifier = ClassifierRouter()
    train_acc = classifier.train(train)
    calibrated = ClassifierRouter()
    calibrated.train(train)
    t = calibrated.calibrate(train, args.target_strong_share)
    rows = [("rules", RuleRouter()), (f"classifier (train acc {train_acc:.3f})", classifier),
            (f"classifier calibrated to {args.target_strong_share:.0%} strong (t={t:.3f})", calibrated)]
    print(f"{'router':<48} {'accuracy':>8} {'local':>7} {'saving':>7} {'p50 ms':>7} {'p95 ms':>7}")
    for name, router in rows:
        r = evaluate_router(router, test)
        print(f"{name:<48} {r['accuracy']:>8.3f} {r['local_share']:>7.1%} {r['saving']:>7.1%} {r['p50_ms']:>7.3f} {r['p95_ms']:>7.3f}")
    print("saving: vs sending every query to the strong model; default price table, query + 1500 context tokens in, 150 out")


if __name__ == "__main__":
    main()
