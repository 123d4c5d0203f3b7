"""Context compression: query-aware extractive selection of sentences under a token budget.

``ExtractiveCompressor`` drops near-duplicate chunks and sentences, scores every sentence against the
query (BM25 with IDF over the candidate sentences, plus an optional embedding cosine), keeps the best
by relevance per token until the budget is spent, and restores source order inside each chunk.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable, Mapping, Sequence

from ragkit.config import ComponentConfig, Field
from ragkit.types import Hit

log = logging.getLogger("ragkit.compress")

Count = Callable[[str], int]
Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]


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
        return self.tokens_before / self.tokens_after if self.tokens_after else (1.0 if not self.tokens_before else math.inf)

    @property
    def duplicates(self) -> int:
        """How many sentences or chunks were dropped as near-duplicates."""
        return sum(d.reason.startswith("near-duplicate") for d in self.dropped)


def _default_count(encoding: str) -> Count:
    from ragkit.tokens import TiktokenCounter

    return TiktokenCounter(encoding).count


class NoCompressorConfig(ComponentConfig):
    """The pass-through compressor has no settings beyond the tokenizer used for its accounting."""

    encoding: str = Field("cl100k_base", pattern="^(cl100k_base|o200k_base)$", description="tiktoken encoding for token counts.")


class NoCompressor:
    """Passes hits through unchanged; packing into the budget is left to prompt assembly."""

    Config = NoCompressorConfig

    def __init__(self, config: NoCompressorConfig | None = None, *, count: Count | None = None) -> None:
        self.config = config or NoCompressorConfig()
        self._count = count or _default_count(self.config.encoding)

    @classmethod
    def from_config(cls, config: NoCompressorConfig, **collaborators) -> NoCompressor:
        return cls(config, **collaborators)

    def compress(self, query: str, hits: Sequence[Hit], budget_tokens: int) -> CompressionResult:
        tokens = sum(self._count(h.chunk.text) for h in hits)
        return CompressionResult(tuple(hits), tokens, tokens)


# ---------------------------------------------------------------- text analysis

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc e.g i.e cf no nr fig approx ca z.b u.a bzw vgl inc ltd co corp gen col lt sgt "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[\w])|[。！？]+|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_RUN = re.compile(r"\w+(?:[-./:,'’]\w+)*", re.UNICODE)

_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as into onto about over under between through during "
    "is are was were be been being am do does did done have has had having can could will would shall should may "
    "might must this that these those it its it's he she they them their his her we us our you your i me my "
    "what which who whom whose when where why how there here than then so not no yes also any all some such "
    "one ones own same other more most very just only again further once up down out off too s t "
    "der die das den dem des ein eine einer eines einem einen und oder aber wenn von zu im in am an auf für mit "
    "aus bei nach über unter ist sind war waren wird werden wurde wurden hat haben sein es er sie wir ihr ich du "
    "was wer wie wo wann warum welche welcher welches nicht auch noch nur sehr".split()
)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text``, whitespace trimmed; abbreviations and initials do not end one."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        following = text[end:].lstrip()[:2].lstrip("\"'“‘([")
        if text[m.start()] in ".!?…" and following[:1].islower():
            continue
        if text[m.start()] == ".":
            word = re.search(r"([\w.]+)\.$", text[start : m.start() + 1])
            if word and (word.group(1).lower() in _ABBREVIATIONS or (len(word.group(1)) == 1 and word.group(1).isupper())):
                continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    # Deliberately light: plural and common verb endings, so "origin"/"origins" and "built"/"build" stay distinct
    # but "countries"/"country" meet.
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith(("ss", "us", "is")):
            return word[: len(word) - len(suffix)] + repl
    return word


@lru_cache(maxsize=4096)
def _terms(text: str) -> tuple[str, ...]:
    return tuple(_terms_uncached(text))


def terms(text: str) -> list[str]:
    """Index terms: lower-cased light stems; numbers and ids with digits (LABO-288, 3.5, 1,000) stay whole; CJK as bigrams."""
    # The same chunks come back across questions; their sentences are re-scored each time.
    return list(_terms(text))


def _terms_uncached(text: str) -> list[str]:
    """Index terms: lower-cased light stems; numbers and ids with digits (LABO-288, 3.5, 1,000) stay whole; CJK as bigrams."""
    out: list[str] = []
    for m in _RUN.finditer(text.lower()):
        run = m.group(0).strip(".,:'’")
        if not run:
            continue
        if _CJK.search(run):
            chars = [c for c in run if not c.isspace()]
            out.extend(a + b for a, b in zip(chars, chars[1:])) if len(chars) > 1 else out.extend(chars)
        elif any(c.isdigit() for c in run):
            out.append(run)
        else:
            out.extend(_stem(w) for w in re.split(r"[-./:,'’]", run) if w)
    return out


def shingles(words: Sequence[str], size: int) -> frozenset:
    """Word ``size``-grams; short texts fall back to their whole word sequence."""
    if len(words) < size:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + size]) for i in range(len(words) - size + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    """|a ∩ b| / |a ∪ b| (0 for two empty sets)."""
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def lost_in_the_middle(items: Sequence, key: Callable | None = None) -> list:
    """Reorder best-first ``items`` so the best sit at both ends and the weakest in the middle."""
    ranked = sorted(items, key=key, reverse=True) if key else list(items)
    front, back = ranked[0::2], ranked[1::2]
    return front + back[::-1]


# ---------------------------------------------------------------- the compressor


class ExtractiveCompressorConfig(ComponentConfig):
    """Settings of the query-aware extractive compressor."""

    encoding: str = Field("cl100k_base", pattern="^(cl100k_base|o200k_base)$", description="tiktoken encoding used when no counter is passed in.")
    dedup_threshold: float = Field(0.85, ge=0.5, le=1.0, description="Shingled Jaccard at or above which a sentence or chunk is a near-duplicate.")
    shingle_size: int = Field(3, ge=1, le=8, description="Words per shingle for near-duplicate detection.")
    k1: float = Field(1.2, ge=0.0, le=3.0, description="BM25 term-frequency saturation.")
    b: float = Field(0.75, ge=0.0, le=1.0, description="BM25 length normalisation.")
    embedding_weight: float = Field(0.3, ge=0.0, le=1.0, description="Weight of the embedding cosine when an embed function is given.")
    neighbour_weight: float = Field(0.3, ge=0.0, le=1.0, description="Share of an adjacent sentence's score a sentence inherits (answers often follow the matching sentence).")
    chunk_weight: float = Field(0.3, ge=0.0, le=1.0, description="Weight of the whole chunk's query coverage in each of its sentences' score.")
    identifier_boost: float = Field(2.0, ge=1.0, le=10.0, description="Multiplier on query terms with digits (numbers, ids like LABO-288): exact identifiers are the most specific evidence.")
    lead_weight: float = Field(0.5, ge=0.0, le=1.0, description="Bonus for a chunk's first sentence, which usually names its topic.")
    feedback_weight: float = Field(0.3, ge=0.0, le=1.0, description="Weight of terms from the best sentences added to the query (pseudo-relevance feedback; helps multi-hop questions).")
    feedback_sentences: int = Field(3, ge=0, le=20, description="How many top sentences feed the query expansion.")
    length_exponent: float = Field(0.7, ge=0.0, le=1.0, description="Packing order is score / tokens**exponent; 1 is pure relevance per token, lower favours longer sentences.")
    reorder: str = Field("none", pattern="^(none|lost_in_the_middle)$", description="Order of the returned hits: as given, or best at both ends.")


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

    def __init__(self, config: ExtractiveCompressorConfig | None = None, *, count: Count | None = None, embed: Embed | None = None) -> None:
        self.config = config or ExtractiveCompressorConfig()
        self._count = count or _default_count(self.config.encoding)
        self._embed = embed

    @classmethod
    def from_config(cls, config: ExtractiveCompressorConfig, **collaborators) -> ExtractiveCompressor:
        return cls(config, **collaborators)

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
        order = sorted(sentences, key=lambda s: (-(s.score + 1e-9) / max(1, s.tokens) ** c.length_exponent, s.hit, s.index))
        kept: set[tuple[int, int]] = set()
        used = 0
        for s in order:
            if used + s.tokens <= budget:
                kept.add((s.hit, s.index))
                used += s.tokens

        by_key = {(s.hit, s.index): s for s in sentences}
        texts = {i: self._render(hits[i].chunk.text, [by_key[k] for k in sorted(kept) if k[0] == i], split_counts[i]) for i in live}
        total = sum(count(t) for t in texts.values() if t)
        # Counts do not add up exactly across joins; shed the weakest kept sentence until the real count fits.
        for s in reversed(order):
            if total <= budget:
                break
            if (s.hit, s.index) not in kept:
                continue
            kept.discard((s.hit, s.index))
            old = texts[s.hit]
            texts[s.hit] = self._render(hits[s.hit].chunk.text, [by_key[k] for k in sorted(kept) if k[0] == s.hit], split_counts[s.hit])
            total += (count(texts[s.hit]) if texts[s.hit] else 0) - (count(old) if old else 0)
        for s in sentences:
            if (s.hit, s.index) not in kept:
                dropped.append(DroppedText(hits[s.hit].chunk.id, s.start, s.end, s.text, "over budget: lower relevance per token", s.score))

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
            sh = shingles(_norm_words(hit.chunk.text), c.shingle_size)
            dup = next(((j, sim) for j, other in seen if (sim := jaccard(sh, other)) >= c.dedup_threshold), None)
            if dup is not None:
                reason = f"near-duplicate chunk of {hits[dup[0]].chunk.id} (jaccard {dup[1]:.2f})"
                reasons[hit.chunk.id] = reason
                dropped.append(DroppedText(hit.chunk.id, 0, len(hit.chunk.text), hit.chunk.text, reason))
                continue
            seen.append((i, sh))
            live.append(i)
        return live

    def _sentences(self, hits: Sequence[Hit], live: Sequence[int], dropped: list[DroppedText], split_counts: dict[int, int]) -> list[_Sentence]:
        c = self.config
        out: list[_Sentence] = []
        seen: list[tuple[frozenset, str]] = []
        for i in live:
            text = hits[i].chunk.text
            spans = split_sentences(text)
            split_counts[i] = len(spans)
            for n, (s, e) in enumerate(spans):
                piece = text[s:e]
                sh = shingles(_norm_words(piece), c.shingle_size)
                dup = next((cid for other, cid in seen if len(other) * c.dedup_threshold <= len(sh) <= len(other) / c.dedup_threshold
                            and jaccard(sh, other) >= c.dedup_threshold), None)
                if dup is not None:
                    dropped.append(DroppedText(hits[i].chunk.id, s, e, piece, f"near-duplicate sentence of one in {dup}"))
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
        q_terms = list(dict.fromkeys(t for t in q_all if t not in _STOPWORDS)) or list(dict.fromkeys(q_all))
        weights = {t: self._idf(t, df, n) * (c.identifier_boost if any(ch.isdigit() for ch in t) else 1.0) for t in q_terms}
        lexical = self._bm25(sentences, weights)
        if c.feedback_weight and c.feedback_sentences:
            # Second pass: words of the best first-pass sentences join the query at a lower weight, so a
            # passage about the entity the first hop names (the bridge) can score too.
            top = sorted(range(n), key=lambda k: -lexical[k])[: c.feedback_sentences]
            extra = {t for k in top if lexical[k] > 0 for t in sentences[k].words if t not in _STOPWORDS and t not in weights}
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
        for k, s in enumerate(sentences):
            value = lexical[k]
            if semantic is not None:
                value = (1 - c.embedding_weight) * value + c.embedding_weight * semantic[k]
            base.append(value)
        for k, s in enumerate(sentences):
            neighbours = [base[j] for j in (k - 1, k + 1) if 0 <= j < n and sentences[j].hit == s.hit and abs(sentences[j].index - s.index) == 1]
            s.score = (base[k] + c.neighbour_weight * max(neighbours, default=0.0) + c.chunk_weight * coverage.get(s.hit, 0.0)
                       + (c.lead_weight if s.index == 0 else 0.0))

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


def _norm_words(text: str) -> list[str]:
    return [w.lower() for w in _RUN.findall(text)]


__all__ = [
    "CompressionResult", "DroppedText", "NoCompressor", "NoCompressorConfig", "ExtractiveCompressor",
    "ExtractiveCompressorConfig", "split_sentences", "terms", "shingles", "jaccard", "lost_in_the_middle",
]
