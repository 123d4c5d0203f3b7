"""A tool from a typed Python function: its name, description and argument schema, built once from the signature
and docstring, and how it is run (time limit, retries, concurrency, side effects)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import re
import typing
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

import pydantic
from pydantic import ConfigDict, ValidationError, model_validator

from ragkit.component import ComponentConfig, Field
from ragkit.errors import ConfigError
from ragkit.retry import RetryConfig
from ragkit.types import ToolSpec

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
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        config: ToolConfig | None = None,
    ) -> None:
        self.fn = fn
        self.config = config or ToolConfig()
        self.name = name or getattr(fn, "__name__", "")
        if not _NAME.match(self.name):
            raise ConfigError(f"tool name {self.name!r} must be 1-64 letters, digits, '_' or '-'")
        summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        # A callable object counts as async when its class's __call__ is a coroutine function.
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
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
                timeout_s=timeout_s,
                retry=retry,
                concurrency_group=concurrency_group,
                max_concurrent=max_concurrent,
                side_effects=side_effects,
            )
        except ValidationError as e:
            raise ConfigError(f"tool {name or getattr(fn, '__name__', fn)!r}: {first_problem(e)}") from e
        return cls(fn, name=name, description=description, config=config)

    @classmethod
    def from_config(
        cls, config: ToolConfig, *, function: Callable[..., Any], name: str | None = None, **_: Any
    ) -> FunctionTool:
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
    """Decorator: ``@tool`` or ``@tool(timeout_s=5, side_effects=True)`` makes a function a ``FunctionTool``."""
    if fn is None:
        return lambda f: FunctionTool.from_function(f, **options)
    return FunctionTool.from_function(fn, **options)


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
            raise ConfigError(
                f"tool {tool_name!r}: parameter {pname!r} must be a named keyword-able parameter, "
                f"not *args/**kwargs/positional-only"
            )
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


def first_problem(e: ValidationError) -> str:
    err = e.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"


__all__ = ["FunctionTool", "ToolConfig", "tool", "first_problem"]
