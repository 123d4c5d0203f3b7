"""What every generator and embedder shares: retries around the backend call, fallbacks, the sync facade.

A backend subclasses ``BaseGenerator`` and implements ``_complete`` and ``_stream`` (raising errors from
``ragkit.errors``); it never retries by itself. Likewise ``BaseEmbedder`` and ``_embed``.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Mapping, Sequence

from ragkit._aio import run_sync
from ragkit.errors import ProviderError, Transient
from ragkit.retry import RetryPolicy, RetryStats
from ragkit.tokens import TiktokenCounter
from ragkit.types import Delta, Message, Reply, ToolSpec

log = logging.getLogger("ragkit.generation")

# Applied when a model's own tokenizer is unknown and tiktoken stands in for it.
TIKTOKEN_SAFETY_MARGIN = 0.10


class BaseGenerator:
    """Retrying ``generate``/``stream`` over a backend's ``_complete``/``_stream``."""

    id: str = "generator"
    context_window: int = 8192

    def __init__(self, *, retry: RetryPolicy | None = None) -> None:
        self.retry = retry or RetryPolicy()
        self._counter: TiktokenCounter | None = None

    async def _complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None,
        tools: Sequence[ToolSpec] | None,
        json_schema: Mapping[str, Any] | None,
    ) -> Reply:
        raise NotImplementedError

    def _stream(
        self, messages: Sequence[Message], *, max_tokens: int | None, tools: Sequence[ToolSpec] | None
    ) -> AsyncIterator[Delta]:
        raise NotImplementedError

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        tools: Sequence[ToolSpec] | None = None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> Reply:
        stats = RetryStats()
        reply = await self.retry.call(
            lambda: self._complete(messages, max_tokens=max_tokens, tools=tools, json_schema=json_schema), stats
        )
        if stats.attempts > 1:
            reply = _with_metadata(reply, retries=stats.attempts - 1, retry_waits=list(stats.waits))
        return reply

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None, tools: Sequence[ToolSpec] | None = None
    ) -> AsyncIterator[Delta]:
        """Stream deltas; a transient failure before the first delta is retried, after it is raised."""
        first: list[Delta] = []
        iterator: AsyncIterator[Delta] | None = None

        async def open_stream() -> None:
            nonlocal iterator
            iterator = self._stream(messages, max_tokens=max_tokens, tools=tools).__aiter__()
            try:
                first.append(await iterator.__anext__())
            except StopAsyncIteration:
                pass

        await self.retry.call(open_stream)
        for delta in first:
            yield delta
        if first and iterator is not None:
            async for delta in iterator:
                yield delta

    def count_tokens(self, text: str) -> int:
        """Tokens by tiktoken plus a safety margin; backends with their own tokenizer override this."""
        if self._counter is None:
            self._counter = TiktokenCounter("cl100k_base")
        return int(self._counter.count(text) * (1 + TIKTOKEN_SAFETY_MARGIN)) + 1

    def generate_sync(self, messages: Sequence[Message], **kwargs: Any) -> Reply:
        """``generate`` for scripts."""
        return run_sync(self.generate(messages, **kwargs))


class BaseEmbedder:
    """Splits into provider-sized batches and retries each; backends implement ``_embed`` for one batch."""

    id: str = "embedder"
    dim: int = 0
    max_batch: int = 64

    def __init__(self, *, retry: RetryPolicy | None = None) -> None:
        self.retry = retry or RetryPolicy()

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise NotImplementedError

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.max_batch):
            batch = texts[i : i + self.max_batch]
            out.extend(await self.retry.call(lambda b=batch: self._embed(b)))
        return out

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """``embed_batch`` for scripts."""
        return run_sync(self.embed_batch(texts))


class FallbackGenerator(BaseGenerator):
    """Tries generators in order; moves on when one fails after its retries. Records what it did."""

    def __init__(self, chain: Sequence[Any], *, fall_on: tuple[type[Exception], ...] = (ProviderError,)) -> None:
        if not chain:
            raise ValueError("FallbackGenerator needs at least one generator")
        super().__init__()
        self.chain = list(chain)
        self.fall_on = fall_on
        self.id = "fallback(" + ",".join(g.id for g in self.chain) + ")"
        self.context_window = min(g.context_window for g in self.chain)

    async def generate(self, messages: Sequence[Message], **kwargs: Any) -> Reply:
        failures: list[dict[str, str]] = []
        for i, gen in enumerate(self.chain):
            try:
                reply = await gen.generate(messages, **kwargs)
            except self.fall_on as e:
                failures.append({"generator": gen.id, "error": type(e).__name__, "message": str(e)})
                log.warning("generator %s failed (%s); falling back", gen.id, type(e).__name__)
                if i == len(self.chain) - 1:
                    raise
                continue
            return _with_metadata(reply, fallbacks=failures) if failures else reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream(self, messages: Sequence[Message], **kwargs: Any) -> AsyncIterator[Delta]:
        failures: list[dict[str, str]] = []
        for i, gen in enumerate(self.chain):
            started = False
            try:
                async for delta in gen.stream(messages, **kwargs):
                    started = True
                    if delta.reply is not None and failures:
                        delta = Delta(text=delta.text, tool_calls=delta.tool_calls, reply=_with_metadata(delta.reply, fallbacks=failures))
                    yield delta
                return
            except self.fall_on as e:
                if started or i == len(self.chain) - 1:
                    raise
                failures.append({"generator": gen.id, "error": type(e).__name__, "message": str(e)})

    def count_tokens(self, text: str) -> int:
        return max(g.count_tokens(text) for g in self.chain)


def _with_metadata(reply: Reply, **extra: Any) -> Reply:
    from dataclasses import replace

    return replace(reply, metadata={**reply.metadata, **extra})


__all__ = ["BaseGenerator", "BaseEmbedder", "FallbackGenerator", "TIKTOKEN_SAFETY_MARGIN", "Transient"]
