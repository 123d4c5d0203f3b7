"""Reading a YAML file for validation: every problem located by its key path and line.

Duplicate keys are problems (YAML would silently keep the last one), keys must be plain scalars, anchors/aliases
may not expand past a fixed number of nodes (so an "alias bomb" of a few lines is refused instead of taking
gigabytes), and nesting is bounded (so a deep document is refused instead of exhausting the stack).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import yaml
from pydantic import ValidationError

from ragkit.errors import ConfigError

# Nodes visited with every alias expanded; real pipelines have a few hundred.
MAX_NODES = 20_000
# Levels of nesting; real pipelines have five or six.
MAX_DEPTH = 64

Lines = Mapping[tuple[Any, ...], int]


@dataclass(frozen=True)
class Problem:
    """One validation problem, located in the YAML."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}"


class ConfigValidationError(ConfigError):
    """Every problem found in a pipeline file, each with its YAML path and line."""

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = problems
        head = f"{source}: " if source else ""
        super().__init__(head + f"{len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


def fmt_path(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def line_for(lines: Lines, path: tuple[Any, ...]) -> int | None:
    """The line of ``path``, else of its nearest ancestor that has one."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _message(err: Mapping[str, Any]) -> str:
    kind, msg = err.get("type", ""), str(err.get("msg", ""))
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping of settings, got {_yaml_kind(err.get('input'))}"
    if kind == "extra_forbidden":
        return "unknown key (check its spelling and indentation)"
    # pydantic prefixes messages of custom validators with "Value error, ".
    return msg.removeprefix("Value error, ")


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return {str: "a string", int: "a number", float: "a number", list: "a list"}.get(type(value), type(value).__name__)


def problems_of(error: ValidationError, path: tuple[Any, ...], lines: Lines) -> list[Problem]:
    """One ``Problem`` per pydantic error, located under ``path`` and worded for someone editing YAML."""
    out = []
    for err in error.errors():
        sub = path + tuple(err["loc"])
        out.append(Problem(fmt_path(sub), line_for(lines, sub), _message(err)))
    return out


class _Walk:
    def __init__(self) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        self.problems: list[Problem] = []
        self.nodes = 0

    def visit(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooBig(
                path,
                f"the document expands to more than {MAX_NODES} nodes (anchors and aliases that "
                "multiply each other?); write it out instead",
            )
        if len(path) > MAX_DEPTH:
            raise _TooBig(path, f"nested more than {MAX_DEPTH} levels deep")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key, value in node.value:
                line = key.start_mark.line + 1
                if not isinstance(key, yaml.ScalarNode):
                    kind = "list" if isinstance(key, yaml.SequenceNode) else "mapping"
                    self.problems.append(
                        Problem(fmt_path(path), line, f"a {kind} is used as a key; keys must be plain names")
                    )
                    continue
                if key.value in seen and key.tag != "tag:yaml.org,2002:merge":
                    self.problems.append(
                        Problem(
                            fmt_path(path + (key.value,)),
                            line,
                            f"duplicate key {key.value!r} (first at line {seen[key.value]})",
                        )
                    )
                seen.setdefault(key.value, line)
                self.lines.setdefault(path + (key.value,), line)
                self.visit(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.visit(item, path + (i,))


class _TooBig(Exception):
    def __init__(self, path: tuple[Any, ...], message: str) -> None:
        self.path = path
        self.message = message


def read_yaml(text: str, source: str = "") -> tuple[Any, Lines]:
    """``(data, lines)`` of a YAML document; ``ConfigValidationError`` for bad syntax, duplicate keys or a document
    that expands past ``MAX_NODES`` nodes. Nothing is applied here: the caller validates ``data`` as a whole."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            # PyYAML composes nested nodes recursively: a document thousands of levels deep ends here.
            raise ConfigValidationError(
                [Problem("(yaml)", None, f"nested more than {MAX_DEPTH} levels deep")], source
            ) from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark else None
            where = f" at line {line}" if line else ""
            detail = getattr(e, "problem", None) or str(e)
            raise ConfigValidationError([Problem("(yaml)", line, f"not valid YAML{where}: {detail}")], source) from e
        if node is None:
            return None, {}
        walk = _Walk()
        try:
            walk.visit(node, ())
        except _TooBig as e:
            problem = Problem(fmt_path(e.path[:MAX_DEPTH]), line_for(walk.lines, e.path), e.message)
            raise ConfigValidationError([problem], source) from None
        if walk.problems:
            raise ConfigValidationError(walk.problems, source)
        try:
            return loader.construct_document(node), walk.lines
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark else None
            raise ConfigValidationError(
                [Problem("(yaml)", line, f"cannot read the value: {getattr(e, 'problem', e)}")], source
            ) from e
    finally:
        loader.dispose()


__all__ = [
    "Problem",
    "ConfigValidationError",
    "read_yaml",
    "problems_of",
    "line_for",
    "fmt_path",
    "MAX_NODES",
    "MAX_DEPTH",
    "Lines",
]
