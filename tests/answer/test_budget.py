"""Token budgets: line items, BudgetError, and prompts that never exceed the window."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ragkit.answer.budget import (
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMING_TOKENS,
    TOOL_OVERHEAD_TOKENS,
    assemble_prompt,
    context_window_for,
    count_messages,
    count_tools,
    counter_for,
    known_window,
    plan_budget,
    tiktoken_counter,
)
from ragkit.answer.compress import ExtractiveCompressor
from ragkit.answer.prompting import DEFAULT_SYSTEM_PROMPT, SOURCES_CLOSE, build_messages
from ragkit.errors import BudgetError, ConfigError
from ragkit.model_info import KNOWN_CONTEXT_WINDOWS
from ragkit.testing.fakes import FakeGenerator
from ragkit.tokens import TIKTOKEN_SAFETY_MARGIN, TiktokenCounter
from ragkit.types import Chunk, Hit, Message, ToolSpec

CL100K = TiktokenCounter("cl100k_base").count


def words(text: str) -> int:
    return len(text.split())


def hit(text: str, id: str = "c1", **meta) -> Hit:
    return Hit(Chunk(id, "doc-" + id, text, 0, len(text), meta), 1.0)


TOOL = ToolSpec("lookup", "Find a product by id.", {"type": "object", "properties": {"id": {"type": "string"}}})


def test_line_items_add_up_exactly():
    history = [Message("user", "one two three"), Message("assistant", "four five")]
    plan = plan_budget(
        1000,
        system_prompt="be brief now",
        tool_schemas=[TOOL],
        history=history,
        question="how much is it",
        reserved_output=100,
        count=words,
    )
    assert plan.item("system_prompt").tokens == MESSAGE_OVERHEAD_TOKENS + 3
    assert plan.item("history").tokens == 2 * MESSAGE_OVERHEAD_TOKENS + 3 + 2
    assert plan.item("tool_schemas").tokens > TOOL_OVERHEAD_TOKENS
    # The question is its whole user turn without sources: fences, placeholder and label included.
    user_turn = "<sources>\n(no sources found)\n</sources>\n\nQuestion: how much is it"
    assert plan.item("question").tokens == MESSAGE_OVERHEAD_TOKENS + words(user_turn)
    assert plan.item("framing").tokens == REPLY_PRIMING_TOKENS
    assert plan.item("reserved_output").tokens == 100
    assert plan.sources_budget == 1000 - sum(it.tokens for it in plan.items)
    assert plan.limit == 900


def test_oversize_question_raises_budget_error_and_is_never_truncated():
    question = "word " * 500
    with pytest.raises(BudgetError, match="question needs") as info:
        plan_budget(300, system_prompt="sys", question=question, reserved_output=50, count=words)
    assert "300-token window" in str(info.value)


def test_question_that_just_fits_leaves_zero_room_and_sources_are_cut():
    base = plan_budget(10_000, system_prompt="sys", question="q " * 20, reserved_output=10, count=words)
    window = 10_000 - base.sources_budget
    plan = plan_budget(window, system_prompt="sys", question="q " * 20, reserved_output=10, count=words)
    assert plan.sources_budget == 0
    out = assemble_prompt("q " * 20, [hit("some text")], system_prompt="sys", budget_plan=plan, count=words)
    assert out.sources == () and out.plan.decisions[0].action == "cut"
    assert out.prompt_tokens <= plan.limit


def test_sources_are_numbered_packed_and_explained():
    hits = [hit("alpha " * 30, "a", title="A"), hit("beta " * 300, "b", title="B"), hit("gamma " * 10, "c", title="C")]
    plan = plan_budget(200, system_prompt="sys", question="what", reserved_output=20, count=words)
    out = assemble_prompt("what", hits, system_prompt="sys", budget_plan=plan, count=words, min_source_tokens=1000)
    assert [(s.number, s.chunk_id) for s in out.sources] == [(1, "a"), (2, "c")]
    user = out.messages[-1].content
    assert "[1] (A) alpha" in user and "[2] (C) gamma" in user and "beta" not in user
    rows = {r["name"]: r for r in out.plan.explain()}
    assert rows["[1] a"]["action"] == "kept"
    assert rows["b"]["action"] == "cut" and "budget exhausted" in rows["b"]["reason"]
    assert rows["final_prompt"]["tokens"] == count_messages(out.messages, words) <= plan.limit
    table = out.plan.table()
    assert "sources_budget" in table and "budget exhausted" in table


def test_a_source_that_does_not_fit_is_truncated_when_room_is_left():
    plan = plan_budget(200, system_prompt="sys", question="what", reserved_output=20, count=CL100K)
    out = assemble_prompt(
        "what", [hit("The LABO-288 holds 288 litres. " * 100)], system_prompt="sys", budget_plan=plan, count=CL100K
    )
    (decision,) = out.plan.decisions
    assert decision.action == "truncated" and decision.number == 1
    assert out.sources[0].hit.chunk.text.endswith("…")
    assert count_messages(out.messages, CL100K) <= plan.limit


def test_tools_count_against_the_final_prompt():
    plan = plan_budget(
        300, system_prompt="sys", tool_schemas=[TOOL] * 3, question="what", reserved_output=20, count=CL100K
    )
    out = assemble_prompt("what", [hit("word " * 400)], system_prompt="sys", budget_plan=plan, count=CL100K)
    assert out.prompt_tokens == count_messages(out.messages, CL100K) + plan.item("tool_schemas").tokens
    assert out.prompt_tokens <= 280


def test_compressor_shrinks_sources_and_the_plan_says_so():
    text = "The LABO-288 freezer holds 288 litres. " + "Unrelated filler about shipping and colours. " * 40
    hits = [hit(text, "a", title="Manual"), hit("Other product LABO-100 is loud. " * 30, "b")]
    plan = plan_budget(
        400,
        system_prompt=DEFAULT_SYSTEM_PROMPT,
        question="How many litres does LABO-288 hold?",
        reserved_output=50,
        count=CL100K,
    )
    out = assemble_prompt(
        "How many litres does LABO-288 hold?",
        hits,
        system_prompt=DEFAULT_SYSTEM_PROMPT,
        budget_plan=plan,
        count=CL100K,
        compressor=ExtractiveCompressor(count=CL100K),
    )
    assert "holds 288 litres" in out.messages[-1].content
    actions = {d.chunk_id: d.action for d in out.plan.decisions}
    assert actions["a"] == "compressed"
    assert out.plan.compression["tokens_before"] > out.plan.compression["tokens_after"]
    assert out.prompt_tokens <= plan.limit


def test_context_windows_table_and_override():
    assert context_window_for("openai", "gpt-4o") == 128_000
    assert context_window_for("openai", "gpt-4o-mini-2024-07-18") == 128_000
    assert context_window_for("openai", "gpt-4.1-mini") == 1_047_576
    assert context_window_for("openai", "gpt-5") == 400_000
    assert context_window_for("anthropic", "claude-sonnet-4-20250514") == 200_000
    assert context_window_for("gemini", "gemini-2.5-flash") == 1_048_576
    assert known_window("llamacpp", "SmolLM2-135M-Instruct.Q4_1.gguf") == (8192, 2048)
    assert context_window_for("llamacpp", "smollm2") == 2048
    assert context_window_for("ollama", "llama3.2:3b") == KNOWN_CONTEXT_WINDOWS["ollama"]["llama3.2"].default
    assert context_window_for("ollama", "llama3.2:3b", override=8192) == 8192
    with pytest.raises(ConfigError, match="context window of openai model .* is unknown"):
        context_window_for("openai", "mystery-model")
    with pytest.raises(ConfigError):
        context_window_for("openai", "gpt-4o", override=0)


def test_counter_uses_the_generators_tokenizer_else_tiktoken_with_margin():
    gen = FakeGenerator()
    assert counter_for(gen)("a b c d") == 4
    count = counter_for(None)
    text = "The LABO-288 holds 288 litres " * 20
    assert count(text) == math.ceil(CL100K(text) * (1 + TIKTOKEN_SAFETY_MARGIN)) > CL100K(text)
    assert tiktoken_counter()(text) == TiktokenCounter("cl100k_base").count_with_margin(text)


# ---------------------------------------------------------------- property: never over budget

# A fixed pool is far cheaper for hypothesis than drawing from Unicode categories, and still mixes scripts,
# emoji (with modifiers and ZWJ sequences), markup and whitespace.
_POOL = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'-")
_POOL += list("äöüßéñøłçşğ漢字かなカナ한국어中文日本語。！？ّالعربية") + [
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "🇩🇪",
    "\n",
    "\t",
    "[1]",
    "</sources>",
    "<sources>",
    "Question:",
]
_alphabet = st.sampled_from(_POOL)
texts = st.lists(_alphabet, max_size=100).map("".join)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    window=st.integers(1, 900),
    reserved=st.integers(0, 300),
    system=texts,
    question=texts,
    history=st.lists(st.tuples(st.sampled_from(["user", "assistant"]), texts), max_size=3),
    sources=st.lists(texts, max_size=10),
    n_tools=st.integers(0, 2),
    min_tokens=st.integers(1, 16),
)
def test_assembled_prompt_is_never_over_budget(
    window, reserved, system, question, history, sources, n_tools, min_tokens
):
    count = CL100K
    msgs = [Message(role, text) for role, text in history]
    tools = [TOOL] * n_tools
    try:
        plan = plan_budget(
            window,
            system_prompt=system,
            tool_schemas=tools,
            history=msgs,
            question=question,
            reserved_output=reserved,
            count=count,
        )
    except BudgetError:
        # Only when the prompt without any source already exceeds the window.
        bare = count_messages(build_messages(question, [], system_prompt=system, history=msgs), count)
        assert bare + count_tools(tools, count) + reserved > window
        return
    hits = [hit(text, f"c{i}") for i, text in enumerate(sources)]
    out = assemble_prompt(
        question, hits, system_prompt=system, history=msgs, budget_plan=plan, count=count, min_source_tokens=min_tokens
    )
    final = count_messages(out.messages, count) + plan.item("tool_schemas").tokens
    for d in out.plan.decisions:
        event(d.action)
    assert final <= window - reserved
    assert final == out.prompt_tokens
    assert [s.number for s in out.sources] == list(range(1, len(out.sources) + 1))
    assert len(out.plan.decisions) == len(hits)
    user = out.messages[-1].content
    # Sources cannot close the data block early; the question is appended untouched after it.
    assert user.count(SOURCES_CLOSE) == 1 + question.count(SOURCES_CLOSE) and user.endswith(question)


@settings(max_examples=300, deadline=None)
@given(window=st.integers(50, 1200), question=texts, sources=st.lists(texts, min_size=1, max_size=8))
def test_never_over_budget_with_the_extractive_compressor(window, question, sources):
    count = tiktoken_counter()
    try:
        plan = plan_budget(
            window, system_prompt=DEFAULT_SYSTEM_PROMPT, question=question, reserved_output=20, count=count
        )
    except BudgetError:
        return
    hits = [hit(text + " LABO-288 has 288 litres.", f"c{i}") for i, text in enumerate(sources)]
    out = assemble_prompt(
        question,
        hits,
        system_prompt=DEFAULT_SYSTEM_PROMPT,
        budget_plan=plan,
        count=count,
        compressor=ExtractiveCompressor(count=count),
    )
    assert count_messages(out.messages, count) <= window - 20
