"""Ollama provider: the real ollama SDK (httpx) answered by respx in Ollama's wire format."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import httpx
import pytest
import respx

from ragkit.errors import AuthError, BadRequest, ConfigError, ContextOverflow, RateLimited, Timeout, Unavailable
from ragkit.retry import RetryConfig, RetryPolicy
from ragkit.testing import EmbedderContract, GeneratorContract
from ragkit.types import Message, ToolSpec

pytest.importorskip("ollama")
from ragkit.providers.ollama import OllamaEmbedder, OllamaGenerator, ollama_tool  # noqa: E402

HOST = "http://ollama.test:11434"
MODEL = "llama3.2"
FAKE_TOKEN = "olm-FAKE-proxy-token-9876543210-do-not-leak"


class OllamaWire:
    """Scripted /api/chat and /api/embed answers; records the JSON bodies the SDK sent."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.chat: list[dict[str, Any]] = []
        self.embed: list[dict[str, Any]] = []
        self.chat_script: list[httpx.Response | Exception] = []
        self.headers: list[httpx.Headers] = []
        router.post(f"{HOST}/api/chat").mock(side_effect=self._chat)
        router.post(f"{HOST}/api/embed").mock(side_effect=self._embed)

    def _chat(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.chat.append(body)
        self.headers.append(request.headers)
        if self.chat_script:
            item = self.chat_script.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        if body.get("stream"):
            return ndjson([chunk("Hel"), chunk("lo!"), final(prompt=4, output=2)])
        return httpx.Response(200, json=final(content="Hello!", prompt=9, output=3))

    def _embed(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.embed.append(body)
        vectors = [[float(len(t)), float(sum(map(ord, t)) % 97), 1.0] for t in body["input"]]
        return httpx.Response(
            200, json={"model": body["model"], "embeddings": vectors, "total_duration": 1000, "prompt_eval_count": 5}
        )


def chunk(content: str = "", tool_calls: list[Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"model": MODEL, "created_at": "2025-01-01T00:00:00Z", "message": message, "done": False}


def final(
    content: str = "", prompt: int = 5, output: int = 2, reason: str = "stop", tool_calls: list[Any] | None = None
) -> dict[str, Any]:
    out = chunk(content, tool_calls) | {
        "done": True,
        "done_reason": reason,
        "total_duration": 10,
        "load_duration": 1,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": 2,
        "eval_count": output,
        "eval_duration": 3,
    }
    return out


def ndjson(parts: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(
        200,
        content="".join(json.dumps(p) + "\n" for p in parts).encode(),
        headers={"content-type": "application/x-ndjson"},
    )


def error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": message})


async def fake_sleep(seconds: float) -> None:
    fake_sleep.waits.append(seconds)  # type: ignore[attr-defined]


fake_sleep.waits = []  # type: ignore[attr-defined]


@pytest.fixture
def wire():
    with respx.mock(assert_all_called=False) as router:
        yield OllamaWire(router)


def make_generator(**overrides: Any) -> OllamaGenerator:
    return OllamaGenerator.from_config(
        {"model": MODEL, "host": HOST, **overrides},
        retry=RetryPolicy(RetryConfig(max_attempts=3, jitter=0), sleep=fake_sleep),
    )


@pytest.fixture
async def gen(wire):
    g = make_generator()
    yield g
    await g.aclose()


WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"anyOf": [{"type": "string", "enum": ["C", "F"]}, {"type": "null"}], "default": None},
        },
        "required": ["city"],
    },
)


class TestOllamaGeneratorContract(GeneratorContract):
    @pytest.fixture
    async def generator(self, gen):
        return gen


class TestOllamaEmbedderContract(EmbedderContract):
    @pytest.fixture
    async def embedder(self, wire):
        e = OllamaEmbedder.from_config({"model": "tiny-embed", "dim": 3, "host": HOST})
        yield e
        await e.aclose()


# ---------------------------------------------------------------- requests and replies


async def test_chat_request_and_reply(wire, gen):
    reply = await gen.generate([Message("system", "Be brief."), Message("user", "Say hello.")], max_tokens=16)
    (body,) = wire.chat
    assert body == {
        "model": MODEL,
        "stream": False,
        "tools": [],
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}],
        "options": {"num_ctx": 8192, "num_predict": 16},
    }
    assert "authorization" not in wire.headers[0]
    assert reply.text == "Hello!" and reply.model == MODEL
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (9, 3)
    assert reply.stop_reason == "stop" and reply.metadata["done_reason"] == "stop"


async def test_options_keep_alive_temperature_and_context_window(wire):
    g = make_generator(num_ctx=32768, keep_alive="10m", temperature=0.2, max_tokens=99)
    assert g.context_window == 32768
    await g.generate([Message("user", "x")])
    body = wire.chat[0]
    assert body["options"] == {"num_ctx": 32768, "num_predict": 99, "temperature": 0.2}
    assert body["keep_alive"] == "10m"
    await g.aclose()


async def test_length_done_reason(wire, gen):
    wire.chat_script.append(httpx.Response(200, json=final(content="cut", reason="length")))
    assert (await gen.generate([Message("user", "x")])).stop_reason == "length"


async def test_stream_is_ndjson_and_ends_with_reply(wire, gen):
    deltas = [d async for d in gen.stream([Message("user", "Say hello.")], max_tokens=8)]
    assert wire.chat[0]["stream"] is True and wire.chat[0]["options"]["num_predict"] == 8
    assert [d.text for d in deltas[:-1]] == ["Hel", "lo!"]
    final_reply = deltas[-1].reply
    assert final_reply.text == "Hello!" and final_reply.usage.output_tokens == 2 and final_reply.usage.input_tokens == 4


async def test_stream_cut_short_is_unavailable(wire, gen):
    gen.retry = RetryPolicy(RetryConfig(max_attempts=1))
    wire.chat_script.append(ndjson([chunk("Hel")]))
    with pytest.raises(Unavailable, match="ended before"):
        [d async for d in gen.stream([Message("user", "x")])]


async def test_stream_error_line_mid_stream(wire, gen):
    gen.retry = RetryPolicy(RetryConfig(max_attempts=1))
    wire.chat_script.append(
        httpx.Response(
            200,
            content=(
                json.dumps(chunk("Hi")) + "\n" + json.dumps({"error": "model runner has unexpectedly stopped"}) + "\n"
            ).encode(),
        )
    )
    deltas = []
    with pytest.raises(Unavailable, match="unexpectedly stopped"):
        async for d in gen.stream([Message("user", "x")]):
            deltas.append(d)
    assert [d.text for d in deltas] == ["Hi"]


async def test_json_output_sends_schema_as_format(wire, gen):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    wire.chat_script.append(httpx.Response(200, json=final(content='{"name": "Ada"}')))
    reply = await gen.generate([Message("user", "who?")], json_schema=schema)
    assert wire.chat[0]["format"] == schema
    assert json.loads(reply.text) == {"name": "Ada"}


# ---------------------------------------------------------------- tools

CALLS = [
    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
    {"function": {"name": "get_weather", "arguments": {"city": "Rome", "unit": "C"}}},
]


async def test_tools_shape_and_two_calls(wire, gen):
    wire.chat_script.append(httpx.Response(200, json=final(tool_calls=CALLS)))
    reply = await gen.generate([Message("user", "Weather in Paris and Rome?")], tools=[WEATHER])
    assert wire.chat[0]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": {
                    "type": "object",
                    "required": ["city"],
                    "properties": {
                        "city": {"type": "string", "description": "City name"},
                        "unit": {"type": "string", "enum": ["C", "F"]},
                    },
                },
            },
        }
    ]
    assert reply.stop_reason == "tool_calls" and len(reply.tool_calls) == 2
    a, b = reply.tool_calls
    assert a.id and b.id and a.id != b.id
    assert (a.name, json.loads(a.arguments), json.loads(b.arguments)) == (
        "get_weather",
        {"city": "Paris"},
        {"city": "Rome", "unit": "C"},
    )


async def test_tool_results_as_tool_messages_and_two_rounds(wire, gen):
    wire.chat_script += [
        httpx.Response(200, json=final(tool_calls=CALLS)),
        httpx.Response(200, json=final(content="Paris 20C, Rome 25C.")),
    ]
    history = [Message("user", "Weather in Paris and Rome?")]
    first = await gen.generate(history, tools=[WEATHER])
    history += [
        Message("assistant", "", tool_calls=first.tool_calls),
        Message("tool", '{"temp": 20}', tool_call_id=first.tool_calls[0].id),
        Message("tool", "no data", tool_call_id=first.tool_calls[1].id, is_error=True),
    ]
    second = await gen.generate(history, tools=[WEATHER])
    assert second.text == "Paris 20C, Rome 25C." and second.stop_reason == "stop"
    assert wire.chat[1]["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "tool_calls": CALLS},
        {"role": "tool", "content": '{"temp": 20}', "tool_name": "get_weather"},
        {"role": "tool", "content": "ERROR: no data", "tool_name": "get_weather"},
    ]


async def test_streamed_tool_calls(wire, gen):
    wire.chat_script.append(ndjson([chunk(tool_calls=CALLS[:1]), chunk(tool_calls=CALLS[1:]), final()]))
    deltas = [d async for d in gen.stream([Message("user", "x")], tools=[WEATHER])]
    assert [json.loads(c.arguments)["city"] for d in deltas for c in d.tool_calls] == ["Paris", "Rome"]
    assert deltas[-1].reply.stop_reason == "tool_calls" and len(deltas[-1].reply.tool_calls) == 2
    assert wire.chat[0]["tools"][0]["function"]["name"] == "get_weather"


def test_tool_conversion_keeps_what_the_sdk_would_drop():
    spec = ToolSpec(
        "plan",
        "Plan a trip.",
        {
            "type": "object",
            "required": ["stop"],
            "properties": {"stop": {"$ref": "#/$defs/Stop"}, "tags": {"type": "array", "items": {"type": "string"}}},
            "$defs": {
                "Stop": {
                    "type": "object",
                    "description": "A stop.",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                }
            },
        },
    )
    params = ollama_tool(spec)["function"]["parameters"]
    stop = params["properties"]["stop"]
    assert stop["type"] == "object" and stop["description"].startswith("A stop. (schema: ")
    assert json.loads(stop["description"].split("(schema: ", 1)[1][:-1]) == {
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    assert params["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    # the SDK's own Tool model accepts it unchanged
    from ollama._types import Tool

    assert (
        Tool.model_validate(ollama_tool(spec)).model_dump(exclude_none=True)["function"]["parameters"]["properties"][
            "stop"
        ]
        == stop
    )


def test_tool_converted_once():
    g = make_generator()
    assert g.tool(WEATHER) is g.tool(ToolSpec(WEATHER.name, WEATHER.description, dict(WEATHER.parameters)))


# ---------------------------------------------------------------- errors and retries


@pytest.mark.parametrize(
    ("response", "kind", "fragment"),
    [
        (error(400, "invalid options"), BadRequest, "invalid options"),
        (error(400, "the input length exceeds the context length"), ContextOverflow, "context length"),
        (error(401, "unauthorized"), AuthError, "unauthorized"),
        (error(404, 'model "llama9" not found, try pulling it first'), BadRequest, "ollama pull llama3.2"),
        (error(429, "too many requests"), RateLimited, "too many"),
        (error(500, "llama runner process has terminated"), Unavailable, "terminated"),
        (error(503, "server busy"), Unavailable, "busy"),
    ],
)
async def test_status_mapping(wire, gen, response, kind, fragment):
    gen.retry = RetryPolicy(RetryConfig(max_attempts=1))
    wire.chat_script.append(response)
    with pytest.raises(kind, match=fragment) as info:
        await gen.generate([Message("user", "x")])
    assert type(info.value) is kind and info.value.status == response.status_code and info.value.provider == "ollama"
    if kind is RateLimited:
        assert info.value.retry_after is None  # the SDK does not expose response headers


async def test_429_then_success_retried_once(wire, gen):
    fake_sleep.waits.clear()
    wire.chat_script.append(error(429, "slow down"))
    reply = await gen.generate([Message("user", "x")])
    assert (
        reply.text == "Hello!" and len(wire.chat) == 2 and len(fake_sleep.waits) == 1 and reply.metadata["retries"] == 1
    )


async def test_400_not_retried(wire, gen):
    wire.chat_script.append(error(400, "bad"))
    with pytest.raises(BadRequest):
        await gen.generate([Message("user", "x")])
    assert len(wire.chat) == 1


async def test_timeout(wire, gen):
    gen.retry = RetryPolicy(RetryConfig(max_attempts=1))
    wire.chat_script.append(httpx.ReadTimeout("timed out"))
    with pytest.raises(Timeout):
        await gen.generate([Message("user", "x")])


async def test_real_timeout_from_config():
    import asyncio

    async def slow(reader, writer):
        await asyncio.sleep(2)
        writer.close()

    server = await asyncio.start_server(slow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    g = OllamaGenerator.from_config(
        {"model": MODEL, "host": f"http://127.0.0.1:{port}", "timeout_s": 0.2},
        retry=RetryPolicy(RetryConfig(max_attempts=1)),
    )
    with pytest.raises(Timeout):
        await g.generate([Message("user", "x")])
    await g.aclose()
    server.close()


@pytest.mark.parametrize("streaming", [False, True])
async def test_connection_refused_says_ollama_serve(streaming):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    host = f"http://127.0.0.1:{port}"
    g = OllamaGenerator.from_config({"model": MODEL, "host": host}, retry=RetryPolicy(RetryConfig(max_attempts=1)))
    with pytest.raises(Unavailable) as info:
        if streaming:
            [d async for d in g.stream([Message("user", "x")])]
        else:
            await g.generate([Message("user", "x")])
    assert host in str(info.value) and "ollama serve" in str(info.value)
    await g.aclose()


# ---------------------------------------------------------------- secrets and config


async def test_optional_api_key_is_sent_and_never_shown(wire, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OLLAMA_PROXY_TOKEN", FAKE_TOKEN)
    g = make_generator(api_key_env="OLLAMA_PROXY_TOKEN")
    g.retry = RetryPolicy(RetryConfig(max_attempts=1))
    wire.chat_script.append(error(401, "unauthorized"))
    with pytest.raises(AuthError) as info:
        await g.generate([Message("user", "x")])
    assert wire.headers[0]["authorization"] == f"Bearer {FAKE_TOKEN}"
    assert FAKE_TOKEN not in repr(g) + str(g.config) + str(info.value) + caplog.text
    await g.aclose()


def test_missing_api_key_env_names_variable(monkeypatch):
    monkeypatch.delenv("OLLAMA_PROXY_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="OLLAMA_PROXY_TOKEN"):
        make_generator(api_key_env="OLLAMA_PROXY_TOKEN")


def test_config_bounds():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        OllamaGenerator.Config(model=MODEL, num_ctx=10)
    with pytest.raises(ValidationError):
        OllamaGenerator.Config(model=MODEL, api_key="x")


# ---------------------------------------------------------------- embeddings


async def test_embed_uses_batch_endpoint_with_cap_and_options(wire):
    e = OllamaEmbedder.from_config(
        {"model": "nomic-embed-text:latest", "dimensions": 3, "max_batch": 40, "keep_alive": "1m", "host": HOST}
    )
    texts = [f"t{i}" for i in range(90)]
    vectors = await e.embed_batch(texts)
    assert [len(b["input"]) for b in wire.embed] == [40, 40, 10]
    assert wire.embed[0] | {"input": None} == {
        "model": "nomic-embed-text:latest",
        "input": None,
        "truncate": True,
        "dimensions": 3,
        "keep_alive": "1m",
    }
    assert vectors[89] == [float(len("t89")), float(sum(map(ord, "t89")) % 97), 1.0]
    await e.aclose()


async def test_embed_dims(wire):
    assert OllamaEmbedder.from_config({"model": "nomic-embed-text"}).dim == 768
    with pytest.raises(ConfigError, match="`dim`"):
        OllamaEmbedder.from_config({"model": "my-embed"})
    e = OllamaEmbedder.from_config({"model": "all-minilm", "host": HOST})
    with pytest.raises(BadRequest, match="3-dimensional"):
        await e.embed_batch(["a"])
    await e.aclose()


async def test_embed_model_missing():
    with respx.mock() as router:
        router.post(f"{HOST}/api/embed").mock(return_value=error(404, 'model "x" not found, try pulling it first'))
        e = OllamaEmbedder.from_config({"model": "x", "dim": 3, "host": HOST})
        with pytest.raises(BadRequest, match="ollama pull x"):
            await e.embed_batch(["a"])
        await e.aclose()


def test_importing_module_does_not_import_sdk():
    import subprocess
    import sys

    code = "import sys, ragkit.providers.ollama; print('ollama' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_registry_names_resolve():
    from ragkit.registry import resolve

    assert resolve("generator", "ollama") is OllamaGenerator and resolve("embedder", "ollama") is OllamaEmbedder


def test_generate_sync_twice_uses_a_client_per_loop(wire):
    g = make_generator()
    assert g.generate_sync([Message("user", "a")]).text == "Hello!"
    assert (
        g.generate_sync([Message("user", "b")]).text == "Hello!"
    )  # a new loop: the first loop's pool must not be reused
    assert [b["messages"][0]["content"] for b in wire.chat] == ["a", "b"]
