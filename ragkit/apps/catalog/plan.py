"""A plan: which catalog tools to call for a question. The rules planner builds one from what the question names
(``Understanding``); the model planner (``ragkit.apps.catalog.planner``) has a local model write one.

Both plan from the question alone: text inside product descriptions or tool results never decides which tools run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ragkit.apps.catalog.catalog import Catalog
from ragkit.apps.catalog.understand import Condition, Understanding

Kind = Literal["tools", "not_found", "lacking", "unknown_maker", "free", "unclear"]
ADVICE = (
    "suitable",
    "suited",
    "good for",
    "best for",
    "recommend",
    "should i",
    "for storing",
    "to store",
    "geeignet",
    "eignet",
    "empfiehl",
    "empfehl",
    "zur lagerung",
    "für die lagerung",
    "zum lagern",
)


@dataclass
class Call:
    """One planned tool call."""

    tool: str
    args: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": self.args}


@dataclass
class Plan:
    """The calls to run (in parallel) and what kind of answer they make."""

    kind: Kind
    calls: list[Call] = field(default_factory=list)
    source: str = "rules"  # rules | model | id_fast_path
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "calls": [c.as_dict() for c in self.calls], "note": self.note}


def _named(x: Any) -> str:
    """An unknown product as the question names it, with its maker when one was written before it."""
    return f"{x.maker} {x.text}" if x.maker and not x.text.lower().startswith(x.maker.lower()) else x.text


def where_of(c: Condition, attribute: str, catalog: Catalog) -> list[dict[str, Any]]:
    """Tool conditions for one read condition on one attribute; "=" on a range group means "within the range"."""
    unit = c.unit if c.unit and catalog.schema[attribute].config.unit_column else None
    return [{"attribute": attribute, "op": c.op, "value": c.value, **({"unit": unit} if unit else {})}]


def _range_group(catalog: Catalog, attributes: tuple[str, ...]) -> tuple[str, str] | None:
    for a in catalog.schema.attributes.values():
        if a.is_range and set(attributes) <= set(a.members) and len(attributes) > 1:
            return a.members[0], a.members[-1]
    return None


def rule_plan(u: Understanding, catalog: Catalog) -> Plan:
    """The plan the schema-driven reading of the question implies."""
    schema = catalog.schema
    ents = u.entities
    mentions = ents.products
    asked = u.asked()
    if not mentions and ents.unknown:
        return Plan("not_found", [Call("get_product_specs", {"product": _named(x)}) for x in ents.unknown[:2]])
    if u.lacking and not asked:
        return Plan("lacking", [Call("get_product_specs", {"product": pid}) for pid in ents.product_ids()[:3]])
    if u.unknown_makers and not mentions and not ents.makers:
        return Plan("unknown_maker", note=", ".join(u.unknown_makers))
    ids = ents.product_ids()
    if len(ids) >= 2 and (u.compare or u.way):
        sortable = [a for a in asked if schema[a].sortable]
        attribute = sortable[0] if sortable else u.way_attribute
        if attribute:
            prefer = u.way or "higher"
            return Plan("tools", [Call("compare", {"products": ids, "attribute": attribute, "prefer": prefer})])
    if mentions:
        calls = []
        for pid in ids[:6]:
            if asked == [schema.price] and schema.price:
                calls.append(Call("get_price", {"product": pid}))
            else:
                calls.append(Call("get_product_specs", {"product": pid, **({"attributes": asked} if asked else {})}))
        calls += [Call("get_product_specs", {"product": _named(x)}) for x in ents.unknown[:2]]
        return Plan("tools", calls)
    return _filter_plan(u, catalog, asked)


def _filter_plan(u: Understanding, catalog: Catalog, asked: list[str]) -> Plan:
    schema = catalog.schema
    ents = u.entities
    base: dict[str, Any] = {}
    if u.categories:
        base["category"] = u.categories
    if ents.makers:
        base["manufacturer"] = ents.maker_values()
    where: list[dict[str, Any]] = []
    alternatives: list[list[dict[str, Any]]] = []  # "=" on one of several attributes with that unit: one call each
    for c in u.conditions:
        group = _range_group(catalog, c.attributes) if c.op == "=" else None
        if group:
            low, high = group
            where += [
                {"attribute": low, "op": "<=", "value": c.value},
                {"attribute": high, "op": ">=", "value": c.value},
            ]
        elif len(c.attributes) > 1 and not alternatives:
            alternatives = [where_of(c, a, catalog) for a in c.attributes]
        else:
            where += where_of(c, c.attributes[0], catalog)
    for attribute, value in u.values:
        if schema[attribute].filterable:
            where.append({"attribute": attribute, "op": "=", "value": value})
    for attribute, flag in u.flags:
        if schema[attribute].filterable:
            where.append({"attribute": attribute, "op": "=", "value": flag})
    sort_by = None
    if u.way:
        sortable = [a for a in asked if schema[a].sortable]
        sort_by = sortable[0] if sortable else u.way_attribute
    if sort_by:
        base.update(sort_by=sort_by, descending=u.way == "higher")
    if u.count:
        base["count_only"] = True
    if u.units:
        base["in_units"] = u.units
    constrained = (
        where
        or alternatives
        or ents.makers
        or sort_by
        or (u.categories and not advice_only(u, catalog))
        or (u.units and u.count)  # "how many are priced in USD"
    )
    if not constrained:
        if u.lacking:
            return Plan("lacking")
        return Plan("free")
    show = [a for a in asked if a in schema and a != sort_by]
    if show:
        base["show"] = show
    if alternatives:
        return Plan("tools", [Call("filter_products", {**base, "where": where + alt}) for alt in alternatives])
    return Plan("tools", [Call("filter_products", {**base, **({"where": where} if where else {})})])


def advice_only(u: Understanding, catalog: Catalog) -> bool:
    """An advice question ("which fridge suits solvents?") naming at most a broad kind of product: the descriptions,
    not a filter, answer it."""
    broad = u.categories is None or len(u.categories) * 3 > max(3, len(catalog.categories()))
    plain = not (u.conditions or u.values or u.flags or u.entities.makers or u.way or u.count)
    return broad and plain and any(w in u.question.lower() for w in ADVICE)


def id_fast_path(u: Understanding, catalog: Catalog) -> bool:
    """Whether every product the question names is named by its exact id (those answer without a model)."""
    mentions = u.entities.products
    return bool(mentions) and not u.entities.unknown and all(catalog.get(m.text) is not None for m in mentions)


__all__ = ["Call", "Plan", "Kind", "rule_plan", "id_fast_path", "advice_only", "where_of"]
