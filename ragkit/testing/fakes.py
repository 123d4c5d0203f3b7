"""Deterministic in-memory components for tests."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, AsyncIterator, Mapping, Sequence

from ragkit.retrieve.filters import matches
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

    def __init__(
        self, script: Sequence[str | Reply] = ("ok",), *, context_window: int = 8192, id: str = "fake"
    ) -> None:
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


class InMemoryStore:
    """Brute-force cosine store implementing the VectorStore protocol; for tests and tiny corpora."""

    def __init__(self) -> None:
        self.dim: int | None = None
        self.points: dict[str, tuple[list[float], dict[str, Any], Any]] = {}
        self.writes = 0

    async def ensure_collection(self, dim: int) -> None:
        from ragkit.errors import ConfigError

        if self.dim is not None and self.dim != dim:
            raise ConfigError(f"dimension mismatch: collection has {self.dim}, embedder gives {dim}")
        self.dim = dim

    async def upsert(self, ids, vectors, payloads, sparse=None) -> None:
        for i, (pid, vec, payload) in enumerate(zip(ids, vectors, payloads)):
            self.points[pid] = (list(vec), dict(payload), sparse[i] if sparse else None)
            self.writes += 1

    async def delete(self, ids) -> None:
        for pid in ids:
            self.points.pop(pid, None)

    async def search_dense(self, vector, top_k, filter=None):
        scored = [
            (pid, sum(a * b for a, b in zip(vector, vec)), payload)
            for pid, (vec, payload, _) in self.points.items()
            if matches(filter, payload)
        ]
        return sorted(scored, key=lambda t: -t[1])[:top_k]

    async def search_sparse(self, vector, top_k, filter=None):
        q = dict(zip(vector.indices, vector.values))
        scored = []
        for pid, (_, payload, sp) in self.points.items():
            if sp is None or not matches(filter, payload):
                continue
            s = sum(q.get(i, 0.0) * v for i, v in zip(sp.indices, sp.values))
            if s > 0:
                scored.append((pid, s, payload))
        return sorted(scored, key=lambda t: -t[1])[:top_k]

    async def count(self) -> int:
        return len(self.points)
