"""ragkit: retrieval-augmented generation with pluggable providers."""

import logging as _logging

from ragkit.errors import (
    AuthError, BadRequest, BudgetError, ConfigError, ContextOverflow, DataError, ProviderError,
    RagkitError, RateLimited, Timeout, ToolError, Transient, Unavailable,
)
from ragkit.retry import RetryConfig, RetryPolicy
from ragkit.tokens import TiktokenCounter, get_encoding
from ragkit.types import Chunk, Delta, Document, Hit, Message, Reply, SparseVector, ToolCall, Usage

_logging.getLogger("ragkit").addHandler(_logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "AuthError", "BadRequest", "BudgetError", "ConfigError", "ContextOverflow", "DataError", "ProviderError",
    "RagkitError", "RateLimited", "Timeout", "ToolError", "Transient", "Unavailable",
    "RetryConfig", "RetryPolicy", "TiktokenCounter", "get_encoding",
    "Chunk", "Delta", "Document", "Hit", "Message", "Reply", "SparseVector", "ToolCall", "Usage",
    "__version__",
]
