"""Routing benchmark: build the SQuAD/HotpotQA routing set in a temp dir, cross-validate on train, evaluate on test.

Run from the project root: ``python3 benchmarks/routing.py [--squad DIR --hotpot DIR] [--no-embed]``.
Choices (penalties) are made by cross-validation on the training split; the held-out split is only evaluated.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ragkit.commands.route import DEFAULT_HOTPOT, DEFAULT_SQUAD, build_routing_data, evaluate_router
from ragkit.generate.classifier import ClassifierRouter, fit_logistic, load_examples
from ragkit.generate.query_features import FEATURE_NAMES
from ragkit.generate.rules import RuleRouter


def cross_validate(
    X: np.ndarray, y: np.ndarray, l2: float, embedding_l2: float, *, folds: int = 5, repeats: int = 5
) -> tuple[float, float]:
    """Mean and std of stratified k-fold accuracy at threshold 0.5, over ``repeats`` shuffles."""
    accs = []
    for r in range(repeats):
        rng = np.random.default_rng(r)
        fold = np.zeros(len(y), dtype=int)
        for label in (0.0, 1.0):
            idx = rng.permutation(np.flatnonzero(y == label))
            fold[idx] = np.arange(len(idx)) % folds
        for k in range(folds):
            test = fold == k
            mean, scale, coef, b = fit_logistic(X[~test], y[~test], len(FEATURE_NAMES), l2, embedding_l2)
            p = 1.0 / (1.0 + np.exp(-(((X[test] - mean) / scale) @ coef + b)))
            accs.append(float(np.mean((p >= 0.5) == (y[test] == 1))))
    return float(np.mean(accs)), float(np.std(accs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--squad", default=DEFAULT_SQUAD)
    p.add_argument("--hotpot", default=DEFAULT_HOTPOT)
    p.add_argument("--target-strong-share", type=float, default=0.25)
    p.add_argument("--no-embed", action="store_true", help="skip the MiniLM query-embedding variant")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        counts = build_routing_data(args.squad, args.hotpot, tmp)
        train, test = load_examples(Path(tmp) / "train.jsonl"), load_examples(Path(tmp) / "test.jsonl")
    print(
        f"data: {counts['train']} train / {counts['test']} test ({counts['simple']} SQuAD simple, {counts['complex']} HotpotQA complex)"
    )
    cfg = ClassifierRouter.Config()
    y = np.array([e.label == "complex" for e in train], dtype=float)

    classifier = ClassifierRouter()
    train_acc = classifier.train(train)
    calibrated = ClassifierRouter()
    calibrated.train(train)
    t = calibrated.calibrate(train, args.target_strong_share)
    cv_rows = [("features", classifier.feature_matrix([e.query for e in train]), cfg.l2, cfg.l2)]
    rows: list[tuple[str, object, object]] = [
        ("rules", RuleRouter(), None),
        (f"classifier (train acc {train_acc:.3f})", classifier, None),
        (f"classifier calibrated to {args.target_strong_share:.0%} strong (t={t:.3f})", calibrated, None),
    ]
    if not args.no_embed:
        from ragkit.providers.minilm_onnx import OnnxMiniLMEmbedder

        embedder = OnnxMiniLMEmbedder()
        embedded = ClassifierRouter.from_config({"use_query_embedding": True}, embedder=embedder)
        emb_acc = embedded.train(train)
        vectors = embedder.encode([e.query for e in test])  # as retrieval would have computed them
        rows.append((f"classifier + MiniLM query embedding (train acc {emb_acc:.3f})", embedded, vectors))
        cv_rows.append(
            ("features + embedding", embedded.feature_matrix([e.query for e in train]), cfg.l2, cfg.embedding_l2)
        )

    for name, X, l2, el2 in cv_rows:
        m, s = cross_validate(X, y, l2, el2)
        print(f"5x5-fold CV on train, {name:<22} (l2 {l2:g}, embedding_l2 {el2:g}): accuracy {m:.3f} ± {s:.3f}")
    print(f"\nheld-out test ({counts['test']} questions)")
    print(f"{'router':<60} {'accuracy':>8} {'local':>7} {'saving':>7} {'p50 ms':>7} {'p95 ms':>7} {'+embed p50':>10}")
    for name, router, vectors in rows:
        r = evaluate_router(router, test, query_vectors=vectors)
        with_embed = f"{r['p50_with_embedding_ms']:>10.3f}" if "p50_with_embedding_ms" in r else f"{'-':>10}"
        print(
            f"{name:<60} {r['accuracy']:>8.3f} {r['local_share']:>7.1%} {r['saving']:>7.1%} {r['p50_ms']:>7.3f} {r['p95_ms']:>7.3f} {with_embed}"
        )
    print(
        "p50/p95: routing overhead with the query embedding given (retrieval computed it); +embed p50: embedding one query too"
    )
    print(
        "saving: vs sending every query to the strong model; default price table, query + 1500 context tokens in, 150 out"
    )


if __name__ == "__main__":
    main()
