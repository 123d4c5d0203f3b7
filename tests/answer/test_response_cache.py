"""The exact response cache: SQLite, keyed on model, parameters and the full prompt, with a TTL."""

from __future__ import annotations

import pytest

from ragkit.answer.response_cache import ResponseCache, cache_key
from ragkit.config import parse_pipeline
from ragkit.pipeline import RAG
from ragkit.testing import FakeEmbedder, FakeGenerator
from ragkit.types import Document, Message, Reply, ToolCall, Usage

DOCS = [Document("ult", "POLAR-ULT-500 reaches -86 °C and costs 9,800 EUR.", {"title": "ULT"})]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_key_covers_model_parameters_and_every_message():
    msgs = [Message("system", "s"), Message("user", "q")]
    base = cache_key("m", {"max_tokens": 10}, msgs)
    assert base == cache_key("m", {"max_tokens": 10}, list(msgs))
    assert base != cache_key("m2", {"max_tokens": 10}, msgs)
    assert base != cache_key("m", {"max_tokens": 11}, msgs)
    assert base != cache_key("m", {"max_tokens": 10}, [Message("system", "s2"), Message("user", "q")])
    assert base != cache_key("m", {"max_tokens": 10}, [*msgs, Message("assistant", "a")])


def test_entries_expire_after_the_ttl_and_the_oldest_go_past_the_cap(tmp_path):
    clock = Clock()
    cache = ResponseCache(tmp_path / "r.sqlite", ttl_s=60, max_entries=2, clock=clock)
    cache.put("a", Reply("A", model="m", usage=Usage(100, 5)))
    hit = cache.get("a")
    assert hit.text == "A" and hit.usage == Usage() and hit.metadata["cached_usage"]["input_tokens"] == 100
    clock.now += 61
    assert cache.get("a") is None and len(cache) == 0
    for key in "bcd":
        clock.now += 1
        cache.put(key, Reply(key.upper()))
    assert len(cache) == 2 and cache.get("b") is None and cache.get("d").text == "D"
    # Tool-call replies and empty answers are never stored.
    assert not cache.put("t", Reply("", tool_calls=(ToolCall("1", "f", "{}"),), stop_reason="tool_calls"))
    cache.close()
    reopened = ResponseCache(tmp_path / "r.sqlite", ttl_s=60, clock=clock)
    assert reopened.get("d").text == "D"  # it persists
    reopened.close()


def make(tmp_path, **cache):
    config = parse_pipeline(
        {
            "index_dir": str(tmp_path / "idx"),
            "generators": {"local": {"type": "llamacpp"}},
            "response_cache": {"enabled": True, **cache},
        }
    )
    gen = FakeGenerator(["POLAR-ULT-500 [1].", "second answer"], context_window=4096)
    return RAG(config, generators={"local": gen}, embedder=FakeEmbedder(32)), gen


async def test_a_repeated_ask_is_answered_from_the_cache_and_costs_nothing(tmp_path):
    rag, gen = make(tmp_path)
    await rag.aindex(DOCS)
    first = await rag.aask("Which freezer reaches -86 °C?")
    again = await rag.aask("Which freezer reaches -86 °C?")
    streamed = [d async for d in rag.astream("Which freezer reaches -86 °C?")]
    other = await rag.aask("What does the freezer cost?")
    await rag.aclose()
    assert len(gen.requests) == 2  # the first question and the different one
    assert again.text == first.text == streamed[-1].reply.text == "POLAR-ULT-500 [1]."
    assert again.metadata["response_cache"] == "hit" and "response_cache" not in first.metadata
    report = again.metadata["usage_report"]
    assert report.response_cache_hits == 1 and report.input_tokens == report.output_tokens == 0
    assert first.metadata["usage_report"].response_cache_hits == 0
    assert [s.reply for s in streamed if s.reply][0].sources[0].chunk.doc_id == "ult"
    assert other.text == "second answer"
    assert (tmp_path / "idx" / "responses.sqlite").exists()


async def test_the_cache_is_off_unless_enabled(tmp_path):
    config = parse_pipeline({"index_dir": str(tmp_path / "idx"), "generators": {"local": {"type": "llamacpp"}}})
    gen = FakeGenerator(["a", "b"], context_window=4096)
    rag = RAG(config, generators={"local": gen}, embedder=FakeEmbedder(32))
    await rag.aindex(DOCS)
    assert (await rag.aask("q?")).text == "a" and (await rag.aask("q?")).text == "b"
    assert rag.response_cache is None
    await rag.aclose()


def test_bad_cache_settings_name_the_field():
    from ragkit.yaml_source import ConfigValidationError

    with pytest.raises(ConfigValidationError, match="response_cache.ttl_s"):
        parse_pipeline({"response_cache": {"enabled": True, "ttl_s": 0}})
