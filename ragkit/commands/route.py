"""``ragkit route``: build a labelled routing set, train and calibrate the classifier, evaluate, explain one decision."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

DEFAULT_SQUAD = "../shared/data/squad2/rag"
DEFAULT_HOTPOT = "../shared/data/hotpotqa/rag"
# Assumed prices per 1M tokens: a small local model (electricity and hardware, amortised) vs a strong API model
# (GPT-4o-class list prices). Override with --price-table.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "local": {"input_per_mtok": 0.03, "output_per_mtok": 0.06},
    "strong": {"input_per_mtok": 2.50, "output_per_mtok": 10.00},
}
DEFAULT_CONTEXT_TOKENS = 1500  # retrieved context sent with every query
DEFAULT_OUTPUT_TOKENS = 150


def _read_questions(path: Path) -> list[dict[str, Any]]:
    from ragkit.errors import DataError

    if not path.is_file():
        raise DataError("file not found; pass the folder with qa.jsonl (--squad/--hotpot)", path=str(path))
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"not JSON ({e.msg})", path=str(path), line=n) from e
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise DataError("expected an object with a string field 'question'", path=str(path), line=n)
        rows.append(row)
    return rows


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # SQuAD repeats some question texts; a repeat on both sides of the split would leak the label.
    seen: set[str] = set()
    out = []
    for r in rows:
        key = " ".join(r["question"].split()).lower()
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def build_routing_data(
    squad_dir: str | Path,
    hotpot_dir: str | Path,
    out_dir: str | Path,
    *,
    n_squad: int = 300,
    n_hotpot: int = 100,
    test_share: float = 0.3,
    seed: int = 13,
) -> dict[str, int]:
    """Write train.jsonl and test.jsonl: SQuAD questions labelled simple, HotpotQA questions labelled complex.

    SQuAD is sampled half answerable, half unanswerable; each label is split separately so both files keep the mix.
    """
    rng = random.Random(seed)
    squad = _unique(_read_questions(Path(squad_dir) / "qa.jsonl"))
    hotpot = _unique(_read_questions(Path(hotpot_dir) / "qa.jsonl"))
    answerable = [r for r in squad if not r.get("is_impossible")]
    impossible = [r for r in squad if r.get("is_impossible")]
    half = n_squad // 2
    simple = rng.sample(answerable, min(len(answerable), n_squad - half)) + rng.sample(
        impossible, min(len(impossible), half)
    )
    complex_ = rng.sample(hotpot, min(len(hotpot), n_hotpot))
    train: list[dict[str, str]] = []
    test: list[dict[str, str]] = []
    for rows, label in ((simple, "simple"), (complex_, "complex")):
        items = [{"query": " ".join(r["question"].split()), "label": label} for r in rows]
        rng.shuffle(items)
        k = int(round(len(items) * test_share))
        test += items[:k]
        train += items[k:]
    rng.shuffle(train)
    rng.shuffle(test)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        (out / f"{name}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    return {"train": len(train), "test": len(test), "simple": len(simple), "complex": len(complex_)}


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
    router.decide(examples[0].query, **extra)  # warm caches so the first timing is not an outlier
    embed = getattr(router, "embed", None) if query_vectors is not None else None
    timings: list[float] = []
    embed_timings: list[float] = []
    correct = strong = 0
    cost_routed = cost_strong = 0.0
    confusion = {"simple->local": 0, "simple->strong": 0, "complex->local": 0, "complex->strong": 0}
    for i, ex in enumerate(examples):
        if embed is not None:
            t0 = time.perf_counter()
            embed(ex.query)
            embed_timings.append((time.perf_counter() - t0) * 1000)
        extra = {} if query_vectors is None else {"query_vector": query_vectors[i]}
        t0 = time.perf_counter()
        decision = router.decide(ex.query, **extra)
        timings.append((time.perf_counter() - t0) * 1000)
        is_strong = decision.route == STRONG
        strong += is_strong
        correct += is_strong == (ex.label == "complex")
        confusion[f"{ex.label}->{'strong' if is_strong else 'local'}"] += 1
        tokens_in = counter.count(ex.query) + context_tokens
        cost_strong += table[strong_gen].cost(tokens_in, output_tokens)
        cost_routed += table[strong_gen if is_strong else local_gen].cost(tokens_in, output_tokens)
    n = len(examples)
    extra_out: dict[str, Any] = {}
    if embed_timings:
        total = sorted(a + b for a, b in zip(timings, embed_timings))
        extra_out = {
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
    counts = build_routing_data(
        args.squad,
        args.hotpot,
        args.out,
        n_squad=args.n_squad,
        n_hotpot=args.n_hotpot,
        test_share=args.test_share,
        seed=args.seed,
    )
    print(
        json.dumps(counts)
        if args.json
        else f"wrote {counts['train']} train and {counts['test']} test examples "
        f"({counts['simple']} simple, {counts['complex']} complex) to {args.out}"
    )
    return 0


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
    t = router.calibrate(examples, args.target_strong_share)
    share = float((router.probabilities([e.query for e in examples]) >= t).mean())
    router.save(args.out or args.weights)
    print(
        json.dumps({"threshold": t, "strong_share": share})
        if args.json
        else f"threshold {t:.4f} sends {share:.1%} of {args.data} to the strong model"
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
    print(f"examples          {result['n']}")
    print(f"accuracy          {result['accuracy']:.3f}")
    print(f"kept local        {result['local_share']:.1%}   sent strong {result['strong_share']:.1%}")
    print(
        f"cost saving       {result['saving']:.1%} vs all-strong (${result['cost_routed_usd']:.4f} vs ${result['cost_all_strong_usd']:.4f}; "
        f"query + {result['context_tokens']} context tokens in, {result['output_tokens']} out)"
    )
    print(
        f"routing overhead  p50 {result['p50_ms']:.3f} ms, p95 {result['p95_ms']:.3f} ms"
        + (" (query embedding given)" if args.embed else "")
    )
    if "embed_p50_ms" in result:
        print(
            f"with embedding    p50 {result['p50_with_embedding_ms']:.3f} ms, p95 {result['p95_with_embedding_ms']:.3f} ms "
            f"(embedding one query: p50 {result['embed_p50_ms']:.3f} ms)"
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
        "build-data", help="build a labelled routing set (SQuAD simple, HotpotQA complex) with a train/test split"
    )
    b.add_argument("--out", required=True, help="directory for train.jsonl and test.jsonl")
    b.add_argument("--squad", default=DEFAULT_SQUAD, help="folder with SQuAD qa.jsonl (default: %(default)s)")
    b.add_argument("--hotpot", default=DEFAULT_HOTPOT, help="folder with HotpotQA qa.jsonl (default: %(default)s)")
    b.add_argument("--n-squad", type=int, default=300, help="SQuAD questions, half unanswerable (default: %(default)s)")
    b.add_argument("--n-hotpot", type=int, default=100, help="HotpotQA questions (default: %(default)s)")
    b.add_argument("--test-share", type=float, default=0.3, help="held-out share per label (default: %(default)s)")
    b.add_argument("--seed", type=int, default=13, help="sampling seed (default: %(default)s)")
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

    c = sub.add_parser("calibrate", help="set the threshold that sends a target share of queries to the strong model")
    c.add_argument("--weights", required=True, help="weights JSON (rewritten unless --out)")
    c.add_argument("--data", required=True, help="JSONL {query, label}")
    c.add_argument("--target-strong-share", type=float, default=0.3, help="share sent strong (default: %(default)s)")
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
