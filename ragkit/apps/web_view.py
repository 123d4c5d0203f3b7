"""What the chat page shows besides the answer text, as JSON: spec cards, comparison and filter tables, sources
with their snippets, grounding flags, and the conversation kept for follow-ups.

A view is built from the catalog bot's tool calls (``Reply.metadata["tool_calls"]``). The bot does not put the tool
results in the reply yet, so the calls are run again here: they read the catalog and its index only, so the same
call gives the same result. A filter's table is run with every match (up to ``MAX_ROWS``) and the page pages it.
Every value is written by the catalog renderer (number, unit label, currency); a missing one is ``MISSING``.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Mapping, Sequence

from ragkit.answer.conversation import content_words, needs_context, trim_history
from ragkit.language import Lang, is_german
from ragkit.types import Message

log = logging.getLogger("ragkit.apps.web_view")

MISSING = "—"
MAX_ROWS = 1000  # most rows a filter table carries; the page shows them a page at a time
MAX_COLUMNS = 7
MAX_SNIPPET_CHARS = 700
MAX_HISTORY_MESSAGES = 40
FILTER_KEYS = ("category", "manufacturer", "where", "sort_by", "descending")


def lang_of(question: str) -> Lang:
    return "de" if is_german(question) else "en"


def history_of(raw: Any, count: Callable[[str], int], max_tokens: int) -> list[Message]:
    """The page's history (``[{"role", "content"}, …]``), checked, then trimmed to ``max_tokens``."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_HISTORY_MESSAGES:
        raise ValueError(f"history must be a list of at most {MAX_HISTORY_MESSAGES} messages")
    out = []
    for k, m in enumerate(raw):
        if (
            not isinstance(m, dict)
            or m.get("role") not in ("user", "assistant")
            or not isinstance(m.get("content"), str)
        ):
            raise ValueError(f"history[{k}] must be {{'role': 'user' or 'assistant', 'content': text}}")
        out.append(Message(m["role"], m["content"]))
    return trim_history(out, count, max_tokens)


def follow_up(question: str, history: Sequence[Message], answerer: Any) -> str:
    """A follow-up that names no product, asked of the catalog bot, gets the products the last answer named.

    The bot reads each question on its own; "and the cheaper one?" needs the products it refers to.
    """
    resolver = getattr(answerer, "resolver", None)
    if resolver is None or not history or needs_context(question) is None:
        return question
    if resolver.find(question).product_ids():
        return question
    for m in reversed(history):
        ids = resolver.find(m.content).product_ids() if m.content.strip() else []
        if ids:
            ids, word = ids[:10], " oder " if lang_of(question) == "de" else " or "
            named = ids[0] if len(ids) == 1 else ", ".join(ids[:-1]) + word + ids[-1]
            return f"{question} {named}"
    return question


# Sources and grounding ------------------------------------------------------------------------------------------


def sources_view(reply: Any, question: str) -> list[dict[str, Any]]:
    """Each source: number, product/document id, title, snippet and the question's words the snippet holds."""
    words = content_words(question + " " + str((getattr(reply, "metadata", {}) or {}).get("query") or ""))
    out = []
    for n, hit in enumerate(getattr(reply, "sources", ()) or (), 1):
        text = hit.chunk.text
        snippet = text if len(text) <= MAX_SNIPPET_CHARS else text[:MAX_SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
        folded = snippet.casefold()
        terms = sorted({w for w in words if len(w) > 2 and w.casefold() in folded}, key=len, reverse=True)
        title = str(hit.chunk.metadata.get("title") or hit.chunk.doc_id)
        out.append({"n": n, "doc_id": hit.chunk.doc_id, "title": title, "snippet": snippet, "terms": terms})
    return out


def flags_of(reply: Any) -> list[dict[str, str]]:
    """Claims of the answer no source backs, each with the words to mark and why."""
    meta = getattr(reply, "metadata", {}) or {}
    out: list[dict[str, str]] = []
    grounding = meta.get("grounding")
    for s in getattr(grounding, "sentences", ()):
        for n in s.bad_citations:
            out.append({"text": f"[{n}]", "reason": f"[{n}] points to no source"})
        for c in s.claims:
            if not c.supported:
                out.append({"text": c.text, "reason": f"no source holds {c.kind} {c.text}"})
    for c in getattr(meta.get("claims"), "wrong", ()):
        out.append({"text": c.text, "reason": f"no catalog value backs {c.text}"})
    return list({f["text"]: f for f in out}.values())


# Tables and cards -----------------------------------------------------------------------------------------------


class CatalogView:
    """Cards and tables from one catalog bot's tools, in one language."""

    def __init__(self, answerer: Any, lang: Lang) -> None:
        from ragkit.apps.catalog.render import Renderer

        self.tools = answerer.tools
        self.catalog = answerer.catalog
        self.schema = self.catalog.schema
        self.lang = lang
        self.renderer = Renderer(self.catalog, lang)

    def columns(self, first: Sequence[str] = ()) -> list[str]:
        """The attributes a table shows: those asked about first, then the catalog's described ones."""
        described = [a.name for a in self.schema.attributes.values() if a.config.describe and not a.role]
        names = [n for n in dict.fromkeys([*first, *described]) if n in self.schema]
        return names[:MAX_COLUMNS]

    def cell(self, product: Any, name: str) -> dict[str, Any]:
        """One value as shown (catalog value, unit, currency; ``MISSING`` when absent) and its sort key."""
        data = self.tools.value_of(product, name)
        if data is None or data.get("value") is None:
            return {"text": MISSING, "sort": None}
        text = self.renderer.value(name, {**data, "product_id": product.id})
        v = data["value"]
        first = v[0] if isinstance(v, list) and v else v
        if isinstance(first, (int, float)) and not isinstance(first, bool):
            return {"text": text, "sort": [str(data.get("unit") or ""), first]}
        return {"text": text, "sort": [text.casefold()]}

    def written_unit(self, name: str, unit: str | None) -> str | None:
        """A filter's unit ("eur") as the catalog writes it ("EUR")."""
        from ragkit.apps.catalog.units import canonical_unit

        if not unit:
            return self.schema[name].unit
        want = canonical_unit(unit)
        return next((u for p in self.catalog if (u := p.units.get(name)) and canonical_unit(u) == want), unit)

    def header(self, names: Sequence[str]) -> list[dict[str, Any]]:
        return [
            {"name": n, "label": self.schema[n].label(self.lang), "numeric": self.schema[n].kind == "number"}
            for n in names
        ]

    def row(self, product: Any, names: Sequence[str]) -> dict[str, Any]:
        label = self.catalog.label(product)
        return {"id": product.id, "label": label, "cells": [self.cell(product, n) for n in names]}

    def card(self, product_ref: str) -> list[dict[str, Any]]:
        found = self.tools.lookup(product_ref)
        if isinstance(found, dict):
            return []
        wanted = [a.name for a in self.schema.attributes.values() if a.config.describe or a.role]
        return [{"kind": "card", **self.row(p, wanted), "header": self.header(wanted)} for p in found[:5]]

    def compare(self, args: Mapping[str, Any]) -> dict[str, Any] | None:
        result = self.tools.compare(list(args["products"]), args["attribute"], args.get("prefer", "higher"))
        if "attribute" not in result:
            return None
        names = self.columns([result["attribute"]])
        rows = [self.row(self.catalog.products[r["product_id"]], names) for r in result["values"]]
        for r in rows:
            r["winner"] = r["id"] == result["winner"]
        return {
            "kind": "compare",
            "attribute": result["attribute"],
            "prefer": result["prefer"],
            "winner": result["winner"],
            "problem": result.get("problem"),
            "header": self.header(names),
            "rows": rows,
        }

    def chips(self, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = []
        for key in ("category", "manufacturer"):
            if args.get(key):
                role = self.schema.get(key)
                label = role.label(self.lang) if role is not None else key
                out.append({"key": key, "text": f"{label}: {', '.join(map(str, args[key]))}"})
        for k, c in enumerate(args.get("where") or []):
            a = self.schema.get(str(c.get("attribute")))
            if a is None:
                continue
            value = c.get("value")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                shown = self.renderer.value(a.name, {"value": value, "unit": self.written_unit(a.name, c.get("unit"))})
            else:
                shown = str(value)
            out.append({"key": f"where.{k}", "text": f"{a.label(self.lang)} {c.get('op', '=')} {shown}"})
        return out

    async def filter(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Every match of a filter (up to ``MAX_ROWS``) with the filter's attributes and the described ones."""
        args = {k: args[k] for k in FILTER_KEYS if args.get(k) is not None}
        asked = [str(c.get("attribute")) for c in args.get("where") or [] if isinstance(c, dict)]
        names = self.columns([*([args["sort_by"]] if args.get("sort_by") else []), *asked])
        result = await self.tools.filter_products(
            args.get("category"),
            args.get("manufacturer"),
            args.get("where"),
            args.get("sort_by"),
            bool(args.get("descending")),
            MAX_ROWS,
            False,
            names,
        )
        if "error" in result:
            raise ValueError(result.get("message") or result["error"])
        rows = [self.row(self.catalog.products[p["product_id"]], names) for p in result["products"]]
        return {
            "kind": "filter",
            "count": result["count"],
            "capped": result["count"] > len(rows),
            "args": args,
            "chips": self.chips(args),
            "sort_by": args.get("sort_by"),
            "descending": bool(args.get("descending")),
            "header": self.header(names),
            "rows": rows,
        }


async def views_of(reply: Any, answerer: Any, lang: Lang) -> list[dict[str, Any]]:
    """Cards and tables for the tool calls a catalog bot's reply made; none for other answerers."""
    meta = getattr(reply, "metadata", {}) or {}
    calls = meta.get("tool_calls") or []
    if not calls or getattr(answerer, "tools", None) is None or getattr(answerer, "catalog", None) is None:
        return []
    view = CatalogView(answerer, lang)
    out: list[dict[str, Any]] = []
    for call in calls:
        tool, args = call.get("tool"), call.get("args") or {}
        if call.get("error"):
            continue
        try:
            if tool in ("get_product_specs", "get_price"):
                out += view.card(str(args["product"]))
            elif tool == "compare":
                out += [v for v in [view.compare(args)] if v]
            elif tool == "filter_products":
                out.append(await view.filter(args))
        except (KeyError, TypeError, ValueError) as e:
            log.warning("no view for %s: %s: %s", tool, type(e).__name__, e)
    return out


class ViewingAnswerer:
    """An answerer whose final reply carries the page's views in ``metadata["views"]`` (cards and tables), so the
    terminal chat and the web page draw the same structure; every other attribute is the wrapped answerer's."""

    def __init__(self, answerer: Any) -> None:
        self.answerer = answerer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.answerer, name)

    async def astream(self, question: str, **kwargs: Any) -> Any:
        from dataclasses import replace

        from ragkit.types import Delta

        async for delta in self.answerer.astream(question, **kwargs):
            if delta.reply is not None and "views" not in delta.reply.metadata:
                views = await views_of(delta.reply, self.answerer, lang_of(question))
                delta = Delta(
                    text=delta.text, reply=replace(delta.reply, metadata={**delta.reply.metadata, "views": views})
                )
            yield delta


def filter_request(body: Any) -> dict[str, Any]:
    """The page's request to run a filter again (a chip removed): its arguments, checked."""
    if not isinstance(body, dict) or not isinstance(body.get("args"), dict):
        raise ValueError("expected a JSON object {'args': {…filter arguments…}, 'lang': 'en' or 'de'}")
    args = body["args"]
    unknown = sorted(set(args) - set(FILTER_KEYS))
    if unknown:
        raise ValueError(f"unknown filter argument {unknown[0]!r}; expected one of {', '.join(FILTER_KEYS)}")
    for key in ("category", "manufacturer", "where"):
        if args.get(key) is not None and not isinstance(args[key], list):
            raise ValueError(f"filter argument {key!r} must be a list")
    return args


def highlight_terms(text: str, terms: Sequence[str]) -> list[tuple[str, bool]]:
    """``text`` split into (piece, matched) runs; the terminal chat marks the matched ones."""
    if not terms:
        return [(text, False)]
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    out, at = [], 0
    for m in pattern.finditer(text):
        if m.start() > at:
            out.append((text[at : m.start()], False))
        out.append((m.group(0), True))
        at = m.end()
    if at < len(text):
        out.append((text[at:], False))
    return out


__all__ = [
    "CatalogView",
    "MISSING",
    "MAX_ROWS",
    "views_of",
    "sources_view",
    "flags_of",
    "follow_up",
    "history_of",
    "lang_of",
    "filter_request",
    "highlight_terms",
]
