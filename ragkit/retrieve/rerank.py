"""Rerankers: identity, maximal marginal relevance, and cross-encoders (local ONNX or sentence-transformers)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import ValidationError

from ragkit.component import ComponentConfig, Field
from ragkit.errors import ConfigError, ProviderError
from ragkit.types import Hit

log = logging.getLogger("ragkit.retrieve.rerank")


class IdentityReranker:
    """Keeps the retriever's order."""

    class Config(ComponentConfig):
        pass

    @classmethod
    def from_config(cls, config: IdentityReranker.Config | None = None, **_: Any) -> IdentityReranker:
        return cls()

    async def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        return list(hits[: max(top_k, 0)])


def _unit_rows(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    m = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


def mmr_order(query_vec: Sequence[float], doc_vecs: Sequence[Sequence[float]], top_k: int, lambda_: float) -> list[int]:
    """Indices chosen by maximal marginal relevance: λ·cos(q, d) − (1−λ)·max cos(d, chosen)."""
    if not doc_vecs or top_k <= 0:
        return []
    docs = _unit_rows(doc_vecs)
    relevance = docs @ _unit_rows([query_vec])[0]
    similarity = docs @ docs.T
    chosen: list[int] = []
    left = list(range(len(docs)))
    while left and len(chosen) < top_k:
        redundancy = similarity[np.ix_(left, chosen)].max(axis=1) if chosen else np.zeros(len(left))
        scores = lambda_ * relevance[left] - (1.0 - lambda_) * redundancy
        best = left[int(np.argmax(scores))]
        chosen.append(best)
        left.remove(best)
    return chosen


class MMRReranker:
    """Trades relevance for diversity among hits, by cosine between their embeddings."""

    class Config(ComponentConfig):
        lambda_: float = Field(0.5, ge=0.0, le=1.0, description="1 = pure relevance, 0 = pure diversity")

    def __init__(self, embedder: Any, lambda_: float = 0.5) -> None:
        self.embedder = embedder
        try:
            self.lambda_ = self.Config(lambda_=lambda_).lambda_
        except ValidationError as e:
            raise ConfigError(f"{type(self).__name__}: {e}") from e

    @classmethod
    def from_config(cls, config: MMRReranker.Config, *, embedder: Any, **_: Any) -> MMRReranker:
        return cls(embedder, config.lambda_)

    async def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        if not hits or top_k <= 0:
            return []
        vectors = await self.embedder.embed_batch([query, *(h.chunk.text for h in hits)])
        order = mmr_order(vectors[0], vectors[1:], top_k, self.lambda_)
        n = len(order)
        # The MMR position becomes the score (n … 1), so scores stay ordered; the old score stays in rank_scores.
        return [
            replace(hits[i], score=float(n - pos), rank_scores={**hits[i].rank_scores, "retrieval": hits[i].score})
            for pos, i in enumerate(order)
        ]


class _OnnxCrossEncoder:
    """model.onnx + tokenizer.json: (query, text) pairs in, one logit per pair out."""

    def __init__(self, model_dir: Path, max_length: int, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        onnx_path, tok_path = model_dir / "model.onnx", model_dir / "tokenizer.json"
        for p in (onnx_path, tok_path):
            if not p.is_file():
                raise ConfigError(f"cross-encoder directory {model_dir} lacks {p.name}")
        try:
            self.tokenizer = Tokenizer.from_file(str(tok_path))
        except Exception as e:  # tokenizers raises a bare Exception on a bad file
            raise ConfigError(f"cannot read {tok_path}: {e}") from e
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's exception types are not public API
            raise ConfigError(f"onnxruntime cannot load {onnx_path}: {e}") from e
        self.inputs = {i.name for i in self.session.get_inputs()}
        if "input_ids" not in self.inputs:
            raise ConfigError(f"{onnx_path} takes inputs {sorted(self.inputs)}; expected input_ids")

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        encodings = self.tokenizer.encode_batch([(query, t) for t in texts])
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        try:
            logits = np.asarray(self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0])
        except Exception as e:
            raise ProviderError(f"cross-encoder inference failed: {e}", provider="onnxruntime") from e
        # (n,) or (n, 1): a relevance logit; (n, 2+): classes, the last one meaning "relevant".
        return (logits.reshape(len(texts), -1)[:, -1]).astype(float).tolist()


class _SentenceTransformersCrossEncoder:
    def __init__(self, model_dir: Path, max_length: int) -> None:
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as e:
            raise ConfigError(
                "the sentence_transformers cross-encoder backend needs sentence-transformers: "
                "pip install 'ragkit[sentence-transformers]'"
            ) from e
        self.model = CrossEncoder(str(model_dir), max_length=max_length, local_files_only=True)

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        return [float(s) for s in self.model.predict([(query, t) for t in texts])]


class CrossEncoderReranker:
    """Scores each (query, hit text) pair with a local cross-encoder model directory and sorts by that score."""

    class Config(ComponentConfig):
        model_dir: str = Field(..., min_length=1, max_length=4096, description="local model directory")
        backend: Literal["auto", "onnx", "sentence_transformers"] = Field(
            "auto", description="auto = ONNX when model.onnx is present, else sentence-transformers"
        )
        max_length: int = Field(512, ge=8, le=8192, description="tokens per (query, text) pair; longer pairs are cut")
        batch_size: int = Field(32, ge=1, le=4096, description="pairs per model run")
        threads: int = Field(1, ge=1, le=256, description="onnxruntime threads inside one operator")

    def __init__(
        self,
        model_dir: str | Path,
        *,
        backend: str = "auto",
        max_length: int = 512,
        batch_size: int = 32,
        threads: int = 1,
    ) -> None:
        try:
            cfg = self.Config(
                model_dir=str(model_dir), backend=backend, max_length=max_length, batch_size=batch_size, threads=threads
            )
        except ValidationError as e:
            raise ConfigError(f"CrossEncoderReranker: {e}") from e
        path = Path(cfg.model_dir)
        if not path.is_dir():
            raise ConfigError(f"cross-encoder model_dir {path} is not a directory")
        use_onnx = cfg.backend == "onnx" or (cfg.backend == "auto" and (path / "model.onnx").is_file())
        self._model: Any = (
            _OnnxCrossEncoder(path, cfg.max_length, cfg.threads)
            if use_onnx
            else _SentenceTransformersCrossEncoder(path, cfg.max_length)
        )
        self.batch_size = cfg.batch_size

    @classmethod
    def from_config(cls, config: CrossEncoderReranker.Config, **_: Any) -> CrossEncoderReranker:
        return cls(
            config.model_dir,
            backend=config.backend,
            max_length=config.max_length,
            batch_size=config.batch_size,
            threads=config.threads,
        )

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance score of each text for the query (CPU-bound; call from a thread in async code)."""
        out: list[float] = []
        for i in range(0, len(texts), self.batch_size):
            out.extend(self._model.score(query, texts[i : i + self.batch_size]))
        return out

    async def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        if not hits or top_k <= 0:
            return []
        scores = await asyncio.to_thread(self.scores, query, [h.chunk.text for h in hits])
        order = sorted(range(len(hits)), key=lambda i: -scores[i])[:top_k]  # stable: ties keep retrieval order
        return [
            replace(
                hits[i],
                score=scores[i],
                rank_scores={**hits[i].rank_scores, "retrieval": hits[i].score, "cross_encoder": scores[i]},
            )
            for i in order
        ]


__all__ = ["IdentityReranker", "MMRReranker", "CrossEncoderReranker", "mmr_order"]
