"""What a question names, read with the catalog's schema: products, makers, categories, attributes, numbers with
units and how they compare, text values, "more"/"less", counting and listing, and attributes the catalog lacks.

Nothing here knows a catalog's columns: every word comes from the schema (labels, synonyms, values, directions),
the resolver (product, maker and category names) or the generic EN/DE question words (``words``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ragkit.apps.catalog.catalog import Catalog
from ragkit.apps.catalog.lists import agreed_categories, complete_elisions, negated_spans
from ragkit.apps.catalog.phrases import Match, PhraseIndex, Token, forms, longest_first, tokenize
from ragkit.apps.catalog.phrases import key as phrase_key
from ragkit.apps.catalog.resolve import Entities, Resolver
from ragkit.apps.catalog.schema import GENERIC_WAY, LANGS, Way
from ragkit.apps.catalog.units import PERIODS, UNIT_WORDS, Quantity, canonical_unit, find_quantities, fold, parse_number
from ragkit.apps.catalog.words import BARE_NUMBER, BETWEEN, COMPARATORS, CUES, QUESTION_WORDS, TOPICS, Op
from ragkit.language import Lang, is_german


@dataclass(frozen=True)
class Condition:
    """A constraint read from the question: attribute (or candidate attributes by unit), operator, value, unit."""

    attributes: tuple[str, ...]
    op: Op
    value: float
    unit: str
    text: str


@dataclass
class Understanding:
    """Everything a question names, in the schema's terms."""

    question: str
    lang: Lang
    entities: Entities
    attributes: list[str] = field(default_factory=list)
    weak_attributes: list[str] = field(default_factory=list)
    tied_attributes: list[str] = field(default_factory=list)  # also a category word ("freezer")
    way: Way | None = None
    way_attribute: str | None = None
    conditions: list[Condition] = field(default_factory=list)
    values: list[tuple[str, str]] = field(default_factory=list)  # several of one attribute: any of them
    excluded_values: list[tuple[str, str]] = field(default_factory=list)  # named after a negation
    flags: list[tuple[str, bool]] = field(default_factory=list)
    units: list[str] = field(default_factory=list)  # units named without a number ("priced in EUR")
    categories: list[str] | None = None
    count: bool = False
    listing: bool = False
    compare: bool = False
    lacking: list[str] = field(default_factory=list)
    unknown_makers: list[str] = field(default_factory=list)

    def asked(self) -> list[str]:
        """The attributes the question asks about: named ones (a word that is also a category's counts when products
        are named), else the one its "more/less" word names."""
        named = self.attributes or self.weak_attributes or (self.tied_attributes if self.entities.products else [])
        if not named and self.way_attribute:
            return [self.way_attribute]
        return named

    def hints(self) -> dict[str, Any]:
        """A compact, JSON-ready summary (for the planner prompt and --details)."""
        out: dict[str, Any] = {}
        for key, value in (
            ("attributes", self.asked()),
            ("more_or_less", f"{self.way} {self.way_attribute or ''}".strip() if self.way else None),
            ("numbers", [f"{c.text} ({c.op}) -> {'/'.join(c.attributes)}" for c in self.conditions]),
            ("values", [f"{a}={v}" for a, v in self.values] + [f"{a}={'yes' if b else 'no'}" for a, b in self.flags]),
            ("units", self.units),
            ("categories", self.categories),
            ("makers", self.entities.maker_values()),
            ("count", self.count),
            ("lacking", self.lacking),
        ):
            if value:
                out[key] = value
        return out


class Reader:
    """Reads questions against one catalog's schema and names (built once per catalog)."""

    def __init__(self, catalog: Catalog, resolver: Resolver) -> None:
        self.catalog = catalog
        self.schema = catalog.schema
        self.resolver = resolver

    @cached_property
    def phrases(self) -> PhraseIndex[tuple[str, ...]]:
        """Every schema word, tagged: ("attr", name), ("way", name, way), ("value", name, value), cues, topics."""
        idx: PhraseIndex[tuple[str, ...]] = PhraseIndex(inflected=True)
        for phrase, name in self.schema.attribute_phrases():
            idx.add(phrase, ("attr", name))
        for phrase, name, value in self.schema.value_phrases():
            idx.add(phrase, ("value", name, value))
        for op, words in COMPARATORS.items():
            for w in words:
                idx.add(w, ("cmp", op))
        for cue, words in CUES.items():
            for w in words:
                idx.add(w, ("cue", cue))
        for topic, words in TOPICS.items():
            if topic not in self.covered_topics:
                for w in words:
                    idx.add(w, ("topic", topic))
        return idx

    @cached_property
    def ways(self) -> PhraseIndex[tuple[str, ...]]:
        """Words for more or less: each attribute's own ("cheaper", "taller") and the generic ones ("more")."""
        idx: PhraseIndex[tuple[str, ...]] = PhraseIndex(inflected=True)
        for phrase, name, way in self.schema.direction_phrases():
            idx.add(phrase, ("way", name, way))
        for way, words in GENERIC_WAY.items():
            for lang in LANGS:
                for w in words[lang]:
                    idx.add(w, ("generic", way))
        return idx

    @cached_property
    def unit_index(self) -> PhraseIndex[tuple[str, ...]]:
        """Unit words without a number: ("varying", u) for units that differ per row ("priced in EUR", "how many kWh
        per day"), ("fixed", u) for an attribute's one unit ("how many litres"), ("period",) for "per day" alone."""
        idx: PhraseIndex[tuple[str, ...]] = PhraseIndex()
        varying = {u for a in self.schema.stored() if a.config.unit_column for u in a.units}
        fixed = {canonical_unit(a.unit) for a in self.schema.stored() if a.unit and a.kind == "number"} - varying
        for written in PERIODS.values():
            for form in written:
                idx.add(form.strip("/ "), ("period",))
        for canon, words in UNIT_WORDS.items():
            words = tuple(w for w in words if len(w) > 2 or w in ("kw", "kg", "$", "€", "£"))
            for unit in sorted(u for u in varying if u.split("/")[0] == canon):
                for w in words:
                    period = unit.partition("/")[2]
                    if not period:  # "in EUR"; a unit per day needs its period ("kWh per day")
                        idx.add(w, ("varying", unit))
                    for form in PERIODS.get(period, ()):
                        idx.add(f"{w} {form.strip('/ ')}", ("varying", unit))
            for unit in sorted(u for u in fixed if u.split("/")[0] == canon):
                for w in words:
                    if w.replace(" ", "").isalpha():  # "litres", "inches", "days"; never "l", "in", "°"
                        idx.add(w, ("fixed", unit))
        return idx

    def _bare_numbers(self, question: str, toks: list[Token], taken: set[int]) -> list[Quantity]:
        """Numbers without a unit that no name or quantity holds ("cost less than 1000")."""
        out = []
        for m in BARE_NUMBER.finditer(question):
            ks = [k for k, t in enumerate(toks) if m.start() <= t.start < m.end()]
            if ks and not set(ks) & taken:
                out.append(Quantity(m.start(), m.end(), m.group(0), m.group(0), parse_number(m.group(0)), ""))
        return out

    @cached_property
    def covered_topics(self) -> set[str]:
        """Topics some schema attribute answers: one of the topic's words is an attribute's label or synonym."""
        phrases = {p for p, _ in self.schema.attribute_phrases()} | {p for p, _, _ in self.schema.direction_phrases()}
        keys = {" ".join(t.norm for t in tokenize(p)) for p in phrases}
        return {t for t, words in TOPICS.items() if any(" ".join(x.norm for x in tokenize(w)) in keys for w in words)}

    @cached_property
    def vocabulary(self) -> set[str]:
        """Every token of every schema and category phrase (to tell an unknown maker from a known word)."""
        words = {t for phrase, _ in self.schema.attribute_phrases() for t in phrase.split()}
        words |= {t.norm for c in self.catalog.categories() for t in tokenize(c)}
        return words

    @cached_property
    def _attribute_words(self) -> dict[str, set[str]]:
        """Attribute -> every word of its labels, synonyms and more/less words."""
        out: dict[str, set[str]] = {}
        for p, a in [*self.schema.attribute_phrases(), *((p, a) for p, a, _ in self.schema.direction_phrases())]:
            out.setdefault(a, set()).update(t.norm for t in tokenize(p))
        return out

    @cached_property
    def _single_words(self) -> set[str]:
        return self.phrases.single_words() | self.resolver.categories.single_words()

    def _misspelt_makers(self, toks: list[Token], ents: Entities, skip: set[int]) -> None:
        """A capitalised word that is no word of the schema and nearly a maker's name is that maker ("Vestfrsot")."""
        if ents.makers:
            return
        for k, t in enumerate(toks):
            if k in ents.taken or k in skip or not (t.norm.isalpha() and t.word[:1].isupper()):
                continue
            if t.norm in self.vocabulary or forms(t.norm) & self._single_words:
                continue
            makers = self.resolver.fuzzy_maker(t.norm)
            if makers:
                ents.makers.append(Match(k, k + 1, makers))
                ents.taken.add(k)
                ents.unknown = [x for x in ents.unknown if not x.start <= k < x.end]
                ents.unknown_makers = [w for w in ents.unknown_makers if fold(w).lower() != t.norm]

    def read(self, question: str) -> Understanding:
        toks = tokenize(question)
        lang: Lang = "de" if is_german(question) else "en"
        # Names first: a product name may hold what looks like a quantity ("Apex AICB 444 L", "Giostyle VC 2.6L").
        ents = self.resolver.find_names(question, toks)
        named = {k for m in ents.products for k in range(m.start, m.end)}
        quantities = [
            q
            for q in find_quantities(question)
            if not any(q.start <= t.start < q.end for k, t in enumerate(toks) if k in named)
        ]
        qspan = {k for q in quantities for k, t in enumerate(toks) if q.start <= t.start < q.end}
        self.resolver.find_rest(question, toks, ents, qspan)
        self._misspelt_makers(toks, ents, qspan)
        unknown = {k for x in ents.unknown for k in range(x.start, x.end)}
        quantities += self._bare_numbers(question, toks, ents.taken | qspan | unknown)
        qspan = {k for q in quantities for k, t in enumerate(toks) if q.start <= t.start < q.end}
        u = Understanding(question, lang, ents)
        taken = ents.taken | qspan
        german = lang == "de"
        if german:
            toks = complete_elisions(toks, self._single_words)
        found = longest_first(self.phrases.find(toks, compounds=german), taken)
        # A comparator counts only right before a number ("cheaper than 500 EUR"); "cheaper than the X" compares.
        near: set[tuple[str, int]] = set()
        for q in quantities:
            span = [k for k in qspan if q.start <= toks[k].start < q.end]
            if span:
                near |= {("end", min(span)), ("end", min(span) - 1), ("start", max(span) + 1), ("start", max(span) + 2)}
        found = [m for m in found if m.payload[0] != "cmp" or ("end", m.j) in near or ("start", m.i) in near]
        # "More"/"less" words may overlap an attribute's name ("largest freezer" / "freezer volume"), never a
        # comparator or cue ("more than 500 EUR" filters, it does not rank).
        fixed = taken | {k for m in found if m.payload[0] in ("cmp", "cue", "topic") for k in range(m.i, m.j)}
        found += longest_first(self.ways.find(toks), fixed)
        categories = longest_first(self.resolver.categories.find(toks, compounds=german), taken)
        spans = {(m.i, m.j) for m in found if m.payload[0] in ("attr", "value")}
        # A category phrase loses to a longer schema phrase over it ("freezer volume"); an equal one ties. A value
        # inside a longer category phrase is part of it ("ice" in "ice-lined refrigerator").
        cat_spans = [
            c for c in categories if not any(i <= c.i and c.j <= j and (j - i) > (c.j - c.i) for i, j in spans)
        ]
        # Right after a quantity or a more/less word, a word that names an attribute too is what is measured
        # ("100 Liter Kühlraum", "den größten Kühlraum").
        ranked = {m.j for m in found if m.payload[0] in ("way", "generic")}
        cat_spans = [c for c in cat_spans if not ((c.i - 1 in qspan or c.i in ranked) and (c.i, c.j) in spans)]
        found = [
            m
            for m in found
            if m.payload[0] != "value"
            or not any(c.i <= m.i and m.j <= c.j and c.j - c.i > m.j - m.i for c in cat_spans)
        ]
        found.sort(key=lambda m: m.i)
        # "no freezer part", "ohne Gefrierfach", "Kühlboxen ausgenommen": those categories are excluded.
        negated = negated_spans(question, toks, found, cat_spans)
        ents.categories = [c for c in cat_spans if c not in negated]
        u.categories = agreed_categories(question, toks, ents.categories)
        if negated:
            excluded = frozenset().union(*(c.payload for c in negated))
            base = u.categories if u.categories is not None else self.catalog.categories()
            u.categories = [c for c in base if c not in excluded] or u.categories
        tied = {(c.i, c.j) for c in cat_spans}
        generic_way = self._attributes(u, found, toks, tied)
        spans = taken | {k for m in found for k in range(m.i, m.j)}
        for m in longest_first(self.unit_index.find(toks), spans):
            kind = m.payload[0]
            if kind == "varying" and m.payload[1] not in u.units:
                u.units.append(m.payload[1])
            if kind in ("varying", "fixed"):  # "how many litres", "kWh per day": the attribute measured in it
                u.weak_attributes += [a for a in self.schema.by_unit(m.payload[1])[:1] if a not in u.weak_attributes]
        if u.way is None and generic_way and (u.attributes or u.weak_attributes or u.tied_attributes):
            u.way = generic_way  # "the least kW": the attribute may be known only by its unit
        self._conditions(u, question, toks, quantities, found, {c.i for c in categories})
        u.unknown_makers = [
            w for w in ents.unknown_makers if tokenize(w) and tokenize(w)[0].norm not in self.vocabulary
        ]
        return u

    def _attributes(
        self, u: Understanding, found: list[Match[tuple[str, ...]]], toks: list[Token], tied: set
    ) -> Way | None:
        """Attributes, directions, values, cues and lacking topics; returns a generic "more"/"less" word's way."""
        negated = {m.j for m in found if m.payload == ("cue", "negation")}
        excluded = negated_spans(u.question, toks, found, [m for m in found if m.payload[0] == "value"])
        generic_way: Way | None = None
        for m in found:
            kind = m.payload[0]
            if kind == "attr":
                name = m.payload[1]
                a = self.schema[name]
                phrase_words = [t.norm for t in toks[m.i : m.j]]
                weak = all(w in QUESTION_WORDS for w in phrase_words)
                if (m.i, m.j) in tied:
                    u.tied_attributes.append(name)
                elif a.kind == "bool" and not u.entities.products:
                    u.flags.append((name, not ({m.i, m.i - 1} & negated)))
                elif weak:
                    u.weak_attributes.append(name)
                else:
                    u.attributes.append(name)
            elif kind == "way":
                u.way, u.way_attribute = m.payload[2], u.way_attribute or m.payload[1]  # type: ignore[assignment]
            elif kind == "generic":
                generic_way = generic_way or m.payload[1]  # type: ignore[assignment]
            elif kind == "value":
                pair = (m.payload[1], m.payload[2])
                (u.excluded_values if m in excluded else u.values).append(pair)  # "not the gas or kerosene ones"
            elif kind == "cue" and m.payload[1] not in ("negation", "negation_after"):
                setattr(u, {"count": "count", "list": "listing", "compare": "compare"}[m.payload[1]], True)
            elif kind == "topic" and m.payload[1] not in self.covered_topics:
                u.lacking.append(m.payload[1])
        u.values = [v for v in dict.fromkeys(u.values) if v not in u.excluded_values]
        for name in dict.fromkeys(a for a, _ in u.excluded_values):  # only exclusions: every other value it takes
            if not any(a == name for a, _ in u.values):
                left = [v for v in self.schema[name].values if (name, v) not in u.excluded_values]
                u.values += [(name, v) for v in left] if left else []
        u.attributes = list(dict.fromkeys(u.attributes))
        u.weak_attributes = [a for a in dict.fromkeys(u.weak_attributes) if a not in u.attributes]
        u.lacking = list(dict.fromkeys(u.lacking))
        # "How much does …" alone hints at a price; another topic or a named attribute says what is really asked.
        vague = {
            m.payload[1]
            for m in found
            if m.payload[0] == "topic" and all(t.norm in QUESTION_WORDS for t in toks[m.i : m.j])
        }
        specific = {m.payload[1] for m in found if m.payload[0] == "topic"} - vague
        if specific or u.attributes:
            u.lacking = [t for t in u.lacking if t not in vague or t in specific]
        # A topic word inside a named attribute's own phrases is that attribute's ("holds its temperature without
        # power" asks the holdover time, not a temperature the catalog lacks).
        named = [*u.attributes, *u.weak_attributes, *([u.way_attribute] if u.way_attribute else [])]
        if u.lacking and named:
            own = set().union(*(self._attribute_words.get(a, set()) for a in named))
            u.lacking = [t for t in u.lacking if not any(set(phrase_key(w)) <= own for w in TOPICS[t])]
        return generic_way

    def _conditions(
        self,
        u: Understanding,
        question: str,
        toks: list[Token],
        quantities: list[Quantity],
        found: list[Match],
        things: set[int],
    ) -> None:
        """Numbers as conditions; ``things`` are where category words start (a number just before one counts items:
        "40 kleine Impfstoffträger")."""
        comparators = [(m.j, m.payload[1]) for m in found if m.payload[0] == "cmp"]
        ranges = list(BETWEEN.finditer(question))
        between = {m.end(): parse_number(m.group(1)) for m in ranges}
        lows = {m.start(1) for m in ranges}  # the lower bound is read with the upper one
        for q in quantities:
            if q.start in lows and not q.unit:
                continue
            first = next((k for k, t in enumerate(toks) if t.start >= q.start), len(toks))
            last = next((k for k, t in enumerate(toks) if t.start >= q.end), len(toks))
            if not q.unit and {last, last + 1} & things:
                continue
            op: Op = next((o for j, o in comparators if j == first or j == first - 1), "=")  # type: ignore[assignment]
            after = next((o for j, o in comparators if j > last - 1 and j <= last + 2 and o == ">="), None)
            op = after or op  # type: ignore[assignment]
            numeric = [a.name for a in self.schema.stored() if a.kind == "number"]
            candidates = self.schema.by_unit(q.unit) if q.unit else numeric
            named = [a for a in (*u.attributes, *u.weak_attributes) if a in candidates]
            if not q.unit and not named:
                continue  # a number with no unit and no attribute named is not a condition
            if op != "=":
                named = named or [a for a in u.tied_attributes if a in candidates]
            if named:
                candidates = named[:1]
            elif op != "=" and candidates:
                candidates = candidates[:1]
            if not candidates:
                continue
            value = q.money_value if q.unit in _CURRENCY_UNITS else q.value
            low = next((v for end, v in between.items() if end == q.start), None)
            if low is not None:
                u.conditions.append(Condition(tuple(candidates), ">=", low, q.unit, f"{low:g}"))
                op = "<="
            u.conditions.append(Condition(tuple(candidates), op, value, q.unit, q.text))


_CURRENCY_UNITS = frozenset({"eur", "usd", "gbp", "chf", "sek"})


__all__ = ["Reader", "Understanding", "Condition", "TOPICS"]
