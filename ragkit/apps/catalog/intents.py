"""What a catalog question asks, parsed from the question alone: ids, attributes, comparisons, filters, language."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ragkit.apps.catalog.catalog import Catalog
from ragkit.apps.catalog.tools import CatalogTools, SortKey
from ragkit.language import Lang, is_german

_W = r"(?<![\w-])"
ATTRIBUTES: dict[str, str] = {
    "price": r"price|prices|cost|costs|preis|preise|kostet|kosten|teuer",
    "volume": r"volume|capacity|litres?|liters?|how big|how large|volumen|inhalt|nutzinhalt|liter|fassungsvermögen|wie groß",
    "temperature": r"temperatures?|temp|°c|how cold|temperaturbereich|temperatur|wie kalt",
    "energy": r"energy|power|kwh|consumption|energieverbrauch|energie|verbrauch|strom\w*",
    "dimensions": r"dimensions?|size|width|height|depth|how tall|wide|maße|abmessungen?|breite|höhe|tiefe",
    "door": r"door|doors|tür|türe",
    "alarms": r"alarms?|alarme?",
    "monitoring": r"monitoring|logger|data logger|überwachung|datenlogger",
    "manufacturer": r"manufacturer|who makes|made by|brand|hersteller|marke",
    "category": r"what kind|what type|which type|category|kategorie|art von|was für ein",
}
UNSUPPORTED = (
    r"warrant\w*|guarantee|garantie|gewährleistung|weigh\w*|gewicht|wiegt|wie schwer|noise|loud\w*|lautstärke|dezibel|db"
    r"|delivery|lieferzeit|liefer\w*|refrigerant|kältemittel|shel(?:f|ves)|einlegeböden|colou?r|farbe|voltage"
    r"|spannung|volt|in stock|lagerbestand|auf lager|discount|rabatt|certifi\w*|zertifi\w*|service contract"
)
ADVICE = (
    r"suitable|suited|good for|best for|recommend\w*|should i use|for storing|to store|geeignet\w*|eignet|"
    r"empfiehl\w*|empfehl\w*|zur lagerung|für die lagerung|zum lagern"
)
COMPARE = r"compare|comparison|versus|vs\.?|which (?:one|of)|vergleich\w*|welche[rs]? (?:von|der beiden)|\bor\b|oder"
DIRECTIONS: list[tuple[str, str, str]] = [  # regex, attribute, max|min
    (r"cheaper|less expensive|lower price|günstiger|billiger|preiswerter", "price", "min"),
    (r"more expensive|pricier|higher price|teurer", "price", "max"),
    (r"colder|lower temperature|kälter", "temperature", "min"),
    (r"less energy|more efficient|lower (?:energy|power)|sparsamer|weniger strom|weniger energie", "energy", "min"),
    (r"more energy|more power|mehr strom|mehr energie", "energy", "max"),
    (r"larger|bigger|more volume|more space|greater|größer|mehr volumen|mehr platz|mehr inhalt", "volume", "max"),
    (r"smaller|less volume|kleiner|weniger volumen", "volume", "min"),
]
SUPERLATIVES: list[tuple[str, SortKey, bool]] = [  # regex, sort field, descending
    (r"cheapest|least expensive|lowest price|günstigste\w*|billigste\w*|preiswerteste\w*", "price", False),
    (r"most expensive|priciest|highest price|teuerste\w*", "price", True),
    (r"largest|biggest|most volume|größte\w*|grösste\w*", "volume_l", True),
    (r"smallest|kleinste\w*", "volume_l", False),
    (r"coldest|lowest temperature|kälteste\w*", "temp_min_c", False),
    (r"most efficient|lowest energy|least energy|sparsamste\w*", "energy_kwh_per_day", False),
]
CATEGORY_TERMS: list[tuple[str, str]] = [  # regex on the question, substring of a category name
    (r"ultra[- ]?low|ult|ultratief\w*", "ultra-low"),
    (r"vaccines?|impfstoff\w*", "vaccine"),
    (r"blood\w*|blutkonserv\w*|blutbank\w*", "blood bank"),
    (r"plasma\w*", "plasma"),
    (r"pharmacy|pharmacies|medications?|medikament\w*|apothek\w*", "pharmacy"),
    (r"explosion[- ]proof|explosionsgeschützt\w*|ex-geschützt\w*", "explosion-proof"),
    (r"chromatography|chromatogra\w*", "chromatography"),
    (r"incubators?|\w*brutschr[aä]nk\w*", "incubator"),
    (r"combi|combined|kombination|kühl-gefrier\w*", "combined"),
    (r"lab(?:oratory)? (?:refrigerators?|fridges?)|laborkühlschr[aä]nk\w*", "laboratory refrigerator"),
    (r"lab(?:oratory)? freezers?|labortiefkühl\w*|laborgefrier\w*", "laboratory freezer"),
    (r"freezers?|\w*gefrier\w*|\w*tiefkühl\w*", "freezer"),
    # An Ultratiefkühlschrank is a freezer: German compounds with tiefkühl/gefrier do not count as refrigerators.
    (r"refrigerators?|fridges?|(?!\w*(?:tiefkühl|gefrier))\w*kühlschr[aä]nk\w*", "refrigerator"),
]
_NUMBER = r"(\d+(?:[.,]\d+)?)"
_LITRES = r"\s*(?:l|litres?|liters?|litern?)\b"
_MONEY = r"\s*(€|\$|eur|euros?|usd|chf|dollars?|franken)"
_LOW = r"at least|minimum|min\.?|more than|over|above|from|mindestens|über|mehr als|ab|>=|≥|>"
_HIGH = r"at most|maximum|max\.?|under|below|less than|up to|no more than|höchstens|unter|weniger als|bis zu|bis|maximal|<=|≤|<"
_CURRENCY_WORDS = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "$": "USD",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "chf": "CHF",
    "franken": "CHF",
}


def _has(pattern: str, text: str) -> bool:
    return re.search(rf"{_W}(?:{pattern})(?![\w])", text) is not None


def _num(s: str) -> float:
    return float(s.replace(",", "."))


@dataclass
class Intent:
    """What a question asks, parsed from the question text alone."""

    kind: Literal["not_found", "product", "compare", "filter", "unsupported", "free"]
    lang: Lang
    ids: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    direction: tuple[str, str] | None = None
    constraints: dict[str, Any] = field(default_factory=dict)
    categories: list[str] | None = None
    sort: tuple[SortKey, bool] | None = None
    count_only: bool = False


def parse_question(question: str, catalog: Catalog, tools: CatalogTools) -> Intent:
    """Parse a question into an ``Intent``; no model is involved."""
    q = " ".join(question.lower().split())
    lang: Lang = "de" if is_german(question) else "en"
    ids = catalog.find_ids(question)
    unknown = catalog.unknown_ids(question)
    attributes = [name for name, pattern in ATTRIBUTES.items() if _has(pattern, q)]
    if not attributes and _has(r"how much|wie viel|wieviel", q) and not _has(UNSUPPORTED, q):
        attributes = ["price"]  # "how much is X?" asks the price; "how much energy …" asks the energy
    if ids:
        if _has(UNSUPPORTED, q) and not attributes:
            return Intent("unsupported", lang, ids, unknown)
        direction = next(((a, d) for pattern, a, d in DIRECTIONS if _has(pattern, q)), None)
        if len(ids) >= 2 and (direction or _has(COMPARE, q)):
            return Intent("compare", lang, ids, unknown, attributes, direction)
        return Intent("product", lang, ids, unknown, attributes)
    if unknown:
        return Intent("not_found", lang, ids, unknown)
    constraints: dict[str, Any] = {}
    m = re.search(rf"(?:between|zwischen)\s*{_NUMBER}(?:{_LITRES})?\s*(?:and|und)\s*{_NUMBER}{_LITRES}", q)
    if m:
        constraints["min_volume"], constraints["max_volume"] = _num(m.group(1)), _num(m.group(2))
    for pattern, key in (
        (rf"(?:{_LOW})\s*{_NUMBER}{_LITRES}", "min_volume"),
        (rf"{_NUMBER}{_LITRES}\s*(?:or more|oder mehr|und mehr|\+)", "min_volume"),
        (rf"(?:{_HIGH})\s*{_NUMBER}{_LITRES}", "max_volume"),
    ):
        m = re.search(pattern, q)
        if m:
            constraints.setdefault(key, _num(m.group(1)))
    for side, key in ((_HIGH, "max_price"), (_LOW, "min_price")):
        m = re.search(rf"(?:{side})\s*{_NUMBER}{_MONEY}", q) or re.search(rf"(?:{side})\s*(€|\$)\s*{_NUMBER}", q)
        if m:
            a, b = m.groups()
            amount, cur = (a, b) if a[0].isdigit() else (b, a)
            constraints[key] = _num(
                amount.replace(".", "").replace(",", "") if re.fullmatch(r"\d{1,3}[.,]\d{3}", amount) else amount
            )
            constraints["currency"] = _CURRENCY_WORDS.get(cur.rstrip("s") if cur not in _CURRENCY_WORDS else cur, "EUR")
    m = re.search(r"([-−]\s?\d+|\d+)\s*°\s*c", q)
    if m:
        constraints["reaches_temp_c"] = _num(m.group(1).replace("−", "-").replace(" ", ""))
    for maker in catalog.manufacturers():
        first = maker.lower().split()[0]
        if maker.lower() in q or (len(first) >= 5 and _has(re.escape(first), q)):
            constraints["manufacturer"] = maker
            break
    if _has(r"glass[- ]doors?|glass|glastür\w*|glas", q):
        constraints["door"] = "glass"
    elif _has(r"solid[- ]doors?|volltür\w*", q):
        constraints["door"] = "solid"
    terms = [sub for pattern, sub in CATEGORY_TERMS if _has(pattern, q)]
    categories = None
    if terms:
        categories = [c for c in catalog.categories() if all(t in c.lower() for t in terms)]
    sort = next(((key, desc) for pattern, key, desc in SUPERLATIVES if _has(pattern, q)), None)
    count_only = _has(r"how many|wie viele|anzahl", q)
    listing = _has(r"which|list|show|what|are there|do you have|welche\w*|zeig\w*|gibt es|habt ihr|haben sie|liste", q)
    numeric = any(k in constraints for k in ("min_volume", "max_volume", "min_price", "max_price", "reaches_temp_c"))
    specific = [t for t in terms if t not in ("freezer", "refrigerator")]
    if _has(ADVICE, q) and not (numeric or sort or count_only or specific):
        return Intent(
            "free", lang, attributes=attributes
        )  # "which fridge suits X?" needs the descriptions, not a filter
    if numeric or sort or count_only or ((terms or constraints) and listing and not attributes):
        if _has(UNSUPPORTED, q):
            return Intent("unsupported", lang, ids, unknown)
        return Intent(
            "filter",
            lang,
            constraints=constraints,
            categories=categories,
            sort=sort,
            count_only=count_only,
            attributes=attributes,
        )
    if _has(UNSUPPORTED, q):
        return Intent("unsupported", lang)
    return Intent("free", lang, attributes=attributes)


__all__ = ["Intent", "parse_question"]
