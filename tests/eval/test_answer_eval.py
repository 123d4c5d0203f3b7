"""The answer evaluation: citation markers are not scored, per-question records carry what calibration and routing
read, and the summary is computed from those records; run on the real pipeline (Qdrant engine, fake models)."""

from __future__ import annotations

import json

import pytest

from ragkit.config import parse_pipeline
from ragkit.eval.runner import answer_text, run_answer_eval, summarise_answers
from ragkit.language import ABSTENTION_EN
from ragkit.pipeline import RAG
from ragkit.testing import FakeEmbedder, FakeGenerator
from ragkit.types import Document


@pytest.mark.parametrize(
    "reply, scored",
    [
        ("Rollo [2].", "Rollo."),
        ("Denmark [1], Iceland [2][3] and Norway [4-5]", "Denmark, Iceland and Norway"),
        ("The 10th century [1, 2]", "The 10th century"),
        ("No citation", "No citation"),
    ],
)
def test_citation_markers_are_not_scored(reply, scored):
    assert answer_text(reply) == scored


def _rag(tmp_path, script):
    config = parse_pipeline({"index_dir": str(tmp_path / "idx")})
    rag = RAG(config, generators={"local": FakeGenerator(script)}, embedder=FakeEmbedder(32))
    rag.index(
        [
            Document("normans", "The Norse raiders under their leader Rollo came from Denmark.", {"title": "Normans"}),
            Document("steam", "A steam engine performs mechanical work using steam.", {"title": "Steam"}),
        ]
    )
    return rag


def test_records_and_summary(tmp_path):
    rows = [
        {"id": "a", "question": "Who led the Norse raiders?", "answers": ["Rollo"], "dataset": "squad2"},
        {"id": "b", "question": "Who led the Saxons?", "answers": [], "is_impossible": True},
        {"id": "c", "question": "What does a steam engine use?", "answers": ["steam"]},
    ]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rag = _rag(tmp_path, ["Rollo [1]", ABSTENTION_EN, "It runs on 12 kWh [1]."])
    records: list[dict] = []
    result = run_answer_eval(qa, rag=rag, on_answer=records.append)
    assert [r["id"] for r in records] == ["a", "b", "c"] and records[0]["dataset"] == "squad2"
    first = records[0]
    assert first["em"] == 1.0 and first["contains"] == 1.0 and first["text"] == "Rollo [1]"
    assert first["sources"] and "dense" in first["sources"][0]["rank_scores"]
    assert set(first["abstention"]["signals"]) == {
        "retrieval_score",
        "question_coverage",
        "answer_support",
        "mean_logprob",
    }
    assert records[1]["unanswerable"] and records[1]["abstained"] and records[1]["contains"] is None
    assert records[2]["grounding"]["ok"] is False  # "12 kWh" is in no source
    assert records[2]["grounding"]["unsupported"] == ["'12 kWh' appears in no source"]
    json.dumps(records)  # plain data throughout
    assert result == summarise_answers(records)
    details = tmp_path / "details.jsonl"
    run_answer_eval(qa, rag=_rag(tmp_path / "again", ["Rollo [1]", ABSTENTION_EN, "steam [1]"]), details=details)
    from ragkit.generate.routing_data import local_answer_right, read_answer_records

    lines = read_answer_records(details)  # the --details file is an answer-record file as it is
    assert [line["answer"] for line in lines] == ["Rollo [1]", ABSTENTION_EN, "steam [1]"]
    assert lines[0]["sources"] and lines[0]["f1"] == 1.0 and "signals" in lines[0]["abstention"]
    assert lines[0]["plan"]["decisions"][0]["action"] == "kept"  # the budget plan as data, not its repr
    assert [local_answer_right(line) for line in lines] == [True, True, True]
    assert (
        result["exact_match"] == 0.5
        and result["abstention_accuracy"] == 1.0
        and result["grounded_share"] == pytest.approx(2 / 3, abs=1e-4)
    )
