"""What every generator and embedder shares: retries around the backend call, fallbacks, the sync facade.

A backend subclasses ``BaseGenerator`` and implements ``_complete`` and ``_stream`` (raising errors from
``ragkit.errors``); it never retries by itself. Likewise ``BaseEmbedder`` and ``_embed``.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence

from ragkit._aio import run_sync
from ragkit.errors import ProviderError, Transient
from ragkit.retry import RetryPolicy, RetryStats
from ragkit.tokens import TiktokenCounter
from ragkit.types import Delta, Message, Reply, ToolSpec

log = logging.getLogger("ragkit.generate.base")


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
        """Stream deltas; a transient failure before the first delta is retried, after it is raised; the retry
        policy's deadline bounds the whole stream."""
        async for delta in self.retry.stream(lambda: self._stream(messages, max_tokens=max_tokens, tools=tools)):
            yield delta

    def count_tokens(self, text: str) -> int:
        """Tokens by tiktoken plus a safety margin; backends with their own tokenizer override this."""
        if self._counter is None:
            self._counter = TiktokenCounter("cl100k_base")
        return self._counter.count_with_margin(text)

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


Attempt = Callable[[Any], Awaitable[Reply]]


async def first_success(
    generators: Sequence[tuple[str, Any]],
    attempt: Attempt,
    *,
    fall_on: tuple[type[Exception], ...] = (ProviderError,),
    reject: Callable[[str, Reply], str | None] | None = None,
    failures: list[dict[str, str]] | None = None,
    rejections: list[dict[str, str]] | None = None,
) -> tuple[Reply, str]:
    """The one fallback loop: call ``attempt(generator)`` for each ``(name, generator)`` in order until one answers.

    A generator that raises one of ``fall_on`` is recorded in ``failures`` and the next is tried. ``reject``
    may turn down an answer (returning why); it is recorded in ``rejections`` and the next generator is tried,
    but the first rejected answer is kept and returned if every later generator fails or is rejected too.
    """
    failures = [] if failures is None else failures
    rejections = [] if rejections is None else rejections
    kept: tuple[Reply, str] | None = None
    for i, (name, gen) in enumerate(generators):
        last = i + 1 == len(generators)
        try:
            reply = await attempt(gen)
        except fall_on as e:
            failures.append({"generator": name, "error": type(e).__name__, "message": str(e)})
            log.warning(
                "generator %s failed (%s); %s", name, type(e).__name__, "no fallback left" if last else "falling back"
            )
            if rejections:
                rejections[-1]["failed"] = type(e).__name__
            if last:
                if kept is not None:
                    return kept
                raise
            continue
        reason = reject(name, reply) if reject is not None else None
        if reason is None or last:
            return reply, name
        rejections.append({"from": name, "to": generators[i + 1][0], "reason": reason})
        kept = kept or (reply, name)
    raise AssertionError("unreachable")  # pragma: no cover


async def open_stream(stream: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
    """Wait for the first delta of ``stream`` (so a failure to start raises here), then replay it and the rest."""
    iterator = stream.__aiter__()
    try:
        first = await iterator.__anext__()
    except StopAsyncIteration:
        first = None

    async def replay() -> AsyncIterator[Delta]:
        if first is None:
            return
        yield first
        async for delta in iterator:
            yield delta

    return replay()


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
        reply, _ = await first_success(
            [(g.id, g) for g in self.chain],
            lambda g: g.generate(messages, **kwargs),
            fall_on=self.fall_on,
            failures=failures,
        )
        return _with_metadata(reply, fallbacks=failures) if failures else reply

    async def stream(self, messages: Sequence[Message], **kwargs: Any) -> AsyncIterator[Delta]:
        """Falls back while no delta has arrived; once one has, a failure is raised (the text is already out)."""
        failures: list[dict[str, str]] = []
        opened, _ = await first_success(
            [(g.id, g) for g in self.chain],
            lambda g: open_stream(g.stream(messages, **kwargs)),
            fall_on=self.fall_on,
            failures=failures,
        )
        async for delta in opened:
            if delta.reply is not None and failures:
                delta = Delta(
                    text=delta.text, tool_calls=delta.tool_calls, reply=_with_metadata(delta.reply, fallbacks=failures)
                )
            yield delta

    def count_tokens(self, text: str) -> int:
        return max(g.count_tokens(text) for g in self.chain)


def _with_metadata(reply: Reply, **extra: Any) -> Reply:
    from dataclasses import replace

    return replace(reply, metadata={**reply.metadata, **extra})


__all__ = ["BaseGenerator", "BaseEmbedder", "FallbackGenerator", "first_success", "open_stream", "Transient"]
