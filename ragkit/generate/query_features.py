"""Cheap complexity features of a query (English and German), for routing between local and API generators.

Everything here is regular expressions over one tokenisation pass; a query takes microseconds.
``QueryFeatures.as_vector()`` returns the values in the order of ``FEATURE_NAMES``:

    n_words, n_chars, n_clauses, n_question_marks,
    q_what, q_who, q_when, q_where, q_which, q_how, q_why, q_yesno, q_other,   (one-hot question type)
    wh_late, multi_part, comparison, alternatives, relative_clauses, described_relatives, possessive_chains,
    n_entities, entity_words, n_capitalised, leading_name, n_numbers, n_years, n_quoted, n_product_ids, tool_markers,
    is_german, longest_entity, entity_pairs, entity_in_relative, reduced_relatives, noun_chain, n_acronyms, deictic,
    has_hits, top_score_margin, distinct_docs, top_dense_score

The last four come from retrieval hits when they are given, else zero (``top_dense_score``: the best dense cosine).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ragkit.generate.query_lexicon import (
    ACRONYM,
    ALTERNATIVE,
    ARTICLES_DE,
    AUX,
    AUX_DE,
    COMPARATIVE_ER,
    COMPARISON,
    DEICTIC,
    DESCRIBED,
    DESCRIBED_DE,
    FUNCTION,
    GENITIVE_S,
    MULTI_PART,
    NAME_LINK,
    NUMBER,
    POSSESSIVE,
    POSSESSIVE_DE,
    PREPOSITIONS,
    PRODUCT_ID,
    QUOTED,
    REDUCED,
    RELATIVE,
    RELATIVE_DE,
    SENTENCE_OPENERS,
    SUBORDINATORS,
    TOKEN,
    TOOL_PHRASES,
    TOOLS,
    WH,
    WH_DE,
    YEAR,
)
from ragkit.language import is_german
from ragkit.types import Hit

QUESTION_TYPES = ("what", "who", "when", "where", "which", "how", "why", "yesno", "other")

FEATURE_NAMES: tuple[str, ...] = (
    "n_words",
    "n_chars",
    "n_clauses",
    "n_question_marks",
    *(f"q_{t}" for t in QUESTION_TYPES),
    "wh_late",
    "multi_part",
    "comparison",
    "alternatives",
    "relative_clauses",
    "described_relatives",
    "possessive_chains",
    "n_entities",
    "entity_words",
    "n_capitalised",
    "leading_name",
    "n_numbers",
    "n_years",
    "n_quoted",
    "n_product_ids",
    "tool_markers",
    "is_german",
    "longest_entity",
    "entity_pairs",
    "entity_in_relative",
    "reduced_relatives",
    "noun_chain",
    "n_acronyms",
    "deictic",
    "has_hits",
    "top_score_margin",
    "distinct_docs",
    "top_dense_score",
)

# How many of the top hits are looked at for ``distinct_docs``.
TOP_HITS = 5


@dataclass(frozen=True, slots=True)
class QueryFeatures:
    """Complexity features of one query; ``as_vector`` gives them in ``FEATURE_NAMES`` order."""

    n_words: int
    n_chars: int
    n_clauses: int
    n_question_marks: int
    question_type: str
    wh_late: bool
    multi_part: int
    comparison: int
    alternatives: int
    relative_clauses: int
    described_relatives: int
    possessive_chains: int
    entities: tuple[str, ...]
    n_capitalised: int
    leading_name: int
    n_numbers: int
    n_years: int
    quoted: tuple[str, ...]
    product_ids: tuple[str, ...]
    tool_markers: int
    is_german: bool
    entity_pairs: int = 0
    entity_in_relative: int = 0
    reduced_relatives: int = 0
    noun_chain: int = 0
    n_acronyms: int = 0
    deictic: int = 0
    has_hits: bool = False
    top_score_margin: float = 0.0
    distinct_docs: int = 0
    top_dense_score: float = 0.0

    def as_vector(self) -> np.ndarray:
        """The features as float32 in ``FEATURE_NAMES`` order."""
        qt = [1.0 if self.question_type == t else 0.0 for t in QUESTION_TYPES]
        return np.array(
            [
                self.n_words,
                self.n_chars,
                self.n_clauses,
                self.n_question_marks,
                *qt,
                float(self.wh_late),
                self.multi_part,
                self.comparison,
                self.alternatives,
                self.relative_clauses,
                self.described_relatives,
                self.possessive_chains,
                len(self.entities),
                sum(e.count(" ") + 1 for e in self.entities),
                self.n_capitalised,
                self.leading_name,
                self.n_numbers,
                self.n_years,
                len(self.quoted),
                len(self.product_ids),
                self.tool_markers,
                float(self.is_german),
                max((e.count(" ") + 1 for e in self.entities), default=0),
                self.entity_pairs,
                self.entity_in_relative,
                self.reduced_relatives,
                self.noun_chain,
                self.n_acronyms,
                self.deictic,
                float(self.has_hits),
                self.top_score_margin,
                self.distinct_docs,
                self.top_dense_score,
            ],
            dtype=np.float32,
        )

    def as_dict(self) -> dict[str, float]:
        """Feature name -> value, the same numbers as ``as_vector``."""
        return dict(zip(FEATURE_NAMES, (float(x) for x in self.as_vector())))

    def describe(self) -> dict[str, object]:
        """Every field, entities and ids included, for route metadata."""
        return asdict(self)


def _question_type(lower: list[str], german: bool) -> str:
    wh = WH_DE if german else WH
    aux = AUX_DE if german else AUX
    if lower:
        first = lower[0]
        if first in wh:
            return wh[first]
        if first in aux:
            return "yesno"
    # "In what country ...", "The arena ... can seat how many people?": the first wh-word anywhere.
    for w in lower[1:]:
        if w in wh and not (german and w in ("was", "wie")):  # German "wie" doubles as "like/as"
            return wh[w]
    return "other"


def _wh_late(lower: list[str], german: bool) -> bool:
    """A statement that asks at its end ("X was the co-founder of what outlet?"): typical of bridge questions."""
    wh = WH_DE if german else WH
    if not lower or lower[0] in wh or lower[0] in (AUX_DE if german else AUX):
        return False
    return any(w in wh for w in lower[3:])


def _leading_name(words: list[str]) -> int:
    """Capitalised words the query opens with ("Andrew Jaspan was ..."): a named subject, common in bridge questions."""
    n = 0
    for i, w in enumerate(words):
        if not w[:1].isupper() or (i == 0 and w.lower() in SENTENCE_OPENERS):
            break
        n += 1
    return n


def _entities(tokens: list[str], german: bool) -> list[str]:
    spans: list[str] = []
    current: list[str] = []
    for i, tok in enumerate(tokens):
        capital = tok[:1].isupper() or (tok[:1].isdigit() and bool(current))
        # The first word is capitalised anyway: it starts a name only when it is no function word.
        opener = i == 0 and tok.lower() not in SENTENCE_OPENERS
        if (
            capital
            and (i > 0 or opener)
            and not (german and i > 0 and tokens[i - 1].lower() in ARTICLES_DE and not current)
        ):
            current.append(tok)
            continue
        if current and tok.lower() in NAME_LINK and i + 1 < len(tokens) and tokens[i + 1][:1].isupper():
            current.append(tok)  # "Bank of England", "Ludwig van Beethoven"
            continue
        if current:
            spans.append(" ".join(current))
            current = []
    if current:
        spans.append(" ".join(current))
    return spans


def _entity_pairs(query: str, entities: list[str]) -> int:
    """Named entities joined by and/or/a comma ("Chris Menges and Aram Avakian"): the subjects of a comparison."""
    n = 0
    for a, b in zip(entities, entities[1:]):
        start = query.find(a)
        gap = query[start + len(a) : query.find(b, start + len(a))] if start >= 0 else ""
        if gap.strip(" ,").lower() in ("and", "or", "und", "oder", "") and len(gap) <= 6:
            n += 1
    return n


def _entity_in_relative(tokens: list[str], rel_words: frozenset[str]) -> int:
    """Relative clauses that name an entity of their own ("the film that stars Nicolas Cage"): a second hop."""
    n = 0
    inside = False
    for i, tok in enumerate(tokens):
        if i > 1 and tok.lower() in rel_words:
            inside = True
        elif inside and i > 0 and tok[:1].isupper():
            n += 1
            inside = False
        elif tok in (",", ";", "?"):
            inside = False
    return n


def _noun_chain(lower: list[str]) -> int:
    """The longest run of content words ("annual documentary film festival" -> 4)."""
    best = run = 0
    for w in lower:
        run = 0 if w in FUNCTION or w.isdigit() else run + 1
        best = max(best, run)
    return best


def extract_features(query: str, hits: Sequence[Hit] | None = None) -> QueryFeatures:
    """Complexity features of ``query``; ``hits`` (when retrieval has run) add score margin, doc spread and the best
    dense score."""
    tokens = TOKEN.findall(query)
    words = [t for t in tokens if t[0].isalnum()]
    lower = [w.lower() for w in words]
    german = is_german(query)
    n = len(lower)

    comparison = sum(1 for w in lower if w in COMPARISON)
    for i, w in enumerate(lower[:-1]):
        if lower[i + 1] in ("than", "als") and COMPARATIVE_ER.match(w) and w not in COMPARISON:
            comparison += 1
    relative = 0
    rel_words = RELATIVE_DE if german else RELATIVE
    prev = ""
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if i > 1 and low in rel_words:
            # English: any non-initial relative word ("the woman who ..."); German: only after a comma (", der ...").
            if not german or prev in (",",) or (prev.lower() in PREPOSITIONS):
                relative += 1
        prev = tok
    commas = sum(1 for t in tokens if t in (",", ";"))
    subordinate = sum(1 for w in lower if w in SUBORDINATORS)
    numbers = NUMBER.findall(query)
    ids = tuple(m.upper() for m in PRODUCT_ID.findall(query))
    possessive = len((POSSESSIVE_DE if german else POSSESSIVE).findall(query)) + len(GENITIVE_S.findall(query))

    entities = _entities(tokens, german)
    has_hits = bool(hits)
    margin = 0.0
    distinct = 0
    top_dense = 0.0
    if hits:
        scores = sorted((h.score for h in hits), reverse=True)
        margin = float(scores[0] - scores[1]) if len(scores) > 1 else float(scores[0])
        distinct = len({h.chunk.doc_id for h in list(hits)[:TOP_HITS]})
        dense = [float(h.rank_scores["dense"]) for h in hits if isinstance(h.rank_scores.get("dense"), (int, float))]
        top_dense = max(dense, default=0.0)

    return QueryFeatures(
        n_words=n,
        n_chars=len(query.strip()),
        n_clauses=1 + commas + subordinate + relative,
        n_question_marks=query.count("?"),
        question_type=_question_type(lower, german),
        wh_late=_wh_late(lower, german),
        multi_part=sum(1 for w in lower if w in MULTI_PART),
        comparison=comparison,
        alternatives=sum(1 for w in lower if w in ALTERNATIVE),
        relative_clauses=relative,
        described_relatives=len((DESCRIBED_DE if german else DESCRIBED).findall(query)),
        possessive_chains=possessive,
        entities=tuple(entities),
        n_capitalised=sum(1 for w in words[1:] if w[:1].isupper()),
        leading_name=_leading_name(words),
        n_numbers=len(numbers),
        n_years=len(YEAR.findall(query)),
        quoted=tuple(q.strip('"“”„«»') for q in QUOTED.findall(query)),
        product_ids=ids,
        tool_markers=sum(1 for w in lower if w in TOOLS) + len(TOOL_PHRASES.findall(query)) + (1 if ids else 0),
        is_german=german,
        entity_pairs=_entity_pairs(query, entities),
        entity_in_relative=_entity_in_relative(tokens, rel_words),
        reduced_relatives=len(REDUCED.findall(query)),
        noun_chain=_noun_chain(lower),
        n_acronyms=len(ACRONYM.findall(query)),
        deictic=sum(1 for w in lower if w in DEICTIC),
        has_hits=has_hits,
        top_score_margin=margin,
        distinct_docs=distinct,
        top_dense_score=top_dense,
    )


__all__ = ["FEATURE_NAMES", "QUESTION_TYPES", "PRODUCT_ID", "QueryFeatures", "extract_features"]
