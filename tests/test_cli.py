"""The `ragkit` command line on the embedded defaults (real ONNX embedder, real Qdrant engine)."""

import json
import textwrap

import pytest

from ragkit.cli import main

DOCS = {
    "labo.md": "# LABO-288\n\nA laboratory refrigerator with 288 litres, 2 to 8 °C.\n",
    "ult.md": "# POLAR-ULT-500\n\nAn ultra-low freezer reaching -86 °C with 500 litres.\n",
    "vax.md": "# KN-VAX-98\n\nA vaccine refrigerator with an SMS alarm.\n",
}


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_index_then_search_on_defaults(workdir, capsys):
    assert main(["index", "docs", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["docs_indexed"] == 3 and (workdir / ".ragkit" / "manifest.sqlite").exists()
    assert main(["search", "LABO-288", "--json", "--top-k", "2"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["doc_id"].endswith("labo.md")
    assert main(["index", "docs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["docs_unchanged"] == 3


def test_eval_on_a_beir_dataset_prints_the_metrics(workdir, capsys):
    beir = workdir / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in DOCS.items())
    )
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "which freezer reaches -86 °C"}) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tult.md\t1\n")
    assert main(["eval", "--dataset", str(beir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"ndcg@10", "recall@100", "mrr@10", "n_docs", "n_queries", "index_s", "query_p50_ms"} <= set(result)
    assert result["n_docs"] == 3 and result["n_queries"] == 1 and result["mrr@10"] == 1.0


def test_validate_reports_every_problem_with_line(workdir, capsys):
    bad = workdir / "bad.yaml"
    bad.write_text(
        textwrap.dedent("""\
        retriever:
          type: hybrid
          mode: fuzzy
        retrieval:
          top_kk: 3
        """)
    )
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:3: retriever.mode" in out and f"{bad}:5: retrieval.top_kk" in out


def test_plan_and_schema(workdir, capsys):
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert "token budget" in out and "reserved_output" in out
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "ragkit pipeline"


def test_bad_jsonl_line_is_reported_with_file_and_line(workdir, capsys):
    (workdir / "docs" / "rows.jsonl").write_text('{"id": "a", "text": "fine"}\n{not json\n')
    assert main(["index", "docs", "--on-error", "skip", "--json"]) == 0
    captured = capsys.readouterr()
    assert "rows.jsonl:2" in captured.err
    assert json.loads(captured.out)["load_errors"] == 1


def test_usage_summarises_a_ledger(workdir, capsys):
    from ragkit.answer.ledger import JsonlLedgerWriter, Ledger

    path = workdir / "usage.jsonl"
    for latency in (10.0, 30.0):
        ledger = Ledger(clock=iter([0.0, latency / 1000]).__next__)
        with ledger.stage("generate", model="gpt-4o-mini") as stage:
            stage.input_tokens, stage.output_tokens = 1000, 100
        JsonlLedgerWriter(path).write(ledger.report())
    assert main(["usage", str(path)]) == 0
    out = capsys.readouterr().out
    assert "requests 2" in out and "generate" in out
    assert main(["usage", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 2
