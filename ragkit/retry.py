"""The one retry layer: tenacity, transient errors only, exponential backoff with jitter, ``Retry-After``, deadline."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from ragkit.component import ComponentConfig, Field
from ragkit.errors import RateLimited, Transient

log = logging.getLogger("ragkit.retry")
T = TypeVar("T")


class RetryConfig(ComponentConfig):
    """How transient provider and tool errors are retried."""

    max_attempts: int = Field(4, ge=1, le=20, description="Total tries, the first included.")
    initial_backoff_s: float = Field(0.5, ge=0, le=60, description="Wait before the second try.")
    multiplier: float = Field(2.0, ge=1, le=10, description="Backoff growth per try.")
    max_backoff_s: float = Field(30.0, ge=0, le=600, description="Cap on one computed backoff.")
    jitter: float = Field(0.1, ge=0, le=1, description="Random extra wait, as a fraction of the backoff.")
    deadline_s: float = Field(120.0, gt=0, le=3600, description="Overall time budget across all tries.")
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

    async def call(self, fn: Callable[[], Awaitable[T]], stats: RetryStats | None = None) -> T:
        """Await ``fn()`` until it succeeds, a non-transient error is raised, or tries or time run out."""
        stats = stats if stats is not None else RetryStats()
        start = self._clock()
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
        async for attempt in retrying:
            with attempt:
                stats.attempts += 1
                try:
                    return await fn()
                except Transient as e:
                    stats.errors.append(type(e).__name__)
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["RetryConfig", "RetryPolicy", "RetryStats"]
