"""What a compressor returns (the kept hits, what was dropped and why), and the compressor that keeps everything."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ragkit.component import ComponentConfig, Field
from ragkit.types import Hit

Count = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class DroppedText:
    """A sentence or whole chunk the compressor left out, and why."""

    chunk_id: str
    start: int
    end: int
    text: str
    reason: str
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class CompressionResult:
    """Compressed hits (same chunk and doc ids, new text) with the token accounting and what was dropped."""

    hits: tuple[Hit, ...]
    tokens_before: int
    tokens_after: int
    dropped: tuple[DroppedText, ...] = ()
    chunk_reasons: Mapping[str, str] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """``tokens_before / tokens_after`` (1.0 means no compression)."""
        return (
            self.tokens_before / self.tokens_after
            if self.tokens_after
            else (1.0 if not self.tokens_before else math.inf)
        )

    @property
    def duplicates(self) -> int:
        """How many sentences or chunks were dropped as near-duplicates."""
        return sum(d.reason.startswith("near-duplicate") for d in self.dropped)


def default_count(encoding: str) -> Count:
    from ragkit.tokens import TiktokenCounter

    return TiktokenCounter(encoding).count


class NoCompressorConfig(ComponentConfig):
    """The pass-through compressor has no settings beyond the tokenizer used for its accounting."""

    encoding: str = Field(
        "cl100k_base", pattern="^(cl100k_base|o200k_base)$", description="tiktoken encoding for token counts."
    )


class NoCompressor:
    """Passes hits through unchanged; packing into the budget is left to prompt assembly."""

    Config = NoCompressorConfig

    def __init__(self, config: NoCompressorConfig | None = None, *, count: Count | None = None) -> None:
        self.config = config or NoCompressorConfig()
        self._count = count or default_count(self.config.encoding)

    @classmethod
    def from_config(cls, config: NoCompressorConfig, **collaborators: Any) -> NoCompressor:
        return cls(config, count=collaborators.get("count"))

    def compress(self, query: str, hits: Sequence[Hit], budget_tokens: int) -> CompressionResult:
        tokens = sum(self._count(h.chunk.text) for h in hits)
        return CompressionResult(tuple(hits), tokens, tokens)


# ---------------------------------------------------------------- the compressor


__all__ = ["Count", "DroppedText", "CompressionResult", "NoCompressorConfig", "NoCompressor", "default_count"]
