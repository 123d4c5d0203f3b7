"""Contract-test mixins: every implementation's tests inherit one and provide a factory fixture."""

from __future__ import annotations

import math

import pytest

from ragkit.types import Delta, Message, Reply


class EmbedderContract:
    """Inherit and define a fixture ``embedder`` returning the implementation under test."""

    async def test_vectors_have_declared_dim_and_keep_order(self, embedder):
        texts = ["LABO-288 has 288 litres", "a quiet freezer", "LABO-288 has 288 litres"]
        vectors = await embedder.embed_batch(texts)
        assert len(vectors) == 3
        assert all(len(v) == embedder.dim for v in vectors)
        assert all(math.isfinite(x) for v in vectors for x in v)
        assert vectors[0] == pytest.approx(vectors[2], abs=1e-5)
        assert vectors[0] != pytest.approx(vectors[1], abs=1e-3)

    async def test_empty_batch(self, embedder):
        assert await embedder.embed_batch([]) == []

    def test_identity(self, embedder):
        assert isinstance(embedder.id, str) and embedder.id
        assert embedder.max_batch >= 1


class GeneratorContract:
    """Inherit and define a fixture ``generator`` that answers 'Hello' style prompts."""

    async def test_generate_returns_reply_with_usage(self, generator):
        reply = await generator.generate([Message("system", "Be brief."), Message("user", "Say hello.")], max_tokens=16)
        assert isinstance(reply, Reply)
        assert reply.text.strip()
        assert reply.usage.output_tokens > 0
        assert reply.stop_reason in {"stop", "length", "tool_calls"}

    async def test_stream_ends_with_reply_matching_text(self, generator):
        deltas = [d async for d in generator.stream([Message("user", "Say hello.")], max_tokens=16)]
        assert deltas and isinstance(deltas[-1], Delta) and deltas[-1].reply is not None
        streamed = "".join(d.text for d in deltas)
        assert streamed.strip() == deltas[-1].reply.text.strip()

    def test_counts_tokens(self, generator):
        assert generator.count_tokens("hello world, hello") > 0
        assert generator.context_window > 0
