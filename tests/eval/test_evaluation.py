"""Retrieval and answer metrics against hand-computed values; BEIR building from the shared SQuAD set."""

import json
import math

import pytest
from paths import SHARED

from ragkit.errors import DataError
from ragkit.eval.metrics import (
    build_beir,
    contains_answer,
    exact_match,
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    token_f1,
)


def test_ranking_metrics_by_hand():
    rel = {"a": 1, "c": 1}
    ranked = ["b", "a", "d", "c"]
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(dcg / idcg)
    assert mrr_at_k(ranked, rel, 10) == 0.5
    assert recall_at_k(ranked, rel, 2) == 0.5
    assert recall_at_k(ranked, rel, 100) == 1.0
    assert ndcg_at_k(["x"], rel) == 0.0


def test_answer_metrics_follow_squad_normalisation():
    assert exact_match("The France.", ["France"]) == 1.0
    assert exact_match("Paris", ["France"]) == 0.0
    # "in 10th century" vs "10th and 11th centuries": one shared token, precision 1/3, recall 1/4
    assert token_f1("in the 10th century", ["10th and 11th centuries"]) == pytest.approx(2 / 7)
    assert contains_answer("It is located in France, I think.", ["France"]) == 1.0


@pytest.mark.skipif(not (SHARED / "squad2").exists(), reason="shared data not present")
def test_build_and_load_beir_from_squad(tmp_path):
    out = build_beir(SHARED / "squad2/rag/passages.jsonl", SHARED / "squad2/rag/qa.jsonl", tmp_path / "sq", limit=50)
    ds = load_beir(out)
    assert len(ds.corpus) == 646
    assert len(ds.queries) == 50
    corpus_ids = {d.id for d in ds.corpus}
    assert all(set(r) <= corpus_ids for r in ds.qrels.values())


@pytest.mark.skipif(not (SHARED / "hotpotqa").exists(), reason="shared data not present")
def test_hotpot_gold_titles_map_to_passages(tmp_path):
    out = build_beir(SHARED / "hotpotqa/rag/passages.jsonl", SHARED / "hotpotqa/rag/qa.jsonl", tmp_path / "hp")
    ds = load_beir(out)
    assert len(ds.queries) >= 90
    assert all(len(r) >= 2 for r in ds.qrels.values())


def test_bad_beir_line_is_located(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "1", "text": "x"}\n{broken\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "y"}\n')
    (tmp_path / "qrels/test.tsv").write_text("query-id\tcorpus-id\tscore\nq\t1\t1\n")
    with pytest.raises(DataError, match=r"corpus.jsonl:2"):
        load_beir(tmp_path)


def test_titles_that_name_their_documents_are_indexed_with_them(tmp_path):
    from ragkit.eval.runner import distinctive_titles, run_retrieval_eval
    from ragkit.testing import FakeEmbedder

    hotpot = load_beir(
        build_beir(SHARED / "hotpotqa/rag/passages.jsonl", SHARED / "hotpotqa/rag/qa.jsonl", tmp_path / "hp")
    )
    squad = load_beir(
        build_beir(SHARED / "squad2/rag/passages.jsonl", SHARED / "squad2/rag/qa.jsonl", tmp_path / "sq", limit=50)
    )
    assert distinctive_titles(hotpot.corpus)  # one Wikipedia paragraph per title
    assert not distinctive_titles(squad.corpus)  # an article's name over dozens of its passages
    # A corpus whose only clue is the title: found with the title indexed, not without it.
    (tmp_path / "t" / "qrels").mkdir(parents=True)
    rows = [("a", "Zanzibar harbour", "It opened in 1890."), ("b", "Quito tramway", "It opened in 1890.")]
    (tmp_path / "t" / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in rows), encoding="utf-8"
    )
    (tmp_path / "t" / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "Quito tramway"}) + "\n")
    (tmp_path / "t" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\tb\t1\n")
    titled = run_retrieval_eval(tmp_path / "t", mode="sparse", embedder=FakeEmbedder(32))
    assert titled["titles_indexed"] and titled["mrr@10"] == 1.0
    (tmp_path / "off.yaml").write_text('chunker: {type: recursive, prefix: ""}\n', encoding="utf-8")
    plain = run_retrieval_eval(tmp_path / "t", config=tmp_path / "off.yaml", mode="sparse", embedder=FakeEmbedder(32))
    assert not plain["titles_indexed"] and plain["mrr@10"] < 1.0
