"""The LLM reranker: P(yes) mixed with the fused score, batches between budget checks, the fused order (marked)
when the budget runs out; and the llama.cpp scorer on the bundled SmolLM2."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ragkit import registry
from ragkit.retrieve.llm_rerank import BUDGET_MARK, LlmRerankConfig, LlmReranker
from ragkit.types import Chunk, Hit


def hits(n: int) -> list[Hit]:
    return [Hit(Chunk(f"c{i}", f"d{i}", f"passage {i}", 0, 9), 1.0 - i / 10, {"dbsf": 1.0 - i / 10}) for i in range(n)]


class Scorer:
    """P(yes) from a table; each call advances a fake clock by ``cost`` per passage."""

    def __init__(self, probs: dict[str, float], clock: list[float], cost: float = 0.1) -> None:
        self.probs, self.clock, self.cost, self.calls = probs, clock, cost, []

    def yes_probabilities(self, query, passages):
        self.calls.append(list(passages))
        self.clock[0] += self.cost * len(passages)
        return [self.probs.get(p, 0.0) for p in passages]


async def test_model_score_reorders_the_head_and_keeps_the_tail():
    clock = [0.0]
    scorer = Scorer({"passage 3": 1.0, "passage 0": 0.1}, clock)
    r = LlmReranker(scorer, LlmRerankConfig(top_n=4, batch=2, weight=0.9), clock=lambda: clock[0])
    out = await r.rerank("q", hits(6), 6)
    assert [h.chunk.id for h in out] == ["c3", "c0", "c1", "c2", "c4", "c5"]
    assert out[0].rank_scores["llm_yes"] == 1.0 and "llm_yes" not in out[4].rank_scores
    assert [len(c) for c in scorer.calls] == [2, 2]  # batched
    assert await r.rerank("q", [], 5) == [] and await r.rerank("q", hits(3), 0) == []


async def test_budget_exhausted_returns_the_fused_order_marked():
    clock = [0.0]
    scorer = Scorer({"passage 5": 1.0}, clock, cost=0.4)
    r = LlmReranker(scorer, LlmRerankConfig(top_n=8, batch=2, budget_ms=1000), clock=lambda: clock[0])
    out = await r.rerank("q", hits(8), 5)
    assert [h.chunk.id for h in out] == ["c0", "c1", "c2", "c3", "c4"]
    assert all(h.rank_scores[BUDGET_MARK] == 1.0 for h in out)
    assert [h.score for h in out] == [h.score for h in hits(5)]
    assert len(scorer.calls) == 1  # the second batch would have overrun 1 s (0.8 s spent, 0.8 s more expected)


def test_registered_with_its_config():
    cls = registry.resolve("reranker", "llm")
    c = cls.Config(model="qwen-0.5b", top_n=20, budget_ms=500)
    assert (c.top_n, c.budget_ms, c.batch) == (20, 500, 4)
    with pytest.raises(ValidationError, match="budget_ms"):
        cls.Config(budget_ms=0)


@pytest.fixture(scope="module")
def smollm_scorer():
    pytest.importorskip("llama_cpp")
    from ragkit.providers.llamacpp_rerank import LlamaCppYesNoScorer

    return LlamaCppYesNoScorer("smollm2", n_threads=2, n_ctx=320)


def test_llamacpp_scorer_gives_probabilities_independent_of_batching(smollm_scorer):
    q = "Which freezer reaches -86 °C?"
    passages = ["The Polarlab ULT 500 reaches -86 °C.", "Wine coolers keep bottles at 12 °C.", "x " * 100]
    together = smollm_scorer.yes_probabilities(q, passages)
    alone = [smollm_scorer.yes_probabilities(q, [p])[0] for p in passages]
    assert all(0.0 < p < 1.0 for p in together)
    assert together == pytest.approx(alone, abs=1e-3)  # the prefix cache is reset between passages


async def test_llamacpp_reranker_end_to_end(smollm_scorer):
    from ragkit.providers.llamacpp_rerank import LlamaCppRerankConfig, LlamaCppReranker

    r = LlamaCppReranker(smollm_scorer, LlamaCppRerankConfig(model="smollm2", top_n=3))
    out = await r.rerank("passage 1?", hits(5), 5)
    assert sorted(h.chunk.id for h in out) == [f"c{i}" for i in range(5)]
    assert all("llm_yes" in h.rank_scores for h in out[:3])
