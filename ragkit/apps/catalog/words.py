"""The generic words of product questions in English and German: comparators, cues, and the attributes buyers
commonly ask about (to notice when a catalog has none of them). Catalog-specific words live in each catalog's schema."""

from __future__ import annotations

import re
from typing import Literal

from ragkit.apps.catalog.phrases import tokenize

Op = Literal["<", "<=", "=", ">=", ">"]


def _w(text: str) -> list[str]:
    return text.split("|")


# Comparator -> the words that put it before a number ("at least 100 l") or after it ("100 l or more").
COMPARATORS: dict[str, list[str]] = {
    ">=": _w("at least|minimum|min|from|or more|no less than|mindestens|ab|oder mehr|und mehr"),
    ">": _w(
        "more than|over|above|greater than|larger than|bigger than|exceeding|mehr als|über|"
        "größer als|höher als|oberhalb"
    ),
    "<=": _w("at most|maximum|max|up to|no more than|or less|höchstens|maximal|bis zu|bis|oder weniger"),
    "<": _w(
        "less than|under|below|smaller than|lower than|cheaper than|weniger als|unter|kleiner als|"
        "niedriger als|unterhalb|günstiger als"
    ),
}
CUES: dict[str, list[str]] = {
    "count": _w("how many|number of|count|wie viele|wieviele|anzahl|zahl der"),
    "list": _w(
        "which|list|show|what|are there|do you have|any|anything|all|welche|welcher|welches|zeig|"
        "zeige|gibt es|habt ihr|haben sie|liste|alle|irgendein"
    ),
    "compare": _w(
        "compare|comparison|versus|vs|or|than|which of|vergleich|vergleiche|oder|als|welcher von|welches von"
    ),
    "negation": _w(
        "without|no|not|lacking|except|excluding|other than|aren't|isn't|don't|doesn't|neither|nor|"
        "ohne|kein|keine|keinen|nicht|außer|ausgenommen|weder|noch"
    ),
    # after what it excludes: "cold boxes excluded", "Kühlboxen ausgenommen"
    "negation_after": _w("excluded|aside|not included|ausgenommen|ausgeschlossen|nicht eingeschlossen"),
}
# What buyers commonly ask about; a topic whose words no schema attribute claims is one the catalog lacks.
TOPICS: dict[str, list[str]] = {
    "price": _w(
        "price|cost|costs|how much does|how much is|expensive|cheap|cheaper|cheapest|preis|kostet|"
        "kosten|teuer|günstig|billig|was kostet"
    ),
    "warranty": _w("warranty|guarantee|garantie|gewährleistung"),
    "weight": _w("weight|weigh|weighs|heavy|gewicht|wiegt|schwer"),
    "noise": _w("noise|noisy|loud|quiet|decibel|db|lautstärke|wie laut|leise|dezibel|geräusch"),
    "colour": _w("colour|color|colours|colors|farbe|farben|in red|in rot"),
    "dimensions": _w("dimensions|dimension|measurements|maße|abmessungen"),
    "height": _w("height|how tall|höhe"),
    "width": _w("width|how wide|breite|wie breit"),
    "depth": _w("depth|how deep|tiefe|wie tief"),
    "delivery": _w("delivery|delivery time|shipping|lead time|lieferzeit|lieferung|versand"),
    "stock": _w("in stock|availability|lagerbestand|auf lager|lieferbar"),
    "refrigerant": _w("refrigerant|kältemittel"),
    "voltage": _w("voltage|volt|spannung"),
    "temperature": _w("temperature|temperature range|how cold|temperatur|temperaturbereich|wie kalt"),
    "shelves": _w("shelf|shelves|einlegeboden|einlegeböden"),
    "lock": _w("lock|lockable|schloss|abschließbar"),
    "company": _w("ceo|founder|headquarters|geschäftsführer|firmensitz"),
    "discount": _w("discount|rabatt"),
    "certification": _w("certification|certificate|zertifikat"),
}
# Words that continue a list of categories after a negation ("not cold boxes or carriers").
LIST_JOINERS = frozenset(t.norm for t in tokenize("or and nor oder und noch"))
BARE_NUMBER = re.compile(r"(?<![\w.,/-])[-−]?\d+(?:[.,]\d+)?(?![\w/*#-]|[.,]\d)")
BETWEEN = re.compile(r"\b(?:between|zwischen)\s+([-−]?\d+(?:[.,]\d+)?)\s*\w*\s+(?:and|und)\s+", re.IGNORECASE)
QUESTION_WORDS = frozenset(
    t.norm
    for t in tokenize("how much many what which who is are does do the a wie viel viele wieviel was welche welcher")
)

__all__ = ["Op", "COMPARATORS", "CUES", "TOPICS", "LIST_JOINERS", "BARE_NUMBER", "BETWEEN", "QUESTION_WORDS"]
