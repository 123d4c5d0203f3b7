"""Pydantic models for YAML pipelines: component configs, load/dump with line-numbered errors, JSON Schema export."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ragkit.errors import ConfigError


class ComponentConfig(BaseModel):
    """Base of every component's config: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def secret_from_env(var: str | None, *, required: bool = True, what: str = "API key") -> SecretStr | None:
    """Read a secret from the environment variable named ``var``; the error names the variable, never a value."""
    if not var:
        if required:
            raise ConfigError(f"no environment variable named for the {what}")
        return None
    value = os.environ.get(var)
    if not value:
        if required:
            raise ConfigError(f"environment variable {var} is not set; it should hold the {what}")
        return None
    return SecretStr(value)


# Pipeline-level settings -------------------------------------------------------------------------

class RetrievalSettings(ComponentConfig):
    """How many chunks flow through retrieval and reranking."""

    top_k: int = Field(5, ge=1, le=200, description="Hits handed to prompt assembly.")
    candidates: int = Field(40, ge=1, le=2000, description="Hits fetched before reranking.")


class BudgetSettings(ComponentConfig):
    """Token budget of one prompt."""

    reserved_output_tokens: int = Field(256, ge=1, le=100_000, description="Tokens kept free for the answer.")
    context_window: int | None = Field(None, ge=256, le=10_000_000, description="Override the generator's context window.")
    max_source_tokens: int | None = Field(None, ge=1, le=1_000_000, description="Cap on tokens spent on sources.")


class LedgerSettings(ComponentConfig):
    """Where per-request usage goes."""

    jsonl_path: str | None = Field(None, description="Append one JSON line of usage per request to this file.")
    prices: dict[str, dict[str, float]] | None = Field(
        None, description="Model → {input, output, cached} USD per 1M tokens; overlays the built-in table."
    )


@dataclass(frozen=True)
class ComponentSpec:
    """A validated component block: its registered type name and its config."""

    role: str
    type: str
    config: ComponentConfig

    def dump(self) -> dict[str, Any]:
        return {"type": self.type, **self.config.model_dump(mode="json", exclude_defaults=True)}


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


SINGLE_ROLES = ("chunker", "embedder", "store", "retriever", "reranker", "compressor", "router")
SETTINGS = {"retrieval": RetrievalSettings, "budget": BudgetSettings, "ledger": LedgerSettings}
TOP_LEVEL = {"index_dir", "generators", "default_generator", "retry", "routing", "catalog", *SINGLE_ROLES, *SETTINGS}


def _settings_models() -> dict[str, type[ComponentConfig]]:
    from ragkit.retry import RetryConfig
    from ragkit.routing import RoutedGeneratorConfig

    return {**SETTINGS, "retry": RetryConfig, "routing": RoutedGeneratorConfig}


@dataclass(frozen=True)
class PipelineConfig:
    """A whole pipeline, validated. Build it with ``load_pipeline`` / ``parse_pipeline``; dump with ``dump``."""

    index_dir: str
    components: Mapping[str, ComponentSpec]
    generators: Mapping[str, ComponentSpec]
    default_generator: str | None
    settings: Mapping[str, ComponentConfig]
    catalog: ComponentConfig | None = None  # ragkit.catalog.CatalogConfig when the file has a ``catalog`` section

    def dump(self) -> dict[str, Any]:
        """Plain data that ``parse_pipeline`` turns back into an equal config."""
        out: dict[str, Any] = {"index_dir": self.index_dir}
        for role, spec in self.components.items():
            out[role] = spec.dump()
        if self.generators:
            out["generators"] = {name: spec.dump() for name, spec in self.generators.items()}
        if self.default_generator:
            out["default_generator"] = self.default_generator
        for key, model in self.settings.items():
            out[key] = model.model_dump(mode="json", exclude_defaults=True)
        if self.catalog is not None:
            out["catalog"] = self.catalog.model_dump(mode="json", exclude_defaults=True)
        return out

    def dump_yaml(self) -> str:
        return yaml.safe_dump(self.dump(), sort_keys=False, allow_unicode=True)

    def setting(self, key: str) -> Any:
        return self.settings[key]


DEFAULTS: dict[str, Any] = {
    "index_dir": ".ragkit",
    "chunker": {"type": "recursive"},
    "embedder": {"type": "minilm_onnx"},
    "store": {"type": "qdrant_edge"},
    "retriever": {"type": "hybrid"},
    "reranker": {"type": "none"},
    "compressor": {"type": "extractive"},
    "generators": {"local": {"type": "llamacpp"}},
    "default_generator": "local",
}


def _line_map(node: yaml.Node, path: tuple[Any, ...] = (), out: dict[tuple[Any, ...], int] | None = None):
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[path + (key.value,)] = key.start_mark.line + 1
            _line_map(value, path + (key.value,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)
    return out


def _line_for(lines: Mapping[tuple[Any, ...], int], path: tuple[Any, ...]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _fmt(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _validate_block(role: str, block: Any, path: tuple[Any, ...], lines, problems: list[Problem]) -> ComponentSpec | None:
    from ragkit import registry

    if not isinstance(block, Mapping):
        problems.append(Problem(_fmt(path), _line_for(lines, path), f"expected a mapping with a 'type' key, got {type(block).__name__}"))
        return None
    options = dict(block)
    type_name = options.pop("type", None)
    if not isinstance(type_name, str):
        problems.append(Problem(_fmt(path + ("type",)), _line_for(lines, path), f"missing 'type'; registered {role} types: {', '.join(registry.names(role))}"))
        return None
    try:
        cls = registry.resolve(role, type_name)
    except ConfigError as e:
        problems.append(Problem(_fmt(path + ("type",)), _line_for(lines, path + ("type",)), str(e)))
        return None
    model = getattr(cls, "Config", None)
    if model is None:
        problems.append(Problem(_fmt(path), _line_for(lines, path), f"{role} type {type_name!r} has no Config model"))
        return None
    try:
        config = model.model_validate(options)
    except ValidationError as e:
        for err in e.errors():
            sub = path + tuple(err["loc"])
            problems.append(Problem(_fmt(sub), _line_for(lines, sub), err["msg"]))
        return None
    return ComponentSpec(role, type_name, config)


def parse_pipeline(data: Any, *, lines: Mapping[tuple[Any, ...], int] | None = None, source: str = "") -> PipelineConfig:
    """Validate plain data into a ``PipelineConfig``; raise ``ConfigValidationError`` listing every problem."""
    lines = lines or {}
    problems: list[Problem] = []
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigValidationError([Problem("(top level)", 1, "expected a mapping of pipeline sections")], source)
    for key in data:
        if key not in TOP_LEVEL:
            problems.append(Problem(str(key), _line_for(lines, (key,)), f"unknown section; expected one of {', '.join(sorted(TOP_LEVEL))}"))
    merged = {**DEFAULTS, **{k: v for k, v in data.items() if k in TOP_LEVEL}}
    components: dict[str, ComponentSpec] = {}
    for role in SINGLE_ROLES:
        if merged.get(role) is None:
            continue
        spec = _validate_block(role, merged[role], (role,), lines, problems)
        if spec:
            components[role] = spec
    generators: dict[str, ComponentSpec] = {}
    gens = merged.get("generators") or {}
    if not isinstance(gens, Mapping):
        problems.append(Problem("generators", _line_for(lines, ("generators",)), "expected a mapping of name → generator block"))
        gens = {}
    for name, block in gens.items():
        spec = _validate_block("generator", block, ("generators", name), lines, problems)
        if spec:
            generators[str(name)] = spec
    default = merged.get("default_generator")
    if default is not None and gens and default not in gens:
        problems.append(Problem("default_generator", _line_for(lines, ("default_generator",)), f"names {default!r}, which is not under generators ({', '.join(gens)})"))
    settings: dict[str, ComponentConfig] = {}
    for key, model in _settings_models().items():
        try:
            settings[key] = model.model_validate(merged.get(key) or {})
        except ValidationError as e:
            for err in e.errors():
                sub = (key,) + tuple(err["loc"])
                problems.append(Problem(_fmt(sub), _line_for(lines, sub), err["msg"]))
    catalog = None
    if data.get("catalog") is not None:
        from ragkit.catalog import CatalogConfig

        try:
            catalog = CatalogConfig.model_validate(data["catalog"])
        except ValidationError as e:
            for err in e.errors():
                sub = ("catalog",) + tuple(err["loc"])
                problems.append(Problem(_fmt(sub), _line_for(lines, sub), err["msg"]))
    index_dir = merged.get("index_dir")
    if not isinstance(index_dir, str) or not index_dir:
        problems.append(Problem("index_dir", _line_for(lines, ("index_dir",)), "expected a directory path string"))
    if problems:
        raise ConfigValidationError(problems, source)
    config = PipelineConfig(str(index_dir), components, generators, default, settings, catalog)
    _check_references(config, lines, source)
    return config


def _check_references(config: PipelineConfig, lines, source: str) -> None:
    """Every generator name a router or the routing block uses must be defined under ``generators``."""
    defined = ", ".join(config.generators) or "none"
    problems: list[Problem] = []
    router = config.components.get("router")
    if router is not None:
        for field in ("local_generator", "strong_generator"):
            name = getattr(router.config, field, None)
            if name is not None and name not in config.generators:
                path = ("router", field)
                problems.append(Problem(_fmt(path), _line_for(lines, path), f"names generator {name!r}, which is not defined under generators ({defined})"))
    routing = config.settings.get("routing")
    for i, name in enumerate(getattr(routing, "fallback_chain", ()) or ()):
        if name not in config.generators:
            path = ("routing", "fallback_chain", i)
            problems.append(Problem(_fmt(path), _line_for(lines, path), f"names generator {name!r}, which is not defined under generators ({defined})"))
    if problems:
        raise ConfigValidationError(problems, source)


def load_pipeline(path: str | Path | None = None) -> PipelineConfig:
    """Load and validate a pipeline YAML file; ``None`` gives the embedded defaults. Nothing is built here."""
    if path is None:
        return parse_pipeline({})
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read pipeline file {path}: {e.strerror}") from e
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigValidationError([Problem("(yaml)", mark.line + 1 if mark else None, f"not valid YAML{where}: {getattr(e, 'problem', e)}")], str(path)) from e
    lines = _line_map(node) if node is not None else {}
    return parse_pipeline(data, lines=lines, source=str(path))


def json_schema() -> dict[str, Any]:
    """JSON Schema of a pipeline file, for editors: each role a oneOf over its registered types."""
    from ragkit import registry

    def role_schema(role: str) -> dict[str, Any]:
        variants = []
        for name in registry.names(role):
            try:
                model = registry.resolve(role, name).Config
            except (ConfigError, AttributeError):
                continue
            schema = model.model_json_schema()
            schema.setdefault("properties", {})["type"] = {"const": name}
            schema["required"] = sorted(set(schema.get("required", [])) | {"type"})
            schema["additionalProperties"] = False
            schema["title"] = f"{role}: {name}"
            variants.append(schema)
        return {"oneOf": variants}

    props: dict[str, Any] = {"index_dir": {"type": "string", "description": "Where the index lives."}}
    for role in SINGLE_ROLES:
        props[role] = role_schema(role)
    props["generators"] = {"type": "object", "additionalProperties": role_schema("generator")}
    props["default_generator"] = {"type": "string"}
    for key, model in _settings_models().items():
        props[key] = model.model_json_schema()
    from ragkit.catalog import CatalogConfig

    props["catalog"] = CatalogConfig.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "ragkit pipeline", "type": "object", "properties": props, "additionalProperties": False}


__all__ = [
    "ComponentConfig", "Field", "secret_from_env", "PipelineConfig", "ComponentSpec", "Problem", "ConfigValidationError",
    "RetrievalSettings", "BudgetSettings", "LedgerSettings", "load_pipeline", "parse_pipeline", "json_schema", "DEFAULTS",
]
