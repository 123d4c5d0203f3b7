"""Evaluation: BEIR-layout retrieval metrics (nDCG, recall, MRR) and answer metrics (EM, token F1, abstention)."""

from __future__ import annotations

import json
import math
import random
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ragkit.errors import DataError
from ragkit.jsonl import read_jsonl
from ragkit.types import Document


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR-layout dataset: corpus documents, queries and graded relevance judgements."""

    corpus: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(directory: str | Path, split: str = "test") -> BeirDataset:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` from ``directory``."""
    d = Path(directory)
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (d / name).exists():
            raise DataError(
                f"BEIR dataset is missing {name} (expected corpus.jsonl, queries.jsonl, qrels/{split}.tsv)", path=str(d)
            )
    corpus = []
    for n, row in read_jsonl(d / "corpus.jsonl"):
        if "_id" not in row or "text" not in row:
            raise DataError("corpus row needs '_id' and 'text'", path=str(d / "corpus.jsonl"), line=n)
        title = row.get("title") or ""
        corpus.append(Document(str(row["_id"]), row["text"], {"title": title} if title else {}))
    queries = {}
    for n, row in read_jsonl(d / "queries.jsonl"):
        if "_id" not in row or "text" not in row:
            raise DataError("query row needs '_id' and 'text'", path=str(d / "queries.jsonl"), line=n)
        queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    with (d / "qrels" / f"{split}.tsv").open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if n == 1 and parts and parts[0] == "query-id":
                continue
            if len(parts) < 3:
                raise DataError(
                    "expected query-id<TAB>corpus-id<TAB>score", path=str(d / "qrels" / f"{split}.tsv"), line=n
                )
            try:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
            except ValueError as e:
                raise DataError(
                    f"score {parts[2]!r} is not an integer", path=str(d / "qrels" / f"{split}.tsv"), line=n
                ) from e
    return BeirDataset(corpus, queries, {q: r for q, r in qrels.items() if q in queries})


def build_beir(
    passages: str | Path,
    qa: str | Path,
    out: str | Path,
    *,
    limit: int | None = None,
    seed: int = 13,
    answerable_only: bool = True,
) -> Path:
    """Write a BEIR dataset (question → gold passages) from ``passages.jsonl`` + ``qa.jsonl`` (the SQuAD/HotpotQA
    rag layout)."""
    out = Path(out)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    docs = [row for _, row in read_jsonl(Path(passages))]
    by_title: dict[str, list[str]] = {}
    for row in docs:
        by_title.setdefault(row.get("title", ""), []).append(str(row["_id"]))
    ids = {str(row["_id"]) for row in docs}
    rows = [row for _, row in read_jsonl(Path(qa)) if not (answerable_only and row.get("is_impossible"))]
    random.Random(seed).shuffle(rows)
    rows = rows[:limit] if limit else rows
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for row in docs:
            f.write(
                json.dumps({"_id": row["_id"], "title": row.get("title", ""), "text": row["text"]}, ensure_ascii=False)
                + "\n"
            )
    with (
        (out / "queries.jsonl").open("w", encoding="utf-8") as fq,
        (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as fr,
    ):
        fr.write("query-id\tcorpus-id\tscore\n")
        for row in rows:
            # HotpotQA names gold passages by title; SQuAD by passage id.
            gold = [
                g for gid in row.get("gold_passage_ids", []) for g in ([gid] if gid in ids else by_title.get(gid, []))
            ]
            if not gold:
                continue
            fq.write(json.dumps({"_id": row["id"], "text": row["question"]}, ensure_ascii=False) + "\n")
            for g in dict.fromkeys(gold):
                fr.write(f"{row['id']}\t{g}\t1\n")
    return out


# Retrieval metrics -------------------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    dcg = sum((2 ** relevant.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 100) -> float:
    rel = {d for d, r in relevant.items() if r > 0}
    return len(rel & set(ranked[:k])) / len(rel) if rel else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if relevant.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def doc_ranking(chunk_doc_ids: Sequence[str]) -> list[str]:
    """Collapse a ranked list of chunk doc ids to a ranked list of distinct doc ids."""
    return list(dict.fromkeys(chunk_doc_ids))


# Answer metrics (SQuAD conventions) --------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(a) for a in answers)) if answers else float(not p)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    pred = normalize_answer(prediction).split()
    best = 0.0
    for a in answers:
        gold = normalize_answer(a).split()
        common = Counter(pred) & Counter(gold)
        same = sum(common.values())
        if same == 0:
            continue
        precision, recall = same / len(pred), same / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(prediction: str, answers: Sequence[str]) -> float:
    """1 when any normalised gold answer appears inside the normalised prediction (lenient for chatty models)."""
    p = normalize_answer(prediction)
    return float(any(normalize_answer(a) and normalize_answer(a) in p for a in answers))


__all__ = [
    "BeirDataset",
    "load_beir",
    "build_beir",
    "ndcg_at_k",
    "recall_at_k",
    "mrr_at_k",
    "doc_ranking",
    "normalize_answer",
    "exact_match",
    "token_f1",
    "contains_answer",
]
