"""Anthropic prompt caching: ``cache_control`` breakpoints on the stable system prompt and on the sources block.

A request's prefix (tools, system, messages, in that order) can be cached up to a block marked
``cache_control: {"type": "ephemeral"}``; a later request with the same prefix reads it at a tenth of the input
price. ragkit's prompts have two stable parts: the system prompt, and the numbered sources at the head of the last
user turn (the same on a retry, a fallback, every round of a tool loop, and a repeated question). Each is marked
only when the prefix up to it reaches the model's minimum cacheable length, since a shorter one is never cached
and the API allows only four markers. Cache reads come back as ``cache_read_input_tokens`` and reach the usage
ledger as ``cached_tokens``, where ``cache_savings_usd`` shows what they saved.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from ragkit.answer.prompting import SOURCES_CLOSE, SOURCES_OPEN

EPHEMERAL = {"type": "ephemeral"}


def min_cacheable_tokens(model: str) -> int:
    """The shortest prefix Anthropic caches: 2048 tokens for Haiku models, 1024 for the others."""
    return 2048 if "haiku" in model.lower() else 1024


def _block_tokens(block: dict[str, Any], count: Callable[[str], int]) -> int:
    if block.get("type") == "text":
        return count(block.get("text") or "")
    return count(json.dumps({k: v for k, v in block.items() if k != "cache_control"}, ensure_ascii=False))


def add_cache_control(req: dict[str, Any], count: Callable[[str], int], min_tokens: int) -> int:
    """Mark the system prompt and the sources block of ``req`` (a Messages API body) for caching when the prefix up to
    each is at least ``min_tokens`` long; returns how many were marked."""
    marked = 0
    prefix = sum(count(json.dumps(t, ensure_ascii=False)) for t in req.get("tools") or ())
    system = req.get("system")
    if isinstance(system, str) and system:
        prefix += count(system)
        if prefix >= min_tokens:
            req["system"] = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
            marked += 1
    messages = req.get("messages") or []
    if not messages or messages[-1].get("role") != "user":
        return marked
    prefix += sum(_block_tokens(b, count) for m in messages[:-1] for b in m.get("content") or ())
    blocks = messages[-1]["content"]
    for i, block in enumerate(blocks):
        text = block.get("text") or ""
        if block.get("type") != "text" or not text.startswith(SOURCES_OPEN) or SOURCES_CLOSE not in text:
            prefix += _block_tokens(block, count)
            continue
        cut = text.index(SOURCES_CLOSE) + len(SOURCES_CLOSE)
        if prefix + count(text[:cut]) >= min_tokens:
            rest = text[cut:]
            split = [{"type": "text", "text": text[:cut], "cache_control": EPHEMERAL}]
            if rest.strip():
                split.append({"type": "text", "text": rest})
            blocks[i : i + 1] = split
            marked += 1
        break
    return marked


__all__ = ["add_cache_control", "min_cacheable_tokens", "EPHEMERAL"]
