"""OpenAIGenerator / OpenAIEmbedder: the real ``openai`` SDK talking HTTP to a scripted server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import logging
import math
import subprocess
import sys
import traceback
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from provider_fixtures import (  # noqa: F401  (fake_server is a fixture)
    FakeSleep,
    built,
    close_built,
    fake_server,  # noqa: F401 (a fixture, used by name)
    json_response,
    openai_chunks,
    openai_completion,
    openai_embeddings,
    openai_error,
    openai_usage,
    sse_response,
)

from ragkit import registry
from ragkit.errors import (
    AuthError,
    BadRequest,
    ConfigError,
    ContextOverflow,
    RateLimited,
    Timeout,
    Unavailable,
)
from ragkit.providers._http import parse_retry_after
from ragkit.providers.openai import OpenAIEmbedder, OpenAIGenerator, known_context_window
from ragkit.retry import RetryConfig, RetryPolicy
from ragkit.testing import EmbedderContract, GeneratorContract
from ragkit.tokens import TIKTOKEN_SAFETY_MARGIN, TiktokenCounter
from ragkit.types import Message, ToolCall, ToolSpec

CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
KEY_ENV = "RAGKIT_TEST_OPENAI_KEY"
SECRET = "sk-test-RAGKIT-do-not-leak-7f3a9c"


def no_retry() -> RetryPolicy:
    return RetryPolicy(RetryConfig(max_attempts=1))


def hello(req):
    body = req.json
    if body.get("stream"):
        return sse_response(openai_chunks(model=body["model"]))
    return json_response(openai_completion(model=body["model"]))


def hashed_vectors(req):
    """Deterministic 8-dim vectors from the text, so equal texts embed equally."""
    body = req.json
    vectors = []
    for text in body["input"]:
        digest = hashlib.sha256(text.encode()).digest()
        vectors.append([b / 255.0 - 0.5 for b in digest[: body.get("dimensions", 8)]])
    return json_response(openai_embeddings(vectors, model=body["model"]))


@pytest.fixture(autouse=True)
async def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    yield
    await close_built()


@pytest.fixture
def server(fake_server):  # noqa: F811 (the imported fixture)
    fake_server.default("POST", CHAT, hello)
    fake_server.default("POST", EMBED, hashed_vectors)
    return fake_server


def make(server, retry: RetryPolicy | None = None, **options) -> OpenAIGenerator:
    options = {
        "model": "gpt-4o-mini",
        "base_url": server.url + "/v1",
        "api_key_env": KEY_ENV,
        "timeout_s": 5.0,
        **options,
    }
    return built(OpenAIGenerator(retry=retry or no_retry(), **options))


LOOKUP = ToolSpec(
    "lookup",
    "Look up a product by SKU.",
    {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
)
STOCK = ToolSpec("stock", "Units in stock for a SKU.", {"type": "object", "properties": {"sku": {"type": "string"}}})


class TestContract(GeneratorContract):
    @pytest.fixture
    def generator(self, server):
        return make(server)


class TestEmbedderContract(EmbedderContract):
    @pytest.fixture
    def embedder(self, server):
        return built(
            OpenAIEmbedder(model="local-embed", dim=8, base_url=server.url + "/v1", api_key_env=None, retry=no_retry())
        )


# --- requests and replies -------------------------------------------------------------------------------------


async def test_chat_request_and_reply(server):
    server.script(
        "POST",
        CHAT,
        json_response(openai_completion("LABO-288 holds 288 litres.", usage=openai_usage(40, 7, cached=32))),
    )
    gen = make(server, temperature=0.2, max_output_tokens=77)
    reply = await gen.generate(
        [Message("system", "Answer from the context."), Message("user", "How big is LABO-288?", name="ana")]
    )

    (req,) = server.requests
    assert req.headers["authorization"] == f"Bearer {SECRET}"
    assert req.json == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Answer from the context."},
            {"role": "user", "content": "How big is LABO-288?", "name": "ana"},
        ],
        "max_tokens": 77,
        "temperature": 0.2,
    }
    assert reply.text == "LABO-288 holds 288 litres."
    assert reply.model == "gpt-4o-mini"
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens) == (40, 7, 32)
    assert reply.stop_reason == "stop"


async def test_call_max_tokens_overrides_config_and_field_name_is_configurable(server):
    gen = make(server, max_tokens_field="max_completion_tokens")
    await gen.generate([Message("user", "hi")], max_tokens=5)
    assert server.requests[0].json["max_completion_tokens"] == 5
    assert "max_tokens" not in server.requests[0].json


def test_official_api_gets_max_completion_tokens(monkeypatch):
    gen = OpenAIGenerator(model="gpt-4o", api_key_env=KEY_ENV)
    assert "max_completion_tokens" in gen._request([Message("user", "x")], None, None, None, stream=False)


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("stop", "stop"), ("length", "length"), ("content_filter", "content_filter"), ("weird", "unknown")],
)
async def test_stop_reasons(server, finish, expected):
    server.script("POST", CHAT, json_response(openai_completion("x", finish=finish)))
    assert (await make(server).generate([Message("user", "hi")])).stop_reason == expected


async def test_json_schema_becomes_response_format(server):
    schema = {
        "title": "Answer card",
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    server.script("POST", CHAT, json_response(openai_completion('{"answer": "288 litres"}')))
    reply = await make(server).generate([Message("user", "size?")], json_schema=schema)
    assert server.requests[0].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Answer_card", "schema": schema},
    }
    assert reply.text == '{"answer": "288 litres"}'
    await make(server, json_mode="json_object").generate([Message("user", "size?")], json_schema=schema)
    assert server.requests[1].json["response_format"] == {"type": "json_object", "schema": schema}


async def test_refusal_is_reported_as_content_filter(server):
    body = openai_completion(None)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."
    server.script("POST", CHAT, json_response(body))
    reply = await make(server).generate([Message("user", "x")], json_schema={"type": "object"})
    assert (
        reply.stop_reason == "content_filter"
        and reply.text == ""
        and reply.metadata["refusal"] == "I can't help with that."
    )


async def test_stream_sends_include_usage_and_assembles_reply(server):
    gen = make(server)
    deltas = [d async for d in gen.stream([Message("user", "hi")], max_tokens=9)]
    body = server.requests[0].json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 9
    assert [d.text for d in deltas[:-1]] == ["Hel", "lo", " there!"]
    final = deltas[-1].reply
    assert final.text == "Hello there!" and final.usage.output_tokens == 3 and final.stop_reason == "stop"


async def test_stream_assembles_parallel_tool_call_fragments(server):
    calls = [("call_a", "lookup", ['{"sku"', ': "LABO-288"}']), ("call_b", "stock", ['{"sku": ', '"LABO-288"}'])]
    server.script("POST", CHAT, sse_response(openai_chunks((), finish="tool_calls", tool_calls=calls)))
    deltas = [d async for d in make(server).stream([Message("user", "check")], tools=[LOOKUP, STOCK])]
    final = deltas[-1]
    assert final.tool_calls == (
        ToolCall("call_a", "lookup", '{"sku": "LABO-288"}'),
        ToolCall("call_b", "stock", '{"sku": "LABO-288"}'),
    )
    assert final.reply.stop_reason == "tool_calls" and final.reply.text == ""


async def test_error_inside_stream_is_mapped(server):
    server.script("POST", CHAT, json_response(openai_error("overloaded", type="server_error"), status=503))
    with pytest.raises(Unavailable):
        [d async for d in make(server).stream([Message("user", "hi")])]


# --- tools ----------------------------------------------------------------------------------------------------


async def test_tool_specs_are_sent_in_function_shape_and_converted_once(server):
    gen = make(server)
    tools = [LOOKUP, STOCK]
    await gen.generate([Message("user", "a")], tools=tools)
    await gen.generate([Message("user", "b")], tools=tools)
    sent = [r.json for r in server.requests]
    assert sent[0]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look up a product by SKU.",
                "parameters": dict(LOOKUP.parameters),
            },
        },
        {
            "type": "function",
            "function": {
                "name": "stock",
                "description": "Units in stock for a SKU.",
                "parameters": dict(STOCK.parameters),
            },
        },
    ]
    assert sent[0]["parallel_tool_calls"] is True and sent[1]["tools"] == sent[0]["tools"]
    assert gen.tool_shapes(tools) is gen.tool_shapes(tools)
    assert gen.tool_shapes([STOCK]) is not gen.tool_shapes(tools)


async def test_two_round_conversation_with_parallel_tool_calls(server):
    server.script(
        "POST",
        CHAT,
        json_response(
            openai_completion(
                None,
                finish="tool_calls",
                tool_calls=[("call_a", "lookup", '{"sku": "LABO-288"}'), ("call_b", "stock", '{"sku": "LABO-288"}')],
            )
        ),
        json_response(openai_completion("LABO-288: 288 litres, 4 in stock.")),
    )
    gen = make(server)
    history = [Message("system", "Use tools."), Message("user", "Size and stock of LABO-288?")]
    first = await gen.generate(history, tools=[LOOKUP, STOCK])
    assert first.stop_reason == "tool_calls" and first.text == ""
    assert first.tool_calls == (
        ToolCall("call_a", "lookup", '{"sku": "LABO-288"}'),
        ToolCall("call_b", "stock", '{"sku": "LABO-288"}'),
    )

    history += [
        Message("assistant", "", tool_calls=first.tool_calls),
        Message("tool", '{"litres": 288}', tool_call_id="call_a"),
        Message("tool", "lookup failed: timeout", tool_call_id="call_b", is_error=True),
    ]
    second = await gen.generate(history, tools=[LOOKUP, STOCK])
    assert second.text == "LABO-288: 288 litres, 4 in stock." and second.stop_reason == "stop"
    assert server.requests[1].json["messages"][2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"sku": "LABO-288"}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "stock", "arguments": '{"sku": "LABO-288"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"litres": 288}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "lookup failed: timeout"},
    ]


async def test_tool_message_without_call_id_is_rejected_before_sending(server):
    with pytest.raises(BadRequest, match=r"messages\[0\].*tool_call_id"):
        await make(server).generate([Message("tool", "x")])
    assert server.requests == []


# --- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "text"),
    [
        (400, openai_error("Invalid value for 'temperature'"), {}, BadRequest, "temperature"),
        (
            400,
            openai_error(
                "This model's maximum context length is 128000 tokens. "
                "However, your messages resulted in 130000 tokens.",
                code="context_length_exceeded",
            ),
            {},
            ContextOverflow,
            "lower the context budget or max_tokens",
        ),
        (
            401,
            openai_error("Incorrect API key provided", type="invalid_request_error", code="invalid_api_key"),
            {},
            AuthError,
            "API key",
        ),
        (403, openai_error("Project does not have access"), {}, AuthError, "403"),
        (
            404,
            openai_error("The model `gpt-9` does not exist or you do not have access to it.", code="model_not_found"),
            {},
            BadRequest,
            "check the `model` field",
        ),
        (422, openai_error("unprocessable"), {}, BadRequest, "422"),
        (429, openai_error("Rate limit reached", type="requests"), {}, RateLimited, "Rate limit"),
        (500, openai_error("internal", type="server_error"), {}, Unavailable, "500"),
        (503, openai_error("overloaded", type="server_error"), {}, Unavailable, "503"),
    ],
)
async def test_status_maps_to_ragkit_error_without_sdk_retry(server, status, body, headers, error, text):
    server.script("POST", CHAT, json_response(body, status=status, headers=headers))
    with pytest.raises(error, match=text) as info:
        await make(server).generate([Message("user", "hi")])
    assert type(info.value) is error and info.value.status == status
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("headers", "expected"), [({}, None), ({"retry-after": "2"}, 2.0), ({"retry-after-ms": "1500"}, 1.5)]
)
async def test_rate_limit_carries_retry_after(server, headers, expected):
    server.script("POST", CHAT, json_response(openai_error("slow down"), status=429, headers=headers))
    with pytest.raises(RateLimited) as info:
        await make(server).generate([Message("user", "hi")])
    assert info.value.retry_after == expected


def test_retry_after_http_date():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()
    date = format_datetime(datetime(2025, 1, 1, 12, 0, 7, tzinfo=timezone.utc), usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=lambda: now) == 7.0
    assert parse_retry_after({"Retry-After": "soon"}) is None


async def test_timeout(server):
    server.script("POST", CHAT, json_response(openai_completion(), delay=1.0))
    with pytest.raises(Timeout, match="0.2 s"):
        await make(server, timeout_s=0.2).generate([Message("user", "hi")])
    assert len(server.requests) == 1


async def test_connection_refused_is_unavailable(server):
    url = server.url
    server.close()
    gen = built(OpenAIGenerator(model="gpt-4o-mini", base_url=url + "/v1", api_key_env=None, retry=no_retry()))
    with pytest.raises(Unavailable):
        await gen.generate([Message("user", "hi")])


# --- the one retry layer --------------------------------------------------------------------------------------


async def test_retry_after_is_honoured_once_then_success(server):
    server.script("POST", CHAT, json_response(openai_error("slow down"), status=429, headers={"retry-after": "2"}))
    sleep = FakeSleep()
    reply = await make(server, RetryPolicy(RetryConfig(max_attempts=3), sleep=sleep)).generate([Message("user", "hi")])
    assert sleep.waits == [2.0]
    assert reply.text == "Hello there!" and reply.metadata["retries"] == 1
    assert len(server.requests) == 2


@pytest.mark.parametrize(("status", "error"), [(503, Unavailable), (429, RateLimited)])
async def test_persistent_transient_failure_follows_backoff_schedule(server, status, error):
    failing = json_response(openai_error("try later", type="server_error"), status=status)
    server.script("POST", CHAT, *[failing] * 5)
    sleep = FakeSleep()
    policy = RetryPolicy(
        RetryConfig(max_attempts=4, initial_backoff_s=0.5, multiplier=2, jitter=0.1), sleep=sleep, rand=lambda: 0.5
    )
    with pytest.raises(error):
        await make(server, policy).generate([Message("user", "hi")])
    assert sleep.waits == pytest.approx([0.525, 1.05, 2.1])
    assert len(server.requests) == 4


async def test_bad_request_is_never_retried(server):
    server.script("POST", CHAT, json_response(openai_error("bad"), status=400))
    sleep = FakeSleep()
    with pytest.raises(BadRequest):
        await make(server, RetryPolicy(RetryConfig(max_attempts=4), sleep=sleep)).generate([Message("user", "hi")])
    assert len(server.requests) == 1 and sleep.waits == []


async def test_stream_retries_a_failure_before_the_first_delta(server):
    server.script("POST", CHAT, json_response(openai_error("busy"), status=503))
    sleep = FakeSleep()
    gen = make(server, RetryPolicy(RetryConfig(max_attempts=2, jitter=0), sleep=sleep))
    deltas = [d async for d in gen.stream([Message("user", "hi")])]
    assert deltas[-1].reply.text == "Hello there!" and sleep.waits == [0.5] and len(server.requests) == 2


# --- secrets and configuration --------------------------------------------------------------------------------


async def test_api_key_never_leaks(server, caplog):
    caplog.set_level(logging.DEBUG)
    echo = openai_error(
        f"Incorrect API key provided: {SECRET}. You can find your API key at ...", code="invalid_api_key"
    )
    server.script("POST", CHAT, json_response(echo, status=401))
    gen = make(server)
    with pytest.raises(AuthError) as info:
        await gen.generate([Message("user", "hi")])
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # the key was really used
    formatted = "".join(traceback.format_exception(info.value))
    for text in (str(info.value), repr(info.value), formatted, repr(gen), repr(gen.config), caplog.text):
        assert SECRET not in text
    assert "[redacted]" in str(info.value)


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match=KEY_ENV):
        OpenAIGenerator(model="gpt-4o-mini", api_key_env=KEY_ENV)


def test_keyless_needs_a_base_url():
    with pytest.raises(ConfigError, match="api_key_env"):
        OpenAIGenerator(model="gpt-4o-mini", api_key_env=None)


async def test_keyless_local_server_never_gets_a_real_key(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    gen = built(
        OpenAIGenerator(
            model="local-model", context_window=4096, base_url=server.url + "/v1", api_key_env=None, retry=no_retry()
        )
    )
    reply = await gen.generate([Message("user", "hi")])
    assert reply.text == "Hello there!"
    assert SECRET not in server.requests[0].headers.get("authorization", "")


def test_context_window_from_table_override_or_error():
    assert OpenAIGenerator(model="gpt-4o-mini-2024-07-18", api_key_env=KEY_ENV).context_window == 128_000
    assert known_context_window("gpt-4-0613") == 8_192 and known_context_window("o1-mini") == 128_000
    assert OpenAIGenerator(model="gpt-4o", context_window=4096, api_key_env=KEY_ENV).context_window == 4096
    with pytest.raises(ConfigError, match="context_window"):
        OpenAIGenerator(model="my-finetune", base_url="http://127.0.0.1:1/v1", api_key_env=None)


def test_from_config_validates_fields():
    gen = OpenAIGenerator.from_config({"model": "gpt-4o", "api_key_env": KEY_ENV}, retry=no_retry())
    assert gen.id == "openai:gpt-4o" and gen.config.model_dump()["api_key_env"] == KEY_ENV
    with pytest.raises(ConfigError, match="max_output_tokens"):
        OpenAIGenerator.from_config({"model": "gpt-4o", "api_key_env": KEY_ENV, "max_output_tokens": 0})
    with pytest.raises(ConfigError, match="api_key"):
        OpenAIGenerator.from_config({"model": "gpt-4o", "api_key": SECRET})


def test_count_tokens_exact_for_openai_models_padded_otherwise():
    text = "LABO-288 is a 288 litre laboratory fridge with a glass door."
    exact = TiktokenCounter(model="gpt-4o").count(text)
    assert OpenAIGenerator(model="gpt-4o", api_key_env=KEY_ENV).count_tokens(text) == exact
    local = OpenAIGenerator(model="llama-3-8b", context_window=8192, base_url="http://127.0.0.1:1/v1", api_key_env=None)
    assert local.count_tokens(text) == math.ceil(
        TiktokenCounter("cl100k_base").count(text) * (1 + TIKTOKEN_SAFETY_MARGIN)
    )


def test_sync_facade_works_across_event_loops(server):
    gen = make(server)
    assert gen.generate_sync([Message("user", "one")]).text == "Hello there!"
    assert gen.generate_sync([Message("user", "two")]).text == "Hello there!"


def test_registry_and_lazy_sdk_import():
    assert registry.resolve("generator", "openai") is OpenAIGenerator
    assert registry.resolve("embedder", "openai") is OpenAIEmbedder
    code = "import sys, ragkit.providers.openai; assert 'openai' not in sys.modules, 'SDK imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- embeddings -----------------------------------------------------------------------------------------------


async def test_embedder_request_batches_and_dimensions(server):
    emb = built(
        OpenAIEmbedder(
            model="text-embedding-3-small",
            dimensions=4,
            max_batch=2,
            base_url=server.url + "/v1",
            api_key_env=KEY_ENV,
            retry=no_retry(),
        )
    )
    assert emb.dim == 4 and emb.id == "openai:text-embedding-3-small:4"
    vectors = await emb.embed_batch(["a", "b", "c", "d", ""])
    assert len(vectors) == 5 and all(len(v) == 4 for v in vectors)
    bodies = [r.json for r in server.requests]
    assert [b["input"] for b in bodies] == [["a", "b"], ["c", "d"], [" "]]
    assert all(
        b["dimensions"] == 4 and b["encoding_format"] == "float" and b["model"] == "text-embedding-3-small"
        for b in bodies
    )


async def test_embedder_keeps_order_by_index(server):
    body = openai_embeddings([[1.0, 0.0], [0.0, 1.0]])
    body["data"].reverse()
    server.script("POST", EMBED, json_response(body))
    emb = built(OpenAIEmbedder(model="m", dim=2, base_url=server.url + "/v1", api_key_env=None, retry=no_retry()))
    assert await emb.embed_batch(["first", "second"]) == [[1.0, 0.0], [0.0, 1.0]]


async def test_embedder_wrong_dim_and_batch_cap(server):
    emb = built(OpenAIEmbedder(model="m", dim=16, base_url=server.url + "/v1", api_key_env=None, retry=no_retry()))
    with pytest.raises(ConfigError, match="8-dim vectors but dim is 16"):
        await emb.embed_batch(["x"])
    with pytest.raises(ConfigError, match="max_batch"):
        OpenAIEmbedder(model="text-embedding-3-small", api_key_env=KEY_ENV, max_batch=4096)
    with pytest.raises(ConfigError, match="dim"):
        OpenAIEmbedder(model="unknown-embedder", base_url="http://127.0.0.1:1/v1", api_key_env=None)
    assert OpenAIEmbedder(model="text-embedding-3-large", api_key_env=KEY_ENV).max_batch == 2048


async def test_embedder_errors_are_mapped(server):
    server.script("POST", EMBED, json_response(openai_error("slow"), status=429, headers={"retry-after": "3"}))
    emb = built(OpenAIEmbedder(model="m", dim=8, base_url=server.url + "/v1", api_key_env=None, retry=no_retry()))
    with pytest.raises(RateLimited) as info:
        await emb.embed_batch(["x"])
    assert info.value.retry_after == 3.0


def test_wire_fixtures_match_the_sdk_types():
    from openai.types import CreateEmbeddingResponse
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    ChatCompletion.model_validate(openai_completion(None, tool_calls=[("c", "f", "{}")]), strict=True)
    for _, data in openai_chunks(tool_calls=[("c", "f", ["{}"])])[:-1]:
        ChatCompletionChunk.model_validate(data, strict=True)
    CreateEmbeddingResponse.model_validate(openai_embeddings([[0.1, 0.2]]), strict=True)


async def test_pipeline_builds_it_from_a_validated_block(server):
    from ragkit.config import ComponentSpec
    from ragkit.pipeline import build_component

    config = OpenAIGenerator.Config.model_validate(
        {"model": "qwen2.5-0.5b", "context_window": 4096, "base_url": server.url + "/v1", "api_key_env": None}
    )
    gen = built(build_component(ComponentSpec("generator", "openai", config), retry=no_retry(), counter=object()))
    assert isinstance(gen, OpenAIGenerator) and gen.retry.config.max_attempts == 1
    assert (await gen.generate([Message("user", "hi")])).text == "Hello there!"


async def test_injected_http_client_is_used():
    import httpx2

    seen = []

    def handler(request):
        seen.append(request.url.path)
        return httpx2.Response(200, json=openai_completion("via injected client"))

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
        gen = OpenAIGenerator(model="gpt-4o", api_key_env=KEY_ENV, http_client=http, retry=no_retry())
        assert (await gen.generate([Message("user", "hi")])).text == "via injected client"
    assert seen == ["/v1/chat/completions"]
