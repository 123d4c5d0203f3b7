"""The OpenAI chat-completions wire format as ragkit speaks it: request models, error shape, replies and chunks.

Requests are validated by pydantic models that accept the fields OpenAI clients send and ragkit does not use
(``temperature``, ``user``, ``seed``, …) and refuse those that would change the answer's meaning and cannot be
honoured (``n`` > 1, ``tools``, a JSON-schema ``response_format``, non-text content). Every refusal is an
``ApiError`` that renders as ``{"error": {"message", "type", "param", "code"}}``.

ragkit's own extras travel in a ``ragkit`` field: in a request (``filter``, ``top_k``: send it with the SDK's
``extra_body``) and in a reply (``sources``, ``grounding``, ``query``, ``route``, …), which official clients ignore.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragkit.types import Message, Reply

ErrorType = Literal["invalid_request_error", "authentication_error", "not_found_error", "rate_limit_error",
                    "server_error", "timeout_error"]  # fmt: skip

SNIPPET_CHARS = 300


class ApiError(Exception):
    """An error the API answers with, in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: ErrorType = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None


class RagkitOptions(BaseModel):
    """The ``ragkit`` request extension."""

    model_config = ConfigDict(extra="forbid")
    filter: dict[str, Any] | None = Field(None, description="Payload filter DSL (ragkit.retrieve.filters).")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(..., min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=500)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int | None = Field(None, ge=1, le=1)
    tools: list[Any] | None = Field(None, max_length=0)
    response_format: dict[str, Any] | None = None
    ragkit: RagkitOptions | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(..., min_length=1, max_length=4000)
    model: str | None = Field(None, min_length=1, max_length=200)
    top_k: int = Field(5, ge=1, le=100)
    filter: dict[str, Any] | None = None


def _param(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(model: type[BaseModel], data: Any) -> Any:
    """Validate a request body; the first problem becomes a 400 naming its field."""
    if not isinstance(data, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {type(data).__name__}", code="invalid_body")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        param = _param(err["loc"])
        hints = {
            "n": "only n=1 is supported",
            "tools": "tools are not supported: ragkit answers from its own sources",
        }
        message = hints.get(param) or f"{param}: {err['msg']}"
        raise ApiError(400, message, param=param, code="invalid_value") from None


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8 text", code="invalid_json") from None
    except json.JSONDecodeError as e:
        raise ApiError(
            400, f"the request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", code="invalid_json"
        ) from None


def _text(message: ChatMessage, i: int) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    parts = []
    for j, part in enumerate(message.content):
        if part.type != "text" or part.text is None:
            raise ApiError(
                400,
                f"only text content is supported, got a {part.type!r} part",
                param=f"messages[{i}].content[{j}]",
                code="unsupported_content",
            )
        parts.append(part.text)
    return "\n".join(parts)


def conversation(request: ChatRequest, max_question_chars: int) -> tuple[str, list[Message]]:
    """The last user message as the question and the user/assistant turns before it as history.

    System and developer messages are left out: ragkit's grounded system prompt is the one that counts."""
    fmt = request.response_format or {}
    if fmt.get("type") not in (None, "text"):
        raise ApiError(400, "only text responses are supported", param="response_format", code="invalid_value")
    last = len(request.messages) - 1
    if request.messages[last].role != "user":
        raise ApiError(400, "the last message must come from the user", param=f"messages[{last}].role")
    question = _text(request.messages[last], last).strip()
    if not question:
        raise ApiError(400, "the last user message is empty", param=f"messages[{last}].content")
    if len(question) > max_question_chars:
        raise ApiError(
            400,
            f"the question has {len(question)} characters; at most {max_question_chars} are accepted",
            param=f"messages[{last}].content",
            code="question_too_long",
        )
    history = []
    for i, m in enumerate(request.messages[:last]):
        if m.role == "tool":
            raise ApiError(400, "tool messages are not supported", param=f"messages[{i}].role")
        if m.role in ("user", "assistant"):
            text = _text(m, i)
            if text.strip():
                history.append(Message(m.role, text))
    return question, history


def jsonable(value: Any, depth: int = 0) -> Any:
    """Plain JSON data for a metadata value: dataclasses and mappings walked, ``to_dict`` used, the rest as text."""
    if depth > 8:
        return str(value)
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, depth + 1)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, depth + 1) for v in value]
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="json"), depth + 1)
    return str(value)


def hit_data(hit: Any, n: int | None = None, *, snippet: int | None = None) -> dict[str, Any]:
    """A retrieved chunk as plain data: ids, score, text (or a snippet of it), payload metadata."""
    chunk = hit.chunk
    meta = jsonable(dict(chunk.metadata))
    text = chunk.text if snippet is None or len(chunk.text) <= snippet else chunk.text[:snippet].rstrip() + "…"
    out: dict[str, Any] = {"chunk_id": chunk.id, "doc_id": chunk.doc_id, "score": jsonable(float(hit.score))}
    if n is not None:
        out = {"n": n, **out, "title": str(meta.get("title") or chunk.doc_id)}
        for key in ("page", "heading", "source"):
            if meta.get(key) is not None:
                out[key] = meta[key]
    return {**out, "text": text, "metadata": meta}


_FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter"}


def extension(reply: Reply | None) -> dict[str, Any]:
    """The ``ragkit`` field of a reply: sources with their payloads, grounding, the searched query, route, cost."""
    if reply is None:
        return {"sources": []}
    meta = reply.metadata or {}
    out: dict[str, Any] = {"sources": [hit_data(h, n, snippet=SNIPPET_CHARS) for n, h in enumerate(reply.sources, 1)]}
    for key in ("grounding", "query", "route", "intent", "response_cache"):
        if meta.get(key) is not None:
            out[key] = jsonable(meta[key])
    report = meta.get("usage_report")
    if report is not None:
        out["cost_usd"] = report.cost_usd
        out["request_id"] = report.request_id
    return out


def usage_data(reply: Reply | None) -> dict[str, Any]:
    """OpenAI's usage block: the request's tokens from the usage report, else the reply's own."""
    report = (reply.metadata or {}).get("usage_report") if reply is not None else None
    if report is not None:
        prompt, completion, cached = report.input_tokens, report.output_tokens, report.cached_tokens
    elif reply is not None:
        prompt, completion, cached = reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens
    else:
        prompt = completion = cached = 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


class Completion:
    """The ids and timestamps shared by one completion's reply or chunks."""

    def __init__(self, model: str) -> None:
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.model = model

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model, "system_fingerprint": None}

    def reply(self, reply: Reply) -> dict[str, Any]:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": reply.text, "refusal": None},
            "logprobs": None,
            "finish_reason": _FINISH.get(reply.stop_reason, "stop"),
        }
        return {
            **self._head("chat.completion"),
            "choices": [choice],
            "usage": usage_data(reply),
            "ragkit": extension(reply),
        }

    def chunk(self, delta: Mapping[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish}
        return {**self._head("chat.completion.chunk"), "choices": [choice], **extra}

    def last_chunk(self, reply: Reply | None) -> dict[str, Any]:
        finish = _FINISH.get(reply.stop_reason, "stop") if reply is not None else "stop"
        return self.chunk({}, finish, ragkit=extension(reply))

    def usage_chunk(self, reply: Reply | None) -> dict[str, Any]:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": usage_data(reply)}


def sse(data: Any) -> bytes:
    """One server-sent event carrying JSON."""
    return b"data: " + json.dumps(data, ensure_ascii=False).encode("utf-8") + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"

__all__ = [
    "ApiError",
    "ChatRequest",
    "SearchRequest",
    "RagkitOptions",
    "Completion",
    "parse",
    "decode_json",
    "conversation",
    "jsonable",
    "hit_data",
    "extension",
    "usage_data",
    "sse",
    "SSE_DONE",
]
