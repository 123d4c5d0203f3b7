"""The RAG pipeline end to end on real chunking, a real Qdrant engine and the fakes for models."""

import json

import pytest

from ragkit.config import parse_pipeline
from ragkit.errors import BudgetError
from ragkit.pipeline import RAG
from ragkit.testing import FakeEmbedder, FakeGenerator
from ragkit.types import Document

DOCS = [
    Document(
        "labo", "LABO-288 is a laboratory refrigerator with 288 litres and a range of 2 to 8 °C.", {"title": "LABO-288"}
    ),
    Document(
        "ult", "POLAR-ULT-500 is an ultra-low freezer that reaches -86 °C with 500 litres.", {"title": "POLAR-ULT-500"}
    ),
    Document("vax", "KN-VAX-98 stores vaccines between 2 and 8 °C and has an SMS alarm.", {"title": "KN-VAX-98"}),
]


def make(tmp_path, script=("The freezer is POLAR-ULT-500 [1].",), **extra):
    config = parse_pipeline(
        {"index_dir": str(tmp_path / "idx"), "generators": {"local": {"type": "llamacpp"}}, **extra}
    )
    gen = FakeGenerator(script, context_window=2048)
    return RAG(config, generators={"local": gen}, embedder=FakeEmbedder(32)), gen


async def test_index_search_ask_cites_sources(tmp_path):
    rag, gen = make(tmp_path)
    report = await rag.aindex(DOCS)
    assert report.docs_indexed == 3 and report.chunks_written == 3
    hits = await rag.asearch("ultra-low freezer -86", top_k=2)
    assert hits[0].chunk.doc_id == "ult"
    reply = await rag.aask("Which freezer reaches -86 °C?")
    assert reply.text.startswith("The freezer is POLAR-ULT-500")
    assert reply.sources and reply.sources[0].chunk.doc_id == "ult"
    sent = gen.requests[-1]["messages"]
    assert sent[0].role == "system" and "[1]" in sent[-1].content and "POLAR-ULT-500" in sent[-1].content
    plan = reply.metadata["plan"]
    assert plan.final_tokens <= plan.limit
    assert reply.metadata["usage_report"].stages[0].stage == "retrieve"
    await rag.aclose()


async def test_reindex_is_incremental(tmp_path):
    rag, _ = make(tmp_path)
    await rag.aindex(DOCS)
    again = await rag.aindex(DOCS)
    assert again.docs_unchanged == 3 and again.chunks_embedded == 0
    await rag.aclose()


async def test_stream_ends_with_reply_and_sources(tmp_path):
    rag, _ = make(tmp_path, script=("KN-VAX-98 has an SMS alarm [1].",))
    await rag.aindex(DOCS)
    deltas = [d async for d in rag.astream("Which fridge has an SMS alarm?")]
    text = "".join(d.text for d in deltas)
    assert text.strip() == "KN-VAX-98 has an SMS alarm [1]."
    assert deltas[-1].reply is not None and deltas[-1].reply.sources
    await rag.aclose()


async def test_question_longer_than_budget_is_an_error(tmp_path):
    rag, _ = make(tmp_path, budget={"context_window": 300, "reserved_output_tokens": 64})
    await rag.aindex(DOCS)
    with pytest.raises(BudgetError, match="question"):
        await rag.aask("why " * 400)
    await rag.aclose()


async def test_usage_lines_are_written(tmp_path):
    log = tmp_path / "usage.jsonl"
    rag, _ = make(tmp_path, ledger={"jsonl_path": str(log)})
    await rag.aindex(DOCS)
    await rag.aask("What holds 288 litres?")
    await rag.aask("What holds 500 litres?")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 2 and {s["stage"] for s in rows[0]["stages"]} >= {"retrieve", "assemble", "generate"}
    await rag.aclose()


async def test_router_falls_back_when_strong_generator_has_no_key(tmp_path, monkeypatch):
    monkeypatch.delenv("RAGKIT_TEST_MISSING_KEY", raising=False)
    config = parse_pipeline(
        {
            "index_dir": str(tmp_path / "idx"),
            "generators": {
                "local": {"type": "llamacpp"},
                "strong": {"type": "openai", "model": "gpt-4o-mini", "api_key_env": "RAGKIT_TEST_MISSING_KEY"},
            },
            "router": {"type": "rules", "threshold": 0.0},
            "routing": {"fallback_chain": ["local"]},
        }
    )
    local = FakeGenerator(("local answer [1]",), context_window=2048)
    rag = RAG(config, generators={"local": local}, embedder=FakeEmbedder(32))
    await rag.aindex(DOCS)
    reply = await rag.aask("Compare LABO-288 and POLAR-ULT-500: which is larger, and which is colder?")
    route = reply.metadata["route"]
    assert route["planned_generator"] == "strong" and route["generator"] == "local"
    assert route["fallbacks_taken"][0]["error"] == "ConfigError"
    assert "RAGKIT_TEST_MISSING_KEY" in route["fallbacks_taken"][0]["message"]
    await rag.aclose()
