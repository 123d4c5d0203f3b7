"""``ragkit route``: label questions by whether the local model answered them right, train and calibrate the
classifier on that, evaluate it (share kept local and that share's accuracy), explain one decision."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ragkit.generate.routing_data import (
    DEFAULT_CONTEXT_TOKENS,
    DEFAULT_OUTPUT_TOKENS,
    build_routing_data,
    evaluate_router,
)


def _load_prices(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    from ragkit.errors import ConfigError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read --price-table {path}: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"--price-table {path}: expected an object name -> {{input_per_mtok, output_per_mtok}}")
    return data


def _embedder(args: argparse.Namespace) -> Any:
    if not getattr(args, "embed", False):
        return None
    from ragkit.providers.minilm_onnx import OnnxMiniLMEmbedder

    return OnnxMiniLMEmbedder()


def _classifier(args: argparse.Namespace, config: dict[str, Any]) -> Any:
    from ragkit.generate.classifier import ClassifierRouter

    embedder = _embedder(args)
    return ClassifierRouter.from_config({**config, "use_query_embedding": embedder is not None}, embedder=embedder)


def _router(args: argparse.Namespace) -> Any:
    from ragkit.errors import ConfigError
    from ragkit.generate.rules import RuleRouter

    if args.weights:
        return _classifier(args, {"weights_path": args.weights})
    if args.embed:
        raise ConfigError("--embed needs --weights (a classifier trained with --embed)")
    return RuleRouter()


def _cmd_build(args: argparse.Namespace) -> int:
    answers: Any = args.answers
    if args.qa:
        answers = _measure_local(args)
    counts = build_routing_data(answers, args.out, min_f1=args.min_f1)
    print(
        json.dumps(counts)
        if args.json
        else f"wrote {counts['examples']} examples to {args.out}: the local model was right on {counts['simple']} "
        f"(label simple), wrong on {counts['complex']} (label complex)"
    )
    return 0


def _measure_local(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Answer ``--qa`` with the local generator (indexing ``--corpus`` first); the per-question records."""
    from ragkit.config import load_pipeline
    from ragkit.eval.runner import run_answer_eval
    from ragkit.ingest.loaders import load_path
    from ragkit.pipeline import RAG

    rag = RAG(load_pipeline(args.config))
    if args.corpus:
        rag.index(list(load_path(args.corpus)))
    records: list[dict[str, Any]] = []
    details = Path(args.out).with_suffix(".answers.jsonl")
    with details.open("w", encoding="utf-8") as f:

        def keep(record: dict[str, Any]) -> None:
            records.append(record)
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

        run_answer_eval(args.qa, rag=rag, generator=args.generator, limit=args.limit, on_answer=keep)
    return records


def _cmd_train(args: argparse.Namespace) -> int:
    from ragkit.generate.classifier import load_examples

    router = _classifier(args, {"l2": args.l2, "embedding_l2": args.embedding_l2})
    acc = router.train(load_examples(args.data))
    router.save(args.out)
    print(
        json.dumps({"train_accuracy": acc, "out": args.out})
        if args.json
        else f"trained on {args.data}: training accuracy {acc:.3f}; weights in {args.out}"
    )
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from ragkit.generate.classifier import load_examples

    router = _classifier(args, {"weights_path": args.weights})
    examples = load_examples(args.data)
    if args.target_local_accuracy is not None:
        t = router.calibrate_local_accuracy(examples, args.target_local_accuracy)
    else:
        t = router.calibrate(examples, args.target_strong_share)
    strong = router.probabilities([e.query for e in examples], [e.hits for e in examples]) >= t
    kept = [e for e, s in zip(examples, strong) if not s]
    accuracy = sum(e.label == "simple" for e in kept) / len(kept) if kept else None
    router.save(args.out or args.weights)
    share = float(strong.mean())
    print(
        json.dumps({"threshold": t, "strong_share": share, "kept_local_accuracy": accuracy})
        if args.json
        else f"threshold {t:.4f} sends {share:.1%} of {args.data} to the strong model; the local model was right on "
        + (f"{accuracy:.1%} of those kept local" if accuracy is not None else "none kept local")
    )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ragkit.generate.classifier import load_examples

    router = _router(args)
    examples = load_examples(args.data)
    # With --embed the vectors are computed up front, as retrieval would have; overhead is reported both ways.
    vectors = router.embed_batch([e.query for e in examples]) if args.embed else None
    result = evaluate_router(
        router,
        examples,
        prices=_load_prices(args.price_table),
        context_tokens=args.context_tokens,
        output_tokens=args.output_tokens,
        query_vectors=vectors,
    )
    if args.json:
        print(json.dumps(result))
        return 0
    pct = lambda x: "-" if x is None else f"{x:.1%}"  # noqa: E731
    print(f"examples          {result['n']}")
    print(f"label accuracy    {result['accuracy']:.3f} (routed strong exactly where the local answer was wrong)")
    print(f"kept local        {result['local_share']:.1%}   sent strong {result['strong_share']:.1%}")
    all_local, kept_local = pct(result["all_local_accuracy"]), pct(result["kept_local_accuracy"])
    print(f"local accuracy    all local {all_local}, kept local {kept_local}")
    print(f"quality lost      at most {pct(result['quality_lost_bound'])} vs a strong model right on every question")
    print(
        f"cost saving       {result['saving']:.1%} vs all-strong (${result['cost_routed_usd']:.4f} vs "
        f"${result['cost_all_strong_usd']:.4f}; query + {result['context_tokens']} context tokens in, "
        f"{result['output_tokens']} out)"
    )
    print(
        f"routing overhead  p50 {result['p50_ms']:.3f} ms, p95 {result['p95_ms']:.3f} ms"
        + (" (query embedding given)" if args.embed else "")
    )
    if "embed_p50_ms" in result:
        print(
            f"with embedding    p50 {result['p50_with_embedding_ms']:.3f} ms, "
            f"p95 {result['p95_with_embedding_ms']:.3f} ms (embedding one query: p50 {result['embed_p50_ms']:.3f} ms)"
        )
    print(f"confusion         {result['confusion']}")
    return 0


def _cmd_decide(args: argparse.Namespace) -> int:
    decision = _router(args).decide(args.query)
    if args.json:
        print(json.dumps(decision.as_dict()))
    else:
        print(f"{decision.route} -> {decision.generator}: {decision.reason}")
    return 0


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser("route", help="local-vs-strong query routing: data, training, calibration, evaluation")
    sub = p.add_subparsers(dest="route_command", metavar="ACTION", required=True)

    b = sub.add_parser(
        "build-data",
        help="label questions by whether the local model answered them right (simple) or not (complex)",
    )
    b.add_argument("--out", required=True, help="JSONL of {query, label, hits} to write")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--answers", help="per-question records of a local run (benchmarks/answer_quality.py --details)")
    src.add_argument("--qa", help="QA JSONL to answer with the local generator first (slow: one answer per question)")
    b.add_argument("--corpus", help="with --qa: index this file or folder first")
    b.add_argument("--config", help="with --qa: pipeline YAML (default: the embedded defaults)")
    b.add_argument("--generator", help="with --qa: the local generator's name (default: default_generator)")
    b.add_argument("--limit", type=int, help="with --qa: at most N questions")
    b.add_argument(
        "--min-f1", type=float, help="right means token F1 >= this (default: the answer contains a gold answer)"
    )
    b.set_defaults(func=_cmd_build)

    t = sub.add_parser("train", help="train the logistic routing classifier")
    t.add_argument("--data", required=True, help="JSONL {query, label}")
    t.add_argument("--out", required=True, help="weights JSON to write")
    t.add_argument("--l2", type=float, default=10.0, help="L2 penalty on the features (default: %(default)s)")
    t.add_argument(
        "--embedding-l2",
        type=float,
        default=20.0,
        help="L2 penalty on the embedding with --embed (default: %(default)s)",
    )
    t.set_defaults(func=_cmd_train)

    c = sub.add_parser(
        "calibrate",
        help="set the threshold: keep the most queries local at a target local accuracy, or send a target share strong",
    )
    c.add_argument("--weights", required=True, help="weights JSON (rewritten unless --out)")
    c.add_argument("--data", required=True, help="JSONL {query, label, hits} from build-data")
    target = c.add_mutually_exclusive_group()
    target.add_argument(
        "--target-strong-share", type=float, default=0.3, help="share sent strong (default: %(default)s)"
    )
    target.add_argument(
        "--target-local-accuracy",
        type=float,
        help="keep the most queries local while the local model is right on at least this share of them",
    )
    c.add_argument("--out", help="write the calibrated weights here instead")
    c.set_defaults(func=_cmd_calibrate)

    e = sub.add_parser("eval", help="accuracy, local share, cost saving and overhead on a labelled set")
    e.add_argument("--data", required=True, help="JSONL {query, label}")
    e.add_argument("--weights", help="classifier weights JSON; without it the rules router is evaluated")
    e.add_argument("--price-table", help="JSON {generator: {input_per_mtok, output_per_mtok}} for 'local' and 'strong'")
    e.add_argument(
        "--context-tokens",
        type=int,
        default=DEFAULT_CONTEXT_TOKENS,
        help="context tokens sent with each query (default: %(default)s)",
    )
    e.add_argument(
        "--output-tokens",
        type=int,
        default=DEFAULT_OUTPUT_TOKENS,
        help="answer tokens per query (default: %(default)s)",
    )
    e.set_defaults(func=_cmd_eval)

    d = sub.add_parser("decide", help="explain where one query would go")
    d.add_argument("query")
    d.add_argument("--weights", help="classifier weights JSON; without it the rules router decides")
    d.set_defaults(func=_cmd_decide)

    for s in (t, c, e, d):
        s.add_argument(
            "--embed",
            action="store_true",
            help="append the MiniLM query embedding to the features (weights trained with --embed)",
        )
    for s in (b, t, c, e, d):
        s.add_argument("--json", action="store_true", help="machine-readable output")
