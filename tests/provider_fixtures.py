"""A scripted HTTP server on 127.0.0.1 for provider tests, plus builders for OpenAI and Anthropic wire bodies.

The vendor SDKs run unmodified against it (their own HTTP client, real sockets); tests read back every request.
Import the ``fake_server`` fixture into a test module to use it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

import pytest


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    """A scripted answer: a JSON/text body, or ``chunks`` written one by one (SSE); ``delay`` before anything."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Sequence[bytes] | None = None
    delay: float = 0.0


Handler = Callable[[Request], Response]
Scripted = Union[Response, Handler]


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, delay: float = 0.0
) -> Response:
    return Response(
        status, json.dumps(body).encode(), {"content-type": "application/json", **(headers or {})}, delay=delay
    )


def sse_response(events: Iterable[tuple[str | None, Any]], delay: float = 0.0) -> Response:
    """Server-sent events from ``(event name or None, data)``; data that is not a str is sent as JSON."""
    chunks = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        chunks.append((f"event: {name}\n" if name else "").encode() + f"data: {text}\n\n".encode())
    return Response(
        200, b"", {"content-type": "text/event-stream", "cache-control": "no-cache"}, chunks=chunks, delay=delay
    )


class FakeHTTPServer:
    """Answers each (method, path) from a queue of scripted responses, then from a default handler; records requests."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._queues: dict[tuple[str, str], deque[Scripted]] = defaultdict(deque)
        self._defaults: dict[tuple[str, str], Handler] = {}
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                req = Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                resp = server._answer(req)
                if resp.delay:
                    time.sleep(resp.delay)
                try:
                    self.send_response(resp.status)
                    for k, v in resp.headers.items():
                        self.send_header(k, v)
                    if resp.chunks is None:
                        self.send_header("content-length", str(len(resp.body)))
                        self.end_headers()
                        self.wfile.write(resp.body)
                    else:
                        # A stream ends when the connection closes.
                        self.send_header("connection", "close")
                        self.close_connection = True
                        self.end_headers()
                        for chunk in resp.chunks:
                            self.wfile.write(chunk)
                            self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = do_PUT = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def _answer(self, req: Request) -> Response:
        path = req.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(req)
            queue = self._queues.get((req.method, path))
            item: Scripted | None = queue.popleft() if queue else self._defaults.get((req.method, path))
        if item is None:
            return json_response({"error": {"message": f"no scripted response for {req.method} {path}"}}, status=418)
        return item(req) if callable(item) else item

    def script(self, method: str, path: str, *responses: Scripted) -> None:
        """Queue responses for ``method path``, used once each, in order."""
        self._queues[(method, path)].extend(responses)

    def default(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method path`` with ``handler`` whenever its queue is empty."""
        self._defaults[(method, path)] = handler

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


_BUILT: list[Any] = []


def built(component: Any) -> Any:
    """Remember a provider component so ``close_built`` closes its HTTP client after the test."""
    _BUILT.append(component)
    return component


async def close_built() -> None:
    while _BUILT:
        await _BUILT.pop().aclose()


@pytest.fixture
def fake_server():
    server = FakeHTTPServer()
    yield server
    server.close()


class FakeSleep:
    """An injectable ``sleep`` that records what the retry layer waited, without waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# --- OpenAI chat completions and embeddings -------------------------------------------------------------------


def openai_usage(prompt: int = 12, completion: int = 3, cached: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def openai_completion(
    text: str | None = "Hello there!",
    *,
    model: str = "gpt-4o-mini",
    finish: str = "stop",
    tool_calls: Sequence[tuple[str, str, str]] = (),
    usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` body; ``tool_calls`` as ``(id, name, arguments)``."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in tool_calls
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": dict(usage or openai_usage()),
    }


def openai_chunks(
    pieces: Sequence[str] = ("Hel", "lo", " there!"),
    *,
    model: str = "gpt-4o-mini",
    finish: str = "stop",
    tool_calls: Sequence[tuple[str, str, Sequence[str]]] = (),
    usage: Mapping[str, Any] | None = None,
) -> list[tuple[None, Any]]:
    """SSE events of a streamed completion: text pieces, tool-call argument fragments, a usage chunk, ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> tuple[None, Any]:
        return (
            None,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            },
        )

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in pieces]
    for index, (call_id, name, fragments) in enumerate(tool_calls):
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                    ]
                }
            )
        )
        events += [chunk({"tool_calls": [{"index": index, "function": {"arguments": f}}]}) for f in fragments]
    events.append(chunk({}, finish))
    events.append(
        (
            None,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": [],
                "usage": dict(usage or openai_usage()),
            },
        )
    )
    events.append((None, "[DONE]"))
    return events


def openai_error(message: str, *, type: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


def openai_embeddings(vectors: Sequence[Sequence[float]], *, model: str = "text-embedding-3-small") -> dict[str, Any]:
    return {
        "object": "list",
        "model": model,
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
        "data": [{"object": "embedding", "index": i, "embedding": list(v)} for i, v in enumerate(vectors)],
    }


# --- Anthropic messages ---------------------------------------------------------------------------------------


def anthropic_usage(input_tokens: int = 12, output_tokens: int = 3, cache_read: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": 0,
    }


def anthropic_message(
    text: str | None = "Hello there!",
    *,
    model: str = "claude-haiku-4-5",
    stop: str = "end_turn",
    tool_uses: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
    usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``message`` body; ``tool_uses`` as ``(id, name, input)``."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text is not None else []
    content += [{"type": "tool_use", "id": i, "name": n, "input": dict(inp)} for i, n, inp in tool_uses]
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": dict(usage or anthropic_usage()),
    }


def anthropic_events(
    pieces: Sequence[str] = ("Hel", "lo", " there!"),
    *,
    model: str = "claude-haiku-4-5",
    stop: str = "end_turn",
    tool_uses: Sequence[tuple[str, str, Sequence[str]]] = (),
    input_tokens: int = 12,
    output_tokens: int = 3,
    cache_read: int = 0,
) -> list[tuple[str, Any]]:
    """SSE events of a streamed message: text deltas, ``input_json_delta`` fragments per tool use, usage."""
    start_usage = {
        "input_tokens": input_tokens,
        "output_tokens": 1,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": 0,
    }
    events: list[tuple[str, Any]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    index = 0
    if pieces:
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
        )
        events += [
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
            )
            for p in pieces
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for offset, (tool_id, name, fragments) in enumerate(tool_uses):
        i = index + offset
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": i,
                    "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}},
                },
            )
        )
        events += [
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": f}},
            )
            for f in fragments
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def anthropic_error(message: str, *, type: str = "invalid_request_error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": type, "message": message}}
