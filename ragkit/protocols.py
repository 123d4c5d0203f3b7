"""The pipeline's component protocols. A backend implements one or two methods; the core builds the rest."""

from __future__ import annotations

from typing import Any, AsyncIterator, Mapping, Protocol, Sequence, runtime_checkable

from ragkit.types import Chunk, Delta, Document, Hit, Message, Reply, SparseVector


@runtime_checkable
class Chunker(Protocol):
    """Splits a document into chunks of at most ``max_tokens`` tokens."""

    max_tokens: int

    def chunk(self, doc: Document) -> list[Chunk]: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into dense vectors. Batching, caching and prefixes live in the core."""

    id: str
    dim: int
    max_batch: int

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]: ...


@runtime_checkable
class VectorStore(Protocol):
    """Stores points (dense + optional sparse vector + payload) and searches them."""

    async def ensure_collection(self, dim: int) -> None: ...

    async def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[Mapping[str, Any]],
        sparse: Sequence[SparseVector] | None = None,
    ) -> None: ...

    async def delete(self, ids: Sequence[str]) -> None: ...

    async def search_dense(
        self, vector: Sequence[float], top_k: int, filter: Mapping[str, Any] | None = None
    ) -> list[tuple[str, float, Mapping[str, Any]]]: ...

    async def search_sparse(
        self, vector: SparseVector, top_k: int, filter: Mapping[str, Any] | None = None
    ) -> list[tuple[str, float, Mapping[str, Any]]]: ...

    async def count(self) -> int: ...


@runtime_checkable
class Retriever(Protocol):
    """Finds the chunks most relevant to a query."""

    async def retrieve(self, query: str, top_k: int, filter: Mapping[str, Any] | None = None) -> list[Hit]: ...


@runtime_checkable
class Reranker(Protocol):
    """Reorders hits for a query."""

    async def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]: ...


@runtime_checkable
class Compressor(Protocol):
    """Shrinks retrieved context to a token budget, keeping what matters to the query."""

    def compress(self, query: str, hits: Sequence[Hit], budget_tokens: int) -> Any: ...


@runtime_checkable
class Generator(Protocol):
    """Chat messages in, a ``Reply`` out."""

    id: str
    context_window: int

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> Reply: ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
    ) -> AsyncIterator[Delta]: ...

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class Tool(Protocol):
    """A function the model can call."""

    name: str
    description: str

    def json_schema(self) -> Mapping[str, Any]: ...

    async def __call__(self, **kwargs: Any) -> Any: ...


__all__ = ["Chunker", "Embedder", "VectorStore", "Retriever", "Reranker", "Compressor", "Generator", "Tool", "Document"]
