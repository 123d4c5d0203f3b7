"""Does extractive compression keep the answer? SQuAD 2.0 and HotpotQA dev data, several token budgets.

For each answerable question the hits are its gold passage(s) plus distractors (SQuAD: 4 other
paragraphs of the same article; HotpotQA: the question's 10 context paragraphs), shuffled with a fixed
seed so that position says nothing about which passage is gold, and all with the same score. The
compressor sees only the question and the hits; the gold answers are used only to check survival.

    python3 benchmarks/compression.py --limit 300
    python3 benchmarks/compression.py --json --budgets 2000,1000,500,50%
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from ragkit.answer.compress import ExtractiveCompressor, ExtractiveCompressorConfig
from ragkit.tokens import TiktokenCounter
from ragkit.types import Chunk, Hit

DATA = Path("/work/shared/data")


def _load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _hit(p: dict) -> Hit:
    return Hit(Chunk(p["_id"], p["title"], p["text"], 0, len(p["text"]), {"title": p["title"]}), 0.0)


def squad_cases(root: Path, limit: int, offset: int, rng: random.Random) -> list[tuple[dict, list[Hit]]]:
    passages = _load(root / "passages.jsonl")
    by_id = {p["_id"]: p for p in passages}
    by_title: dict[str, list[dict]] = defaultdict(list)
    for p in passages:
        by_title[p["title"]].append(p)
    questions = [q for q in _load(root / "qa.jsonl") if not q.get("is_impossible") and q["gold_passage_ids"]]
    cases = []
    for q in questions[offset : offset + limit]:
        gold = [by_id[g] for g in q["gold_passage_ids"]]
        others = [p for p in by_title[gold[0]["title"]] if p["_id"] not in q["gold_passage_ids"]]
        hits = [_hit(p) for p in gold + rng.sample(others, min(4, len(others)))]
        rng.shuffle(hits)
        cases.append((q, hits))
    return cases


def hotpot_cases(root: Path, limit: int, offset: int, rng: random.Random) -> list[tuple[dict, list[Hit]]]:
    passages = _load(root / "passages.jsonl")
    index = {p["_id"]: i for i, p in enumerate(passages)}
    questions = _load(root / "qa.jsonl")
    # passages.jsonl lists each question's 10 context paragraphs in question order (shared ones only once);
    # a question's block lies between the previous question's last gold and the next question's first gold.
    gold_pos = [sorted(index[g] for g in q["gold_passage_ids"] if g in index) for q in questions]
    cases = []
    for k, q in enumerate(questions):
        if not gold_pos[k] or not q.get("answers"):
            continue
        lo = max(gold_pos[k - 1][-1] + 1 if k and gold_pos[k - 1] else 0, gold_pos[k][-1] - 9)
        hi = min(gold_pos[k + 1][0] if k + 1 < len(questions) and gold_pos[k + 1] else len(passages), lo + 10)
        block = set(range(lo, hi)) | set(gold_pos[k])
        hits = [_hit(passages[i]) for i in sorted(block)]
        rng.shuffle(hits)
        cases.append((q, hits))
    return cases[offset : offset + limit]


def survived(answers: list[str], hits: list[Hit]) -> bool:
    text = "\n".join(h.chunk.text for h in hits).lower()
    return any(a.strip().lower() in text for a in answers if a.strip())


def run(name: str, cases, budgets: list[str], compressor: ExtractiveCompressor, count) -> list[dict]:
    rows = []
    for spec in budgets:
        before, after, ratios, kept, present, seconds = [], [], [], 0, 0, 0.0
        for q, hits in cases:
            if not survived(q["answers"], hits):
                continue  # the answer string is not in the passages verbatim (e.g. "yes"/"no"): nothing to keep
            present += 1
            total = sum(count(h.chunk.text) for h in hits)
            budget = int(total * float(spec[:-1]) / 100) if spec.endswith("%") else int(spec)
            t0 = time.perf_counter()
            result = compressor.compress(q["question"], hits, budget)
            seconds += time.perf_counter() - t0
            before.append(result.tokens_before)
            after.append(result.tokens_after)
            ratios.append(result.ratio if result.tokens_after else float("inf"))
            kept += survived(q["answers"], list(result.hits))
        rows.append(
            {
                "dataset": name,
                "budget": spec,
                "questions": present,
                "tokens_before": round(statistics.mean(before), 1) if before else 0,
                "tokens_after": round(statistics.mean(after), 1) if after else 0,
                "ratio": round(sum(before) / sum(after), 2) if sum(after) else None,
                "answer_survival": round(kept / present, 4) if present else None,
                "ms_per_question": round(1000 * seconds / present, 2) if present else None,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=300, help="answerable questions per dataset (default 300)")
    parser.add_argument(
        "--offset", type=int, default=0, help="skip this many answerable questions first (a tuning slice)"
    )
    parser.add_argument(
        "--budgets", default="2000,1000,500,50%", help="comma-separated token budgets; N%% = share of the hits' tokens"
    )
    parser.add_argument("--datasets", default="squad,hotpotqa", help="comma-separated: squad, hotpotqa")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override an ExtractiveCompressor config field"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    config = ExtractiveCompressorConfig(**overrides)
    counter = TiktokenCounter("cl100k_base")
    compressor = ExtractiveCompressor(config, count=counter.count)
    budgets = [b.strip() for b in args.budgets.split(",") if b.strip()]
    rows: list[dict] = []
    for name in args.datasets.split(","):
        rng = random.Random(args.seed)
        if name == "squad":
            cases = squad_cases(DATA / "squad2" / "rag", args.limit, args.offset, rng)
        elif name == "hotpotqa":
            cases = hotpot_cases(DATA / "hotpotqa" / "rag", args.limit, args.offset, rng)
        else:
            parser.error(f"unknown dataset {name!r}")
        rows += run(name, cases, budgets, compressor, counter.count)

    if args.json:
        print(json.dumps({"config": config.model_dump(), "rows": rows}, indent=2))
        return 0
    header = (
        f"{'dataset':<9} {'budget':>6} {'n':>5} {'tok before':>10} {'tok after':>9} "
        f"{'ratio':>6} {'answer kept':>11} {'ms/q':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] else "-"
        kept = f"{100 * r['answer_survival']:.1f}%" if r["answer_survival"] is not None else "-"
        print(
            f"{r['dataset']:<9} {r['budget']:>6} {r['questions']:>5} {r['tokens_before']:>10} {r['tokens_after']:>9} "
            f"{ratio:>6} {kept:>11} {r['ms_per_question']:>6}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
