"""The one retry layer, measured with an injected sleep and clock; fallback across generators."""

import pytest

from ragkit.errors import AuthError, BadRequest, RateLimited, Unavailable
from ragkit.generate.base import FallbackGenerator
from ragkit.retry import RetryConfig, RetryPolicy, RetryStats
from ragkit.testing import FakeGenerator
from ragkit.types import Message


class Clock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def flaky(errors, result="ok"):
    calls = []

    async def fn():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return fn, calls


async def test_retry_after_is_waited_exactly_then_succeeds():
    clock = Clock()
    fn, calls = flaky([RateLimited(retry_after=2)])
    assert await RetryPolicy(sleep=clock.sleep, clock=clock).call(fn) == "ok"
    assert clock.slept == [2] and len(calls) == 2


async def test_exhaustion_follows_the_backoff_schedule_and_reraises():
    clock = Clock()
    config = RetryConfig(max_attempts=4, initial_backoff_s=0.5, multiplier=2, jitter=0)
    fn, calls = flaky([Unavailable("down")] * 5)
    stats = RetryStats()
    with pytest.raises(Unavailable):
        await RetryPolicy(config, sleep=clock.sleep, clock=clock).call(fn, stats)
    assert clock.slept == [0.5, 1.0, 2.0] and len(calls) == 4 and stats.attempts == 4


@pytest.mark.parametrize("error", [BadRequest("bad"), AuthError("no")])
async def test_non_transient_errors_are_never_retried(error):
    clock = Clock()
    fn, calls = flaky([error])
    with pytest.raises(type(error)):
        await RetryPolicy(sleep=clock.sleep, clock=clock).call(fn)
    assert len(calls) == 1 and clock.slept == []


async def test_deadline_stops_before_a_wait_that_would_cross_it():
    clock = Clock()
    config = RetryConfig(max_attempts=10, initial_backoff_s=4, multiplier=2, jitter=0, deadline_s=10)
    fn, calls = flaky([Unavailable("down")] * 10)
    with pytest.raises(Unavailable):
        await RetryPolicy(config, sleep=clock.sleep, clock=clock).call(fn)
    assert clock.slept == [4]  # 4 + 8 would cross 10 s
    assert len(calls) == 2


async def test_jitter_is_bounded():
    policy = RetryPolicy(RetryConfig(initial_backoff_s=1, jitter=0.5), rand=lambda: 1.0)
    assert policy.backoff(1, Unavailable("x")) == 1.5
    assert policy.backoff(3, Unavailable("x")) == 6.0


class Broken(FakeGenerator):
    def __init__(self, error):
        super().__init__(id="broken")
        self.error = error

    async def generate(self, messages, **kwargs):
        raise self.error


async def test_fallback_generator_moves_on_and_records_why():
    chain = FallbackGenerator([Broken(Unavailable("down", provider="x")), FakeGenerator(("second",), id="backup")])
    reply = await chain.generate([Message("user", "hi")])
    assert reply.text == "second"
    assert reply.metadata["fallbacks"] == [{"generator": "broken", "error": "Unavailable", "message": "x: down"}]


async def test_fallback_generator_raises_the_last_error():
    chain = FallbackGenerator([Broken(Unavailable("a")), Broken(AuthError("b"))])
    with pytest.raises(AuthError):
        await chain.generate([Message("user", "hi")])
