"""Calibrate the abstention thresholds (ragkit.answer.abstention) on the dev split's recorded answers.

Input: per-question records of a run with abstention switched off (``abstention: {enabled: false}``), written by
``benchmarks/answer_quality.py --split dev --details FILE``; each holds the raw answer, whether it contains a gold
answer, and every abstention signal. Withdrawing an answer is simulated exactly (the decision is a function of
those signals), so no model runs here.

The objective is contains_answer (answerable questions) + abstention_accuracy (unanswerable ones): a withdrawn
right answer costs as much as a withdrawn wrong answer to an unanswerable question gains. With
``--max-contains-loss L`` only rules that keep dev contains_answer within L of the raw figure count: the most
abstention the right answers can afford (the shipped defaults are chosen this way, L = 0.02). Candidate thresholds are
the midpoints between observed values of each signal (single signals and pairs); the simplest rule within
``--tolerance`` of the best wins. 5-fold cross-validation of the whole selection says how much of the gain is fit to
these 100 questions. ``--apply FILE`` scores the chosen thresholds on another split's records (the test split),
which plays no part in the choice.

    python3 benchmarks/calibrate_abstention.py --details /tmp/dev-raw.jsonl [--apply /tmp/test-raw.jsonl] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ragkit.answer.abstention import SIGNALS

Rule = dict[str, float]  # signal -> threshold (withdraw when below)


def load(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        if "abstention" not in r:
            raise SystemExit(f"{path}: records carry no abstention signals (run with the grounding/abstention checks)")
    return rows


def withdrawn(record: Mapping[str, Any], rule: Rule) -> bool:
    a = record["abstention"]
    if a["model_abstained"]:
        return False
    signals = a["signals"]
    return any(signals.get(k) is not None and signals[k] < t for k, t in rule.items())


def score(records: Sequence[Mapping[str, Any]], rule: Rule) -> dict[str, float]:
    """The eval figures after withdrawing what ``rule`` withdraws."""
    contains, f1, abstain, false_abstain = [], [], [], []
    for r in records:
        out = withdrawn(r, rule)
        abstained = r["abstention"]["model_abstained"] or out
        if r["unanswerable"]:
            abstain.append(float(abstained))
        else:
            contains.append(0.0 if out else float(r["contains"] or 0.0))
            f1.append(0.0 if out else float(r["f1"] or 0.0))
            false_abstain.append(float(abstained))
    m = statistics.fmean
    return {
        "contains_answer": m(contains) if contains else 0.0,
        "token_f1": m(f1) if f1 else 0.0,
        "abstention_accuracy": m(abstain) if abstain else 0.0,
        "false_abstention_rate": m(false_abstain) if false_abstain else 0.0,
        "withdrawn": sum(withdrawn(r, rule) for r in records),
    }


def objective(
    figures: Mapping[str, float], base: Mapping[str, float] | None = None, max_loss: float | None = None
) -> float:
    """contains_answer + abstention_accuracy; with ``max_loss``, a rule that costs more than ``max_loss`` of the
    raw contains_answer (``base``) scores -1, so the choice is the most abstention the right answers can afford."""
    if max_loss is not None and base is not None and figures["contains_answer"] < base["contains_answer"] - max_loss:
        return -1.0
    return figures["contains_answer"] + figures["abstention_accuracy"]


def candidates(records: Sequence[Mapping[str, Any]], signal: str, most: int = 24) -> list[float]:
    values = sorted({r["abstention"]["signals"].get(signal) for r in records} - {None})
    mids = [(a + b) / 2 for a, b in zip(values, values[1:])]
    if len(mids) > most:  # an even spread of the midpoints, so a signal with many values is not favoured
        mids = [mids[round(i * (len(mids) - 1) / (most - 1))] for i in range(most)]
    return [round(m, 4) for m in mids]


def rules(records: Sequence[Mapping[str, Any]], max_signals: int = 2) -> list[Rule]:
    grids = {s: candidates(records, s) for s in SIGNALS}
    out: list[Rule] = [{}]
    for k in range(1, max_signals + 1):
        for names in itertools.combinations([s for s in SIGNALS if grids[s]], k):
            for values in itertools.product(*(grids[n] for n in names)):
                out.append(dict(zip(names, values)))
    return out


def choose(
    records: Sequence[Mapping[str, Any]], tolerance: float, max_signals: int = 2, max_loss: float | None = None
) -> tuple[Rule, float]:
    base = score(records, {})
    scored = [(objective(score(records, rule), base, max_loss), rule) for rule in rules(records, max_signals)]
    best = max(s for s, _ in scored)
    # The simplest rule close to the best: fewer signals, then fewer withdrawals (the least intervention).
    near = [(len(rule), score(records, rule)["withdrawn"], -s, rule) for s, rule in scored if s >= best - tolerance]
    near.sort(key=lambda t: t[:3])
    return near[0][3], best


def cross_validate(
    records: Sequence[Mapping[str, Any]], tolerance: float, folds: int = 5, max_loss: float | None = None
) -> dict[str, float]:
    """Choose on 4/5, score on the held-out 1/5, for every fold; mean objective held out vs without any rule."""
    held, none = [], []
    for k in range(folds):
        test = [r for i, r in enumerate(records) if i % folds == k]
        train = [r for i, r in enumerate(records) if i % folds != k]
        rule, _ = choose(train, tolerance, max_loss=max_loss)
        held.append(objective(score(test, rule)))
        none.append(objective(score(test, {})))
    return {"held_out_objective": statistics.fmean(held), "held_out_objective_without_rule": statistics.fmean(none)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--details", type=Path, required=True, help="dev records (abstention off)")
    p.add_argument("--apply", type=Path, help="score the chosen thresholds on these records too (e.g. test)")
    p.add_argument("--tolerance", type=float, default=0.02, help="objective slack for a simpler rule")
    p.add_argument(
        "--max-contains-loss",
        type=float,
        default=None,
        help="only rules that lower dev contains_answer by at most this much (e.g. 0.02); default: no limit",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    dev = load(args.details)
    rule, best = choose(dev, args.tolerance, max_loss=args.max_contains_loss)
    report: dict[str, Any] = {
        "thresholds": {f"min_{k}": v for k, v in rule.items()},
        "dev_before": score(dev, {}),
        "dev_after": score(dev, rule),
        "dev_best_objective": best,
        "dev_cross_validation": cross_validate(dev, args.tolerance, max_loss=args.max_contains_loss),
        "single_signal_best": {
            s: max(((objective(score(dev, {s: t})), t) for t in candidates(dev, s)), default=None) for s in SIGNALS
        },
    }
    if args.apply:
        other = load(args.apply)
        report["apply_before"] = score(other, {})
        report["apply_after"] = score(other, rule)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
