"""BM25 through the pipeline and the CLI: statistics kept with the index across processes' worth of RAG objects,
German and English questions over a bilingual document, and the message for a stopword-only search."""

from __future__ import annotations

import json

from ragkit.cli import main
from ragkit.config import parse_pipeline
from ragkit.pipeline import RAG
from ragkit.types import Document

DOC_EN = "The Labofrost LR 288 is a laboratory refrigerator with 288 litres.\n\n"
DOC_DE = "Der Labofrost LR 288 ist ein Laborkühlschrank mit 288 Litern Nutzinhalt."
OTHER = "Polarlab ULT 500 ultra-low freezer, -86 °C, for cells and DNA.\n\nDer Ultratiefkühlschrank für Zellen."


def test_statistics_persist_and_both_languages_find_the_document(tmp_path):
    config = parse_pipeline({"index_dir": str(tmp_path / "idx")})
    rag = RAG(config)
    rag.index([Document("labo", DOC_EN + DOC_DE), Document("ult", OTHER)])
    stats = json.loads((tmp_path / "idx" / "bm25_stats.json").read_text())
    assert stats["docs"] == 2 and stats["analyzer"]["stemmer"] == "snowball"
    assert rag.search("Welcher Laborkühlschrank hat 288 Liter?", top_k=1)[0].chunk.doc_id == "labo"
    assert rag.search("laboratory refrigerators", top_k=1)[0].chunk.doc_id == "labo"
    assert rag.search("Ultratiefkühlschränke", top_k=1)[0].chunk.doc_id == "ult"
    run_sync_close(rag)
    again = RAG(config)  # a new process' view: the statistics come back from the index directory
    again.index([Document("more", "A third document about wine coolers.")])
    assert again.sparse_encoder.stats.docs == 3
    run_sync_close(again)


def run_sync_close(rag: RAG) -> None:
    from ragkit._aio import run_sync

    run_sync(rag.aclose())


def test_cli_search_says_why_a_stopword_query_finds_nothing(tmp_path, monkeypatch, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "labo.md").write_text("# LABO-288\n\n" + DOC_EN + DOC_DE)
    monkeypatch.chdir(tmp_path)
    assert main(["index", "docs"]) == 0
    capsys.readouterr()
    assert main(["search", "what is the"]) == 0
    assert "no results: the query 'what is the' has no searchable words" in capsys.readouterr().out
    assert main(["search", "LABO-288"]) == 0
    assert "labo.md" in capsys.readouterr().out
