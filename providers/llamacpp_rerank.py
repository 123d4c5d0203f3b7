"""The LLM reranker on llama.cpp: P("yes") from a local instruct GGUF (Qwen2.5 0.5B/1.5B), the query's prompt
prefix evaluated once and its KV cache reused for every passage."""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from ragkit.component import Field
from ragkit.errors import ConfigError
from ragkit.local_models import resolve_gguf
from ragkit.retrieve.llm_rerank import LlmRerankConfig, LlmReranker

SYSTEM = (
    "You judge search results. Given a question and a passage, answer yes if the passage contains the answer "
    "to the question or the facts needed for it, otherwise no. Answer with one word: yes or no."
)
# ChatML (Qwen2.5's template): the question sits in the shared prefix, so only the passage is evaluated per hit.
PREFIX = "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\nQuestion: {query}\n\nPassage: "
SUFFIX = "\n\nDoes the passage answer the question?<|im_end|>\n<|im_start|>assistant\n"


class LlamaCppYesNoScorer:
    """P(yes | yes or no) per passage from one llama.cpp context; thread-safe by a lock."""

    def __init__(self, model: str, *, n_threads: int | None = None, n_ctx: int = 2048, llama_cls: Any = None) -> None:
        self.path = resolve_gguf(model)
        self.n_threads, self.n_ctx = n_threads, n_ctx
        self._llama_cls = llama_cls
        self._llm: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._llm is None:
            from ragkit.providers.llamacpp import _llama_cpp

            lib = _llama_cpp()
            cls = self._llama_cls or lib.Llama
            try:
                self._llm = cls(
                    model_path=str(self.path), n_ctx=self.n_ctx, n_batch=512, n_threads=self.n_threads, verbose=False
                )
            except (ValueError, RuntimeError, OSError) as e:
                raise ConfigError(f"llama.cpp could not load {self.path}: {e}") from e
            self._lib = lib
            tok = self._llm.tokenize
            self._yes = sorted({tok(w.encode(), add_bos=False, special=False)[0] for w in ("yes", "Yes", " yes")})
            self._no = sorted({tok(w.encode(), add_bos=False, special=False)[0] for w in ("no", "No", " no")})
        return self._llm

    def _last_logits(self, llm: Any) -> np.ndarray:
        ptr = self._lib.llama_get_logits_ith(llm._ctx.ctx, -1)  # noqa: SLF001 - the low-level context is the API
        return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))

    def yes_probabilities(self, query: str, passages: Sequence[str]) -> list[float]:
        with self._lock:
            llm = self._load()
            prefix = llm.tokenize(PREFIX.format(system=SYSTEM, query=query).encode(), add_bos=False, special=True)
            suffix = llm.tokenize(SUFFIX.encode(), add_bos=False, special=True)
            room = self.n_ctx - len(prefix) - len(suffix) - 1
            if room < 16:
                raise ConfigError(f"LLM reranker: n_ctx={self.n_ctx} leaves no room for a passage after the query")
            llm.reset()
            llm._ctx.kv_cache_clear()  # noqa: SLF001
            llm.eval(prefix)
            out = []
            for text in passages:
                llm.n_tokens = len(prefix)  # keep the prefix's KV cache, drop the previous passage's
                llm._ctx.kv_cache_seq_rm(-1, len(prefix), -1)  # noqa: SLF001
                body = llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False)[:room]
                llm.eval(body + suffix)
                logits = self._last_logits(llm)
                yes = np.logaddexp.reduce(logits[self._yes])
                no = np.logaddexp.reduce(logits[self._no])
                out.append(float(1.0 / (1.0 + np.exp(no - yes))))
            return out


class LlamaCppRerankConfig(LlmRerankConfig):
    """The LLM reranker on a local GGUF."""

    model: str = Field(
        "qwen2.5-coder-0.5b-instruct",
        max_length=1000,
        description="known local model name or alias (ragkit models list), or a path to a GGUF file",
    )
    n_threads: int | None = Field(None, ge=1, le=512, description="CPU threads; None lets llama.cpp choose")
    n_ctx: int = Field(2048, ge=256, le=131_072, description="context size: prompt prefix + one passage")


class LlamaCppReranker(LlmReranker):
    """``LlmReranker`` with a llama.cpp scorer; the model loads on first use."""

    Config = LlamaCppRerankConfig

    @classmethod
    def from_config(cls, config: LlamaCppRerankConfig | None = None, **_: Any) -> LlamaCppReranker:
        c = config or LlamaCppRerankConfig()
        return cls(LlamaCppYesNoScorer(c.model, n_threads=c.n_threads, n_ctx=c.n_ctx), c)


__all__ = ["LlamaCppReranker", "LlamaCppRerankConfig", "LlamaCppYesNoScorer"]
