"""A deterministic numeric-claim checker: every number with a unit in an answer must be a catalog value.

Which units count and where their values live come from the catalog schema: a number with a unit (litres, °C, kWh,
mm, in, cubic feet, days, a currency …) is backed when some attribute with that unit has this value for one of the
products the answer names (by id, model, name or maker + model), or for any product when it names none. A price
must also carry the product's currency. Ranges ("2 °C to 8 °C") and tuples ("600 × 640 × 1650 mm") count per
number; product names ("Apex CB 18L") are names, not claims.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from ragkit.apps.catalog.catalog import Catalog, Product
from ragkit.apps.catalog.resolve import Resolver
from ragkit.apps.catalog.units import CURRENCIES, base_unit, canonical_unit, find_quantities, parse_number

_NUM = r"[-−]?\d+(?:[.,]\d+)?"
_RANGE = re.compile(rf"(?<![\d.,])({_NUM})\s*(?:to|bis|and|und|–|—|\.\.)\s*(?={_NUM}\s*°\s*C)", re.IGNORECASE)
_TUPLE = re.compile(rf"({_NUM})\s*[×xX]\s*({_NUM})\s*[×xX]\s*(?=({_NUM})\s*(\w+))")


@dataclass(frozen=True, slots=True)
class Claim:
    """One number with its unit as written in the answer, and whether a catalog value backs it."""

    kind: str  # the canonical unit
    value: float
    text: str
    currency: str | None = None
    ok: bool = False


@dataclass(frozen=True)
class ClaimCheck:
    """Every numeric claim of one answer; ``wrong`` lists those no catalog value backs."""

    claims: tuple[Claim, ...] = ()
    products: tuple[str, ...] = ()
    wrong: tuple[Claim, ...] = field(default=())

    @property
    def n_claims(self) -> int:
        return len(self.claims)

    @property
    def n_correct(self) -> int:
        return sum(c.ok for c in self.claims)

    @property
    def correct_share(self) -> float:
        return self.n_correct / self.n_claims if self.claims else 1.0

    @property
    def ok(self) -> bool:
        return not self.wrong

    def as_dict(self) -> dict:
        return {"n": self.n_claims, "wrong": [c.text for c in self.wrong], "products": list(self.products)}


def extract_claims(answer: str, units: Iterable[str] = ()) -> list[Claim]:
    """Numbers with units, in order: plain quantities, the first end of ranges and the leading parts of tuples."""
    out: list[tuple[int, Claim]] = []
    for q in find_quantities(answer, tuple(units)):
        cur = q.unit if q.unit in CURRENCIES else None
        value = q.money_value if cur else q.value
        out.append((q.start, Claim(q.unit, value, q.text, cur)))
    for m in _RANGE.finditer(answer):
        out.append((m.start(), Claim("°c", parse_number(m.group(1)), m.group(0).strip())))
    for m in _TUPLE.finditer(answer):
        unit = canonical_unit(m.group(4))
        for k in (1, 2):
            out.append((m.start(k), Claim(unit, parse_number(m.group(k)), m.group(0).strip())))
    return [c for _, c in sorted(out, key=lambda t: t[0])]


def _close(a: float, b: float) -> bool:
    # Answers round (2490.00 vs 2490, 1.1 vs 1.10); anything beyond rounding is a wrong number.
    return abs(a - b) <= max(0.051, abs(b) * 0.005)


class ClaimChecker:
    """Checks answers against one catalog; a callable for ``run_answer_eval(checker=...)``."""

    def __init__(self, catalog: Catalog, resolver: Resolver | None = None) -> None:
        self.catalog = catalog
        self.resolver = resolver or Resolver(catalog)
        self._numeric = [a for a in catalog.schema.stored() if a.kind == "number"]

    def _backed(self, claim: Claim, products: Iterable[Product]) -> bool:
        base = base_unit(claim.kind)
        for p in products:
            for a in self._numeric:
                unit = canonical_unit(p.units.get(a.name) or a.unit)
                if not unit or base_unit(unit) != base:
                    continue
                value = p.values.get(a.name)
                if isinstance(value, (int, float)) and _close(claim.value, float(value)):
                    return True
        return False

    def __call__(self, answer: str) -> ClaimCheck:
        ents = self.resolver.find(answer)
        named = ents.product_ids()
        # Names are not claims: blank them before reading numbers ("Apex CB 18L" holds no 18-litre claim).
        spans = [(m.start, m.end) for m in ents.products]
        text = answer
        if spans:
            from ragkit.apps.catalog.phrases import tokenize

            toks = tokenize(answer)
            chars = list(answer)
            for i, j in spans:
                for k in range(toks[i].word_start, toks[j - 1].word_end):
                    chars[k] = " " if not chars[k].isspace() else chars[k]
            text = "".join(chars)
        pool = [self.catalog.products[i] for i in named] if named else list(self.catalog)
        units = self.catalog.schema.units()
        claims = tuple(
            Claim(c.kind, c.value, c.text, c.currency, self._backed(c, pool))
            for c in extract_claims(text, tuple(units))
            if _known(c.kind, units)
        )
        return ClaimCheck(claims, tuple(named), tuple(c for c in claims if not c.ok))


def _known(unit: str, units: set[str]) -> bool:
    """Only units some catalog attribute (or a currency) has are claims this catalog can check."""
    base = base_unit(unit)
    return unit in CURRENCIES or any(base_unit(u) == base for u in units)


def check_claims(answer: str, catalog: Catalog) -> ClaimCheck:
    """Check every numeric claim of ``answer`` against the named products (or the whole catalog)."""
    return ClaimChecker(catalog)(answer)


__all__ = ["Claim", "ClaimCheck", "ClaimChecker", "extract_claims", "check_claims"]
