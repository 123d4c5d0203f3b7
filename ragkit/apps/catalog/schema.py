"""The catalog schema: every attribute typed, with unit, English and German labels and synonyms, and whether it can be
filtered or sorted. Tools, filters, rendering, the claim checker and question understanding all read it; nothing else
in the bot knows what a catalog's columns are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

from ragkit.apps.catalog.settings import AttributeConfig, CatalogConfig, DirectionConfig, Lang
from ragkit.apps.catalog.units import canonical_unit, fold

Kind = Literal["number", "text", "list", "bool"]
Way = Literal["higher", "lower"]
LANGS: tuple[Lang, ...] = ("en", "de")
BOOL_WORDS = {"yes": True, "no": False, "true": True, "false": False, "ja": True, "nein": False, "y": True, "n": False}
MAX_ENUM_VALUES = 60  # text attributes with more distinct values are not offered as filter values

# What people call the two roles every catalog has; a config's maker_label/category_label/…_synonyms add to these.
_ROLE_WORDS: dict[str, dict[Lang, tuple[str, list[str]]]] = {
    "manufacturer": {
        "en": ("manufacturer", ["maker", "brand", "who makes", "made by", "manufactured by", "who produces", "vendor"]),
        "de": (
            "Hersteller",
            ["marke", "wer stellt", "hergestellt", "wer baut", "produziert von", "von welchem hersteller"],
        ),
    },
    "category": {
        "en": ("type", ["category", "kind", "what kind", "what type", "which type", "product type"]),
        "de": ("Typ", ["kategorie", "art", "bauart", "geräteart", "was für ein", "welcher typ", "produktart"]),
    },
}
# Words that make "more"/"less" of whichever attribute the question names.
# Declined forms ("größten", "geringsten") match these through the phrase index's German endings.
GENERIC_WAY: dict[Way, dict[Lang, list[str]]] = {
    "higher": {
        "en": ["more", "most", "higher", "highest", "greater", "greatest", "max", "maximum", "longer", "longest"],
        "de": [
            *("mehr", "meiste", "am meisten", "höher", "höchste", "am höchsten", "größer", "größte", "am größten"),
            *("länger", "längste", "am längsten", "maximal", "maximale"),
        ],
    },
    "lower": {
        "en": ["less", "least", "lower", "lowest", "fewer", "fewest", "min", "minimum", "shorter", "shortest"],
        "de": [
            *("weniger", "wenigste", "am wenigsten", "niedriger", "niedrigste", "am niedrigsten", "kleiner"),
            *("kleinste", "am kleinsten", "kürzer", "kürzeste", "am kürzesten", "geringer", "geringste"),
            *("am geringsten", "minimal", "minimale"),
        ],
    },
}


@dataclass
class Attribute:
    """One askable attribute (or group of attributes) of the catalog's products."""

    name: str
    kind: Kind
    config: AttributeConfig
    column: str | None = None  # None: a group, or a role the catalog reads itself
    role: str | None = None
    members: tuple[str, ...] = ()
    is_range: bool = False
    units: set[str] = field(default_factory=set)  # canonical units seen in the data (or the fixed unit)
    values: list[str] = field(default_factory=list)  # distinct text values, when few enough to enumerate

    @property
    def is_group(self) -> bool:
        return bool(self.members)

    @property
    def unit(self) -> str | None:
        return self.config.unit

    @property
    def filterable(self) -> bool:
        if self.config.filterable is not None:
            return self.config.filterable
        if self.is_group:
            return False
        return self.kind in ("number", "bool") or bool(self.values) or self.kind == "list"

    @property
    def sortable(self) -> bool:
        if self.config.sortable is not None:
            return self.config.sortable
        return self.is_range if self.is_group else self.kind == "number"

    def label(self, lang: Lang) -> str:
        return self.config.label.get(lang) or self.config.label.get("en") or self.name.replace("_", " ")

    def words(self) -> list[tuple[str, Lang]]:
        """Every name buyers may use for it: labels and synonyms, each with its language."""
        out = [(self.label(lang), lang) for lang in LANGS if self.config.label.get(lang)]
        out += [(w, lang) for lang in LANGS for w in self.config.synonyms.get(lang, [])]
        if not self.config.label:
            out.append((self.name.replace("_", " "), "en"))
        return out

    def direction(self, way: Way) -> DirectionConfig | None:
        return self.config.higher if way == "higher" else self.config.lower

    def unit_label(self, unit: str | None, lang: Lang) -> str:
        """How a unit is written in answers: the configured label, else the unit as the data write it."""
        if not unit:
            return ""
        labels = self.config.unit_labels.get(unit) or next(
            (v for k, v in self.config.unit_labels.items() if canonical_unit(k) == canonical_unit(unit)), None
        )
        return (labels or {}).get(lang) or (labels or {}).get("en") or unit

    def value_label(self, value: Any, lang: Lang) -> str:
        if isinstance(value, bool):
            return ("ja" if value else "nein") if lang == "de" else ("yes" if value else "no")
        words = self.config.values.get(str(value))
        if words and words.get(lang):
            return words[lang][0]
        return str(value)


class CatalogSchema:
    """The attributes and groups of one catalog, and the vocabulary that finds them in questions."""

    def __init__(self, config: CatalogConfig, attributes: Iterable[Attribute]) -> None:
        self.config = config
        self.attributes: dict[str, Attribute] = {a.name: a for a in attributes}
        for name, group in config.groups.items():
            kinds = {self.attributes[m].kind for m in group.members}
            self.attributes[name] = Attribute(
                name,
                "number" if kinds == {"number"} else "text",
                group,
                members=tuple(group.members),
                is_range=group.range,
                units={u for m in group.members for u in self.attributes[m].units},
            )
        self.price = config.price

    # Lookups ---------------------------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Attribute:
        return self.attributes[name]

    def __contains__(self, name: object) -> bool:
        return name in self.attributes

    def get(self, name: str) -> Attribute | None:
        return self.attributes.get(name)

    def askable(self) -> list[str]:
        """Names a question can ask about: every attribute, group and role."""
        return list(self.attributes)

    def stored(self) -> list[Attribute]:
        """Attributes with a value per product (no groups)."""
        return [a for a in self.attributes.values() if not a.is_group]

    def filterable(self) -> list[str]:
        return [a.name for a in self.attributes.values() if a.filterable]

    def sortable(self) -> list[str]:
        return [a.name for a in self.attributes.values() if a.sortable]

    def sort_member(self, name: str, way: Way) -> str:
        """The stored attribute that ranks products on ``name`` (a range: low end for "lower", else high end)."""
        a = self.attributes[name]
        if a.is_group:
            return a.members[0] if way == "lower" else a.members[-1]
        return name

    def by_unit(self, unit: str) -> list[str]:
        """Stored numeric attributes whose values carry this canonical unit (or its numerator)."""
        base = unit.split("/", 1)[0]
        exact = [a.name for a in self.stored() if a.kind == "number" and unit in a.units]
        return exact or [
            a.name for a in self.stored() if a.kind == "number" and any(u.split("/", 1)[0] == base for u in a.units)
        ]

    def units(self) -> set[str]:
        return {u for a in self.stored() for u in a.units}

    # Vocabulary ------------------------------------------------------------------------------------------------

    def attribute_phrases(self) -> list[tuple[str, str]]:
        """(folded phrase, attribute) for every label and synonym, longest first."""
        pairs = {(fold(w), a.name) for a in self.attributes.values() for w, _ in a.words() if w.strip()}
        return sorted(pairs, key=lambda p: (-len(p[0]), p[1]))

    def direction_phrases(self) -> list[tuple[str, str, Way]]:
        """(folded phrase, attribute, way) for every attribute's own comparatives and superlatives, longest first."""
        out = set()
        for a in self.attributes.values():
            for way in ("higher", "lower"):
                d = a.direction(way)  # type: ignore[arg-type]
                if d is not None:
                    out.update((fold(w), a.name, way) for lang in LANGS for w in d.words.get(lang, []))
        return sorted(out, key=lambda p: (-len(p[0]), p[1]))

    def value_phrases(self) -> list[tuple[str, str, str]]:
        """(folded phrase, attribute, value) naming a text value of a filterable attribute, longest first."""
        out = set()
        for a in self.attributes.values():
            if a.kind not in ("text", "list") or not a.filterable or a.role:
                continue
            for value in a.values:
                if len(value) >= 3:  # a code such as "S" or "GE" is named by its configured words, not by itself
                    out.add((fold(value), a.name, value))
                for lang in LANGS:
                    out.update((fold(w), a.name, value) for w in a.config.values.get(value, {}).get(lang, []))
        return sorted(out, key=lambda p: (-len(p[0]), p[1]))


def role_attribute(role: str, config: CatalogConfig) -> Attribute:
    """The manufacturer or category as an askable text attribute, with default names in both languages."""
    own = config.maker_label if role == "manufacturer" else config.category_label
    label = {lang: own.get(lang) or _ROLE_WORDS[role][lang][0] for lang in LANGS}
    synonyms: dict[Lang, list[str]] = {lang: list(_ROLE_WORDS[role][lang][1]) for lang in LANGS}
    return Attribute(
        role,
        "text",
        AttributeConfig(label=label, synonyms=synonyms, filterable=False, sortable=False, describe=False),
        role=role,
    )


__all__ = [
    "Attribute",
    "CatalogSchema",
    "Kind",
    "Way",
    "LANGS",
    "BOOL_WORDS",
    "GENERIC_WAY",
    "MAX_ENUM_VALUES",
    "role_attribute",
]
