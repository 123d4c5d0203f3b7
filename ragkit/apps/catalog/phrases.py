"""Phrases as token runs: tokenising, finding phrases, picking the longest, product-name heuristics.

Every name is compared as its sequence of letter and digit runs, case-folded and singular, so "VC-150 F", "VC150F"
and "vc 150f" are one name, and "cold boxes" meets "Cold Box".
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Generic, Iterable, Iterator, Sequence, TypeVar

from ragkit.apps.catalog.units import fold

T = TypeVar("T")
_RUN = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)
_WORD = re.compile(r"[\w*#/+.'-]+", re.UNICODE)
_MAKER_SPLIT = re.compile(r"\s*(?:,|/|&|\bor\b|\bund\b|\band\b)\s*", re.IGNORECASE)


def singular(word: str) -> str:
    """A crude English singular, applied alike to questions and names so that "boxes" meets "Box"."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("xes", "ches", "shes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class Token:
    """A letter or digit run of a text: normalised form, where it is, and the word it came from."""

    norm: str
    start: int
    end: int
    word: str  # the word around it, as written
    word_start: int = 0
    word_end: int = 0


def tokenize(text: str) -> list[Token]:
    """Letter and digit runs, each case-folded and singular; "VC-150 F" and "vc150f" give the same runs."""
    out = []
    for w in _WORD.finditer(text):
        for m in _RUN.finditer(w.group(0)):
            norm = fold(m.group(0)).replace("ß", "ss")
            out.append(
                Token(singular(norm), w.start() + m.start(), w.start() + m.end(), w.group(0), w.start(), w.end())
            )
    return out


def key(text: str) -> tuple[str, ...]:
    return tuple(t.norm for t in tokenize(text))


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    """A phrase found in a token list: token positions [i, j) and what the phrase stands for."""

    i: int
    j: int
    payload: T

    def overlaps(self, other: Match) -> bool:
        return self.i < other.j and other.i < self.j


_ENDINGS = ("en", "em", "es", "e", "n")  # German declension endings ("batteriebetriebene", "geringsten")


def forms(word: str) -> frozenset[str]:
    """A word and the forms it takes without one German declension ending; two words that share a form are one word
    to a phrase index that allows inflection. Short words and comparatives ("kleiner") are left alone."""
    out = {word}
    if len(word) >= 5 and word.isalpha():
        out |= {word[: -len(e)] for e in _ENDINGS if word.endswith(e) and len(word) - len(e) >= 4}
    return frozenset(out)


class PhraseIndex(Generic[T]):
    """Phrases as token sequences; finds every occurrence in a token list. With ``inflected`` a word also matches
    its German declined forms ("batteriebetriebene Solar" finds "batteriebetrieben Solar"); names stay exact."""

    def __init__(self, inflected: bool = False) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], T]]] = defaultdict(list)
        self.inflected = inflected

    def add(self, phrase: str | tuple[str, ...], payload: T) -> None:
        seq = key(phrase) if isinstance(phrase, str) else phrase
        if not seq:
            return
        for first in forms(seq[0]) if self.inflected else (seq[0],):
            self._by_first[first].append((seq, payload))

    def find(self, toks: Sequence[Token], compounds: bool = False) -> list[Match[T]]:
        """Every phrase occurrence; with ``compounds`` (German text, inflected index) a one-word phrase also matches
        the front of a longer word that nothing matches whole ("Kerosinbetrieb", "Garantiezeit")."""
        norms = [t.norm for t in toks]
        if not self.inflected:
            out = []
            for i, first in enumerate(norms):
                for seq, payload in self._by_first.get(first, ()):
                    if tuple(norms[i : i + len(seq)]) == seq:
                        out.append(Match(i, i + len(seq), payload))
            return out
        word_forms = [forms(n) for n in norms]
        found: dict[tuple[int, int, int], Match[T]] = {}
        for i in range(len(norms)):
            for first in word_forms[i]:
                for seq, payload in self._by_first.get(first, ()):
                    end = i + len(seq)
                    if end <= len(norms) and all(
                        w == norms[k] or forms(w) & word_forms[k] for k, w in zip(range(i, end), seq)
                    ):
                        found.setdefault((i, end, id(payload)), Match(i, end, payload))
        if compounds:
            covered = {k for m in found.values() for k in range(m.i, m.j)}
            for i, n in enumerate(norms):
                if i in covered or not n.isalpha():
                    continue
                for cut in range(len(n) - 4, 4, -1):  # the longest front of at least 5 letters, 4 left behind
                    fronts = [(seq, p) for seq, p in self._by_first.get(n[:cut], ()) if len(seq) == 1]
                    if fronts:
                        for _, payload in fronts:
                            found.setdefault((i, i + 1, id(payload)), Match(i, i + 1, payload))
                        break
        return sorted(found.values(), key=lambda m: (m.i, m.j))

    def single_words(self) -> set[str]:
        """The phrases of one word (to complete "Kühl-" in "Kühl- oder Gefriergerät")."""
        return {seq[0] for seqs in self._by_first.values() for seq, _ in seqs if len(seq) == 1}


def longest_first(matches: Iterable[Match[T]], taken: set[int] | None = None) -> list[Match[T]]:
    """Non-overlapping matches, longer ones winning; equal spans are all kept (they name the same thing)."""
    taken = set(taken or ())
    kept: list[Match[T]] = []
    for m in sorted(matches, key=lambda m: (-(m.j - m.i), m.i)):
        span = set(range(m.i, m.j))
        if span & taken and not any(k.i == m.i and k.j == m.j for k in kept):
            continue
        kept.append(m)
        taken |= span
    return sorted(kept, key=lambda m: m.i)


def maker_parts(maker: str) -> list[str]:
    """A manufacturer field split into the makers it names: "Dometic/Electrolux" -> Dometic, Electrolux."""
    parts = [p.strip() for p in _MAKER_SPLIT.split(maker) if p and p.strip()]
    return [maker, *[p for p in parts if p != maker]]


@dataclass
class ProductMention:
    """Products a stretch of text names: one when resolved, several when ambiguous."""

    text: str
    ids: list[str]
    confidence: float
    start: int = 0
    end: int = 0

    @property
    def ambiguous(self) -> bool:
        return len(self.ids) > 1


@dataclass
class UnknownMention:
    """A product-like name that matches no product, with the closest ones."""

    text: str
    suggestions: list[str] = field(default_factory=list)
    maker: str | None = None
    start: int = -1  # token positions [start, end), when found in a text
    end: int = -1


def _digits(seq: Sequence[str]) -> tuple[str, ...]:
    return tuple(s.lstrip("0") or "0" for s in seq if s.isdigit())


def _compact(seq: Sequence[str]) -> str:
    return "".join(seq)


def model_like(tokens: Sequence[Token]) -> bool:
    """Whether tokens look like a model number: letters and digits inside one word, or an upper-case code
    followed by a number ("SW 350", "V 110 KE")."""
    words = {t.word for t in tokens}
    if any(re.search(r"\d", w) and re.search(r"[^\W\d_]", w) for w in words):
        return True
    has_digit = any(t.norm.isdigit() for t in tokens)
    codes = [t for t in tokens if not t.norm.isdigit()]
    return has_digit and bool(codes) and all(_code(t.word) for t in codes)


def _code(word: str) -> bool:
    """A short letter code as model names use them: "SW", "KE", "LKUv" (two capitals or more), not "Liter"."""
    return len(word) <= 6 and (word.isupper() or sum(ch.isupper() for ch in word) >= 2)


def windows(toks: Sequence[Token], taken: set[int], longest: int = 3) -> Iterator[tuple[int, int]]:
    """Token spans of up to ``longest`` whole words, none taken, that could be one product name; longest first and
    each token used once. A name never splits a word ("KG36NXI35") and never crosses a lower-case word ("the")."""
    words: list[list[int]] = []
    for k, t in enumerate(toks):
        if words and toks[words[-1][0]].word_start == t.word_start:
            words[-1].append(k)
        else:
            words.append([k])
    used: set[int] = set(taken)
    for size in range(longest, 0, -1):
        for w in range(0, len(words) - size + 1):
            span = [k for group in words[w : w + size] for k in group]
            if used & set(span):
                continue
            if size > 1 and any(
                toks[g[0]].word.islower() and not toks[g[0]].word.isdigit() and not model_like([toks[k] for k in g])
                for g in words[w : w + size]
            ):
                continue
            if model_like([toks[k] for k in span]):
                used |= set(span)
                yield span[0], span[-1] + 1


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def close_matches(query: str, names: dict[str, list[str]], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """Product ids whose compact names are closest to ``query`` (difflib), best first, without repeats."""
    found = difflib.get_close_matches(query, list(names), n=n * 3, cutoff=cutoff)
    return list(dict.fromkeys(pid for f in found for pid in names[f]))[:n]


__all__ = [
    "Token",
    "Match",
    "PhraseIndex",
    "ProductMention",
    "UnknownMention",
    "tokenize",
    "key",
    "singular",
    "longest_first",
    "maker_parts",
    "model_like",
    "windows",
    "similarity",
    "close_matches",
]
