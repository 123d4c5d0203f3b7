"""A structured product catalog read from JSON or CSV through its config, validated row by row, indexable as Documents.

The same code reads the example lab catalog (JSON), the WHO/HERMES vaccine-refrigerator table and the ENERGY STAR
refrigerator list (CSV): the YAML ``catalog`` section says which columns are the id, name, maker and category, and
declares every other attribute (see ``ragkit.apps.catalog.schema``). A missing column, a value that is not a number
in a numeric attribute, or a duplicate id is an error naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ragkit.apps.catalog.schema import BOOL_WORDS, MAX_ENUM_VALUES, Attribute, CatalogSchema, role_attribute
from ragkit.apps.catalog.settings import ROLES, AttributeConfig, CatalogBotSettings, CatalogConfig, Lang
from ragkit.apps.catalog.units import canonical_unit, fmt
from ragkit.errors import ConfigError, DataError
from ragkit.types import Document


@dataclass(frozen=True, eq=False)
class Product:
    """One catalog record: its identity, its attribute values (absent ones left out) and per-row units."""

    id: str
    name: str
    model: str | None = None
    manufacturer: str | None = None
    category: str | None = None
    category_de: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    aliases: tuple[str, ...] = ()  # other model numbers of the same product
    line: int = 0

    def value(self, attribute: str) -> Any:
        if attribute in ("manufacturer", "category", "model", "name"):
            return getattr(self, attribute)
        return self.values.get(attribute)

    def specs(self) -> dict[str, Any]:
        """Identity and every set value, with each value's unit where it has one; JSON-ready."""
        out: dict[str, Any] = {"product_id": self.id, "name": self.name}
        for key in ("model", "manufacturer", "category"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        for key, value in self.values.items():
            out[key] = list(value) if isinstance(value, tuple) else value
            if key in self.units:
                out[f"{key}_unit"] = self.units[key]
        return out

    def payload(self) -> dict[str, Any]:
        """Metadata of the indexed record: the filterable values (numbers as floats) and a title."""
        meta = self.specs()
        for key, value in self.values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                meta[key] = float(value)
        meta["title"] = f"{self.id} — {self.name}" if self.name and self.name != self.id else self.id
        return meta


class Catalog:
    """Products by id with their schema; naming and description helpers for answers and the index."""

    def __init__(
        self, products: Sequence[Product], schema: CatalogSchema, *, licence_note: str | None = None, source: str = ""
    ) -> None:
        self.schema = schema
        self.config = schema.config
        self.products: dict[str, Product] = {}
        for p in products:
            if p.id in self.products:
                first = self.products[p.id].line
                raise DataError(f"duplicate product id {p.id!r} (first on line {first})", path=source, line=p.line)
            self.products[p.id] = p
        self._by_upper = {pid.upper(): pid for pid in self.products}
        self.licence_note = licence_note
        self.source = source

    @classmethod
    def from_config(cls, config: CatalogConfig) -> Catalog:
        products, schema = read_catalog(config)
        return cls(products, schema, licence_note=config.licence_note, source=config.path)

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products.values())

    def get(self, product_id: str) -> Product | None:
        """Exact, case-insensitive id lookup."""
        key = self._by_upper.get(product_id.strip().upper())
        return self.products[key] if key else None

    def categories(self) -> list[str]:
        return sorted({p.category for p in self if p.category})

    def manufacturers(self) -> list[str]:
        return sorted({p.manufacturer for p in self if p.manufacturer})

    def label(self, p: Product) -> str:
        """How answers name a product (the config's ``label`` template)."""
        maker, model = p.manufacturer or "", p.model or ""
        if model and maker and not model.lower().startswith(maker.lower()):
            maker_model = f"{maker} {model}"
        else:
            maker_model = model or p.name or p.id
        extra = [x for x in (p.name, p.id) if x and x.lower() not in maker_model.lower()]
        details = f" ({', '.join(dict.fromkeys(extra))})" if extra else ""
        return self.config.label.format(
            id=p.id, name=p.name, model=model, manufacturer=maker, maker_model=maker_model, details=details
        )

    def category_label(self, p: Product, lang: Lang) -> str | None:
        if lang == "de" and p.category_de:
            return p.category_de
        words = self.config.category_synonyms.get(p.category or "", {}).get(lang) if lang == "de" else None
        return words[0] if words else p.category

    def description(self, p: Product) -> str:
        """The record's own description, else a sentence per set value (for the index and search_text)."""
        if p.description:
            return p.description
        parts = [f"{self.label(p)}."]
        if p.manufacturer:
            parts.append(f"Manufacturer: {p.manufacturer}.")
        if p.category:
            parts.append(f"Type: {p.category}.")
        for a in self.schema.stored():
            value = p.values.get(a.name)
            if value is None or value is False or a.role or not a.config.describe:
                continue  # what the summary leaves out stays filterable; the text is for search and the index
            shown = fmt(value) if a.kind == "number" else a.value_label(value, "en")
            unit = a.unit_label(p.units.get(a.name) or a.unit, "en")
            parts.append(f"{a.label('en').capitalize()}: {shown}{' ' + unit if unit else ''}.")
        return " ".join(parts)

    def documents(self) -> list[Document]:
        """One Document per product: its description as text, its values as metadata."""
        return [Document(id=p.id, text=self.description(p), metadata=p.payload()) for p in self]


# Reading ----------------------------------------------------------------------------------------------------------


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    text = " ".join(str(raw).split())
    return text or None


def _number(raw: str, column: str, path: str, line: int) -> float | int:
    try:
        value = float(raw.replace(",", ".") if "." not in raw else raw)
    except ValueError as e:
        raise DataError(f"column {column!r}: expected a number, got {raw!r}", path=path, line=line) from e
    if not math.isfinite(value):
        raise DataError(f"column {column!r}: expected a finite number, got {raw!r}", path=path, line=line)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _is_number(raw: str) -> bool:
    try:
        return math.isfinite(float(raw.replace(",", ".") if "." not in raw else raw))
    except ValueError:
        return False


def _raw_rows(config: CatalogConfig) -> tuple[list[str], list[tuple[int, Mapping[str, Any]]]]:
    """The file's columns and its rows with their line numbers (JSON: item numbers)."""
    path = Path(config.path)
    fmt_ = config.format
    if fmt_ == "auto":
        fmt_ = "csv" if path.suffix.lower() in (".csv", ".tsv") else "json"
    try:
        text = path.read_text(encoding=config.encoding, errors="strict")
    except OSError as e:
        raise ConfigError(f"cannot read catalog file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise DataError(f"not {config.encoding} text ({e.reason} at byte {e.start})", path=str(path)) from e
    if fmt_ == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        columns = [c for c in (reader.fieldnames or []) if c is not None]
        rows = []
        try:
            for row in reader:
                rows.append((reader.line_num, row))
        except csv.Error as e:
            raise DataError(f"not valid CSV: {e}", path=str(path), line=reader.line_num) from e
        return columns, rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON: {e.msg}", path=str(path), line=e.lineno) from e
    if not isinstance(data, list):
        raise DataError("expected a JSON list of product objects", path=str(path))
    for i, row in enumerate(data, 1):
        if not isinstance(row, Mapping):
            raise DataError(f"item {i}: expected an object, got {type(row).__name__}", path=str(path))
    columns = list(dict.fromkeys(k for row in data for k in row))
    return columns, list(enumerate(data, 1))


def _check_columns(config: CatalogConfig, columns: Sequence[str]) -> dict[str, str]:
    """Role -> column, after checking that every column the config names exists in the file."""
    have = set(columns)
    roles = {role: config.fields.get(role, role) for role in ROLES}
    wanted: dict[str, str] = {}  # column -> what names it
    for role in ROLES:
        if role in config.fields or role == "id":
            wanted.setdefault(roles[role], f"fields.{role}")
    for name, a in config.attributes.items():
        wanted.setdefault(a.column or name, f"attributes.{name}")
        if a.unit_column:
            wanted.setdefault(a.unit_column, f"attributes.{name}.unit_column")
    for col in config.skip_rows:
        wanted.setdefault(col, "skip_rows")
    missing = [f"{col!r} ({who})" for col, who in wanted.items() if col not in have]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; the file has: {', '.join(columns)}", path=config.path, line=1
        )
    return roles


def _kind(declared: str, raws: list[str]) -> str:
    if declared != "auto":
        return declared
    if raws and all(r.lower() in BOOL_WORDS for r in raws) and len({r.lower() for r in raws}) <= 2:
        return "bool"
    return "number" if raws and all(_is_number(r) for r in raws) else "text"


def read_catalog(config: CatalogConfig) -> tuple[list[Product], CatalogSchema]:
    """Products of the configured file and the catalog's schema; helper rows skipped, every value checked."""
    path = config.path
    columns, rows = _raw_rows(config)
    roles = _check_columns(config, columns)
    rows = [
        (line, row)
        for line, row in rows
        if not any(str(row.get(col, "")).strip() in values for col, values in config.skip_rows.items())
    ]
    declared = dict(config.attributes)
    if config.infer_attributes:
        used = set(roles.values()) | {a.column or n for n, a in declared.items()}
        used |= {a.unit_column for a in declared.values() if a.unit_column} | set(config.ignore_columns)
        for col in columns:
            if col not in used and col not in declared:
                declared[col] = AttributeConfig(column=col)
    attributes: list[Attribute] = []
    for name, a in declared.items():
        col = a.column or name
        raws = [t for _, row in rows if (t := _text(_cell(row.get(col)))) is not None]
        kind = _kind(a.type, raws)
        attr = Attribute(name, kind, a, column=col)  # type: ignore[arg-type]
        if a.unit:
            attr.units.add(canonical_unit(a.unit))
        if kind in ("text", "list"):
            seen = sorted({v.strip() for r in raws for v in (r.split(a.separator) if kind == "list" else [r])} - {""})
            attr.values = seen if len(seen) <= MAX_ENUM_VALUES else []
        attributes.append(attr)
    attributes += [role_attribute("manufacturer", config), role_attribute("category", config)]
    docs_dir = Path(config.docs_dir) if config.docs_dir else None
    products = []
    for line, row in rows:
        products.append(_product(config, roles, attributes, docs_dir, line, row, path))
    schema = CatalogSchema(config, attributes)
    for a in schema.stored():
        if a.config.unit_column:
            a.units |= {canonical_unit(u) for p in products if (u := p.units.get(a.name))}
    return products, schema


def _cell(raw: Any) -> Any:
    if isinstance(raw, (list, tuple)):
        return ";".join(str(x) for x in raw)
    return raw


def _product(
    config: CatalogConfig,
    roles: Mapping[str, str],
    attributes: Sequence[Attribute],
    docs_dir: Path | None,
    line: int,
    row: Mapping[str, Any],
    path: str,
) -> Product:
    pid = _text(row.get(roles["id"]))
    if not pid:
        raise DataError(f"missing product id (column {roles['id']!r})", path=path, line=line)
    ident = {role: _text(row.get(col)) for role, col in roles.items() if role not in ("id", "description", "aliases")}
    aliases = tuple(a for a in re.split(r"[,;]", _text(_cell(row.get(roles["aliases"]))) or "") if _model_number(a))
    values: dict[str, Any] = {}
    units: dict[str, str] = {}
    for a in attributes:
        if a.role:
            continue
        raw = row.get(a.column) if a.column else None
        if isinstance(raw, (list, tuple)) and a.kind == "list":
            items = tuple(t for x in raw if (t := _text(x)))
            if items:
                values[a.name] = items
            continue
        if isinstance(raw, bool) and a.kind == "bool":
            values[a.name] = raw
            continue
        text = _text(_cell(raw))
        if text is None:
            continue
        if a.kind == "number":
            values[a.name] = _number(text, a.column or a.name, path, line)
        elif a.kind == "bool":
            if text.lower() not in BOOL_WORDS:
                raise DataError(f"column {a.column!r}: expected yes/no, got {text!r}", path=path, line=line)
            values[a.name] = BOOL_WORDS[text.lower()]
        elif a.kind == "list":
            values[a.name] = tuple(v.strip() for v in text.split(a.config.separator) if v.strip())
        else:
            values[a.name] = text
        if a.config.unit_column and (u := _text(row.get(a.config.unit_column))):
            units[a.name] = u
    description = _text(row.get(roles["description"])) or ""
    if docs_dir is not None and (docs_dir / f"{pid}.md").is_file():
        description = (docs_dir / f"{pid}.md").read_text(encoding="utf-8")
    return Product(
        id=pid,
        name=ident.get("name") or ident.get("model") or pid,
        model=ident.get("model"),
        manufacturer=ident.get("manufacturer"),
        category=ident.get("category"),
        category_de=ident.get("category_de"),
        values=values,
        units=units,
        description=description,
        aliases=aliases,
        line=line,
    )


def _model_number(text: str) -> bool:
    """A single code with letters and digits ("AR323SB"), not a note ("* could be 0-9 or A-Z")."""
    t = text.strip()
    return bool(t) and " " not in t and bool(re.search(r"\d", t)) and bool(re.search(r"[A-Za-z]", t))


def load_catalog(config: CatalogConfig | Mapping[str, Any]) -> Catalog:
    """Read and validate a catalog from its config."""
    cfg = config if isinstance(config, CatalogConfig) else CatalogConfig.model_validate(config)
    return Catalog.from_config(cfg)


__all__ = ["CatalogConfig", "CatalogBotSettings", "Catalog", "Product", "load_catalog", "read_catalog"]
