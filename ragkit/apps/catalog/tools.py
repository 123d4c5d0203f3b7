"""The catalog's tools as typed functions: specs, price, filtered search (Qdrant payload filters), text search."""

from __future__ import annotations

import logging
from typing import Any, Literal, Mapping, Sequence

from ragkit.apps.catalog.catalog import Catalog, Product
from ragkit.apps.catalog.render import fmt
from ragkit.errors import ConfigError
from ragkit.retrieve.filters import parse_filter
from ragkit.tools import FunctionTool, Toolset, retrieval_tool

log = logging.getLogger("ragkit.apps.catalog.tools")

SortKey = Literal["price", "volume_l", "temp_min_c", "energy_kwh_per_day", "id"]


class CatalogTools:
    """The catalog's tools as typed functions: specs, price, filtered search (Qdrant payload filters), text search."""

    def __init__(self, catalog: Catalog, rag: Any) -> None:
        self.catalog = catalog
        self.rag = rag

    def not_found(self, product_id: str) -> dict[str, Any]:
        return {
            "error": "not_found",
            "product_id": product_id,
            "suggestions": self.catalog.suggest(product_id),
            "message": f"no product {product_id!r} in the catalog",
        }

    def get_product_specs(self, product_id: str) -> dict[str, Any]:
        """Structured specifications of one product, by exact id.

        Args:
            product_id: The product id, e.g. LABO-288 (case-insensitive).
        """
        p = self.catalog.get(product_id)
        return p.specs() if p else self.not_found(product_id)

    def get_price(self, product_id: str) -> dict[str, Any]:
        """List price and currency of one product, by exact id.

        Args:
            product_id: The product id, e.g. LABO-288 (case-insensitive).
        """
        p = self.catalog.get(product_id)
        if p is None:
            return self.not_found(product_id)
        return {"product_id": p.id, "name": p.name, "price": p.price, "currency": p.currency}

    def resolve_category(self, text: str) -> list[str]:
        """Known categories whose English or German name contains ``text`` (case-insensitive)."""
        t = text.strip().lower()
        t = {"fridge": "refrigerator", "fridges": "refrigerator"}.get(t, t.removesuffix("s"))
        return sorted(
            {
                p.category
                for p in self.catalog
                if p.category and (t in p.category.lower() or (p.category_de and t in p.category_de.lower()))
            }
        )

    def compile_filter(
        self,
        *,
        min_volume: float | None = None,
        max_volume: float | None = None,
        categories: Sequence[str] | None = None,
        manufacturer: str | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
        currency: str | None = None,
        min_temp_c: float | None = None,
        max_temp_c: float | None = None,
        reaches_temp_c: float | None = None,
        door: str | None = None,
    ) -> dict[str, Any]:
        """The filter DSL dict of these constraints; ``ValueError`` names a contradictory pair."""
        for lo, hi, name in (
            (min_volume, max_volume, "volume"),
            (min_price, max_price, "price"),
            (min_temp_c, max_temp_c, "temp_c"),
        ):
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"min_{name} ({fmt(lo)}) is greater than max_{name} ({fmt(hi)}): no product can match")
        spec: dict[str, Any] = {}

        def bound(key: str, op: str, value: float | None) -> None:
            if value is not None:
                spec.setdefault(key, {})[op] = float(value)

        bound("volume_l", "gte", min_volume)
        bound("volume_l", "lte", max_volume)
        bound("price", "gte", min_price)
        bound("price", "lte", max_price)
        bound("temp_min_c", "gte", min_temp_c)
        bound("temp_max_c", "lte", max_temp_c)
        if reaches_temp_c is not None:
            bound("temp_min_c", "lte", reaches_temp_c)
            bound("temp_max_c", "gte", reaches_temp_c)
        if categories is not None:
            spec["category"] = {"any": list(categories)}
        if manufacturer:
            spec["manufacturer"] = manufacturer
        if currency:
            spec["currency"] = currency.upper()
        if door:
            spec["door"] = door
        parse_filter(spec)  # the same validation every store applies
        return spec

    async def search_products(
        self, spec: Mapping[str, Any], query: str = "product", sort_by: SortKey = "price", descending: bool = False
    ) -> list[Product]:
        """Every product whose indexed record passes ``spec`` (a Qdrant payload filter), sorted."""
        limit = max(1, await self.rag.store.count())
        hits = await self.rag.retriever.retrieve(query or "product", limit, dict(spec) or None)
        seen: dict[str, Product] = {}
        for h in hits:
            p = self.catalog.get(str(h.chunk.metadata.get("product_id", h.chunk.doc_id)))
            if p is not None:
                seen.setdefault(p.id, p)
        missing = float("-inf") if descending else float("inf")
        return (
            sorted(
                seen.values(),
                key=lambda p: getattr(p, sort_by) if getattr(p, sort_by) is not None else missing,
                reverse=descending,
            )
            if sort_by != "id"
            else sorted(seen.values(), key=lambda p: p.id)
        )

    async def filter_products(
        self,
        min_volume: float | None = None,
        max_volume: float | None = None,
        category: str | None = None,
        manufacturer: str | None = None,
        max_price: float | None = None,
        min_price: float | None = None,
        currency: str | None = None,
        min_temp_c: float | None = None,
        max_temp_c: float | None = None,
        reaches_temp_c: float | None = None,
        door: Literal["glass", "solid"] | None = None,
        sort_by: SortKey = "price",
        limit: int = 10,
    ) -> dict[str, Any]:
        """Products matching every given constraint, from the indexed catalog.

        Args:
            min_volume: Smallest usable volume in litres.
            max_volume: Largest usable volume in litres.
            category: Part of a category name, e.g. "freezer", "ultra-low", "vaccine".
            manufacturer: Exact manufacturer name.
            max_price: Highest list price (in ``currency`` when given).
            min_price: Lowest list price.
            currency: EUR, USD or CHF; prices in other currencies are not compared.
            min_temp_c: The lowest set-point must be at or above this (°C).
            max_temp_c: The highest set-point must be at or below this (°C).
            reaches_temp_c: The temperature range must include this temperature (°C).
            door: glass or solid.
            sort_by: Field to sort by, ascending.
            limit: Most products returned.
        """
        categories = None
        if category:
            categories = self.resolve_category(category)
            if not categories:
                return {
                    "error": "unknown_category",
                    "category": category,
                    "known": self.catalog.categories(),
                    "message": f"no category matches {category!r}",
                }
        if manufacturer:
            known = {m.lower(): m for m in self.catalog.manufacturers()}
            manufacturer = known.get(manufacturer.lower(), manufacturer)
        try:
            spec = self.compile_filter(
                min_volume=min_volume,
                max_volume=max_volume,
                categories=categories,
                manufacturer=manufacturer,
                min_price=min_price,
                max_price=max_price,
                currency=currency,
                min_temp_c=min_temp_c,
                max_temp_c=max_temp_c,
                reaches_temp_c=reaches_temp_c,
                door=door,
            )
        except (ValueError, ConfigError) as e:
            return {"error": "invalid_range", "message": str(e)}
        found = await self.search_products(spec, sort_by=sort_by)
        return {"filter": spec, "count": len(found), "products": [p.specs() for p in found[: max(1, limit)]]}

    def toolset(self) -> Toolset:
        """The four tools, ready for a ``ToolLoop``."""
        return Toolset(
            [
                FunctionTool.from_function(self.get_product_specs),
                FunctionTool.from_function(self.filter_products),
                FunctionTool.from_function(self.get_price),
                retrieval_tool(
                    self.rag.retriever,
                    "search_knowledge_base",
                    description="Search the product descriptions; returns passages with their product ids.",
                ),
            ]
        )


# Answer text ----------------------------------------------------------------------------------------

__all__ = ["CatalogTools", "SortKey"]
