"""Token budgets: the context window split into line items, and prompt assembly that never exceeds it.

Sources get what is left of the window after the system prompt, tool schemas, chat history, the
question, the reserved output and the chat framing. ``assemble_prompt`` packs numbered sources into
that room and counts the final messages to prove the prompt fits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, Mapping, Sequence

from ragkit.answer.prompting import build_messages, render_source
from ragkit.errors import BudgetError, ConfigError
from ragkit.model_info import context_window_for, known_window  # noqa: F401  (re-exported for callers of the old home)
from ragkit.tokens import TiktokenCounter
from ragkit.types import Hit, Message, ToolSpec

log = logging.getLogger("ragkit.answer.budget")

Count = Callable[[str], int]

# Chat framing per message (role markers, separators) and for priming the reply, as in OpenAI's
# published accounting; other chat templates are of the same size or smaller.
MESSAGE_OVERHEAD_TOKENS = 4
REPLY_PRIMING_TOKENS = 3
# Per tool beyond its JSON: the wrapper a provider puts around each function definition.
TOOL_OVERHEAD_TOKENS = 8
# Blank line between two source blocks.
SOURCE_SEPARATOR = "\n\n"


def tiktoken_counter(encoding: str = "cl100k_base") -> Count:
    """Counts with tiktoken plus the safety margin, because it stands in for a model's own tokenizer."""
    return TiktokenCounter(encoding).count_with_margin


def counter_for(generator: Any | None = None) -> Count:
    """The generator's own ``count_tokens`` when it has one, else tiktoken plus the safety margin."""
    counting = getattr(generator, "count_tokens", None)
    return counting if callable(counting) else tiktoken_counter()


def count_message(message: Message, count: Count) -> int:
    """Tokens of one chat message, framing included."""
    tokens = MESSAGE_OVERHEAD_TOKENS + (count(message.content) if message.content else 0)
    for call in message.tool_calls:
        tokens += count(call.name) + count(call.arguments)
    if message.name:
        tokens += count(message.name)
    return tokens


def count_messages(messages: Sequence[Message], count: Count) -> int:
    """Tokens of a whole chat request, reply priming included."""
    return sum(count_message(m, count) for m in messages) + REPLY_PRIMING_TOKENS


def count_tools(tool_schemas: Sequence[ToolSpec | Mapping[str, Any]], count: Count) -> int:
    """Tokens of the tool definitions sent alongside the messages."""
    total = 0
    for tool in tool_schemas:
        schema = (
            {"name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)}
            if isinstance(tool, ToolSpec)
            else dict(tool)
        )
        total += TOOL_OVERHEAD_TOKENS + count(json.dumps(schema, sort_keys=True, ensure_ascii=False, default=str))
    return total


@dataclass(frozen=True, slots=True)
class LineItem:
    """One fixed claim on the context window."""

    name: str
    tokens: int
    note: str = ""


Action = Literal["kept", "compressed", "truncated", "cut", "dropped"]


@dataclass(frozen=True, slots=True)
class SourceDecision:
    """What happened to one hit: kept as is, compressed, truncated to fit, cut for room, or dropped by the
    compressor."""

    chunk_id: str
    doc_id: str
    action: Action
    tokens: int
    original_tokens: int
    reason: str
    number: int | None = None


@dataclass(frozen=True, slots=True)
class BudgetPlan:
    """The window split into line items; after assembly it also records each source decision."""

    context_window: int
    reserved_output: int
    items: tuple[LineItem, ...]
    sources_budget: int
    decisions: tuple[SourceDecision, ...] = ()
    final_tokens: int | None = None
    compression: Mapping[str, Any] = field(default_factory=dict)

    @property
    def limit(self) -> int:
        """Tokens the prompt may use: the window minus the reserved output."""
        return self.context_window - self.reserved_output

    def item(self, name: str) -> LineItem:
        """The line item called ``name``."""
        for it in self.items:
            if it.name == name:
                return it
        raise KeyError(name)

    def explain(self) -> list[dict[str, Any]]:
        """Every line item and every source decision as rows (kind, name, tokens, action, reason)."""
        rows: list[dict[str, Any]] = [
            {"kind": "window", "name": "context_window", "tokens": self.context_window, "action": "", "reason": ""}
        ]
        rows += [
            {"kind": "item", "name": it.name, "tokens": it.tokens, "action": "reserved", "reason": it.note}
            for it in self.items
        ]
        rows.append(
            {
                "kind": "item",
                "name": "sources_budget",
                "tokens": self.sources_budget,
                "action": "available",
                "reason": "what is left",
            }
        )
        for d in self.decisions:
            label = f"[{d.number}] {d.chunk_id}" if d.number else d.chunk_id
            rows.append(
                {
                    "kind": "source",
                    "name": label,
                    "tokens": d.tokens,
                    "action": d.action,
                    "reason": d.reason,
                    "original_tokens": d.original_tokens,
                }
            )
        if self.final_tokens is not None:
            rows.append(
                {
                    "kind": "total",
                    "name": "final_prompt",
                    "tokens": self.final_tokens,
                    "action": "counted",
                    "reason": f"limit {self.limit} (window {self.context_window} - output {self.reserved_output})",
                }
            )
        return rows

    def table(self) -> str:
        """``explain()`` as a fixed-width text table."""
        rows = self.explain()
        width = max(len(r["name"]) for r in rows)
        lines = [f"{'item':<{width}}  {'tokens':>8}  {'action':<10}  reason"]
        lines += [f"{r['name']:<{width}}  {r['tokens']:>8}  {r['action']:<10}  {r['reason']}" for r in rows]
        return "\n".join(lines)


def plan_budget(
    context_window: int,
    *,
    system_prompt: str,
    tool_schemas: Sequence[ToolSpec | Mapping[str, Any]] = (),
    history: Sequence[Message] = (),
    question: str,
    reserved_output: int,
    count: Count,
) -> BudgetPlan:
    """Split ``context_window`` into line items; raise ``BudgetError`` if the question itself cannot fit."""
    if context_window <= 0:
        raise ConfigError(f"context_window must be positive, got {context_window}")
    if reserved_output < 0:
        raise ConfigError(f"reserved_output must be >= 0, got {reserved_output}")
    # The question is counted as its whole user turn without sources, so framing text is included.
    user_turn = build_messages(question, [], system_prompt=system_prompt)[-1]
    items = (
        LineItem("system_prompt", count_message(Message("system", system_prompt), count), "system message"),
        LineItem("tool_schemas", count_tools(tool_schemas, count), f"{len(tool_schemas)} tool(s)"),
        LineItem("history", sum(count_message(m, count) for m in history), f"{len(history)} message(s)"),
        LineItem("question", count_message(user_turn, count), "user turn without sources"),
        LineItem("framing", REPLY_PRIMING_TOKENS, "reply priming"),
        LineItem("reserved_output", reserved_output, "room for the answer"),
    )
    used = sum(it.tokens for it in items)
    if used > context_window:
        others = ", ".join(f"{it.name} {it.tokens}" for it in items if it.name != "question")
        raise BudgetError(
            f"the question needs {items[3].tokens} tokens but only {context_window - (used - items[3].tokens)} of the "
            f"{context_window}-token window are left ({others}); shorten the question or history, reserve less "
            "output, or use a model with a larger window"
        )
    return BudgetPlan(context_window, reserved_output, items, context_window - used)


@dataclass(frozen=True, slots=True)
class IncludedSource:
    """A source as it appears in the prompt: its number, ids, and the (possibly compressed) hit."""

    number: int
    chunk_id: str
    doc_id: str
    hit: Hit


@dataclass(frozen=True, slots=True)
class AssembledPrompt:
    """The messages to send, the numbered sources they contain, and the plan that explains them."""

    messages: tuple[Message, ...]
    sources: tuple[IncludedSource, ...]
    plan: BudgetPlan

    @property
    def prompt_tokens(self) -> int:
        """Counted tokens of the final request (messages plus tool schemas)."""
        return self.plan.final_tokens or 0


def _truncate_block(number: int, hit: Hit, text: str, room: int, count: Count) -> tuple[str, int] | None:
    """The longest prefix of ``text`` (ending at a word boundary where one is near) whose block fits ``room``."""

    def fits(end: int) -> tuple[str, int] | None:
        prefix = text[:end].rstrip() + " …"
        tokens = count(render_source(number, hit, prefix)) + count(SOURCE_SEPARATOR)
        return (prefix, tokens) if tokens <= room else None

    # Character positions, not words, so that text without spaces (Chinese, Japanese) can be cut too.
    lo, hi, best, best_end = 1, len(text), None, 0
    while lo <= hi:
        mid = (lo + hi) // 2
        found = fits(mid)
        if found:
            best, best_end, lo = found, mid, mid + 1
        else:
            hi = mid - 1
    if best is not None:
        space = max(text.rfind(" ", 0, best_end), text.rfind("\n", 0, best_end))
        if space > 0 and best_end - space <= 40 and best_end < len(text) and not text[best_end].isspace():
            best = fits(space) or best
    return best


def _compress(
    compressor: Any, question: str, hits: Sequence[Hit], budget: int, count: Count
) -> tuple[list[Hit], list[SourceDecision], dict]:
    # Headers and separators are ours; the compressor gets only the room left for source text.
    headers = sum(count(render_source(i + 1, h, "")) + count(SOURCE_SEPARATOR) for i, h in enumerate(hits))
    room = max(0, budget - headers)
    result = compressor.compress(question, hits, room)
    kept = list(getattr(result, "hits", result))
    # A compressor counting with another tokenizer (plain tiktoken against a margin, say) can overshoot;
    # ask once more with the room scaled down by the overshoot rather than truncating sources afterwards.
    for _ in range(3):
        measured = sum(count(render_source(i + 1, h)) + count(SOURCE_SEPARATOR) for i, h in enumerate(kept))
        if measured <= budget or not room:
            break
        room = int(room * budget / measured * 0.98)
        result = compressor.compress(question, hits, room)
        kept = list(getattr(result, "hits", result))
    kept_ids = {h.chunk.id for h in kept}
    dropped = [
        SourceDecision(h.chunk.id, h.chunk.doc_id, "dropped", 0, count(h.chunk.text), _drop_reason(result, h.chunk.id))
        for h in hits
        if h.chunk.id not in kept_ids
    ]
    summary = {k: getattr(result, k) for k in ("tokens_before", "tokens_after", "ratio") if hasattr(result, k)}
    return kept, dropped, summary


def _drop_reason(result: Any, chunk_id: str) -> str:
    reasons = getattr(result, "chunk_reasons", {}) or {}
    return "compressor: " + reasons.get(chunk_id, "no sentence kept")


def assemble_prompt(
    question: str,
    hits: Sequence[Hit],
    *,
    system_prompt: str,
    history: Sequence[Message] = (),
    budget_plan: BudgetPlan,
    count: Count,
    compressor: Any | None = None,
    min_source_tokens: int = 16,
) -> AssembledPrompt:
    """Pack numbered sources into the plan's room; the counted final prompt never exceeds the plan's limit."""
    budget = budget_plan.sources_budget
    originals = {h.chunk.id: h for h in hits}
    decisions: list[SourceDecision] = []
    compression: dict[str, Any] = {}
    candidates = list(hits)
    if compressor is not None and hits:
        candidates, decisions, compression = _compress(compressor, question, hits, budget, count)

    blocks: list[str] = []
    included: list[IncludedSource] = []
    packed: list[SourceDecision] = []
    used = 0
    sep = count(SOURCE_SEPARATOR)
    for hit in candidates:
        original = originals.get(hit.chunk.id, hit)
        original_tokens = count(original.chunk.text)
        number = len(blocks) + 1
        block = render_source(number, hit)
        tokens = count(block) + sep
        changed = hit.chunk.text != original.chunk.text
        if used + tokens <= budget:
            action: Action = "compressed" if changed else "kept"
            reason = "compressed to fit" if changed else "fits"
        else:
            room = budget - used
            fitted = _truncate_block(number, hit, hit.chunk.text, room, count) if room >= min_source_tokens else None
            if fitted is None:
                packed.append(
                    SourceDecision(
                        hit.chunk.id,
                        hit.chunk.doc_id,
                        "cut",
                        0,
                        original_tokens,
                        f"budget exhausted: needs {tokens}, {room} left",
                    )
                )
                continue
            text, tokens = fitted
            hit = replace(hit, chunk=replace(hit.chunk, text=text))
            block = render_source(number, hit)
            action, reason = "truncated", f"cut to the {room} tokens left"
        used += tokens
        blocks.append(block)
        included.append(IncludedSource(number, hit.chunk.id, hit.chunk.doc_id, hit))
        packed.append(SourceDecision(hit.chunk.id, hit.chunk.doc_id, action, tokens, original_tokens, reason, number))

    tools = budget_plan.item("tool_schemas").tokens
    limit = budget_plan.limit
    messages = build_messages(question, blocks, system_prompt=system_prompt, history=history)
    total = count_messages(messages, count) + tools
    # Token counts are not additive across concatenation; the final count decides, dropping the last source until
    # it fits.
    while total > limit and blocks:
        blocks.pop()
        gone = included.pop()
        idx = next(i for i, d in enumerate(packed) if d.number == gone.number)
        d = packed[idx]
        packed[idx] = replace(d, action="cut", tokens=0, number=None, reason=f"final prompt {total} > limit {limit}")
        messages = build_messages(question, blocks, system_prompt=system_prompt, history=history)
        total = count_messages(messages, count) + tools
    if total > limit:
        raise BudgetError(
            f"the prompt needs {total} tokens without any source but the limit is {limit} "
            f"(window {budget_plan.context_window} - reserved output {budget_plan.reserved_output}); "
            "the plan was made for a different system prompt, history or question"
        )
    plan = replace(budget_plan, decisions=tuple(decisions + packed), final_tokens=total, compression=compression)
    log.debug("assembled %d of %d sources, %d/%d tokens", len(included), len(hits), total, limit)
    return AssembledPrompt(tuple(messages), tuple(included), plan)


__all__ = [
    "Count",
    "known_window",
    "context_window_for",
    "tiktoken_counter",
    "counter_for",
    "count_message",
    "count_messages",
    "count_tools",
    "LineItem",
    "SourceDecision",
    "BudgetPlan",
    "plan_budget",
    "IncludedSource",
    "AssembledPrompt",
    "assemble_prompt",
    "MESSAGE_OVERHEAD_TOKENS",
    "REPLY_PRIMING_TOKENS",
    "TOOL_OVERHEAD_TOKENS",
]
