"""Abstention from measured signals: retrieval scores, lexical coverage and the model's own confidence.

An answer is replaced by the abstention phrase when any configured signal falls below its threshold. The
thresholds' defaults were calibrated on the dev split (``benchmarks/calibrate_abstention.py``, docs/grounding.md);
a signal a reply cannot give (no dense score, a generator without log-probabilities) is not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ragkit.answer.prompting import strip_citations
from ragkit.answer.sentences import STOPWORDS, terms
from ragkit.component import ComponentConfig, Field
from ragkit.language import abstention_phrase, is_abstention
from ragkit.types import Hit, Reply

SIGNALS = ("retrieval_score", "question_coverage", "answer_support", "mean_logprob")
# Signals of the question and its sources alone: decided before the model runs, so a question they withdraw costs
# no generation and a stream is not held back for them.
QUESTION_SIGNALS = ("retrieval_score", "question_coverage")
ANSWER_SIGNALS = tuple(s for s in SIGNALS if s not in QUESTION_SIGNALS)
NOT_ANSWERED = "not answered: the sources do not cover the question"


class AbstentionConfig(ComponentConfig):
    """Thresholds below which an answer is withdrawn in favour of the abstention phrase (None: signal not used)."""

    enabled: bool = Field(True, description="Withdraw answers whose signals fall below the thresholds.")
    min_retrieval_score: float | None = Field(
        None, ge=-1.0, le=1.0, description="Best dense (cosine) score among the prompt's sources."
    )
    # Off by default. On the dev split (benchmarks/qa_splits, Qwen2.5-Coder-1.5B) 0.44 raises abstention accuracy
    # from 0.06 to 0.27 at no cost in contains_answer (docs/grounding.md), but lexical coverage cannot tell a
    # comparison or superlative ("which is colder?") from an unanswerable question, so it is an opt-in.
    min_question_coverage: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Share of the question's content words found in the source that holds most of them.",
    )
    min_answer_support: float | None = Field(
        None, ge=0.0, le=1.0, description="Share of the answer's content words found in the sources it cites."
    )
    min_mean_logprob: float | None = Field(
        None,
        ge=-100.0,
        le=0.0,
        description="Mean log-probability of the answer's tokens (generators that report 'mean_logprob').",
    )


@dataclass(frozen=True, slots=True)
class AbstentionCheck:
    """The signals of one answer and what was decided: ``reason`` says why the answer was withdrawn (else None)."""

    signals: Mapping[str, float | None]
    model_abstained: bool
    reason: str | None
    original_text: str
    before_generation: bool = False  # withdrawn on the question's signals; no answer was generated

    @property
    def abstained(self) -> bool:
        return self.model_abstained or self.reason is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "signals": dict(self.signals),
            "model_abstained": self.model_abstained,
            "before_generation": self.before_generation,
            "withdrawn": self.reason is not None,
            "reason": self.reason,
            "original_text": self.original_text,
        }


def _content_terms(text: str) -> set[str]:
    return {t for t in terms(text) if t not in STOPWORDS and len(t) > 1}


def _dense(hit: Hit) -> float | None:
    value = hit.rank_scores.get("dense")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def abstention_signals(
    question: str,
    answer: str,
    sources: Sequence[Hit],
    cited: Sequence[int] = (),
    mean_logprob: float | None = None,
) -> dict[str, float | None]:
    """Every signal this module knows, for one answer; ``cited`` are the 1-based source numbers the answer cites."""
    dense = [d for d in (_dense(h) for h in sources) if d is not None]
    source_terms = [_content_terms(h.chunk.text) for h in sources]
    q_terms = _content_terms(question)
    coverage = max((len(q_terms & s) / len(q_terms) for s in source_terms), default=0.0) if q_terms else None
    support: float | None = None
    a_terms = _content_terms(strip_citations(answer))
    if a_terms and source_terms:
        chosen = [source_terms[n - 1] for n in cited if 1 <= n <= len(source_terms)] or source_terms
        held = set().union(*chosen)
        support = len(a_terms & held) / len(a_terms)
    lp = float(mean_logprob) if isinstance(mean_logprob, (int, float)) and math.isfinite(mean_logprob) else None
    return {
        "retrieval_score": max(dense) if dense else None,
        "question_coverage": coverage,
        "answer_support": support,
        "mean_logprob": lp,
    }


def decide(signals: Mapping[str, float | None], config: AbstentionConfig) -> str | None:
    """Why the answer should be withdrawn (the first signal under its threshold), or None to keep it."""
    if not config.enabled:
        return None
    for name in SIGNALS:
        threshold = getattr(config, f"min_{name}")
        value = signals.get(name)
        if threshold is not None and value is not None and value < threshold:
            return f"{name} {value:.3f} < {threshold:g}"
    return None


def has_question_thresholds(config: AbstentionConfig) -> bool:
    """Whether ``config`` sets a threshold on a question signal (checked before generation)."""
    return config.enabled and any(getattr(config, f"min_{name}") is not None for name in QUESTION_SIGNALS)


def without_question_thresholds(config: AbstentionConfig) -> AbstentionConfig:
    """``config`` with the question signals' thresholds off (they were checked before generation)."""
    return config.model_copy(update={f"min_{name}": None for name in QUESTION_SIGNALS})


def check_question(question: str, sources: Sequence[Hit], config: AbstentionConfig) -> AbstentionCheck | None:
    """Before generation: the withdrawal the question's own signals call for over the retrieved ``sources``, or
    None when the model should answer."""
    signals = abstention_signals(question, "", sources)
    reason = decide({k: signals[k] for k in QUESTION_SIGNALS}, config)
    if reason is None:
        return None
    return AbstentionCheck(signals, False, reason, "", before_generation=True)


def abstain_before_generation(
    question: str, query: str, sources: Sequence[Hit], config: AbstentionConfig
) -> Reply | None:
    """The abstention phrase in ``question``'s language, with the check that called for it, when the question's own
    signals over the retrieved ``sources`` (searched as ``query``) fall under ``config``; else None."""
    if not has_question_thresholds(config):  # nothing to decide: skip the signals (every ask passes here)
        return None
    verdict = check_question(query, sources, config)
    if verdict is None:
        return None
    return Reply(abstention_phrase(question), sources=tuple(sources), metadata={"abstention": verdict})


def check_abstention(
    question: str,
    answer: str,
    sources: Sequence[Hit],
    config: AbstentionConfig,
    *,
    cited: Sequence[int] = (),
    mean_logprob: float | None = None,
) -> AbstentionCheck:
    """The signals of ``answer`` and whether to withdraw it; an answer that already abstains is left as it is."""
    signals = abstention_signals(question, answer, sources, cited, mean_logprob)
    model_abstained = is_abstention(answer)
    reason = None if model_abstained else decide(signals, config)
    return AbstentionCheck(signals, model_abstained, reason, answer)


__all__ = [
    "AbstentionConfig",
    "AbstentionCheck",
    "SIGNALS",
    "QUESTION_SIGNALS",
    "ANSWER_SIGNALS",
    "NOT_ANSWERED",
    "abstention_signals",
    "decide",
    "check_abstention",
    "check_question",
    "abstain_before_generation",
    "has_question_thresholds",
    "without_question_thresholds",
]
