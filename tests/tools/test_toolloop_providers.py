"""Parallel tool calls end to end: ``ToolLoop`` + ``Toolset`` over each provider's real SDK and a scripted server
on 127.0.0.1.

The model asks for two tools at once in its provider's wire format; the tools really run (concurrently); the next
request must carry their results in exactly the shape that provider requires; then the model answers in text.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from provider_fixtures import (
    FakeHTTPServer,
    Response,
    anthropic_message,
    anthropic_usage,
    json_response,
    openai_completion,
    openai_usage,
)

from ragkit.retry import RetryConfig, RetryPolicy
from ragkit.tools.loop import ToolLoop
from ragkit.tools.toolset import Toolset
from ragkit.types import Message

KEY_ENV = "RAGKIT_TEST_TOOLLOOP_KEY"
QUESTION = Message("user", "Price and specs of LABO-288?")
ANSWER = "LABO-288 costs 349 EUR; it holds 288 litres, energy class A."
# How long one tool waits for its sibling to start; only a toolset that runs them one after another waits it out.
RENDEZVOUS_S = 3.0

PRICES = {"LABO-288": 349.0, "ZEN-12": 89.5}
SPECS = {"LABO-288": {"litres": 288, "energy_class": "A"}, "ZEN-12": {"litres": 12, "energy_class": "B"}}
PRICE_LABO = '{"product_id": "LABO-288", "price_eur": 349.0}'
SPECS_LABO = '{"product_id": "LABO-288", "litres": 288, "energy_class": "A"}'

Call = tuple[str, str, dict[str, Any]]  # (call id, tool name, arguments); Gemini and Ollama send no ids
TWO_CALLS: list[Call] = [
    ("call_price", "get_price", {"product_id": "LABO-288"}),
    ("call_specs", "get_product_specs", {"product_id": "LABO-288"}),
]


class Shop:
    """Two tools over a tiny catalogue: records every call; with ``rendezvous`` each waits until the other started."""

    def __init__(self, *, rendezvous: bool = False, missing_specs: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, str, str]] = []  # (tool, product_id, thread it ran on)
        self.started = {"get_price": threading.Event(), "get_product_specs": threading.Event()}
        self.rendezvous = rendezvous
        self.missing_specs = missing_specs
        self.toolset = Toolset([self._get_price(), self._get_product_specs()])

    def _get_price(self) -> Callable[..., Any]:
        async def get_price(product_id: str) -> dict[str, Any]:
            """Current price of a product in euros.

            Args:
                product_id: Catalogue code, e.g. LABO-288.
            """
            self.calls.append(("get_price", product_id, threading.current_thread().name))
            self.started["get_price"].set()
            if self.rendezvous and not await asyncio.to_thread(self.started["get_product_specs"].wait, RENDEZVOUS_S):
                raise TimeoutError("get_product_specs did not start while get_price was running")
            return {"product_id": product_id, "price_eur": PRICES[product_id]}

        return get_price

    def _get_product_specs(self) -> Callable[..., Any]:
        def get_product_specs(product_id: str) -> dict[str, Any]:
            """Technical data of a product.

            Args:
                product_id: Catalogue code, e.g. LABO-288.
            """
            self.calls.append(("get_product_specs", product_id, threading.current_thread().name))
            self.started["get_product_specs"].set()
            if self.rendezvous and not self.started["get_price"].wait(RENDEZVOUS_S):
                raise TimeoutError("get_price did not start while get_product_specs was running")
            if product_id in self.missing_specs:
                raise LookupError(f"no spec sheet for {product_id}")
            return {"product_id": product_id, **SPECS[product_id]}

        return get_product_specs


# --- one backend per provider: its generator, its scripted replies, and a strict reader of its tool history ----


@dataclass
class Backend:
    name: str
    path: str
    make: Callable[[str], Any]  # server URL -> generator
    tool_turn: Callable[[list[Call], str], Response]  # the model asks for these calls (with some text)
    text_turn: Callable[[str], Response]  # the model answers
    exchanges: Callable[[dict[str, Any]], list[tuple[list[tuple[str, Any]], list[tuple[str, Any]]]]]


def no_retry() -> RetryPolicy:
    return RetryPolicy(RetryConfig(max_attempts=1))


# Each tool-calling reply reports 20 input / 5 output tokens, each answer 30 / 8,
# so summed usage says how many calls ran.


def _openai() -> Backend:
    from ragkit.providers.openai import OpenAIGenerator

    def make(url: str) -> Any:
        return OpenAIGenerator(
            model="gpt-4o-mini", base_url=url + "/v1", api_key_env=KEY_ENV, timeout_s=5.0, retry=no_retry()
        )

    def tool_turn(calls: list[Call], text: str) -> Response:
        wire = [(i, n, json.dumps(a)) for i, n, a in calls]
        return json_response(
            openai_completion(text or None, finish="tool_calls", tool_calls=wire, usage=openai_usage(20, 5))
        )

    def exchanges(body: dict[str, Any]) -> list[Any]:
        msgs = body["messages"]
        assert msgs[0] == {"role": "user", "content": QUESTION.content}
        out, i = [], 1
        while i < len(msgs):
            asked = msgs[i]
            assert asked["role"] == "assistant" and asked["tool_calls"], asked
            names = {c["id"]: c["function"]["name"] for c in asked["tool_calls"]}
            calls = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in asked["tool_calls"]]
            # One role=tool message per call, right after the assistant message, in call order, ids matching.
            results = msgs[i + 1 : i + 1 + len(calls)]
            assert [(r["role"], r["tool_call_id"]) for r in results] == [("tool", c["id"]) for c in asked["tool_calls"]]
            out.append((calls, [(names[r["tool_call_id"]], json.loads(r["content"])) for r in results]))
            i += 1 + len(calls)
        return out

    return Backend(
        "openai",
        "/v1/chat/completions",
        make,
        tool_turn,
        lambda text: json_response(openai_completion(text, usage=openai_usage(30, 8))),
        exchanges,
    )


def _anthropic() -> Backend:
    from ragkit.providers.anthropic import AnthropicGenerator

    def make(url: str) -> Any:
        return AnthropicGenerator(
            model="claude-haiku-4-5", base_url=url, api_key_env=KEY_ENV, timeout_s=5.0, retry=no_retry()
        )

    def tool_turn(calls: list[Call], text: str) -> Response:
        return json_response(
            anthropic_message(text or None, stop="tool_use", tool_uses=calls, usage=anthropic_usage(20, 5))
        )

    def exchanges(body: dict[str, Any]) -> list[Any]:
        msgs = body["messages"]
        assert msgs[0] == {"role": "user", "content": [{"type": "text", "text": QUESTION.content}]}
        assert [m["role"] for m in msgs[1:]] == ["assistant", "user"] * ((len(msgs) - 1) // 2)
        out = []
        for asked, answered in zip(msgs[1::2], msgs[2::2]):
            uses = [b for b in asked["content"] if b["type"] == "tool_use"]
            names = {b["id"]: b["name"] for b in uses}
            # ONE user message holds every result of the round, each pointing at its tool_use id.
            assert [(b["type"], b["tool_use_id"]) for b in answered["content"]] == [
                ("tool_result", b["id"]) for b in uses
            ]
            out.append(
                (
                    [(b["name"], b["input"]) for b in uses],
                    [(names[b["tool_use_id"]], json.loads(b["content"])) for b in answered["content"]],
                )
            )
        return out

    def text_turn(text: str) -> Response:
        return json_response(anthropic_message(text, usage=anthropic_usage(30, 8)))

    return Backend("anthropic", "/v1/messages", make, tool_turn, text_turn, exchanges)


GEMINI_MODEL = "gemini-2.5-flash"


def gemini_answer(parts: list[dict[str, Any]], prompt: int, output: int) -> Response:
    return json_response(
        {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {
                "promptTokenCount": prompt,
                "candidatesTokenCount": output,
                "totalTokenCount": prompt + output,
            },
            "modelVersion": GEMINI_MODEL,
            "responseId": "resp-1",
        }
    )


def _gemini() -> Backend:
    pytest.importorskip("google.genai")
    from ragkit.providers.gemini import GeminiGenerator

    def make(url: str) -> Any:
        return GeminiGenerator.from_config(
            {"model": GEMINI_MODEL, "api_key_env": KEY_ENV, "base_url": url, "timeout_s": 5}, retry=no_retry()
        )

    def tool_turn(calls: list[Call], text: str) -> Response:
        parts = ([{"text": text}] if text else []) + [{"functionCall": {"name": n, "args": a}} for _, n, a in calls]
        return gemini_answer(parts, 20, 5)

    def exchanges(body: dict[str, Any]) -> list[Any]:
        turns = body["contents"]
        assert turns[0] == {"role": "user", "parts": [{"text": QUESTION.content}]}
        assert [t["role"] for t in turns[1:]] == ["model", "user"] * ((len(turns) - 1) // 2)
        out = []
        for asked, answered in zip(turns[1::2], turns[2::2]):
            fcs = [p["functionCall"] for p in asked["parts"] if "functionCall" in p]
            # One user turn of functionResponse parts, in call order, named like the calls.
            assert [list(p) for p in answered["parts"]] == [["functionResponse"]] * len(fcs)
            responses = [p["functionResponse"] for p in answered["parts"]]
            assert [r["name"] for r in responses] == [f["name"] for f in fcs]
            out.append(
                ([(f["name"], f["args"]) for f in fcs], [(r["name"], r["response"]["output"]) for r in responses])
            )
        return out

    return Backend(
        "gemini",
        f"/v1/models/{GEMINI_MODEL}:generateContent",
        make,
        tool_turn,
        lambda text: gemini_answer([{"text": text}], 30, 8),
        exchanges,
    )


OLLAMA_MODEL = "llama3.2"


def ollama_answer(content: str, calls: list[Call], prompt: int, output: int) -> Response:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [{"function": {"name": n, "arguments": a}} for _, n, a in calls]
    return json_response(
        {
            "model": OLLAMA_MODEL,
            "created_at": "2025-01-01T00:00:00Z",
            "message": message,
            "done": True,
            "done_reason": "stop",
            "total_duration": 10,
            "load_duration": 1,
            "prompt_eval_count": prompt,
            "prompt_eval_duration": 2,
            "eval_count": output,
            "eval_duration": 3,
        }
    )


def _ollama() -> Backend:
    pytest.importorskip("ollama")
    from ragkit.providers.ollama import OllamaGenerator

    def make(url: str) -> Any:
        return OllamaGenerator.from_config({"model": OLLAMA_MODEL, "host": url, "timeout_s": 5}, retry=no_retry())

    def exchanges(body: dict[str, Any]) -> list[Any]:
        msgs = body["messages"]
        assert msgs[0] == {"role": "user", "content": QUESTION.content}
        out, i = [], 1
        while i < len(msgs):
            asked = msgs[i]
            assert asked["role"] == "assistant" and asked["tool_calls"], asked
            calls = [(c["function"]["name"], c["function"]["arguments"]) for c in asked["tool_calls"]]
            # Ollama has no call ids: one role=tool message per call, in call order, named by tool_name.
            results = msgs[i + 1 : i + 1 + len(calls)]
            assert [(r["role"], r["tool_name"]) for r in results] == [("tool", name) for name, _ in calls]
            out.append((calls, [(r["tool_name"], json.loads(r["content"])) for r in results]))
            i += 1 + len(calls)
        return out

    return Backend(
        "ollama",
        "/api/chat",
        make,
        lambda calls, text: ollama_answer(text, calls, 20, 5),
        lambda text: ollama_answer(text, [], 30, 8),
        exchanges,
    )


BACKENDS: dict[str, Callable[[], Backend]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "ollama": _ollama,
}


def backend_turn(name: str, calls: list[Call], text: str = "") -> Response:
    return BACKENDS[name]().tool_turn(calls, text)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "test-key-toolloop-0000")
    s = FakeHTTPServer()
    yield s
    s.close()


@pytest.fixture
async def open_generators():
    """Generators built in a test; their HTTP clients are closed on the test's loop."""
    made: list[Any] = []
    yield made
    for g in made:
        await g.aclose()


async def run_loop(
    name: str, server: FakeHTTPServer, made: list[Any], shop: Shop, *turns: Response, max_rounds: int = 8
):
    """Script ``turns`` for provider ``name``, run the loop over ``shop``'s tools; (reply, backend, request bodies)."""
    backend = BACKENDS[name]()
    server.script("POST", backend.path, *turns)
    generator = backend.make(server.url)
    made.append(generator)
    with shop.toolset:
        reply = await ToolLoop(generator, shop.toolset, max_rounds=max_rounds).run([QUESTION])
    bodies = [r.json for r in server.requests]
    assert [r.path.split("?")[0] for r in server.requests] == [backend.path] * len(turns)
    return reply, backend, bodies


def assert_ran_in_parallel(shop: Shop, reply: Any) -> None:
    """Both tools ran once each, the sync one in the toolset's pool, and neither waited out the rendezvous."""
    assert sorted(c[:2] for c in shop.calls) == [("get_price", "LABO-288"), ("get_product_specs", "LABO-288")]
    threads = {tool: thread for tool, _, thread in shop.calls}
    assert threads["get_product_specs"].startswith("ragkit-tool")
    assert threads["get_price"] == threading.main_thread().name  # async tools run on the event loop
    records = reply.metadata["tool_calls"]
    assert [(r.name, r.error, r.attempts) for r in records] == [("get_price", None, 1), ("get_product_specs", None, 1)]
    assert reply.metadata["tool_rounds"] == 1
    assert reply.text == ANSWER and reply.stop_reason == "stop" and not reply.tool_calls
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (20 + 30, 5 + 8)


# --- two parallel calls, one round: the exact wire shape of the results, per provider ------------------------


async def test_openai_two_tool_calls_come_back_as_one_tool_message_each(server, open_generators):
    shop = Shop(rendezvous=True)
    reply, _, (first, second) = await run_loop(
        "openai",
        server,
        open_generators,
        shop,
        backend_turn("openai", TWO_CALLS),
        BACKENDS["openai"]().text_turn(ANSWER),
    )
    assert_ran_in_parallel(shop, reply)
    assert [t["function"]["name"] for t in first["tools"]] == ["get_price", "get_product_specs"]
    assert (
        first["tools"][0]["function"]["parameters"]["required"] == ["product_id"]
        and first["parallel_tool_calls"] is True
    )
    assert second["messages"] == [
        {"role": "user", "content": QUESTION.content},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_price",
                    "type": "function",
                    "function": {"name": "get_price", "arguments": '{"product_id": "LABO-288"}'},
                },
                {
                    "id": "call_specs",
                    "type": "function",
                    "function": {"name": "get_product_specs", "arguments": '{"product_id": "LABO-288"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_price", "content": PRICE_LABO},
        {"role": "tool", "tool_call_id": "call_specs", "content": SPECS_LABO},
    ]
    assert second["tools"] == first["tools"]


async def test_anthropic_two_tool_uses_come_back_in_one_user_message(server, open_generators):
    shop = Shop(rendezvous=True)
    calls = [
        ("toolu_price", "get_price", {"product_id": "LABO-288"}),
        ("toolu_specs", "get_product_specs", {"product_id": "LABO-288"}),
    ]
    reply, _, (first, second) = await run_loop(
        "anthropic",
        server,
        open_generators,
        shop,
        BACKENDS["anthropic"]().tool_turn(calls, "Let me check both."),
        BACKENDS["anthropic"]().text_turn(ANSWER),
    )
    assert_ran_in_parallel(shop, reply)
    assert [(t["name"], t["input_schema"]["required"]) for t in first["tools"]] == [
        ("get_price", ["product_id"]),
        ("get_product_specs", ["product_id"]),
    ]
    assert second["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": QUESTION.content}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check both."},
                {"type": "tool_use", "id": "toolu_price", "name": "get_price", "input": {"product_id": "LABO-288"}},
                {
                    "type": "tool_use",
                    "id": "toolu_specs",
                    "name": "get_product_specs",
                    "input": {"product_id": "LABO-288"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_price", "content": PRICE_LABO},
                {"type": "tool_result", "tool_use_id": "toolu_specs", "content": SPECS_LABO},
            ],
        },
    ]


async def test_gemini_two_function_calls_come_back_as_function_responses(server, open_generators):
    shop = Shop(rendezvous=True)
    signature = base64.b64encode(b"sig-1").decode()
    # Gemini 2.5 sends no call ids; Gemini 3 puts a thought signature on the first call, which must be echoed.
    turn = gemini_answer(
        [
            {"functionCall": {"name": "get_price", "args": {"product_id": "LABO-288"}}, "thoughtSignature": signature},
            {"functionCall": {"name": "get_product_specs", "args": {"product_id": "LABO-288"}}},
        ],
        20,
        5,
    )
    reply, _, (first, second) = await run_loop(
        "gemini", server, open_generators, shop, turn, BACKENDS["gemini"]().text_turn(ANSWER)
    )
    assert_ran_in_parallel(shop, reply)
    (declared,) = first["tools"]
    assert [(d["name"], d["parameters"]["type"]) for d in declared["functionDeclarations"]] == [
        ("get_price", "OBJECT"),
        ("get_product_specs", "OBJECT"),
    ]
    assert second["contents"] == [
        {"role": "user", "parts": [{"text": QUESTION.content}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_price", "args": {"product_id": "LABO-288"}},
                    "thoughtSignature": signature,
                },
                {"functionCall": {"name": "get_product_specs", "args": {"product_id": "LABO-288"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_price", "response": {"output": json.loads(PRICE_LABO)}}},
                {"functionResponse": {"name": "get_product_specs", "response": {"output": json.loads(SPECS_LABO)}}},
            ],
        },
    ]


async def test_ollama_two_tool_calls_come_back_as_tool_messages(server, open_generators):
    shop = Shop(rendezvous=True)
    reply, _, (first, second) = await run_loop(
        "ollama",
        server,
        open_generators,
        shop,
        backend_turn("ollama", TWO_CALLS),
        BACKENDS["ollama"]().text_turn(ANSWER),
    )
    assert_ran_in_parallel(shop, reply)
    assert [t["function"]["name"] for t in first["tools"]] == ["get_price", "get_product_specs"]
    assert second["stream"] is False
    assert second["messages"] == [
        {"role": "user", "content": QUESTION.content},
        # The SDK leaves out empty content.
        {
            "role": "assistant",
            "tool_calls": [
                {"function": {"name": "get_price", "arguments": {"product_id": "LABO-288"}}},
                {"function": {"name": "get_product_specs", "arguments": {"product_id": "LABO-288"}}},
            ],
        },
        {"role": "tool", "content": PRICE_LABO, "tool_name": "get_price"},
        {"role": "tool", "content": SPECS_LABO, "tool_name": "get_product_specs"},
    ]


# --- three rounds: the history keeps every round in order --------------------------------------------------

ROUNDS: list[list[Call]] = [
    [("r1a", "get_price", {"product_id": "LABO-288"}), ("r1b", "get_price", {"product_id": "ZEN-12"})],
    [("r2a", "get_product_specs", {"product_id": "ZEN-12"})],
    [("r3a", "get_product_specs", {"product_id": "LABO-288"}), ("r3b", "get_price", {"product_id": "LABO-288"})],
]
ROUND_RESULTS = [
    [
        ("get_price", {"product_id": "LABO-288", "price_eur": 349.0}),
        ("get_price", {"product_id": "ZEN-12", "price_eur": 89.5}),
    ],
    [("get_product_specs", {"product_id": "ZEN-12", "litres": 12, "energy_class": "B"})],
    [
        ("get_product_specs", {"product_id": "LABO-288", "litres": 288, "energy_class": "A"}),
        ("get_price", {"product_id": "LABO-288", "price_eur": 349.0}),
    ],
]


@pytest.mark.parametrize("name", list(BACKENDS))
async def test_three_rounds_keep_every_round_in_the_history(name, server, open_generators):
    backend = BACKENDS[name]()
    shop = Shop()
    turns = [backend.tool_turn(calls, "") for calls in ROUNDS] + [backend.text_turn("ZEN-12 is cheaper.")]
    reply, backend, bodies = await run_loop(name, server, open_generators, shop, *turns)

    assert reply.text == "ZEN-12 is cheaper." and reply.metadata["tool_rounds"] == 3
    assert [r.name for r in reply.metadata["tool_calls"]] == [n for calls in ROUNDS for _, n, _ in calls]
    assert all(r.error is None for r in reply.metadata["tool_calls"])
    assert sorted(c[:2] for c in shop.calls) == sorted((n, a["product_id"]) for calls in ROUNDS for _, n, a in calls)
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (3 * 20 + 30, 3 * 5 + 8)
    expected = [([(n, a) for _, n, a in calls], results) for calls, results in zip(ROUNDS, ROUND_RESULTS)]
    # Request k carries exactly the first k-1 rounds, each as the provider requires.
    assert [backend.exchanges(body) for body in bodies] == [expected[:k] for k in range(4)]


# --- one tool raises: its error result reaches the provider in that provider's error shape --------------------

ERROR_BODY = json.dumps(
    {
        "error": "tool_error",
        "tool": "get_product_specs",
        "message": "LookupError: no spec sheet for LABO-288",
        "type": "LookupError",
        "attempts": 1,
    }
)
ERROR_SHAPES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "openai": lambda body: body["messages"][-2:],
    "anthropic": lambda body: body["messages"][-1],
    "gemini": lambda body: body["contents"][-1],
    "ollama": lambda body: body["messages"][-2:],
}
EXPECTED_ERROR_SHAPES: dict[str, Any] = {
    "openai": [
        {"role": "tool", "tool_call_id": "call_price", "content": PRICE_LABO},
        {"role": "tool", "tool_call_id": "call_specs", "content": ERROR_BODY},
    ],
    "anthropic": {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_price", "content": PRICE_LABO},
            {"type": "tool_result", "tool_use_id": "call_specs", "content": ERROR_BODY, "is_error": True},
        ],
    },
    "gemini": {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_price", "response": {"output": json.loads(PRICE_LABO)}}},
            {"functionResponse": {"name": "get_product_specs", "response": {"error": ERROR_BODY}}},
        ],
    },
    "ollama": [
        {"role": "tool", "content": PRICE_LABO, "tool_name": "get_price"},
        {"role": "tool", "content": "ERROR: " + ERROR_BODY, "tool_name": "get_product_specs"},
    ],
}


@pytest.mark.parametrize("name", list(BACKENDS))
async def test_failing_tool_reaches_the_model_as_an_error_beside_a_normal_sibling(name, server, open_generators):
    backend = BACKENDS[name]()
    shop = Shop(missing_specs=("LABO-288",))
    reply, _, (_, second) = await run_loop(
        name, server, open_generators, shop, backend.tool_turn(TWO_CALLS, ""), backend.text_turn("Price only: 349 EUR.")
    )
    assert sorted(c[:2] for c in shop.calls) == [("get_price", "LABO-288"), ("get_product_specs", "LABO-288")]
    assert [(r.name, r.error) for r in reply.metadata["tool_calls"]] == [
        ("get_price", None),
        ("get_product_specs", "tool_error"),
    ]
    assert reply.text == "Price only: 349 EUR."
    assert ERROR_SHAPES[name](second) == EXPECTED_ERROR_SHAPES[name]
