"""What ragkit knows per model name, in one table each: context windows, and prices per million tokens.

Names match exactly, else by the longest known family prefix followed by "-", ":" or "." (dated snapshots and
size tags share their family's entry). Local models cost nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, NamedTuple, TypeVar

from pydantic import AliasChoices

from ragkit.component import ComponentConfig, Field
from ragkit.errors import ConfigError, DataError

log = logging.getLogger("ragkit.model_info")

# Providers that run on the caller's own hardware.
LOCAL_PROVIDERS = frozenset({"ollama", "llamacpp", "minilm_onnx", "sentence_transformers", "fake", "local"})
HOSTED_PROVIDERS = frozenset({"openai", "anthropic", "gemini"})


class Price(ComponentConfig):
    """USD per 1M tokens: uncached input, output, and cached (prompt-cache read) input."""

    input: float = Field(
        ...,
        ge=0,
        le=10_000,
        validation_alias=AliasChoices("input", "input_per_mtok"),
        description="USD per 1M uncached input tokens.",
    )
    output: float = Field(
        0.0,
        ge=0,
        le=10_000,
        validation_alias=AliasChoices("output", "output_per_mtok"),
        description="USD per 1M output tokens.",
    )
    cached: float | None = Field(
        None, ge=0, le=10_000, description="USD per 1M cached input tokens; the input rate when unset."
    )

    def __init__(
        self, input: float | None = None, output: float = 0.0, cached: float | None = None, **data: Any
    ) -> None:
        if input is not None:
            data["input"] = input
        super().__init__(
            **data,
            **({"output": output} if "output" not in data and "output_per_mtok" not in data else {}),
            **({"cached": cached} if cached is not None else {}),
        )

    def cost(self, input_tokens: int = 0, output_tokens: int = 0, cached_tokens: int = 0) -> float:
        """USD for one call; ``input_tokens`` includes ``cached_tokens`` (OpenAI's convention)."""
        cached_rate = self.input if self.cached is None else self.cached
        fresh = max(0, input_tokens - cached_tokens)
        return (fresh * self.input + cached_tokens * cached_rate + output_tokens * self.output) / 1_000_000


FREE = Price(0.0, 0.0, 0.0)

# List prices in USD as published by the vendors in 2025 (standard tier, no batch discount, Gemini's
# <=200k-token tier). They change: override with PriceTable.from_mapping / from_yaml.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00, 0.125),
    "gpt-5-mini": Price(0.25, 2.00, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "o3": Price(2.00, 8.00, 0.50),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "text-embedding-3-small": Price(0.02),
    "text-embedding-3-large": Price(0.13),
    "claude-opus-4": Price(15.00, 75.00, 1.50),
    "claude-opus-4-1": Price(15.00, 75.00, 1.50),
    "claude-sonnet-4": Price(3.00, 15.00, 0.30),
    "claude-sonnet-4-5": Price(3.00, 15.00, 0.30),
    "claude-3-7-sonnet": Price(3.00, 15.00, 0.30),
    "claude-3-5-haiku": Price(0.80, 4.00, 0.08),
    "claude-haiku-4-5": Price(1.00, 5.00, 0.10),
    "gemini-2.5-pro": Price(1.25, 10.00, 0.31),
    "gemini-2.5-flash": Price(0.30, 2.50, 0.075),
    "gemini-2.5-flash-lite": Price(0.10, 0.40, 0.025),
    "gemini-2.0-flash": Price(0.10, 0.40, 0.025),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
    "gemini-embedding-001": Price(0.15),
}


class PriceTable:
    """Prices by model name: exact match, then the longest known prefix (dated snapshots share a price)."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices: dict[str, Price] = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, base: Mapping[str, Price] | None = None, source: str = "prices"
    ) -> PriceTable:
        """Defaults overlaid with ``{model: {input, output, cached}}`` (USD per 1M tokens)."""
        prices = dict(DEFAULT_PRICES if base is None else base)
        for model, entry in mapping.items():
            prices[str(model)] = _parse_price(entry, f"{source}: {model}")
        return cls(prices)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PriceTable:
        """Defaults overlaid with a YAML file of ``model: {input: …, output: …, cached: …}``."""
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise DataError(f"cannot read price table: {e}", path=str(path)) from e
        if not isinstance(data, Mapping):
            raise DataError("expected a mapping of model name to {input, output, cached}", path=str(path))
        return cls.from_mapping(data, source=str(path))

    def price_for(self, model: str, provider: str | None = None) -> Price | None:
        """The model's price; ``FREE`` for local providers; None when unknown."""
        if model and ":" in model:
            # Generator ids read "provider:model" (llamacpp:smollm2-…); Ollama tags ("llama3.2:3b") are left alone.
            prefix, rest = model.split(":", 1)
            if prefix.lower() in LOCAL_PROVIDERS or prefix.lower() in HOSTED_PROVIDERS:
                provider, model = provider or prefix, rest
        if provider and provider.lower() in LOCAL_PROVIDERS:
            return FREE
        if not model:
            return None
        return lookup(self.prices, model)


def _parse_price(entry: Any, where: str) -> Price:
    if not isinstance(entry, Mapping):
        raise DataError(f"{where}: expected {{input, output, cached}} in USD per 1M tokens, got {entry!r}")
    unknown = set(entry) - {"input", "output", "cached", "input_per_mtok", "output_per_mtok"}
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected input, output, cached")
    if "input" not in entry and "input_per_mtok" not in entry:
        raise DataError(f"{where}: input price is required")
    for key, raw in entry.items():
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0):
            raise DataError(f"{where}: {key} must be a non-negative number (USD per 1M tokens), got {raw!r}")
    return Price.model_validate(dict(entry))


T = TypeVar("T")


def lookup(table: Mapping[str, T], model: str) -> T | None:
    """``table[model]``, else the entry of the longest family prefix of ``model`` (see the module docstring)."""
    name = model.lower().rsplit("/", 1)[-1]
    if name in table:
        return table[name]
    prefixes = [
        p
        for p in table
        if p == ""
        or p.endswith("-")
        and name.startswith(p)
        or name.startswith(p)
        and name[len(p) : len(p) + 1] in ("-", ":", ".", "@", "_")
    ]
    return table[max(prefixes, key=len)] if prefixes else None


class ContextWindow(NamedTuple):
    """A model's trained window and what its runtime gives you without configuration."""

    trained: int
    default: int


def _hosted(tokens: int) -> ContextWindow:
    return ContextWindow(tokens, tokens)


# Local runtimes allocate far less than the trained window unless told otherwise (llama.cpp's n_ctx,
# Ollama's num_ctx). Overflowing them silently drops the start of the prompt, the system prompt first,
# so the default here is the conservative runtime value; configure n_ctx/num_ctx to get more.
LOCAL_DEFAULT_WINDOW = 2048

KNOWN_CONTEXT_WINDOWS: dict[str, dict[str, ContextWindow]] = {
    "openai": {
        name: _hosted(n)
        for name, n in {
            "gpt-5": 400_000,
            "gpt-4.1": 1_047_576,
            "gpt-4o": 128_000,
            "chatgpt-4o": 128_000,
            "gpt-4-turbo": 128_000,
            "gpt-4-32k": 32_768,
            "gpt-4": 8_192,
            "gpt-3.5-turbo": 16_385,
            "o1": 200_000,
            "o1-mini": 128_000,
            "o3": 200_000,
            "o3-mini": 200_000,
            "o4-mini": 200_000,
        }.items()
    },
    "anthropic": {"claude-": _hosted(200_000)},
    "gemini": {
        name: _hosted(n)
        for name, n in {
            "gemini-3-pro": 1_048_576,
            "gemini-3-flash": 1_048_576,
            "gemini-2.5-pro": 1_048_576,
            "gemini-2.5-flash": 1_048_576,
            "gemini-2.5-flash-lite": 1_048_576,
            "gemini-2.0-flash": 1_048_576,
            "gemini-2.0-flash-lite": 1_048_576,
            "gemini-1.5-pro": 2_097_152,
            "gemini-1.5-flash": 1_048_576,
            "gemma-3": 131_072,
        }.items()
    },
    "ollama": {
        name: ContextWindow(n, LOCAL_DEFAULT_WINDOW)
        for name, n in {
            "llama3.1": 131_072,
            "llama3.2": 131_072,
            "llama3.3": 131_072,
            "llama3": 8_192,
            "qwen2.5": 32_768,
            "qwen2.5-coder": 32_768,
            "qwen3": 40_960,
            "mistral": 32_768,
            "gemma2": 8_192,
            "gemma3": 131_072,
            "phi3": 131_072,
            "phi4": 16_384,
            "smollm2": 8_192,
        }.items()
    },
    "llamacpp": {
        "smollm2": ContextWindow(8_192, LOCAL_DEFAULT_WINDOW),
        "qwen2.5": ContextWindow(32_768, LOCAL_DEFAULT_WINDOW),
        "": ContextWindow(LOCAL_DEFAULT_WINDOW, LOCAL_DEFAULT_WINDOW),
    },
}


def known_window(provider: str, model: str) -> ContextWindow | None:
    """The table entry for a provider's model; Ollama tags ("llama3.2:3b") name their family."""
    table = KNOWN_CONTEXT_WINDOWS.get(provider.lower())
    if not table:
        return None
    name = model.lower().removeprefix("models/")
    if provider.lower() == "ollama":
        name = name.split(":", 1)[0]
    return lookup(table, name)


def context_window_for(provider: str, model: str, override: int | None = None) -> int:
    """Tokens the model will actually accept: ``override`` if given, else the table's runtime default."""
    if override is not None:
        if override <= 0:
            raise ConfigError(f"context_window override must be a positive token count, got {override}")
        return override
    entry = known_window(provider, model)
    if entry is None:
        raise ConfigError(
            f"the context window of {provider} model {model!r} is unknown; set context_window in the generator config"
        )
    return entry.default


__all__ = [
    "Price",
    "FREE",
    "DEFAULT_PRICES",
    "LOCAL_PROVIDERS",
    "PriceTable",
    "lookup",
    "ContextWindow",
    "KNOWN_CONTEXT_WINDOWS",
    "LOCAL_DEFAULT_WINDOW",
    "known_window",
    "context_window_for",
]
