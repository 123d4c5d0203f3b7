"""OpenAI and OpenAI-compatible servers (vLLM, TGI, llama.cpp server, Ollama ``/v1``): chat and embeddings."""

from __future__ import annotations

import json
import re
from typing import Any, AsyncIterator, Literal, Mapping, NoReturn, Sequence

from pydantic import SecretStr, model_validator

from ragkit.component import ComponentConfig, EnvVarName, Field, ServerUrl, secret_from_env
from ragkit.errors import BadRequest, ConfigError, MalformedReply, ProviderError, Timeout, Unavailable
from ragkit.generate.base import BaseEmbedder, BaseGenerator
from ragkit.providers._http import (
    LoopLocalClient,
    ToolShapeCache,
    Wire,
    build_config,
    error_detail,
    error_for_status,
    expect_event_stream,
    leaks,
    not_json,
    read_wire,
    redact,
    sdk_import_error,
    stream_cut_short,
)
from ragkit.retry import RetryPolicy
from ragkit.tokens import TiktokenCounter
from ragkit.types import Delta, Message, Reply, StopReason, ToolCall, ToolSpec, Usage

PROVIDER = "openai"
# Sent to servers that need no key, so the SDK never falls back to a real OPENAI_API_KEY from the environment.
NO_KEY = "no-key"

# Context windows (tokens) of common models; a dated snapshot matches by its longest known prefix.
KNOWN_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "chatgpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
}
KNOWN_EMBEDDING_DIMS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_STOP: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def known_context_window(model: str) -> int | None:
    """The context window of a known model name (longest matching prefix), else ``None``."""
    matches = [p for p in KNOWN_CONTEXT_WINDOWS if model == p or model.startswith(p + "-")]
    return KNOWN_CONTEXT_WINDOWS[max(matches, key=len)] if matches else None


# The reply fields ragkit reads, as the API documents them; a reply that breaks them is MalformedReply.
class _Function(Wire):
    name: str
    arguments: str | None = None


class _ToolCall(Wire):
    id: str
    function: _Function | None = None  # None for tool kinds other than functions


class _Message(Wire):
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(Wire):
    index: int = 0
    message: _Message
    finish_reason: str | None = None


class _PromptDetails(Wire):
    cached_tokens: int | None = None


class _Usage(Wire):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None


class _Completion(Wire):
    model: str | None = None
    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


class _DeltaFunction(Wire):
    name: str | None = None
    arguments: str | None = None


class _DeltaToolCall(Wire):
    index: int
    id: str | None = None
    function: _DeltaFunction | None = None


class _Delta(Wire):
    content: str | None = None
    tool_calls: list[_DeltaToolCall] | None = None


class _ChunkChoice(Wire):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Chunk(Wire):
    model: str | None = None
    choices: list[_ChunkChoice]
    usage: _Usage | None = None


class _Embedding(Wire):
    index: int
    embedding: list[float]


class _Embeddings(Wire):
    data: list[_Embedding]


class _ConnectionConfig(ComponentConfig):
    api_key_env: EnvVarName | None = Field(
        "OPENAI_API_KEY",
        min_length=1,
        max_length=200,
        description="Name of the environment variable holding the API key; null only for a keyless server at base_url.",
    )
    base_url: ServerUrl | None = Field(
        None, min_length=1, max_length=2000, description="An OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1."
    )
    organization: str | None = Field(None, min_length=1, max_length=200, description="OpenAI organization id.")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="Timeout of one HTTP request, in seconds.")

    @model_validator(mode="after")
    def _key_or_server(self) -> _ConnectionConfig:
        if self.api_key_env is None and self.base_url is None:
            raise ValueError("api_key_env may be null only when base_url names a server that needs no key")
        return self


class OpenAIGeneratorConfig(_ConnectionConfig):
    """Chat completions from OpenAI or an OpenAI-compatible server."""

    model: str = Field(..., min_length=1, max_length=200, description="Model name, e.g. gpt-4o-mini.")
    temperature: float | None = Field(
        None, ge=0, le=2, description="Sampling temperature; null leaves the server default."
    )
    max_output_tokens: int = Field(
        1024, ge=1, le=1_000_000, description="Reply length cap when a call gives no max_tokens."
    )
    context_window: int | None = Field(
        None,
        ge=256,
        le=10_000_000,
        description="Context window in tokens; required for models not in KNOWN_CONTEXT_WINDOWS.",
    )
    max_tokens_field: Literal["auto", "max_completion_tokens", "max_tokens"] = Field(
        "auto",
        description="Request field for the reply cap; auto: max_completion_tokens for OpenAI, max_tokens with "
        "base_url.",
    )
    stream_usage: bool = Field(
        True, description="Ask for token usage at the end of a stream (stream_options.include_usage)."
    )
    json_mode: Literal["json_schema", "json_object"] = Field(
        "json_schema",
        description="How json_schema is sent: response_format json_schema (OpenAI, vLLM), or json_object + schema "
        "(llama-cpp-python).",
    )


class OpenAIEmbedderConfig(_ConnectionConfig):
    """Embeddings from OpenAI or an OpenAI-compatible server."""

    model: str = Field("text-embedding-3-small", min_length=1, max_length=200, description="Embedding model name.")
    dimensions: int | None = Field(
        None, ge=1, le=8192, description="Ask for shorter vectors (text-embedding-3 models)."
    )
    dim: int | None = Field(
        None, ge=1, le=8192, description="Vector size; defaults to dimensions or the model's known size."
    )
    max_batch: int = Field(2048, ge=1, le=2048, description="Inputs per request (the API allows at most 2048).")


class _Connection:
    """An ``AsyncOpenAI`` client per event loop (pooled connections cannot cross loops), SDK retries off."""

    def __init__(self, config: _ConnectionConfig, http_client: Any | None) -> None:
        try:
            import openai
        except ImportError as e:
            raise sdk_import_error("openai", "openai") from e
        self.sdk = openai
        self.config = config
        self.api_key: SecretStr | None = secret_from_env(config.api_key_env) if config.api_key_env else None
        self._clients = LoopLocalClient(self._build, fixed=http_client is not None)
        self._http_client = http_client

    def _build(self) -> Any:
        c = self.config
        return self.sdk.AsyncOpenAI(
            api_key=self.api_key.get_secret_value() if self.api_key else NO_KEY,
            base_url=c.base_url,
            organization=c.organization,
            timeout=c.timeout_s,
            max_retries=0,
            http_client=self._http_client,
        )

    def client(self) -> Any:
        return self._clients.get()

    async def aclose(self) -> None:
        await self._clients.aclose()

    def read(self, model: type[Any], obj: Any, what: str) -> Any:
        """A reply object checked against its wire model."""
        return read_wire(model, obj, what, provider=PROVIDER, secret=self.api_key)

    def fail(self, e: BaseException) -> NoReturn:
        """Raise the ragkit error for an SDK exception; the only place SDK errors are mapped."""
        sdk = self.sdk
        if isinstance(e, json.JSONDecodeError):
            # The SDK decodes bodies and stream events itself; a server that sends broken JSON ends here.
            raise not_json(e, "the reply", provider=PROVIDER, secret=self.api_key) from None
        if isinstance(e, sdk.APITimeoutError):
            err: ProviderError = Timeout(f"no answer within {self.config.timeout_s:g} s", provider=PROVIDER)
        elif isinstance(e, sdk.APIConnectionError):
            err = Unavailable(f"cannot reach the server: {redact(str(e), self.api_key)}", provider=PROVIDER)
        elif isinstance(e, sdk.APIStatusError):
            message, code = error_detail(e.body, e.message)
            err = error_for_status(
                e.status_code,
                redact(message, self.api_key),
                code=code,
                headers=e.response.headers,
                provider=PROVIDER,
                model=getattr(self.config, "model", ""),
            )
        else:
            err = ProviderError(f"{type(e).__name__}: {redact(str(e), self.api_key)}", provider=PROVIDER)
        # A server may echo the key; chaining would carry it into tracebacks.
        raise err from (None if leaks(e, self.api_key) else e)


def _tool_shape(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)},
    }


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if m.role == "tool":
            if not m.tool_call_id:
                raise BadRequest(f"messages[{i}]: a tool message needs tool_call_id", provider=PROVIDER)
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
            continue
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.role == "assistant" and m.tool_calls:
            item["content"] = m.content or None
            item["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in m.tool_calls
            ]
        if m.name:
            item["name"] = m.name
        out.append(item)
    return out


def _usage(usage: _Usage | None) -> Usage:
    if usage is None:
        return Usage()
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens if details else None) or 0
    return Usage(
        input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0, cached_tokens=cached
    )


def _stop(finish_reason: str | None, has_calls: bool) -> StopReason:
    stop = _STOP.get(finish_reason or "", "unknown")
    # Some compatible servers report "stop" on a reply that calls tools.
    return "tool_calls" if has_calls and stop == "stop" else stop


def _schema_name(schema: Mapping[str, Any]) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "response"))
    return name[:64]


class OpenAIGenerator(BaseGenerator):
    """Chat completions over the ``openai`` SDK; errors mapped to ragkit, retries left to the base class."""

    Config = OpenAIGeneratorConfig

    def __init__(
        self,
        config: OpenAIGeneratorConfig | Mapping[str, Any] | None = None,
        *,
        retry: RetryPolicy | None = None,
        http_client: Any | None = None,
        **options: Any,
    ) -> None:
        super().__init__(retry=retry)
        self.config = cfg = build_config(OpenAIGeneratorConfig, config, options)
        window = cfg.context_window or known_context_window(cfg.model)
        if window is None:
            raise ConfigError(
                f"context window of model {cfg.model!r} is unknown; set context_window in the generator config"
            )
        self.context_window = window
        self.id = f"{PROVIDER}:{cfg.model}"
        self._conn = _Connection(cfg, http_client)
        self._tools = ToolShapeCache(_tool_shape)
        self._max_tokens_key = (
            cfg.max_tokens_field
            if cfg.max_tokens_field != "auto"
            else ("max_tokens" if cfg.base_url else "max_completion_tokens")
        )
        self._exact_counter: TiktokenCounter | None | bool = None

    @classmethod
    def from_config(
        cls,
        config: OpenAIGeneratorConfig | Mapping[str, Any],
        *,
        retry: RetryPolicy | None = None,
        http_client: Any | None = None,
        **_: Any,
    ) -> OpenAIGenerator:
        return cls(config, retry=retry, http_client=http_client)

    def __repr__(self) -> str:
        return f"OpenAIGenerator(model={self.config.model!r}, base_url={self.config.base_url!r})"

    def tool_shapes(self, tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
        """The ``tools`` request field, converted once per sequence of specs."""
        return self._tools.get(tools)

    def _request(
        self,
        messages: Sequence[Message],
        max_tokens: int | None,
        tools: Sequence[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
        stream: bool,
    ) -> dict[str, Any]:
        cfg = self.config
        req: dict[str, Any] = {
            "model": cfg.model,
            "messages": _messages(messages),
            self._max_tokens_key: max_tokens or cfg.max_output_tokens,
        }
        if cfg.temperature is not None:
            req["temperature"] = cfg.temperature
        if tools:
            req["tools"] = self.tool_shapes(tools)
            req["parallel_tool_calls"] = True
        if json_schema is not None and cfg.json_mode == "json_object":
            req["response_format"] = {"type": "json_object", "schema": dict(json_schema)}
        elif json_schema is not None:
            req["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(json_schema), "schema": dict(json_schema)},
            }
        if stream:
            req["stream"] = True
            if cfg.stream_usage:
                req["stream_options"] = {"include_usage": True}
        return req

    async def _complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None,
        tools: Sequence[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
    ) -> Reply:
        req = self._request(messages, max_tokens, tools, json_schema, stream=False)
        try:
            raw = await self._conn.client().chat.completions.create(**req)
        except (self._conn.sdk.OpenAIError, json.JSONDecodeError) as e:
            self._conn.fail(e)
        resp: _Completion = self._conn.read(_Completion, raw, "the reply")
        choice = resp.choices[0]
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in (choice.message.tool_calls or ())
            if c.function is not None
        )
        stop = _stop(choice.finish_reason, bool(calls))
        refusal = choice.message.refusal
        if refusal and not choice.message.content:
            # Structured output reports a refusal in its own field, with finish_reason "stop".
            stop = "content_filter"
        return Reply(
            text=choice.message.content or "",
            model=resp.model or self.config.model,
            usage=_usage(resp.usage),
            stop_reason=stop,
            tool_calls=calls,
            metadata={"refusal": refusal} if refusal else {},
        )

    async def _stream(
        self, messages: Sequence[Message], *, max_tokens: int | None, tools: Sequence[ToolSpec] | None
    ) -> AsyncIterator[Delta]:
        req = self._request(messages, max_tokens, tools, None, stream=True)
        sdk = self._conn.sdk
        try:
            stream = await self._conn.client().chat.completions.create(**req)
        except sdk.OpenAIError as e:
            self._conn.fail(e)
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage, model = Usage(), self.config.model
        try:
            async with stream:
                await expect_event_stream(
                    stream.response, "the reply to a streamed request", provider=PROVIDER, secret=self._conn.api_key
                )
                n = 0
                async for raw in stream:
                    n += 1
                    chunk: _Chunk = self._conn.read(_Chunk, raw, f"stream event {n}")
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices:
                        if choice.index != 0:
                            continue
                        finish = choice.finish_reason or finish
                        delta = choice.delta
                        for part in (delta.tool_calls or ()) if delta else ():
                            # The id and name come once; arguments arrive as fragments of JSON text.
                            slot = calls.setdefault(part.index, {"id": "", "name": "", "arguments": []})
                            slot["id"] = part.id or slot["id"]
                            if part.function is not None:
                                slot["name"] = part.function.name or slot["name"]
                                slot["arguments"].append(part.function.arguments or "")
                        if delta and delta.content:
                            text.append(delta.content)
                            yield Delta(text=delta.content)
        except (sdk.OpenAIError, json.JSONDecodeError) as e:
            self._conn.fail(e)
        if finish is None:
            raise stream_cut_short("the stream", "finish_reason", provider=PROVIDER)
        tool_calls = tuple(
            ToolCall(id=s["id"], name=s["name"], arguments="".join(s["arguments"]) or "{}")
            for _, s in sorted(calls.items())
        )
        for call in tool_calls:
            if not call.id or not call.name:
                raise MalformedReply(
                    f"a streamed tool call came without its {'id' if not call.id else 'name'}", provider=PROVIDER
                )
        reply = Reply(
            text="".join(text),
            model=model,
            usage=usage,
            stop_reason=_stop(finish, bool(tool_calls)),
            tool_calls=tool_calls,
        )
        yield Delta(tool_calls=tool_calls, reply=reply)

    def count_tokens(self, text: str) -> int:
        """Exact tiktoken count for OpenAI models; the base class's margin-padded estimate for others."""
        if self._exact_counter is None:
            try:
                self._exact_counter = TiktokenCounter(model=self.config.model)
            except ConfigError:
                self._exact_counter = False
        if self._exact_counter:
            return self._exact_counter.count(text)
        return super().count_tokens(text)

    async def aclose(self) -> None:
        """Close the HTTP client of the current loop."""
        await self._conn.aclose()


class OpenAIEmbedder(BaseEmbedder):
    """Embeddings endpoint over the ``openai`` SDK, up to 2048 inputs per request."""

    Config = OpenAIEmbedderConfig

    def __init__(
        self,
        config: OpenAIEmbedderConfig | Mapping[str, Any] | None = None,
        *,
        retry: RetryPolicy | None = None,
        http_client: Any | None = None,
        **options: Any,
    ) -> None:
        super().__init__(retry=retry)
        self.config = cfg = build_config(OpenAIEmbedderConfig, config, options)
        dim = cfg.dim or cfg.dimensions or KNOWN_EMBEDDING_DIMS.get(cfg.model)
        if dim is None:
            raise ConfigError(
                f"vector size of embedding model {cfg.model!r} is unknown; set dim in the embedder config"
            )
        if cfg.dimensions is not None and cfg.dimensions != dim:
            raise ConfigError(f"dim ({dim}) and dimensions ({cfg.dimensions}) disagree; set one of them")
        self.dim = dim
        self.max_batch = cfg.max_batch
        self.id = f"{PROVIDER}:{cfg.model}:{dim}"
        self._conn = _Connection(cfg, http_client)

    @classmethod
    def from_config(
        cls,
        config: OpenAIEmbedderConfig | Mapping[str, Any],
        *,
        retry: RetryPolicy | None = None,
        http_client: Any | None = None,
        **_: Any,
    ) -> OpenAIEmbedder:
        return cls(config, retry=retry, http_client=http_client)

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.config.model!r}, dim={self.dim}, base_url={self.config.base_url!r})"

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        cfg = self.config
        extra: dict[str, Any] = {"dimensions": cfg.dimensions} if cfg.dimensions is not None else {}
        # The API rejects empty strings; a space embeds as "nothing" without failing the whole batch.
        inputs = [t if t else " " for t in texts]
        try:
            raw = await self._conn.client().embeddings.create(
                input=inputs, model=cfg.model, encoding_format="float", **extra
            )
        except (self._conn.sdk.OpenAIError, json.JSONDecodeError) as e:
            self._conn.fail(e)
        resp: _Embeddings = self._conn.read(_Embeddings, raw, "the reply")
        rows = sorted(resp.data, key=lambda d: d.index)
        if len(rows) != len(texts) or [r.index for r in rows] != list(range(len(texts))):
            raise MalformedReply(
                f"asked for {len(texts)} embeddings, got {len(rows)} (indexes {[r.index for r in rows][:10]})",
                provider=PROVIDER,
            )
        vectors = [list(r.embedding) for r in rows]
        for v in vectors:
            if len(v) != self.dim:
                raise ConfigError(
                    f"model {cfg.model!r} returned {len(v)}-dim vectors but dim is {self.dim}; fix dim in the config"
                )
        return vectors

    async def aclose(self) -> None:
        """Close the HTTP client of the current loop."""
        await self._conn.aclose()


__all__ = [
    "OpenAIGenerator",
    "OpenAIEmbedder",
    "OpenAIGeneratorConfig",
    "OpenAIEmbedderConfig",
    "KNOWN_CONTEXT_WINDOWS",
    "KNOWN_EMBEDDING_DIMS",
    "known_context_window",
]
