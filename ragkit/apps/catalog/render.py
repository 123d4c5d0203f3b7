"""Deterministic answers from catalog values, in English or German: one product, a comparison, a filter result."""

from __future__ import annotations

from typing import Sequence

from ragkit.apps.catalog.catalog import Product
from ragkit.language import ABSTENTION_DE, ABSTENTION_EN, Lang

_ATTR_LABEL = {
    "en": {"volume": "volume", "price": "price", "temperature": "temperature range", "energy": "energy use"},
    "de": {"volume": "Volumen", "price": "Preis", "temperature": "Temperaturbereich", "energy": "Energieverbrauch"},
}


def fmt(value: float | int | None) -> str:
    """A catalog number as written in answers: no trailing .0, no thousands separator."""
    if value is None:
        return "?"
    v = float(value)
    return str(int(v)) if v.is_integer() else f"{v:g}"


def _label(p: Product) -> str:
    return f"{p.id} ({p.name})" if p.name and p.name != p.id else p.id


def _piece(p: Product, attr: str, lang: Lang) -> str | None:
    de = lang == "de"
    if attr == "price" and p.price is not None:
        return f"{fmt(p.price)} {p.currency or ''}".strip()
    if attr == "volume" and p.volume_l is not None:
        text = f"{fmt(p.volume_l)} {'Liter' if de else 'litres'}"
        if p.freezer_volume_l:
            text += f" (+ {fmt(p.freezer_volume_l)} {'Liter Gefrierteil' if de else 'litres freezer'})"
        return text
    if attr == "temperature" and p.temp_min_c is not None and p.temp_max_c is not None:
        return f"{fmt(p.temp_min_c)} °C {'bis' if de else 'to'} {fmt(p.temp_max_c)} °C"
    if attr == "energy":
        if p.energy_kwh_per_day is not None:
            return f"{fmt(p.energy_kwh_per_day)} kWh {'pro Tag' if de else 'per day'}"
        if p.power_rate is not None and p.power_unit:
            return f"{fmt(p.power_rate)} {p.power_unit}"
    if attr == "dimensions" and None not in (p.width_mm, p.depth_mm, p.height_mm):
        return f"{fmt(p.width_mm)} × {fmt(p.depth_mm)} × {fmt(p.height_mm)} mm ({'B × T × H' if de else 'W × D × H'})"
    if attr == "door" and p.door:
        return ({"glass": "Glastür", "solid": "Volltür"}.get(p.door, p.door)) if de else f"{p.door} door"
    if attr == "alarms":
        return ", ".join(p.alarms) if p.alarms else ("keine" if de else "none")
    if attr == "monitoring" and p.monitoring:
        return p.monitoring
    if attr == "manufacturer" and p.manufacturer:
        return p.manufacturer
    if attr == "category" and p.category:
        return (p.category_de or p.category) if de else p.category
    return None


_VALUE_EN = {
    "price": "The list price of {p} is {v}.",
    "volume": "{p} has a usable volume of {v}.",
    "temperature": "{p} has a temperature range of {v}.",
    "energy": "{p} uses about {v}.",
    "dimensions": "{p} measures {v}.",
    "door": "{p} has a {v}.",
    "alarms": "Alarms of {p}: {v}.",
    "monitoring": "Monitoring of {p}: {v}.",
    "manufacturer": "{p} is made by {v}.",
    "category": "{p} is a {v}.",
}
_VALUE_DE = {
    "price": "Der Listenpreis von {p} beträgt {v}.",
    "volume": "{p} hat einen Nutzinhalt von {v}.",
    "temperature": "{p} hat einen Temperaturbereich von {v}.",
    "energy": "{p} verbraucht etwa {v}.",
    "dimensions": "{p} misst {v}.",
    "door": "{p} hat eine {v}.",
    "alarms": "Alarme von {p}: {v}.",
    "monitoring": "Überwachung von {p}: {v}.",
    "manufacturer": "{p} wird von {v} hergestellt.",
    "category": "{p} ist ein {v}.",
}


def render_value(p: Product, attributes: Sequence[str], lang: Lang) -> str:
    """One sentence per asked attribute; a missing value says so and abstains."""
    templates = _VALUE_DE if lang == "de" else _VALUE_EN
    out = []
    for attr in attributes:
        value = _piece(p, attr, lang)
        if value is None:
            missing = (
                f"Der Katalog enthält für {p.id} keine Angabe dazu."
                if lang == "de"
                else f"The catalog has no {attr} for {p.id}."
            )
            out.append(f"{missing} {ABSTENTION_DE if lang == 'de' else ABSTENTION_EN}")
        else:
            out.append(templates[attr].format(p=_label(p), v=value))
    return " ".join(out)


def describe(p: Product, lang: Lang) -> str:
    """The product's key specs in one or two sentences."""
    de = lang == "de"
    kind = _piece(p, "category", lang) or ("Produkt" if de else "product")
    head = f"{_label(p)} ist ein {kind}" if de else f"{_label(p)} is a {kind}"
    if p.manufacturer:
        head += f" von {p.manufacturer}" if de else f" by {p.manufacturer}"
    specs = [x for x in (_piece(p, a, lang) for a in ("volume", "temperature", "energy", "door", "dimensions")) if x]
    text = head + (": " + ", ".join(specs) if specs else "") + "."
    if p.monitoring:
        text += f" {'Überwachung' if de else 'Monitoring'}: {p.monitoring}."
    if p.alarms or p.temp_min_c is not None:
        text += f" {'Alarme' if de else 'Alarms'}: {_piece(p, 'alarms', lang)}."
    if p.price is not None:
        text += f" {'Listenpreis' if de else 'List price'}: {_piece(p, 'price', lang)}."
    return text


_DIRECTION_FIELD = {"price": "price", "volume": "volume_l", "temperature": "temp_min_c", "energy": "energy_kwh_per_day"}
_WINNER = {
    ("en", "price", "min"): "{p} is cheaper",
    ("en", "price", "max"): "{p} is more expensive",
    ("en", "volume", "max"): "{p} has the larger volume",
    ("en", "volume", "min"): "{p} has the smaller volume",
    ("en", "temperature", "min"): "{p} gets colder",
    ("en", "energy", "min"): "{p} uses less energy",
    ("en", "energy", "max"): "{p} uses more energy",
    ("de", "price", "min"): "{p} ist günstiger",
    ("de", "price", "max"): "{p} ist teurer",
    ("de", "volume", "max"): "{p} hat das größere Volumen",
    ("de", "volume", "min"): "{p} hat das kleinere Volumen",
    ("de", "temperature", "min"): "{p} wird kälter",
    ("de", "energy", "min"): "{p} verbraucht weniger Energie",
    ("de", "energy", "max"): "{p} verbraucht mehr Energie",
}


def render_compare(
    products: Sequence[Product], direction: tuple[str, str] | None, attributes: Sequence[str], lang: Lang
) -> str:
    """Which product wins on the asked attribute, with every product's value; or their specs side by side."""
    de = lang == "de"
    if direction is None:
        attrs = [a for a in attributes if a in _DIRECTION_FIELD] or ["volume", "temperature", "energy", "price"]
        lines = [
            f"{_label(p)}: " + "; ".join(f"{_ATTR_LABEL[lang].get(a, a)} {_piece(p, a, lang) or '?'}" for a in attrs)
            for p in products
        ]
        return ("Vergleich:\n" if de else "Comparison:\n") + "\n".join(f"- {line}" for line in lines)
    attr, way = direction
    key = _DIRECTION_FIELD[attr]
    known = [p for p in products if getattr(p, key) is not None]
    values = "; ".join(f"{p.id}: {_piece(p, attr, lang) or '?'}" for p in products)
    if len(known) < 2:
        return (
            f"Der Katalog enthält nicht für alle genannten Produkte diese Angabe ({values}). {ABSTENTION_DE}"
            if de
            else f"The catalog lacks this value for some of the products ({values}). {ABSTENTION_EN}"
        )
    if attr == "price" and len({p.currency for p in known}) > 1:
        return (
            f"Die Preise sind in verschiedenen Währungen angegeben und nicht direkt vergleichbar: {values}."
            if de
            else f"The prices are in different currencies and cannot be compared directly: {values}."
        )
    ranked = sorted(known, key=lambda p: getattr(p, key), reverse=way == "max")
    if getattr(ranked[0], key) == getattr(ranked[1], key):
        return f"Beide sind gleich: {values}." if de else f"They are equal: {values}."
    template = _WINNER.get((lang, attr, way)) or ("{p}" if not de else "{p}")
    return template.format(p=_label(ranked[0])) + f" ({values})."


def render_filter(found: Sequence[Product], superlative: bool, count_only: bool, max_listed: int, lang: Lang) -> str:
    """A filter result: the best product, a count, or a list with each product's key numbers."""
    de = lang == "de"
    if not found:
        return (
            "Kein Produkt im Katalog erfüllt diese Bedingungen."
            if de
            else "No product in the catalog matches these conditions."
        )

    def line(p: Product) -> str:
        bits = [
            x
            for x in (
                _piece(p, "category", lang),
                _piece(p, "volume", lang),
                _piece(p, "temperature", lang),
                _piece(p, "price", lang),
            )
            if x
        ]
        return f"{_label(p)}: " + ", ".join(bits)

    if superlative:
        return f"Das passende Produkt ist {line(found[0])}." if de else f"The best match is {line(found[0])}."
    n = len(found)
    if de:
        head = f"{n} Produkte im Katalog passen" if n != 1 else "1 Produkt im Katalog passt"
    else:
        head = f"{n} products in the catalog match" if n != 1 else "1 product in the catalog matches"
    if count_only:
        return head + ": " + ", ".join(p.id for p in found) + "."
    text = head + ":\n" + "\n".join(f"- {line(p)}" for p in found[:max_listed])
    if n > max_listed:
        text += f"\n… {'und' if de else 'and'} {n - max_listed} {'weitere' if de else 'more'}."
    return text


def render_not_found(product_id: str, suggestions: Sequence[str], lang: Lang) -> str:
    if lang == "de":
        text = f"Das Produkt {product_id} gibt es im Katalog nicht."
        return text + (f" Meinten Sie {', '.join(suggestions)}?" if suggestions else "")
    text = f"There is no product {product_id} in the catalog."
    return text + (f" Did you mean {', '.join(suggestions)}?" if suggestions else "")


# Question parsing -------------------------------------------------------------------------------------

__all__ = ["fmt", "render_value", "describe", "render_compare", "render_filter", "render_not_found"]
