"""Ollama generator and embedder over the ``ollama`` SDK (``AsyncClient``: /api/chat and /api/embed)."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import uuid
from typing import Any, AsyncIterator, Mapping, Sequence

from ragkit.component import ComponentConfig, EnvVarName, Field, scrub, secret_from_env
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
from ragkit.providers._http import build_config, not_json, validation_problems
from ragkit.retry import RetryPolicy
from ragkit.types import Delta, Message, Reply, StopReason, ToolCall, ToolSpec, Usage

log = logging.getLogger("ragkit.providers.ollama")
PROVIDER = "ollama"
DEFAULT_HOST = "http://127.0.0.1:11434"

# Native vector sizes of common embedding models (tag suffixes such as ":latest" are ignored).
KNOWN_EMBEDDING_DIMS: dict[str, int] = {
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
    "all-minilm": 384,
    "snowflake-arctic-embed": 1024,
    "bge-m3": 1024,
    "bge-large": 1024,
    "embeddinggemma": 768,
    "granite-embedding": 384,
}
_DONE: dict[str, StopReason] = {"stop": "stop", "length": "length"}


def _sdk() -> Any:
    try:
        import ollama
    except ImportError as e:
        raise ConfigError("the Ollama provider needs the ollama SDK: pip install 'ragkit[ollama]'") from e
    return ollama


class _Connection:
    """One ``AsyncClient`` per event loop: an httpx pool must not outlive the loop it was opened on."""

    def __init__(self, host: str, timeout_s: float, api_key_env: str | None, client: Any | None) -> None:
        self.host = host
        self._timeout_s = timeout_s
        key = secret_from_env(api_key_env, what="Ollama API key") if api_key_env else None
        self._headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        self._injected = client
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}

    def client(self) -> Any:
        if self._injected is not None:
            return self._injected
        loop = asyncio.get_running_loop()
        # Drop clients of closed loops, so scripts calling run_sync repeatedly do not accumulate them.
        self._clients = {k: v for k, v in self._clients.items() if not v[0].is_closed()}
        found = self._clients.get(id(loop))
        if found is None or found[0] is not loop:
            client = _sdk().AsyncClient(host=self.host, timeout=self._timeout_s, headers=self._headers)
            found = self._clients[id(loop)] = (loop, client)
        return found[1]

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        found = self._clients.pop(id(loop), None)
        if found is not None:
            await found[1].close()


def _translate(e: BaseException, host: str, model: str) -> RagkitError | None:
    """The one map from SDK/transport exceptions to ragkit errors; None when ``e`` is not an SDK failure."""
    import httpx
    import ollama
    from pydantic import ValidationError

    unreachable = f"the Ollama server at {host} is not reachable; is `ollama serve` running?"
    if isinstance(e, ollama.ResponseError):
        code = e.status_code
        msg = f"{e.error} (status {code})" if code > 0 else str(e.error)
        low = str(e.error).lower()
        if code in (401, 403):
            return AuthError(f"{msg}; check api_key_env", provider=PROVIDER, status=code)
        if code == 404:
            hint = f"check the `model` field ({model!r}) or run `ollama pull {model}`"
            return BadRequest(f"{msg}; {hint}", provider=PROVIDER, status=code)
        if code == 429:
            # The SDK keeps no response headers, so Retry-After cannot be read.
            return RateLimited(msg, retry_after=None, provider=PROVIDER, status=code)
        if "context length" in low or "context window" in low or "exceeds" in low and "length" in low:
            return ContextOverflow(msg, provider=PROVIDER, status=code if code > 0 else None)
        if code >= 500 or code < 0:
            # code -1: the server reported an error mid-stream (e.g. the model runner stopped).
            return Unavailable(msg, provider=PROVIDER, status=code if code > 0 else None)
        return BadRequest(msg, provider=PROVIDER, status=code)
    if isinstance(e, httpx.TimeoutException) or isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return Timeout(f"request to {host} timed out ({type(e).__name__})", provider=PROVIDER)
    if isinstance(e, (ConnectionError, httpx.TransportError)):
        return Unavailable(unreachable, provider=PROVIDER)
    if isinstance(e, ollama.RequestError):
        return BadRequest(str(e.error), provider=PROVIDER)
    if isinstance(e, json.JSONDecodeError):
        return not_json(e, "the reply", provider=PROVIDER)
    if isinstance(e, ValidationError):
        if e.title.endswith("Request"):
            return BadRequest(f"the SDK rejected the request: {validation_problems(e)}", provider=PROVIDER)
        # The SDK validates each reply (or stream line) against its own models.
        return MalformedReply(f"the reply breaks the API's format: {validation_problems(e)}", provider=PROVIDER)
    if isinstance(e, (TypeError, AttributeError)) and _raised_by_sdk(e):
        # The SDK reads every reply as a JSON object (``cls(**part)``, ``part.get``); other JSON ends up here.
        return MalformedReply("the reply (or a line of the stream) is JSON but not an object", provider=PROVIDER)
    return None


def _raised_by_sdk(e: BaseException) -> bool:
    frames = traceback.extract_tb(e.__traceback__)
    return bool(frames) and "/ollama/" in frames[-1].filename.replace("\\", "/")


class _Translating:
    """Context manager: SDK exceptions leave as ragkit errors, chained."""

    def __init__(self, host: str, model: str) -> None:
        self.host, self.model = host, model

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, e: BaseException | None, tb: Any) -> bool:
        if e is None or isinstance(e, RagkitError) or not isinstance(e, Exception):
            return False
        mapped = _translate(e, self.host, self.model)
        if mapped is None:
            return False
        # A server may echo the key: it leaves the message, and the SDK error carrying it is not chained.
        text = str(mapped)
        if scrub(text) != text:
            mapped.args = (scrub(text),)
        raise mapped from (None if scrub(str(e)) != str(e) else e)


# ---------------------------------------------------------------- tools

_PROPERTY_KEYS = {"type", "items", "description", "enum"}


def ollama_tool(spec: ToolSpec) -> dict[str, Any]:
    """``spec`` as an Ollama function tool.

    The SDK's ``Tool`` model keeps only ``type``/``items``/``description``/``enum`` per property, so ``$ref`` is
    inlined, ``anyOf: [X, null]`` becomes X, and any structure the SDK would drop is written into the
    property's description as JSON so the model still sees it.
    """
    params = dict(spec.parameters)
    defs = {**(params.pop("definitions", None) or {}), **(params.pop("$defs", None) or {})}
    properties = {name: _property(sub, defs) for name, sub in (params.get("properties") or {}).items()}
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if params.get("required"):
        parameters["required"] = list(params["required"])
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": parameters},
    }


def _resolve(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    if isinstance(node, Mapping):
        if "$ref" in node and depth < 32:
            target = defs.get(str(node["$ref"]).rsplit("/", 1)[-1])
            if target is None:
                raise BadRequest(f"cannot resolve $ref {node['$ref']!r} in tool schema", provider=PROVIDER)
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_resolve(target, defs, depth + 1), **rest}
        return {k: _resolve(v, defs, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, defs, depth + 1) for v in node]
    return node


def _property(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    node = dict(_resolve(node, defs))
    branches = node.get("anyOf")
    if isinstance(branches, list):
        non_null = [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
        if len(non_null) == 1:
            node.pop("anyOf")
            node = {**non_null[0], **node}
    node.pop("title", None)
    node.pop("default", None)
    out = {k: v for k, v in node.items() if k in _PROPERTY_KEYS}
    extra = {k: v for k, v in node.items() if k not in _PROPERTY_KEYS}
    if extra:
        detail = json.dumps(extra, separators=(",", ":"), sort_keys=True)
        out["description"] = f"{out.get('description', '')} (schema: {detail})".strip()
    return out


# ---------------------------------------------------------------- generator


class OllamaGeneratorConfig(ComponentConfig):
    """Settings of an Ollama chat model."""

    model: str = Field(..., min_length=1, max_length=200, description="Ollama model tag, e.g. llama3.2 or qwen3:8b.")
    host: str = Field(DEFAULT_HOST, min_length=1, max_length=500, description="Ollama server URL.")
    api_key_env: EnvVarName | None = Field(
        None,
        max_length=100,
        description="Environment variable with a bearer token, for servers behind an authenticating proxy.",
    )
    timeout_s: float = Field(300.0, gt=0, le=3600, description="Per-request timeout in seconds (model loading counts).")
    num_ctx: int = Field(
        8192,
        ge=256,
        le=2_097_152,
        description="Context length the server allocates; also this generator's context_window.",
    )
    max_tokens: int = Field(1024, ge=1, le=1_000_000, description="num_predict when a call gives no max_tokens.")
    temperature: float | None = Field(
        None, ge=0, le=2, description="Sampling temperature; the model's default when unset."
    )
    keep_alive: str | None = Field(
        None, max_length=20, description="How long the server keeps the model loaded, e.g. '5m' or '-1'."
    )


class OllamaGenerator(BaseGenerator):
    """Chat with a local Ollama model through ``AsyncClient.chat``."""

    Config = OllamaGeneratorConfig

    def __init__(
        self, config: OllamaGeneratorConfig, *, client: Any | None = None, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(retry=retry)
        if client is None:
            _sdk()
        self.config = config
        self.id = f"ollama:{config.model}"
        self.context_window = config.num_ctx
        self._conn = _Connection(config.host, config.timeout_s, config.api_key_env, client)
        self._tools: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_config(cls, config: OllamaGeneratorConfig | Mapping[str, Any], **collaborators: Any) -> OllamaGenerator:
        return cls(
            build_config(cls.Config, config, {}),
            client=collaborators.get("client"),
            retry=collaborators.get("retry"),
        )

    def __repr__(self) -> str:
        return f"OllamaGenerator(model={self.config.model!r}, host={self.config.host!r})"

    async def aclose(self) -> None:
        """Close this loop's HTTP client."""
        await self._conn.aclose()

    def tool(self, spec: ToolSpec) -> dict[str, Any]:
        """The Ollama tool for ``spec``, converted once and cached."""
        key = json.dumps([spec.name, spec.description, spec.parameters], sort_keys=True, default=str)
        if key not in self._tools:
            self._tools[key] = ollama_tool(spec)
        return self._tools[key]

    def _kwargs(
        self,
        messages: Sequence[Message],
        max_tokens: int | None,
        tools: Sequence[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"num_ctx": self.config.num_ctx, "num_predict": max_tokens or self.config.max_tokens}
        if self.config.temperature is not None:
            options["temperature"] = self.config.temperature
        kwargs: dict[str, Any] = {"model": self.config.model, "messages": _messages(messages), "options": options}
        if tools:
            kwargs["tools"] = [self.tool(t) for t in tools]
        if json_schema is not None:
            kwargs["format"] = dict(json_schema)
        if self.config.keep_alive is not None:
            kwargs["keep_alive"] = self.config.keep_alive
        return kwargs

    async def _complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None,
        tools: Sequence[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
    ) -> Reply:
        kwargs = self._kwargs(messages, max_tokens, tools, json_schema)
        with _Translating(self.config.host, self.config.model):
            response = await self._conn.client().chat(**kwargs)
        if not response.done:
            raise MalformedReply('the reply lacks "done": true (a whole reply was asked for)', provider=PROVIDER)
        calls = [_tool_call(c) for c in response.message.tool_calls or []]
        return self._reply(response.message.content or "", calls, response)

    async def _stream(
        self, messages: Sequence[Message], *, max_tokens: int | None, tools: Sequence[ToolSpec] | None
    ) -> AsyncIterator[Delta]:
        kwargs = self._kwargs(messages, max_tokens, tools, None)
        texts: list[str] = []
        calls: list[ToolCall] = []
        last: Any = None
        with _Translating(self.config.host, self.config.model):
            chunks = await self._conn.client().chat(stream=True, **kwargs)
            async for chunk in chunks:
                last = chunk
                if chunk.message.content:
                    texts.append(chunk.message.content)
                    yield Delta(text=chunk.message.content)
                new = tuple(_tool_call(c) for c in chunk.message.tool_calls or [])
                if new:
                    calls.extend(new)
                    yield Delta(tool_calls=new)
        if last is None or not last.done:
            raise Unavailable(f"the stream from {self.config.host} ended before the model finished", provider=PROVIDER)
        yield Delta(reply=self._reply("".join(texts), calls, last))

    def _reply(self, text: str, calls: list[ToolCall], response: Any) -> Reply:
        usage = Usage(input_tokens=response.prompt_eval_count or 0, output_tokens=response.eval_count or 0)
        done = response.done_reason
        # Ollama says "stop" also when the turn ends in tool calls.
        stop: StopReason = "tool_calls" if calls else _DONE.get(done or "stop", "unknown")
        return Reply(
            text=text,
            model=response.model or self.config.model,
            usage=usage,
            stop_reason=stop,
            tool_calls=tuple(calls),
            metadata={"done_reason": done} if done else {},
        )


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for m in messages:
        if m.role == "tool":
            name = m.name or names.get(m.tool_call_id or "")
            if not name:
                raise BadRequest(
                    f"tool result {m.tool_call_id!r} matches no earlier tool call and has no name", provider=PROVIDER
                )
            content = f"ERROR: {m.content}" if m.is_error else m.content
            out.append({"role": "tool", "content": content, "tool_name": name})
            continue
        message: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            calls = []
            for c in m.tool_calls:
                names[c.id] = c.name
                calls.append({"function": {"name": c.name, "arguments": _arguments(c)}})
            message["tool_calls"] = calls
        out.append(message)
    return out


def _tool_call(call: Any) -> ToolCall:
    # Ollama gives tool calls no ids; ours only pair results with calls inside ragkit.
    return ToolCall(
        id=f"ollama-call-{uuid.uuid4().hex[:12]}",
        name=call.function.name,
        arguments=json.dumps(dict(call.function.arguments or {}), ensure_ascii=False),
    )


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


# ---------------------------------------------------------------- embedder


class OllamaEmbedderConfig(ComponentConfig):
    """Settings of an Ollama embedding model."""

    model: str = Field(
        ..., min_length=1, max_length=200, description="Ollama embedding model tag, e.g. nomic-embed-text."
    )
    host: str = Field(DEFAULT_HOST, min_length=1, max_length=500, description="Ollama server URL.")
    api_key_env: EnvVarName | None = Field(
        None,
        max_length=100,
        description="Environment variable with a bearer token, for servers behind an authenticating proxy.",
    )
    timeout_s: float = Field(120.0, gt=0, le=3600, description="Per-request timeout in seconds.")
    dimensions: int | None = Field(
        None, ge=1, le=16384, description="Ask the server to truncate vectors to this size (models that support it)."
    )
    dim: int | None = Field(
        None, ge=1, le=16384, description="Native vector size, for models missing from KNOWN_EMBEDDING_DIMS."
    )
    truncate: bool = Field(
        True, description="Let the server cut inputs longer than the model's context instead of failing."
    )
    max_batch: int = Field(64, ge=1, le=4096, description="Texts per /api/embed request.")
    keep_alive: str | None = Field(
        None, max_length=20, description="How long the server keeps the model loaded, e.g. '5m'."
    )


class OllamaEmbedder(BaseEmbedder):
    """Embeds through the batch endpoint /api/embed (``input`` is a list)."""

    Config = OllamaEmbedderConfig

    def __init__(
        self, config: OllamaEmbedderConfig, *, client: Any | None = None, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(retry=retry)
        if client is None:
            _sdk()
        self.config = config
        dim = config.dimensions or config.dim or KNOWN_EMBEDDING_DIMS.get(config.model.split(":")[0])
        if not dim:
            raise ConfigError(f"unknown vector size for Ollama model {config.model!r}; set `dim` (or `dimensions`)")
        self.dim = dim
        self.max_batch = config.max_batch
        self.id = f"ollama:{config.model}:{dim}"
        self._conn = _Connection(config.host, config.timeout_s, config.api_key_env, client)

    @classmethod
    def from_config(cls, config: OllamaEmbedderConfig | Mapping[str, Any], **collaborators: Any) -> OllamaEmbedder:
        return cls(
            build_config(cls.Config, config, {}),
            client=collaborators.get("client"),
            retry=collaborators.get("retry"),
        )

    def __repr__(self) -> str:
        return f"OllamaEmbedder(model={self.config.model!r}, dim={self.dim}, host={self.config.host!r})"

    async def aclose(self) -> None:
        """Close this loop's HTTP client."""
        await self._conn.aclose()

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        kwargs: dict[str, Any] = {"model": self.config.model, "input": list(texts), "truncate": self.config.truncate}
        if self.config.dimensions is not None:
            kwargs["dimensions"] = self.config.dimensions
        if self.config.keep_alive is not None:
            kwargs["keep_alive"] = self.config.keep_alive
        with _Translating(self.config.host, self.config.model):
            response = await self._conn.client().embed(**kwargs)
        vectors = [list(v) for v in response.embeddings or []]
        if len(vectors) != len(texts):
            raise MalformedReply(f"asked for {len(texts)} embeddings, got {len(vectors)}", provider=PROVIDER)
        for v in vectors:
            if len(v) != self.dim:
                raise BadRequest(
                    f"model returned {len(v)}-dimensional vectors, config expects {self.dim}; set `dim`",
                    provider=PROVIDER,
                )
        return vectors


__all__ = [
    "OllamaGenerator",
    "OllamaGeneratorConfig",
    "OllamaEmbedder",
    "OllamaEmbedderConfig",
    "ollama_tool",
    "KNOWN_EMBEDDING_DIMS",
    "DEFAULT_HOST",
]
