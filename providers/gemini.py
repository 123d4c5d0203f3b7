"""Google Gemini generator and embedder over the ``google-genai`` SDK (``from google import genai``)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import re
import time
import uuid
from collections import OrderedDict
from typing import Any, AsyncIterator, Literal, Mapping, Sequence

from ragkit.component import ComponentConfig, EnvVarName, Field, ServerUrl, scrub, secret_from_env
from ragkit.errors import (
    AuthError,
    BadRequest,
    ConfigError,
    ContextOverflow,
    MalformedReply,
    RagkitError,
    RateLimited,
    Timeout,
    Unavailable,
)
from ragkit.generate.base import BaseEmbedder, BaseGenerator
from ragkit.providers._http import build_config, snippet, stream_cut_short, validation_problems
from ragkit.retry import RetryPolicy
from ragkit.types import Delta, Message, Reply, StopReason, ToolCall, ToolSpec, Usage

log = logging.getLogger("ragkit.providers.gemini")
PROVIDER = "gemini"

# Longest matching prefix wins, so dated/preview variants inherit their family's window.
KNOWN_CONTEXT_WINDOWS: dict[str, int] = {
    "gemini-3-pro": 1_048_576,
    "gemini-3-flash": 1_048_576,
    "gemini-2.5-pro": 1_048_576,
    "gemini-2.5-flash": 1_048_576,
    "gemini-2.5-flash-lite": 1_048_576,
    "gemini-2.0-flash": 1_048_576,
    "gemini-2.0-flash-lite": 1_048_576,
    "gemini-1.5-pro": 2_097_152,
    "gemini-1.5-flash": 1_048_576,
    "gemma-3": 131_072,
}
KNOWN_EMBEDDING_DIMS: dict[str, int] = {"gemini-embedding-001": 3072, "text-embedding-004": 768, "embedding-001": 768}
EMBED_BATCH_CAP = 100  # batchEmbedContents rejects more than 100 requests

_FINISH: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
}
# Ids we invent when Gemini sends none; never sent back, since the API would not know them.
_GENERATED_ID_PREFIX = "gemini-call-"


def _sdk() -> tuple[Any, Any]:
    try:
        from google import genai
        from google.genai import types
    except ImportError as e:
        raise ConfigError("the Gemini provider needs the google-genai SDK: pip install 'ragkit[gemini]'") from e
    return genai, types


def _make_client(api_key_env: str, base_url: str | None, timeout_s: float) -> Any:
    genai, types = _sdk()
    key = secret_from_env(api_key_env, what="Gemini API key")
    assert key is not None
    # attempts=1 turns off the SDK's own retries (also its implicit reconnect loop): RetryPolicy owns retrying.
    options = types.HttpOptions(
        base_url=base_url, timeout=max(1, int(timeout_s * 1000)), retry_options=types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key=key.get_secret_value(), http_options=options)


# ---------------------------------------------------------------- schema rewriting

_KEEP = {
    "type",
    "format",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "pattern",
    "anyOf",
    "propertyOrdering",
}


def gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrite a JSON Schema into the OpenAPI subset Gemini accepts; ``BadRequest`` names what cannot be expressed.

    ``$ref``/``$defs`` are inlined, ``anyOf: [X, null]`` and ``type: [X, "null"]`` become X with ``nullable``,
    ``const`` becomes a one-value ``enum``, ``oneOf`` is read as ``anyOf``, a one-item ``allOf`` is merged,
    and keys Gemini rejects (``additionalProperties``, ``title``, ``default``, ``$schema`` …) are dropped.
    """
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _rewrite(schema, defs, "$", ())


def _rewrite(node: Any, defs: Mapping[str, Any], path: str, seen: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(node, Mapping):
        raise BadRequest(f"schema at {path} must be an object, got {type(node).__name__}", provider=PROVIDER)
    node = dict(node)
    if "$ref" in node:
        ref = node.pop("$ref")
        name = ref.rsplit("/", 1)[-1]
        if not ref.startswith(("#/$defs/", "#/definitions/")) or name not in defs:
            raise BadRequest(f"schema at {path}: cannot resolve $ref {ref!r}", provider=PROVIDER)
        if name in seen:
            raise BadRequest(
                f"schema at {path}: recursive $ref {ref!r} cannot be inlined for Gemini", provider=PROVIDER
            )
        target = _rewrite(defs[name], defs, path, seen + (name,))
        # Sibling keys (a description next to the $ref) override the target's.
        return {**target, **_rewrite(node, defs, path, seen)} if node else target
    if "allOf" in node:
        parts = node.pop("allOf")
        if len(parts) != 1:
            raise BadRequest(
                f"schema at {path}: allOf with {len(parts)} schemas is not supported by Gemini", provider=PROVIDER
            )
        node = {**parts[0], **node}
        return _rewrite(node, defs, path, seen)
    if "oneOf" in node:
        node["anyOf"] = node.pop("oneOf")
    out: dict[str, Any] = {}
    if "anyOf" in node:
        branches = list(node.pop("anyOf"))
        non_null = [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
        nullable = len(non_null) < len(branches)
        if not non_null:
            raise BadRequest(f"schema at {path}: anyOf allows only null", provider=PROVIDER)
        if len(non_null) == 1:
            merged = _rewrite(non_null[0], defs, path, seen)
            rest = _rewrite(node, defs, path, seen) if node else {}
            out = {**merged, **rest}
        else:
            out = _rewrite(node, defs, path, seen) if node else {}
            out["anyOf"] = [_rewrite(b, defs, f"{path}.anyOf[{i}]", seen) for i, b in enumerate(non_null)]
        if nullable:
            out["nullable"] = True
        return out
    kind = node.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        if len(types) != 1:
            raise BadRequest(
                f"schema at {path}: type {kind!r} is a union Gemini cannot express; use anyOf", provider=PROVIDER
            )
        node["type"] = types[0]
        if len(types) < len(kind):
            out["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "enum" in node:
        values = node["enum"]
        if not all(isinstance(v, str) for v in values):
            raise BadRequest(f"schema at {path}: Gemini enums hold strings only, got {values!r}", provider=PROVIDER)
        node.setdefault("type", "string")
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _rewrite(sub, defs, f"{path}.properties.{name}", seen) for name, sub in value.items()}
        elif key == "items":
            if isinstance(value, list):
                raise BadRequest(f"schema at {path}: tuple-style items are not supported by Gemini", provider=PROVIDER)
            out[key] = _rewrite(value, defs, f"{path}.items", seen)
        elif key in _KEEP:
            out[key] = value
        else:
            log.debug("gemini_schema: dropping %s at %s", key, path)
    return out


# ---------------------------------------------------------------- errors


def _retry_after(e: Any) -> float | None:
    headers = getattr(getattr(e, "response", None), "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time()) if when else None
    # Gemini usually says it in the body instead: google.rpc.RetryInfo {"retryDelay": "31s"}.
    details = getattr(e, "details", None)
    errors = details.get("error", details) if isinstance(details, Mapping) else {}
    for item in errors.get("details", []) if isinstance(errors, Mapping) else []:
        delay = item.get("retryDelay") if isinstance(item, Mapping) else None
        if isinstance(delay, str) and re.fullmatch(r"\d+(\.\d+)?s", delay):
            return float(delay[:-1])
    return None


def _translate(e: BaseException, model: str) -> RagkitError | None:
    """The one map from SDK/transport exceptions to ragkit errors; None when ``e`` is not an SDK failure."""
    from google.genai import errors as genai_errors
    from pydantic import ValidationError

    if isinstance(e, genai_errors.APIError):
        code = int(e.code or 0)
        msg = f"{code} {e.status or ''}: {e.message or ''}".strip()
        low = msg.lower()
        if code in (401, 403) or "api key not valid" in low:
            return AuthError(f"{msg} (check the API key in the environment variable)", provider=PROVIDER, status=code)
        if code == 429:
            return RateLimited(msg, retry_after=_retry_after(e), provider=PROVIDER, status=code)
        if code == 404:
            return BadRequest(f"{msg} (check the `model` field: {model!r})", provider=PROVIDER, status=code)
        if code in (400, 413, 422) and ("token" in low and ("exceed" in low or "too long" in low) or code == 413):
            return ContextOverflow(msg, provider=PROVIDER, status=code)
        if code == 408 or code == 504:
            return Timeout(msg, provider=PROVIDER, status=code)
        if code >= 500:
            return Unavailable(msg, provider=PROVIDER, status=code)
        return BadRequest(msg, provider=PROVIDER, status=code or None)
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)) or "Timeout" in type(e).__name__:
        return Timeout(f"request timed out ({type(e).__name__})", provider=PROVIDER)
    module = type(e).__module__.split(".")[0]
    if isinstance(e, (ConnectionError, OSError)) or module in ("aiohttp", "httpx", "httpx2", "httpcore"):
        return Unavailable(f"cannot reach the Gemini API: {type(e).__name__}: {e}", provider=PROVIDER)
    if isinstance(e, (json.JSONDecodeError, genai_errors.UnknownApiResponseError)):
        raw = e.doc if isinstance(e, json.JSONDecodeError) else str(e).partition("Raw response:")[2].strip()
        return MalformedReply(f"the reply is not valid JSON: {snippet(raw)}", provider=PROVIDER)
    if isinstance(e, ValidationError):
        if e.title.endswith("Response"):
            # The SDK validates what the server sent against its own reply models.
            return MalformedReply(f"the reply breaks the API's format: {validation_problems(e)}", provider=PROVIDER)
        return BadRequest(f"the SDK rejected the request: {e}", provider=PROVIDER)
    return None


def _check(response: Any, what: str, *, whole: bool) -> None:
    """``MalformedReply`` for a reply (or, with ``whole=False``, a stream chunk) that carries nothing the API says
    it must: candidates, a prompt block reason, or (a chunk) usage."""
    candidates = getattr(response, "candidates", None) or []
    feedback = getattr(response, "prompt_feedback", None)
    blocked = feedback is not None and feedback.block_reason
    if not candidates and not blocked and (whole or getattr(response, "usage_metadata", None) is None):
        raise MalformedReply(f"{what} has no candidates and no promptFeedback.blockReason", provider=PROVIDER)
    if candidates and candidates[0].content is None and candidates[0].finish_reason is None:
        raise MalformedReply(f"{what}: candidates[0] has neither content nor finishReason", provider=PROVIDER)


class _Translating:
    """Context manager: SDK exceptions leave as ragkit errors, chained."""

    def __init__(self, model: str) -> None:
        self.model = model

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, e: BaseException | None, tb: Any) -> bool:
        if e is None or isinstance(e, (RagkitError, asyncio.CancelledError)) or not isinstance(e, Exception):
            return False
        mapped = _translate(e, self.model)
        if mapped is None:
            return False
        # A server may echo the key: it leaves the message, and the SDK error carrying it is not chained.
        text = str(mapped)
        if scrub(text) != text:
            mapped.args = (scrub(text),)
        raise mapped from (None if scrub(str(e)) != str(e) else e)


# ---------------------------------------------------------------- generator


class GeminiGeneratorConfig(ComponentConfig):
    """Settings of a Gemini chat model."""

    model: str = Field(..., min_length=1, max_length=200, description="Gemini model name, e.g. gemini-2.5-flash.")
    api_key_env: EnvVarName = Field(
        "GEMINI_API_KEY",
        min_length=1,
        max_length=100,
        description="Environment variable holding the API key.",
    )
    base_url: ServerUrl | None = Field(
        None, max_length=500, description="API endpoint override (a proxy or a test server)."
    )
    timeout_s: float = Field(60.0, gt=0, le=3600, description="Per-request timeout in seconds.")
    max_output_tokens: int = Field(1024, ge=1, le=1_000_000, description="Output cap when a call gives no max_tokens.")
    temperature: float | None = Field(
        None, ge=0, le=2, description="Sampling temperature; the model's default when unset."
    )
    context_window: int | None = Field(
        None, ge=1, le=10_000_000, description="Override for models missing from KNOWN_CONTEXT_WINDOWS."
    )


def _context_window(model: str, override: int | None) -> int:
    if override:
        return override
    name = model.removeprefix("models/")
    matches = [k for k in KNOWN_CONTEXT_WINDOWS if name == k or name.startswith(k + "-")]
    if not matches:
        raise ConfigError(f"unknown context window for Gemini model {model!r}; set `context_window` in its config")
    return KNOWN_CONTEXT_WINDOWS[max(matches, key=len)]


class GeminiGenerator(BaseGenerator):
    """Chat with Gemini through ``client.aio.models.generate_content``/``generate_content_stream``."""

    Config = GeminiGeneratorConfig

    def __init__(
        self, config: GeminiGeneratorConfig, *, client: Any | None = None, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(retry=retry)
        self.config = config
        self.id = f"gemini:{config.model}"
        self.context_window = _context_window(config.model, config.context_window)
        self._client = (
            client if client is not None else _make_client(config.api_key_env, config.base_url, config.timeout_s)
        )
        self._declarations: dict[str, Any] = {}
        # thought signatures Gemini 3 requires echoed with each function call, by ToolCall id
        self._signatures: OrderedDict[str, bytes] = OrderedDict()

    @classmethod
    def from_config(cls, config: GeminiGeneratorConfig | Mapping[str, Any], **collaborators: Any) -> GeminiGenerator:
        return cls(
            build_config(cls.Config, config, {}),
            client=collaborators.get("client"),
            retry=collaborators.get("retry"),
        )

    def __repr__(self) -> str:
        return f"GeminiGenerator(model={self.config.model!r})"

    async def aclose(self) -> None:
        """Close the SDK's HTTP sessions."""
        await self._client.aio.aclose()

    def declaration(self, spec: ToolSpec) -> Any:
        """The function declaration for ``spec``, converted once and cached."""
        key = json.dumps([spec.name, spec.description, spec.parameters], sort_keys=True, default=str)
        found = self._declarations.get(key)
        if found is None:
            _, types = _sdk()
            parameters = gemini_schema(spec.parameters)
            # Gemini rejects an OBJECT with no properties; a tool without arguments declares none.
            if parameters.get("type", "object") == "object" and not parameters.get("properties"):
                parameters = None
            with _Translating(self.config.model):
                found = types.FunctionDeclaration(name=spec.name, description=spec.description, parameters=parameters)
            self._declarations[key] = found
        return found

    def _request(
        self,
        messages: Sequence[Message],
        max_tokens: int | None,
        tools: Sequence[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
    ) -> tuple[list[dict[str, Any]], Any]:
        _, types = _sdk()
        system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
        config: dict[str, Any] = {
            "max_output_tokens": max_tokens or self.config.max_output_tokens,
            "automatic_function_calling": {"disable": True},
        }
        if system:
            config["system_instruction"] = system
        if self.config.temperature is not None:
            config["temperature"] = self.config.temperature
        if tools:
            config["tools"] = [types.Tool(function_declarations=[self.declaration(t) for t in tools])]
        if json_schema is not None:
            config["response_mime_type"] = "application/json"
            config["response_schema"] = gemini_schema(json_schema)
        with _Translating(self.config.model):
            return self._contents(messages), types.GenerateContentConfig(**config)

    def _contents(self, messages: Sequence[Message]) -> list[dict[str, Any]]:
        contents: list[dict[str, Any]] = []
        names: dict[str, str] = {}
        tool_turn: list[dict[str, Any]] | None = None
        for m in messages:
            if m.role == "system":
                continue
            if m.role == "tool":
                name = m.name or names.get(m.tool_call_id or "")
                if not name:
                    raise BadRequest(
                        f"tool result {m.tool_call_id!r} matches no earlier tool call and has no name",
                        provider=PROVIDER,
                    )
                response = {
                    "name": name,
                    "response": {"error": m.content} if m.is_error else {"output": _json_or_text(m.content)},
                }
                if m.tool_call_id and not m.tool_call_id.startswith(_GENERATED_ID_PREFIX):
                    response["id"] = m.tool_call_id
                # All results answering one model turn go back together in a single user turn.
                if tool_turn is None:
                    tool_turn = []
                    contents.append({"role": "user", "parts": tool_turn})
                tool_turn.append({"function_response": response})
                continue
            tool_turn = None
            if m.role == "user":
                contents.append({"role": "user", "parts": [{"text": m.content}]})
                continue
            parts: list[dict[str, Any]] = [{"text": m.content}] if m.content else []
            for call in m.tool_calls:
                names[call.id] = call.name
                fc: dict[str, Any] = {"name": call.name, "args": _arguments(call)}
                if not call.id.startswith(_GENERATED_ID_PREFIX):
                    fc["id"] = call.id
                part: dict[str, Any] = {"function_call": fc}
                if call.id in self._signatures:
                    part["thought_signature"] = self._signatures[call.id]
                parts.append(part)
            contents.append({"role": "model", "parts": parts or [{"text": ""}]})
        return contents

    def _tool_call(self, part: Any) -> ToolCall:
        fc = part.function_call
        call = ToolCall(
            id=fc.id or f"{_GENERATED_ID_PREFIX}{uuid.uuid4().hex[:12]}",
            name=fc.name or "",
            arguments=json.dumps(fc.args or {}, ensure_ascii=False),
        )
        if part.thought_signature:
            self._signatures[call.id] = part.thought_signature
            while len(self._signatures) > 1024:
                self._signatures.popitem(last=False)
        return call

    async def _complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None,
        tools: Sequence[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
    ) -> Reply:
        contents, config = self._request(messages, max_tokens, tools, json_schema)
        with _Translating(self.config.model):
            response = await self._client.aio.models.generate_content(
                model=self.config.model, contents=contents, config=config
            )
        _check(response, "the reply", whole=True)
        texts: list[str] = []
        calls: list[ToolCall] = []
        for part in _parts(response):
            if part.text and not part.thought:
                texts.append(part.text)
            if part.function_call:
                calls.append(self._tool_call(part))
        return self._reply("".join(texts), calls, response, _finish(response))

    async def _stream(
        self, messages: Sequence[Message], *, max_tokens: int | None, tools: Sequence[ToolSpec] | None
    ) -> AsyncIterator[Delta]:
        contents, config = self._request(messages, max_tokens, tools, None)
        texts: list[str] = []
        calls: list[ToolCall] = []
        last: Any = None
        finish: str | None = None
        with _Translating(self.config.model):
            chunks = await self._client.aio.models.generate_content_stream(
                model=self.config.model, contents=contents, config=config
            )
            n = 0
            async for chunk in chunks:
                n += 1
                _check(chunk, f"stream event {n}", whole=False)
                last = chunk
                finish = _finish(chunk) or finish
                for part in _parts(chunk):
                    if part.text and not part.thought:
                        texts.append(part.text)
                        yield Delta(text=part.text)
                    if part.function_call:
                        call = self._tool_call(part)
                        calls.append(call)
                        yield Delta(tool_calls=(call,))
        feedback = getattr(last, "prompt_feedback", None)
        if finish is None and not (feedback is not None and feedback.block_reason):
            raise stream_cut_short("the stream", "finishReason", provider=PROVIDER)
        yield Delta(reply=self._reply("".join(texts), calls, last, finish))

    def _reply(self, text: str, calls: list[ToolCall], response: Any, finish: str | None) -> Reply:
        meta = getattr(response, "usage_metadata", None)
        usage = Usage(
            input_tokens=(meta.prompt_token_count or 0) if meta else 0,
            # Thinking tokens are billed as output.
            output_tokens=((meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)) if meta else 0,
            cached_tokens=(meta.cached_content_token_count or 0) if meta else 0,
        )
        feedback = getattr(response, "prompt_feedback", None)
        blocked = feedback.block_reason if feedback is not None else None
        if blocked:
            stop: StopReason = "content_filter"
        elif calls:
            stop = "tool_calls"
        else:
            stop = _FINISH.get(finish or "", "unknown" if finish else "stop")
        metadata: dict[str, Any] = {"finish_reason": finish} if finish else {}
        if blocked:
            metadata["block_reason"] = str(getattr(blocked, "value", blocked))
        return Reply(
            text=text,
            model=getattr(response, "model_version", None) or self.config.model,
            usage=usage,
            stop_reason=stop,
            tool_calls=tuple(calls),
            metadata=metadata,
        )


def _parts(response: Any) -> list[Any]:
    candidates = getattr(response, "candidates", None) or []
    content = candidates[0].content if candidates else None
    return list(content.parts or []) if content is not None else []


def _finish(response: Any) -> str | None:
    candidates = getattr(response, "candidates", None) or []
    reason = candidates[0].finish_reason if candidates else None
    return str(getattr(reason, "value", reason)) if reason else None


def _arguments(call: ToolCall) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as e:
        raise BadRequest(
            f"tool call {call.id} ({call.name}) has arguments that are not JSON: {e}", provider=PROVIDER
        ) from e
    if not isinstance(args, dict):
        raise BadRequest(f"tool call {call.id} ({call.name}) arguments must be a JSON object", provider=PROVIDER)
    return args


def _json_or_text(content: str) -> Any:
    try:
        return json.loads(content)
    except (json.JSONDecodeError, ValueError):
        return content


# ---------------------------------------------------------------- embedder

TaskType = Literal[
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
]


class GeminiEmbedderConfig(ComponentConfig):
    """Settings of a Gemini embedding model."""

    model: str = Field("gemini-embedding-001", min_length=1, max_length=200, description="Gemini embedding model name.")
    api_key_env: EnvVarName = Field(
        "GEMINI_API_KEY",
        min_length=1,
        max_length=100,
        description="Environment variable holding the API key.",
    )
    base_url: ServerUrl | None = Field(
        None, max_length=500, description="API endpoint override (a proxy or a test server)."
    )
    timeout_s: float = Field(60.0, gt=0, le=3600, description="Per-request timeout in seconds.")
    output_dimensionality: int | None = Field(
        None, ge=1, le=8192, description="Truncate vectors to this many dimensions."
    )
    task_type: TaskType | None = Field(None, description="Gemini task type hint, e.g. RETRIEVAL_DOCUMENT.")
    max_batch: int = Field(
        EMBED_BATCH_CAP, ge=1, le=EMBED_BATCH_CAP, description="Texts per request (the API allows 100)."
    )
    normalize: bool = Field(True, description="Scale vectors to unit length (truncated Gemini vectors are not).")


class GeminiEmbedder(BaseEmbedder):
    """Embeds through ``client.aio.models.embed_content`` (batchEmbedContents), at most 100 texts a request."""

    Config = GeminiEmbedderConfig

    def __init__(
        self, config: GeminiEmbedderConfig, *, client: Any | None = None, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(retry=retry)
        self.config = config
        dim = config.output_dimensionality or KNOWN_EMBEDDING_DIMS.get(config.model.removeprefix("models/"))
        if not dim:
            raise ConfigError(f"unknown vector size for Gemini model {config.model!r}; set `output_dimensionality`")
        self.dim = dim
        self.max_batch = config.max_batch
        self.id = f"gemini:{config.model}:{dim}"
        self._client = (
            client if client is not None else _make_client(config.api_key_env, config.base_url, config.timeout_s)
        )

    @classmethod
    def from_config(cls, config: GeminiEmbedderConfig | Mapping[str, Any], **collaborators: Any) -> GeminiEmbedder:
        return cls(
            build_config(cls.Config, config, {}),
            client=collaborators.get("client"),
            retry=collaborators.get("retry"),
        )

    def __repr__(self) -> str:
        return f"GeminiEmbedder(model={self.config.model!r}, dim={self.dim})"

    async def aclose(self) -> None:
        """Close the SDK's HTTP sessions."""
        await self._client.aio.aclose()

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        _, types = _sdk()
        config = types.EmbedContentConfig(
            output_dimensionality=self.config.output_dimensionality, task_type=self.config.task_type
        )
        with _Translating(self.config.model):
            response = await self._client.aio.models.embed_content(
                model=self.config.model, contents=list(texts), config=config
            )
        embeddings = response.embeddings or []
        if len(embeddings) != len(texts):
            raise MalformedReply(f"asked for {len(texts)} embeddings, got {len(embeddings)}", provider=PROVIDER)
        missing = [i for i, e in enumerate(embeddings) if not e.values]
        if missing:
            raise MalformedReply(f"embeddings {missing[:10]} of the reply have no values", provider=PROVIDER)
        vectors = [list(e.values or []) for e in embeddings]
        for v in vectors:
            if len(v) != self.dim:
                raise BadRequest(
                    f"model returned {len(v)}-dimensional vectors, config expects {self.dim}", provider=PROVIDER
                )
        return [_unit(v) for v in vectors] if self.config.normalize else vectors


def _unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm else v


__all__ = [
    "GeminiGenerator",
    "GeminiGeneratorConfig",
    "GeminiEmbedder",
    "GeminiEmbedderConfig",
    "gemini_schema",
    "KNOWN_CONTEXT_WINDOWS",
    "KNOWN_EMBEDDING_DIMS",
    "EMBED_BATCH_CAP",
]
