"""The grounding check of an answer against the numbered sources it was given.

Per sentence: every ``[n]`` must point to a source, and every number (with its unit, when it has one) and every id
with digits (``LABO-288``) must appear in a source the sentence cites, else in any source of the prompt. A claim
found only outside the cited sources counts as supported but miscited. ``grounding: strict`` keeps only the
supported sentences, and abstains when none remains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Literal, Sequence

from pydantic import model_validator

from ragkit.answer.abstention import ANSWER_SIGNALS, AbstentionConfig, check_abstention
from ragkit.answer.prompting import parse_citations, strip_citations
from ragkit.answer.sentences import split_sentences
from ragkit.component import ComponentConfig, Field
from ragkit.language import abstention_phrase, is_abstention
from ragkit.types import Reply

GroundingMode = Literal["off", "check", "strict"]


class GroundingConfig(ComponentConfig):
    """How answers are checked against their sources (``grounding: strict`` is short for ``{mode: strict}``)."""

    mode: GroundingMode = Field(
        "check",
        description="off: no check; check: report unsupported claims in metadata['grounding']; strict: also remove "
        "unsupported sentences, and abstain when none is left.",
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_mode(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value


# Units as written -> one spelling, so "288 L" and "288 litres" meet. Longest spellings first in the pattern.
_UNITS: dict[str, str] = {
    "°c": "°C",
    "° c": "°C",
    "grad celsius": "°C",
    "degrees celsius": "°C",
    "°f": "°F",
    "%": "%",
    "percent": "%",
    "per cent": "%",
    "prozent": "%",
    "kwh": "kWh",
    "wh": "Wh",
    "kw": "kW",
    "w": "W",
    "v": "V",
    "mm": "mm",
    "cm": "cm",
    "m": "m",
    "km": "km",
    "kg": "kg",
    "g": "g",
    "mg": "mg",
    "l": "L",
    "litre": "L",
    "litres": "L",
    "liter": "L",
    "liters": "L",
    "litern": "L",
    "ml": "mL",
    "db": "dB",
    "db(a)": "dB",
    "h": "h",
    "hours": "h",
    "stunden": "h",
    "usd": "USD",
    "$": "USD",
    "eur": "EUR",
    "euro": "EUR",
    "€": "EUR",
    "chf": "CHF",
    "gbp": "GBP",
    "£": "GBP",
}
_UNIT_WORDS = sorted(_UNITS, key=len, reverse=True)
_UNIT_AFTER = "|".join(re.escape(u) for u in _UNIT_WORDS)
_NUMBER = r"[-−–]?\d+(?:[.,'’\u202f\u00a0]\d+)*"
_QUANTITY = re.compile(
    # Not inside a word or an id (ARC-ULT-420), not a range's dash (2–8 is 2 and 8), ordinals allowed (10th).
    rf"(?P<pre>(?:USD|EUR|CHF|GBP|[$€£])\s?)?(?<![\w.,])(?<![A-Za-z]-)(?P<num>{_NUMBER})"
    rf"(?:st|nd|rd|th)?(?:\s?(?P<unit>{_UNIT_AFTER})(?![\w]))?",
    re.IGNORECASE,
)
# Ids: a run of letters and digits (with inner dashes) holding both, e.g. LABO-288, ARC-ULT-420, D1NZ.
_ID = re.compile(
    r"(?<![\w-])(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+(?![\w-])|"
    r"(?<![\w-])(?=\w*[A-Za-z])(?=\w*\d)[A-Za-z]+\d+[A-Za-z]*\b"
)
_ORDINAL = re.compile(r"^\d+(?:st|nd|rd|th)$", re.IGNORECASE)


def _values(number: str) -> frozenset[float]:
    """Every value ``number`` can mean: "1,234" is 1234 (thousands) or 1.234 (German decimal comma)."""
    t = number.replace("−", "-").replace("–", "-").replace("’", "'")
    sign = -1.0 if t.startswith("-") else 1.0
    t = t.lstrip("-")
    parts = re.split(r"([.,'\u202f\u00a0])", t)
    digits, seps = parts[0::2], parts[1::2]
    out: set[float] = set()
    if not seps:
        return frozenset({sign * float(t)})
    if all(len(d) == 3 for d in digits[1:]):
        out.add(sign * float("".join(digits)))  # thousands separators
    if len(seps) == 1 and seps[0] in ".,":
        out.add(sign * float(f"{digits[0]}.{digits[1]}"))
    elif len(set(seps)) == 2 and seps[-1] in ".,":
        # 1.234,5 or 1,234.5: the last separator is the decimal one.
        out.add(sign * float("".join(digits[:-1]) + "." + digits[-1]))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number as written, its possible values, and its unit in one spelling (None when it has none)."""

    text: str
    values: frozenset[float]
    unit: str | None


def quantities(text: str) -> list[Quantity]:
    """Numbers with their units in ``text``, in order; numbers inside ids (ARC-ULT-420) are not among them."""
    out = []
    for m in _QUANTITY.finditer(text):
        unit_text = m.group("unit") or (m.group("pre") or "").strip()
        unit = _UNITS.get(unit_text.lower()) if unit_text else None
        if unit_text and unit is None:
            unit = _UNITS.get(unit_text.lower().replace(" ", ""))
        out.append(Quantity(m.group(0).strip(), _values(m.group("num")), unit))
    return out


def ids(text: str) -> list[str]:
    """Tokens of letters and digits (product ids, model names), as written."""
    return [m.group(0) for m in _ID.finditer(text) if not _ORDINAL.match(m.group(0))]


def _norm_id(token: str) -> str:
    return token.replace("–", "-").lower()


@dataclass(frozen=True, slots=True)
class ClaimCheck:
    """One number or id of the answer and the sources (1-based) that hold it."""

    text: str
    kind: Literal["number", "id"]
    found_in: tuple[int, ...]
    cited: bool  # found in a source the sentence cites

    @property
    def supported(self) -> bool:
        return bool(self.found_in)


@dataclass(frozen=True, slots=True)
class SentenceCheck:
    """One sentence of the answer: its citations, the ones that point nowhere, and its claims."""

    text: str
    citations: tuple[int, ...]
    bad_citations: tuple[int, ...]
    claims: tuple[ClaimCheck, ...]

    @property
    def supported(self) -> bool:
        return not self.bad_citations and all(c.supported for c in self.claims)


@dataclass(frozen=True)
class Grounding:
    """The grounding check of one answer against ``n_sources`` numbered sources."""

    sentences: tuple[SentenceCheck, ...]
    n_sources: int
    mode: GroundingMode = "check"
    removed: tuple[str, ...] = field(default=())  # sentences that strict mode took out

    @property
    def bad_citations(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(n for s in self.sentences for n in s.bad_citations))

    @property
    def unsupported(self) -> tuple[str, ...]:
        """Each problem in words: a citation that points nowhere, a number or id no source holds."""
        out = []
        for n in self.bad_citations:
            out.append(f"[{n}] points to no source (there are {self.n_sources})")
        for s in self.sentences:
            out.extend(f"{c.text!r} appears in no source" for c in s.claims if not c.supported)
        return tuple(out)

    @property
    def miscited(self) -> tuple[str, ...]:
        """Claims found in a source, but not in one their sentence cites."""
        return tuple(
            f"{c.text!r} is in source {', '.join(map(str, c.found_in))}, not in the cited one"
            for s in self.sentences
            if s.citations
            for c in s.claims
            if c.supported and not c.cited
        )

    @property
    def cited(self) -> tuple[int, ...]:
        """Valid source numbers the answer cites, in order of first citation."""
        return tuple(dict.fromkeys(n for s in self.sentences for n in s.citations if n not in s.bad_citations))

    @property
    def ok(self) -> bool:
        return all(s.supported for s in self.sentences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "ok": self.ok,
            "n_sources": self.n_sources,
            "cited": list(self.cited),
            "unsupported": list(self.unsupported),
            "miscited": list(self.miscited),
            "removed": list(self.removed),
            "sentences": [
                {
                    "text": s.text,
                    "citations": list(s.citations),
                    "supported": s.supported,
                    "claims": [
                        {"text": c.text, "kind": c.kind, "found_in": list(c.found_in), "cited": c.cited}
                        for c in s.claims
                    ],
                }
                for s in self.sentences
            ],
        }


def answer_sentences(answer: str) -> list[str]:
    """Sentences of an answer; a run of bare citations after a full stop ("... 42 kWh. [2]") joins the sentence."""
    out: list[str] = []
    for start, end in split_sentences(answer):
        piece = answer[start:end]
        if out and not strip_citations(piece).strip(" .,;:"):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


class _SourceIndex:
    """The quantities and ids of each source, computed once per answer."""

    def __init__(self, sources: Sequence[str]) -> None:
        self.quantities = [quantities(text) for text in sources]
        self.ids = [{_norm_id(t) for t in re.findall(r"[\w-]+", text)} for text in sources]

    def holds_quantity(self, i: int, q: Quantity) -> bool:
        same = [s for s in self.quantities[i] if q.values & s.values]
        if q.unit is None or any(s.unit == q.unit for s in same):
            return bool(same)
        # The value only without a unit (the unit may sit in a header) backs it; the value with another unit does not.
        return bool(same) and all(s.unit is None for s in same)

    def holds_id(self, i: int, token: str) -> bool:
        return _norm_id(token) in self.ids[i]


def _claims(sentence: str, cited: Iterable[int], index: _SourceIndex, n: int) -> tuple[ClaimCheck, ...]:
    body = strip_citations(sentence)
    cited = [c for c in cited if 1 <= c <= n]
    found: list[tuple[int, str, Literal["number", "id"], tuple[int, ...]]] = []
    at = 0
    for q in quantities(body):
        at = body.find(q.text, at)
        found.append((at, q.text, "number", tuple(i + 1 for i in range(n) if index.holds_quantity(i, q))))
    at = 0
    for token in ids(body):
        at = body.find(token, at)
        found.append((at, token, "id", tuple(i + 1 for i in range(n) if index.holds_id(i, token))))
    found.sort(key=lambda f: f[0])
    return tuple(ClaimCheck(text, kind, where, any(c in where for c in cited)) for _, text, kind, where in found)


def check_grounding(answer: str, sources: Sequence[str], *, mode: GroundingMode = "check") -> Grounding:
    """Check ``answer`` against ``sources`` (the texts numbered 1..n in the prompt)."""
    index = _SourceIndex(sources)
    n = len(sources)
    checks = []
    for sentence in answer_sentences(answer):
        cites = tuple(parse_citations(sentence))
        bad = tuple(c for c in cites if c > n)
        checks.append(SentenceCheck(sentence, cites, bad, _claims(sentence, cites, index, n)))
    return Grounding(tuple(checks), n, mode)


def strict_answer(grounding: Grounding, question: str) -> tuple[str, Grounding]:
    """The answer of only its supported sentences, or the abstention phrase when none has content."""
    kept = [s for s in grounding.sentences if s.supported]
    removed = tuple(s.text for s in grounding.sentences if not s.supported)
    text = " ".join(s.text for s in kept)
    if not strip_citations(text).strip(" .,;:-") or (removed and is_abstention(text)):
        text = abstention_phrase(question)
    return text, Grounding(grounding.sentences, grounding.n_sources, "strict", removed)


def checked_reply(
    reply: Reply,
    question: str,
    grounding: GroundingConfig | None = None,
    abstention: AbstentionConfig | None = None,
    *,
    query: str | None = None,
) -> Reply:
    """``reply`` after the grounding check (``metadata["grounding"]``) and the abstention check
    (``metadata["abstention"]``): strict grounding drops unsupported sentences, a signal under its threshold
    replaces the answer with the abstention phrase. ``reply.sources`` are the prompt's numbered sources, in order;
    ``query`` is what was searched for (a follow-up rewritten to stand alone), else the question."""
    grounding = grounding or GroundingConfig()
    abstention = abstention or AbstentionConfig()
    if reply.tool_calls:
        return reply
    text, sources = reply.text, reply.sources
    meta = dict(reply.metadata)
    checked: Grounding | None = None
    if grounding.mode != "off":
        checked = check_grounding(text, [h.chunk.text for h in sources], mode=grounding.mode)
        if grounding.mode == "strict":
            text, checked = strict_answer(checked, question)
        meta["grounding"] = checked
    cited = checked.cited if checked is not None else tuple(parse_citations(text))
    verdict = check_abstention(
        query or question, text, sources, abstention, cited=cited, mean_logprob=meta.get("mean_logprob")
    )
    meta["abstention"] = verdict
    if verdict.reason is not None:
        text = abstention_phrase(question)
    return replace(reply, text=text, metadata=meta)


def may_rewrite(grounding: GroundingConfig, abstention: AbstentionConfig) -> bool:
    """Whether the checks can change an answer's text once generated (strict grounding, or a threshold on an
    answer signal); the question signals are decided before generation (``check_question``)."""
    thresholds = any(getattr(abstention, f"min_{name}") is not None for name in ANSWER_SIGNALS)
    return grounding.mode == "strict" or (abstention.enabled and thresholds)


__all__ = [
    "GroundingConfig",
    "GroundingMode",
    "Grounding",
    "SentenceCheck",
    "ClaimCheck",
    "Quantity",
    "quantities",
    "ids",
    "answer_sentences",
    "check_grounding",
    "strict_answer",
    "checked_reply",
    "may_rewrite",
]
