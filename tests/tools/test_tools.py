"""FunctionTool schemas and Toolset execution: concurrency, dedup, retries, faults, bad input."""

import asyncio
import dataclasses
import json
import threading
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field

from ragkit.errors import ConfigError, RateLimited, ToolError, Unavailable
from ragkit.retry import RetryConfig
from ragkit.tools import FunctionTool, Toolset, ToolsetConfig, retrieval_tool, tool
from ragkit.types import Chunk, Hit, ToolCall


class Address(BaseModel):
    city: str
    postcode: Optional[str] = None


@dataclasses.dataclass
class Point:
    x: int
    y: int


class FakeSleep:
    """Records requested waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Gate:
    """Opens only once ``n`` callers are inside at the same time: proves they ran concurrently."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.inside = 0
        self.opened = asyncio.Event()

    async def wait(self) -> None:
        self.inside += 1
        if self.inside >= self.n:
            self.opened.set()
        await self.opened.wait()


class InFlight:
    """Measures the most concurrent holders."""

    def __init__(self) -> None:
        self.now = 0
        self.max = 0

    async def hold(self, seconds: float = 0.001) -> None:
        self.now += 1
        self.max = max(self.max, self.now)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.now -= 1


def call(name: str, args: Any = None, id: str = "c1") -> ToolCall:
    return ToolCall(id=id, name=name, arguments=args if isinstance(args, str) else json.dumps(args or {}))


def body(message) -> Any:
    return json.loads(message.content)


# --- schema -----------------------------------------------------------------------------------------------


def test_schema_from_typed_signature_and_docstring():
    def lookup(
        sku: str,
        qty: int,
        price: float = 1.5,
        urgent: bool = False,
        note: Optional[str] = None,
        tags: list[str] = [],  # noqa: B006 (the schema's default is under test)
        mode: Literal["fast", "cheap"] = "fast",
        ship_to: Optional[Address] = None,
        title: str = "",
    ) -> dict:
        """Look up a product by SKU.

        Longer explanation that is not part of the description.

        Args:
            sku: The product code,
                for example LABO-288.
            qty (int): How many.
        """
        return {}

    t = FunctionTool.from_function(lookup)
    p = t.spec.parameters
    assert t.spec.name == "lookup"
    assert t.spec.description == "Look up a product by SKU."
    assert p["type"] == "object" and p["additionalProperties"] is False
    assert p["required"] == ["sku", "qty"]
    props = p["properties"]
    assert list(props) == ["sku", "qty", "price", "urgent", "note", "tags", "mode", "ship_to", "title"]
    assert props["sku"] == {"type": "string", "description": "The product code, for example LABO-288."}
    assert props["qty"] == {"type": "integer", "description": "How many."}
    assert props["price"] == {"type": "number", "default": 1.5}
    assert props["urgent"] == {"type": "boolean", "default": False}
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "default": []}
    assert props["mode"]["enum"] == ["fast", "cheap"] and props["mode"]["default"] == "fast"
    assert {"$ref": "#/$defs/Address"} in props["ship_to"]["anyOf"]
    assert p["$defs"]["Address"]["required"] == ["city"]
    # generated titles are dropped, but a parameter that is *named* title stays
    assert "title" not in p and "title" not in props["sku"] and "title" not in p["$defs"]["Address"]
    assert props["title"] == {"type": "string", "default": ""}
    assert t.json_schema() is p


def test_schema_is_built_once_and_specs_tuple_is_stable():
    ts = Toolset([tool(lambda_free_add)])
    first = ts.specs
    assert ts.specs is first and isinstance(first, tuple)
    assert first[0].parameters is ts["lambda_free_add"].parameters
    ts.add(tool(name="other")(lambda_free_add))
    assert ts.specs is not first and [s.name for s in ts.specs] == ["lambda_free_add", "other"]


def lambda_free_add(a: int, b: int = 2) -> int:
    """Add two numbers."""
    return a + b


def test_annotated_field_description_and_bounds():
    def f(k: Annotated[int, Field(ge=1, le=9, description="how many")] = 3) -> int:
        return k

    props = FunctionTool.from_function(f).parameters["properties"]
    assert props["k"] == {"type": "integer", "minimum": 1, "maximum": 9, "description": "how many", "default": 3}


def test_bad_tool_definitions_are_config_errors():
    def star(*args: int) -> int:
        return 0

    def good(a: int) -> int:
        return a

    with pytest.raises(ConfigError, match="args"):
        FunctionTool.from_function(star)
    with pytest.raises(ConfigError, match="name"):
        FunctionTool.from_function(good, name="has space")
    with pytest.raises(ConfigError, match="side_effects"):
        FunctionTool.from_function(good, side_effects=True, retry=RetryConfig())
    with pytest.raises(ConfigError, match="timeout_s"):
        FunctionTool.from_function(good, timeout_s=0)
    with pytest.raises(ConfigError, match="already registered"):
        Toolset([good, good])


# --- results ----------------------------------------------------------------------------------------------


async def test_results_are_json_text_and_sync_and_async_both_work():
    async def model_result(city: str) -> Address:
        return Address(city=city)

    def dataclass_result(x: int) -> Point:
        return Point(x, x + 1)

    def text_result() -> str:
        return "plain text"

    ts = Toolset([model_result, dataclass_result, text_result])
    out = await ts.run_calls(
        [
            call("model_result", {"city": "Oslo"}, "a"),
            call("dataclass_result", {"x": 2}, "b"),
            call("text_result", "", "c"),
        ]
    )
    assert [m.tool_call_id for m in out] == ["a", "b", "c"]
    assert all(m.role == "tool" and not m.is_error for m in out)
    assert body(out[0]) == {"city": "Oslo", "postcode": None}
    assert body(out[1]) == {"x": 2, "y": 3}
    assert out[2].content == "plain text"


# --- concurrency ------------------------------------------------------------------------------------------


async def test_calls_of_one_round_run_concurrently():
    gate = Gate(3)

    async def wait_a(i: int) -> int:
        await gate.wait()
        return i

    async def wait_b(i: int) -> int:
        await gate.wait()
        return -i

    ts = Toolset([FunctionTool.from_function(wait_a, timeout_s=2), FunctionTool.from_function(wait_b, timeout_s=2)])
    out = await ts.run_calls(
        [call("wait_a", {"i": 1}, "1"), call("wait_b", {"i": 2}, "2"), call("wait_a", {"i": 3}, "3")]
    )
    assert [m.content for m in out] == ["1", "-2", "3"]


async def test_sync_tools_run_concurrently_in_the_thread_pool():
    barrier = threading.Barrier(4, timeout=5)

    def blocking(i: int) -> str:
        barrier.wait()  # raises BrokenBarrierError unless all four run at once
        return threading.current_thread().name

    with Toolset([blocking]) as ts:
        out = await ts.run_calls([call("blocking", {"i": i}, str(i)) for i in range(4)])
    assert not any(m.is_error for m in out), [m.content for m in out]
    assert all(m.content.startswith("ragkit-tool") for m in out)


async def test_max_concurrent_is_never_exceeded():
    meter = InFlight()

    async def work(i: int) -> int:
        await meter.hold()
        return i

    ts = Toolset([FunctionTool.from_function(work, max_concurrent=10)])
    out = await ts.run_calls([call("work", {"i": i}, f"c{i}") for i in range(100)])
    assert [int(m.content) for m in out] == list(range(100))
    assert meter.max == 10


async def test_group_limit_is_shared_and_global_limit_applies():
    meter = InFlight()

    async def a(i: int) -> int:
        await meter.hold()
        return i

    async def b(i: int) -> int:
        await meter.hold()
        return i

    ts = Toolset(
        [
            FunctionTool.from_function(a, concurrency_group="db", max_concurrent=3),
            FunctionTool.from_function(b, concurrency_group="db"),
        ]
    )
    await ts.run_calls([call(n, {"i": i}, f"{n}{i}") for i in range(10) for n in ("a", "b")])
    assert meter.max == 3

    meter2 = InFlight()

    async def c(i: int) -> int:
        await meter2.hold()
        return i

    ts2 = Toolset([c], config=ToolsetConfig(max_concurrent=4))
    await ts2.run_calls([call("c", {"i": i}, str(i)) for i in range(20)])
    assert meter2.max == 4


def test_limits_work_across_event_loops():
    async def slow(i: int) -> int:
        await asyncio.sleep(0.001)
        return i

    ts = Toolset([FunctionTool.from_function(slow, max_concurrent=1)])
    for _ in range(2):  # a semaphore bound to the first loop would fail in the second
        out = asyncio.run(ts.run_calls([call("slow", {"i": i}, str(i)) for i in range(3)]))
        assert [m.content for m in out] == ["0", "1", "2"]


# --- dedup ------------------------------------------------------------------------------------------------


async def test_identical_calls_run_once_and_every_id_is_answered():
    runs: list[str] = []

    async def search(q: str, k: int = 3) -> dict:
        runs.append(q)
        return {"q": q, "k": k}

    ts = Toolset([search])
    result = await ts.execute(
        [
            call("search", {"q": "x"}, "1"),
            call("search", '{"k": 3, "q": "x"}', "2"),  # same call: other key order, default spelled out
            call("search", {"q": "y"}, "3"),
        ]
    )
    assert sorted(runs) == ["x", "y"]
    assert [m.tool_call_id for m in result.messages] == ["1", "2", "3"]
    assert result.messages[0].content == result.messages[1].content
    assert [r.shared_with for r in result.records] == [None, "1", None]
    assert result.records[1].attempts == 0 and result.records[0].attempts == 1


async def test_side_effect_tools_are_not_deduplicated():
    sent: list[str] = []

    async def send_email(to: str) -> str:
        sent.append(to)
        return "sent"

    ts = Toolset([FunctionTool.from_function(send_email, side_effects=True)])
    out = await ts.run_calls([call("send_email", {"to": "a@b"}, "1"), call("send_email", {"to": "a@b"}, "2")])
    assert sent == ["a@b", "a@b"] and [m.content for m in out] == ["sent", "sent"]


# --- faults -----------------------------------------------------------------------------------------------


async def test_timeout_cancels_the_call_and_siblings_complete():
    cancelled = asyncio.Event()

    async def hangs() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    async def quick() -> str:
        return "done"

    ts = Toolset([FunctionTool.from_function(hangs, timeout_s=0.05), quick])
    result = await asyncio.wait_for(ts.execute([call("hangs", {}, "1"), call("quick", {}, "2")]), timeout=5)
    err, ok = result.messages
    assert err.is_error and body(err)["error"] == "timeout" and "0.05s" in body(err)["message"]
    assert ok.content == "done" and not ok.is_error
    assert cancelled.is_set()
    assert result.records[0].error == "timeout"


async def test_a_timed_out_try_is_retried_when_retries_are_configured():
    tries = 0

    async def flaky_slow() -> str:
        nonlocal tries
        tries += 1
        if tries == 1:
            await asyncio.Event().wait()
        return "second try"

    sleep = FakeSleep()
    ts = Toolset(
        [FunctionTool.from_function(flaky_slow, timeout_s=0.05, retry=RetryConfig(initial_backoff_s=1, jitter=0))],
        sleep=sleep,
    )
    result = await asyncio.wait_for(ts.execute([call("flaky_slow")]), timeout=5)
    assert result.messages[0].content == "second try"
    assert result.records[0].attempts == 2 and sleep.waits == [1.0]


async def test_exception_becomes_error_result_and_siblings_complete():
    def broken(x: int) -> int:
        raise ValueError(f"cannot handle {x}")

    async def raises_tool_error() -> int:
        raise ToolError("inventory service said no")

    def fine() -> str:
        return "fine"

    ts = Toolset([broken, raises_tool_error, fine])
    out = await ts.run_calls([call("broken", {"x": 7}, "1"), call("raises_tool_error", {}, "2"), call("fine", {}, "3")])
    assert body(out[0]) == {
        "error": "tool_error",
        "tool": "broken",
        "message": "ValueError: cannot handle 7",
        "type": "ValueError",
        "attempts": 1,
    }
    assert body(out[1])["type"] == "ToolError" and "said no" in body(out[1])["message"]
    assert out[2].content == "fine" and [m.is_error for m in out] == [True, True, False]


async def test_non_serialisable_results_become_error_results():
    def returns_object() -> Any:
        return object()

    def returns_nan() -> float:
        return float("nan")

    ts = Toolset([returns_object, returns_nan])
    out = await ts.run_calls([call("returns_object", {}, "1"), call("returns_nan", {}, "2")])
    for m, name in zip(out, ["returns_object", "returns_nan"]):
        assert m.is_error and body(m)["error"] == "unserializable_result" and body(m)["tool"] == name
    assert "object" in body(out[0])["message"]


async def test_rate_limited_tool_waits_exactly_retry_after_then_succeeds():
    tries = 0

    async def quota() -> dict:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise RateLimited("slow down", retry_after=7.0)
        return {"ok": True}

    sleep = FakeSleep()
    ts = Toolset([FunctionTool.from_function(quota, retry=RetryConfig(max_attempts=3))], sleep=sleep)
    result = await ts.execute([call("quota")])
    assert sleep.waits == [7.0]
    assert body(result.messages[0]) == {"ok": True} and not result.messages[0].is_error
    rec = result.records[0]
    assert rec.attempts == 2 and rec.retries == 1 and rec.waits == (7.0,) and rec.error is None


async def test_transient_errors_back_off_and_report_when_tries_run_out():
    tries = 0

    async def down() -> str:
        nonlocal tries
        tries += 1
        raise Unavailable("503 from inventory")

    sleep = FakeSleep()
    ts = Toolset(
        [down], config=ToolsetConfig(retry=RetryConfig(max_attempts=3, initial_backoff_s=1, jitter=0)), sleep=sleep
    )
    result = await ts.execute([call("down")])
    assert tries == 3 and sleep.waits == [1.0, 2.0]
    assert result.messages[0].is_error and body(result.messages[0])["attempts"] == 3
    assert body(result.messages[0])["type"] == "Unavailable"


async def test_non_transient_errors_are_not_retried():
    tries = 0

    def bad() -> str:
        nonlocal tries
        tries += 1
        raise KeyError("missing")

    sleep = FakeSleep()
    ts = Toolset([FunctionTool.from_function(bad, retry=RetryConfig())], sleep=sleep)
    out = await ts.run_calls([call("bad")])
    assert tries == 1 and sleep.waits == [] and out[0].is_error


async def test_side_effect_tool_is_never_retried_even_with_a_toolset_default():
    tries = 0

    async def charge_card(amount: int) -> str:
        nonlocal tries
        tries += 1
        raise Unavailable("gateway 502")

    sleep = FakeSleep()
    ts = Toolset(
        [FunctionTool.from_function(charge_card, side_effects=True)],
        config=ToolsetConfig(retry=RetryConfig(max_attempts=5)),
        sleep=sleep,
    )
    result = await ts.execute([call("charge_card", {"amount": 5})])
    assert tries == 1 and sleep.waits == []
    assert result.messages[0].is_error and result.records[0].attempts == 1


async def test_durations_use_the_injected_clock():
    ticks = iter([10.0, 12.5])

    def noop() -> str:
        return "x"

    ts = Toolset([noop], clock=lambda: next(ticks))
    result = await ts.execute([call("noop")])
    assert result.records[0].duration_s == 2.5


# --- bad input --------------------------------------------------------------------------------------------


async def test_bad_input_becomes_structured_errors_naming_the_problem():
    def order(sku: str, qty: int, ship_to: Optional[Address] = None) -> str:
        return "ordered"

    ts = Toolset([order])
    out = await ts.run_calls(
        [
            call("no_such_tool", {}, "1"),
            call("order", {"sku": "A", "qty": "many"}, "2"),
            call("order", '{"sku": "A", "qty": ', "3"),
            call("order", "[1, 2]", "4"),
            call("order", {"sku": "A"}, "5"),
            call("order", {"sku": "A", "qty": 1, "colour": "red"}, "6"),
            call("order", {"sku": "A", "qty": 1, "ship_to": {"postcode": "0150"}}, "7"),
            call("order", {"sku": "A", "qty": 2}, "8"),
        ]
    )
    errors = [body(m) for m in out[:7]]
    assert all(m.is_error for m in out[:7]) and out[7].content == "ordered"
    assert (
        errors[0]["error"] == "unknown_tool"
        and "no_such_tool" in errors[0]["message"]
        and "order" in errors[0]["message"]
    )
    assert errors[1]["error"] == "invalid_arguments" and errors[1]["problems"][0]["field"] == "qty"
    assert "integer" in errors[1]["problems"][0]["problem"]
    assert errors[2]["error"] == "invalid_json" and "line 1" in errors[2]["message"]
    assert errors[3]["error"] == "invalid_arguments" and "JSON object" in errors[3]["message"]
    assert errors[4]["problems"][0] == {"field": "qty", "problem": "Field required", "type": "missing"}
    assert errors[5]["problems"][0]["field"] == "colour" and errors[5]["problems"][0]["type"] == "extra_forbidden"
    assert errors[6]["problems"][0]["field"] == "ship_to.city"


async def test_function_never_runs_on_invalid_arguments():
    ran: list[int] = []

    def count(n: int) -> int:
        ran.append(n)
        return n

    ts = Toolset([count])
    await ts.run_calls([call("count", {"n": "x"})])
    assert ran == []


# --- retrieval tool ---------------------------------------------------------------------------------------


class FakeRetriever:
    def __init__(self) -> None:
        self.queries: list[tuple[str, int]] = []

    async def retrieve(self, query: str, top_k: int, filter=None) -> list[Hit]:
        self.queries.append((query, top_k))
        return [
            Hit(Chunk(f"d{i}#0", f"d{i}", f"{query} passage {i}", 0, 9, {"source": f"f{i}.md"}), 1.0 / (i + 1))
            for i in range(top_k)
        ]


async def test_retrieval_tool_returns_hits_from_any_retriever():
    retriever = FakeRetriever()
    t = retrieval_tool(retriever, default_top_k=2)
    assert t.name == "search_knowledge_base"
    props = t.parameters["properties"]
    assert t.parameters["required"] == ["query"] and props["top_k"]["default"] == 2 and props["top_k"]["maximum"] == 50
    ts = Toolset([t])
    out = await ts.run_calls(
        [
            call("search_knowledge_base", {"query": "freezer"}, "1"),
            call("search_knowledge_base", {"query": "fridge", "top_k": 3}, "2"),
            call("search_knowledge_base", {"query": "x", "top_k": 500}, "3"),
        ]
    )
    hits = body(out[0])
    assert [h["chunk_id"] for h in hits] == ["d0#0", "d1#0"]
    assert hits[1] == {
        "chunk_id": "d1#0",
        "doc_id": "d1",
        "text": "freezer passage 1",
        "score": 0.5,
        "metadata": {"source": "f1.md"},
    }
    assert len(body(out[1])) == 3
    assert out[2].is_error and body(out[2])["problems"][0]["field"] == "top_k"
    assert sorted(retriever.queries) == [("freezer", 2), ("fridge", 3)]


def test_tool_is_usable_directly():
    t = tool(lambda_free_add)
    assert asyncio.run(t(a=1)) == 3
    assert t.fn(1, 1) == 2
