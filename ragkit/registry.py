"""Named component types: (role, name) -> "module:Class". Config names types; it never names import paths."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from ragkit.errors import ConfigError

ROLES = ("chunker", "embedder", "store", "sparse", "retriever", "reranker", "compressor", "generator", "router")

_BUILTIN: dict[str, dict[str, str]] = {
    "chunker": {
        "token_window": "ragkit.ingest.chunking:TokenWindowChunker",
        "recursive": "ragkit.ingest.chunking:RecursiveChunker",
        "markdown": "ragkit.ingest.chunking:MarkdownChunker",
    },
    "embedder": {
        "minilm_onnx": "ragkit.providers.minilm_onnx:OnnxMiniLMEmbedder",
        "sentence_transformers": "ragkit.providers.sentence_transformers:SentenceTransformersEmbedder",
        "openai": "ragkit.providers.openai:OpenAIEmbedder",
        "gemini": "ragkit.providers.gemini:GeminiEmbedder",
        "ollama": "ragkit.providers.ollama:OllamaEmbedder",
        "llamacpp": "ragkit.providers.llamacpp:LlamaCppEmbedder",
    },
    "store": {
        "qdrant_edge": "ragkit.providers.qdrant_edge:QdrantEdgeStore",
        "qdrant": "ragkit.providers.qdrant_server:QdrantServerStore",
    },
    "sparse": {
        "bm25": "ragkit.retrieve.sparse:Bm25Encoder",
    },
    "retriever": {
        "hybrid": "ragkit.retrieve.hybrid:HybridRetriever",
    },
    "reranker": {
        "none": "ragkit.retrieve.rerank:IdentityReranker",
        "mmr": "ragkit.retrieve.rerank:MMRReranker",
        "cross_encoder": "ragkit.retrieve.rerank:CrossEncoderReranker",
        "llm": "ragkit.providers.llamacpp_rerank:LlamaCppReranker",
    },
    "compressor": {
        "none": "ragkit.answer.compression:NoCompressor",
        "extractive": "ragkit.answer.compress:ExtractiveCompressor",
    },
    "generator": {
        "openai": "ragkit.providers.openai:OpenAIGenerator",
        "anthropic": "ragkit.providers.anthropic:AnthropicGenerator",
        "gemini": "ragkit.providers.gemini:GeminiGenerator",
        "ollama": "ragkit.providers.ollama:OllamaGenerator",
        "llamacpp": "ragkit.providers.llamacpp:LlamaCppGenerator",
    },
    "router": {
        "rules": "ragkit.generate.rules:RuleRouter",
        "classifier": "ragkit.generate.classifier:ClassifierRouter",
        "cascade": "ragkit.generate.rules:CascadeRouter",
    },
}

_extra: dict[str, dict[str, str]] = {role: {} for role in ROLES}
_entry_points_loaded = False


def register(role: str, name: str, target: str) -> None:
    """Register ``target`` ("module:Class") as component ``name`` for ``role``."""
    if role not in ROLES:
        raise ConfigError(f"unknown component role {role!r}; expected one of {', '.join(ROLES)}")
    if ":" not in target:
        raise ConfigError(f"registry target {target!r} must look like 'module:Class'")
    _extra[role][name] = target


def _load_entry_points() -> None:
    # Third parties register with entry points in group "ragkit.<role>"; read once, lazily.
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for role in ROLES:
        for ep in entry_points(group=f"ragkit.{role}"):
            _extra[role].setdefault(ep.name, ep.value)


def names(role: str) -> list[str]:
    """Every registered name for ``role``, sorted."""
    _load_entry_points()
    return sorted({**_BUILTIN.get(role, {}), **_extra.get(role, {})})


def target(role: str, name: str) -> str:
    """The "module:Class" string for a registered component."""
    _load_entry_points()
    if role not in ROLES:
        raise ConfigError(f"unknown component role {role!r}; expected one of {', '.join(ROLES)}")
    found = _extra[role].get(name) or _BUILTIN[role].get(name)
    if found is None:
        raise ConfigError(f"unknown {role} type {name!r}; registered: {', '.join(names(role))}")
    return found


def resolve(role: str, name: str) -> Any:
    """Import and return the class registered as (``role``, ``name``)."""
    return _load(f"{role} type {name!r}", target(role, name))


def _load(what: str, target_: str) -> Any:
    module_name, _, attr = target_.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"{what} could not be loaded: {e}") from e
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError as e:
        raise ConfigError(f"{what}: {module_name} has no {attr}") from e


# Apps add top-level YAML sections and CLI command groups through entry points, so the core never imports them.
SECTION_GROUP = "ragkit.section"
COMMAND_GROUP = "ragkit.commands"


def sections() -> dict[str, str]:
    """Top-level pipeline sections that installed apps add: name -> "module:ConfigClass"."""
    return {ep.name: ep.value for ep in entry_points(group=SECTION_GROUP)}


def section(name: str) -> Any:
    """The config model (an ``AppSection``) of an app's top-level section."""
    found = sections().get(name)
    if found is None:
        raise ConfigError(
            f"unknown pipeline section {name!r}; installed app sections: {', '.join(sections()) or 'none'}"
        )
    return _load(f"section {name!r}", found)


def command_modules() -> list[str]:
    """Modules of CLI command groups that installed apps add."""
    return [ep.value for ep in entry_points(group=COMMAND_GROUP)]


__all__ = ["ROLES", "register", "names", "target", "resolve", "sections", "section", "command_modules"]
