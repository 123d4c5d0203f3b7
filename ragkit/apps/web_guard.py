"""What guards the chat web app: an optional bearer token, a bounded queue of model requests, security headers.

The token: API clients send ``Authorization: Bearer <token>``; a browser opens ``/?token=<token>`` once and gets
an HttpOnly, SameSite=Strict session cookie (an HMAC of the token, never the token) that its ``EventSource``
requests carry. The queue: at most ``max_concurrent`` answers run, ``max_queued`` more wait; past that a request is
answered 429 with ``Retry-After`` at once. The headers: a Content-Security-Policy that allows only the page's own
inline script and style (by hash) and connections to its own origin, ``X-Frame-Options: DENY``, ``nosniff``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import math
import re
import time
from collections import deque
from typing import Any, AsyncIterator, Awaitable, Callable

from pydantic import SecretStr

from ragkit.errors import ConfigError

SESSION_COOKIE = "ragkit_session"
MIN_TOKEN_CHARS = 16
# Guess used for Retry-After before any answer has been timed.
DEFAULT_ANSWER_S = 5.0


def content_security_policy(page: str) -> str:
    """A CSP for ``page`` that allows exactly its inline ``<script>`` and ``<style>`` blocks, by their hashes."""

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
        digests = [base64.b64encode(hashlib.sha256(b.encode("utf-8")).digest()).decode() for b in blocks]
        return " ".join(f"'sha256-{d}'" for d in digests) or "'none'"

    return (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def security_headers(page: str) -> list[tuple[bytes, bytes]]:
    """The headers every response carries."""
    return [
        (b"content-security-policy", content_security_policy(page).encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


class SecurityHeaders:
    """ASGI middleware: adds ``headers`` to every HTTP response (plain ASGI, so streamed responses stay streamed)."""

    def __init__(self, app: Any, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = headers
        self._names = {name for name, _ in headers}

    async def __call__(self, scope: Any, receive: Any, send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in self._names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Gate:
    """Admits at most ``max_concurrent + max_queued`` model requests at a time; runs ``max_concurrent`` at once."""

    def __init__(self, max_concurrent: int = 2, max_queued: int = 8, *, clock: Callable[[], float] = time.monotonic):
        if max_concurrent < 1 or max_queued < 0:
            raise ConfigError("the web app needs max_concurrent >= 1 and max_queued >= 0")
        self.max_concurrent, self.max_queued = max_concurrent, max_queued
        self.admitted = 0
        self._clock = clock
        self._running: asyncio.Semaphore | None = None
        self._durations: deque[float] = deque(maxlen=20)

    def admit(self) -> bool:
        """Take a place if one is free (released by ``release``)."""
        if self.admitted >= self.max_concurrent + self.max_queued:
            return False
        self.admitted += 1
        return True

    def release(self) -> None:
        self.admitted -= 1

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the recent mean answer time per round of ``max_concurrent``."""
        mean = sum(self._durations) / len(self._durations) if self._durations else DEFAULT_ANSWER_S
        rounds = max(1, math.ceil((self.admitted - self.max_concurrent + 1) / self.max_concurrent))
        return max(1, min(300, math.ceil(mean * rounds)))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Wait for one of the running places; the time spent in it feeds ``retry_after``."""
        if self._running is None:
            self._running = asyncio.Semaphore(self.max_concurrent)
        async with self._running:
            started = self._clock()
            try:
                yield
            finally:
                self._durations.append(self._clock() - started)


class TokenCheck:
    """Whether a request carries the token, as a bearer header or as the session cookie made from it."""

    def __init__(self, token: SecretStr | str) -> None:
        value = token.get_secret_value() if isinstance(token, SecretStr) else token
        if len(value) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"the web token is shorter than {MIN_TOKEN_CHARS} characters; use a long random one, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        self._token = value.encode("utf-8")
        self.session = hmac.new(self._token, b"ragkit web session", hashlib.sha256).hexdigest()

    def matches(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode("utf-8"), self._token)

    def allows(self, headers: Any, cookies: Any) -> bool:
        scheme, _, credential = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and self.matches(credential.strip()):
            return True
        cookie = cookies.get(SESSION_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.encode("utf-8"), self.session.encode("utf-8"))


__all__ = [
    "Gate",
    "TokenCheck",
    "SecurityHeaders",
    "security_headers",
    "content_security_policy",
    "SESSION_COOKIE",
    "MIN_TOKEN_CHARS",
]
