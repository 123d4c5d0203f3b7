"""AnthropicGenerator: the real ``anthropic`` SDK talking HTTP to a scripted server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import traceback

import pytest
from provider_fixtures import (  # noqa: F401  (fake_server is a fixture)
    FakeSleep,
    anthropic_error,
    anthropic_events,
    anthropic_message,
    anthropic_usage,
    built,
    close_built,
    fake_server,  # noqa: F401 (a fixture, used by name)
    json_response,
    sse_response,
)

from ragkit import registry
from ragkit.errors import AuthError, BadRequest, ConfigError, ContextOverflow, RateLimited, Timeout, Unavailable
from ragkit.providers.anthropic import AnthropicGenerator, convert_messages
from ragkit.retry import RetryConfig, RetryPolicy
from ragkit.testing import GeneratorContract
from ragkit.types import Message, ToolCall, ToolSpec

MESSAGES = "/v1/messages"
KEY_ENV = "RAGKIT_TEST_ANTHROPIC_KEY"
SECRET = "sk-ant-test-RAGKIT-do-not-leak-41b2"
LOOKUP = ToolSpec(
    "lookup",
    "Look up a product by SKU.",
    {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
)
STOCK = ToolSpec("stock", "Units in stock for a SKU.", {"type": "object", "properties": {"sku": {"type": "string"}}})


def sent_key(req) -> str:
    """The key as sent: ``x-api-key``, or a bearer token in newer SDKs."""
    return req.headers.get("x-api-key") or req.headers.get("authorization", "").removeprefix("Bearer ")


def no_retry() -> RetryPolicy:
    return RetryPolicy(RetryConfig(max_attempts=1))


def hello(req):
    body = req.json
    if body.get("stream"):
        return sse_response(anthropic_events(model=body["model"]))
    return json_response(anthropic_message(model=body["model"]))


@pytest.fixture(autouse=True)
async def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    yield
    await close_built()


@pytest.fixture
def server(fake_server):  # noqa: F811 (the imported fixture)
    fake_server.default("POST", MESSAGES, hello)
    return fake_server


def make(server, retry: RetryPolicy | None = None, **options) -> AnthropicGenerator:
    options = {"model": "claude-haiku-4-5", "base_url": server.url, "api_key_env": KEY_ENV, "timeout_s": 5.0, **options}
    return built(AnthropicGenerator(retry=retry or no_retry(), **options))


class TestContract(GeneratorContract):
    @pytest.fixture
    def generator(self, server):
        return make(server)


# --- requests and replies -------------------------------------------------------------------------------------


async def test_system_goes_top_level_and_max_tokens_is_always_sent(server):
    server.script(
        "POST", MESSAGES, json_response(anthropic_message("288 litres.", usage=anthropic_usage(10, 4, cache_read=30)))
    )
    gen = make(server, max_output_tokens=321)
    reply = await gen.generate(
        [
            Message("system", "Answer from the context."),
            Message("system", "Be brief."),
            Message("user", "How big is LABO-288?"),
        ]
    )
    (req,) = server.requests
    assert sent_key(req) == SECRET and "anthropic-version" in req.headers
    assert req.json == {
        "model": "claude-haiku-4-5",
        "max_tokens": 321,
        "system": "Answer from the context.\n\nBe brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "How big is LABO-288?"}]}],
    }
    assert reply.text == "288 litres." and reply.model == "claude-haiku-4-5" and reply.stop_reason == "stop"
    # input_tokens counts the whole prompt, cache reads included.
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens) == (40, 4, 30)


async def test_call_max_tokens_temperature_and_json_schema(server):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    server.script("POST", MESSAGES, json_response(anthropic_message('{"answer": "288"}')))
    reply = await make(server, temperature=0.3).generate([Message("user", "size?")], max_tokens=12, json_schema=schema)
    body = server.requests[0].json
    assert body["max_tokens"] == 12 and body["temperature"] == 0.3 and "system" not in body
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert json.loads(reply.text) == {"answer": "288"}


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "unknown"),
    ],
)
async def test_stop_reasons(server, stop, expected):
    server.script("POST", MESSAGES, json_response(anthropic_message("x", stop=stop)))
    assert (await make(server).generate([Message("user", "hi")])).stop_reason == expected


async def test_stream_events_assemble_text_usage_and_tool_input(server):
    events = anthropic_events(
        ("Checking", " now."),
        stop="tool_use",
        input_tokens=20,
        output_tokens=17,
        cache_read=5,
        tool_uses=[("toolu_1", "lookup", ['{"sku": ', '"LABO-288"}']), ("toolu_2", "stock", [])],
    )
    server.script("POST", MESSAGES, sse_response(events))
    deltas = [
        d
        async for d in make(server).stream(
            [Message("system", "s"), Message("user", "check")], max_tokens=50, tools=[LOOKUP]
        )
    ]
    body = server.requests[0].json
    assert body["stream"] is True and body["system"] == "s" and body["max_tokens"] == 50
    assert [d.text for d in deltas[:-1]] == ["Checking", " now."]
    final = deltas[-1]
    assert final.tool_calls == (
        ToolCall("toolu_1", "lookup", '{"sku": "LABO-288"}'),
        ToolCall("toolu_2", "stock", "{}"),
    )
    reply = final.reply
    assert reply.text == "Checking now." and reply.stop_reason == "tool_calls"
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens) == (25, 17, 5)


async def test_error_event_inside_stream_is_mapped(server):
    events = anthropic_events(("Hi",))[:3] + [("error", anthropic_error("Overloaded", type="overloaded_error"))]
    server.script("POST", MESSAGES, sse_response(events))
    with pytest.raises(Unavailable, match="Overloaded") as info:
        [d async for d in make(server).stream([Message("user", "hi")])]
    assert info.value.status == 529


# --- tools ----------------------------------------------------------------------------------------------------


async def test_tools_shape_and_cache(server):
    gen = make(server)
    tools = [LOOKUP, STOCK]
    await gen.generate([Message("user", "a")], tools=tools)
    assert server.requests[0].json["tools"] == [
        {"name": "lookup", "description": "Look up a product by SKU.", "input_schema": dict(LOOKUP.parameters)},
        {"name": "stock", "description": "Units in stock for a SKU.", "input_schema": dict(STOCK.parameters)},
    ]
    assert gen.tool_shapes(tools) is gen.tool_shapes(tools)


async def test_two_round_conversation_puts_parallel_results_in_one_user_message(server):
    server.script(
        "POST",
        MESSAGES,
        json_response(
            anthropic_message(
                "Let me check.",
                stop="tool_use",
                tool_uses=[("toolu_a", "lookup", {"sku": "LABO-288"}), ("toolu_b", "stock", {"sku": "LABO-288"})],
            )
        ),
        json_response(anthropic_message("LABO-288 holds 288 litres.")),
    )
    gen = make(server)
    history = [Message("system", "Use tools."), Message("user", "Size and stock of LABO-288?")]
    first = await gen.generate(history, tools=[LOOKUP, STOCK])
    assert first.stop_reason == "tool_calls" and first.text == "Let me check."
    assert first.tool_calls == (
        ToolCall("toolu_a", "lookup", '{"sku": "LABO-288"}'),
        ToolCall("toolu_b", "stock", '{"sku": "LABO-288"}'),
    )

    history += [
        Message("assistant", first.text, tool_calls=first.tool_calls),
        Message("tool", '{"litres": 288}', tool_call_id="toolu_a"),
        Message("tool", "stock service timed out", tool_call_id="toolu_b", is_error=True),
    ]
    second = await gen.generate(history, tools=[LOOKUP, STOCK])
    assert second.text == "LABO-288 holds 288 litres."
    body = server.requests[1].json
    assert body["system"] == "Use tools."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Size and stock of LABO-288?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_a", "name": "lookup", "input": {"sku": "LABO-288"}},
                {"type": "tool_use", "id": "toolu_b", "name": "stock", "input": {"sku": "LABO-288"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": '{"litres": 288}'},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_b",
                    "content": "stock service timed out",
                    "is_error": True,
                },
            ],
        },
    ]


def test_consecutive_same_role_messages_are_merged():
    system, messages = convert_messages(
        [
            Message("user", "first"),
            Message("user", "second"),
            Message("assistant", ""),
            Message("assistant", "a"),
            Message("tool", "r", tool_call_id="t1"),
            Message("user", "and then?"),
        ]
    )
    assert system is None
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "r"},
                {"type": "text", "text": "and then?"},
            ],
        },
    ]


def test_bad_tool_messages_are_rejected():
    with pytest.raises(BadRequest, match=r"messages\[0\].*tool_call_id"):
        convert_messages([Message("tool", "x")])
    with pytest.raises(BadRequest, match=r"messages\[1\].*not JSON"):
        convert_messages([Message("user", "q"), Message("assistant", "", tool_calls=(ToolCall("t", "f", "{oops"),))])


# --- errors and retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (400, anthropic_error("max_tokens: must be positive"), BadRequest, "max_tokens"),
        (
            400,
            anthropic_error("prompt is too long: 210000 tokens > 200000 maximum"),
            ContextOverflow,
            "lower the context budget",
        ),
        (401, anthropic_error("invalid x-api-key", type="authentication_error"), AuthError, "API key"),
        (403, anthropic_error("forbidden", type="permission_error"), AuthError, "403"),
        (404, anthropic_error("model: claude-nope", type="not_found_error"), BadRequest, "check the `model` field"),
        (429, anthropic_error("Number of requests exceeded", type="rate_limit_error"), RateLimited, "exceeded"),
        (500, anthropic_error("Internal", type="api_error"), Unavailable, "500"),
        (503, anthropic_error("unavailable", type="api_error"), Unavailable, "503"),
        (529, anthropic_error("Overloaded", type="overloaded_error"), Unavailable, "529"),
    ],
)
async def test_status_maps_to_ragkit_error_without_sdk_retry(server, status, body, error, text):
    server.script("POST", MESSAGES, json_response(body, status=status))
    with pytest.raises(error, match=text) as info:
        await make(server).generate([Message("user", "hi")])
    assert type(info.value) is error and info.value.status == status
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("headers", "expected"), [({}, None), ({"retry-after": "2"}, 2.0), ({"retry-after-ms": "250"}, 0.25)]
)
async def test_rate_limit_carries_retry_after(server, headers, expected):
    server.script(
        "POST", MESSAGES, json_response(anthropic_error("slow", type="rate_limit_error"), status=429, headers=headers)
    )
    with pytest.raises(RateLimited) as info:
        await make(server).generate([Message("user", "hi")])
    assert info.value.retry_after == expected


async def test_timeout(server):
    server.script("POST", MESSAGES, json_response(anthropic_message(), delay=1.0))
    with pytest.raises(Timeout):
        await make(server, timeout_s=0.2).generate([Message("user", "hi")])
    assert len(server.requests) == 1


async def test_retry_after_two_seconds_then_success(server):
    server.script(
        "POST",
        MESSAGES,
        json_response(anthropic_error("slow", type="rate_limit_error"), status=429, headers={"retry-after": "2"}),
    )
    sleep = FakeSleep()
    reply = await make(server, RetryPolicy(RetryConfig(max_attempts=3), sleep=sleep)).generate([Message("user", "hi")])
    assert sleep.waits == [2.0] and reply.text == "Hello there!" and len(server.requests) == 2


@pytest.mark.parametrize(("status", "error"), [(529, Unavailable), (429, RateLimited)])
async def test_persistent_transient_failure_follows_backoff_schedule(server, status, error):
    failing = json_response(anthropic_error("busy", type="overloaded_error"), status=status)
    server.script("POST", MESSAGES, *[failing] * 5)
    sleep = FakeSleep()
    policy = RetryPolicy(RetryConfig(max_attempts=4, initial_backoff_s=1.0, multiplier=3, jitter=0), sleep=sleep)
    with pytest.raises(error):
        await make(server, policy).generate([Message("user", "hi")])
    assert sleep.waits == [1.0, 3.0, 9.0] and len(server.requests) == 4


async def test_bad_request_is_never_retried(server):
    server.script("POST", MESSAGES, json_response(anthropic_error("bad"), status=400))
    sleep = FakeSleep()
    with pytest.raises(BadRequest):
        await make(server, RetryPolicy(RetryConfig(max_attempts=4), sleep=sleep)).generate([Message("user", "hi")])
    assert len(server.requests) == 1 and sleep.waits == []


# --- secrets and configuration --------------------------------------------------------------------------------


async def test_api_key_never_leaks(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.script(
        "POST",
        MESSAGES,
        json_response(anthropic_error(f"invalid x-api-key {SECRET}", type="authentication_error"), status=401),
    )
    gen = make(server)
    with pytest.raises(AuthError) as info:
        await gen.generate([Message("user", "hi")])
    assert sent_key(server.requests[0]) == SECRET
    formatted = "".join(traceback.format_exception(info.value))
    for text in (str(info.value), repr(info.value), formatted, repr(gen), repr(gen.config), caplog.text):
        assert SECRET not in text


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match=KEY_ENV) as info:
        AnthropicGenerator(model="claude-haiku-4-5", api_key_env=KEY_ENV)
    assert SECRET not in str(info.value)


def test_config_context_window_and_registry():
    assert AnthropicGenerator(model="claude-haiku-4-5", api_key_env=KEY_ENV).context_window == 200_000
    assert (
        AnthropicGenerator(model="claude-haiku-4-5", api_key_env=KEY_ENV, context_window=1_000_000).context_window
        == 1_000_000
    )
    with pytest.raises(ConfigError, match="context_window"):
        AnthropicGenerator(model="someone-elses-model", api_key_env=KEY_ENV)
    with pytest.raises(ConfigError, match="temperature"):
        AnthropicGenerator.from_config({"model": "claude-haiku-4-5", "api_key_env": KEY_ENV, "temperature": 3})
    gen = AnthropicGenerator.from_config({"model": "claude-haiku-4-5", "api_key_env": KEY_ENV})
    assert gen.id == "anthropic:claude-haiku-4-5" and gen.count_tokens("hello world") > 0
    assert registry.resolve("generator", "anthropic") is AnthropicGenerator
    code = "import sys, ragkit.providers.anthropic; assert 'anthropic' not in sys.modules, 'SDK imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sync_facade_works_across_event_loops(server):
    gen = make(server)
    assert gen.generate_sync([Message("user", "one")]).text == "Hello there!"
    assert gen.generate_sync([Message("user", "two")]).text == "Hello there!"


def test_wire_fixtures_match_the_sdk_types():
    from anthropic.types import Message as WireMessage
    from anthropic.types import RawMessageStreamEvent
    from pydantic import TypeAdapter

    WireMessage.model_validate(anthropic_message("x", tool_uses=[("t", "f", {"a": 1})]))
    adapter = TypeAdapter(RawMessageStreamEvent)
    for name, data in anthropic_events(tool_uses=[("t", "f", ["{}"])]):
        if name != "ping":
            assert adapter.validate_python(data).type == name
