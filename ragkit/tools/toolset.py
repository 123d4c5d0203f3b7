"""A ``Toolset`` that runs one round of tool calls concurrently (the tools themselves: ``ragkit.tools.function``).

``Toolset.execute`` validates every call
before its function runs, runs the round under per-group concurrency limits, retries transient failures
of side-effect-free tools, runs identical side-effect-free calls once, and turns every failure into an
error result the model can read, so one failing call never sinks its siblings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import typing
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Sequence

import pydantic_core
from pydantic import ValidationError

from ragkit import tracing
from ragkit.component import ComponentConfig, Field
from ragkit.errors import ConfigError, Timeout, Transient
from ragkit.retry import RetryConfig, RetryPolicy, RetryStats
from ragkit.tools.function import FunctionTool
from ragkit.types import Message, ToolCall, ToolSpec

log = logging.getLogger("ragkit.tools.toolset")


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """What one tool call cost and how it ended, for the usage ledger."""

    call_id: str
    name: str
    duration_s: float
    attempts: int
    waits: tuple[float, ...] = ()
    error: str | None = None
    shared_with: str | None = None  # call id whose result this identical call reused

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)


@dataclass(frozen=True, slots=True)
class ToolRound:
    """The result messages of one round (in call order) and a record per call."""

    messages: list[Message]
    records: list[ToolCallRecord]


@dataclass
class _Outcome:
    content: str
    error: str | None = None
    attempts: int = 0
    waits: tuple[float, ...] = ()
    duration_s: float = 0.0


class _ToolRaised(Exception):
    """Carries a non-transient exception out of a try, so it is neither retried nor mistaken for our timeout."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Unserializable(Exception):
    pass


class ToolsetConfig(ComponentConfig):
    """Defaults shared by every tool of a toolset."""

    retry: RetryConfig | None = Field(
        None, description="Retries for side-effect-free tools that set none of their own."
    )
    max_workers: int = Field(32, ge=1, le=1024, description="Threads that run sync tool functions.")
    max_concurrent: int | None = Field(None, ge=1, le=100_000, description="Most tool calls in flight at once overall.")


class Toolset:
    """Tools by name; ``execute`` runs one round of calls concurrently. Clock and sleep are injectable."""

    Config = ToolsetConfig

    def __init__(
        self,
        tools: Iterable[FunctionTool | Callable[..., Any]] = (),
        *,
        config: ToolsetConfig | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or ToolsetConfig()
        self._sleep = sleep
        self._clock = clock
        self._tools: dict[str, FunctionTool] = {}
        self._policies: dict[str, RetryPolicy | None] = {}
        self._group_limits: dict[str, int] = {}
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str | None, asyncio.Semaphore]]
        self._semaphores = weakref.WeakKeyDictionary()
        self._executor: ThreadPoolExecutor | None = None
        self._specs: tuple[ToolSpec, ...] = ()
        for t in tools:
            self.add(t)

    @classmethod
    def from_config(
        cls, config: ToolsetConfig, *, tools: Iterable[FunctionTool | Callable[..., Any]] = (), **collaborators: Any
    ) -> Toolset:
        return cls(tools, config=config, **collaborators)

    def add(self, t: FunctionTool | Callable[..., Any]) -> FunctionTool:
        """Register a tool (a plain function is wrapped with defaults); names must be unique."""
        ft = t if isinstance(t, FunctionTool) else FunctionTool.from_function(t)
        if ft.name in self._tools:
            raise ConfigError(f"a tool named {ft.name!r} is already registered")
        self._tools[ft.name] = ft
        retry = None if ft.side_effects else (ft.config.retry or self.config.retry)
        self._policies[ft.name] = RetryPolicy(retry, sleep=self._sleep, clock=self._clock) if retry else None
        if ft.config.max_concurrent is not None:
            prior = self._group_limits.get(ft.group)
            self._group_limits[ft.group] = min(prior, ft.config.max_concurrent) if prior else ft.config.max_concurrent
        # Rebuilt only when the set of tools changes: providers cache converted shapes per tuple object.
        self._specs = tuple(x.spec for x in self._tools.values())
        return ft

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return self._specs

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __getitem__(self, name: str) -> FunctionTool:
        return self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def close(self) -> None:
        """Release the thread pool; a sync tool still running after its timeout finishes in the background."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> Toolset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def run_calls(self, calls: Sequence[ToolCall]) -> list[Message]:
        """One tool result message per call, in call order."""
        return (await self.execute(calls)).messages

    async def execute(self, calls: Sequence[ToolCall]) -> ToolRound:
        """Run one round of calls concurrently; identical side-effect-free calls run once."""
        outcomes: dict[int, _Outcome] = {}
        shared: dict[int, int] = {}
        first_of: dict[tuple[str, str], int] = {}
        runs: dict[int, Awaitable[_Outcome]] = {}
        for i, call in enumerate(calls):
            prepared = self._prepare(call)
            if isinstance(prepared, _Outcome):
                outcomes[i] = prepared
                continue
            ft, kwargs, key = prepared
            if key is not None and key in first_of:
                shared[i] = first_of[key]
                continue
            if key is not None:
                first_of[key] = i
            runs[i] = self._run_in_span(ft, kwargs, call.id)
        for i, outcome in zip(runs, await asyncio.gather(*runs.values())):
            outcomes[i] = outcome
        messages: list[Message] = []
        records: list[ToolCallRecord] = []
        for i, call in enumerate(calls):
            owner = shared.get(i)
            o = outcomes[i if owner is None else owner]
            messages.append(
                Message(
                    role="tool", content=o.content, tool_call_id=call.id, name=call.name, is_error=o.error is not None
                )
            )
            if owner is None:
                records.append(ToolCallRecord(call.id, call.name, o.duration_s, o.attempts, o.waits, o.error))
            else:
                records.append(ToolCallRecord(call.id, call.name, 0.0, 0, (), o.error, shared_with=calls[owner].id))
        return ToolRound(messages, records)

    def _prepare(self, call: ToolCall) -> _Outcome | tuple[FunctionTool, dict[str, Any], tuple[str, str] | None]:
        ft = self._tools.get(call.name)
        if ft is None:
            known = ", ".join(self._tools) or "none"
            return _error("unknown_tool", call.name, f"no tool named {call.name!r}; available tools: {known}")
        raw = call.arguments if call.arguments and call.arguments.strip() else "{}"
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as e:
            return _error(
                "invalid_json", call.name, f"arguments are not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
            )
        if not isinstance(parsed, dict):
            return _error(
                "invalid_arguments", call.name, f"arguments must be a JSON object, got {type(parsed).__name__}"
            )
        try:
            kwargs = ft.validate(parsed)
        except ValidationError as e:
            problems = [
                {
                    "field": ".".join(str(p) for p in err["loc"]) or "(arguments)",
                    "problem": err["msg"],
                    "type": err["type"],
                }
                for err in e.errors(include_url=False)
            ]
            fields = ", ".join(p["field"] for p in problems)
            return _error(
                "invalid_arguments", call.name, f"invalid arguments for {call.name}: {fields}", problems=problems
            )
        return ft, kwargs, None if ft.side_effects else (ft.name, _canonical(ft, kwargs, parsed))

    async def _run_in_span(self, ft: FunctionTool, kwargs: dict[str, Any], call_id: str) -> _Outcome:
        with tracing.span("tool", {"gen_ai.tool.name": ft.name, "gen_ai.tool.call.id": call_id}) as span:
            outcome = await self._run(ft, kwargs)
            span.set({"ragkit.tool.attempts": outcome.attempts, "error.type": outcome.error})
            return outcome

    async def _run(self, ft: FunctionTool, kwargs: dict[str, Any]) -> _Outcome:
        stats = RetryStats()
        start = self._clock()

        async def attempt() -> Any:
            async with self._slots(ft):
                try:
                    return await asyncio.wait_for(self._guarded(ft, kwargs), ft.timeout_s)
                except asyncio.TimeoutError as e:
                    raise Timeout(f"tool {ft.name} did not finish within {ft.timeout_s:g}s and was cancelled") from e

        policy = self._policies[ft.name]
        try:
            if policy is None:
                stats.attempts = 1
                value = await attempt()
            else:
                value = await policy.call(attempt, stats)
            outcome = _Outcome(_to_json(value))
        except Timeout as e:
            outcome = _error("timeout", ft.name, str(e), attempts=stats.attempts)
        except (_ToolRaised, Transient) as e:
            cause = e.error if isinstance(e, _ToolRaised) else e
            log.warning(
                "tool %s failed: %s: %s", ft.name, type(cause).__name__, cause, exc_info=log.isEnabledFor(logging.DEBUG)
            )
            outcome = _error(
                "tool_error",
                ft.name,
                f"{type(cause).__name__}: {cause}",
                type=type(cause).__name__,
                attempts=stats.attempts,
            )
        except _Unserializable as e:
            outcome = _error(
                "unserializable_result", ft.name, f"tool {ft.name} returned a value that is not JSON-serialisable: {e}"
            )
        outcome.attempts = stats.attempts
        outcome.waits = tuple(stats.waits)
        outcome.duration_s = self._clock() - start
        return outcome

    async def _guarded(self, ft: FunctionTool, kwargs: dict[str, Any]) -> Any:
        try:
            return await ft.invoke(kwargs, self._pool())
        except Transient:
            raise
        except Exception as e:
            raise _ToolRaised(e) from e

    @contextlib.asynccontextmanager
    async def _slots(self, ft: FunctionTool) -> AsyncIterator[None]:
        # Semaphores bind to an event loop, so each loop gets its own (the sync facade runs fresh loops).
        sems = self._semaphores.setdefault(asyncio.get_running_loop(), {})
        async with contextlib.AsyncExitStack() as stack:
            for group, limit in ((ft.group, self._group_limits.get(ft.group)), (None, self.config.max_concurrent)):
                if limit is not None:
                    sem = sems.get(group)
                    if sem is None:
                        sem = sems[group] = asyncio.Semaphore(limit)
                    await stack.enter_async_context(sem)
            yield

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.config.max_workers, thread_name_prefix="ragkit-tool")
        return self._executor


def retrieval_tool(
    retriever: Any,
    name: str = "search_knowledge_base",
    default_top_k: int = 5,
    *,
    max_top_k: int = 50,
    description: str | None = None,
    timeout_s: float = 30.0,
) -> FunctionTool:
    """A tool ``name(query, top_k)`` that returns the hits (chunk id, text, score, metadata) of any ``Retriever``."""
    if not 1 <= default_top_k <= max_top_k:
        raise ConfigError(f"default_top_k must be between 1 and max_top_k={max_top_k}, got {default_top_k}")

    async def search(query: str, top_k: int = default_top_k) -> list[dict[str, Any]]:
        hits = await retriever.retrieve(query, top_k)
        return [
            {
                "chunk_id": h.chunk.id,
                "doc_id": h.chunk.doc_id,
                "text": h.chunk.text,
                "score": float(h.score),
                "metadata": dict(h.chunk.metadata),
            }
            for h in hits
        ]

    search.__name__ = name
    search.__annotations__ = {
        "query": typing.Annotated[str, Field(min_length=1, description="What to look up, in natural language.")],
        "top_k": typing.Annotated[int, Field(ge=1, le=max_top_k, description="How many passages to return.")],
        "return": list[dict[str, Any]],
    }
    search.__doc__ = description or "Search the knowledge base and return the most relevant passages with their scores."
    return FunctionTool.from_function(search, name=name, timeout_s=timeout_s)


def _error(kind: str, tool_name: str, message: str, **extra: Any) -> _Outcome:
    body = {"error": kind, "tool": tool_name, "message": message, **extra}
    return _Outcome(json.dumps(body, ensure_ascii=False), error=kind)


def _to_json(value: Any) -> str:
    # Text is passed through as the model would read it; everything else becomes JSON.
    if isinstance(value, str):
        return value
    try:
        return json.dumps(pydantic_core.to_jsonable_python(value), ensure_ascii=False, allow_nan=False)
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError) as e:
        raise _Unserializable(f"{type(value).__name__} ({e})") from e


def _canonical(ft: FunctionTool, kwargs: dict[str, Any], parsed: dict[str, Any]) -> str:
    # Validated values with defaults filled in, so {"q": "x"} and {"q": "x", "top_k": 5} count as one call.
    try:
        data = pydantic_core.to_jsonable_python(kwargs)
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError):
        data = parsed
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


__all__ = ["Toolset", "ToolsetConfig", "ToolCallRecord", "ToolRound", "retrieval_tool"]
