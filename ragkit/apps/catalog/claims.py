"""A deterministic numeric-claim checker: every number with a unit in an answer must be a catalog value.

Units recognised: litres (L, l, litre(s), liter(s), Liter(n)), °C, money (EUR, €, USD, $, CHF), kWh and mm
(also ``W × D × H mm`` triples). A claim is checked against the products the answer names, or against the
whole catalog when it names none; a price must also match the product's currency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Literal

from ragkit.apps.catalog.catalog import Catalog, Product

Kind = Literal["volume", "temperature", "price", "energy", "length"]

_NUM = r"[-−+]?\d+(?:[.,]\d+)?"
_MONEY_NUM = r"\d{1,3}(?:[ ,.'’]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_CURRENCY = {"eur": "EUR", "€": "EUR", "euro": "EUR", "usd": "USD", "$": "USD", "chf": "CHF"}

_TEMP_RANGE = re.compile(rf"(?P<a>{_NUM})\s*(?:°\s*C)?\s*(?:to|bis|and|und|–|—|\.\.)\s*(?P<b>{_NUM})\s*°\s*C")
_TEMP = re.compile(rf"(?P<a>{_NUM})\s*°\s*C\b")
_DIMS = re.compile(r"(?P<a>\d+(?:[.,]\d+)?)\s*[×xX]\s*(?P<b>\d+(?:[.,]\d+)?)\s*[×xX]\s*(?P<c>\d+(?:[.,]\d+)?)\s*mm\b")
_LENGTH = re.compile(r"(?<![\w.,])(?P<a>\d+(?:[.,]\d+)?)\s*mm\b")
_VOLUME = re.compile(r"(?<![\w.,])(?P<a>\d+(?:[.,]\d+)?)\s*(?:litres?|liters?|litern?|l)\b", re.IGNORECASE)
_ENERGY = re.compile(r"(?<![\w.,])(?P<a>\d+(?:[.,]\d+)?)\s*kWh\b", re.IGNORECASE)
_PRICE_AFTER = re.compile(rf"(?<![\w.,])(?P<a>{_MONEY_NUM})\s*(?P<cur>EUR|€|USD|\$|CHF|Euro)(?!\w)", re.IGNORECASE)
_PRICE_BEFORE = re.compile(rf"(?P<cur>EUR|€|USD|\$|CHF)\s*(?P<a>{_MONEY_NUM})(?![\d])", re.IGNORECASE)

_FIELDS: dict[Kind, tuple[str, ...]] = {
    "volume": ("volume_l", "freezer_volume_l"),
    "temperature": ("temp_min_c", "temp_max_c"),
    "energy": ("energy_kwh_per_day",),
    "length": ("width_mm", "depth_mm", "height_mm"),
    "price": ("price",),
}


@dataclass(frozen=True, slots=True)
class Claim:
    """One number with its unit as written in the answer, and whether a catalog value backs it."""

    kind: Kind
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


def _float(text: str) -> float:
    return float(text.replace("−", "-").replace("+", "").replace(",", ".").replace(" ", ""))


def _money(text: str) -> float:
    t = text.replace(" ", "").replace("'", "").replace("’", "")
    if "," in t and "." in t:
        decimal = "," if t.rfind(",") > t.rfind(".") else "."
        t = t.replace("." if decimal == "," else ",", "").replace(decimal, ".")
    elif "," in t or "." in t:
        sep = "," if "," in t else "."
        head, _, tail = t.rpartition(sep)
        t = head.replace(sep, "") + ("" if len(tail) == 3 else ".") + tail
    return float(t)


def extract_claims(answer: str) -> list[Claim]:
    """Numbers with units, in order; each span counts once (ranges and triples before single values)."""
    taken: list[tuple[int, int]] = []
    out: list[tuple[int, Claim]] = []

    def free(m: re.Match[str]) -> bool:
        return not any(m.start() < e and s < m.end() for s, e in taken)

    def add(m: re.Match[str], claims: Iterable[Claim]) -> None:
        taken.append(m.span())
        out.extend((m.start(), c) for c in claims)

    for m in _TEMP_RANGE.finditer(answer):
        if free(m):
            add(m, [Claim("temperature", _float(m["a"]), m.group(0)), Claim("temperature", _float(m["b"]), m.group(0))])
    for m in _TEMP.finditer(answer):
        if free(m):
            add(m, [Claim("temperature", _float(m["a"]), m.group(0))])
    for m in _DIMS.finditer(answer):
        if free(m):
            add(m, [Claim("length", _float(m[k]), m.group(0)) for k in "abc"])
    for pattern, kind in ((_LENGTH, "length"), (_VOLUME, "volume"), (_ENERGY, "energy")):
        for m in pattern.finditer(answer):
            if free(m):
                add(m, [Claim(kind, _float(m["a"]), m.group(0))])  # type: ignore[arg-type]
    for pattern in (_PRICE_AFTER, _PRICE_BEFORE):
        for m in pattern.finditer(answer):
            if free(m):
                add(m, [Claim("price", _money(m["a"]), m.group(0), currency=_CURRENCY[m["cur"].lower()])])
    return [c for _, c in sorted(out, key=lambda t: t[0])]


def _close(a: float, b: float) -> bool:
    # Answers round (2490.00 vs 2490, 1.1 vs 1.10); anything beyond rounding is a wrong number.
    return abs(a - b) <= max(0.051, abs(b) * 0.005)


def _backed(claim: Claim, products: Iterable[Product]) -> bool:
    for p in products:
        if claim.kind == "price" and claim.currency and p.currency and claim.currency != p.currency.upper():
            continue
        for name in _FIELDS[claim.kind]:
            value = getattr(p, name)
            if value is not None and _close(claim.value, float(value)):
                return True
        if (
            claim.kind == "energy"
            and p.power_rate is not None
            and (p.power_unit or "").lower().startswith("kwh")
            and _close(claim.value, float(p.power_rate))
        ):
            return True
    return False


def check_claims(answer: str, catalog: Catalog) -> ClaimCheck:
    """Check every numeric claim of ``answer`` against the named products (or the whole catalog).

    Products count as named by id or by full name.
    """
    named = catalog.find_mentions(answer)
    pool = [catalog.products[i] for i in named] if named else list(catalog)
    claims = tuple(Claim(c.kind, c.value, c.text, c.currency, _backed(c, pool)) for c in extract_claims(answer))
    return ClaimCheck(claims, tuple(named), tuple(c for c in claims if not c.ok))


class ClaimChecker:
    """``check_claims`` bound to a catalog: a callable for ``run_answer_eval(checker=...)``."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def __call__(self, answer: str) -> ClaimCheck:
        return check_claims(answer, self.catalog)


__all__ = ["Claim", "ClaimCheck", "ClaimChecker", "extract_claims", "check_claims"]
