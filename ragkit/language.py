"""Language of a text (English or German) and the one detector of answers that abstain."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Lang = Literal["en", "de"]

ABSTENTION_EN = "I don't know based on the provided sources."
ABSTENTION_DE = "Ich weiß es nicht auf Grundlage der bereitgestellten Quellen."

# Function words plus the words buyers use in product questions ("kostet", "welche", "günstigste").
_GERMAN_WORDS = frozenset(
    "der die das und ist nicht ein eine einen wie was wer wo warum wann welche welcher welches welchen welchem ich du "
    "sie wir ihr es mit für auf von zu im den dem des sind wird werden kann können gibt mir bitte oder aber auch noch "
    "nach bei aus über unter wieviel viele hat haben sein war waren kostet preis liter kühlschrank kühlschränke "
    "gefrierschrank größer größte kleiner kleinste günstig günstigste günstiger teuerste hersteller tür temperatur "
    "verbrauch vergleich zeige mindestens höchstens gibt es".split()
)
_ENGLISH_WORDS = frozenset(
    "the and is not a an how what who where why when which i you she we they it with for on of to in are "
    "will can there me please or but also after at from about under much many has have be was were does do".split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def is_german(text: str) -> bool:
    """A cheap guess whether ``text`` is German: word votes, with umlauts/ß as a tie-breaker."""
    words = [w.lower() for w in _WORD.findall(text)]
    de = sum(w in _GERMAN_WORDS for w in words)
    en = sum(w in _ENGLISH_WORDS for w in words)
    if any(ch in text for ch in "äöüÄÖÜß"):
        de += 1
    return de > en


def language_of(text: str) -> Lang:
    return "de" if is_german(text) else "en"


# Alphabetic characters outside the Latin script outnumbering Latin ones mark text neither English nor German.
def _non_latin_share(text: str) -> float:
    latin = other = 0
    for ch in text:
        if ch.isalpha():
            if ch.isascii() or "LATIN" in unicodedata.name(ch, ""):
                latin += 1
            else:
                other += 1
    return other / (latin + other) if latin + other else 0.0


UNDETERMINED = "und"  # ISO 639-2 code for "undetermined": a language this detector does not know


def detect_language(text: str) -> str | None:
    """English ("en") or German ("de") by word votes (umlauts/ß break ties towards German); ``UNDETERMINED`` for
    text mostly outside the Latin script; None when a Latin text gives no evidence either way (ids, numbers, names)."""
    words = [w.lower() for w in _WORD.findall(text)]
    de = sum(w in _GERMAN_WORDS for w in words)
    en = sum(w in _ENGLISH_WORDS for w in words)
    if any(ch in text for ch in "äöüÄÖÜß"):
        de += 1
    if de > en:
        return "de"
    if en > de:
        return "en"
    if words and _non_latin_share(text) > 0.5:
        return UNDETERMINED
    return None


def abstention_phrase(question: str) -> str:
    """The fixed "don't know" sentence in the question's language."""
    return ABSTENTION_DE if is_german(question) else ABSTENTION_EN


# Ways a model says the sources do not hold the answer, in English and German (matched case-insensitively).
ABSTENTION_PATTERNS: tuple[str, ...] = (
    r"\bI (?:do not|don't) know\b",
    r"\bI(?:'m| am) not sure\b",
    r"\bcannot (?:be )?(?:answer|determine|find)",
    r"\bcan't (?:answer|determine|find)",
    r"\bnot (?:mentioned|stated|found|given|contained) in the (?:provided )?(?:sources|context|documents?)",
    r"\b(?:sources|context) do(?:es)?(?: not|n't) (?:say|mention|contain)",
    r"\bno information\b",
    r"\bcannot be answered from the (?:provided )?sources",
    r"\bich wei(?:ß|ss) (?:es )?nicht\b",
    r"\bwei(?:ß|ss) ich nicht\b",
    r"\bnicht in den (?:Quellen|Dokumenten|Unterlagen)\b",
    r"\b(?:Quellen|Dokumente) (?:enthalten|nennen) (?:dazu )?(?:keine|nichts|nicht)\b",
    r"\bkeine (?:Angaben|Informationen)\b",
    r"\bkann (?:ich )?(?:das |dies )?nicht (?:beantworten|sagen)\b",
    r"\bgeht aus den Quellen nicht hervor\b",
    r"\blässt sich aus den Quellen nicht beantworten\b",
)
_ABSTENTION = re.compile("|".join(f"(?:{p})" for p in ABSTENTION_PATTERNS), re.IGNORECASE)


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")


def abstention_match(answer: str) -> str | None:
    """The words by which ``answer`` abstains, or None when it does not."""
    m = _ABSTENTION.search(_normalise(answer))
    return m.group(0) if m else None


def is_abstention(answer: str) -> bool:
    """Whether the answer says the sources do not hold the answer (English or German)."""
    return abstention_match(answer) is not None


__all__ = [
    "Lang",
    "ABSTENTION_EN",
    "ABSTENTION_DE",
    "ABSTENTION_PATTERNS",
    "is_german",
    "language_of",
    "detect_language",
    "UNDETERMINED",
    "abstention_phrase",
    "abstention_match",
    "is_abstention",
]
