"""Cheap complexity features of a query (English and German), for routing between local and API generators.

Everything here is regular expressions over one tokenisation pass; a query takes microseconds.
``QueryFeatures.as_vector()`` returns the values in the order of ``FEATURE_NAMES``:

    n_words, n_chars, n_clauses, n_question_marks,
    q_what, q_who, q_when, q_where, q_which, q_how, q_why, q_yesno, q_other,   (one-hot question type)
    wh_late, multi_part, comparison, alternatives, relative_clauses, described_relatives, possessive_chains,
    n_entities, entity_words, n_capitalised, leading_name, n_numbers, n_years, n_quoted, n_product_ids, tool_markers, is_german,
    longest_entity, entity_pairs, entity_in_relative, reduced_relatives, noun_chain, n_acronyms, deictic,
    has_hits, top_score_margin, distinct_docs

The last three come from retrieval hits when they are given, else zero.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ragkit.types import Hit

QUESTION_TYPES = ("what", "who", "when", "where", "which", "how", "why", "yesno", "other")

FEATURE_NAMES: tuple[str, ...] = (
    "n_words", "n_chars", "n_clauses", "n_question_marks",
    *(f"q_{t}" for t in QUESTION_TYPES),
    "wh_late", "multi_part", "comparison", "alternatives", "relative_clauses", "described_relatives", "possessive_chains",
    "n_entities", "entity_words", "n_capitalised", "leading_name", "n_numbers", "n_years", "n_quoted", "n_product_ids", "tool_markers", "is_german",
    "longest_entity", "entity_pairs", "entity_in_relative", "reduced_relatives", "noun_chain", "n_acronyms", "deictic",
    "has_hits", "top_score_margin", "distinct_docs",
)

# How many of the top hits are looked at for ``distinct_docs``.
TOP_HITS = 5

_TOKEN = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*|[?,;:\"“”„«»]", re.UNICODE)
# Whole ids only: not preceded or followed by a word character or a hyphen ("XLABO-288" or "LABO-288b" are no ids).
PRODUCT_ID = re.compile(r"(?<![\w-])[A-Z]{2,}(?:-[A-Z]+)*-\d+(?![\w-])", re.IGNORECASE)
_QUOTED = re.compile(r"\"[^\"]{1,200}\"|“[^”]{1,200}”|„[^“”]{1,200}[“”]|«[^»]{1,200}»")
_NUMBER = re.compile(r"(?<![\w-])\d+(?:[.,]\d+)*(?![\w-])")
_YEAR = re.compile(r"(?<!\d)(?:1[0-9]{3}|20[0-9]{2})(?!\d)")

_WH = {
    "what": "what", "who": "who", "whom": "who", "whose": "who", "when": "when", "where": "where",
    "which": "which", "how": "how", "why": "why",
}
_WH_DE = {
    "was": "what", "wer": "who", "wen": "who", "wem": "who", "wessen": "who", "wann": "when",
    "wo": "where", "wohin": "where", "woher": "where", "welche": "which", "welcher": "which",
    "welches": "which", "welchen": "which", "welchem": "which", "wie": "how", "warum": "why",
    "wieso": "why", "weshalb": "why", "weswegen": "why", "ob": "yesno",
}
_AUX = frozenset(
    "is are was were am do does did can could has have had will would should shall may might must".split()
)
_AUX_DE = frozenset(
    "ist sind war waren hat haben hatte hatten kann können konnte wird werden wurde wurden gibt gab "
    "stimmt darf dürfen muss müssen soll sollte sollen bin bist".split()
)
# Words that mark German unambiguously enough (no "was", "die", "wo": English uses them too).
_GERMAN = frozenset(
    "der das und ist nicht ein eine einen einem einer mit von zu den dem des für auf sind wer wann welche welcher "
    "welches welchen warum wie ob kostet kosten gibt es sich auch oder aber als im am vom zum zur bei nach über "
    "unter sowie beide beiden ich wir sie mir uns hat haben wurde werden wird wieviel viele alle günstigste".split()
)
_MULTI_PART = frozenset("and also both as well plus additionally und sowie auch beide beiden außerdem zudem".split())
_COMPARISON = frozenset(
    "compare compared comparison vs versus than larger smaller bigger more less fewer older younger earlier later "
    "higher lower longer shorter same difference different differ similar better worse first last "
    "vergleiche vergleich vergleichen größer kleiner mehr weniger als älter jünger früher später höher niedriger "
    "länger kürzer unterschied unterschiede unterscheidet gleich gleiche gleichen selbe selben besser schlechter".split()
)
_COMPARATIVE_ER = re.compile(r"^[a-zäöü]{3,}er$")  # "richer", "taller"; only counted when "than"/"als" follows
_ALTERNATIVE = frozenset({"or", "oder", "either", "entweder"})
_RELATIVE = frozenset({"who", "whom", "whose", "which", "that", "where", "when"})
_RELATIVE_DE = frozenset({"der", "die", "das", "dessen", "deren", "welcher", "welche", "welches", "denen", "dem", "den"})
_PREPOSITIONS = frozenset("in on at of for by with from to during under into".split())
_SUBORDINATORS = frozenset(
    "because although while whereas since if unless after before weil obwohl während dass damit wenn falls nachdem bevor".split()
)
_TOOLS = frozenset(
    "price prices cost costs cheapest cheaper expensive budget under below above over least most maximum minimum "
    "filter sort sorted list all count total sum average between within "
    "preis preise kostet kosten günstigste günstigsten billigste billigsten teuerste teuersten unter über unterhalb "
    "oberhalb mindestens höchstens maximal minimal liste alle sortiere filtere zwischen summe durchschnitt anzahl".split()
)
_TOOL_PHRASES = re.compile(r"\bhow (?:many|much)\b|\bwie (?:viele?|teuer)\b|\blist all\b|\bat (?:least|most)\b", re.IGNORECASE)
_POSSESSIVE = re.compile(r"\bthe\s+(?:[\w-]+\s+){1,3}?of\s+(?:the|a|an|his|her|its|their)\b", re.IGNORECASE)
_POSSESSIVE_DE = re.compile(r"\b(?:der|die|das|den|dem)\s+[\w-]+\s+(?:des|der|eines|einer)\s+\w+", re.IGNORECASE)
# "the county where ...", "a university that ...": an entity described by a relative clause, the bridge of a multi-hop question.
_DESCRIBED = re.compile(r"\b(?:the|a|an)\s+(?:[\w'’-]+\s+){1,3}?(?:who|whom|whose|that|which|where)\b", re.IGNORECASE)
_DESCRIBED_DE = re.compile(r"\b(?:der|die|das|den|dem|ein|eine|einen|einem)\s+(?:[\w-]+\s+){0,2}[\w-]+,\s*(?:der|die|das|dessen|deren|welche[rsnm]?|wo)\b", re.IGNORECASE)
# A noun described by a participle or a fixed linking phrase ("a film starring ...", "a game designed by ...",
# "known as", "ein Film mit ... in der Hauptrolle"): bridge questions hide their middle entity this way.
_REDUCED = re.compile(
    r"\b(?:[\w-]+(?:ed|en|wn|ng) by|starring|featuring|based (?:on|in)|known (?:as|for)|located in|named after|founded by|"
    r"born in|headquartered in|home to|"
    r"gespielt von|geschrieben von|gegründet von|bekannt (?:als|für)|basierend auf|benannt nach|geboren in|mit [\w\s]{1,40} in der Hauptrolle|"
    r"(?:ge[\wäöü]+t|ge[\wäöü]+en) von)\b",
    re.IGNORECASE,
)
# Words that point back into a passage the asker is reading ("these colonies", "what did he"): reading-comprehension
# questions lean on them, self-contained multi-hop questions name their entities instead.
_DEICTIC = frozenset(
    "this these those it its they their them he his him she her "
    "dies diese dieser dieses diesem diesen jene jener jenes er ihn ihm ihr ihre ihren sein seine seinen".split()
)
_ACRONYM = re.compile(r"(?<![\w-])(?=[A-Z0-9]*[A-Z])(?=[A-Z0-9]*\d|[A-Z0-9]{2,})[A-Z0-9]{2,}(?![\w-])")
_GENITIVE_S = re.compile(r"\w['’]s\b")
_NAME_LINK = frozenset({"of", "the", "de", "von", "van", "der", "du", "la", "le", "di", "da"})
_ARTICLES_DE = frozenset(
    "der die das den dem des ein eine einen einem einer eines kein keine keinen mein meine dein sein seine ihr ihre "
    "unser unsere diese dieser dieses jede jeder jedes welche welcher welches welchen welchem".split()
)
# Function words that end a noun chain ("the annual documentary film festival" has a chain of four).
_FUNCTION = (
    frozenset(_WH) | frozenset(_WH_DE) | _AUX | _AUX_DE | _ARTICLES_DE | _PREPOSITIONS | _SUBORDINATORS | _RELATIVE | _DEICTIC
    | frozenset("a an the and or but not no to as than so did does do be been being by also both such very most more "
                "und oder aber nicht kein als wie auch im am vom zum zur bei nach für auf mit von zu über unter es sich".split())
)
_SENTENCE_OPENERS = (
    frozenset(_WH) | frozenset(_WH_DE) | _AUX | _AUX_DE | _ARTICLES_DE | _PREPOSITIONS | _SUBORDINATORS
    | frozenset("a an the this that these those it he she they we i you there according after before "
                "im am vom zum zur bei nach für auf mit von zu ich es er sie wir nenne liste zeige gib "
                "name list show give tell find compare vergleiche".split())
)


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

    def as_vector(self) -> np.ndarray:
        """The features as float32 in ``FEATURE_NAMES`` order."""
        qt = [1.0 if self.question_type == t else 0.0 for t in QUESTION_TYPES]
        return np.array(
            [
                self.n_words, self.n_chars, self.n_clauses, self.n_question_marks, *qt,
                float(self.wh_late), self.multi_part, self.comparison, self.alternatives, self.relative_clauses, self.described_relatives, self.possessive_chains,
                len(self.entities), sum(e.count(" ") + 1 for e in self.entities), self.n_capitalised, self.leading_name, self.n_numbers, self.n_years, len(self.quoted), len(self.product_ids),
                self.tool_markers, float(self.is_german),
                max((e.count(" ") + 1 for e in self.entities), default=0), self.entity_pairs, self.entity_in_relative,
                self.reduced_relatives, self.noun_chain, self.n_acronyms, self.deictic,
                float(self.has_hits), self.top_score_margin, self.distinct_docs,
            ],
            dtype=np.float32,
        )

    def as_dict(self) -> dict[str, float]:
        """Feature name -> value, the same numbers as ``as_vector``."""
        return dict(zip(FEATURE_NAMES, (float(x) for x in self.as_vector())))

    def describe(self) -> dict[str, object]:
        """Every field, entities and ids included, for route metadata."""
        return asdict(self)


def _is_german(lower: list[str], text: str) -> bool:
    hits = sum(1 for w in lower if w in _GERMAN)
    if any(c in text for c in "äöüßÄÖÜ"):
        hits += 1
    # "Was kostet ...": German "was" is only a German signal when another German word agrees.
    return hits >= 2 or (hits >= 1 and len(lower) <= 4)


def _question_type(lower: list[str], german: bool) -> str:
    wh = _WH_DE if german else _WH
    aux = _AUX_DE if german else _AUX
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
    wh = _WH_DE if german else _WH
    if not lower or lower[0] in wh or lower[0] in (_AUX_DE if german else _AUX):
        return False
    return any(w in wh for w in lower[3:])


def _leading_name(words: list[str]) -> int:
    """Capitalised words the query opens with ("Andrew Jaspan was ..."): a named subject, common in bridge questions."""
    n = 0
    for i, w in enumerate(words):
        if not w[:1].isupper() or (i == 0 and w.lower() in _SENTENCE_OPENERS):
            break
        n += 1
    return n


def _entities(tokens: list[str], german: bool) -> list[str]:
    spans: list[str] = []
    current: list[str] = []
    for i, tok in enumerate(tokens):
        capital = tok[:1].isupper() or (tok[:1].isdigit() and bool(current))
        # The first word is capitalised anyway: it starts a name only when it is no function word.
        opener = i == 0 and tok.lower() not in _SENTENCE_OPENERS
        if capital and (i > 0 or opener) and not (german and i > 0 and tokens[i - 1].lower() in _ARTICLES_DE and not current):
            current.append(tok)
            continue
        if current and tok.lower() in _NAME_LINK and i + 1 < len(tokens) and tokens[i + 1][:1].isupper():
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
        gap = query[start + len(a): query.find(b, start + len(a))] if start >= 0 else ""
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
        run = 0 if w in _FUNCTION or w.isdigit() else run + 1
        best = max(best, run)
    return best


def extract_features(query: str, hits: Sequence[Hit] | None = None) -> QueryFeatures:
    """Complexity features of ``query``; ``hits`` (when retrieval has run) add score margin and doc spread."""
    tokens = _TOKEN.findall(query)
    words = [t for t in tokens if t[0].isalnum()]
    lower = [w.lower() for w in words]
    german = _is_german(lower, query)
    n = len(lower)

    comparison = sum(1 for w in lower if w in _COMPARISON)
    for i, w in enumerate(lower[:-1]):
        if lower[i + 1] in ("than", "als") and _COMPARATIVE_ER.match(w) and w not in _COMPARISON:
            comparison += 1
    relative = 0
    rel_words = _RELATIVE_DE if german else _RELATIVE
    prev = ""
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if i > 1 and low in rel_words:
            # English: any non-initial relative word ("the woman who ..."); German: only after a comma (", der ...").
            if not german or prev in (",",) or (prev.lower() in _PREPOSITIONS):
                relative += 1
        prev = tok
    commas = sum(1 for t in tokens if t in (",", ";"))
    subordinate = sum(1 for w in lower if w in _SUBORDINATORS)
    numbers = _NUMBER.findall(query)
    ids = tuple(m.upper() for m in PRODUCT_ID.findall(query))
    possessive = len((_POSSESSIVE_DE if german else _POSSESSIVE).findall(query)) + len(_GENITIVE_S.findall(query))

    entities = _entities(tokens, german)
    has_hits = bool(hits)
    margin = 0.0
    distinct = 0
    if hits:
        scores = sorted((h.score for h in hits), reverse=True)
        margin = float(scores[0] - scores[1]) if len(scores) > 1 else float(scores[0])
        distinct = len({h.chunk.doc_id for h in list(hits)[:TOP_HITS]})

    return QueryFeatures(
        n_words=n,
        n_chars=len(query.strip()),
        n_clauses=1 + commas + subordinate + relative,
        n_question_marks=query.count("?"),
        question_type=_question_type(lower, german),
        wh_late=_wh_late(lower, german),
        multi_part=sum(1 for w in lower if w in _MULTI_PART),
        comparison=comparison,
        alternatives=sum(1 for w in lower if w in _ALTERNATIVE),
        relative_clauses=relative,
        described_relatives=len((_DESCRIBED_DE if german else _DESCRIBED).findall(query)),
        possessive_chains=possessive,
        entities=tuple(entities),
        n_capitalised=sum(1 for w in words[1:] if w[:1].isupper()),
        leading_name=_leading_name(words),
        n_numbers=len(numbers),
        n_years=len(_YEAR.findall(query)),
        quoted=tuple(q.strip("\"“”„«»") for q in _QUOTED.findall(query)),
        product_ids=ids,
        tool_markers=sum(1 for w in lower if w in _TOOLS) + len(_TOOL_PHRASES.findall(query)) + (1 if ids else 0),
        is_german=german,
        entity_pairs=_entity_pairs(query, entities),
        entity_in_relative=_entity_in_relative(tokens, rel_words),
        reduced_relatives=len(_REDUCED.findall(query)),
        noun_chain=_noun_chain(lower),
        n_acronyms=len(_ACRONYM.findall(query)),
        deictic=sum(1 for w in lower if w in _DEICTIC),
        has_hits=has_hits,
        top_score_margin=margin,
        distinct_docs=distinct,
    )


__all__ = ["FEATURE_NAMES", "QUESTION_TYPES", "PRODUCT_ID", "QueryFeatures", "extract_features"]
