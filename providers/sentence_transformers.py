"""Embeddings from a sentence-transformers model in a local directory (never downloaded from a hub)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import Field

from ragkit.component import ComponentConfig
from ragkit.errors import ConfigError, DataError, ProviderError

_INSTALL = "pip install 'ragkit[sentence-transformers]'"


class SentenceTransformersConfig(ComponentConfig):
    """Settings of the sentence-transformers embedder."""

    model_path: str = Field(
        ..., min_length=1, max_length=4096, description="local directory of a sentence-transformers model"
    )
    device: Literal["cpu", "cuda", "mps"] = Field("cpu", description="torch device to run on")
    batch_size: int = Field(32, ge=1, le=4096, description="texts per forward pass")
    normalize: bool = Field(True, description="L2-normalise vectors (cosine = dot product)")
    id: str | None = Field(
        None, max_length=200, description="embedder id for caches and stores; default: the directory name"
    )


class SentenceTransformersEmbedder:
    """Any local sentence-transformers model; the SDK loads only with ``local_files_only``."""

    Config = SentenceTransformersConfig

    def __init__(
        self,
        *,
        model_path: str,
        device: str = "cpu",
        batch_size: int = 32,
        normalize: bool = True,
        id: str | None = None,
    ) -> None:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"model_path {model_path!r} is not a local model directory; ragkit never downloads models"
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ConfigError(f"the sentence_transformers embedder needs sentence-transformers: {_INSTALL}") from e
        try:
            self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as e:
            raise ConfigError(f"cannot load the sentence-transformers model in {path}: {e}") from e
        dim = self._model.get_sentence_embedding_dimension()
        if not dim:
            raise ConfigError(f"the model in {path} does not declare its embedding dimension")
        self.dim = int(dim)
        # The model truncates longer texts: chunkers must stay at or below it.
        self.max_input_tokens: int | None = getattr(self._model, "max_seq_length", None)
        self.id = id or f"st-{path.name}"
        self.max_batch = batch_size
        self.normalize = normalize

    @classmethod
    def from_config(cls, config: SentenceTransformersConfig, **collaborators: Any) -> SentenceTransformersEmbedder:
        return cls(**config.model_dump())

    def encode(self, texts: Sequence[str]) -> Any:
        """Embed ``texts`` into a (len(texts), dim) numpy array."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise DataError(f"text {i} to embed is {type(t).__name__}, expected str")
        try:
            return self._model.encode(
                list(texts),
                batch_size=self.max_batch,
                normalize_embeddings=self.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except (RuntimeError, ValueError) as e:
            raise ProviderError(str(e), provider="sentence_transformers") from e

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return (await asyncio.to_thread(self.encode, list(texts))).tolist()


__all__ = ["SentenceTransformersEmbedder", "SentenceTransformersConfig"]
