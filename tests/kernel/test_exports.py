"""The public surface is pinned: every name in ``ragkit.__all__`` exists, and nothing is added or lost silently."""

import ragkit

EXPECTED = {
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
}


def test_all_is_pinned():
    assert set(ragkit.__all__) == EXPECTED
    assert len(ragkit.__all__) == len(EXPECTED)


def test_every_exported_name_exists():
    missing = [name for name in ragkit.__all__ if not hasattr(ragkit, name)]
    assert not missing


def test_error_tree():
    assert issubclass(ragkit.RateLimited, ragkit.Transient)
    assert issubclass(ragkit.Transient, ragkit.ProviderError)
    assert issubclass(ragkit.ContextOverflow, ragkit.BadRequest)
    assert not issubclass(ragkit.BadRequest, ragkit.Transient)
