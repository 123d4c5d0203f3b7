"""Units and quantities: the words for a unit (EN/DE), one canonical form per unit, numbers with units in text.

A unit as a catalog states it ("liters/day", "KwH/day", "ft3", "EUR") and as a buyer writes it ("litres per day",
"kWh im Jahr", "cubic feet", "€") reduce to one canonical form ("l/day", "kwh/day", "ft3", "eur"), so questions,
tool arguments, rendered answers and the claim checker compare units the same way.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Canonical unit -> the ways it is written (lower case). Currencies are units too.
UNIT_WORDS: dict[str, tuple[str, ...]] = {
    "l": ("l", "litre", "litres", "liter", "liters", "litern", "ltr"),
    "ml": ("ml", "millilitre", "millilitres", "milliliter", "milliliters"),
    "kwh": ("kwh", "kilowatt hours", "kilowatt-hours", "kilowattstunden"),
    "kw": ("kw", "kilowatt", "kilowatts"),
    "w": ("w", "watt", "watts"),
    "kg": ("kg", "kilogram", "kilograms", "kilogramm", "kilo", "kilos"),
    "°c": ("°c", "° c", "degrees celsius", "grad celsius", "°"),
    "mm": ("mm", "millimetre", "millimetres", "millimeter", "millimeters"),
    "cm": ("cm", "centimetre", "centimetres", "zentimeter"),
    "in": ("in", "inch", "inches", "zoll", '"', "″"),
    "ft3": ("ft3", "ft³", "cu ft", "cu. ft.", "cu.ft.", "cubic feet", "cubic foot", "kubikfuß", "kubikfuss"),
    "m3": ("m3", "m³", "cubic metres", "cubic meters", "kubikmeter"),
    "day": ("day", "days", "tag", "tage", "tagen"),
    "h": ("h", "hours", "hour", "stunden", "stunde"),
    "yr": ("yr", "year", "years", "jahr", "jahre", "jahren"),
    "%": ("%", "percent", "prozent"),
    "eur": ("eur", "€", "euro", "euros"),
    "usd": ("usd", "$", "us$", "dollar", "dollars"),
    "gbp": ("gbp", "£", "pound", "pounds", "pfund"),
    "chf": ("chf", "franken"),
    "sek": ("sek", "kronor", "kronen"),
}
CURRENCIES = frozenset({"eur", "usd", "gbp", "chf", "sek"})
# Units written before the number ("€ 99", "$4990").
_PREFIX_UNITS = {
    "€": "eur",
    "$": "usd",
    "£": "gbp",
    "us$": "usd",
    "eur": "eur",
    "usd": "usd",
    "gbp": "gbp",
    "chf": "chf",
}
# Ways to say "per <period>" after a unit.
_PER = {
    "day": ("/day", "/d", " per day", " a day", " each day", " pro tag", " am tag", " je tag", "/tag", " täglich"),
    "yr": ("/yr", "/year", "/a", " per year", " a year", " each year", " pro jahr", " im jahr", " je jahr", "/jahr"),
    "charge": ("/charge", " per charge", " pro ladung"),
}
_ALIAS = {w: canon for canon, words in UNIT_WORDS.items() for w in words}
PERIODS = _PER


def fold(text: str) -> str:
    """NFKC, lower case, typographic quotes and dashes made plain: the form every matcher compares."""
    t = unicodedata.normalize("NFKC", text).lower()
    return t.replace("’", "'").replace("‘", "'").replace("–", "-").replace("—", "-").replace("−", "-")


@lru_cache(maxsize=4096)
def canonical_unit(unit: str | None) -> str:
    """The canonical form of a unit as a catalog or a person writes it: "liters/day" -> "l/day", "€" -> "eur"."""
    if not unit:
        return ""
    u = " ".join(fold(unit).split())
    for period, forms in _PER.items():
        for form in forms:
            if u.endswith(form.strip() if form.startswith("/") else form):
                head = u[: len(u) - len(form.strip() if form.startswith("/") else form)].strip()
                return f"{_ALIAS.get(head, head)}/{period}"
    return _ALIAS.get(u, u)


def base_unit(unit: str) -> str:
    """The numerator of a canonical unit: "l/day" -> "l"."""
    return unit.split("/", 1)[0]


def parse_number(text: str) -> float:
    """A number as people write it: 54,5 and 54.5 alike; 1,500 and 2,490.00 with thousands; a typographic minus.

    A lone dot is always a decimal point (0.255); "1.500 EUR" as money is ``Quantity.money_value``.
    """
    t = fold(text).replace(" ", "").replace("'", "").replace("+", "")
    if "," in t and "." in t:
        decimal = "," if t.rfind(",") > t.rfind(".") else "."
        return float(t.replace("." if decimal == "," else ",", "").replace(decimal, "."))
    for sep in (",", "."):
        if t.count(sep) > 1:
            return float(t.replace(sep, ""))
    if "," in t:
        head, tail = t.split(",")
        thousands = len(tail) == 3 and head.lstrip("-") not in ("", "0")
        return float(head + tail if thousands else f"{head}.{tail}")
    return float(t)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number with a unit found in a text: where, the raw text, the value and the canonical unit."""

    start: int
    end: int
    text: str
    number: str
    value: float
    unit: str

    @property
    def money_value(self) -> float:
        """The value read as money: "1.500 EUR" is 1500, not 1.5."""
        if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", self.number):
            return float(self.number.replace(".", ""))
        return self.value


_NUM = r"[-−+]?\d{1,3}(?:[ ,.'’]\d{3})+(?:[.,]\d+)?(?!\d)|[-−+]?\d+(?:[.,]\d+)?"


def _alternatives(words: set[str]) -> str:
    parts = []
    for w in sorted(words, key=len, reverse=True):
        esc = re.escape(w).replace(r"\ ", r"\s*")
        # "in" must end a word and not start a phrase ("2 in the list"); words end on a word boundary.
        if w == "in":
            parts.append(r"in(?![\w])(?!\s+[^\W\d_])")
        elif w[-1].isalnum():
            parts.append(esc + r"(?![\w])")
        else:
            parts.append(esc)
    return "|".join(parts)


@lru_cache(maxsize=64)
def _quantity_pattern(extra: tuple[str, ...]) -> re.Pattern[str]:
    units = _alternatives(set(_ALIAS) | {fold(e) for e in extra})
    per = _alternatives({f for forms in _PER.values() for f in forms})
    prefix = "|".join(re.escape(p) for p in sorted(_PREFIX_UNITS, key=len, reverse=True))
    return re.compile(
        rf"(?<![\w.,])(?:(?P<num>{_NUM})\s*(?P<unit>(?:{units})(?:{per})?)|(?P<pre>{prefix})\s*(?P<num2>{_NUM}))",
        re.IGNORECASE,
    )


def find_quantities(text: str, extra_units: tuple[str, ...] = ()) -> list[Quantity]:
    """Every number followed by a known unit (or preceded by a currency sign) in ``text``, in order."""
    folded = fold(text)
    source = text if len(folded) == len(text) else folded  # offsets index the text the match was made on
    out = []
    for m in _quantity_pattern(tuple(sorted(extra_units))).finditer(folded):
        number = m.group("num") or m.group("num2")
        unit = m.group("unit") or _PREFIX_UNITS[m.group("pre").lower()]
        try:
            value = parse_number(number)
        except ValueError:
            continue
        out.append(Quantity(m.start(), m.end(), source[m.start() : m.end()], number, value, canonical_unit(unit)))
    return out


def fmt(value: float | int | None) -> str:
    """A catalog number as written in answers: no trailing .0, no thousands separator."""
    if value is None:
        return "?"
    v = float(value)
    return str(int(v)) if v.is_integer() else f"{v:g}" if abs(v) < 1e15 else str(v)


__all__ = [
    "UNIT_WORDS",
    "PERIODS",
    "CURRENCIES",
    "Quantity",
    "fold",
    "canonical_unit",
    "base_unit",
    "parse_number",
    "find_quantities",
    "fmt",
]
