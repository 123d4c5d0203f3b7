"""What one request used, as frozen records: per-stage tokens, latency and cost, and the request's totals."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

STAGES = ("embed", "retrieve", "rerank", "compress", "generate", "tools")


@dataclass(frozen=True, slots=True)
class StageRecord:
    """One timed stage of a request; ``cost_usd`` is None when the model has no known price."""

    stage: str
    latency_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    embedding_tokens: int = 0
    model: str = ""
    provider: str = ""
    retries: int = 0
    cost_usd: float | None = 0.0
    error: str | None = None
    cache_savings_usd: float = 0.0  # what the cached input tokens would have cost more at the uncached rate


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Everything a request used; attached to replies as ``Reply.metadata["usage_report"]``."""

    request_id: str
    stages: tuple[StageRecord, ...]
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    embedding_tokens: int
    latency_ms: float
    cost_usd: float
    unpriced_models: tuple[str, ...] = ()
    compression_tokens_before: int = 0
    compression_tokens_after: int = 0
    compression_savings_usd: float | None = None
    cache_savings_usd: float = 0.0
    route: Mapping[str, Any] | None = None  # the router's decision: route, generator, reason
    tool_calls: tuple[Mapping[str, Any], ...] = ()  # name, duration_s, attempts, error per call
    response_cache_hits: int = 0

    @property
    def compression_tokens_saved(self) -> int:
        """Prompt tokens the compressor removed."""
        return max(0, self.compression_tokens_before - self.compression_tokens_after)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (derived fields included)."""
        data = asdict(self)
        data["compression_tokens_saved"] = self.compression_tokens_saved
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageReport:
        """Inverse of ``to_dict``; unknown keys are ignored so older logs stay readable."""
        stage_keys = {f.name for f in fields(StageRecord)}
        own = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in own}
        values["stages"] = tuple(
            StageRecord(**{k: v for k, v in s.items() if k in stage_keys}) for s in data.get("stages", ())
        )
        values["unpriced_models"] = tuple(values.get("unpriced_models", ()))
        values["tool_calls"] = tuple(values.get("tool_calls", ()))
        return cls(**values)


__all__ = ["STAGES", "StageRecord", "UsageReport"]
