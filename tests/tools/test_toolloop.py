"""ToolLoop: model -> tool calls -> concurrent execution -> model, until an answer or max_rounds."""

import asyncio
import json

import pytest

from ragkit.errors import ConfigError, RagkitError, ToolLoopExhausted
from ragkit.testing import FakeGenerator
from ragkit.testing.fakes import tool_call
from ragkit.tools import FunctionTool, Toolset, retrieval_tool
from ragkit.tools.loop import ToolLoop
from ragkit.types import Chunk, Hit, Message, Reply, Usage


def asks(*calls, text: str = "", usage: Usage = Usage(10, 2)) -> Reply:
    return Reply(text=text, model="fake", usage=usage, stop_reason="tool_calls", tool_calls=tuple(calls))


def answer(text: str, usage: Usage = Usage(20, 5)) -> Reply:
    return Reply(text=text, model="fake", usage=usage)


STOCK = {"LABO-288": 4, "LABO-100": 0}


def stock_level(sku: str) -> int:
    """How many units of a SKU are in stock."""
    if sku not in STOCK:
        raise KeyError(f"unknown sku {sku}")
    return STOCK[sku]


async def price(sku: str, currency: str = "EUR") -> dict:
    """The list price of a SKU."""
    return {"sku": sku, "amount": 1290 if sku == "LABO-288" else 450, "currency": currency}


@pytest.fixture
def toolset():
    with Toolset([stock_level, price]) as ts:
        yield ts


async def test_multi_round_conversation_completes(toolset):
    gen = FakeGenerator(
        [
            asks(
                tool_call("stock_level", '{"sku": "LABO-288"}', "a"),
                tool_call("price", '{"sku": "LABO-288"}', "b"),
                text="Checking.",
            ),
            asks(tool_call("price", '{"sku": "LABO-100", "currency": "NOK"}', "c")),
            answer("LABO-288: 4 in stock at 1290 EUR."),
        ]
    )
    loop = ToolLoop(gen, toolset)
    reply = await loop.run([Message("user", "Is LABO-288 in stock and what does it cost?")], max_tokens=100)

    assert reply.text == "LABO-288: 4 in stock at 1290 EUR."
    assert reply.usage == Usage(40, 9)
    assert reply.metadata["tool_rounds"] == 2
    assert [(r.call_id, r.name, r.error) for r in reply.metadata["tool_calls"]] == [
        ("a", "stock_level", None),
        ("b", "price", None),
        ("c", "price", None),
    ]
    assert len(gen.requests) == 3
    assert all(r["tools"] is toolset.specs and r["max_tokens"] == 100 for r in gen.requests)

    second = gen.requests[1]["messages"]
    assert [m.role for m in second] == ["user", "assistant", "tool", "tool"]
    assert second[1].content == "Checking." and [c.id for c in second[1].tool_calls] == ["a", "b"]
    assert (second[2].tool_call_id, second[2].name, second[2].content) == ("a", "stock_level", "4")
    assert json.loads(second[3].content) == {"sku": "LABO-288", "amount": 1290, "currency": "EUR"}
    third = gen.requests[2]["messages"]
    assert [m.role for m in third] == ["user", "assistant", "tool", "tool", "assistant", "tool"]
    assert json.loads(third[-1].content)["currency"] == "NOK"


async def test_calls_of_one_reply_run_concurrently():
    started = 0
    both = asyncio.Event()

    async def lookup(key: str) -> str:
        nonlocal started
        started += 1
        if started == 2:
            both.set()
        await both.wait()  # only returns if the sibling call is in flight too
        return key.upper()

    ts = Toolset([FunctionTool.from_function(lookup, timeout_s=2)])
    gen = FakeGenerator(
        [asks(tool_call("lookup", '{"key": "x"}', "1"), tool_call("lookup", '{"key": "y"}', "2")), answer("done")]
    )
    reply = await ToolLoop(gen, ts).run([Message("user", "go")])
    results = gen.requests[1]["messages"][2:]
    assert [(m.tool_call_id, m.content, m.is_error) for m in results] == [("1", "X", False), ("2", "Y", False)]
    assert reply.text == "done"


async def test_bad_calls_are_reported_and_the_loop_continues(toolset):
    gen = FakeGenerator(
        [
            asks(
                tool_call("stock_levels", '{"sku": "LABO-288"}', "1"),
                tool_call("stock_level", '{"sku": 288}', "2"),
                tool_call("price", '{"sku": ', "3"),
                tool_call("stock_level", '{"sku": "NOPE"}', "4"),
            ),
            asks(tool_call("stock_level", '{"sku": "LABO-288"}', "5")),
            answer("4 units."),
        ]
    )
    reply = await ToolLoop(gen, toolset).run([Message("user", "stock?")])
    assert reply.text == "4 units."
    errors = gen.requests[1]["messages"][2:]
    assert [m.tool_call_id for m in errors] == ["1", "2", "3", "4"] and all(m.is_error for m in errors)
    kinds = [json.loads(m.content)["error"] for m in errors]
    assert kinds == ["unknown_tool", "invalid_arguments", "invalid_json", "tool_error"]
    assert "unknown sku NOPE" in json.loads(errors[3].content)["message"]
    assert [r.error for r in reply.metadata["tool_calls"]] == [
        "unknown_tool",
        "invalid_arguments",
        "invalid_json",
        "tool_error",
        None,
    ]


async def test_max_rounds_raises_with_the_transcript(toolset):
    gen = FakeGenerator([asks(tool_call("stock_level", '{"sku": "LABO-288"}', "again"))])  # asks forever
    loop = ToolLoop(gen, toolset, max_rounds=3)
    with pytest.raises(ToolLoopExhausted) as info:
        await asyncio.wait_for(loop.run([Message("user", "loop")]), timeout=5)
    err = info.value
    assert isinstance(err, RagkitError)
    assert "max_rounds=3" in str(err) and "raise max_rounds" in str(err)
    assert err.rounds == 3 and len(err.records) == 3
    assert len(gen.requests) == 4
    assert [m.role for m in err.transcript] == ["user"] + ["assistant", "tool"] * 3
    assert err.transcript[-1].content == "4"


def test_max_rounds_is_validated():
    with pytest.raises(ConfigError, match="max_rounds"):
        ToolLoop(FakeGenerator(), Toolset(), max_rounds=0)


async def test_plain_answer_needs_no_tools(toolset):
    gen = FakeGenerator(["hello there"])
    reply = await ToolLoop(gen, toolset).run([Message("user", "hi")])
    assert reply.text == "hello there"
    assert reply.metadata["tool_calls"] == [] and reply.metadata["tool_rounds"] == 0


class KnowledgeBase:
    async def retrieve(self, query, top_k, filter=None):
        docs = {"freezer": "LABO-288 is a 288 litre lab freezer.", "fridge": "LABO-100 is a 100 litre fridge."}
        return [Hit(Chunk(f"{k}#0", k, v, 0, len(v)), 0.9) for k, v in docs.items() if k in query][:top_k]


async def test_retrieval_tool_inside_the_loop():
    ts = Toolset([retrieval_tool(KnowledgeBase(), default_top_k=3)])
    gen = FakeGenerator(
        [
            asks(tool_call("search_knowledge_base", '{"query": "lab freezer size"}', "s")),
            answer("It holds 288 litres [freezer#0]."),
        ]
    )
    reply = await ToolLoop(gen, ts).run([Message("user", "How big is the lab freezer?")])
    result = gen.requests[1]["messages"][-1]
    assert json.loads(result.content)[0]["chunk_id"] == "freezer#0"
    assert gen.requests[0]["tools"][0].name == "search_knowledge_base"
    assert reply.text.endswith("[freezer#0].")


def test_run_sync(toolset):
    gen = FakeGenerator([asks(tool_call("price", '{"sku": "LABO-100"}', "p")), answer("450 EUR")])
    reply = ToolLoop(gen, toolset, max_rounds=2).run_sync([Message("user", "price?")])
    assert reply.text == "450 EUR" and reply.metadata["tool_calls"][0].name == "price"
