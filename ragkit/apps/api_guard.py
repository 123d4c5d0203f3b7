"""What stands in front of the API's handlers: the bearer token, the body-size cap, the bounded queue.

* **Token**: read from an environment variable (``RAGKIT_API_TOKEN`` unless named otherwise); when it is set,
  every ``/v1`` request must send ``Authorization: Bearer <token>``, compared in constant time. Binding to an
  address beyond loopback without a token is refused at start. The token is never logged or echoed.
* **Body size**: a ``Content-Length`` over the cap is refused before anything is read, and a body sent without
  one is read only up to the cap.
* **Queue**: at most ``active`` requests run and ``waiting`` more wait; one more gets 429 with a ``Retry-After``
  estimated from how long recent requests took.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import math
import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from ragkit.apps.api_protocol import ApiError
from ragkit.errors import ConfigError

DEFAULT_TOKEN_ENV = "RAGKIT_API_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_from_env(env_var: str, host: str) -> str | None:
    """The API token from ``env_var``; a ``ConfigError`` when the host is reachable from outside and none is set."""
    token = os.environ.get(env_var, "").strip() or None
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"binding to {host} makes the API reachable from other machines: set a bearer token in the environment "
            f"variable {env_var} (clients send it as 'Authorization: Bearer <token>'), or bind to 127.0.0.1"
        )
    return token


def check_token(expected: str | None, header: str | None) -> None:
    """Raise a 401 unless ``header`` is ``Bearer <expected>`` (nothing to check when no token is configured)."""
    if expected is None:
        return
    challenge = {"WWW-Authenticate": "Bearer"}
    if not header:
        raise ApiError(
            401,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            type="authentication_error",
            code="missing_api_key",
            headers=challenge,
        )
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise ApiError(
            401, "invalid bearer token", type="authentication_error", code="invalid_api_key", headers=challenge
        )


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, refused with 413 when it is longer than ``limit`` bytes."""
    too_big = ApiError(413, f"request body larger than {limit} bytes", code="request_too_large")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_big
        except ValueError:
            raise ApiError(400, "invalid Content-Length header", code="invalid_body") from None
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise too_big
    return bytes(body)


class Gate:
    """``active`` requests at a time, ``waiting`` more in line; the next is refused with 429 and a Retry-After."""

    def __init__(self, name: str, active: int, waiting: int) -> None:
        if active < 1 or waiting < 0:
            raise ConfigError(f"{name}: need at least 1 active request and 0 or more waiting")
        self.name = name
        self.active = active
        self.waiting = waiting
        self._slots = asyncio.Semaphore(active)
        self._inside = 0  # running plus waiting
        self._mean_s = 1.0  # moving average of request time, for Retry-After

    @property
    def load(self) -> int:
        return self._inside

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue ahead, divided among the slots, at the mean request time."""
        return max(1, math.ceil(self._mean_s * (self._inside - self.active + 1) / self.active))

    def full(self) -> bool:
        return self._inside >= self.active + self.waiting

    def refusal(self) -> ApiError:
        return ApiError(
            429,
            f"too many {self.name} requests in flight ({self.active} running, {self.waiting} waiting); retry later",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(self.retry_after())},
        )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Run inside a slot, waiting in line when all are taken; a 429 ``ApiError`` when the line is full too."""
        if self.full():
            raise self.refusal()
        self._inside += 1
        loop = asyncio.get_running_loop()
        try:
            async with self._slots:
                start = loop.time()
                try:
                    yield
                finally:
                    self._mean_s = 0.8 * self._mean_s + 0.2 * (loop.time() - start)
        finally:
            self._inside -= 1


__all__ = ["Gate", "read_body", "check_token", "token_from_env", "is_loopback", "DEFAULT_TOKEN_ENV"]
