"""Pointwise reranking by a local instruct model: each passage is scored by P("yes") to "does it answer the question?".

The backend implements one method, ``yes_probabilities(query, passages)`` (the llama.cpp one lives in
``ragkit.providers.llamacpp_rerank``); this module owns the prompt's parts, the batches, the latency budget and
how the model's score is mixed with the fused one. When the budget runs out before every candidate is scored, the
fused order is returned unchanged and each hit carries ``rank_scores["llm_budget_exhausted"] = 1.0``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Callable, Protocol, Sequence

from ragkit.component import ComponentConfig, Field
from ragkit.types import Hit

log = logging.getLogger("ragkit.retrieve.llm_rerank")

BUDGET_MARK = "llm_budget_exhausted"


class YesNoScorer(Protocol):
    """Scores passages against one query: P(yes | yes or no) for each, in order. CPU-bound, run in a thread."""

    def yes_probabilities(self, query: str, passages: Sequence[str]) -> list[float]: ...


class LlmRerankConfig(ComponentConfig):
    """Settings of the LLM reranker (shared by every backend)."""

    top_n: int = Field(10, ge=1, le=200, description="fused candidates the model scores; the rest keep their order")
    batch: int = Field(4, ge=1, le=64, description="passages scored per call between budget checks")
    budget_ms: float = Field(
        3000.0,
        gt=0,
        le=600_000,
        description="latency budget per query; when the next batch would overrun it, the fused order is returned",
    )
    weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="share of the model's P(yes) in the final score; the rest is the fused score scaled to [0, 1] "
        "(0.5: the largest weight that kept dev nDCG@10 at or above the fused order's, docs/retrieval.md)",
    )
    max_passage_chars: int = Field(1200, ge=50, le=100_000, description="passages are cut to this many characters")


class LlmReranker:
    """Reranks the fused top ``top_n`` by the model's P(yes), within a latency budget."""

    Config = LlmRerankConfig

    def __init__(
        self, scorer: YesNoScorer, config: LlmRerankConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.scorer = scorer
        self.config = config or LlmRerankConfig()
        self._clock = clock

    async def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        c = self.config
        head, tail = list(hits[: c.top_n]), list(hits[c.top_n :])
        if not head or top_k <= 0:
            return list(hits[: max(top_k, 0)])
        start = self._clock()
        budget = c.budget_ms / 1000.0
        probs: list[float] = []
        per_passage = 0.0
        for i in range(0, len(head), c.batch):
            part = head[i : i + c.batch]
            elapsed = self._clock() - start
            if elapsed + per_passage * len(part) > budget:
                log.info(
                    "LLM rerank: budget %.0f ms reached after %d of %d passages; fused order kept",
                    c.budget_ms,
                    len(probs),
                    len(head),
                )
                marked = [replace(h, rank_scores={**h.rank_scores, BUDGET_MARK: 1.0}) for h in hits[:top_k]]
                return marked
            t = self._clock()
            texts = [h.chunk.text[: c.max_passage_chars] for h in part]
            probs.extend(await asyncio.to_thread(self.scorer.yes_probabilities, query, texts))
            per_passage = max(per_passage, (self._clock() - t) / len(part))
        fused = [h.score for h in head]
        low, span = min(fused), max(fused) - min(fused)
        rescored = []
        for h, p in zip(head, probs):
            base = 1.0 if span == 0 else (h.score - low) / span
            score = c.weight * p + (1.0 - c.weight) * base
            rescored.append(replace(h, score=score, rank_scores={**h.rank_scores, "llm_yes": p}))
        rescored.sort(key=lambda h: -h.score)
        return (rescored + tail)[:top_k]


__all__ = ["LlmReranker", "LlmRerankConfig", "YesNoScorer", "BUDGET_MARK"]
