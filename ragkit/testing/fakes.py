"""Deterministic in-memory components for tests."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, AsyncIterator, Mapping, Sequence

from ragkit.types import Delta, Message, Reply, ToolCall, Usage

_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Hashed bag-of-words vectors: same text, same vector; shared words, higher cosine."""

    def __init__(self, dim: int = 64, *, id: str = "fake") -> None:
        self.dim = dim
        self.id = f"{id}-{dim}"
        self.max_batch = 256
        self.calls: list[list[str]] = []

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            v = [0.0] * self.dim
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / norm for x in v])
        return out


class FakeGenerator:
    """Replies from a script: each item is a string or a ``Reply``; records the messages it was sent."""

    def __init__(self, script: Sequence[str | Reply] = ("ok",), *, context_window: int = 8192, id: str = "fake") -> None:
        self.script = list(script)
        self.id = id
        self.context_window = context_window
        self.requests: list[dict[str, Any]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _next(self) -> Reply:
        item = self.script[min(len(self.requests) - 1, len(self.script) - 1)]
        if isinstance(item, Reply):
            return item
        return Reply(text=item, model=self.id, usage=Usage(input_tokens=1, output_tokens=len(item.split())))

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> Reply:
        self.requests.append({"messages": list(messages), "max_tokens": max_tokens, "tools": tools})
        return self._next()

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None, tools: Sequence[Any] | None = None
    ) -> AsyncIterator[Delta]:
        reply = await self.generate(messages, max_tokens=max_tokens, tools=tools)
        for word in reply.text.split(" "):
            yield Delta(text=word + " ")
        yield Delta(reply=reply)


def tool_call(name: str, arguments: str, id: str = "call_1") -> ToolCall:
    """A ``ToolCall`` for scripting ``FakeGenerator`` replies."""
    return ToolCall(id=id, name=name, arguments=arguments)
