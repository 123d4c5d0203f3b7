"""Shared benchmark fixtures: a sentence corpus from ../shared and an embedder that looks vectors up."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ragkit.types import Document

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def sentences(n: int) -> list[Document]:
    """Up to ``n`` sentence-sized documents from the SQuAD and HotpotQA passages."""
    docs: list[Document] = []
    for name in ("squad2", "hotpotqa"):
        with (SHARED / name / "rag" / "passages.jsonl").open(encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                for i, sent in enumerate(re.split(r"(?<=[.!?])\s+", row["text"])):
                    if len(sent) > 30:
                        docs.append(Document(f"{name}:{row['_id']}#{i}", sent, {"title": row.get("title", "")}))
                    if len(docs) >= n:
                        return docs
    return docs


class LookupEmbedder:
    """Deterministic pseudo-random unit vectors per text: costs ~nothing, so timings measure the framework."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.id = f"lookup-{dim}"
        self.max_batch = 4096
        self._cache: dict[str, list[float]] = {}

    def vector(self, text: str) -> list[float]:
        v = self._cache.get(text)
        if v is None:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            arr = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            v = (arr / np.linalg.norm(arr)).tolist()
            self._cache[text] = v
        return v

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.vector(t) for t in texts]
