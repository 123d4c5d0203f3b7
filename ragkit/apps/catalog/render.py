"""Answers written from tool results, in English or German, with every number a catalog value.

Labels, units, value names, comparison verdicts and sentence templates come from the catalog schema; this module
only knows the shapes of the tools' results.
"""

from __future__ import annotations

from typing import Any, Sequence

from ragkit.apps.catalog.catalog import Catalog
from ragkit.apps.catalog.schema import Attribute
from ragkit.apps.catalog.units import CURRENCIES, canonical_unit, fmt
from ragkit.language import ABSTENTION_DE, ABSTENTION_EN, Lang

_W = {
    "en": {
        "to": "to",
        "none": "none",
        "no_value": "The catalog has no {label} for {product}.",
        "no_value_all": "The catalog has no {label} for these products.",
        "not_found": "There is no product “{query}” in this catalog.",
        "closest": "Closest matches: {items}.",
        "several": "Several products match “{query}”:",
        "count": "{n} products in the catalog match",
        "count1": "1 product in the catalog matches",
        "none_match": "No product in the catalog matches these conditions.",
        "best": "The best match is {item}.",
        "best_unit": "The best match priced in {unit} is {item}.",
        "tied": "These are tied: {items}.",
        "more": "… and {n} more.",
        "invalid": "Invalid request: {msg}.",
        "units": "The values are in different units and cannot be compared directly: {values}.",
        "currencies": "The prices are in different currencies and cannot be compared directly: {values}.",
        "missing": "The catalog lacks this value for some of the products ({values}).",
        "equal": "They are equal: {values}.",
        "lacking": "This catalog has no {topic} information.",
        "lacking_for": "This catalog has no {topic} information for {products}.",
        "no_maker": "This catalog has no products by {maker}.",
        "sentence": "The {label} of {product} is {value}.",
        "is_a": "{product} is a {kind}",
        "by": " by {maker}",
        "product": "product",
        "yes": "yes",
        "no": "no",
    },
    "de": {
        "to": "bis",
        "none": "keine",
        "no_value": "Der Katalog enthält für {product} keine Angabe zu {label}.",
        "no_value_all": "Der Katalog enthält für diese Produkte keine Angabe zu {label}.",
        "not_found": "Das Produkt „{query}“ gibt es in diesem Katalog nicht.",
        "closest": "Am ähnlichsten: {items}.",
        "several": "Mehrere Produkte passen zu „{query}“:",
        "count": "{n} Produkte im Katalog passen",
        "count1": "1 Produkt im Katalog passt",
        "none_match": "Kein Produkt im Katalog erfüllt diese Bedingungen.",
        "best": "Das passende Produkt ist {item}.",
        "best_unit": "Das passende Produkt mit Preis in {unit} ist {item}.",
        "tied": "Gleichauf: {items}.",
        "more": "… und {n} weitere.",
        "invalid": "Ungültige Anfrage: {msg}.",
        "units": "Die Werte haben verschiedene Einheiten und sind nicht direkt vergleichbar: {values}.",
        "currencies": "Die Preise sind in verschiedenen Währungen angegeben und nicht direkt vergleichbar: {values}.",
        "missing": "Der Katalog enthält nicht für alle genannten Produkte diese Angabe ({values}).",
        "equal": "Beide sind gleich: {values}.",
        "lacking": "Dieser Katalog enthält keine Angaben zu {topic}.",
        "lacking_for": "Dieser Katalog enthält keine Angaben zu {topic} für {products}.",
        "no_maker": "Dieser Katalog enthält keine Produkte von {maker}.",
        "sentence": "{label} von {product}: {value}.",
        "is_a": "{product} ist ein {kind}",
        "by": " von {maker}",
        "product": "Produkt",
        "yes": "ja",
        "no": "nein",
    },
}
TOPIC_DE = {
    "price": "Preisen",
    "warranty": "Garantie",
    "weight": "Gewicht",
    "noise": "Lautstärke",
    "colour": "Farben",
    "dimensions": "Abmessungen",
    "height": "Höhe",
    "width": "Breite",
    "depth": "Tiefe",
    "delivery": "Lieferzeiten",
    "stock": "Lagerbestand",
    "refrigerant": "Kältemittel",
    "voltage": "Spannung",
    "temperature": "Temperaturen",
    "shelves": "Einlegeböden",
    "lock": "Schlössern",
    "company": "Unternehmen",
    "discount": "Rabatten",
    "certification": "Zertifikaten",
}


def abstain(lang: Lang) -> str:
    return ABSTENTION_DE if lang == "de" else ABSTENTION_EN


class Renderer:
    """Writes answers from tool results for one catalog, in one language."""

    def __init__(self, catalog: Catalog, lang: Lang, max_listed: int = 10) -> None:
        self.catalog = catalog
        self.schema = catalog.schema
        self.lang = lang
        self.w = _W[lang]
        self.max_listed = max_listed
        self.abstains = False

    # Values ----------------------------------------------------------------------------------------------------

    def value(self, name: str, data: dict[str, Any] | None) -> str:
        """A value as shown: number with unit label, yes/no, value names, a range or a tuple."""
        if data is None or data.get("value") is None:
            return "?"
        a = self.schema[name]
        v, unit = data["value"], data.get("unit")
        if a.is_group:
            members = [self.schema[m] for m in a.members]
            fmt_ = a.config.format.get(self.lang) or a.config.format.get("en")
            if fmt_:
                return fmt_.format(**{m.name: self._bare(m, x) for m, x in zip(members, v)})
            ul = members[0].unit_label(unit, self.lang)
            if a.is_range:
                return (
                    f"{self._bare(members[0], v[0])} {ul} {self.w['to']} {self._bare(members[-1], v[-1])} {ul}".strip()
                )
            return " × ".join(self._bare(m, x) for m, x in zip(members, v)) + (f" {ul}" if ul else "")
        if a.kind == "number":
            shown = f"{fmt(v)} {a.unit_label(unit, self.lang)}".strip()
        elif a.kind == "bool":
            shown = self.w["yes"] if v else self.w["no"]
        elif isinstance(v, list):
            shown = ", ".join(a.value_label(x, self.lang) for x in v) if v else self.w["none"]
        elif a.role == "category":
            p = self.catalog.products.get(data.get("product_id", ""))
            shown = (self.catalog.category_label(p, self.lang) if p else None) or str(v)
        else:
            shown = a.value_label(v, self.lang)
        template = a.config.format.get(self.lang) or a.config.format.get("en") if a.kind != "number" else None
        return template.format(value=shown) if template else shown

    @staticmethod
    def _bare(a: Attribute, v: Any) -> str:
        return fmt(v) if a.kind == "number" else str(v)

    def label(self, name: str) -> str:
        return self.schema[name].label(self.lang)

    def sentence(self, name: str, product: str, value: str) -> str:
        a = self.schema[name]
        template = a.config.sentence.get(self.lang) or self.w["sentence"]
        label = self.label(name)
        text = template.format(product=product, value=value, label=label)
        return text[0].upper() + text[1:] if text else text

    def missing(self, name: str, product: str) -> str:
        self.abstains = True
        return self.w["no_value"].format(label=self.label(name), product=product)

    # Results ---------------------------------------------------------------------------------------------------

    def specs(self, r: dict[str, Any], attributes: Sequence[str] | None) -> str:
        if r.get("error") == "not_found":
            return self.not_found(r)
        if "matches" in r:
            parts = [self.specs(m, attributes) for m in r["matches"]]
            return f"{self.w['several'].format(query=r['query'])}\n" + "\n".join(f"- {p}" for p in parts)
        if not attributes:
            return self.describe(r)
        out = []
        for name in attributes:
            data = r["values"].get(name)
            if data is None:
                out.append(self.missing(name, r["label"]))
            else:
                out.append(self.sentence(name, r["label"], self.value(name, {**data, "product_id": r["product_id"]})))
        return " ".join(out)

    def describe(self, r: dict[str, Any]) -> str:
        values = r["values"]
        kind = (
            self.value("category", {**values["category"], "product_id": r["product_id"]})
            if "category" in values
            else None
        )
        head = self.w["is_a"].format(product=r["label"], kind=kind or self.w["product"])
        if "manufacturer" in values:
            head += self.w["by"].format(maker=values["manufacturer"]["value"])
        specs = [
            f"{self.label(n)} {self.value(n, d)}"
            for n, d in values.items()
            if n not in ("category", "manufacturer") and not self._member_shown(n, values)
        ]
        return head + (": " + "; ".join(specs) if specs else "") + "."

    def _member_shown(self, name: str, values: dict[str, Any]) -> bool:
        return any(name in a.members and a.name in values for a in self.schema.attributes.values() if a.is_group)

    def not_found(self, r: dict[str, Any]) -> str:
        self.abstains = True
        text = self.w["not_found"].format(query=r["query"])
        if r.get("suggestions"):
            text += " " + self.w["closest"].format(items=", ".join(s["label"] for s in r["suggestions"]))
        return text

    def compare(self, r: dict[str, Any]) -> str:
        if r.get("error") == "not_found":
            return self.not_found(r)
        name, rows = r["attribute"], r["values"]
        values = "; ".join(f"{row['label']}: {self.value(name, row)}" for row in rows)
        problem = r.get("problem")
        if problem == "missing":
            self.abstains = True
            return self.w["missing"].format(values=values)
        if problem == "units":
            units = {canonical_unit(row.get("unit")) for row in rows}
            return self.w["currencies" if units <= CURRENCIES else "units"].format(values=values)
        if problem == "tie":
            return self.w["equal"].format(values=values)
        winner = next(row for row in rows if row["product_id"] == r["winner"])
        d = self.schema[name].direction(r["prefer"])
        verdict = (d.verdict.get(self.lang) if d else None) or self._generic_verdict(name, r["prefer"])
        return f"{winner['label']} {verdict} ({values})."

    def _generic_verdict(self, name: str, prefer: str) -> str:
        label = self.label(name)
        if self.lang == "de":
            return f"hat den {'höheren' if prefer == 'higher' else 'niedrigeren'} Wert bei {label}"
        return f"has the {prefer} {label}"

    def filter(self, results: Sequence[dict[str, Any]], call_args: Sequence[dict[str, Any]]) -> str:
        errors = [r for r in results if r.get("error")]
        if errors and len(errors) == len(results):
            return self.w["invalid"].format(msg=errors[0].get("message", errors[0]["error"]))
        ok = [(r, a) for r, a in zip(results, call_args) if not r.get("error")]
        products: dict[str, dict[str, Any]] = {}
        for r, _ in ok:
            for p in r["products"]:
                products.setdefault(p["product_id"], p)
        count = sum(r["count"] for r, _ in ok) if len(ok) == 1 else len(products)
        args = ok[0][1]
        if count == 0:
            return self.w["none_match"]
        items = list(products.values())
        shown = list(dict.fromkeys(n for p in items for n in p["values"]))
        if args.get("count_only"):
            head = self.w["count1"] if count == 1 else self.w["count"].format(n=count)
            return head + ": " + ", ".join(p["label"] for p in items[:50]) + ("." if count <= 50 else ", …")
        if args.get("sort_by"):
            return self._best(ok[0][0], items, args["sort_by"])
        asked = [n for n in args.get("show", []) if n in shown or n in self.schema]
        if asked and all(n not in p["values"] for n in asked for p in items[: self.max_listed]):
            return (
                self.w["no_value_all"].format(label=", ".join(self.label(n) for n in asked)) + " " + abstain(self.lang)
            )
        head = self.w["count1"] if count == 1 else self.w["count"].format(n=count)
        lines = [f"- {self.line(p)}" for p in items[: self.max_listed]]
        text = head + ":\n" + "\n".join(lines)
        if count > self.max_listed:
            text += "\n" + self.w["more"].format(n=count - self.max_listed)
        return text

    def line(self, p: dict[str, Any]) -> str:
        bits = [f"{self.label(n)} {self.value(n, d)}" for n, d in p["values"].items()]
        return p["label"] + (": " + ", ".join(bits) if bits else "")

    def _best(self, r: dict[str, Any], items: list[dict[str, Any]], sort_by: str) -> str:
        ranked = [p for p in items if sort_by in p["values"]]
        if not ranked:
            return self.w["no_value_all"].format(label=self.label(sort_by)) + " " + abstain(self.lang)
        best_ids = r.get("best_per_unit")
        if best_ids and len(best_ids) > 1:
            by_id = {p["product_id"]: p for p in ranked}
            parts = [
                self.w["best_unit"].format(unit=by_id[i]["values"][sort_by].get("unit", "?"), item=self.line(by_id[i]))
                for i in best_ids
                if i in by_id
            ]
            return " ".join(parts)
        top = ranked[0]["values"][sort_by]["value"]
        tied = [p for p in ranked if p["values"][sort_by]["value"] == top]
        if len(tied) > 1:
            return self.w["tied"].format(items="; ".join(self.line(p) for p in tied))
        return self.w["best"].format(item=self.line(ranked[0]))

    def lacking(self, topics: Sequence[str], products: Sequence[str]) -> str:
        self.abstains = True
        names = [TOPIC_DE.get(t, t) if self.lang == "de" else t for t in topics]
        topic = " / ".join(names)
        if products:
            return self.w["lacking_for"].format(topic=topic, products=", ".join(products))
        return self.w["lacking"].format(topic=topic)

    def no_maker(self, maker: str) -> str:
        self.abstains = True
        return self.w["no_maker"].format(maker=maker)


__all__ = ["Renderer", "abstain", "TOPIC_DE"]
