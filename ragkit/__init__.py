"""ragkit: retrieval-augmented generation with pluggable providers."""

import logging as _logging

from ragkit.config import ConfigValidationError, PipelineConfig, load_pipeline, parse_pipeline
from ragkit.errors import (
    AuthError,
    BadRequest,
    BudgetError,
    ConfigError,
    ContextOverflow,
    DataError,
    MalformedReply,
    ProviderError,
    RagkitError,
    RateLimited,
    Timeout,
    ToolError,
    ToolLoopExhausted,
    Transient,
    Unavailable,
)
from ragkit.generate.base import BaseEmbedder, BaseGenerator, FallbackGenerator
from ragkit.ingest.loaders import load_path
from ragkit.pipeline import RAG
from ragkit.retry import RetryConfig, RetryPolicy
from ragkit.tokens import TiktokenCounter, get_encoding
from ragkit.tools import FunctionTool, Toolset, retrieval_tool, tool
from ragkit.tools.loop import ToolLoop
from ragkit.types import Chunk, Delta, Document, Hit, Message, Reply, SparseVector, ToolCall, ToolSpec, Usage

_logging.getLogger("ragkit").addHandler(_logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "RAG",
    "PipelineConfig",
    "load_pipeline",
    "parse_pipeline",
    "ConfigValidationError",
    "load_path",
    "AuthError",
    "BadRequest",
    "BudgetError",
    "ConfigError",
    "ContextOverflow",
    "DataError",
    "MalformedReply",
    "ProviderError",
    "RagkitError",
    "RateLimited",
    "Timeout",
    "ToolError",
    "ToolLoopExhausted",
    "Transient",
    "Unavailable",
    "BaseEmbedder",
    "BaseGenerator",
    "FallbackGenerator",
    "RetryConfig",
    "RetryPolicy",
    "TiktokenCounter",
    "get_encoding",
    "ToolLoop",
    "FunctionTool",
    "Toolset",
    "retrieval_tool",
    "tool",
    "Chunk",
    "Delta",
    "Document",
    "Hit",
    "Message",
    "Reply",
    "SparseVector",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "__version__",
]
