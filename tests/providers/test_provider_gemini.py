"""Gemini provider: the real google-genai SDK against a scripted Gemini API on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from ragkit.errors import AuthError, BadRequest, ConfigError, ContextOverflow, RateLimited, Timeout, Unavailable
from ragkit.retry import RetryConfig, RetryPolicy
from ragkit.testing import EmbedderContract, GeneratorContract
from ragkit.types import Message, ToolSpec

pytest.importorskip("google.genai")
from ragkit.providers.gemini import (  # noqa: E402
    GeminiEmbedder,
    GeminiGenerator,
    gemini_schema,
)

FAKE_KEY = "AIzaFAKE-gemini-key-0123456789-do-not-leak"
MODEL = "gemini-2.5-flash"


@dataclass
class Scripted:
    status: int = 200
    body: Any = None
    sse: list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class GeminiServer:
    """Answers in Gemini's REST wire format from a script; records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[Scripted] = []
        self.fallback: Any = None  # callable(request) -> Scripted, used when the script is empty
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                url = urlparse(self.path)
                request = {
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(raw) if raw else None,
                }
                server.requests.append(request)
                answer = server.script.pop(0) if server.script else server.fallback(request)
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                if answer.sse is not None:
                    self.send_header("content-type", "text/event-stream")
                    self.end_headers()
                    for event in answer.sse:
                        self.wfile.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
                        self.wfile.flush()
                    return
                data = json.dumps(answer.body).encode()
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(
    parts: list[dict[str, Any]], finish: str = "STOP", prompt: int = 7, output: int = 3, cached: int = 0
) -> dict[str, Any]:
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output}
    if cached:
        usage["cachedContentTokenCount"] = cached
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
        "usageMetadata": usage,
        "modelVersion": MODEL,
        "responseId": "resp-1",
    }


def error(code: int, status: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        body["details"] = details
    return {"error": body}


def hello_fallback(request: dict[str, Any]) -> Scripted:
    if request["path"].endswith(":streamGenerateContent"):
        return Scripted(
            sse=[
                answer([{"text": "Hel"}], finish=None) | {"usageMetadata": None},
                answer([{"text": "lo!"}], prompt=4, output=2),
            ]
        )
    if request["path"].endswith(":batchEmbedContents"):
        vectors = []
        for r in request["body"]["requests"]:
            text = r["content"]["parts"][0]["text"]
            vectors.append({"values": [float(len(text)), float(sum(map(ord, text)) % 97), 1.0, 0.5]})
        return Scripted(body={"embeddings": vectors})
    return Scripted(body=answer([{"text": "Hello!"}]))


@pytest.fixture
def server():
    s = GeminiServer()
    s.fallback = hello_fallback
    yield s
    s.close()


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


async def fake_sleep(seconds: float) -> None:
    fake_sleep.waits.append(seconds)  # type: ignore[attr-defined]


fake_sleep.waits = []  # type: ignore[attr-defined]


def make_generator(server: GeminiServer, **overrides: Any) -> GeminiGenerator:
    retry = RetryPolicy(RetryConfig(max_attempts=3, jitter=0), sleep=fake_sleep)
    return GeminiGenerator.from_config(
        {"model": MODEL, "base_url": server.url, "timeout_s": 5, **overrides}, retry=retry
    )


@pytest.fixture
async def gen(server):
    g = make_generator(server)
    yield g
    await g.aclose()


WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"anyOf": [{"type": "string", "enum": ["C", "F"]}, {"type": "null"}], "default": None},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
)


class TestGeminiGeneratorContract(GeneratorContract):
    @pytest.fixture
    async def generator(self, gen):
        return gen


class TestGeminiEmbedderContract(EmbedderContract):
    @pytest.fixture
    async def embedder(self, server):
        e = GeminiEmbedder.from_config(
            {"model": "gemini-embedding-001", "output_dimensionality": 4, "base_url": server.url}
        )
        yield e
        await e.aclose()


# ---------------------------------------------------------------- requests and replies


async def test_generate_request_and_reply(server, gen):
    server.script.append(Scripted(body=answer([{"text": "Paris."}], prompt=11, output=2, cached=5)))
    reply = await gen.generate([Message("system", "Be brief."), Message("user", "Capital of France?")], max_tokens=32)
    (req,) = server.requests
    assert re.fullmatch(rf"/v1(beta)?/models/{MODEL}:generateContent", req["path"])
    assert req["headers"]["x-goog-api-key"] == FAKE_KEY
    body = req["body"]
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Capital of France?"}]}]
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert body["generationConfig"] == {"maxOutputTokens": 32}
    assert "tools" not in body
    assert reply.text == "Paris."
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens) == (11, 2, 5)
    assert reply.stop_reason == "stop" and reply.model == MODEL


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("OTHER", "unknown"),
    ],
)
async def test_finish_reasons(server, gen, finish, expected):
    server.script.append(Scripted(body=answer([{"text": "x"}], finish=finish)))
    reply = await gen.generate([Message("user", "hi")])
    assert reply.stop_reason == expected and reply.metadata["finish_reason"] == finish


async def test_blocked_prompt_is_content_filter(server, gen):
    server.script.append(
        Scripted(body={"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}})
    )
    reply = await gen.generate([Message("user", "bad")])
    assert reply.text == "" and reply.stop_reason == "content_filter" and reply.metadata["block_reason"] == "SAFETY"


async def test_thought_parts_are_not_text(server, gen):
    server.script.append(Scripted(body=answer([{"text": "thinking...", "thought": True}, {"text": "42"}])))
    assert (await gen.generate([Message("user", "q")])).text == "42"


async def test_stream_uses_sse_and_ends_with_reply(server, gen):
    deltas = [d async for d in gen.stream([Message("system", "S"), Message("user", "Say hello.")], max_tokens=8)]
    (req,) = server.requests
    assert re.fullmatch(rf"/v1(beta)?/models/{MODEL}:streamGenerateContent", req["path"]) and req["query"]["alt"] == [
        "sse"
    ]
    assert req["body"]["systemInstruction"]["parts"] == [{"text": "S"}]
    assert [d.text for d in deltas[:-1]] == ["Hel", "lo!"]
    final = deltas[-1].reply
    assert final.text == "Hello!" and final.usage.input_tokens == 4 and final.usage.output_tokens == 2


async def test_json_output_sends_mime_type_and_rewritten_schema(server, gen):
    server.script.append(Scripted(body=answer([{"text": '{"name": "Ada", "age": null}'}])))
    schema = {
        "type": "object",
        "title": "Person",
        "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"]}},
        "required": ["name"],
        "additionalProperties": False,
    }
    reply = await gen.generate([Message("user", "who?")], json_schema=schema)
    cfg = server.requests[0]["body"]["generationConfig"]
    assert cfg["responseMimeType"] == "application/json"
    assert cfg["responseSchema"]["properties"]["age"] == {"type": "INTEGER", "nullable": True}
    assert "additionalProperties" not in cfg["responseSchema"] and "title" not in cfg["responseSchema"]
    assert json.loads(reply.text)["name"] == "Ada"


# ---------------------------------------------------------------- tools


async def test_tools_shape_and_two_calls(server, gen):
    server.script.append(
        Scripted(
            body=answer(
                [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"id": "fc-2", "name": "get_weather", "args": {"city": "Rome", "unit": "C"}}},
                ]
            )
        )
    )
    reply = await gen.generate([Message("user", "Weather in Paris and Rome?")], tools=[WEATHER])
    tools = server.requests[0]["body"]["tools"]
    assert tools == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city.",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {
                            "city": {"type": "STRING"},
                            "unit": {"type": "STRING", "enum": ["C", "F"], "nullable": True},
                        },
                        "required": ["city"],
                    },
                }
            ]
        }
    ]
    assert reply.stop_reason == "tool_calls" and len(reply.tool_calls) == 2
    first, second = reply.tool_calls
    assert first.id and first.id != second.id and second.id == "fc-2"
    assert (first.name, json.loads(first.arguments)) == ("get_weather", {"city": "Paris"})
    assert json.loads(second.arguments) == {"city": "Rome", "unit": "C"}


async def test_tool_without_arguments_declares_no_parameters(server, gen):
    await gen.generate(
        [Message("user", "time?")], tools=[ToolSpec("now", "Current time.", {"type": "object", "properties": {}})]
    )
    assert server.requests[0]["body"]["tools"] == [
        {"functionDeclarations": [{"name": "now", "description": "Current time."}]}
    ]


async def test_tool_declaration_converted_once(server, gen):
    assert gen.declaration(WEATHER) is gen.declaration(
        ToolSpec(WEATHER.name, WEATHER.description, dict(WEATHER.parameters))
    )


async def test_tool_results_go_back_in_one_user_turn_and_two_rounds_complete(server, gen):
    server.script.append(
        Scripted(
            body=answer(
                [
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "c2lnLTE=",
                    },
                    {"functionCall": {"id": "fc-2", "name": "get_weather", "args": {"city": "Rome"}}},
                ]
            )
        )
    )
    server.script.append(Scripted(body=answer([{"text": "Paris 20C, Rome 25C."}])))
    history = [Message("system", "Use tools."), Message("user", "Weather in Paris and Rome?")]
    first = await gen.generate(history, tools=[WEATHER])
    history += [
        Message("assistant", "", tool_calls=first.tool_calls),
        Message("tool", '{"temp": 20}', tool_call_id=first.tool_calls[0].id),
        Message("tool", "no data for Rome", tool_call_id=first.tool_calls[1].id, is_error=True),
    ]
    second = await gen.generate(history, tools=[WEATHER])
    assert second.text == "Paris 20C, Rome 25C." and second.stop_reason == "stop"
    contents = server.requests[1]["body"]["contents"]
    assert contents == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="},
                {"functionCall": {"id": "fc-2", "name": "get_weather", "args": {"city": "Rome"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": {"temp": 20}}}},
                {"functionResponse": {"id": "fc-2", "name": "get_weather", "response": {"error": "no data for Rome"}}},
            ],
        },
    ]


async def test_streamed_tool_call(server, gen):
    server.script.append(Scripted(sse=[answer([{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}])]))
    deltas = [d async for d in gen.stream([Message("user", "Oslo?")], tools=[WEATHER])]
    assert [c.name for d in deltas for c in d.tool_calls] == ["get_weather"]
    assert deltas[-1].reply.stop_reason == "tool_calls" and json.loads(deltas[-1].reply.tool_calls[0].arguments) == {
        "city": "Oslo"
    }


async def test_tool_result_without_matching_call_is_bad_request(gen):
    with pytest.raises(BadRequest, match="matches no earlier tool call"):
        await gen.generate([Message("user", "x"), Message("tool", "1", tool_call_id="nope")])


# ---------------------------------------------------------------- schema rewriting


def test_schema_optional_becomes_nullable():
    assert gemini_schema({"anyOf": [{"type": "integer"}, {"type": "null"}]}) == {"type": "integer", "nullable": True}
    assert gemini_schema({"type": ["string", "null"]}) == {"type": "string", "nullable": True}


def test_schema_other_anyof_kept_branchwise():
    out = gemini_schema({"anyOf": [{"type": "integer", "title": "I"}, {"type": "string"}, {"type": "null"}]})
    assert out == {"anyOf": [{"type": "integer"}, {"type": "string"}], "nullable": True}


def test_schema_unions_gemini_cannot_express_are_rejected():
    with pytest.raises(BadRequest, match=r"\$\.properties\.x.*union"):
        gemini_schema({"type": "object", "properties": {"x": {"type": ["string", "integer"]}}})
    with pytest.raises(BadRequest, match="allOf with 2"):
        gemini_schema({"allOf": [{"type": "string"}, {"minLength": 1}]})
    with pytest.raises(BadRequest, match="only null"):
        gemini_schema({"anyOf": [{"type": "null"}]})


def test_schema_additional_properties_title_default_dropped():
    out = gemini_schema(
        {
            "type": "object",
            "title": "T",
            "$schema": "x",
            "additionalProperties": False,
            "properties": {"a": {"type": "string", "default": "z", "title": "A", "description": "kept"}},
        }
    )
    assert out == {"type": "object", "properties": {"a": {"type": "string", "description": "kept"}}}


def test_schema_refs_inlined():
    schema = {
        "type": "object",
        "properties": {"home": {"$ref": "#/$defs/Addr", "description": "where"}, "old": {"$ref": "#/definitions/Addr"}},
        "$defs": {"Addr": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        "definitions": {"Addr": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    }
    out = gemini_schema(schema)
    assert out["properties"]["home"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "description": "where",
    }
    assert out["properties"]["old"]["required"] == ["city"] and "$defs" not in out


def test_schema_recursive_or_unknown_ref_rejected():
    with pytest.raises(BadRequest, match="recursive"):
        gemini_schema(
            {"$ref": "#/$defs/N", "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}}
        )
    with pytest.raises(BadRequest, match="cannot resolve"):
        gemini_schema({"$ref": "#/$defs/Missing"})


def test_schema_const_becomes_enum_and_enums_must_be_strings():
    assert gemini_schema({"const": "yes"}) == {"enum": ["yes"], "type": "string"}
    with pytest.raises(BadRequest, match="strings only"):
        gemini_schema({"enum": [1, 2]})


def test_schema_pydantic_model_roundtrip_is_accepted_by_sdk():
    from google.genai import types
    from pydantic import BaseModel

    class Item(BaseModel):
        name: str
        tags: list[str] = []

    class Order(BaseModel):
        items: list[Item]
        note: str | None = None

    out = gemini_schema(Order.model_json_schema())
    types.Schema.model_validate(out)  # the SDK's own validator forbids unknown keys
    assert out["properties"]["items"]["items"]["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    assert out["properties"]["note"] == {"type": "string", "nullable": True}


# ---------------------------------------------------------------- errors and retries


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, error(400, "INVALID_ARGUMENT", "Request contains an invalid argument."), BadRequest),
        (
            400,
            error(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            ContextOverflow,
        ),
        (401, error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."), AuthError),
        (403, error(403, "PERMISSION_DENIED", "Permission denied."), AuthError),
        (404, error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"), BadRequest),
        (500, error(500, "INTERNAL", "An internal error has occurred."), Unavailable),
        (503, error(503, "UNAVAILABLE", "The model is overloaded."), Unavailable),
    ],
)
async def test_status_mapping(server, status, body, kind):
    g = make_generator(server)
    g.retry = RetryPolicy(RetryConfig(max_attempts=1))
    server.script.append(Scripted(status=status, body=body))
    with pytest.raises(kind) as info:
        await g.generate([Message("user", "x")])
    assert type(info.value) is kind and info.value.status == status and info.value.provider == "gemini"
    assert FAKE_KEY not in str(info.value)
    if status == 404:
        assert "`model` field" in str(info.value)
    await g.aclose()


@pytest.mark.parametrize(
    ("headers", "details", "expected"),
    [
        ({"Retry-After": "7"}, None, 7.0),
        ({}, [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "31s"}], 31.0),
        ({}, None, None),
    ],
)
async def test_rate_limit_retry_after(server, gen, headers, details, expected):
    gen.retry = RetryPolicy(RetryConfig(max_attempts=1))
    server.script.append(
        Scripted(status=429, headers=headers, body=error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", details))
    )
    with pytest.raises(RateLimited) as info:
        await gen.generate([Message("user", "x")])
    assert info.value.retry_after == expected


async def test_429_then_success_is_retried_once(server, gen):
    fake_sleep.waits.clear()
    server.script += [
        Scripted(status=429, headers={"Retry-After": "2"}, body=error(429, "RESOURCE_EXHAUSTED", "slow down")),
        Scripted(body=answer([{"text": "ok"}])),
    ]
    reply = await gen.generate([Message("user", "x")])
    assert reply.text == "ok" and len(server.requests) == 2
    assert fake_sleep.waits == [2.0] and reply.metadata["retries"] == 1


async def test_400_is_not_retried_and_sdk_does_not_retry(server, gen):
    server.script.append(Scripted(status=400, body=error(400, "INVALID_ARGUMENT", "bad")))
    with pytest.raises(BadRequest):
        await gen.generate([Message("user", "x")])
    assert len(server.requests) == 1


async def test_503_exhausts_our_retries_only(server, gen):
    server.fallback = lambda r: Scripted(status=503, body=error(503, "UNAVAILABLE", "overloaded"))
    with pytest.raises(Unavailable):
        await gen.generate([Message("user", "x")])
    assert len(server.requests) == 3  # RetryConfig(max_attempts=3); the SDK adds none


async def test_timeout(server):
    g = make_generator(server, timeout_s=0.2)
    g.retry = RetryPolicy(RetryConfig(max_attempts=1))
    server.script.append(Scripted(body=answer([{"text": "late"}]), delay=1.0))
    with pytest.raises(Timeout):
        await g.generate([Message("user", "x")])
    await g.aclose()


async def test_connection_refused_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = GeminiGenerator.from_config(
        {"model": MODEL, "base_url": f"http://127.0.0.1:{port}"}, retry=RetryPolicy(RetryConfig(max_attempts=1))
    )
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await g.generate([Message("user", "x")])
    # The SDK's implicit reconnect would sleep at least 1 s first; it must be off.
    assert time.monotonic() - started < 1.0
    await g.aclose()


async def test_stream_error_before_first_delta_is_mapped(server, gen):
    gen.retry = RetryPolicy(RetryConfig(max_attempts=1))
    server.script.append(Scripted(status=401, body=error(401, "UNAUTHENTICATED", "bad key")))
    with pytest.raises(AuthError):
        [d async for d in gen.stream([Message("user", "x")])]


# ---------------------------------------------------------------- config and secrets


def test_missing_key_names_variable(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(ConfigError, match="GEMINI_API_KEY"):
        GeminiGenerator.from_config({"model": MODEL})


def test_unknown_model_needs_context_window(server):
    with pytest.raises(ConfigError, match="context_window"):
        GeminiGenerator.from_config({"model": "my-tuned-model"})
    unused = object()  # an injected client: these checks need no SDK client
    assert (
        GeminiGenerator.from_config({"model": "my-tuned-model", "context_window": 32000}, client=unused).context_window
        == 32000
    )
    assert (
        GeminiGenerator.from_config({"model": "gemini-2.5-flash-preview-09-2025"}, client=unused).context_window
        == 1_048_576
    )
    assert (
        GeminiGenerator.from_config({"model": "models/gemini-1.5-pro-002"}, client=unused).context_window == 2_097_152
    )


def test_config_forbids_unknown_keys_and_key_values():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        GeminiGenerator.Config(model=MODEL, api_key="AIza...")
    with pytest.raises(ValidationError):
        GeminiGenerator.Config(model=MODEL, timeout_s=0)


async def test_key_never_in_repr_or_logs(server, gen, caplog):
    caplog.set_level(logging.DEBUG)
    server.script.append(Scripted(status=400, body=error(400, "INVALID_ARGUMENT", "bad")))
    with pytest.raises(BadRequest) as info:
        await gen.generate([Message("user", "x")])
    assert FAKE_KEY not in repr(gen) + str(gen.config) + repr(gen.config.model_dump()) + str(info.value)
    assert FAKE_KEY not in caplog.text
    assert server.requests[0]["headers"]["x-goog-api-key"] == FAKE_KEY


def test_importing_module_does_not_import_sdk():
    import subprocess
    import sys

    code = "import sys, ragkit.providers.gemini; print('google.genai' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


# ---------------------------------------------------------------- embeddings


async def test_embed_batches_of_at_most_100(server):
    e = GeminiEmbedder.from_config(
        {
            "model": "gemini-embedding-001",
            "output_dimensionality": 4,
            "task_type": "RETRIEVAL_DOCUMENT",
            "base_url": server.url,
        }
    )
    texts = [f"text number {i}" for i in range(250)]
    vectors = await e.embed_batch(texts)
    sizes = [len(r["body"]["requests"]) for r in server.requests]
    assert sizes == [100, 100, 50]
    assert all(
        re.fullmatch(r"/v1(beta)?/models/gemini-embedding-001:batchEmbedContents", r["path"]) for r in server.requests
    )
    first = server.requests[0]["body"]["requests"][0]
    assert first["content"]["parts"] == [{"text": "text number 0"}]
    assert first["outputDimensionality"] == 4 and first["taskType"] == "RETRIEVAL_DOCUMENT"
    assert len(vectors) == 250 and all(len(v) == 4 for v in vectors)
    assert sum(x * x for x in vectors[0]) == pytest.approx(1.0)
    # order kept across batches: vector 249 is that of text 249
    expected = [float(len(texts[249])), float(sum(map(ord, texts[249])) % 97), 1.0, 0.5]
    norm = sum(x * x for x in expected) ** 0.5
    assert vectors[249] == pytest.approx([x / norm for x in expected])
    await e.aclose()


async def test_embed_dimension_mismatch_and_unknown_model(server):
    with pytest.raises(ConfigError, match="output_dimensionality"):
        GeminiEmbedder.from_config({"model": "my-embedder"})
    e = GeminiEmbedder.from_config({"model": "gemini-embedding-001", "base_url": server.url})
    assert e.dim == 3072
    with pytest.raises(BadRequest, match="4-dimensional"):
        await e.embed_batch(["a"])
    await e.aclose()


async def test_embed_429_retried(server):
    e = GeminiEmbedder.from_config(
        {"model": "gemini-embedding-001", "output_dimensionality": 4, "base_url": server.url},
        retry=RetryPolicy(sleep=fake_sleep),
    )
    server.script.append(Scripted(status=429, body=error(429, "RESOURCE_EXHAUSTED", "slow")))
    assert len(await e.embed_batch(["a", "b"])) == 2 and len(server.requests) == 2
    await e.aclose()


def test_registry_names_resolve():
    from ragkit.registry import resolve

    assert resolve("generator", "gemini") is GeminiGenerator and resolve("embedder", "gemini") is GeminiEmbedder


def test_generate_sync_twice(server):
    g = make_generator(server)
    assert g.generate_sync([Message("user", "a")]).text == "Hello!"
    assert g.generate_sync([Message("user", "b")]).text == "Hello!"
    assert [r["body"]["contents"][0]["parts"][0]["text"] for r in server.requests] == ["a", "b"]


async def test_invalid_api_key_400_is_auth_error(server, gen):
    server.script.append(
        Scripted(status=400, body=error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."))
    )
    with pytest.raises(AuthError):
        await gen.generate([Message("user", "x")])
    assert len(server.requests) == 1
