"""Helpers every HTTP provider shares: status → ragkit error, ``Retry-After``, secret scrubbing, reading replies
against their wire format, tool-shape caching."""

from __future__ import annotations

import asyncio
import json
import re
import time
import weakref
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from ragkit.component import ComponentConfig
from ragkit.errors import (
    AuthError,
    BadRequest,
    ConfigError,
    ContextOverflow,
    MalformedReply,
    ProviderError,
    RateLimited,
    Timeout,
    Unavailable,
)
from ragkit.types import ToolSpec

C = TypeVar("C", bound=ComponentConfig)
S = TypeVar("S")
W = TypeVar("W", bound="Wire")

# Phrases providers use when a prompt is longer than the model's context window.
_OVERFLOW = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|too many (input )?tokens"
    r"|exceeds? the (model'?s? )?(max|context)|input is too long",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def build_config(config_cls: type[C], config: C | Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> C:
    """A validated config from a config object or mapping plus keyword overrides; ``ConfigError`` names the fields."""
    if isinstance(config, config_cls) and not overrides:
        return config
    data = dict(config.model_dump() if isinstance(config, ComponentConfig) else (config or {}))
    data.update(overrides)
    try:
        return config_cls.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg'].removeprefix('Value error, ')}"
            for err in e.errors()
        )
        # Not chained: pydantic's error quotes the input, which may hold a pasted secret.
        raise ConfigError(f"{config_cls.__qualname__}: {problems}") from None


def redact(text: str, secret: SecretStr | None) -> str:
    """``text`` with every occurrence of the secret's value replaced."""
    value = secret.get_secret_value() if secret is not None else ""
    return text.replace(value, REDACTED) if value else text


def leaks(exc: BaseException, secret: SecretStr | None) -> bool:
    """Whether a foreign exception's text or body contains the secret (then it must not be chained)."""
    value = secret.get_secret_value() if secret is not None else ""
    if not value:
        return False
    return value in str(exc) or value in repr(getattr(exc, "body", None))


def error_detail(body: object, fallback: str) -> tuple[str, str]:
    """``(message, code)`` from a JSON error body shaped ``{"error": {"message", "code"|"type"}}`` or flatter."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            message = inner.get("message") or fallback
            code = inner.get("code") or inner.get("type") or ""
            return str(message), str(code)
        if isinstance(inner, str):
            return inner, ""
    if isinstance(body, str) and body:
        return body, ""
    return fallback, ""


def parse_retry_after(headers: Mapping[str, str] | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date; ``None`` if absent."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now())


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    code: str = "",
    headers: Mapping[str, str] | None = None,
    model: str = "",
) -> ProviderError:
    """The ragkit error for an HTTP error status; ``message`` must already be scrubbed of secrets."""
    if status in (401, 403):
        return AuthError(
            f"HTTP {status}: credentials rejected ({message}); check the API key variable",
            provider=provider,
            status=status,
        )
    if status == 429:
        return RateLimited(
            f"HTTP 429: {message}", retry_after=parse_retry_after(headers), provider=provider, status=status
        )
    if status == 408:
        return Timeout(f"HTTP 408: {message}", provider=provider, status=status)
    if status >= 500:
        return Unavailable(f"HTTP {status}: {message}", provider=provider, status=status)
    if _OVERFLOW.search(message) or _OVERFLOW.search(code):
        return ContextOverflow(
            f"HTTP {status}: the prompt does not fit the model's context window; lower the context budget or max_tokens"
            f" ({message})",
            provider=provider,
            status=status,
        )
    if status == 404 and "model" in message.lower():
        return BadRequest(
            f"HTTP 404: model {model!r} was not found; check the `model` field ({message})",
            provider=provider,
            status=status,
        )
    return BadRequest(f"HTTP {status}: {message}", provider=provider, status=status)


class Wire(BaseModel):
    """Base of the models a provider reads replies with: the documented fields ragkit uses, others ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def snippet(value: object, secret: SecretStr | None = None, limit: int = 120) -> str:
    """A short, secret-free quote of what the server sent."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = redact(text, secret)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "text" if value.strip() else "an empty body"
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__


def plain_json(obj: object) -> object:
    """JSON data of an SDK reply object; OpenAI's and Anthropic's SDKs keep unvalidated fields exactly as sent."""
    to_dict = getattr(obj, "to_dict", None)
    return to_dict(warnings=False) if callable(to_dict) and not isinstance(obj, Mapping) else obj


def read_wire(model: type[W], obj: object, what: str, *, provider: str, secret: SecretStr | None = None) -> W:
    """``obj`` (an SDK object or JSON data) checked against ``model``; ``MalformedReply`` names the field at fault."""
    data = plain_json(obj)
    if not isinstance(data, Mapping):
        raise MalformedReply(
            f"{what} should be a JSON object, got {_kind(data)}: {snippet(data, secret)}", provider=provider
        )
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise MalformedReply(
            f"{what} breaks the API's format: {validation_problems(e)}; got {snippet(data, secret)}", provider=provider
        ) from None


def validation_problems(e: ValidationError, limit: int = 3) -> str:
    """The first few problems of a pydantic error as ``field.path: message``."""
    errors = e.errors()
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg'].removeprefix('Value error, ')}"
        for err in errors[:limit]
    ]
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def not_json(e: json.JSONDecodeError, what: str, *, provider: str, secret: SecretStr | None = None) -> MalformedReply:
    """The error for a reply body or stream event that is not JSON."""
    return MalformedReply(
        f"{what} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}): {snippet(e.doc, secret)}",
        provider=provider,
    )


async def expect_event_stream(response: Any, what: str, *, provider: str, secret: SecretStr | None = None) -> None:
    """A streamed request must be answered with Server-Sent Events; anything else is ``MalformedReply`` quoting it."""
    kind = response.headers.get("content-type") or ""
    if kind and "text/event-stream" not in kind.lower():
        body = (await response.aread()).decode("utf-8", "replace")
        raise MalformedReply(
            f"{what} should be an event stream (text/event-stream), got {kind.split(';')[0]}: {snippet(body, secret)}",
            provider=provider,
        )


def stream_cut_short(what: str, missing: str, *, provider: str) -> Unavailable:
    """The error for a stream that ends before its documented last event (a dropped connection, usually)."""
    return Unavailable(
        f"{what} ended before the model finished (no {missing}); the connection may have dropped", provider=provider
    )


class ToolShapeCache(Generic[S]):
    """Converts a sequence of ``ToolSpec`` to a provider's shape once and reuses it while the same specs come back."""

    def __init__(self, convert: Callable[[ToolSpec], S], *, size: int = 16) -> None:
        self._convert = convert
        self._size = size
        # Keyed by object identity (ToolSpec holds a dict, so it is not hashable); the specs are kept alive with
        # the entry so an id is never reused while it is cached.
        self._entries: dict[tuple[int, ...], tuple[tuple[ToolSpec, ...], list[S]]] = {}

    def get(self, tools: Sequence[ToolSpec]) -> list[S]:
        key = tuple(id(t) for t in tools)
        entry = self._entries.get(key)
        if entry is not None:
            return entry[1]
        specs = tuple(tools)
        shaped = [self._convert(t) for t in specs]
        if len(self._entries) >= self._size:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (specs, shaped)
        return shaped


class LoopLocalClient(Generic[S]):
    """One SDK client per event loop: pooled HTTP connections cannot cross loops (each ``run_sync`` makes one)."""

    def __init__(self, factory: Callable[[], S], *, fixed: bool = False) -> None:
        self._factory = factory
        # A client built around an injected HTTP client is the caller's to manage; it is never rebuilt.
        self._fixed = fixed
        self.current: S | None = None
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    def get(self) -> S:
        loop = asyncio.get_running_loop()
        stale = not self._fixed and (self._loop is None or self._loop() is not loop)
        if self.current is None or stale:
            self.current = self._factory()
            self._loop = weakref.ref(loop)
        return self.current

    async def aclose(self) -> None:
        """Close a client this built on the running loop; one of a finished loop, or around an injected HTTP client,
        is dropped."""
        client, owner = self.current, self._loop() if self._loop else None
        self.current = None
        if client is not None and not self._fixed and owner is asyncio.get_running_loop():
            await client.close()


def sdk_import_error(package: str, extra: str) -> ConfigError:
    """The error raised when a vendor SDK is not installed."""
    return ConfigError(f"the {package!r} package is not installed: pip install 'ragkit[{extra}]'")


__all__ = [
    "build_config",
    "redact",
    "leaks",
    "error_detail",
    "parse_retry_after",
    "error_for_status",
    "Wire",
    "read_wire",
    "plain_json",
    "snippet",
    "validation_problems",
    "not_json",
    "expect_event_stream",
    "stream_cut_short",
    "ToolShapeCache",
    "LoopLocalClient",
    "sdk_import_error",
    "REDACTED",
]
