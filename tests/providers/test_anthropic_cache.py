"""Anthropic prompt caching: cache_control on the system prompt and the sources block when long enough, and the
cached tokens' savings in the usage report; the real ``anthropic`` SDK against a scripted server on 127.0.0.1."""

from __future__ import annotations

import pytest
from provider_fixtures import (  # noqa: F401  (fake_server is a fixture)
    anthropic_message,
    anthropic_usage,
    built,
    close_built,
    fake_server,
    json_response,
)

from ragkit.answer.ledger import Ledger, summarise
from ragkit.answer.prompting import DEFAULT_SYSTEM_PROMPT, build_messages
from ragkit.config import parse_pipeline
from ragkit.model_info import PriceTable
from ragkit.pipeline import RAG
from ragkit.providers._anthropic_cache import add_cache_control
from ragkit.providers.anthropic import AnthropicGenerator
from ragkit.retry import RetryConfig, RetryPolicy
from ragkit.testing import FakeEmbedder
from ragkit.types import Document, Message

MESSAGES = "/v1/messages"
KEY_ENV = "RAGKIT_TEST_ANTHROPIC_KEY"
LONG_SOURCE = " ".join(f"The POLAR-ULT-500 freezer holds sample rack {i} at -86 °C." for i in range(150))


@pytest.fixture(autouse=True)
async def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-ant-test-cache")
    yield
    await close_built()


@pytest.fixture
def server(fake_server):  # noqa: F811
    return fake_server


def make(server, **options) -> AnthropicGenerator:
    options = {"model": "claude-sonnet-4-5", "base_url": server.url, "api_key_env": KEY_ENV, **options}
    return built(AnthropicGenerator(retry=RetryPolicy(RetryConfig(max_attempts=1)), **options))


def rag_messages(source: str, system: str = DEFAULT_SYSTEM_PROMPT) -> list[Message]:
    history = [Message("user", "Which freezer?"), Message("assistant", "POLAR-ULT-500 [1].")]
    return build_messages("What does it hold?", [f"[1] (ULT) {source}"], system_prompt=system, history=history)


async def test_a_long_sources_block_is_marked_and_the_question_stays_outside(server):
    server.script("POST", MESSAGES, json_response(anthropic_message("Racks [1].", model="claude-sonnet-4-5")))
    await make(server).generate(rag_messages(LONG_SOURCE))
    body = server.requests[0].json
    assert isinstance(body["system"], str)  # the default system prompt alone is too short to cache
    last = body["messages"][-1]["content"]
    assert last[0]["cache_control"] == {"type": "ephemeral"}
    assert last[0]["text"].startswith("<sources>") and last[0]["text"].endswith("</sources>")
    assert "cache_control" not in last[1] and last[1]["text"] == "\n\nQuestion: What does it hold?"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


async def test_a_long_system_prompt_is_marked_too_and_short_prompts_are_left_alone(server):
    for _ in range(3):
        server.script("POST", MESSAGES, json_response(anthropic_message("ok", model="claude-sonnet-4-5")))
    gen = make(server)
    await gen.generate(rag_messages("short source", system=DEFAULT_SYSTEM_PROMPT + " " + LONG_SOURCE))
    await gen.generate(rag_messages("short source"))
    await make(server, prompt_cache=False).generate(rag_messages(LONG_SOURCE))
    long_system, short, off = (r.json for r in server.requests)
    assert long_system["system"][0]["cache_control"] == {"type": "ephemeral"}
    # The sources after a cached system prompt reach the minimum too, so they get their own breakpoint.
    assert long_system["messages"][-1]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in str(short) and "cache_control" not in str(off)


def test_haiku_needs_the_longer_prefix():
    count = lambda text: len(text.split())
    req = {"system": "x " * 1500, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert add_cache_control(dict(req), count, 2048) == 0
    assert add_cache_control(dict(req), count, 1024) == 1


async def test_cached_tokens_show_as_savings_in_the_usage_report(server, tmp_path):
    usage = anthropic_usage(200, 5, cache_read=1500)
    for _ in range(2):
        server.script("POST", MESSAGES, json_response(anthropic_message("Racks [1].", usage=usage)))
    config = parse_pipeline(
        {
            "index_dir": str(tmp_path / "idx"),
            "generators": {"claude": {"type": "anthropic", "model": "claude-haiku-4-5", "api_key_env": KEY_ENV}},
            "default_generator": "claude",
            "ledger": {"jsonl_path": str(tmp_path / "usage.jsonl")},
        }
    )
    gen = make(server, model="claude-haiku-4-5")
    rag = RAG(config, generators={"claude": gen}, embedder=FakeEmbedder(16))
    await rag.aindex([Document("ult", LONG_SOURCE, {"title": "ULT"})])
    reply = await rag.aask("What does the freezer hold?")
    await rag.aclose()
    report = reply.metadata["usage_report"]
    assert report.cached_tokens == 1500 and report.input_tokens == 1700
    # 1500 tokens at the cached rate instead of the input rate: (1.00 - 0.10) USD per million.
    assert report.cache_savings_usd == pytest.approx(1500 * 0.90 / 1e6)
    ledger = Ledger(prices=PriceTable())
    ledger.record("generate", model="claude-haiku-4-5", input_tokens=1700, output_tokens=5, cached_tokens=1500)
    assert ledger.report().cache_savings_usd == pytest.approx(report.cache_savings_usd)
    table = summarise([report]).table()
    assert "prompt cache saved $0.001350" in table
