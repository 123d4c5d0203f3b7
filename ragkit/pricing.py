"""Model prices per million tokens, and the cost of a call. Local models cost nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ragkit.errors import DataError

log = logging.getLogger("ragkit.pricing")

# Providers that run on the caller's own hardware.
LOCAL_PROVIDERS = frozenset({"ollama", "llamacpp", "minilm_onnx", "sentence_transformers", "fake", "local"})
HOSTED_PROVIDERS = frozenset({"openai", "anthropic", "gemini"})


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens: uncached input, output, and cached (prompt-cache read) input."""

    input: float
    output: float = 0.0
    cached: float | None = None

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
    def from_mapping(cls, mapping: Mapping[str, Any], *, base: Mapping[str, Price] | None = None, source: str = "prices") -> PriceTable:
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
        name = model.rsplit("/", 1)[-1]
        if name in self.prices:
            return self.prices[name]
        prefixes = [p for p in self.prices if name.startswith(p)]
        return self.prices[max(prefixes, key=len)] if prefixes else None


def _parse_price(entry: Any, where: str) -> Price:
    if not isinstance(entry, Mapping):
        raise DataError(f"{where}: expected {{input, output, cached}} in USD per 1M tokens, got {entry!r}")
    unknown = set(entry) - {"input", "output", "cached"}
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected input, output, cached")
    values: dict[str, float | None] = {}
    for key in ("input", "output", "cached"):
        raw = entry.get(key, 0.0 if key != "cached" else None)
        if raw is None:
            values[key] = None
            continue
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
            raise DataError(f"{where}: {key} must be a non-negative number (USD per 1M tokens), got {raw!r}")
        values[key] = float(raw)
    if "input" not in entry:
        raise DataError(f"{where}: input price is required")
    return Price(values["input"] or 0.0, values["output"] or 0.0, values["cached"])


__all__ = ["Price", "FREE", "DEFAULT_PRICES", "LOCAL_PROVIDERS", "PriceTable"]
