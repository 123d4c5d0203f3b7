"""Context compression: query-aware extractive selection of sentences under a token budget.

``ExtractiveCompressor`` drops near-duplicate chunks and sentences, scores every sentence against the
query (BM25 with IDF over the candidate sentences, plus an optional embedding cosine), keeps the best
by relevance per token until the budget is spent, and restores source order inside each chunk.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from ragkit.answer.compression import (
    CompressionResult,
    Count,
    DroppedText,
    default_count,
)
from ragkit.answer.sentences import STOPWORDS, jaccard, lost_in_the_middle, norm_words, shingles, split_sentences, terms
from ragkit.component import ComponentConfig, Field
from ragkit.types import Hit

log = logging.getLogger("ragkit.answer.compress")

Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]


class ExtractiveCompressorConfig(ComponentConfig):
    """Settings of the query-aware extractive compressor."""

    encoding: str = Field(
        "cl100k_base",
        pattern="^(cl100k_base|o200k_base)$",
        description="tiktoken encoding used when no counter is passed in.",
    )
    dedup_threshold: float = Field(
        0.85, ge=0.5, le=1.0, description="Shingled Jaccard at or above which a sentence or chunk is a near-duplicate."
    )
    shingle_size: int = Field(3, ge=1, le=8, description="Words per shingle for near-duplicate detection.")
    k1: float = Field(1.2, ge=0.0, le=3.0, description="BM25 term-frequency saturation.")
    b: float = Field(0.75, ge=0.0, le=1.0, description="BM25 length normalisation.")
    embedding_weight: float = Field(
        0.3, ge=0.0, le=1.0, description="Weight of the embedding cosine when an embed function is given."
    )
    neighbour_weight: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description=(
            "Share of an adjacent sentence's score a sentence inherits (answers often follow the matching sentence)."
        ),
    )
    chunk_weight: float = Field(
        0.3, ge=0.0, le=1.0, description="Weight of the whole chunk's query coverage in each of its sentences' score."
    )
    identifier_boost: float = Field(
        2.0,
        ge=1.0,
        le=10.0,
        description=(
            "Multiplier on query terms with digits (numbers, ids like LABO-288): "
            "exact identifiers are the most specific evidence."
        ),
    )
    lead_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Bonus for a chunk's first sentence, which usually names its topic."
    )
    feedback_weight: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description=(
            "Weight of terms from the best sentences added to the query "
            "(pseudo-relevance feedback; helps multi-hop questions)."
        ),
    )
    feedback_sentences: int = Field(3, ge=0, le=20, description="How many top sentences feed the query expansion.")
    length_exponent: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description=(
            "Packing order is score / tokens**exponent; 1 is pure relevance per token, lower favours longer sentences."
        ),
    )
    reorder: str = Field(
        "none",
        pattern="^(none|lost_in_the_middle)$",
        description="Order of the returned hits: as given, or best at both ends.",
    )


@dataclass(slots=True)
class _Sentence:
    hit: int
    index: int
    start: int
    end: int
    text: str
    words: list[str]
    tokens: int
    score: float = 0.0


class ExtractiveCompressor:
    """Keeps the query-relevant sentences of the hits within a token budget. Pure and deterministic."""

    Config = ExtractiveCompressorConfig

    def __init__(
        self,
        config: ExtractiveCompressorConfig | None = None,
        *,
        count: Count | None = None,
        embed: Embed | None = None,
    ) -> None:
        self.config = config or ExtractiveCompressorConfig()
        self._count = count or default_count(self.config.encoding)
        self._embed = embed

    @classmethod
    def from_config(cls, config: ExtractiveCompressorConfig, **collaborators: Any) -> ExtractiveCompressor:
        return cls(config, count=collaborators.get("count"), embed=collaborators.get("embed"))

    def compress(self, query: str, hits: Sequence[Hit], budget_tokens: int) -> CompressionResult:
        """Compressed hits whose texts together count at most ``budget_tokens``."""
        c = self.config
        count = self._count
        before = sum(count(h.chunk.text) for h in hits)
        dropped: list[DroppedText] = []
        chunk_reasons: dict[str, str] = {}

        live = self._dedup_chunks(hits, dropped, chunk_reasons)
        split_counts: dict[int, int] = {}
        sentences = self._sentences(hits, live, dropped, split_counts)
        self._score(query, hits, sentences)

        budget = max(0, budget_tokens)
        order = sorted(
            sentences, key=lambda s: (-(s.score + 1e-9) / max(1, s.tokens) ** c.length_exponent, s.hit, s.index)
        )
        kept: set[tuple[int, int]] = set()
        used = 0
        for s in order:
            if used + s.tokens <= budget:
                kept.add((s.hit, s.index))
                used += s.tokens

        by_key = {(s.hit, s.index): s for s in sentences}
        texts = {
            i: self._render(hits[i].chunk.text, [by_key[k] for k in sorted(kept) if k[0] == i], split_counts[i])
            for i in live
        }
        total = sum(count(t) for t in texts.values() if t)
        # Counts do not add up exactly across joins; shed the weakest kept sentence until the real count fits.
        for s in reversed(order):
            if total <= budget:
                break
            if (s.hit, s.index) not in kept:
                continue
            kept.discard((s.hit, s.index))
            old = texts[s.hit]
            texts[s.hit] = self._render(
                hits[s.hit].chunk.text, [by_key[k] for k in sorted(kept) if k[0] == s.hit], split_counts[s.hit]
            )
            total += (count(texts[s.hit]) if texts[s.hit] else 0) - (count(old) if old else 0)
        for s in sentences:
            if (s.hit, s.index) not in kept:
                dropped.append(
                    DroppedText(
                        hits[s.hit].chunk.id, s.start, s.end, s.text, "over budget: lower relevance per token", s.score
                    )
                )

        out: list[tuple[float, Hit]] = []
        for i in live:
            hit = hits[i]
            mine = [by_key[k] for k in sorted(kept) if k[0] == i]
            if not mine:
                chunk_reasons[hit.chunk.id] = "no sentence fit the budget"
                continue
            best = max(s.score for s in mine)
            if len(mine) == split_counts[i]:  # every sentence kept: the chunk goes through untouched
                out.append((best, hit))
                continue
            spans = tuple((s.start, s.end) for s in mine)
            chunk = replace(
                hit.chunk,
                text=texts[i],
                start=hit.chunk.start + spans[0][0],
                end=hit.chunk.start + spans[-1][1],
                metadata={**hit.chunk.metadata, "compressed": True, "kept_spans": spans},
            )
            out.append((best, replace(hit, chunk=chunk)))
        result_hits = [h for _, h in out]
        if c.reorder == "lost_in_the_middle":
            result_hits = lost_in_the_middle(result_hits)
        return CompressionResult(tuple(result_hits), before, total, tuple(dropped), chunk_reasons)

    # -- steps

    def _dedup_chunks(self, hits: Sequence[Hit], dropped: list[DroppedText], reasons: dict[str, str]) -> list[int]:
        c = self.config
        live: list[int] = []
        seen: list[tuple[int, frozenset]] = []
        for i, hit in enumerate(hits):
            sh = shingles(norm_words(hit.chunk.text), c.shingle_size)
            dup = next(((j, sim) for j, other in seen if (sim := jaccard(sh, other)) >= c.dedup_threshold), None)
            if dup is not None:
                reason = f"near-duplicate chunk of {hits[dup[0]].chunk.id} (jaccard {dup[1]:.2f})"
                reasons[hit.chunk.id] = reason
                dropped.append(DroppedText(hit.chunk.id, 0, len(hit.chunk.text), hit.chunk.text, reason))
                continue
            seen.append((i, sh))
            live.append(i)
        return live

    def _sentences(
        self, hits: Sequence[Hit], live: Sequence[int], dropped: list[DroppedText], split_counts: dict[int, int]
    ) -> list[_Sentence]:
        c = self.config
        out: list[_Sentence] = []
        seen: list[tuple[frozenset, str]] = []
        for i in live:
            text = hits[i].chunk.text
            spans = split_sentences(text)
            split_counts[i] = len(spans)
            for n, (s, e) in enumerate(spans):
                piece = text[s:e]
                sh = shingles(norm_words(piece), c.shingle_size)
                dup = next(
                    (
                        cid
                        for other, cid in seen
                        if len(other) * c.dedup_threshold <= len(sh) <= len(other) / c.dedup_threshold
                        and jaccard(sh, other) >= c.dedup_threshold
                    ),
                    None,
                )
                if dup is not None:
                    dropped.append(
                        DroppedText(hits[i].chunk.id, s, e, piece, f"near-duplicate sentence of one in {dup}")
                    )
                    continue
                if sh:
                    seen.append((sh, hits[i].chunk.id))
                out.append(_Sentence(i, n, s, e, piece, terms(piece), self._count(piece)))
        return out

    def _score(self, query: str, hits: Sequence[Hit], sentences: list[_Sentence]) -> None:
        c = self.config
        if not sentences:
            return
        n = len(sentences)
        df: dict[str, int] = {}
        for s in sentences:
            for t in set(s.words):
                df[t] = df.get(t, 0) + 1
        q_all = terms(query)
        q_terms = list(dict.fromkeys(t for t in q_all if t not in STOPWORDS)) or list(dict.fromkeys(q_all))
        weights = {
            t: self._idf(t, df, n) * (c.identifier_boost if any(ch.isdigit() for ch in t) else 1.0) for t in q_terms
        }
        lexical = self._bm25(sentences, weights)
        if c.feedback_weight and c.feedback_sentences:
            # Second pass: words of the best first-pass sentences join the query at a lower weight, so a
            # passage about the entity the first hop names (the bridge) can score too.
            top = sorted(range(n), key=lambda k: -lexical[k])[: c.feedback_sentences]
            extra = {
                t for k in top if lexical[k] > 0 for t in sentences[k].words if t not in STOPWORDS and t not in weights
            }
            expanded = {**weights, **{t: c.feedback_weight * self._idf(t, df, n) for t in extra}}
            second = self._bm25(sentences, expanded)
            lexical = [(a + c.feedback_weight * b) / (1 + c.feedback_weight) for a, b in zip(lexical, second)]

        # Chunk coverage: the share of the query's IDF mass that the chunk mentions anywhere.
        mass = sum(weights.values()) or 1.0
        covered: dict[int, set[str]] = {}
        for s in sentences:
            covered.setdefault(s.hit, set()).update(w for w in s.words if w in weights)
        coverage = {h: sum(weights[t] for t in ts) / mass for h, ts in covered.items()}

        semantic = self._cosines(query, sentences) if self._embed is not None else None
        base = []
        for k in range(len(sentences)):
            value = lexical[k]
            if semantic is not None:
                value = (1 - c.embedding_weight) * value + c.embedding_weight * semantic[k]
            base.append(value)
        for k, s in enumerate(sentences):
            neighbours = [
                base[j]
                for j in (k - 1, k + 1)
                if 0 <= j < n and sentences[j].hit == s.hit and abs(sentences[j].index - s.index) == 1
            ]
            s.score = (
                base[k]
                + c.neighbour_weight * max(neighbours, default=0.0)
                + c.chunk_weight * coverage.get(s.hit, 0.0)
                + (c.lead_weight if s.index == 0 else 0.0)
            )

    @staticmethod
    def _idf(term: str, df: Mapping[str, int], n: int) -> float:
        f = df.get(term, 0)
        return math.log(1 + (n - f + 0.5) / (f + 0.5))

    def _bm25(self, sentences: Sequence[_Sentence], weights: Mapping[str, float]) -> list[float]:
        """BM25 of every sentence for weighted query terms, scaled so the best is 1."""
        c = self.config
        avg = sum(len(s.words) for s in sentences) / len(sentences) or 1.0
        raw: list[float] = []
        for s in sentences:
            tf: dict[str, int] = {}
            for w in s.words:
                if w in weights:
                    tf[w] = tf.get(w, 0) + 1
            norm = c.k1 * (1 - c.b + c.b * len(s.words) / avg)
            raw.append(sum(weights[t] * f * (c.k1 + 1) / (f + norm) for t, f in tf.items()))
        top = max(raw) or 1.0
        return [r / top for r in raw]

    def _cosines(self, query: str, sentences: list[_Sentence]) -> list[float]:
        vectors = list(self._embed([query] + [s.text for s in sentences]))  # type: ignore[misc]
        q = vectors[0]
        qn = math.sqrt(sum(x * x for x in q)) or 1.0
        out = []
        for v in vectors[1:]:
            vn = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append(max(0.0, sum(a * b for a, b in zip(q, v)) / (qn * vn)))
        return out

    @staticmethod
    def _render(text: str, kept: Sequence[_Sentence], total: int) -> str:
        """Kept sentences in source order; adjacent ones keep their original spacing, gaps become " … "."""
        if kept and len(kept) == total:
            return text
        parts: list[str] = []
        prev: _Sentence | None = None
        for s in kept:
            if prev is None:
                parts.append(text[s.start : s.end])
            elif s.index == prev.index + 1:
                parts.append(text[prev.end : s.end])
            else:
                parts.append(" … " + text[s.start : s.end])
            prev = s
        return "".join(parts)


__all__ = ["ExtractiveCompressor", "ExtractiveCompressorConfig"]
