"""Provider replies that break the wire format, for every API provider, through its real SDK on 127.0.0.1.

Whatever the server sends back with a 200 — a body that is not JSON, JSON of the wrong shape or type, a stream event
that is either, a JSON body where a stream was asked for — becomes ``MalformedReply`` after one request (retrying
would get the same answer). A stream that ends before its documented last event is never an empty answer: it is
``Unavailable``. The retry policy's overall deadline cuts a request that is still in flight, streamed or not.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest
from provider_fixtures import (
    FakeHTTPServer,
    FakeSleep,
    Response,
    anthropic_events,
    anthropic_message,
    built,
    close_built,
    json_response,
    openai_chunks,
    openai_completion,
    openai_embeddings,
)

from ragkit.errors import MalformedReply, ProviderError, Timeout, Unavailable
from ragkit.retry import RetryConfig, RetryPolicy
from ragkit.types import Message

pytest.importorskip("openai")
pytest.importorskip("anthropic")
pytest.importorskip("google.genai")
pytest.importorskip("ollama")

KEY_ENV = "RAGKIT_RELIABILITY_KEY"
SECRET = "sk-reliability-0123456789-do-not-leak"
ATTEMPTS = 3
GEMINI_MODEL = "gemini-2.5-flash"
QUESTION = [Message("user", "What does LABO-288 cost?")]


@pytest.fixture(autouse=True)
async def keys(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    yield
    await close_built()


@pytest.fixture
def server():
    s = FakeHTTPServer()
    yield s
    s.close()


def policy(**overrides: Any) -> RetryPolicy:
    return RetryPolicy(RetryConfig(max_attempts=ATTEMPTS, **overrides), sleep=FakeSleep())


def sse(data: str, event: str | None = None) -> bytes:
    return (f"event: {event}\n" if event else "").encode() + f"data: {data}\n\n".encode()


def event_stream(chunks: Any, content_type: str = "text/event-stream") -> Response:
    return Response(200, b"", {"content-type": content_type}, chunks=chunks)


def raw(body: bytes | str, content_type: str = "application/json") -> Response:
    return Response(200, body.encode() if isinstance(body, str) else body, {"content-type": content_type})


@dataclass
class Provider:
    """How to reach one provider's generator and what its wire format looks like."""

    name: str
    build: Callable[[str, RetryPolicy], Any]
    paths: tuple[str, ...]
    stream_paths: tuple[str, ...]
    event: Callable[[str], bytes]  # one stream event carrying raw data
    good_events: Callable[[], list[bytes]]  # a whole valid stream
    stream_type: str
    wrong_type: dict[str, Any]  # a body with a field of the wrong type
    missing_field: dict[str, Any]  # a body without a field the API always sends
    wrong_type_event: dict[str, Any]
    unterminated: Callable[[], list[bytes]]  # valid events, but not the last one the API always sends
    text_after: int  # how many of good_events() it takes until some text has been streamed


def _openai(url: str, retry: RetryPolicy) -> Any:
    from ragkit.providers.openai import OpenAIGenerator

    return OpenAIGenerator({"model": "gpt-4o-mini", "api_key_env": KEY_ENV, "base_url": url + "/v1"}, retry=retry)


def _anthropic(url: str, retry: RetryPolicy) -> Any:
    from ragkit.providers.anthropic import AnthropicGenerator

    return AnthropicGenerator({"model": "claude-haiku-4-5", "api_key_env": KEY_ENV, "base_url": url}, retry=retry)


def _gemini(url: str, retry: RetryPolicy) -> Any:
    from ragkit.providers.gemini import GeminiGenerator

    return GeminiGenerator.from_config({"model": GEMINI_MODEL, "base_url": url, "timeout_s": 30}, retry=retry)


def _ollama(url: str, retry: RetryPolicy) -> Any:
    from ragkit.providers.ollama import OllamaGenerator

    return OllamaGenerator.from_config({"model": "llama3.2", "host": url}, retry=retry)


def _openai_events() -> list[bytes]:
    return [sse(d if isinstance(d, str) else json.dumps(d)) for _, d in openai_chunks()]


def _anthropic_events() -> list[bytes]:
    return [sse(json.dumps(d), name) for name, d in anthropic_events()]


def _gemini_answer(text: str, finish: str | None = "STOP") -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2}}


def _ollama_line(content: str, done: bool) -> dict[str, Any]:
    line: dict[str, Any] = {"model": "llama3.2", "message": {"role": "assistant", "content": content}, "done": done}
    if done:
        line |= {"done_reason": "stop", "prompt_eval_count": 5, "eval_count": 2}
    return line


def _gemini_paths(method: str) -> tuple[str, ...]:
    return tuple(f"/{v}/models/{GEMINI_MODEL}:{method}" for v in ("v1", "v1beta"))


PROVIDERS = [
    Provider(
        name="openai",
        build=_openai,
        paths=("/v1/chat/completions",),
        stream_paths=("/v1/chat/completions",),
        event=lambda data: sse(data),
        good_events=_openai_events,
        stream_type="text/event-stream",
        wrong_type={"choices": [{"index": 0, "message": {"content": 5}, "finish_reason": "stop"}]},
        missing_field={"id": "x", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop"}]},
        wrong_type_event={"choices": [{"index": 0, "delta": {"content": ["Hel"]}, "finish_reason": None}]},
        unterminated=lambda: _openai_events()[:3],
        text_after=2,
    ),
    Provider(
        name="anthropic",
        build=_anthropic,
        paths=("/v1/messages",),
        stream_paths=("/v1/messages",),
        event=lambda data: sse(data, "content_block_delta"),
        good_events=_anthropic_events,
        stream_type="text/event-stream",
        wrong_type=anthropic_message() | {"content": [{"type": "text", "text": 5}]},
        missing_field={k: v for k, v in anthropic_message().items() if k != "content"},
        wrong_type_event={"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}},
        unterminated=lambda: _anthropic_events()[:-2],
        text_after=4,
    ),
    Provider(
        name="gemini",
        build=_gemini,
        paths=_gemini_paths("generateContent"),
        stream_paths=_gemini_paths("streamGenerateContent"),
        event=lambda data: sse(data),
        good_events=lambda: [sse(json.dumps(_gemini_answer("Hel", None))), sse(json.dumps(_gemini_answer("lo")))],
        stream_type="text/event-stream",
        wrong_type={"candidates": [{"content": {"role": "model", "parts": [{"text": 5}]}, "finishReason": "STOP"}]},
        missing_field={"usageMetadata": {"promptTokenCount": 5}, "modelVersion": GEMINI_MODEL},
        wrong_type_event={"candidates": [{"content": {"parts": [{"text": {"a": 1}}]}}]},
        unterminated=lambda: [sse(json.dumps(_gemini_answer("Hel", None)))],
        text_after=1,
    ),
    Provider(
        name="ollama",
        build=_ollama,
        paths=("/api/chat",),
        stream_paths=("/api/chat",),
        event=lambda data: data.encode() + b"\n",
        good_events=lambda: [(json.dumps(_ollama_line(t, d)) + "\n").encode() for t, d in (("Hel", 0), ("lo", 1))],
        stream_type="application/x-ndjson",
        wrong_type={"model": "llama3.2", "message": {"role": "assistant", "content": 5}, "done": True},
        missing_field={"model": "llama3.2", "done": True, "done_reason": "stop"},
        wrong_type_event={"model": "llama3.2", "message": {"role": "assistant", "content": [1]}, "done": False},
        unterminated=lambda: [(json.dumps(_ollama_line("Hel", False)) + "\n").encode()],
        text_after=1,
    ),
]


class Script:
    """Answers every path of a provider from one queue, so API-version prefixes do not matter."""

    def __init__(self, server: FakeHTTPServer, paths: tuple[str, ...]) -> None:
        self.server, self.paths = server, paths
        self.queue: deque[Response] = deque()
        for path in paths:
            server.default("POST", path, self._next)

    def _next(self, request: Any) -> Response:
        if not self.queue:
            return json_response({"error": {"message": "nothing scripted"}}, status=418)
        return self.queue.popleft()

    def add(self, *responses: Response, times: int = 1) -> None:
        for _ in range(times):
            self.queue.extend(responses)

    def count(self) -> int:
        return sum(len(self.server.requests_to(p)) for p in self.paths)


async def generate(provider: Provider, server: FakeHTTPServer, retry: RetryPolicy | None = None) -> Any:
    gen = built(provider.build(server.url, retry or policy()))
    return await gen.generate(QUESTION)


async def stream(provider: Provider, server: FakeHTTPServer, retry: RetryPolicy | None = None) -> tuple[str, Any]:
    gen = built(provider.build(server.url, retry or policy()))
    text: list[str] = []
    final = None
    async for delta in gen.stream(QUESTION):
        text.append(delta.text or "")
        final = delta.reply or final
    return "".join(text), final


def _ids(cases: list[Any]) -> list[str]:
    return [c[0] for c in cases]


BAD_BODIES: list[tuple[str, Callable[[Provider], Response], str]] = [
    ("not-json", lambda p: raw("{not json"), "JSON"),
    ("truncated-json", lambda p: raw(json.dumps(p.wrong_type)[:25]), "JSON"),
    ("empty-body", lambda p: raw(b""), "JSON|empty|candidates"),
    ("foo-bar", lambda p: json_response({"foo": "bar"}), "required|candidates|object|choices|content|message"),
    ("array", lambda p: json_response([1, 2]), "object|candidates"),
    ("string", lambda p: json_response("hello"), "object|candidates"),
    ("null", lambda p: json_response(None), "object|candidates|null"),
    ("html", lambda p: raw("<html><body>Gateway says hi</body></html>", "text/html"), "JSON|object|text"),
    ("wrong-type", lambda p: json_response(p.wrong_type), "string|valid|text"),
    ("missing-field", lambda p: json_response(p.missing_field), "required|choices|content|message|candidates"),
]


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
@pytest.mark.parametrize(("case", "body", "says"), BAD_BODIES, ids=_ids(BAD_BODIES))
async def test_a_malformed_body_is_a_typed_error_after_one_request(server, provider, case, body, says):
    script = Script(server, provider.paths)
    script.add(body(provider), times=ATTEMPTS)
    with pytest.raises(MalformedReply) as caught:
        await generate(provider, server)
    error = caught.value
    assert error.provider == provider.name
    assert script.count() == 1, "a malformed reply must not be retried"
    message = str(error)
    assert re.search(says, message), message
    assert SECRET not in message


BAD_STREAMS: list[tuple[str, Callable[[Provider], Response]]] = [
    ("event-not-json", lambda p: event_stream([p.event("{not json")] + p.good_events(), p.stream_type)),
    ("event-foo-bar", lambda p: event_stream([p.event('{"foo": "bar"}')] + p.good_events(), p.stream_type)),
    ("event-array", lambda p: event_stream([p.event("[1, 2]")] + p.good_events(), p.stream_type)),
    (
        "event-wrong-type",
        lambda p: event_stream([p.event(json.dumps(p.wrong_type_event))] + p.good_events(), p.stream_type),
    ),
    ("json-body-not-a-stream", lambda p: raw("{not json")),
]


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
@pytest.mark.parametrize(("case", "reply"), BAD_STREAMS, ids=_ids(BAD_STREAMS))
async def test_a_malformed_stream_is_a_typed_error_never_an_empty_answer(server, provider, case, reply):
    script = Script(server, provider.stream_paths)
    script.add(reply(provider), times=ATTEMPTS)
    with pytest.raises(MalformedReply) as caught:
        await stream(provider, server)
    assert caught.value.provider == provider.name
    assert script.count() == 1, "a malformed stream must not be retried"


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
async def test_a_bad_event_after_text_still_fails_the_stream(server, provider):
    good = provider.good_events()
    script = Script(server, provider.stream_paths)
    head = good[: provider.text_after]
    script.add(event_stream(head + [provider.event("{not json")] + good[len(head) :], provider.stream_type))
    gen = built(provider.build(server.url, policy()))
    seen: list[str] = []
    with pytest.raises(MalformedReply):
        async for delta in gen.stream(QUESTION):
            seen.append(delta.text or "")
    assert "".join(seen), "text had been streamed before the bad event"
    assert script.count() == 1


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
async def test_a_stream_that_ends_early_is_unavailable_not_an_empty_answer(server, provider):
    script = Script(server, provider.stream_paths)
    script.add(event_stream([], provider.stream_type), times=ATTEMPTS)
    with pytest.raises(Unavailable, match="ended before"):
        await stream(provider, server)
    # Nothing reached the caller, so the stream was reopened: a dropped connection is transient.
    assert script.count() == ATTEMPTS


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
async def test_a_stream_cut_after_text_is_unavailable(server, provider):
    script = Script(server, provider.stream_paths)
    script.add(event_stream(provider.unterminated(), provider.stream_type), times=ATTEMPTS)
    gen = built(provider.build(server.url, policy()))
    seen: list[str] = []
    with pytest.raises(Unavailable, match="ended before"):
        async for delta in gen.stream(QUESTION):
            seen.append(delta.text or "")
            assert delta.reply is None, "no final reply for a stream that was cut"
    assert script.count() == 1, "text was already out: the stream cannot be retried"


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
async def test_a_whole_stream_still_answers(server, provider):
    script = Script(server, provider.stream_paths)
    script.add(event_stream(provider.good_events(), provider.stream_type))
    text, final = await stream(provider, server)
    assert text and final is not None and final.text == text


def _stalled(events: list[bytes], after: int, stall_s: float) -> Iterator[bytes]:
    for i, event in enumerate(events):
        if i == after:
            time.sleep(stall_s)
        yield event


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
async def test_the_deadline_cuts_a_request_in_flight(server, provider):
    script = Script(server, provider.paths)
    slow = {
        "openai": json_response(openai_completion(), delay=6),
        "anthropic": json_response(anthropic_message(), delay=6),
        "gemini": json_response(_gemini_answer("Hello"), delay=6),
        "ollama": json_response(_ollama_line("Hello", True), delay=6),
    }[provider.name]
    script.add(slow, times=ATTEMPTS)
    started = time.monotonic()
    with pytest.raises(Timeout, match="deadline"):
        await generate(provider, server, RetryPolicy(RetryConfig(max_attempts=ATTEMPTS, deadline_s=0.5)))
    assert time.monotonic() - started < 3.0
    assert script.count() == 1, "a passed deadline leaves no time for another try"


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
async def test_the_deadline_cuts_a_stream_that_stalls(server, provider):
    script = Script(server, provider.stream_paths)
    events = provider.good_events()
    script.add(event_stream(_stalled(events, provider.text_after, 6.0), provider.stream_type))
    started = time.monotonic()
    with pytest.raises(Timeout, match="deadline"):
        await stream(provider, server, RetryPolicy(RetryConfig(max_attempts=ATTEMPTS, deadline_s=1.0)))
    assert time.monotonic() - started < 3.5


# ----------------------------------------------------------------------------------------------- embedders


def _openai_embedder(url: str) -> Any:
    from ragkit.providers.openai import OpenAIEmbedder

    return OpenAIEmbedder(
        {"model": "text-embedding-3-small", "dim": 3, "api_key_env": KEY_ENV, "base_url": url + "/v1"},
        retry=policy(),
    )


def _gemini_embedder(url: str) -> Any:
    from ragkit.providers.gemini import GeminiEmbedder

    return GeminiEmbedder.from_config(
        {"model": "gemini-embedding-001", "output_dimensionality": 3, "base_url": url}, retry=policy()
    )


def _ollama_embedder(url: str) -> Any:
    from ragkit.providers.ollama import OllamaEmbedder

    return OllamaEmbedder.from_config({"model": "all-minilm", "dim": 3, "host": url}, retry=policy())


EMBEDDERS = [
    ("openai", _openai_embedder, ("/v1/embeddings",), {"data": [{"index": 0, "embedding": "AAAA"}]}),
    (
        "gemini",
        _gemini_embedder,
        tuple(f"/{v}/models/gemini-embedding-001:batchEmbedContents" for v in ("v1", "v1beta")),
        {"embeddings": [{"values": "abc"}]},
    ),
    ("ollama", _ollama_embedder, ("/api/embed",), {"model": "all-minilm", "embeddings": [["a", "b", "c"]]}),
]
EMBED_BODIES: list[tuple[str, Callable[[dict[str, Any]], Response]]] = [
    ("not-json", lambda wrong: raw("{not json")),
    ("foo-bar", lambda wrong: json_response({"foo": "bar"})),
    ("wrong-type", lambda wrong: json_response(wrong)),
    ("too-few", lambda wrong: json_response({"data": [], "embeddings": []})),
]


@pytest.mark.parametrize(("name", "make", "paths", "wrong"), EMBEDDERS, ids=[e[0] for e in EMBEDDERS])
@pytest.mark.parametrize(("case", "body"), EMBED_BODIES, ids=_ids(EMBED_BODIES))
async def test_a_malformed_embedding_reply_is_a_typed_error(server, name, make, paths, wrong, case, body):
    script = Script(server, paths)
    script.add(body(wrong), times=ATTEMPTS)
    embedder = built(make(server.url))
    with pytest.raises(MalformedReply):
        await embedder.embed_batch(["one text"])
    assert script.count() == 1


async def test_a_good_embedding_reply_still_works(server):
    script = Script(server, ("/v1/embeddings",))
    script.add(json_response(openai_embeddings([[0.1, 0.2, 0.3]])))
    assert await built(_openai_embedder(server.url)).embed_batch(["x"]) == [[0.1, 0.2, 0.3]]


def test_malformed_reply_is_a_provider_error_and_not_transient():
    from ragkit.errors import Transient

    assert issubclass(MalformedReply, ProviderError) and not issubclass(MalformedReply, Transient)
