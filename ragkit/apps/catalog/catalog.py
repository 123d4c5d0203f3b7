"""A structured product catalog read from JSON or CSV through a field mapping, indexable as Documents.

The same code reads the example lab catalog (JSON, fields named as below) and the WHO/HERMES vaccine
refrigerator table (CSV, other column names, helper rows to skip): the YAML ``catalog`` section says how.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

from pydantic import Field

from ragkit.component import ComponentConfig
from ragkit.errors import ConfigError, DataError
from ragkit.types import Document

# Canonical product fields; a mapping names the source column of each (same name when unmapped).
NUMBER_FIELDS = (
    "volume_l",
    "freezer_volume_l",
    "temp_min_c",
    "temp_max_c",
    "energy_kwh_per_day",
    "power_rate",
    "width_mm",
    "depth_mm",
    "height_mm",
    "price",
)
TEXT_FIELDS = (
    "id",
    "name",
    "model",
    "manufacturer",
    "category",
    "category_de",
    "door",
    "currency",
    "monitoring",
    "power_unit",
    "description",
)
LIST_FIELDS = ("alarms",)
CANONICAL_FIELDS = (*TEXT_FIELDS, *NUMBER_FIELDS, *LIST_FIELDS)


class CatalogBotSettings(ComponentConfig):
    """How the catalog bot answers: what goes to the model and when it abstains."""

    use_generator: bool = Field(
        True, description="Answer free-text questions with the pipeline's generator; off: abstain instead."
    )
    min_relevance: float = Field(
        0.4,
        ge=-1.0,
        le=1.0,
        description="Free-text questions abstain when the best dense cosine score is below this ...",
    )
    min_sparse: float = Field(
        4.0, ge=0.0, le=1000.0, description="... and the best BM25 score is below this (catches non-English questions)."
    )
    max_listed: int = Field(10, ge=1, le=200, description="Most products listed in a filter answer.")
    free_text: Literal["rag", "tools"] = Field(
        "rag",
        description="Free text via RAG over retrieved descriptions, or a ToolLoop over the catalog tools (needs a tool-calling model).",
    )
    max_tool_rounds: int = Field(4, ge=1, le=20, description="Most tool rounds in 'tools' mode.")
    check_numbers: bool = Field(
        True, description="Check numbers in generated answers against the catalog and flag wrong ones."
    )


class CatalogConfig(ComponentConfig):
    """The YAML ``catalog`` section: where the catalog is, how its columns map onto product fields, how ids look."""

    path: str = Field(
        ...,
        min_length=1,
        max_length=4096,
        description="JSON list of objects or CSV file, relative to the working directory.",
    )
    format: Literal["auto", "json", "csv"] = Field("auto", description="File format; auto decides by the file suffix.")
    fields: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Product field -> source column/key."
    )
    skip_rows: dict[str, list[str]] = Field(
        default_factory=dict, max_length=32, description="Source column -> values that mark helper rows to skip."
    )
    id_pattern: str = Field(
        r"[A-Za-z]{2,}(?:-[A-Za-z0-9]+)*-[A-Za-z]*\d[A-Za-z0-9]*",
        min_length=1,
        max_length=500,
        description="Regex for what looks like a product id in a question (unknown ones get a 'not found' answer).",
    )
    docs_dir: str | None = Field(
        None,
        max_length=4096,
        description="Directory of <id>.md descriptions; else the description field or generated text.",
    )
    licence_note: str | None = Field(
        None, max_length=2000, description="Attribution shown with answers from this catalog."
    )
    bot: CatalogBotSettings = Field(default_factory=CatalogBotSettings, description="How the catalog bot answers.")

    def model_post_init(self, __context: Any) -> None:
        unknown = sorted(set(self.fields) - set(CANONICAL_FIELDS))
        if unknown:
            raise ValueError(
                f"fields: unknown product field(s) {', '.join(unknown)}; expected some of {', '.join(CANONICAL_FIELDS)}"
            )
        try:
            re.compile(self.id_pattern)
        except re.error as e:
            raise ValueError(f"id_pattern is not a valid regex: {e}") from e


@dataclass(frozen=True)
class Product:
    """One catalog record with its structured fields; absent values are None."""

    id: str
    name: str = ""
    model: str | None = None
    manufacturer: str | None = None
    category: str | None = None
    category_de: str | None = None
    volume_l: float | None = None
    freezer_volume_l: float | None = None
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    energy_kwh_per_day: float | None = None
    power_rate: float | None = None
    power_unit: str | None = None
    door: str | None = None
    width_mm: float | None = None
    depth_mm: float | None = None
    height_mm: float | None = None
    price: float | None = None
    currency: str | None = None
    monitoring: str | None = None
    alarms: tuple[str, ...] = ()
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def specs(self) -> dict[str, Any]:
        """The structured fields that are set (no description), JSON-ready."""
        out: dict[str, Any] = {"product_id": self.id, "name": self.name}
        for key in (*TEXT_FIELDS, *NUMBER_FIELDS):
            if key in ("id", "name", "description"):
                continue
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.alarms:
            out["alarms"] = list(self.alarms)
        return out

    def payload(self) -> dict[str, Any]:
        """Metadata for the indexed Document: filterable fields, numbers as floats, plus a title."""
        meta = self.specs()
        for key in NUMBER_FIELDS:
            if key in meta:
                meta[key] = float(meta[key])
        meta["title"] = f"{self.id} — {self.name}" if self.name and self.name != self.id else self.id
        return meta


def _number(raw: Any, column: str, path: str, line: int) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise DataError(f"column {column!r}: expected a number, got {raw!r}", path=path, line=line)
    try:
        value = float(str(raw).replace(",", ".")) if isinstance(raw, str) else float(raw)
    except ValueError as e:
        raise DataError(f"column {column!r}: expected a number, got {raw!r}", path=path, line=line) from e
    if not math.isfinite(value):
        raise DataError(f"column {column!r}: expected a finite number, got {raw!r}", path=path, line=line)
    return int(value) if value.is_integer() else value


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    text = " ".join(str(raw).split())
    return text or None


def _alarms(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, (list, tuple)):
        return tuple(str(a).strip() for a in raw if str(a).strip())
    return tuple(a.strip() for a in str(raw).split(";") if a.strip())


def generated_description(p: Product) -> str:
    """A plain-text spec sentence, for records without a description of their own."""
    parts = [f"{p.id} — {p.name}." if p.name else f"{p.id}."]
    if p.manufacturer:
        parts.append(f"Manufacturer: {p.manufacturer}.")
    if p.category:
        parts.append(f"Category: {p.category}.")
    if p.volume_l is not None:
        parts.append(f"Cooled volume: {p.volume_l} litres.")
    if p.freezer_volume_l:
        parts.append(f"Freezer volume: {p.freezer_volume_l} litres.")
    if p.temp_min_c is not None and p.temp_max_c is not None:
        parts.append(f"Temperature range: {p.temp_min_c} °C to {p.temp_max_c} °C.")
    if p.power_rate is not None and p.power_unit:
        parts.append(f"Power use: {p.power_rate} {p.power_unit}.")
    if p.price is not None:
        parts.append(f"Price: {p.price} {p.currency or ''}".rstrip() + ".")
    for key, value in p.extra.items():
        parts.append(f"{key}: {value}.")
    return " ".join(parts)


class Catalog:
    """Products by id, with whole-word id lookup in free text and close-id suggestions."""

    def __init__(
        self,
        products: Sequence[Product],
        *,
        id_pattern: str = CatalogConfig.model_fields["id_pattern"].default,
        licence_note: str | None = None,
        source: str = "",
    ) -> None:
        self.products: dict[str, Product] = {}
        for p in products:
            if p.id in self.products:
                raise DataError(f"duplicate product id {p.id!r}", path=source or None)
            self.products[p.id] = p
        self._by_upper = {pid.upper(): pid for pid in self.products}
        self.licence_note = licence_note
        self.source = source
        self._candidate = re.compile(rf"(?<![\w-])(?:{id_pattern})(?![\w]|-\w)")
        # Longest first, so MED-COOL-300 wins over a shorter id it contains; lookarounds keep matches whole.
        alternatives = "|".join(re.escape(pid) for pid in sorted(self.products, key=len, reverse=True))
        self._known = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w]|-\w)", re.IGNORECASE) if alternatives else None
        self._by_name = {p.name.lower(): p.id for p in self.products.values() if p.name and p.name != p.id}
        names = "|".join(re.escape(n) for n in sorted(self._by_name, key=len, reverse=True))
        self._names = re.compile(rf"(?<![\w-])(?:{names})(?![\w]|-\w)", re.IGNORECASE) if names else None

    @classmethod
    def from_config(cls, config: CatalogConfig) -> Catalog:
        return cls(
            list(read_products(config)),
            id_pattern=config.id_pattern,
            licence_note=config.licence_note,
            source=config.path,
        )

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products.values())

    def get(self, product_id: str) -> Product | None:
        """Exact, case-insensitive id lookup."""
        key = self._by_upper.get(product_id.strip().upper())
        return self.products[key] if key else None

    def suggest(self, product_id: str, n: int = 3) -> list[str]:
        """Known ids closest to ``product_id``."""
        found = difflib.get_close_matches(product_id.strip().upper(), list(self._by_upper), n=n, cutoff=0.5)
        return [self._by_upper[f] for f in found]

    def find_ids(self, text: str) -> list[str]:
        """Known product ids named in ``text`` (whole, case-insensitive), in order of first mention."""
        if self._known is None:
            return []
        seen: dict[str, None] = {}
        for m in self._known.finditer(text):
            seen.setdefault(self._by_upper[m.group(0).upper()], None)
        return list(seen)

    def find_mentions(self, text: str) -> list[str]:
        """Ids of products named in ``text`` by id or by full name, in order of first mention."""
        found = (
            [(m.start(), self._by_upper[m.group(0).upper()]) for m in self._known.finditer(text)] if self._known else []
        )
        if self._names is not None:
            found += [(m.start(), self._by_name[m.group(0).lower()]) for m in self._names.finditer(text)]
        return list(dict.fromkeys(pid for _, pid in sorted(found)))

    def unknown_ids(self, text: str) -> list[str]:
        """Tokens that look like product ids (``id_pattern``) but name no product."""
        return [m.group(0) for m in self._candidate.finditer(text) if m.group(0).upper() not in self._by_upper]

    def categories(self) -> list[str]:
        return sorted({p.category for p in self if p.category})

    def manufacturers(self) -> list[str]:
        return sorted({p.manufacturer for p in self if p.manufacturer})

    def documents(self) -> list[Document]:
        """One Document per product: its description as text, its structured fields as metadata."""
        return [Document(id=p.id, text=p.description or generated_description(p), metadata=p.payload()) for p in self]


def _rows(config: CatalogConfig) -> Iterator[tuple[int, Mapping[str, Any]]]:
    path = Path(config.path)
    fmt = config.format
    if fmt == "auto":
        fmt = "csv" if path.suffix.lower() in (".csv", ".tsv") else "json"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ConfigError(f"cannot read catalog file {path}: {e.strerror}") from e
    if fmt == "csv":
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        for row in reader:
            yield reader.line_num, row
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON: {e.msg}", path=str(path), line=e.lineno) from e
    if not isinstance(data, list):
        raise DataError("expected a JSON list of product objects", path=str(path))
    for i, row in enumerate(data, 1):
        if not isinstance(row, Mapping):
            raise DataError(f"item {i}: expected an object, got {type(row).__name__}", path=str(path))
        yield i, row


def read_products(config: CatalogConfig) -> Iterator[Product]:
    """Products of the configured file, mapped onto canonical fields; helper rows are skipped."""
    path = config.path
    mapping = {name: config.fields.get(name, name) for name in CANONICAL_FIELDS}
    used = set(mapping.values())
    docs_dir = Path(config.docs_dir) if config.docs_dir else None
    for line, row in _rows(config):
        if any(str(row.get(col, "")).strip() in values for col, values in config.skip_rows.items()):
            continue
        pid = _text(row.get(mapping["id"]))
        if not pid:
            raise DataError(f"missing product id (column {mapping['id']!r})", path=path, line=line)
        values: dict[str, Any] = {"id": pid}
        for key in TEXT_FIELDS[1:]:
            values[key] = _text(row.get(mapping[key]))
        for key in NUMBER_FIELDS:
            values[key] = _number(row.get(mapping[key]), mapping[key], path, line)
        values["alarms"] = _alarms(row.get(mapping["alarms"]))
        values["name"] = values["name"] or pid
        if (
            values["energy_kwh_per_day"] is None
            and values["power_rate"] is not None
            and (values["power_unit"] or "").lower().replace(" ", "") == "kwh/day"
        ):
            values["energy_kwh_per_day"] = values["power_rate"]
        description = values.pop("description") or ""
        if docs_dir is not None and (docs_dir / f"{pid}.md").is_file():
            description = (docs_dir / f"{pid}.md").read_text(encoding="utf-8")
        extra = {k: v for k, v in row.items() if k not in used and k and _text(v) and not isinstance(v, (list, dict))}
        yield Product(**values, description=description, extra=extra)


def load_catalog(config: CatalogConfig | Mapping[str, Any]) -> Catalog:
    """Read and validate a catalog from its config."""
    cfg = config if isinstance(config, CatalogConfig) else CatalogConfig.model_validate(config)
    return Catalog.from_config(cfg)


__all__ = [
    "CatalogConfig",
    "CatalogBotSettings",
    "Catalog",
    "Product",
    "load_catalog",
    "read_products",
    "generated_description",
    "CANONICAL_FIELDS",
    "NUMBER_FIELDS",
]
