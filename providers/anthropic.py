"""Anthropic Messages API: chat generation with tools, streaming and structured output."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Mapping, NoReturn, Sequence

from pydantic import SecretStr, model_validator

from ragkit.component import ComponentConfig, EnvVarName, Field, ServerUrl, secret_from_env
from ragkit.errors import BadRequest, ConfigError, ProviderError, Timeout, Unavailable
from ragkit.generate.base import BaseGenerator
from ragkit.providers._anthropic_cache import add_cache_control, min_cacheable_tokens
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
from ragkit.types import Delta, Message, Reply, StopReason, ToolCall, ToolSpec, Usage

PROVIDER = "anthropic"
# Every current Claude model has at least this window; others need context_window set.
CLAUDE_CONTEXT_WINDOW = 200_000
_STOP: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# An error event inside a 200 stream carries only its type; this is the status that type stands for.
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


# The reply fields ragkit reads, as the Messages API documents them; a reply that breaks them is MalformedReply.
class _Block(Wire):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> _Block:
        if self.type == "text" and self.text is None:
            raise ValueError("a text block needs a text string")
        if self.type == "tool_use" and not (self.id and self.name and isinstance(self.input, dict)):
            raise ValueError("a tool_use block needs an id, a name and an input object")
        return self


class _Usage(Wire):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _Message(Wire):
    model: str | None = None
    content: list[_Block]
    stop_reason: str | None  # present in every reply; null only in a stream's message_start
    usage: _Usage | None = None


class _Event(Wire):
    type: str


class _StartedMessage(Wire):
    model: str | None = None
    usage: _Usage | None = None


class _MessageStart(_Event):
    message: _StartedMessage


class _BlockStart(_Event):
    index: int
    content_block: _Block


class _BlockDelta(Wire):
    type: str
    text: str | None = None
    partial_json: str | None = None

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> _BlockDelta:
        if self.type == "text_delta" and self.text is None:
            raise ValueError("a text_delta needs a text string")
        if self.type == "input_json_delta" and self.partial_json is None:
            raise ValueError("an input_json_delta needs a partial_json string")
        return self


class _BlockDeltaEvent(_Event):
    index: int
    delta: _BlockDelta


class _StopReason(Wire):
    stop_reason: str | None = None


class _OutputUsage(Wire):
    output_tokens: int | None = None


class _MessageDelta(_Event):
    delta: _StopReason
    usage: _OutputUsage | None = None


# Event types ragkit reads; the API may add others, which are skipped (as its versioning policy asks).
_EVENTS: dict[str, type[_Event]] = {
    "message_start": _MessageStart,
    "content_block_start": _BlockStart,
    "content_block_delta": _BlockDeltaEvent,
    "message_delta": _MessageDelta,
}


class AnthropicGeneratorConfig(ComponentConfig):
    """Claude models over the Messages API."""

    model: str = Field(..., min_length=1, max_length=200, description="Model name, e.g. claude-sonnet-4-5.")
    api_key_env: EnvVarName = Field(
        "ANTHROPIC_API_KEY",
        min_length=1,
        max_length=200,
        description="Name of the environment variable holding the API key.",
    )
    base_url: ServerUrl | None = Field(
        None, min_length=1, max_length=2000, description="Another endpoint for the Messages API (a proxy or gateway)."
    )
    timeout_s: float = Field(60.0, gt=0, le=3600, description="Timeout of one HTTP request, in seconds.")
    temperature: float | None = Field(
        None, ge=0, le=1, description="Sampling temperature; null leaves the model default (some models accept none)."
    )
    max_output_tokens: int = Field(
        1024, ge=1, le=1_000_000, description="max_tokens sent when a call gives none (the API requires it)."
    )
    context_window: int | None = Field(
        None,
        ge=256,
        le=10_000_000,
        description=f"Context window in tokens; claude-* models default to {CLAUDE_CONTEXT_WINDOW}.",
    )
    prompt_cache: bool = Field(
        True, description="Mark the system prompt and the sources block for prompt caching when they are long enough."
    )


def _tool_shape(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": dict(tool.parameters)}


def _tool_input(call: ToolCall, where: str) -> Any:
    try:
        return json.loads(call.arguments) if call.arguments.strip() else {}
    except json.JSONDecodeError as e:
        raise BadRequest(f"{where}: tool call {call.id!r} arguments are not JSON ({e.msg})", provider=PROVIDER) from e


def convert_messages(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system, messages)`` in the API's shape: system text on top, tool results as user blocks, same roles merged."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if m.role == "system":
            if m.content:
                system.append(m.content)
            continue
        blocks: list[dict[str, Any]] = []
        if m.role == "tool":
            if not m.tool_call_id:
                raise BadRequest(f"messages[{i}]: a tool message needs tool_call_id", provider=PROVIDER)
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            if m.is_error:
                block["is_error"] = True
            blocks.append(block)
            role = "user"
        else:
            role = m.role
            # The API rejects empty text blocks.
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            for call in m.tool_calls:
                blocks.append(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": _tool_input(call, f"messages[{i}]")}
                )
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            # Parallel tool results, or a result followed by a user turn, must share one user message.
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return ("\n\n".join(system) if system else None), out


def _usage(usage: _Usage | None) -> Usage:
    if usage is None:
        return Usage()
    cached = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    # input_tokens excludes cached and cache-writing tokens; ragkit counts every prompt token as input.
    return Usage(
        input_tokens=(usage.input_tokens or 0) + cached + written,
        output_tokens=usage.output_tokens or 0,
        cached_tokens=cached,
    )


class AnthropicGenerator(BaseGenerator):
    """Messages API over the ``anthropic`` SDK; errors mapped to ragkit, retries left to the base class."""

    Config = AnthropicGeneratorConfig

    def __init__(
        self,
        config: AnthropicGeneratorConfig | Mapping[str, Any] | None = None,
        *,
        retry: RetryPolicy | None = None,
        http_client: Any | None = None,
        **options: Any,
    ) -> None:
        super().__init__(retry=retry)
        self.config = cfg = build_config(AnthropicGeneratorConfig, config, options)
        try:
            import anthropic
        except ImportError as e:
            raise sdk_import_error("anthropic", "anthropic") from e
        self._sdk = anthropic
        window = cfg.context_window or (CLAUDE_CONTEXT_WINDOW if cfg.model.startswith("claude-") else None)
        if window is None:
            raise ConfigError(
                f"context window of model {cfg.model!r} is unknown; set context_window in the generator config"
            )
        self.context_window = window
        self.id = f"{PROVIDER}:{cfg.model}"
        self._api_key: SecretStr = secret_from_env(cfg.api_key_env)  # type: ignore[assignment]
        self._http_client = http_client
        self._clients = LoopLocalClient(self._build, fixed=http_client is not None)
        self._tools = ToolShapeCache(_tool_shape)

    @classmethod
    def from_config(
        cls,
        config: AnthropicGeneratorConfig | Mapping[str, Any],
        *,
        retry: RetryPolicy | None = None,
        http_client: Any | None = None,
        **_: Any,
    ) -> AnthropicGenerator:
        return cls(config, retry=retry, http_client=http_client)

    def __repr__(self) -> str:
        return f"AnthropicGenerator(model={self.config.model!r}, base_url={self.config.base_url!r})"

    def _build(self) -> Any:
        c = self.config
        return self._sdk.AsyncAnthropic(
            api_key=self._api_key.get_secret_value(),
            base_url=c.base_url,
            timeout=c.timeout_s,
            max_retries=0,
            http_client=self._http_client,
        )

    def tool_shapes(self, tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
        """The ``tools`` request field, converted once per sequence of specs."""
        return self._tools.get(tools)

    def _fail(self, e: BaseException) -> NoReturn:
        """Raise the ragkit error for an SDK exception; the only place SDK errors are mapped."""
        sdk = self._sdk
        if isinstance(e, json.JSONDecodeError):
            # The SDK decodes bodies and stream events itself; a server that sends broken JSON ends here.
            raise not_json(e, "the reply", provider=PROVIDER, secret=self._api_key) from None
        if isinstance(e, sdk.APITimeoutError):
            err: ProviderError = Timeout(f"no answer within {self.config.timeout_s:g} s", provider=PROVIDER)
        elif isinstance(e, sdk.APIConnectionError):
            err = Unavailable(f"cannot reach the server: {redact(str(e), self._api_key)}", provider=PROVIDER)
        elif isinstance(e, sdk.APIStatusError):
            message, code = error_detail(e.body, e.message)
            status = e.status_code if e.status_code >= 400 else _ERROR_TYPE_STATUS.get(code, 500)
            err = error_for_status(
                status,
                redact(message, self._api_key),
                code=code,
                headers=e.response.headers,
                provider=PROVIDER,
                model=self.config.model,
            )
        else:
            err = ProviderError(f"{type(e).__name__}: {redact(str(e), self._api_key)}", provider=PROVIDER)
        # A server may echo the key; chaining would carry it into tracebacks.
        raise err from (None if leaks(e, self._api_key) else e)

    def _request(
        self,
        messages: Sequence[Message],
        max_tokens: int | None,
        tools: Sequence[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        cfg = self.config
        system, shaped = convert_messages(messages)
        req: dict[str, Any] = {
            "model": cfg.model,
            "max_tokens": max_tokens or cfg.max_output_tokens,
            "messages": shaped,
        }
        if system is not None:
            req["system"] = system
        if tools:
            req["tools"] = self.tool_shapes(tools)
        if json_schema is not None:
            req["output_config"] = {"format": {"type": "json_schema", "schema": dict(json_schema)}}
        if cfg.temperature is not None:
            # Newer SDKs dropped the typed argument; the API still takes it for models that support it.
            req["extra_body"] = {"temperature": cfg.temperature}
        if cfg.prompt_cache:
            add_cache_control(req, self.count_tokens, min_cacheable_tokens(cfg.model))
        return req

    async def _complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None,
        tools: Sequence[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
    ) -> Reply:
        req = self._request(messages, max_tokens, tools, json_schema)
        try:
            raw = await self._clients.get().messages.create(**req)
        except (self._sdk.AnthropicError, json.JSONDecodeError) as e:
            self._fail(e)
        resp = read_wire(_Message, raw, "the reply", provider=PROVIDER, secret=self._api_key)
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in resp.content:
            if block.type == "text":
                text.append(block.text or "")
            elif block.type == "tool_use":
                calls.append(ToolCall(id=block.id or "", name=block.name or "", arguments=json.dumps(block.input)))
        return Reply(
            text="".join(text),
            model=resp.model or self.config.model,
            usage=_usage(resp.usage),
            stop_reason=_STOP.get(resp.stop_reason or "", "unknown"),
            tool_calls=tuple(calls),
        )

    async def _stream(
        self, messages: Sequence[Message], *, max_tokens: int | None, tools: Sequence[ToolSpec] | None
    ) -> AsyncIterator[Delta]:
        req = self._request(messages, max_tokens, tools, None)
        try:
            stream = await self._clients.get().messages.create(**req, stream=True)
        except self._sdk.AnthropicError as e:
            self._fail(e)
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        start_usage: _Usage | None = None
        output_tokens = 0
        stop: str | None = None
        stopped = False
        model = self.config.model
        try:
            async with stream:
                await expect_event_stream(
                    stream.response, "the reply to a streamed request", provider=PROVIDER, secret=self._api_key
                )
                n = 0
                async for raw in stream:
                    n += 1
                    what = f"stream event {n}"
                    kind = read_wire(_Event, raw, what, provider=PROVIDER, secret=self._api_key).type
                    shape = _EVENTS.get(kind)
                    if kind == "message_stop":
                        stopped = True
                    if shape is None:
                        continue
                    event: Any = read_wire(shape, raw, f"{what} ({kind})", provider=PROVIDER, secret=self._api_key)
                    if isinstance(event, _MessageStart):
                        start_usage, model = event.message.usage, event.message.model or model
                        output_tokens = (start_usage.output_tokens if start_usage else 0) or 0
                    elif isinstance(event, _BlockStart) and event.content_block.type == "tool_use":
                        block = event.content_block
                        calls[event.index] = {"id": block.id, "name": block.name, "json": []}
                    elif isinstance(event, _BlockDeltaEvent):
                        delta = event.delta
                        if delta.type == "text_delta" and delta.text:
                            text.append(delta.text)
                            yield Delta(text=delta.text)
                        elif delta.type == "input_json_delta" and event.index in calls:
                            calls[event.index]["json"].append(delta.partial_json)
                    elif isinstance(event, _MessageDelta):
                        stop = event.delta.stop_reason or stop
                        # message_delta usage is cumulative.
                        output_tokens = (event.usage.output_tokens if event.usage else None) or output_tokens
        except (self._sdk.AnthropicError, json.JSONDecodeError) as e:
            self._fail(e)
        if not stopped:
            raise stream_cut_short("the stream", "message_stop event", provider=PROVIDER)
        usage = _usage(start_usage)
        usage = Usage(usage.input_tokens, output_tokens, usage.cached_tokens)
        tool_calls = tuple(
            ToolCall(id=c["id"], name=c["name"], arguments="".join(c["json"]) or "{}") for _, c in sorted(calls.items())
        )
        reply = Reply(
            text="".join(text),
            model=model,
            usage=usage,
            stop_reason=_STOP.get(stop or "", "unknown"),
            tool_calls=tool_calls,
        )
        yield Delta(tool_calls=tool_calls, reply=reply)

    async def aclose(self) -> None:
        """Close the HTTP client of the current loop."""
        await self._clients.aclose()


__all__ = ["AnthropicGenerator", "AnthropicGeneratorConfig", "convert_messages", "CLAUDE_CONTEXT_WINDOW"]
