"""Pydantic models for YAML pipelines: component configs, load/dump with line-numbered errors, JSON Schema export."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import Field, ValidationError

from ragkit import registry
from ragkit.component import ComponentConfig, secret_from_env
from ragkit.errors import ConfigError
from ragkit.yaml_source import ConfigValidationError, Problem, fmt_path, line_for, problems_of, read_yaml

# Pipeline-level settings -------------------------------------------------------------------------


class RetrievalSettings(ComponentConfig):
    """How many chunks flow through retrieval and reranking."""

    top_k: int = Field(5, ge=1, le=200, description="Hits handed to prompt assembly.")
    candidates: int = Field(40, ge=1, le=2000, description="Hits fetched before reranking.")


class BudgetSettings(ComponentConfig):
    """Token budget of one prompt."""

    reserved_output_tokens: int = Field(256, ge=1, le=100_000, description="Tokens kept free for the answer.")
    context_window: int | None = Field(
        None, ge=256, le=10_000_000, description="Override the generator's context window."
    )
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


SINGLE_ROLES = ("chunker", "embedder", "store", "sparse", "retriever", "reranker", "compressor", "router")
SETTINGS = {"retrieval": RetrievalSettings, "budget": BudgetSettings, "ledger": LedgerSettings}
TOP_LEVEL = {"index_dir", "generators", "default_generator", "retry", "routing", *SINGLE_ROLES, *SETTINGS}
TOP_LEVEL |= {"conversation", "response_cache"}  # settings defined in ragkit.answer (see _settings_models)
TOP_LEVEL |= {"grounding", "abstention"}  # answer checks: ragkit.answer.grounding, ragkit.answer.abstention


def _settings_models() -> dict[str, type[ComponentConfig]]:
    from ragkit.answer.abstention import AbstentionConfig
    from ragkit.answer.conversation import ConversationSettings
    from ragkit.answer.grounding import GroundingConfig
    from ragkit.answer.response_cache import ResponseCacheSettings
    from ragkit.generate.routed import RoutedGeneratorConfig
    from ragkit.retry import RetryConfig

    extra = {"conversation": ConversationSettings, "response_cache": ResponseCacheSettings}
    extra |= {"grounding": GroundingConfig, "abstention": AbstentionConfig}
    return {**SETTINGS, "retry": RetryConfig, "routing": RoutedGeneratorConfig, **extra}


@dataclass(frozen=True)
class AppBuild:
    """What an app section makes of a pipeline: the object that answers (``ask``/``aask``/``astream``), the ``RAG``
    under it, a title and a note for the chat page, and an optional checker of answers (``checker(text) -> result``)
    for ``ragkit eval``."""

    answerer: Any
    rag: Any
    title: str = "Questions"
    note: str = ""
    checker: Any = None


class AppSection(ComponentConfig):
    """Base of a top-level YAML section that an app adds (registered under the entry-point group ``ragkit.section``)."""

    def build(self, config: PipelineConfig, **rag_kwargs: Any) -> AppBuild:
        raise NotImplementedError(f"{type(self).__name__} does not build an app")


@dataclass(frozen=True)
class PipelineConfig:
    """A whole pipeline, validated. Build it with ``load_pipeline`` / ``parse_pipeline``; dump with ``dump``."""

    index_dir: str
    components: Mapping[str, ComponentSpec]
    generators: Mapping[str, ComponentSpec]
    default_generator: str | None
    settings: Mapping[str, ComponentConfig]
    sections: Mapping[str, AppSection] = field(default_factory=dict)  # app sections registered by entry point

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
        for key, section in self.sections.items():
            out[key] = section.model_dump(mode="json", exclude_defaults=True)
        return out

    def dump_yaml(self) -> str:
        return yaml.safe_dump(self.dump(), sort_keys=False, allow_unicode=True)

    @property
    def retrieval(self) -> RetrievalSettings:
        return self.settings["retrieval"]  # type: ignore[return-value]

    @property
    def budget(self) -> BudgetSettings:
        return self.settings["budget"]  # type: ignore[return-value]

    @property
    def ledger(self) -> LedgerSettings:
        return self.settings["ledger"]  # type: ignore[return-value]

    @property
    def retry(self) -> Any:
        """The ``RetryConfig``."""
        return self.settings["retry"]

    @property
    def routing(self) -> Any:
        """The ``RoutedGeneratorConfig``."""
        return self.settings["routing"]

    @property
    def grounding(self) -> Any:
        """The ``GroundingConfig``: how answers are checked against their sources."""
        return self.settings["grounding"]

    @property
    def abstention(self) -> Any:
        """The ``AbstentionConfig``: thresholds under which an answer is withdrawn."""
        return self.settings["abstention"]


DEFAULTS: dict[str, Any] = {
    "index_dir": ".ragkit",
    "chunker": {"type": "recursive"},
    "embedder": {"type": "minilm_onnx"},
    "store": {"type": "qdrant_edge"},
    "sparse": {"type": "bm25"},
    "retriever": {"type": "hybrid"},
    "reranker": {"type": "none"},
    "compressor": {"type": "extractive"},
    "generators": {"local": {"type": "llamacpp"}},
    "default_generator": "local",
}


def _validate_block(
    role: str, block: Any, path: tuple[Any, ...], lines, problems: list[Problem]
) -> ComponentSpec | None:
    if not isinstance(block, Mapping):
        problems.append(
            Problem(
                fmt_path(path),
                line_for(lines, path),
                f"expected a mapping with a 'type' key, got {type(block).__name__}",
            )
        )
        return None
    options = dict(block)
    type_name = options.pop("type", None)
    if not isinstance(type_name, str):
        problems.append(
            Problem(
                fmt_path(path + ("type",)),
                line_for(lines, path),
                f"missing 'type'; registered {role} types: {', '.join(registry.names(role))}",
            )
        )
        return None
    try:
        cls = registry.resolve(role, type_name)
    except ConfigError as e:
        problems.append(Problem(fmt_path(path + ("type",)), line_for(lines, path + ("type",)), str(e)))
        return None
    model = getattr(cls, "Config", None)
    if model is None:
        message = f"{role} type {type_name!r} has no Config model"
        problems.append(Problem(fmt_path(path), line_for(lines, path), message))
        return None
    try:
        config = model.model_validate(options)
    except ValidationError as e:
        problems.extend(problems_of(e, path, lines))
        return None
    return ComponentSpec(role, type_name, config)


def parse_pipeline(
    data: Any, *, lines: Mapping[tuple[Any, ...], int] | None = None, source: str = ""
) -> PipelineConfig:
    """Validate plain data into a ``PipelineConfig``; raise ``ConfigValidationError`` listing every problem."""
    lines = lines or {}
    problems: list[Problem] = []
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigValidationError([Problem("(top level)", 1, "expected a mapping of pipeline sections")], source)
    app_sections = registry.sections()
    for key in data:
        if key not in TOP_LEVEL and key not in app_sections:
            expected = ", ".join(sorted(TOP_LEVEL | set(app_sections)))
            problems.append(Problem(str(key), line_for(lines, (key,)), f"unknown section; expected one of {expected}"))
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
        problems.append(
            Problem("generators", line_for(lines, ("generators",)), "expected a mapping of name → generator block")
        )
        gens = {}
    for name, block in gens.items():
        spec = _validate_block("generator", block, ("generators", name), lines, problems)
        if spec:
            generators[str(name)] = spec
    default = merged.get("default_generator")
    if default is not None and not isinstance(default, str):
        problems.append(
            Problem("default_generator", line_for(lines, ("default_generator",)), "expected a generator name")
        )
        default = None
    if default is not None and gens and default not in gens:
        problems.append(
            Problem(
                "default_generator",
                line_for(lines, ("default_generator",)),
                f"names {default!r}, which is not under generators ({', '.join(gens)})",
            )
        )
    settings: dict[str, ComponentConfig] = {}
    for key, model in _settings_models().items():
        try:
            settings[key] = model.model_validate(merged.get(key) or {})
        except ValidationError as e:
            problems.extend(problems_of(e, (key,), lines))
    sections: dict[str, AppSection] = {}
    for key in app_sections:
        if data.get(key) is None:
            continue
        try:
            sections[key] = registry.section(key).model_validate(data[key])
        except ValidationError as e:
            problems.extend(problems_of(e, (key,), lines))
        except ConfigError as e:
            problems.append(Problem(key, line_for(lines, (key,)), str(e)))
    index_dir = merged.get("index_dir")
    if not isinstance(index_dir, str) or not index_dir:
        problems.append(Problem("index_dir", line_for(lines, ("index_dir",)), "expected a directory path string"))
    if problems:
        raise ConfigValidationError(problems, source)
    config = PipelineConfig(str(index_dir), components, generators, default, settings, sections)
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
                problems.append(
                    Problem(
                        fmt_path(path),
                        line_for(lines, path),
                        f"names generator {name!r}, which is not defined under generators ({defined})",
                    )
                )
    routing = config.settings.get("routing")
    for i, name in enumerate(getattr(routing, "fallback_chain", ()) or ()):
        if name not in config.generators:
            path = ("routing", "fallback_chain", i)
            problems.append(
                Problem(
                    fmt_path(path),
                    line_for(lines, path),
                    f"names generator {name!r}, which is not defined under generators ({defined})",
                )
            )
    if problems:
        raise ConfigValidationError(problems, source)


def load_pipeline(path: str | Path | None = None) -> PipelineConfig:
    """Load and validate a pipeline YAML file; ``None`` gives the embedded defaults. Nothing is built here."""
    if path is None:
        return parse_pipeline({})
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"pipeline file {path} is not UTF-8 text (byte {e.start})") from e
    except OSError as e:
        raise ConfigError(f"cannot read pipeline file {path}: {e.strerror}") from e
    data, lines = read_yaml(text, str(path))
    return parse_pipeline(data, lines=lines, source=str(path))


def json_schema() -> dict[str, Any]:
    """JSON Schema of a pipeline file, for editors: each role a oneOf over its registered types."""

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
    for key in registry.sections():
        props[key] = registry.section(key).model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ragkit pipeline",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }


__all__ = [
    "ComponentConfig",
    "Field",
    "secret_from_env",
    "PipelineConfig",
    "ComponentSpec",
    "Problem",
    "ConfigValidationError",
    "RetrievalSettings",
    "BudgetSettings",
    "LedgerSettings",
    "AppSection",
    "AppBuild",
    "load_pipeline",
    "parse_pipeline",
    "json_schema",
    "DEFAULTS",
]
