"""The YAML ``catalog`` section: the file, which columns say what, each attribute's schema, the bot's settings."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from ragkit.component import ComponentConfig

Lang = Literal["en", "de"]
Texts = dict[Lang, str]
Words = dict[Lang, list[str]]
ROLES = ("id", "name", "model", "manufacturer", "category", "category_de", "description", "aliases")


class DirectionConfig(ComponentConfig):
    """What "more" or "less" of an attribute is called: the words that ask for it and the verdict that answers."""

    words: Words = Field(
        default_factory=dict, description="Comparatives and superlatives, e.g. en: [larger, largest, bigger]."
    )
    verdict: Texts = Field(
        default_factory=dict, description="How a comparison names the winner, e.g. en: 'has the larger volume'."
    )


class AttributeConfig(ComponentConfig):
    """One product attribute: its column, type, unit, names in English and German, and what it may be used for."""

    column: str | None = Field(None, max_length=200, description="Source column/key; default: the attribute's name.")
    type: Literal["auto", "number", "text", "list", "bool"] = Field(
        "auto", description="auto: number when every value parses as one, else text."
    )
    unit: str | None = Field(None, max_length=40, description="The unit of every value, e.g. l, kWh/yr, in, days.")
    unit_column: str | None = Field(
        None, max_length=200, description="Column holding each row's unit (a currency, kW or kWh/day …)."
    )
    unit_labels: dict[str, Texts] = Field(
        default_factory=dict, description="How a unit is written in answers, e.g. l: {en: litres, de: Liter}."
    )
    label: Texts = Field(default_factory=dict, description="Name in answers, e.g. en: usable volume, de: Nutzinhalt.")
    synonyms: Words = Field(default_factory=dict, description="Words buyers use for this attribute, per language.")
    values: dict[str, Words] = Field(
        default_factory=dict, description="Text values -> words naming them per language (the first is shown)."
    )
    filterable: bool | None = Field(None, description="Usable in filters; default: numbers, booleans, short texts.")
    sortable: bool | None = Field(None, description="Usable for sorting and comparisons; default: numbers.")
    higher: DirectionConfig | None = Field(None, description="What more of it is called (larger, colder …).")
    lower: DirectionConfig | None = Field(None, description="What less of it is called (smaller, cheaper …).")
    sentence: Texts = Field(
        default_factory=dict, description="Answer template with {product} and {value}, per language."
    )
    format: Texts = Field(default_factory=dict, description="Value template with {value}, e.g. en: '{value} door'.")
    describe: bool = Field(True, description="Part of a product's summary.")
    separator: str = Field(";", min_length=1, max_length=5, description="List values: the separator in the source.")


class GroupConfig(AttributeConfig):
    """Several attributes asked and shown as one: a range (min, max) or a tuple such as W × D × H."""

    members: list[str] = Field(..., min_length=2, max_length=8, description="Attribute names, in display order.")
    range: bool = Field(False, description="The first member is the low end, the last the high end of a range.")


class CatalogBotSettings(ComponentConfig):
    """How the catalog bot answers: who plans tool calls, what goes to the model and when it abstains."""

    planner: Literal["model", "rules", "tool_loop"] = Field(
        "model",
        description="model: the planner generator writes the tool calls as grammar-constrained JSON; rules: the "
        "schema-driven reading plans them (also the fallback without a usable planner); tool_loop: an API model "
        "calls the tools in a ToolLoop and writes the answer (numbers checked).",
    )
    planner_generator: str | None = Field(
        None, max_length=100, description="Generator that plans tool calls; default: the pipeline's default."
    )
    planner_max_tokens: int = Field(160, ge=16, le=2000, description="Most tokens of one plan.")
    use_generator: bool = Field(
        True, description="Answer free-text questions with the pipeline's generator; off: abstain instead."
    )
    min_relevance: float = Field(
        0.4, ge=-1.0, le=1.0, description="Free-text questions abstain when the best dense cosine score is below this"
    )
    min_sparse: float = Field(
        4.0, ge=0.0, le=1000.0, description="... and the best BM25 score is below this (catches non-English questions)."
    )
    max_listed: int = Field(10, ge=1, le=200, description="Most products listed in a filter answer.")
    fuzzy_threshold: float = Field(
        0.82, ge=0.5, le=1.0, description="Least similarity for a misspelt product name to count as that product."
    )
    free_text: Literal["rag", "tools"] = Field(
        "rag",
        description="Free text via RAG over retrieved descriptions, or a ToolLoop over the catalog tools (API models).",
    )
    max_tool_rounds: int = Field(4, ge=1, le=20, description="Most tool rounds in 'tools' mode.")
    check_numbers: bool = Field(True, description="Check numbers in generated answers against the catalog.")


class CatalogConfig(ComponentConfig):
    """The YAML ``catalog`` section: the file, which columns are the product's id, name, maker, category, and the
    schema of every other attribute (unit, labels and synonyms in English and German, filterable, sortable)."""

    path: str = Field(..., min_length=1, max_length=4096, description="JSON list of objects or CSV file.")
    format: Literal["auto", "json", "csv"] = Field("auto", description="File format; auto decides by the suffix.")
    encoding: str = Field("utf-8-sig", max_length=40, description="Text encoding; utf-8-sig also reads a BOM.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        max_length=len(ROLES),
        description=f"Role -> source column for the roles {', '.join(ROLES)} (default: the role's name).",
    )
    attributes: dict[str, AttributeConfig] = Field(
        default_factory=dict, max_length=200, description="Attribute name -> its schema."
    )
    groups: dict[str, GroupConfig] = Field(
        default_factory=dict, max_length=50, description="Attributes asked and shown together (ranges, W × D × H)."
    )
    infer_attributes: bool = Field(
        False, description="Also make an attribute of every other column (type guessed, label = column name)."
    )
    ignore_columns: list[str] = Field(
        default_factory=list, max_length=200, description="Columns never used (with infer_attributes)."
    )
    price: str | None = Field(None, max_length=100, description="The attribute get_price reports; None: no prices.")
    label: str = Field(
        "{maker_model}{details}",
        max_length=200,
        description="How a product is named in answers: {id}, {name}, {model}, {manufacturer}, {maker_model} "
        "(maker and model), {details} (' (name, id)' where they add something).",
    )
    maker_synonyms: dict[str, list[str]] = Field(
        default_factory=dict, description="Manufacturer -> other names for it (abbreviations, old names)."
    )
    category_synonyms: dict[str, Words] = Field(
        default_factory=dict, description="Category -> words buyers use for it, per language."
    )
    maker_label: Texts = Field(default_factory=dict, description="Word for the manufacturer, per language.")
    category_label: Texts = Field(default_factory=dict, description="Word for the category, per language.")
    skip_rows: dict[str, list[str]] = Field(
        default_factory=dict, max_length=32, description="Source column -> values that mark helper rows to skip."
    )
    id_pattern: str | None = Field(
        None, max_length=500, description="Regex for product ids in questions; unknown ones get 'not found'."
    )
    docs_dir: str | None = Field(None, max_length=4096, description="Directory of <id>.md product descriptions.")
    schema_file: str | None = Field(
        None, max_length=4096, description="YAML with fields/attributes/groups/…; settings here override it."
    )
    licence_note: str | None = Field(None, max_length=2000, description="Attribution shown with answers.")
    bot: CatalogBotSettings = Field(default_factory=CatalogBotSettings, description="How the catalog bot answers.")

    @model_validator(mode="before")
    @classmethod
    def _merge_schema_file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("schema_file"):
            return data
        from pathlib import Path

        from ragkit.yaml_source import read_yaml

        try:
            text = Path(data["schema_file"]).read_text(encoding="utf-8")
        except OSError as e:
            raise ValueError(f"schema_file: cannot read {data['schema_file']}: {e.strerror}") from e
        base, _ = read_yaml(text, data["schema_file"])
        if not isinstance(base, dict):
            raise ValueError(f"schema_file {data['schema_file']}: expected a mapping")
        merged = {**base, **data}
        for key in ("fields", "attributes", "groups", "maker_synonyms", "category_synonyms"):
            if isinstance(base.get(key), dict) and isinstance(data.get(key), dict):
                merged[key] = {**base[key], **data[key]}
        return merged

    def model_post_init(self, __context: Any) -> None:
        unknown = sorted(set(self.fields) - set(ROLES))
        if unknown:
            raise ValueError(
                f"fields: unknown role(s) {', '.join(unknown)}; expected some of {', '.join(ROLES)} "
                "(other columns are declared under 'attributes')"
            )
        clash = sorted(set(self.attributes) & set(self.groups))
        if clash:
            raise ValueError(f"groups: {', '.join(clash)} is also an attribute; pick another group name")
        for name, group in self.groups.items():
            missing = [m for m in group.members if m not in self.attributes]
            if missing:
                raise ValueError(f"groups.{name}: members {', '.join(missing)} are not declared under attributes")
        if self.price is not None and self.price not in self.attributes:
            raise ValueError(f"price: {self.price!r} is not declared under attributes")
        if self.id_pattern:
            try:
                re.compile(self.id_pattern)
            except re.error as e:
                raise ValueError(f"id_pattern is not a valid regex: {e}") from e


__all__ = [
    "ROLES",
    "Lang",
    "DirectionConfig",
    "AttributeConfig",
    "GroupConfig",
    "CatalogBotSettings",
    "CatalogConfig",
]
