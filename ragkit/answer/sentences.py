"""Sentences and index terms of a text, for extractive compression: sentence spans that respect abbreviations,
light stems, word shingles and their overlap."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Sequence

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc e.g i.e cf no nr fig approx ca z.b u.a bzw vgl inc ltd co corp gen col lt sgt "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[\w])|[。！？]+|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_RUN = re.compile(r"\w+(?:[-./:,'’]\w+)*", re.UNICODE)

STOPWORDS = frozenset(
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
            word = re.search(r"(°?)([\w.]+)\.$", text[start : m.start() + 1])
            # "°C." ends a sentence; a lone capital elsewhere is an initial.
            if word and (
                word.group(2).lower() in _ABBREVIATIONS
                or (len(word.group(2)) == 1 and word.group(2).isupper() and not word.group(1))
            ):
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
    """Index terms: lower-cased light stems; numbers and ids with digits (LABO-288, 3.5) stay whole; CJK as bigrams."""
    # The same chunks come back across questions; their sentences are re-scored each time.
    return list(_terms(text))


def _terms_uncached(text: str) -> list[str]:
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


def norm_words(text: str) -> list[str]:
    return [w.lower() for w in _RUN.findall(text)]


__all__ = ["STOPWORDS", "split_sentences", "terms", "shingles", "jaccard", "lost_in_the_middle", "norm_words"]
