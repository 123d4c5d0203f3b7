"""The one retry layer: tenacity, transient errors only, exponential backoff with jitter, ``Retry-After``, deadline.

The overall deadline bounds everything, the request in flight included: a try still running when it passes is
cancelled and ``Timeout`` is raised (never retried). For a stream it bounds the whole stream, not only its start.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from ragkit.component import ComponentConfig, Field
from ragkit.errors import RateLimited, Timeout, Transient

log = logging.getLogger("ragkit.retry")
T = TypeVar("T")


class RetryConfig(ComponentConfig):
    """How transient provider and tool errors are retried."""

    max_attempts: int = Field(4, ge=1, le=20, description="Total tries, the first included.")
    initial_backoff_s: float = Field(0.5, ge=0, le=60, description="Wait before the second try.")
    multiplier: float = Field(2.0, ge=1, le=10, description="Backoff growth per try.")
    max_backoff_s: float = Field(30.0, ge=0, le=600, description="Cap on one computed backoff.")
    jitter: float = Field(0.1, ge=0, le=1, description="Random extra wait, as a fraction of the backoff.")
    deadline_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="Overall time budget across all tries, the one in flight (or a whole stream) included.",
    )
    honour_retry_after: bool = Field(True, description="Wait what the server's Retry-After says when it sends one.")


@dataclass
class RetryStats:
    """What one retried call went through."""

    attempts: int = 0
    waits: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class RetryPolicy:
    """Retries ``Transient`` errors per a ``RetryConfig``; clock, sleep and randomness are injectable."""

    def __init__(
        self,
        config: RetryConfig | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config or RetryConfig()
        self._sleep = sleep
        self._clock = clock
        self._rand = rand

    def backoff(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        c = self.config
        if c.honour_retry_after and isinstance(error, RateLimited) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        base = min(c.max_backoff_s, c.initial_backoff_s * c.multiplier ** (attempt - 1))
        return base + base * c.jitter * self._rand()

    async def call(
        self, fn: Callable[[], Awaitable[T]], stats: RetryStats | None = None, *, started: float | None = None
    ) -> T:
        """Await ``fn()`` until it succeeds, a non-transient error is raised, or tries or time run out.

        ``started`` (a reading of this policy's clock) lets the deadline count from an earlier moment.
        """
        stats = stats if stats is not None else RetryStats()
        start = self._clock() if started is None else started
        c = self.config

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.backoff(state.attempt_number, error)

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= c.max_attempts:
                return True
            error = state.outcome.exception() if state.outcome else None
            # Stop early when the next wait would cross the overall deadline.
            return self._clock() - start + self.backoff(state.attempt_number, error) > c.deadline_s

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            stats.waits.append(delay)
            log.warning(
                "retrying after %s (try %d of %d) in %.2fs",
                type(error).__name__,
                state.attempt_number,
                c.max_attempts,
                delay,
            )

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(Transient),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    stats.attempts += 1
                    try:
                        return await self._within(fn, start)
                    except Transient as e:
                        stats.errors.append(type(e).__name__)
                        raise
        except _OutOfTime:
            raise self._deadline_error() from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream(
        self, open_stream: Callable[[], AsyncIterator[T]], stats: RetryStats | None = None
    ) -> AsyncIterator[T]:
        """The items of ``open_stream()``. A transient failure before the first item reopens the stream (the caller
        has seen nothing yet); one after it is raised. The overall deadline bounds the whole stream."""
        start = self._clock()
        opened: list[AsyncIterator[T]] = []

        async def first() -> tuple[T, ...]:
            iterator = open_stream().__aiter__()
            opened.append(iterator)
            try:
                return (await iterator.__anext__(),)
            except StopAsyncIteration:
                return ()

        try:
            head = await self.call(first, stats, started=start)
            if not head:
                return
            yield head[0]
            iterator = opened[-1]
            while True:
                try:
                    item = await self._within(iterator.__anext__, start)
                except StopAsyncIteration:
                    return
                except _OutOfTime:
                    raise self._deadline_error() from None
                yield item
        finally:
            for iterator in opened:
                close = getattr(iterator, "aclose", None)
                if close is not None:
                    await close()

    async def _within(self, fn: Callable[[], Awaitable[T]], start: float) -> T:
        """``await fn()``, cancelled when the overall deadline passes (then ``_OutOfTime``, which is not retried)."""
        remaining = self.config.deadline_s - (self._clock() - start)
        if remaining <= 0:
            raise _OutOfTime
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        # asyncio.timeout() would do, but it needs Python 3.11.
        timer = asyncio.get_running_loop().call_later(remaining, expire)
        try:
            return await fn()
        except asyncio.CancelledError:
            if not expired:
                raise
            uncancel = getattr(task, "uncancel", None)
            if uncancel is not None:
                uncancel()  # this cancellation was ours, and is handled here
            raise _OutOfTime from None
        finally:
            timer.cancel()

    def _deadline_error(self) -> Timeout:
        return Timeout(
            f"no complete answer within the overall deadline of {self.config.deadline_s:g} s (retry.deadline_s)"
        )


class _OutOfTime(Exception):
    """The overall deadline passed; leaves the tenacity loop at once and becomes ``Timeout``."""


__all__ = ["RetryConfig", "RetryPolicy", "RetryStats"]
