"""Fixed answer-quality splits over the shared SQuAD 2.0 and HotpotQA data: only ids live in the project.

``select`` draws the splits once and writes ``dev.json`` and ``test.json`` (question ids, in a fixed shuffled
order) next to this script; it refuses to overwrite them unless ``--force``: the splits are fixed, and a change
to them is a change to every figure measured on them. ``materialise`` reads the shared data at run time and
writes, into a directory outside the project, ``<split>.jsonl`` (the QA rows, in the stored order) and
``corpus/`` (links to both passage files), ready for::

    ragkit eval --qa OUT/dev.jsonl --corpus OUT/corpus --json

Shape of each split: 100 questions, 33 SQuAD unanswerable, 47 SQuAD answerable, 20 HotpotQA (all answerable).
SQuAD is split by article (dev and test share no article, so no passage either), HotpotQA by question.

Run from the project root: ``python3 benchmarks/qa_splits/splits.py materialise --out /tmp/ragkit-qa``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "data"
SPLITS = ("dev", "test")
SHAPE = {"squad_unanswerable": 33, "squad_answerable": 47, "hotpot": 20}
SEED = 20240614


def _rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _squad_articles(shared: Path) -> dict[str, str]:
    """Question id -> article title; unanswerable rows have no gold passage, so titles come from dev-v2.0.json."""
    data = json.loads((shared / "squad2" / "dev-v2.0.json").read_text(encoding="utf-8"))
    by_question: dict[str, str] = {}
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for q in paragraph["qas"]:
                by_question.setdefault(" ".join(q["question"].split()), article["title"])
    out = {}
    for row in _rows(shared / "squad2" / "rag" / "qa.jsonl"):
        title = by_question.get(" ".join(row["question"].split()))
        if title is None:
            raise SystemExit(f"SQuAD question {row['id']} not found in dev-v2.0.json")
        out[row["id"]] = title
    return out


def select(shared: Path, seed: int = SEED) -> dict[str, dict]:
    rng = random.Random(seed)
    squad = _rows(shared / "squad2" / "rag" / "qa.jsonl")
    hotpot = _rows(shared / "hotpotqa" / "rag" / "qa.jsonl")
    article = _squad_articles(shared)
    titles = sorted(set(article.values()))
    rng.shuffle(titles)
    half = len(titles) // 2
    article_split = {t: ("dev" if i < half else "test") for i, t in enumerate(titles)}
    # SQuAD repeats some question texts; keep one of each so no text is asked twice.
    seen: set[str] = set()
    unique = []
    for row in squad:
        key = " ".join(row["question"].lower().split())
        if key not in seen:
            seen.add(key)
            unique.append(row)
    hotpot_ids = [r["id"] for r in hotpot]
    rng.shuffle(hotpot_ids)
    out: dict[str, dict] = {}
    for k, name in enumerate(SPLITS):
        pool = [r for r in unique if article_split[article[r["id"]]] == name]
        impossible = [r["id"] for r in pool if r["is_impossible"]]
        answerable = [r["id"] for r in pool if not r["is_impossible"]]
        chosen = (
            rng.sample(impossible, SHAPE["squad_unanswerable"])
            + rng.sample(answerable, SHAPE["squad_answerable"])
            + hotpot_ids[k * SHAPE["hotpot"] : (k + 1) * SHAPE["hotpot"]]
        )
        rng.shuffle(chosen)  # so that --limit N takes a mix
        out[name] = {
            "seed": seed,
            "shape": SHAPE,
            "squad_articles": sorted(t for t, s in article_split.items() if s == name),
            "ids": chosen,
        }
    return out


def materialise(split: str, shared: Path, out: Path) -> Path:
    """Write ``out/<split>.jsonl`` (rows in the stored order, each with its ``dataset``) and ``out/corpus``."""
    ids = json.loads((HERE / f"{split}.json").read_text(encoding="utf-8"))["ids"]
    rows = {}
    for dataset, folder in (("squad2", "squad2"), ("hotpotqa", "hotpotqa")):
        for row in _rows(shared / folder / "rag" / "qa.jsonl"):
            rows[row["id"]] = {**row, "dataset": dataset}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise SystemExit(f"{len(missing)} ids of {split}.json are not in {shared} (first: {missing[0]})")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{split}.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(rows[i], ensure_ascii=False) + "\n" for i in ids), encoding="utf-8")
    tmp.replace(path)
    corpus = out / "corpus"
    corpus.mkdir(exist_ok=True)
    for name in ("squad2", "hotpotqa"):
        link = corpus / f"{name}.jsonl"
        if not link.exists():
            link.symlink_to(shared / name / "rag" / "passages.jsonl")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=SHARED, help="shared data folder (default: %(default)s)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("select", help="draw the splits (once) and write dev.json, test.json")
    s.add_argument("--force", action="store_true", help="overwrite existing split files")
    m = sub.add_parser("materialise", help="write <split>.jsonl and corpus/ from the shared data")
    m.add_argument("--out", type=Path, required=True, help="directory outside the project")
    m.add_argument("--split", choices=(*SPLITS, "all"), default="all")
    args = p.parse_args(argv)
    if args.cmd == "select":
        if any((HERE / f"{n}.json").exists() for n in SPLITS) and not args.force:
            print("split files exist; they are fixed (use --force to redraw)", file=sys.stderr)
            return 1
        for name, data in select(args.shared).items():
            (HERE / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            print(f"{name}: {len(data['ids'])} ids, SQuAD articles {', '.join(data['squad_articles'])}")
        return 0
    for split in SPLITS if args.split == "all" else (args.split,):
        print(materialise(split, args.shared, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
