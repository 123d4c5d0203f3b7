"""Product-QA figures: each question set through its catalog config, with index time and per-question latency.

    .venv/bin/python benchmarks/catalog_eval.py --config examples/product_qa/who.yaml \
        --qa examples/product_qa/eval/who_dev.jsonl --qa examples/product_qa/eval/who_test.jsonl

For every set it prints ``ragkit eval --qa``'s keys (contains_answer, abstention_accuracy, answers_with_wrong_numbers,
seconds_per_question) plus p50/p95 seconds per question and how many questions took each path (id fast path, model
plan, rules plan, free text, abstain). ``--fresh-index`` builds the index in a temporary directory first and reports
its time; ``--planner rules`` plans without the model (for comparison); ``--details DIR`` keeps one JSONL of
per-question details per set. Run it from the repository root (the configs' paths are relative to it); on a shared
machine, say so next to any speed figure.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 3)


def _config(path: str, planner: str | None, index_dir: str | None) -> Any:
    from ragkit.config import load_pipeline

    cfg = load_pipeline(path)
    section = cfg.sections["catalog"]
    if planner:
        section = section.model_copy(update={"bot": section.bot.model_copy(update={"planner": planner})})
    changes: dict[str, Any] = {"sections": {**cfg.sections, "catalog": section}}
    if index_dir:
        store = cfg.components["store"]
        store = dataclasses.replace(store, config=store.config.model_copy(update={"path": f"{index_dir}/store"}))
        changes.update(index_dir=index_dir, components={**cfg.components, "store": store})
    return dataclasses.replace(cfg, **changes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="pipeline YAML with a catalog section")
    p.add_argument("--qa", action="append", required=True, help="question set (JSONL); repeat for several")
    p.add_argument("--planner", choices=["model", "rules"], help="override catalog.bot.planner")
    p.add_argument("--fresh-index", action="store_true", help="index into a temporary directory and time it")
    p.add_argument("--details", metavar="DIR", help="write <set>.details.jsonl files here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)

    from ragkit.eval.runner import run_answer_eval
    from ragkit.pipeline import build_app

    tmp = tempfile.TemporaryDirectory(prefix="ragkit-catalog-") if args.fresh_index else None
    cfg = _config(args.config, args.planner, tmp.name if tmp else None)
    t0 = time.perf_counter()
    app = build_app(cfg)
    bot = app.answerer
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = bot.ensure_index()  # indexes (incremental) and warms the planner's prompt prefix
    index_s = time.perf_counter() - t0
    out: dict[str, Any] = {
        "config": args.config,
        "products": len(bot.catalog),
        "planner": bot.settings.planner,
        "load_s": round(load_s, 3),
        "index_and_warm_s": round(index_s, 3),
        "index_s": round(getattr(report, "seconds", 0.0), 3),
        "embed_s": round(getattr(report, "embed_seconds", 0.0), 3),
        "docs_indexed": getattr(report, "docs_indexed", None),
        "sets": {},
    }
    for qa in args.qa:
        records: list[dict[str, Any]] = []
        details = Path(args.details) / (Path(qa).stem + ".details.jsonl") if args.details else None
        if details:
            details.parent.mkdir(parents=True, exist_ok=True)
        result = run_answer_eval(qa, rag=bot, checker=app.checker, on_answer=records.append, details=details)
        seconds = [r["seconds"] for r in records]
        paths: collections.Counter[str] = collections.Counter()
        if details:
            paths.update(json.loads(line)["path"] for line in details.read_text(encoding="utf-8").splitlines())
        out["sets"][Path(qa).stem] = {
            **{k: result.get(k) for k in ("n_questions", "n_answerable", "n_unanswerable", "contains_answer")},
            **{k: result.get(k) for k in ("abstention_accuracy", "answers_with_wrong_numbers", "seconds_per_question")},
            "p50_s": _percentile(seconds, 0.5),
            "p95_s": _percentile(seconds, 0.95),
            "mean_s": round(statistics.fmean(seconds), 3) if seconds else None,
            **({"paths": dict(paths)} if paths else {}),
        }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{out['config']}: {out['products']} products, planner {out['planner']}, "
            f"index {out['index_s']} s ({out['docs_indexed']} documents indexed), with the planner's warm-up "
            f"{out['index_and_warm_s']} s"
        )
        for name, s in out["sets"].items():
            print(
                f"  {name}: contains {s['contains_answer']}, abstention {s['abstention_accuracy']}, wrong numbers "
                f"{s['answers_with_wrong_numbers']}, s/question {s['seconds_per_question']} "
                f"(p50 {s['p50_s']}, p95 {s['p95_s']}), paths {s.get('paths', {})}"
            )
    from ragkit._aio import run_sync

    run_sync(bot.aclose())
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
