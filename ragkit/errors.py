"""The ragkit exception tree.

    RagkitError
    ├── ConfigError            bad configuration, missing model files, unknown names
    ├── DataError              malformed input data (names file and line)
    ├── BudgetError            a prompt that cannot fit its token budget
    ├── ProviderError          anything a backend reported
    │   ├── AuthError          401/403: credentials missing or rejected
    │   ├── BadRequest         400/404/422: the request itself is wrong (never retried)
    │   │   └── ContextOverflow   the prompt exceeds the model's context window
    │   ├── MalformedReply     the server answered, but not in the API's format (never retried)
    │   └── Transient          worth retrying
    │       ├── RateLimited    429; carries ``retry_after`` seconds when the server sent it
    │       ├── Unavailable    5xx, connection failures
    │       └── Timeout        the request or the overall deadline ran out
    ├── ToolError              a tool failed (wrapped into a result the model sees)
    └── ToolLoopExhausted      the model still asked for tools after ``max_rounds`` rounds

Only ``Transient`` is retried.
"""

from __future__ import annotations

from typing import Any, Sequence


class RagkitError(Exception):
    """Base of every error ragkit raises."""


class ConfigError(RagkitError):
    """Configuration is invalid, or a required model file or extra is missing."""


class DataError(RagkitError):
    """Input data is malformed; the message names the file and line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)
        self.path = path
        self.line = line


class BudgetError(RagkitError):
    """A prompt cannot fit within the token budget."""


class ProviderError(RagkitError):
    """A backend reported an error."""

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}" if provider else message)
        self.provider = provider
        self.status = status


class AuthError(ProviderError):
    """Credentials are missing or were rejected."""


class BadRequest(ProviderError):
    """The request is invalid; retrying cannot help."""


class ContextOverflow(BadRequest):
    """The prompt exceeds the model's context window."""


class MalformedReply(ProviderError):
    """The server answered, but the body or a stream event breaks the API's format: not JSON, a field missing or of
    the wrong type, an event stream that is not one. Retrying the same request would get the same answer."""


class Transient(ProviderError):
    """A failure that may succeed on retry."""


class RateLimited(Transient):
    """The provider asked us to slow down."""

    def __init__(
        self,
        message: str = "rate limited",
        *,
        retry_after: float | None = None,
        provider: str = "",
        status: int | None = 429,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class Unavailable(Transient):
    """The provider is down or unreachable."""


class Timeout(Transient):
    """The request timed out."""


class ToolError(RagkitError):
    """A tool failed; the loop reports it to the model as an error result."""


class ToolLoopExhausted(RagkitError):
    """The tool loop ran ``max_rounds`` rounds and the model still asked for tools; carries the transcript."""

    def __init__(
        self, message: str, *, transcript: Sequence[Any] = (), rounds: int = 0, records: Sequence[Any] = ()
    ) -> None:
        super().__init__(message)
        self.transcript = list(transcript)
        self.rounds = rounds
        self.records = list(records)


__all__ = [
    "RagkitError",
    "ConfigError",
    "DataError",
    "BudgetError",
    "ProviderError",
    "AuthError",
    "BadRequest",
    "ContextOverflow",
    "MalformedReply",
    "Transient",
    "RateLimited",
    "Unavailable",
    "Timeout",
    "ToolError",
    "ToolLoopExhausted",
]
