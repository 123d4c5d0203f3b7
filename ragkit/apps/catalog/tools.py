"""The catalog's tools, typed from its schema: specs, price, compare, filtered search (Qdrant payload filters), text.

Every tool argument that names an attribute, maker or category is an enum of the catalog's own names, so a model's
call is checked (and, for llama.cpp, grammar-constrained) against what the catalog has. Products are named by any
reference the resolver understands (id, model, name, maker + model); an unknown one comes back as ``not_found``
with the closest products.
"""

from __future__ import annotations

import logging
import typing
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ragkit.apps.catalog.catalog import Catalog, Product
from ragkit.apps.catalog.phrases import UnknownMention
from ragkit.apps.catalog.resolve import Resolver
from ragkit.apps.catalog.units import canonical_unit
from ragkit.errors import ConfigError
from ragkit.retrieve.filters import parse_filter
from ragkit.tools import FunctionTool, Toolset

log = logging.getLogger("ragkit.apps.catalog.tools")
Op = Literal["<", "<=", "=", ">=", ">", "!="]
TOOL_NAMES = ("get_product_specs", "get_price", "compare", "filter_products", "search_text")


def _enum(values: Sequence[str]) -> Any:
    return Literal[tuple(values)] if values else str  # type: ignore[valid-type]


def _tolerance(value: float) -> float:
    # "=" on a catalog number allows rounding as written in a question (54.5 vs 54.50, 1.8 vs 1.797 is not equal).
    return max(abs(value) * 0.002, 0.0005)


class CatalogTools:
    """The catalog's tools as typed functions; ``toolset()`` wraps them for a ``ToolLoop`` or a planner."""

    def __init__(self, catalog: Catalog, rag: Any, resolver: Resolver | None = None) -> None:
        self.catalog = catalog
        self.schema = catalog.schema
        self.rag = rag
        self.resolver = resolver or Resolver(catalog, catalog.config.bot.fuzzy_threshold)
        self._condition = self._condition_model()

    # Helpers ---------------------------------------------------------------------------------------------------

    def ref(self, p: Product) -> dict[str, Any]:
        return {"product_id": p.id, "label": self.catalog.label(p)}

    def value_of(self, p: Product, name: str) -> dict[str, Any] | None:
        """One attribute (or group) of one product as {value, unit}; None when the catalog has no value."""
        a = self.schema[name]
        if a.is_group:
            parts = [self.value_of(p, m) for m in a.members]
            if any(x is None for x in parts):
                return None
            return {"value": [x["value"] for x in parts if x], "unit": next((x.get("unit") for x in parts if x), None)}
        value = p.value(name)
        if value is None:
            return None
        out: dict[str, Any] = {"value": list(value) if isinstance(value, tuple) else value}
        unit = p.units.get(name) or a.unit
        if unit:
            out["unit"] = unit
        return out

    def lookup(self, product: str) -> list[Product] | dict[str, Any]:
        """The products a reference names, or a ``not_found`` result with suggestions."""
        found = self.resolver.resolve(product)
        if isinstance(found, UnknownMention):
            return {
                "error": "not_found",
                "query": product,
                "suggestions": [self.ref(self.catalog.products[i]) for i in found.suggestions],
            }
        return [self.catalog.products[i] for i in found.ids]

    # Tools -----------------------------------------------------------------------------------------------------

    def get_product_specs(self, product: str, attributes: list[str] | None = None) -> dict[str, Any]:
        """Values of one product; all of them when no attributes are given. A name several products share returns
        each of them under ``matches``."""
        found = self.lookup(product)
        if isinstance(found, dict):
            return found
        wanted = [a for a in (attributes or []) if a in self.schema] or [
            a.name for a in self.schema.attributes.values() if a.config.describe or a.role
        ]
        matches = []
        for p in found:
            values = {name: v for name in wanted if (v := self.value_of(p, name)) is not None}
            missing = [name for name in wanted if name not in values]
            matches.append({**self.ref(p), "values": values, "missing": missing if attributes else []})
        return matches[0] if len(matches) == 1 else {"query": product, "matches": matches}

    def get_price(self, product: str) -> dict[str, Any]:
        """Price and currency of one product."""
        if not self.schema.price:
            return {"error": "no_prices", "message": "this catalog lists no prices"}
        return self.get_product_specs(product, [self.schema.price])

    def compare(self, products: list[str], attribute: str, prefer: Literal["higher", "lower"] = "higher") -> dict:
        """Which of the products has the higher (or lower) value of one attribute, with every product's value."""
        items: list[Product] = []
        for ref in products:
            found = self.lookup(ref)
            if isinstance(found, dict):
                return found
            items += [p for p in found if p not in items]
        member = self.schema.sort_member(attribute, prefer)
        rows = [{**self.ref(p), **(self.value_of(p, attribute) or {"value": None})} for p in items]
        known = [(p, p.value(member)) for p in items if isinstance(p.value(member), (int, float))]
        out: dict[str, Any] = {"attribute": attribute, "prefer": prefer, "values": rows, "winner": None}
        units = {canonical_unit(p.units.get(member) or self.schema[member].unit) for p, _ in known}
        if len(known) < 2:
            out["problem"] = "missing"
        elif len(units) > 1:
            out["problem"] = "units"
        else:
            ranked = sorted(known, key=lambda pv: pv[1], reverse=prefer == "higher")
            if ranked[0][1] == ranked[1][1]:
                out["problem"] = "tie"
            else:
                out["winner"] = ranked[0][0].id
        return out

    def compile_filter(
        self,
        *,
        category: Sequence[str] | None = None,
        manufacturer: Sequence[str] | None = None,
        where: Sequence[Any] = (),
        in_units: Sequence[str] = (),
        ranked: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The filter DSL of these constraints (a Qdrant payload filter); ``ValueError`` names a contradiction."""
        spec: dict[str, Any] = {}
        if category:
            spec["category"] = {"any": list(category)}
        if manufacturer:
            spec["manufacturer"] = {"any": list(manufacturer)}
        for c in where:
            c = c if isinstance(c, BaseModel) else self._condition.model_validate(c)
            a = self.schema.get(c.attribute)
            if a is None or not a.filterable:
                raise ValueError(f"{c.attribute!r} cannot be filtered on")
            if a.kind in ("text", "list", "bool"):
                value = (
                    c.value
                    if a.kind != "bool"
                    else bool(c.value)
                    if not isinstance(c.value, str)
                    else (c.value.lower() in ("yes", "true", "ja", "1"))
                )
                if c.op not in ("=", "!="):
                    raise ValueError(f"{c.attribute!r} is not a number; use = with one of its values")
                if c.op == "!=" and a.kind == "bool":
                    value = not value
                elif c.op == "!=":
                    raise ValueError(f"{c.attribute!r}: != is only for yes/no attributes")
                before = spec.get(c.attribute)
                if a.kind == "text" and before is not None and before != value:
                    # one text value per product: two asked for mean either ("gas or kerosene"), never both
                    seen = before["any"] if isinstance(before, dict) else [before]
                    value = {"any": [*seen, *([value] if value not in seen else [])]}
                spec[c.attribute] = value
                continue
            if not isinstance(c.value, (int, float)) or isinstance(c.value, bool):
                raise ValueError(f"{c.attribute!r} needs a number, got {c.value!r}")
            bounds = spec.setdefault(c.attribute, {})
            v = float(c.value)
            ops = {"<": ("lt", v), "<=": ("lte", v), ">": ("gt", v), ">=": ("gte", v)}
            if c.op == "=":
                bounds["gte"], bounds["lte"] = v - _tolerance(v), v + _tolerance(v)
            elif c.op in ops:
                op, bound = ops[c.op]
                bounds[op] = bound
            else:
                raise ValueError(f"{c.attribute!r}: != needs a yes/no attribute")
            low = bounds.get("gte", bounds.get("gt"))
            high = bounds.get("lte", bounds.get("lt"))
            if low is not None and high is not None and low > high:
                raise ValueError(
                    f"the lower bound of {a.label('en')} ({low:g}) is greater than its upper bound ({high:g}): "
                    "no product can match"
                )
            if c.unit:
                spec[f"{c.attribute}_unit"] = {"any": self._written_units(c.attribute, [c.unit])}
        # Units named without a number ("priced in EUR") keep the ranked or compared values in those units.
        for name in dict.fromkeys([*ranked, *(getattr(c, "attribute", None) or c.get("attribute") for c in where)]):
            a = self.schema.get(name) if name else None
            if in_units and a is not None and a.config.unit_column and f"{name}_unit" not in spec:
                spec[f"{name}_unit"] = {"any": self._written_units(name, in_units)}
        parse_filter(spec)  # the validation every store applies
        return spec

    def _written_units(self, attribute: str, units: Sequence[str]) -> list[str]:
        """The unit strings as the data write them ("EUR", "KwH/day") for canonical or written units."""
        written = {u for p in self.catalog if (u := p.units.get(attribute))}
        out = set()
        for unit in units:
            want = canonical_unit(unit)
            out |= {
                u
                for u in written
                if canonical_unit(u) == want or ("/" not in want and canonical_unit(u).split("/")[0] == want)
            }
        return sorted(out) or list(units)

    async def search_products(self, spec: Mapping[str, Any], query: str = "product") -> list[Product]:
        """Every product whose indexed record passes ``spec`` (run as a Qdrant payload filter)."""
        limit = max(1, await self.rag.store.count())
        vector = await self.rag.embedder.embed_query(query or "product")
        rows = await self.rag.store.search_dense(vector, limit, dict(spec) or None)
        seen: dict[str, Product] = {}
        for _, _, payload in rows:
            pid = str(payload.get("product_id") or payload.get("doc_id", ""))
            p = self.catalog.get(pid)
            if p is not None:
                seen.setdefault(p.id, p)
        return list(seen.values())

    async def filter_products(
        self,
        category: list[str] | None = None,
        manufacturer: list[str] | None = None,
        where: list[Any] | None = None,
        sort_by: str | None = None,
        descending: bool = False,
        limit: int = 10,
        count_only: bool = False,
        show: list[str] | None = None,
        in_units: list[str] | None = None,
    ) -> dict[str, Any]:
        """Products matching every condition, from the indexed catalog; sorted when ``sort_by`` is given (products
        without that value last). Prices in several currencies (or other per-row units) are ranked per unit."""
        try:
            spec = self.compile_filter(
                category=category,
                manufacturer=manufacturer,
                where=where or (),
                in_units=in_units or (),
                ranked=[sort_by] if sort_by else [],
            )
        except (ValueError, ConfigError) as e:
            return {"error": "invalid_filter", "message": str(e)}
        found = await self.search_products(spec)
        out: dict[str, Any] = {"filter": spec, "count": len(found)}
        shown = [s for s in (show or []) if s in self.schema]
        if sort_by:
            member = self.schema.sort_member(sort_by, "higher" if descending else "lower")
            ranked = [p for p in found if isinstance(p.value(member), (int, float))]
            ranked.sort(key=lambda p: p.value(member), reverse=descending)
            found = ranked + [p for p in found if p not in ranked]
            out.update(sort_by=sort_by, descending=descending)
            shown = [sort_by, *[s for s in shown if s != sort_by]]
            units = {}
            for p in ranked:
                units.setdefault(canonical_unit(p.units.get(member) or self.schema[member].unit), p.id)
            if len(units) > 1:
                out["best_per_unit"] = list(units.values())
        else:
            found.sort(key=lambda p: (self.catalog.label(p).lower(), p.id))
        shown += [
            str(getattr(c, "attribute", None) or (c.get("attribute") if isinstance(c, dict) else ""))
            for c in where or []
        ]
        shown = [s for s in dict.fromkeys(shown) if s in self.schema]
        listed = found[: max(1, limit)] if not count_only else found[:50]
        out["products"] = [
            {**self.ref(p), "values": {s: v for s in shown if (v := self.value_of(p, s)) is not None}} for p in listed
        ]
        return out

    async def search_text(self, query: str, top_k: int = 3) -> list[dict[str, Any]]:
        """Product descriptions that best match a free-text query."""
        hits = await self.rag.asearch(query, top_k=top_k)
        return [{"product_id": h.chunk.doc_id, "text": h.chunk.text, "score": round(float(h.score), 4)} for h in hits]

    # As model tools --------------------------------------------------------------------------------------------

    def _condition_model(self) -> type[BaseModel]:
        filterable = self.schema.filterable()
        return typing.cast(
            type[BaseModel],
            type(
                "Condition",
                (BaseModel,),
                {
                    "__annotations__": {
                        "attribute": _enum(filterable),
                        "op": Op,
                        "value": typing.Union[float, bool, str],
                        "unit": typing.Optional[str],
                    },
                    "model_config": ConfigDict(extra="forbid"),
                    "unit": Field(None, description="Unit of the value when rows differ (a currency …)."),
                    "__doc__": "One condition on a filterable attribute.",
                },
            ),
        )

    def functions(self) -> list[Any]:
        """The tools as plain functions whose annotations carry the catalog's own enums."""
        attrs = _enum(self.schema.askable())
        sortable = _enum(self.schema.sortable())
        makers = _enum(self.catalog.manufacturers())
        cats = _enum(self.catalog.categories())
        cond = self._condition

        def get_product_specs(product, attributes=None):  # type: ignore[no-untyped-def]
            return self.get_product_specs(product, attributes)

        def get_price(product):  # type: ignore[no-untyped-def]
            return self.get_price(product)

        def compare(products, attribute, prefer="higher"):  # type: ignore[no-untyped-def]
            return self.compare(products, attribute, prefer)

        async def filter_products(  # type: ignore[no-untyped-def]
            category=None,
            manufacturer=None,
            where=None,
            sort_by=None,
            descending=False,
            limit=10,
            count_only=False,
            show=None,
            in_units=None,
        ):
            return await self.filter_products(
                category, manufacturer, where, sort_by, descending, limit, count_only, show, in_units
            )

        async def search_text(query, top_k=3):  # type: ignore[no-untyped-def]
            return await self.search_text(query, top_k)

        # Real objects, not strings: the enums are this catalog's names, built at run time.
        opt = typing.Optional
        get_product_specs.__annotations__ = {"product": str, "attributes": opt[list[attrs]], "return": dict}
        get_price.__annotations__ = {"product": str, "return": dict}
        compare.__annotations__ = {
            "products": typing.Annotated[list[str], Field(min_length=2)],
            "attribute": sortable,
            "prefer": Literal["higher", "lower"],
            "return": dict,
        }
        filter_products.__annotations__ = {
            "category": opt[list[cats]],
            "manufacturer": opt[list[makers]],
            "where": opt[list[cond]],
            "sort_by": opt[sortable],
            "descending": bool,
            "limit": typing.Annotated[int, Field(ge=1, le=100)],
            "count_only": bool,
            "show": opt[list[attrs]],
            "in_units": opt[list[str]],
            "return": dict,
        }
        search_text.__annotations__ = {
            "query": typing.Annotated[str, Field(min_length=1)],
            "top_k": typing.Annotated[int, Field(ge=1, le=20)],
            "return": list,
        }
        docs = {
            get_product_specs: "Values of one product, named by id, model, name or maker and model.\n\nArgs:\n"
            "    product: The product's id, model or name as the user wrote it.\n"
            "    attributes: Which attributes to return; all when empty.",
            get_price: "Price and currency of one product.\n\nArgs:\n    product: The product's id, model or name.",
            compare: "Which product has the higher or lower value of one attribute.\n\nArgs:\n"
            "    products: Two or more products (ids, models or names).\n    attribute: The attribute to compare.\n"
            "    prefer: higher or lower wins.",
            filter_products: "Products matching every given condition, optionally sorted.\n\nArgs:\n"
            "    category: Categories to keep.\n    manufacturer: Manufacturers to keep.\n"
            "    where: Conditions on attributes (op is <, <=, =, >=, > or != for yes/no).\n"
            "    sort_by: Attribute to sort by.\n    descending: Sort from the highest value.\n"
            "    limit: Most products returned.\n    count_only: Only the number of matches matters.\n"
            "    show: Attributes to show for each product.\n"
            "    in_units: Keep only values in these units (currencies …) of the attributes filtered or sorted by.",
            search_text: "Search the product descriptions.\n\nArgs:\n    query: What to look for.\n"
            "    top_k: How many passages.",
        }
        fns = [get_product_specs, compare, filter_products, search_text]
        if self.schema.price:
            fns.insert(1, get_price)
        for fn in fns:
            fn.__doc__ = docs[fn]
        return fns

    def toolset(self) -> Toolset:
        """The tools, ready for ``Toolset.execute`` or a ``ToolLoop``."""
        return Toolset([FunctionTool.from_function(fn) for fn in self.functions()])


__all__ = ["CatalogTools", "TOOL_NAMES", "Op"]
