"""Small frozen value types passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "unknown"]


@dataclass(frozen=True, slots=True)
class Document:
    """A source text with metadata; ``id`` is stable across re-indexing."""

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document; ``text[start:end]`` of the source is ``source_text``."""

    id: str
    doc_id: str
    text: str
    start: int
    end: int
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Sparse term weights: parallel ``indices`` and ``values``."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk with its score; ``rank_scores`` keeps per-retriever scores."""

    chunk: Chunk
    score: float
    rank_scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to call a tool; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as a model sees it: name, description, JSON Schema of its arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. Tool results use ``role="tool"`` with ``tool_call_id``."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one model call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """A generator's answer, with the sources it was grounded on."""

    text: str
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    stop_reason: StopReason = "stop"
    tool_calls: tuple[ToolCall, ...] = ()
    sources: tuple[Hit, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delta:
    """A streamed piece of a reply; the final delta carries ``reply``."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    reply: Reply | None = None


__all__ = [
    "Document",
    "Chunk",
    "SparseVector",
    "Hit",
    "ToolCall",
    "ToolSpec",
    "Message",
    "Usage",
    "Reply",
    "Delta",
    "Role",
    "StopReason",
]
