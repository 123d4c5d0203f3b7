"""Tools from typed Python functions, and a ``Toolset`` that runs one round of tool calls concurrently.

A tool's argument schema is built once, when it is registered. ``Toolset.execute`` validates every call
before its function runs, runs the round under per-group concurrency limits, retries transient failures
of side-effect-free tools, runs identical side-effect-free calls once, and turns every failure into an
error result the model can read, so one failing call never sinks its siblings.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import json
import logging
import re
import time
import typing
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence

import pydantic
import pydantic_core
from pydantic import ConfigDict, ValidationError, model_validator

from ragkit.config import ComponentConfig, Field
from ragkit.errors import ConfigError, Timeout, Transient
from ragkit.retry import RetryConfig, RetryPolicy, RetryStats
from ragkit.types import Message, ToolCall, ToolSpec

log = logging.getLogger("ragkit.tools")

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ARG_LINE = re.compile(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Returns|Raises|Yields|Examples?|Notes?):\s*$")


class ToolConfig(ComponentConfig):
    """How one tool is run: time limit, retries, concurrency, side effects."""

    timeout_s: float = Field(30.0, gt=0, le=3600, description="Time limit of one try; the call is cancelled after it.")
    retry: RetryConfig | None = Field(None, description="Retries of transient errors; None uses the toolset's default.")
    concurrency_group: str | None = Field(
        None, min_length=1, max_length=64, description="Tools in one group share a limit; defaults to the tool's name."
    )
    max_concurrent: int | None = Field(None, ge=1, le=10_000, description="Most calls of this group in flight at once.")
    side_effects: bool = Field(False, description="Side-effecting tools are never retried and never deduplicated.")

    @model_validator(mode="after")
    def _no_retry_with_side_effects(self) -> ToolConfig:
        if self.side_effects and self.retry is not None:
            raise ValueError("a tool with side_effects=True is never retried; drop its retry setting")
        return self


class FunctionTool:
    """A typed Python function (sync or async) the model can call; implements the ``Tool`` protocol."""

    Config = ToolConfig

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None, config: ToolConfig | None = None
    ) -> None:
        self.fn = fn
        self.config = config or ToolConfig()
        self.name = name or getattr(fn, "__name__", "")
        if not _NAME.match(self.name):
            raise ConfigError(f"tool name {self.name!r} must be 1-64 letters, digits, '_' or '-'")
        summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))
        self.args_model = _arguments_model(fn, self.name, arg_docs)
        self.parameters: dict[str, Any] = _clean_schema(self.args_model.model_json_schema())
        self.parameters.setdefault("properties", {})
        self.spec = ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_s: float = 30.0,
        retry: RetryConfig | None = None,
        concurrency_group: str | None = None,
        max_concurrent: int | None = None,
        side_effects: bool = False,
    ) -> FunctionTool:
        """Wrap ``fn``: name from the function, description from its docstring, arguments from its signature."""
        try:
            config = ToolConfig(
                timeout_s=timeout_s, retry=retry, concurrency_group=concurrency_group,
                max_concurrent=max_concurrent, side_effects=side_effects,
            )
        except ValidationError as e:
            raise ConfigError(f"tool {name or getattr(fn, '__name__', fn)!r}: {_first_problem(e)}") from e
        return cls(fn, name=name, description=description, config=config)

    @classmethod
    def from_config(cls, config: ToolConfig, *, function: Callable[..., Any], name: str | None = None) -> FunctionTool:
        return cls(function, name=name, config=config)

    @property
    def timeout_s(self) -> float:
        return self.config.timeout_s

    @property
    def side_effects(self) -> bool:
        return self.config.side_effects

    @property
    def group(self) -> str:
        return self.config.concurrency_group or self.name

    def json_schema(self) -> Mapping[str, Any]:
        return self.parameters

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the function; raises ``pydantic.ValidationError`` naming each bad field."""
        return dict(self.args_model.model_validate(arguments))

    async def invoke(self, kwargs: Mapping[str, Any], executor: ThreadPoolExecutor | None = None) -> Any:
        """Run the function with validated arguments; sync functions run in ``executor``."""
        if self.is_async:
            return await self.fn(**kwargs)
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, functools.partial(self.fn, **kwargs))
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    async def __call__(self, **kwargs: Any) -> Any:
        return await self.invoke(self.validate(kwargs))

    def __repr__(self) -> str:
        return f"FunctionTool(name={self.name!r}, side_effects={self.side_effects})"


def tool(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorator: ``@tool`` or ``@tool(timeout_s=5, side_effects=True, ...)`` turns a function into a ``FunctionTool``."""
    if fn is None:
        return lambda f: FunctionTool.from_function(f, **options)
    return FunctionTool.from_function(fn, **options)


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

    retry: RetryConfig | None = Field(None, description="Retries for side-effect-free tools that set none of their own.")
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
    def from_config(cls, config: ToolsetConfig, *, tools: Iterable[FunctionTool | Callable[..., Any]] = (), **collaborators: Any) -> Toolset:
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
            runs[i] = self._run(ft, kwargs)
        for i, outcome in zip(runs, await asyncio.gather(*runs.values())):
            outcomes[i] = outcome
        messages: list[Message] = []
        records: list[ToolCallRecord] = []
        for i, call in enumerate(calls):
            owner = shared.get(i)
            o = outcomes[i if owner is None else owner]
            messages.append(
                Message(role="tool", content=o.content, tool_call_id=call.id, name=call.name, is_error=o.error is not None)
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
            return _error("invalid_json", call.name, f"arguments are not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
        if not isinstance(parsed, dict):
            return _error("invalid_arguments", call.name, f"arguments must be a JSON object, got {type(parsed).__name__}")
        try:
            kwargs = ft.validate(parsed)
        except ValidationError as e:
            problems = [
                {"field": ".".join(str(p) for p in err["loc"]) or "(arguments)", "problem": err["msg"], "type": err["type"]}
                for err in e.errors(include_url=False)
            ]
            fields = ", ".join(p["field"] for p in problems)
            return _error("invalid_arguments", call.name, f"invalid arguments for {call.name}: {fields}", problems=problems)
        return ft, kwargs, None if ft.side_effects else (ft.name, _canonical(ft, kwargs, parsed))

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
            log.warning("tool %s failed: %s: %s", ft.name, type(cause).__name__, cause, exc_info=log.isEnabledFor(logging.DEBUG))
            outcome = _error("tool_error", ft.name, f"{type(cause).__name__}: {cause}", type=type(cause).__name__, attempts=stats.attempts)
        except _Unserializable as e:
            outcome = _error("unserializable_result", ft.name, f"tool {ft.name} returned a value that is not JSON-serialisable: {e}")
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


def retrieval_tool(retriever: Any, name: str = "search_knowledge_base", default_top_k: int = 5, *, max_top_k: int = 50,
                   description: str | None = None, timeout_s: float = 30.0) -> FunctionTool:
    """A tool ``name(query, top_k)`` that returns the hits (chunk id, text, score, metadata) of any ``Retriever``."""
    if not 1 <= default_top_k <= max_top_k:
        raise ConfigError(f"default_top_k must be between 1 and max_top_k={max_top_k}, got {default_top_k}")

    async def search(query: str, top_k: int = default_top_k) -> list[dict[str, Any]]:
        hits = await retriever.retrieve(query, top_k)
        return [
            {"chunk_id": h.chunk.id, "doc_id": h.chunk.doc_id, "text": h.chunk.text, "score": float(h.score),
             "metadata": dict(h.chunk.metadata)}
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


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """First paragraph as one line, and per-argument text from a Google-style ``Args:`` section."""
    lines = doc.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()):
            break
        summary.append(line.strip())
    args: dict[str, str] = {}
    current: str | None = None
    args_indent = 0
    in_args = False
    for line in lines:
        section = _SECTION.match(line.strip())
        if section and not line.startswith((" ", "\t")):
            in_args = section.group(1) in {"Args", "Arguments", "Parameters", "Params"}
            current = None
            continue
        if not in_args or not line.strip():
            continue
        m = _ARG_LINE.match(line.strip())
        indent = len(line) - len(line.lstrip())
        if m and (current is None or indent <= args_indent):
            current, args_indent = m.group(1), indent
            args[current] = m.group(2).strip()
        elif current is not None:
            args[current] = (args[current] + " " + line.strip()).strip()
    return " ".join(summary), args


def _arguments_model(fn: Callable[..., Any], tool_name: str, arg_docs: Mapping[str, str]) -> type[pydantic.BaseModel]:
    try:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
    except (NameError, TypeError, ValueError) as e:
        raise ConfigError(f"tool {tool_name!r}: cannot read the signature's type hints: {e}") from e
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigError(f"tool {tool_name!r}: parameter {pname!r} must be a named keyword-able parameter, not *args/**kwargs/positional-only")
        if pname.startswith("_"):
            raise ConfigError(f"tool {tool_name!r}: parameter {pname!r} cannot start with '_'")
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        has_description = typing.get_origin(annotation) is typing.Annotated and any(
            getattr(m, "description", None) for m in typing.get_args(annotation)[1:]
        )
        if pname in arg_docs and not has_description:
            fields[pname] = (annotation, Field(default, description=arg_docs[pname]))
        else:
            fields[pname] = (annotation, default)
    try:
        return pydantic.create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError, NameError) as e:
        raise ConfigError(f"tool {tool_name!r}: unsupported parameter type: {e}") from e


def _clean_schema(node: Any, *, mapping: bool = False) -> Any:
    """Drop pydantic's generated ``title`` keys; keys of ``properties``/``$defs`` are names and are kept."""
    if isinstance(node, dict):
        if mapping:
            return {k: _clean_schema(v) for k, v in node.items()}
        return {
            k: _clean_schema(v, mapping=k in ("properties", "$defs", "definitions", "patternProperties"))
            for k, v in node.items()
            if k != "title"
        }
    if isinstance(node, list):
        return [_clean_schema(x) for x in node]
    return node


def _first_problem(e: ValidationError) -> str:
    err = e.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"


__all__ = ["FunctionTool", "ToolConfig", "Toolset", "ToolsetConfig", "ToolCallRecord", "ToolRound", "tool", "retrieval_tool"]
